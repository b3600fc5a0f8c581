"""Culling with the keyboard: pick, reject, unflag, stars, colour labels, undo/redo, reject all shown,
auto-advance. Every change goes through the session, which shows it at once and hands it to its
writer thread (culling/writer.py); the GUI thread never waits on the catalog for a decision.

The writer replies on its own thread; `_Relay.ready` (a Qt signal, so a queued connection to this
controller on the GUI thread) tells the GUI thread to `deliver()` the results. A write that failed
is shown in the status line and explained once in a dialog; the grid already shows the catalog's
values again. Closing the window or opening another folder first writes what is queued
(`CullingSession.close`, bounded by FLUSH_SECONDS)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import QItemSelectionModel, QObject, Qt, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMessageBox

from ...catalog import Catalog
from ...culling.decisions import DecisionChange
from ...culling.handoff import XmpOptions, write_sidecars
from ...culling.session import FLUSH_SECONDS, CullingSession
from ..photo_model import TableRowRole
from ..settings import AppSettings
from .base import Controller

if TYPE_CHECKING:
    from ..main_window import MainWindow

log = logging.getLogger(__name__)

LABEL_KEYS = {"6": "Red", "7": "Yellow", "8": "Green", "9": "Blue"}


class FocusView(Protocol):
    def target_rows(self) -> list[int]: ...
    def step(self, delta: int) -> None: ...


class _Relay(QObject):
    """Emitted on the writer thread; received on the GUI thread (queued connection)."""

    ready = Signal()


class DecisionController(Controller):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        w = window
        self._relay = _Relay()
        self._relay.ready.connect(self.deliver, Qt.ConnectionType.QueuedConnection)
        self._explaining = False  # a failure dialog is open: further failures go to the status line
        # a view that chooses the photo the keys act on and where auto-advance goes (compare: the
        # active pane) instead of the grid's selection; None: the grid
        self.focus_view: FocusView | None = None
        self._session: CullingSession | None = None
        self.ctx.session_changed.connect(self._session_changed)
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
        rows = self.focus_view.target_rows() if self.focus_view is not None else self.target_rows()
        t = session.table
        if change.label and all(t.labels[r] == change.label for r in rows):
            change = DecisionChange(label="")  # pressing a label's key again clears it (Lightroom)
        if not rows:
            return
        session.decide(rows, change)
        if self.auto_advance.isChecked() and len(rows) == 1:
            (self.focus_view or self).step(1)

    def undo(self) -> None:
        if self.session is not None:
            self.session.undo()

    def redo(self) -> None:
        if self.session is not None:
            self.session.redo()

    # --- the writer's results -----------------------------------------------------------------------
    def _session_changed(self, session: CullingSession | None) -> None:
        old, self._session = self._session, session
        if old is not None and old is not session:
            old.wake = None
            old.events.write_failed.disconnect(self._write_failed)
            old.events.write_note.disconnect(self.window.say)
        if session is not None and session is not old:
            session.wake = self._relay.ready.emit  # called on the writer thread
            session.writer.after_write = self._after_write
            session.events.write_failed.connect(self._write_failed)
            session.events.write_note.connect(self.window.say)

    @Slot()
    def deliver(self) -> None:
        if self._session is not None:
            self._session.deliver()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait for the decisions made so far to be written and shown (tests, scripts)."""
        return self._session.flush(timeout) if self._session is not None else True

    def close_session(self) -> None:
        """Before the window closes or another folder opens: write what is queued (bounded)."""
        session = self._session
        if session is not None and session.saving:
            n = session.saving
            self.window.say(f"Saving {n} decision{'s' if n != 1 else ''}…")
            self.window.status_label.repaint()
        if session is not None:
            session.close(FLUSH_SECONDS)

    def _write_failed(self, message: str) -> None:
        self.window.say(message)
        if self._explaining:
            return
        self._explaining = True
        try:
            QMessageBox.critical(
                self.window,
                "Could not save the decision",
                f"{message}\n\nThe photos show what the catalog has; the step left the undo list.",
            )
        finally:
            self._explaining = False

    def _after_write(self, photo_ids: list[int]) -> str | None:
        """On the writer thread, after each saved decision: "write XMP sidecars as I cull"."""
        return write_sidecars_hook(self.ctx.catalog, self.ctx.settings, photo_ids)

    def shutdown(self) -> None:
        self.close_session()

    def reject_all_shown(self) -> None:
        session = self.session
        if session is None or not len(session.view):
            return
        n = len(session.view)
        answer = QMessageBox.question(
            self.window, "Reject all shown", f"Reject all {n:,} photos shown? (Ctrl+Z undoes it.)"
        )
        if answer == QMessageBox.StandardButton.Yes:
            session.decide([int(r) for r in session.view], DecisionChange(reject=True))

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


def write_sidecars_hook(catalog: Catalog, settings: AppSettings, photo_ids: list[int]) -> str | None:
    """ "Write XMP sidecars as I cull" (setting `write_sidecars`), on the writer thread after each
    saved decision, undo and redo: the sidecars of the photos it changed, merged as File > Export
    XMP sidecars does. Returns a status line when a sidecar was skipped or failed (the decision
    stands: it is in the catalog), else None. A CatalogError propagates to the writer, which
    reports it the same way."""
    if not settings.write_sidecars:
        return None
    report = write_sidecars(catalog, photo_ids, XmpOptions(settings.sidecar_naming, settings.reject_as))
    problems = report.problems()
    if not problems:
        return None
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"Decision saved; XMP sidecar {problems[0]}{more}"
