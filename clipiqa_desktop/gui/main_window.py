"""The main window: open a shoot, watch it index, sort and filter the grid, cull with the keyboard."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QItemSelectionModel, QSize, Qt, QThread, QTimer, Slot
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QLabel,
    QListView,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QStackedWidget,
    QWidget,
)

from ..catalog import Catalog, CatalogError
from ..culling.decisions import DecisionChange
from ..culling.session import CullingSession, FilterState
from ..scoring.attributes import PromptError, custom_pair
from .delegate import PhotoDelegate, decision_html
from .dialogs import FailedDialog, SettingsDialog, WeightsDialog
from .filter_panel import FilterPanel
from .loupe import LoupeView
from .photo_model import PhotoGridModel, PhotoIdRole, TableRowRole
from .settings import AppSettings
from .thumbnails import ThumbnailCache
from .workers import IndexWorker, PromptWorker, ScorerHolder, start_in_thread

log = logging.getLogger(__name__)
LABEL_KEYS = {"6": "Red", "7": "Yellow", "8": "Green", "9": "Blue"}
APPLY_INTERVAL_MS = 250  # indexed batches are merged into the grid at most 4 times a second


class MainWindow(QMainWindow):
    def __init__(
        self, settings: AppSettings, catalog: Catalog, persist: bool = True, stored: AppSettings | None = None
    ) -> None:
        """`settings` are in effect for this run (stored settings + command-line options); `stored`
        are what is saved (command-line options are not: they hold for one run only)."""
        super().__init__()
        self.settings, self.catalog, self.persist = settings, catalog, persist
        self.stored = stored or settings
        self.session: CullingSession | None = None
        self.holder = ScorerHolder()
        self.thumbs = ThumbnailCache(catalog, self)
        self.model = PhotoGridModel(None, self.thumbs, self)
        self.index_thread: QThread | None = None
        self.index_worker: IndexWorker | None = None
        self.prompt_thread: QThread | None = None
        self.last_failures: list[tuple[str, str]] = []
        self._pending_ids: list[int] = []
        self.setWindowTitle("clipiqa-desktop")
        self.resize(1400, 900)
        self.setAcceptDrops(True)
        self._build_grid()
        self._build_panels()
        self._build_actions()
        self._apply_timer = QTimer(self)
        self._apply_timer.setInterval(APPLY_INTERVAL_MS)
        self._apply_timer.timeout.connect(self._apply_batches)
        self._show_empty_hint()

    # --- construction ------------------------------------------------------------------------------------
    def _build_grid(self) -> None:
        self.grid = QListView()
        self.grid.setObjectName("grid")
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setUniformItemSizes(True)  # layout of 20,000 cells without asking each one
        self.grid.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.grid.setSpacing(4)
        self.grid.setWordWrap(False)
        self.grid.setStyleSheet("QListView { background: #151515; }")
        self.delegate = PhotoDelegate(self.grid)
        self.grid.setItemDelegate(self.delegate)
        self.grid.setModel(self.model)
        self.grid.doubleClicked.connect(lambda _: self.toggle_loupe())
        self.loupe = LoupeView()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.grid)
        self.stack.addWidget(self.loupe)
        self.setCentralWidget(self.stack)

    def _build_panels(self) -> None:
        self.filters = FilterPanel()
        self.filters.changed.connect(self.apply_filters)
        self.filters.prompt_requested.connect(self.score_prompt)
        scroll = QScrollArea()
        scroll.setWidget(self.filters)
        scroll.setWidgetResizable(True)
        dock = QDockWidget("Filters", self)
        dock.setObjectName("filters")
        dock.setWidget(scroll)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)

        bar = self.statusBar()
        self.status_label = QLabel("")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(260)
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel_indexing)
        self.failed_button = QPushButton("")
        self.failed_button.setVisible(False)
        self.failed_button.clicked.connect(self.show_failures)
        for w in (self.failed_button, self.progress, self.cancel_button):
            w.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        bar.addWidget(self.status_label, 1)
        bar.addPermanentWidget(self.failed_button)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)

    def _action(
        self,
        text: str,
        slot: Any,
        shortcut: str | QKeySequence | QKeySequence.StandardKey | None = None,
        widget: QWidget | None = None,
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        (widget or self).addAction(action)
        if widget is not None:
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        return action

    def _build_actions(self) -> None:
        tb = self.addToolBar("Main")
        tb.setObjectName("main toolbar")
        tb.setMovable(False)
        open_action = self._action("Open folder…", self.choose_folder, QKeySequence.StandardKey.Open)
        tb.addAction(open_action)
        tb.addSeparator()
        tb.addWidget(QLabel(" Sort "))
        self.sort_box = QComboBox()
        self.sort_box.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.sort_box.setMinimumWidth(130)
        self.sort_box.currentTextChanged.connect(self._sort_changed)
        tb.addWidget(self.sort_box)
        self.desc_action = QAction("Descending", self)
        self.desc_action.setCheckable(True)
        self.desc_action.toggled.connect(lambda _: self._sort_changed(self.sort_box.currentText()))
        tb.addAction(self.desc_action)
        tb.addSeparator()
        tb.addWidget(QLabel(" Size "))
        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setRange(80, 400)
        self.size_slider.setValue(self.delegate.thumb_size)
        self.size_slider.setMaximumWidth(140)
        self.size_slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.size_slider.valueChanged.connect(self.set_thumb_size)
        tb.addWidget(self.size_slider)
        tb.addSeparator()
        self.auto_advance = QAction("Auto-advance", self)
        self.auto_advance.setCheckable(True)
        self.auto_advance.setShortcut(QKeySequence("Shift+A"))
        self.addAction(self.auto_advance)
        tb.addAction(self.auto_advance)
        self.reject_shown_action = self._action("Reject all shown…", self.reject_all_shown, "Ctrl+Shift+X")
        tb.addAction(self.reject_shown_action)
        self.loupe_action = self._action("Loupe", self.toggle_loupe, "Space")
        self._action("Loupe (Enter)", self.toggle_loupe, "Return")
        self._action("Loupe (E)", self.toggle_loupe, "E")
        tb.addAction(self.loupe_action)
        self._action("Back to grid", self.back_to_grid, "Escape")
        self._action("Zoom fit ↔ 100 %", self.loupe.toggle_zoom, "Z", widget=self.loupe)
        self._action("Next photo", lambda: self.step(1), "Right", widget=self.loupe)
        self._action("Previous photo", lambda: self.step(-1), "Left", widget=self.loupe)

        self.undo_action = self._action("Undo", self.undo, QKeySequence.StandardKey.Undo)
        self.redo_action = self._action("Redo", self.redo, "Ctrl+Shift+Z")
        self._action("Pick", lambda: self.decide(DecisionChange(pick=True)), "P")
        self._action("Reject", lambda: self.decide(DecisionChange(reject=True)), "X")
        self._action("Unflag", lambda: self.decide(DecisionChange(unflag=True)), "U")
        for n in range(6):
            self._action(f"{n} stars", lambda _=False, n=n: self.decide(DecisionChange(stars=n)), str(n))
        for key, name in LABEL_KEYS.items():
            self._action(
                f"Label {name}", lambda _=False, name=name: self.decide(DecisionChange(label=name)), key
            )

        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        file_menu.addAction(open_action)
        self.recent_menu = file_menu.addMenu("Recent folders")
        self._fill_recent()
        file_menu.addAction(self._action("Settings…", self.edit_settings, "Ctrl+,"))
        file_menu.addSeparator()
        file_menu.addAction(self._action("Quit", self.close, QKeySequence.StandardKey.Quit))
        edit = menu.addMenu("&Edit")
        edit.addActions([self.undo_action, self.redo_action, self.reject_shown_action])
        view = menu.addMenu("&View")
        view.addActions([self.loupe_action, self.auto_advance])
        view.addAction(self._action("Failed photos…", self.show_failures))

    # --- opening and indexing ------------------------------------------------------------------------
    def choose_folder(self) -> None:
        start = self.settings.recent[0] if self.settings.recent else str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Open a shoot", start)
        if folder:
            self.open_folder(folder)

    def open_folder(self, folder: str | Path) -> bool:
        path = Path(folder).expanduser()
        problem = None
        if not path.exists():
            problem = f"{path} does not exist."
        elif not path.is_dir():
            problem = f"{path} is not a folder."
        else:
            try:
                with os.scandir(path) as entries:
                    next(entries, None)
            except OSError as exc:
                problem = f"{path} cannot be read: {exc.strerror}."
        if problem:
            self.status_label.setText(problem)
            QMessageBox.warning(self, "Cannot open folder", problem)
            return False
        self.cancel_indexing(wait=True)
        try:
            self.session = CullingSession(self.catalog, path)
        except CatalogError as exc:
            QMessageBox.critical(self, "Catalog problem", str(exc))
            return False
        self.session.set_sort(self.sort_box.currentText() or "name", self.desc_action.isChecked())
        self.session.set_filters(self.filters.state())
        self.model.set_session(self.session)
        self._refresh_sort_keys()
        self._update_count()
        self.setWindowTitle(f"{path.name} — clipiqa-desktop")
        self.settings = self.settings.with_recent(path.resolve())
        self.stored = self.stored.with_recent(path.resolve())
        self._save_settings()
        self._fill_recent()
        if self.model.rowCount():
            self.grid.setCurrentIndex(self.model.index(0))
        self.grid.setFocus()
        self.start_indexing()
        return True

    def start_indexing(self) -> None:
        if self.session is None:
            return
        self.last_failures = []
        self.failed_button.setVisible(False)
        worker = IndexWorker(self.catalog, self.holder, self.settings, self.session.folder)
        worker.started.connect(self._index_started)
        worker.progress.connect(self._index_progress)
        worker.batch.connect(self._index_batch)
        worker.finished.connect(self._index_finished)
        worker.failed.connect(self._index_failed)
        worker.weights_missing.connect(self._weights_missing)
        self.index_worker = worker
        self.index_thread = start_in_thread(worker, self)
        self._apply_timer.start()

    def cancel_indexing(self, wait: bool = False) -> None:
        """Ask the indexer to stop after its current batch; with `wait`, block until its thread has
        ended (never leave a running QThread behind: Qt aborts when one is destroyed)."""
        if self.index_worker is not None:
            self.index_worker.cancel()
        if wait and self.index_thread is not None:
            self.index_thread.quit()
            self.index_thread.wait()
            self.index_thread = None
            self.index_worker = None

    @property
    def indexing(self) -> bool:
        return self.index_thread is not None and self.index_thread.isRunning()

    def _stale(self) -> bool:
        """True in a slot called by a worker that is no longer the current one (a folder switch or a
        settings change replaced it while its last signals were still queued)."""
        return self.sender() is not self.index_worker

    @Slot()
    def _index_started(self) -> None:
        if self._stale():
            return
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.cancel_button.setVisible(True)
        self.status_label.setText("Looking for new and changed photos …")

    @Slot(int, int, float, float)
    def _index_progress(self, done: int, total: int, rate: float, eta: float) -> None:
        if self._stale():
            return
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        eta_text = f", {eta:.0f} s left" if eta >= 0 else ""
        self.status_label.setText(f"Scoring {done:,} of {total:,} photos — {rate:.1f} photos/s{eta_text}")

    @Slot(list)
    def _index_batch(self, ids: list[int]) -> None:
        if self._stale():
            return
        self._pending_ids.extend(ids)

    def _apply_batches(self) -> None:
        """Merge committed batches into the grid, keeping the selection and current photo."""
        if not self._pending_ids or self.session is None:
            if not self.indexing:
                self._apply_timer.stop()
            return
        ids, self._pending_ids = self._pending_ids, []
        with self._keeping_selection():
            if self.catalog.last_analysis(self.session.folder_id or 0) != self.session.analysis_id:
                self.session.reload()
                self._refresh_sort_keys()
            else:
                self.session.merge(ids)
            self.thumbs.invalidate(ids)

    @Slot(object)
    def _index_finished(self, summary: Any) -> None:
        if self._stale():
            return
        self._apply_batches()
        self._index_done()
        changed = summary.indexed or summary.missing or summary.returned or summary.failed
        if self.session is not None and summary.analysis_id is not None and changed:
            with self._keeping_selection():
                self.session.reload()
                self._refresh_sort_keys()
        self.last_failures = list(summary.failed)
        if self.session is not None:
            t = self.session.table
            self.last_failures = [
                (p, e or "") for p, s, e in zip(t.paths, t.status, t.errors, strict=True) if s == "error"
            ]
        parts = [f"{summary.indexed:,} scored", f"{summary.unchanged:,} unchanged"]
        if summary.missing:
            parts.append(f"{summary.missing} missing (decisions kept)")
        state = "Cancelled" if summary.cancelled else "Done"
        self.status_label.setText(f"{state} in {summary.seconds:.1f} s: " + ", ".join(parts))
        if self.last_failures:
            self.failed_button.setText(f"{len(self.last_failures)} failed — show")
            self.failed_button.setVisible(True)

    @Slot(str)
    def _index_failed(self, message: str) -> None:
        if self._stale():
            return
        self._index_done()
        self.status_label.setText(f"Indexing stopped: {message}")
        QMessageBox.warning(self, "Indexing stopped", message)

    @Slot(str)
    def _weights_missing(self, message: str) -> None:
        if self._stale():
            return
        self._index_done()
        self.status_label.setText("Scoring needs the CLIP weights (see the dialog).")
        dialog = WeightsDialog(message, self)
        result = dialog.exec()
        if result == WeightsDialog.PICK and dialog.weights_file:
            self.settings = replace(self.settings, weights=dialog.weights_file)
            self.stored = replace(self.stored, weights=dialog.weights_file)
            self._save_settings()
            self.start_indexing()
        elif result == WeightsDialog.DOWNLOAD:
            self.start_indexing()

    def _index_done(self) -> None:
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        if self.index_thread is not None:
            self.index_thread.quit()
            self.index_thread.wait(10_000)
        self.index_thread = None
        self.index_worker = None

    def show_failures(self) -> None:
        if self.last_failures:
            FailedDialog(self.last_failures, self).exec()
        else:
            self.status_label.setText("No photo failed.")

    # --- view: sort, filter, size --------------------------------------------------------------------
    def _refresh_sort_keys(self) -> None:
        if self.session is None:
            return
        current = self.sort_box.currentText() or self.session.sort_key
        self.sort_box.blockSignals(True)
        self.sort_box.clear()
        self.sort_box.addItems(self.session.sort_keys)
        self.sort_box.setCurrentText(current if current in self.session.sort_keys else "name")
        self.sort_box.blockSignals(False)

    def _sort_changed(self, key: str) -> None:
        if self.session is None or not key:
            return
        with self._keeping_selection():
            self.session.set_sort(key, self.desc_action.isChecked())

    def apply_filters(self, state: FilterState) -> None:
        if self.session is None:
            return
        with self._keeping_selection():
            self.session.set_filters(state)

    def set_thumb_size(self, size: int) -> None:
        self.delegate.set_thumb_size(size)
        self.grid.setIconSize(QSize(size, size))
        self.model.layoutAboutToBeChanged.emit()
        self.model.layoutChanged.emit()

    def _update_count(self) -> None:
        if self.session is None:
            self.filters.count_label.setText("no folder open")
            return
        shown, total = len(self.session.view), len(self.session.table)
        text = f"<b>{shown:,}</b> of {total:,} photos"
        if total and not shown and self.session.filters.active:
            warning = "no photo matches the filters (Show all clears them)"
            text += f" — <span style='color:#e5484d'>{warning}</span>"
        hidden_missing = self.session.table.status.count("missing")
        if hidden_missing and "missing" not in self.session.filters.statuses:
            text += f"<br>{hidden_missing:,} missing file(s) not shown (their decisions are kept)"
        self.filters.count_label.setText(text)

    def _show_empty_hint(self) -> None:
        self.status_label.setText("Open a folder (Ctrl+O), drop one on the window, or pick a recent one.")

    # --- selection helpers ---------------------------------------------------------------------------
    @contextmanager
    def _keeping_selection(self) -> Iterator[None]:
        """Change the view (sort, filter, merge, reload) and keep the current and selected photos."""
        current, selected = self._remember_selection()
        yield
        self.model.view_changed()
        self._restore_selection(current, selected)
        self._update_count()

    def _remember_selection(self) -> tuple[int | None, list[int]]:
        cur = self.grid.currentIndex()
        current = cur.data(PhotoIdRole) if cur.isValid() else None
        selected = [i.data(PhotoIdRole) for i in self.grid.selectionModel().selectedIndexes()]
        return current, selected

    def _restore_selection(self, current: int | None, selected: list[int]) -> None:
        """Bring back the current and selected photos after a view change. The photo a key acts on
        is always visibly selected: with no other selection left, the current photo is selected."""
        sel = self.grid.selectionModel()
        flags = QItemSelectionModel.SelectionFlag
        rows = [r for pid in selected if (r := self.model.row_of(pid)) is not None]
        cur_row = self.model.row_of(current) if current is not None else None
        if cur_row is None and self.model.rowCount():
            cur_row = rows[0] if rows else 0
        if cur_row is None:
            return
        sel.setCurrentIndex(self.model.index(cur_row), flags.NoUpdate if rows else flags.ClearAndSelect)
        for row in rows:
            sel.select(self.model.index(row), flags.Select)

    def target_rows(self) -> list[int]:
        """Table rows an action applies to: the selection, or the current photo."""
        indexes = self.grid.selectionModel().selectedIndexes()
        if not indexes and self.grid.currentIndex().isValid():
            indexes = [self.grid.currentIndex()]
        return [int(i.data(TableRowRole)) for i in indexes]

    # --- culling -------------------------------------------------------------------------------------
    def decide(self, change: DecisionChange) -> None:
        if self.session is None:
            return
        rows = self.target_rows()
        t = self.session.table
        if change.label and all(t.labels[r] == change.label for r in rows):
            change = DecisionChange(label="")  # pressing a label's key again clears it (Lightroom)
        if not rows or not self._saving(lambda s: s.decide(rows, change)):
            return
        self.model.rows_changed([int(self.session.table.ids[r]) for r in rows])
        if self.auto_advance.isChecked() and len(rows) == 1:
            self.step(1)
        elif self.stack.currentWidget() is self.loupe:
            self._show_in_loupe()

    def undo(self) -> None:
        if self.session is not None:
            self._saving(lambda s: self.model.rows_changed(s.undo()))

    def redo(self) -> None:
        if self.session is not None:
            self._saving(lambda s: self.model.rows_changed(s.redo()))

    def _saving(self, action: Callable[[CullingSession], object]) -> bool:
        """Run a decision change; a catalog that cannot be written is explained, not a traceback."""
        assert self.session is not None
        try:
            action(self.session)
        except CatalogError as exc:
            QMessageBox.critical(self, "Could not save the decision", str(exc))
            return False
        return True

    def reject_all_shown(self) -> None:
        if self.session is None or not len(self.session.view):
            return
        n = len(self.session.view)
        answer = QMessageBox.question(
            self, "Reject all shown", f"Reject all {n:,} photos shown? (Ctrl+Z undoes it.)"
        )
        if answer == QMessageBox.StandardButton.Yes:
            rows = [int(r) for r in self.session.view]
            if not self._saving(lambda s: s.decide(rows, DecisionChange(reject=True))):
                return
            self.model.rows_changed([int(self.session.table.ids[r]) for r in rows])

    def step(self, delta: int) -> None:
        n = self.model.rowCount()
        if not n:
            return
        row = self.grid.currentIndex().row() if self.grid.currentIndex().isValid() else -1
        new = max(0, min(n - 1, row + delta))
        self.grid.selectionModel().setCurrentIndex(
            self.model.index(new), QItemSelectionModel.SelectionFlag.ClearAndSelect
        )
        if self.stack.currentWidget() is self.loupe:
            self._show_in_loupe()

    # --- loupe ---------------------------------------------------------------------------------------
    def toggle_loupe(self) -> None:
        if self.stack.currentWidget() is self.loupe:
            self.back_to_grid()
        elif self.grid.currentIndex().isValid():
            self.stack.setCurrentWidget(self.loupe)
            self._show_in_loupe()
            self.loupe.setFocus()

    def back_to_grid(self) -> None:
        self.stack.setCurrentWidget(self.grid)
        self.grid.setFocus()

    def _show_in_loupe(self) -> None:
        idx = self.grid.currentIndex()
        if self.session is None or not idx.isValid():
            return
        row = int(idx.data(TableRowRole))
        t = self.session.table
        self.loupe.show_photo(
            t.paths[row],
            t.scores_of(row),
            self.session.why(row),
            t.status[row],
            t.errors[row],
            decision_html(int(t.rating[row]), bool(t.picked[row]), t.labels[row]),
        )

    # --- custom prompt -------------------------------------------------------------------------------
    def score_prompt(self, positive: str, negative: str) -> None:
        if self.session is None or self.session.analysis_id is None or self.session.folder_id is None:
            self.filters.prompt_status.setText("Open and index a folder first.")
            return
        try:
            pair = custom_pair(positive, negative)
        except PromptError as exc:
            self.filters.prompt_status.setText(str(exc))
            return
        if self.prompt_thread is not None and self.prompt_thread.isRunning():
            self.filters.prompt_status.setText("Still scoring the previous pair …")
            return
        worker = PromptWorker(
            self.catalog, self.holder, self.settings, self.session.folder_id, self.session.analysis_id, pair
        )
        worker.finished.connect(self._prompt_scored)
        worker.failed.connect(self._prompt_failed)
        self._prompt_worker = worker
        self._prompt_target = (self.session.folder_id, self.session.analysis_id)
        self.prompt_thread = start_in_thread(worker, self)

    @Slot(str)
    def _prompt_failed(self, message: str) -> None:
        self.filters.prompt_status.setText(f"Could not score: {message}")

    @Slot(object, object, object)
    def _prompt_scored(self, pair: Any, ids: Any, values: Any) -> None:
        if self.session is None or self._prompt_target != (self.session.folder_id, self.session.analysis_id):
            return  # the folder or its analysis changed while this pair was being scored
        self.session.add_prompt_scores(pair, ids, values)
        self._refresh_sort_keys()
        self.desc_action.blockSignals(True)
        self.desc_action.setChecked(True)
        self.desc_action.blockSignals(False)
        self.sort_box.setCurrentText(pair.key)
        self._sort_changed(pair.key)
        self.filters.prompt_status.setText(f"Sorted by “{pair.positive}” vs “{pair.negative}” ({pair.key}).")

    # --- settings, recent, drag and drop, closing ----------------------------------------------------
    def edit_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        if dialog.exec():
            old = self.settings
            self.settings = self.stored = dialog.settings  # what the user confirmed is kept
            self._save_settings()
            if self.settings.catalog_path != old.catalog_path:
                QMessageBox.information(self, "Catalog", "The new catalog is used from the next start.")
            model_options = ("model", "pretrained", "weights", "device", "precision", "size")
            if self.session is not None and any(
                getattr(self.settings, k) != getattr(old, k) for k in model_options
            ):
                self.cancel_indexing(wait=True)
                self.start_indexing()

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for folder in self.settings.recent:
            action = self.recent_menu.addAction(folder)
            action.triggered.connect(lambda _=False, f=folder: self.open_folder(f))
        self.recent_menu.setEnabled(bool(self.settings.recent))

    def _save_settings(self) -> None:
        if self.persist:
            self.stored.save()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile() and Path(urls[0].toLocalFile()).is_dir():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        urls = event.mimeData().urls()
        if urls:
            self.open_folder(urls[0].toLocalFile())

    def closeEvent(self, event: QCloseEvent) -> None:
        self.cancel_indexing(wait=True)
        if self.prompt_thread is not None and self.prompt_thread.isRunning():
            self.prompt_thread.quit()
            self.prompt_thread.wait()
        self.thumbs.wait()
        self.loupe.wait()
        self._save_settings()
        super().closeEvent(event)
