"""The loupe: Space/Enter/E toggles it, Escape returns to the grid, Z zooms, F toggles focus peaking,
←/→ step. It shows the current photo of the grid and follows both the current photo and its
decisions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QModelIndex

from ...culling.session import CullingSession
from ..delegate import decision_html
from ..photo_model import PhotoIdRole, TableRowRole
from .base import Controller

if TYPE_CHECKING:
    from ..main_window import MainWindow


class LoupeController(Controller):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        w = window
        self.loupe = w.loupe
        self.loupe_action = w.add_action("Loupe", self.toggle_loupe, "Space")
        w.add_action("Loupe (Enter)", self.toggle_loupe, "Return")
        w.add_action("Loupe (E)", self.toggle_loupe, "E")
        w.toolbar.addAction(self.loupe_action)
        w.add_action("Back to grid", self.back_to_grid, "Escape")
        w.add_action("Zoom fit ↔ 100 %", self.loupe.toggle_zoom, "Z", widget=self.loupe)
        w.add_action("Focus peaking on/off", self.loupe.toggle_peaking, "F", widget=self.loupe)
        w.add_action("Next photo", lambda: w.decisions.step(1), "Right", widget=self.loupe)
        w.add_action("Previous photo", lambda: w.decisions.step(-1), "Left", widget=self.loupe)
        w.view_menu.addAction(self.loupe_action)
        w.grid.doubleClicked.connect(lambda _: self.toggle_loupe())
        w.grid.selectionModel().currentChanged.connect(self._current_changed)
        self.ctx.session_changed.connect(self._session_changed)

    @property
    def showing(self) -> bool:
        return self.window.stack.currentWidget() is self.loupe

    def toggle_loupe(self) -> None:
        if self.showing:
            self.back_to_grid()
        elif self.window.grid.currentIndex().isValid():
            self.window.stack.setCurrentWidget(self.loupe)
            self.show_current()
            self.loupe.setFocus()

    def back_to_grid(self) -> None:
        self.window.stack.setCurrentWidget(self.window.grid)
        self.window.grid.setFocus()

    def show_current(self) -> None:
        idx = self.window.grid.currentIndex()
        session = self.session
        if session is None or not idx.isValid() or idx.data(TableRowRole) is None:
            return
        row = int(idx.data(TableRowRole))
        t = session.table
        self.loupe.show_photo(
            t.paths[row],
            t.scores_of(row),
            session.why(row),
            t.status[row],
            t.errors[row],
            decision_html(int(t.rating[row]), bool(t.picked[row]), t.labels[row]),
        )

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if self.showing and current.isValid():
            self.show_current()

    def _session_changed(self, session: CullingSession | None) -> None:
        if session is not None:
            session.events.decisions_changed.connect(self._decisions_changed)

    def _decisions_changed(self, ids: Sequence[int]) -> None:
        current = self.window.grid.currentIndex()
        if self.showing and current.isValid() and current.data(PhotoIdRole) in set(ids):
            self.show_current()  # the same photo: its decision line is redrawn, not decoded again

    def shutdown(self) -> None:
        self.loupe.shutdown()
