"""The grid's view of the session: sort, descending, thumbnail size, the filter panel and the photo
count; keeps the current and selected photos across every model change."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QSize, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QDockWidget, QLabel, QScrollArea, QSlider

from ...culling.session import CullingSession, FilterState
from ..filter_panel import FilterPanel
from ..photo_model import PhotoIdRole
from .base import Controller

if TYPE_CHECKING:
    from ..main_window import MainWindow


class SelectionKeeper:
    """Keeps the current and selected photos (by id) across model resets, and makes sure the photo
    the keys act on is always visibly selected: with no other selection, the current one is."""

    def __init__(self, window: MainWindow) -> None:
        self.grid, self.model = window.grid, window.model
        self._saved: tuple[int | None, list[int]] = (None, [])
        self.model.modelAboutToBeReset.connect(self._remember)
        self.model.modelReset.connect(self._restore)
        self.model.rowsInserted.connect(self._ensure_current)

    def _remember(self) -> None:
        cur = self.grid.currentIndex()
        current = cur.data(PhotoIdRole) if cur.isValid() else None
        selected = [i.data(PhotoIdRole) for i in self.grid.selectionModel().selectedIndexes()]
        self._saved = (current, selected)

    def _restore(self) -> None:
        current, selected = self._saved
        self._saved = (None, [])
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

    def _ensure_current(self, _parent: QModelIndex, _first: int, _last: int) -> None:
        if not self.grid.currentIndex().isValid() and self.model.rowCount():
            self.grid.selectionModel().setCurrentIndex(
                self.model.index(0), QItemSelectionModel.SelectionFlag.ClearAndSelect
            )


class ViewController(Controller):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        w = window
        self.keeper = SelectionKeeper(w)
        tb = w.toolbar
        tb.addWidget(QLabel(" Sort "))
        self.sort_box = QComboBox()
        self.sort_box.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.sort_box.setMinimumWidth(130)
        self.sort_box.currentTextChanged.connect(self.sort_changed)
        tb.addWidget(self.sort_box)
        self.desc_action = QAction("Descending", w)
        self.desc_action.setCheckable(True)
        self.desc_action.toggled.connect(lambda _: self.sort_changed(self.sort_box.currentText()))
        tb.addAction(self.desc_action)
        tb.addSeparator()
        tb.addWidget(QLabel(" Size "))
        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setRange(80, 400)
        self.size_slider.setValue(w.delegate.thumb_size)
        self.size_slider.setMaximumWidth(140)
        self.size_slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.size_slider.valueChanged.connect(self.set_thumb_size)
        tb.addWidget(self.size_slider)
        tb.addSeparator()

        self.filters = FilterPanel()
        self.filters.changed.connect(self.apply_filters)
        scroll = QScrollArea()
        scroll.setWidget(self.filters)
        scroll.setWidgetResizable(True)
        dock = QDockWidget("Filters", w)
        dock.setObjectName("filters")
        dock.setWidget(scroll)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        w.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        self.ctx.session_changed.connect(self._session_changed)

    # --- following the session -------------------------------------------------------------------
    def _session_changed(self, session: CullingSession | None) -> None:
        if session is not None:
            key = self.sort_box.currentText()  # the previous folder's sort, when this one has it
            session.set_sort(key if key in session.sort_keys else "name", self.desc_action.isChecked())
            session.set_filters(self.filters.state())
            session.events.view_changed.connect(self.update_count)
            session.events.rows_changed.connect(lambda _ids: self.update_count())
            session.events.columns_changed.connect(self.refresh_sort_keys)
        self.window.model.set_session(session)
        self.refresh_sort_keys()
        self.update_count()
        grid = self.window.grid
        if self.window.model.rowCount():
            grid.setCurrentIndex(self.window.model.index(0))
        grid.setFocus()

    def refresh_sort_keys(self) -> None:
        session = self.session
        if session is None:
            return
        self.sort_box.blockSignals(True)  # the box shows the session's sort; it does not set it
        self.sort_box.clear()
        self.sort_box.addItems(session.sort_keys)
        self.sort_box.setCurrentText(session.sort_key)
        self.sort_box.blockSignals(False)

    def sort_by(self, key: str, descending: bool) -> None:
        """Sort by `key` (a score column, name, captured, rating), as if chosen in the toolbar."""
        self.desc_action.blockSignals(True)
        self.desc_action.setChecked(descending)
        self.desc_action.blockSignals(False)
        self.sort_box.setCurrentText(key)
        self.sort_changed(key)

    def sort_changed(self, key: str) -> None:
        if self.session is None or not key:
            return
        self.session.set_sort(key, self.desc_action.isChecked())

    def apply_filters(self, state: FilterState) -> None:
        if self.session is not None:
            self.session.set_filters(state)

    def set_thumb_size(self, size: int) -> None:
        w = self.window
        w.delegate.set_thumb_size(size)
        w.grid.setIconSize(QSize(size, size))
        w.model.layoutAboutToBeChanged.emit()
        w.model.layoutChanged.emit()

    def update_count(self) -> None:
        session = self.session
        if session is None:
            self.filters.count_label.setText("no folder open")
            return
        shown, total = len(session.view), len(session.table)
        text = f"<b>{shown:,}</b> of {total:,} photos"
        if total and not shown and session.filters.active:
            warning = "no photo matches the filters (Show all clears them)"
            text += f" — <span style='color:#e5484d'>{warning}</span>"
        hidden_missing = session.table.status.count("missing")
        if hidden_missing and "missing" not in session.filters.statuses:
            text += f"<br>{hidden_missing:,} missing file(s) not shown (their decisions are kept)"
        self.filters.count_label.setText(text)
