"""Edit ▸ "Move rejects aside…" and "Undo move of rejects": the open folder's rejected frames (with
their sidecars and RAW+JPEG partners) go to FOLDER/_rejected after a confirmation that says exactly
how many files go where; the files move on a worker thread (culling/move_rejects.py does the work,
the catalog follows); afterwards the session reloads and the status line says what happened."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QThread, Signal, Slot
from PySide6.QtWidgets import QMessageBox

from ...catalog import CatalogError
from ...catalog.moves import MovesBusy
from ...culling.move_rejects import (
    DEFAULT_TARGET,
    MoveError,
    MoveResult,
    UndoResult,
    execute,
    plan_moves,
    recover,
    undo_last,
)
from ..workers import start_in_thread
from .base import Controller

if TYPE_CHECKING:
    from ..main_window import MainWindow

MAX_LISTED = 8  # reasons shown in a dialog; the rest are counted


class _Job(QObject):
    """Runs one function on its thread; `finished(result)` or `failed(message)` on the GUI thread."""

    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, work: Callable[[], Any]) -> None:
        super().__init__()
        self._work = work

    @Slot()
    def run(self) -> None:
        try:
            result = self._work()
        except (MoveError, MovesBusy, CatalogError, OSError) as exc:
            self.failed.emit(str(exc))
            return
        self.finished.emit(result)


def _listed(lines: list[str]) -> str:
    shown = lines[:MAX_LISTED]
    more = len(lines) - len(shown)
    return "\n".join(shown) + (f"\n… and {more} more" if more else "")


class MovesController(Controller):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        w = window
        self.worker_thread: QThread | None = None
        self.worker: _Job | None = None
        self.move_action = w.add_action("Move rejects aside…", self.move_rejects)
        self.undo_action = w.add_action("Undo move of rejects", self.undo_move)
        w.edit_menu.addSeparator()
        w.edit_menu.addActions([self.move_action, self.undo_action])

    @property
    def busy(self) -> bool:
        return self.worker_thread is not None and self.worker_thread.isRunning()

    def files_busy(self, what: str) -> bool:
        """The window's one guard for work on the folder's files: True, and the status line says
        so, while rejects are being moved or put back. Indexing, Export XMP and opening a folder
        ask it first (across processes, catalog/moves.moves_lock keeps index and moves apart)."""
        if self.busy:
            self.window.say(f"Rejects are being moved: {what} when that is done.")
        return self.busy

    def _ready(self) -> bool:
        """A folder is open, nothing else moves files, the indexer is not reading them, and every
        decision made so far is in the catalog."""
        if self.session is None or self.busy:
            return False
        if self.window.indexer.indexing:
            self.window.say("Indexing is running: wait for it to finish (or cancel it) to move rejects.")
            return False
        from .handoff import HandoffController  # it asks files_busy: imported here, not above

        exporting = self.window.controller(HandoffController).worker_thread
        if exporting is not None and exporting.isRunning():
            self.window.say("XMP sidecars are being written: move rejects when that is done.")
            return False
        if not self.window.decisions.flush(10):
            self.window.say("Decisions are still being saved; try again in a moment.")
            return False
        return True

    def move_rejects(self) -> None:
        if not self._ready():
            return
        session = self.session
        assert session is not None
        try:
            notes = recover(self.ctx.catalog, session.folder)  # a move killed part-way, settled first
            plan = plan_moves(self.ctx.catalog, session.folder, DEFAULT_TARGET, session.recursive)
        except (MoveError, MovesBusy, CatalogError, OSError) as exc:
            QMessageBox.warning(self.window, "Move rejects aside", str(exc))
            return
        held = plan.held + (
            [f"{len(plan.absent)} rejected photos are no longer on disk."] if plan.absent else []
        )
        if notes:
            session.reload()
        if not plan.frames:
            text = "No rejected photos to move."
            QMessageBox.information(
                self.window, "Move rejects aside", "\n\n".join([text, _listed(held)]).strip()
            )
            return
        question = f"Move {plan.headline()}?"
        details = [line.strip() for line in plan.lines()[1:]]
        body = "\n\n".join(p for p in (question, _listed(details), _listed(held)) if p)
        answer = QMessageBox.question(self.window, "Move rejects aside", body)
        if answer != QMessageBox.StandardButton.Yes:
            return
        catalog = self.ctx.catalog
        self.window.say(f"Moving {plan.files:,} files to {plan.target} …")
        self._start(lambda: execute(catalog, plan), self._moved)

    def undo_move(self) -> None:
        if not self._ready():
            return
        assert self.session is not None
        catalog, folder = self.ctx.catalog, self.session.folder
        self.window.say(f"Putting back the last move of rejects of {folder.name} …")
        self._start(lambda: undo_last(catalog, folder), self._undone)

    def _start(self, work: Callable[[], Any], done: Callable[[Any], None]) -> None:
        job = _Job(work)
        job.finished.connect(done)
        job.failed.connect(self._failed)
        self.worker = job
        self.move_action.setEnabled(False)
        self.undo_action.setEnabled(False)
        self.worker_thread = start_in_thread(job, self.window)

    def _end(self) -> None:
        if self.worker_thread is not None:
            self.worker_thread.quit()
            self.worker_thread.wait()
        self.worker_thread = None
        self.worker = None
        self.move_action.setEnabled(True)
        self.undo_action.setEnabled(True)
        if self.session is not None:
            self.session.reload()  # moved photos leave a folder's view; put-back ones return

    @Slot(object)
    def _moved(self, result: MoveResult) -> None:
        self._end()
        text = (
            f"Moved {result.photos:,} rejected photos ({result.files:,} files) aside; "
            "Edit ▸ Undo move of rejects puts them back."
        )
        if result.failed:
            text = f"{text} {len(result.failed)} could not move and stay where they were."
        if result.held:
            text = f"{text} {len(result.held)} were decided otherwise meanwhile and stay."
        self.window.say(text)
        problems = result.failed + result.held + result.notes
        if problems:
            QMessageBox.warning(self.window, "Move rejects aside", f"{text}\n\n{_listed(problems)}")

    @Slot(object)
    def _undone(self, result: UndoResult) -> None:
        self._end()
        assert result.batch is not None
        text = f"Put back {result.restored:,} files from {result.batch.target}."
        self.window.say(text)
        problems = result.failed + result.lost + result.notes
        if problems:
            QMessageBox.warning(self.window, "Undo move of rejects", f"{text}\n\n{_listed(problems)}")

    @Slot(str)
    def _failed(self, message: str) -> None:
        self._end()
        self.window.say(message)
        QMessageBox.warning(self.window, "Move rejects aside", message)

    def shutdown(self) -> None:
        """Closing waits for a move in progress: files are never left half-moved by the window."""
        if self.worker_thread is not None:
            self.worker_thread.wait()
