"""Culling with the keyboard: pick, reject, unflag, stars, colour labels, undo/redo, reject all shown,
auto-advance. Every change goes through the session, which saves it and announces it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QItemSelectionModel
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMessageBox

from ...catalog import CatalogError
from ...culling.decisions import DecisionChange
from ...culling.session import CullingSession
from ..photo_model import TableRowRole
from .base import Controller

if TYPE_CHECKING:
    from ..main_window import MainWindow

LABEL_KEYS = {"6": "Red", "7": "Yellow", "8": "Green", "9": "Blue"}


class DecisionController(Controller):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        w = window
        self.auto_advance = QAction("Auto-advance", w)
        self.auto_advance.setCheckable(True)
        self.auto_advance.setShortcut(QKeySequence("Shift+A"))
        w.addAction(self.auto_advance)
        w.toolbar.addAction(self.auto_advance)
        self.reject_shown_action = w.add_action("Reject all shown…", self.reject_all_shown, "Ctrl+Shift+X")
        w.toolbar.addAction(self.reject_shown_action)
        self.undo_action = w.add_action("Undo", self.undo, QKeySequence.StandardKey.Undo)
        self.redo_action = w.add_action("Redo", self.redo, "Ctrl+Shift+Z")
        w.add_action("Pick", lambda: self.decide(DecisionChange(pick=True)), "P")
        w.add_action("Reject", lambda: self.decide(DecisionChange(reject=True)), "X")
        w.add_action("Unflag", lambda: self.decide(DecisionChange(unflag=True)), "U")
        for n in range(6):
            w.add_action(f"{n} stars", lambda _=False, n=n: self.decide(DecisionChange(stars=n)), str(n))
        for key, name in LABEL_KEYS.items():
            w.add_action(
                f"Label {name}", lambda _=False, name=name: self.decide(DecisionChange(label=name)), key
            )
        w.edit_menu.addActions([self.undo_action, self.redo_action, self.reject_shown_action])
        w.view_menu.addAction(self.auto_advance)

    def target_rows(self) -> list[int]:
        """Table rows an action applies to: the selection, or the current photo."""
        grid = self.window.grid
        indexes = grid.selectionModel().selectedIndexes()
        if not indexes and grid.currentIndex().isValid():
            indexes = [grid.currentIndex()]
        return [int(r) for i in indexes if (r := i.data(TableRowRole)) is not None]

    def decide(self, change: DecisionChange) -> None:
        session = self.session
        if session is None:
            return
        rows = self.target_rows()
        t = session.table
        if change.label and all(t.labels[r] == change.label for r in rows):
            change = DecisionChange(label="")  # pressing a label's key again clears it (Lightroom)
        if not rows or not self._saving(lambda s: s.decide(rows, change)):
            return
        if self.auto_advance.isChecked() and len(rows) == 1:
            self.step(1)

    def undo(self) -> None:
        if self.session is not None:
            self._saving(lambda s: s.undo())

    def redo(self) -> None:
        if self.session is not None:
            self._saving(lambda s: s.redo())

    def _saving(self, action: Callable[[CullingSession], object]) -> bool:
        """Run a decision change; a catalog that cannot be written is explained, not a traceback."""
        assert self.session is not None
        try:
            action(self.session)
        except CatalogError as exc:
            QMessageBox.critical(self.window, "Could not save the decision", str(exc))
            return False
        return True

    def reject_all_shown(self) -> None:
        session = self.session
        if session is None or not len(session.view):
            return
        n = len(session.view)
        answer = QMessageBox.question(
            self.window, "Reject all shown", f"Reject all {n:,} photos shown? (Ctrl+Z undoes it.)"
        )
        if answer == QMessageBox.StandardButton.Yes:
            rows = [int(r) for r in session.view]
            self._saving(lambda s: s.decide(rows, DecisionChange(reject=True)))

    def step(self, delta: int) -> None:
        """Move the current photo by `delta` (the loupe follows the current photo)."""
        grid, model = self.window.grid, self.window.model
        n = model.rowCount()
        if not n:
            return
        row = grid.currentIndex().row() if grid.currentIndex().isValid() else -1
        new = max(0, min(n - 1, row + delta))
        grid.selectionModel().setCurrentIndex(
            model.index(new), QItemSelectionModel.SelectionFlag.ClearAndSelect
        )
