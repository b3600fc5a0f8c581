"""The grid's view of the session: sort, descending, thumbnail size, the filter panel and the photo
count; keeps the current and selected photos across every model change."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QSize, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QDockWidget, QLabel, QScrollArea, QSlider

from ...culling.session import CullingSession, FilterState
from ...measures.registry import attribute_info
from ..filter_panel import FIXED_KEYS, FilterPanel
from ..photo_model import PhotoIdRole
from .base import Controller

if TYPE_CHECKING:
    from ..main_window import MainWindow


# Sort keys that are not attributes, as the sort box reads them.
FIELD_LABELS = {"name": "Name", "captured": "Capture time", "rating": "Rating"}


def sort_label(key: str) -> str:
    """'focus' -> 'Focus', 'sharpness' -> 'Sharpness (CLIP-IQA)', 'captured' -> 'Capture time'."""
    return FIELD_LABELS.get(key) or attribute_info(key).label


class SortBox(QComboBox):
    """The sort box: readable names shown, the session's sort keys kept as the items' data."""

    def set_keys(self, keys: list[str], current: str) -> None:
        """Replace the items without announcing it (the box shows the session's sort)."""
        self.blockSignals(True)
        self.clear()
        for key in keys:
            self.addItem(sort_label(key), key)
            if key not in FIELD_LABELS:
                info = attribute_info(key)
                self.setItemData(self.count() - 1, f"{info.help}\n{info.scale}", Qt.ItemDataRole.ToolTipRole)
        self.setCurrentIndex(max(0, self.findData(current)))
        self.blockSignals(False)

    def current_key(self) -> str:
        key = self.currentData()
        return key if isinstance(key, str) else ""

    def set_current_key(self, key: str) -> None:
        """Show `key` (announced through currentIndexChanged like a choice in the box)."""
        index = self.findData(key)
        if index >= 0:
            self.setCurrentIndex(index)


class SelectionKeeper:
    """Keeps the current and selected photos (by id) across model resets, and makes sure the photo
    the keys act on is always visibly selected: with no other selection, the current one is.

    A photo that a stack closed over (S, Ctrl+G, a regroup, another "best by") is followed to the
    cell standing for its stack (`CullingSession.shown_row_of`), so the next P or X acts on that
    stack's shown frame, never on the shoot's first photo."""

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
        rows = list(dict.fromkeys(r for pid in selected if (r := self._shown_row(pid)) is not None))
        cur_row = self._shown_row(current) if current is not None else None
        if cur_row is None and self.model.rowCount():
            cur_row = rows[0] if rows else 0
        if cur_row is None:
            return
        sel.setCurrentIndex(self.model.index(cur_row), flags.NoUpdate if rows else flags.ClearAndSelect)
        for row in rows:
            sel.select(self.model.index(row), flags.Select)

    def _shown_row(self, photo_id: int) -> int | None:
        """The grid row of a photo, or of the collapsed stack it is hidden in."""
        row = self.model.row_of(photo_id)
        session = self.model.session
        if row is None and session is not None:
            row = session.shown_row_of(photo_id)  # the model was just reset: its rows are the view's
        return row

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
        self.sort_box = SortBox()
        self.sort_box.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.sort_box.setMinimumWidth(170)
        self.sort_box.currentIndexChanged.connect(lambda _i: self.sort_changed(self.sort_box.current_key()))
        tb.addWidget(self.sort_box)
        self.desc_action = QAction("Descending", w)
        self.desc_action.setCheckable(True)
        self.desc_action.toggled.connect(lambda _: self.sort_changed(self.sort_box.current_key()))
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
            key = self.sort_box.current_key()  # the previous folder's sort, when this one has it
            session.set_sort(key if key in session.sort_keys else "name", self.desc_action.isChecked())
            self.refresh_columns(session, emit=False)
            session.set_filters(self.filters.state())
            session.events.view_changed.connect(self.update_count)
            session.events.rows_changed.connect(self._rows_changed)
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
        self.sort_box.set_keys(session.sort_keys, session.sort_key)  # shows the sort; does not set it
        self.refresh_columns(session)

    def _rows_changed(self, _ids: object) -> None:
        session = self.session
        if session is not None:
            self.refresh_columns(session)  # indexing may bring focus, faces, a larger count
        self.update_count()

    def refresh_columns(self, session: CullingSession, emit: bool = True) -> None:
        """Tell the filter panel which attributes this folder has values for (and why not), and
        the shoot's maximum of each count. Column-wise numpy: cheap at 20,000 photos."""
        attributes = session.table.attributes
        keys = list(dict.fromkeys([*FIXED_KEYS, *attributes]))
        maxima = {k: session.count_maximum(k) for k in keys if attribute_info(k).kind == "count"}
        panel = self.filters
        if not emit:
            panel.blockSignals(True)
        try:
            panel.set_columns(attributes, session.unavailable(keys), maxima)
        finally:
            panel.blockSignals(False)

    def sort_by(self, key: str, descending: bool) -> None:
        """Sort by `key` (a score column, name, captured, rating), as if chosen in the toolbar."""
        self.desc_action.blockSignals(True)
        self.desc_action.setChecked(descending)
        self.desc_action.blockSignals(False)
        self.sort_box.blockSignals(True)
        self.sort_box.set_current_key(key)
        self.sort_box.blockSignals(False)
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
