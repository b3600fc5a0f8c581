"""Indexing the open folder in the background: the worker, its progress in the status bar, Cancel,
the failed photos, the missing-weights dialog, and merging committed batches into the session
(at most 4 times a second; the grid applies them row by row)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QThread, QTimer, Slot
from PySide6.QtWidgets import QMessageBox, QProgressBar, QPushButton

from ...culling.session import CullingSession
from ...scoring.constants import NO_MODEL
from ..dialogs import FailedDialog, WeightsDialog
from ..workers import IndexWorker, start_in_thread
from .base import Controller
from .folder import has_photos_below
from .moves import MovesController

if TYPE_CHECKING:
    from ..main_window import MainWindow

APPLY_INTERVAL_MS = 250  # indexed batches are merged into the grid at most 4 times a second
PHOTO_KINDS = "JPEG, HEIC, PNG, TIFF, WebP and camera RAW files"


def no_photos_message(folder: Path, recursive: bool) -> str:
    """What to say when a folder turns out to hold no photo at all, and what to try."""
    if not recursive and has_photos_below(folder):
        return (
            f"No photos directly in {folder.name}, but its sub-folders hold some: "
            "tick “Include sub-folders” in the toolbar."
        )
    where = f"{folder.name} or its sub-folders" if recursive else folder.name
    return f"No photos in {where}. clipiqa-desktop reads {PHOTO_KINDS}; open the folder that holds them."


class IndexingController(Controller):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        w = window
        self.worker_thread: QThread | None = None
        self.worker: IndexWorker | None = None
        self.last_failures: list[tuple[str, str]] = []
        self._pending_ids: list[int] = []
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(240)
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(lambda: self.cancel())
        self.failed_button = QPushButton("")
        self.failed_button.setVisible(False)
        self.failed_button.clicked.connect(self.show_failures)
        for b in (self.failed_button, self.progress, self.cancel_button):
            w.add_status_widget(b)
        w.view_menu.addAction(w.add_action("Failed photos…", self.show_failures))
        self._apply_timer = QTimer(self)
        self._apply_timer.setInterval(APPLY_INTERVAL_MS)
        self._apply_timer.timeout.connect(self._apply_batches)
        self.ctx.session_changed.connect(self._session_changed)
        self.ctx.settings_changed.connect(self._settings_changed)

    @property
    def indexing(self) -> bool:
        return self.worker_thread is not None and self.worker_thread.isRunning()

    def _session_changed(self, session: CullingSession | None) -> None:
        self.cancel(wait=True)
        self._pending_ids = []
        if session is not None:
            self.start()

    def _settings_changed(self, old: Any, new: Any) -> None:
        model_options = (
            "model",
            "pretrained",
            "weights",
            "device",
            "precision",
            "engine",
            "size",
            "learned_prompts",
        )
        if self.session is not None and any(getattr(new, k) != getattr(old, k) for k in model_options):
            self.cancel(wait=True)
            self.start()

    def start(self) -> None:
        session = self.session
        if session is None or self.window.controller(MovesController).files_busy("index again"):
            return
        self.last_failures = []
        self.failed_button.setVisible(False)
        worker = IndexWorker(self.ctx.catalog, self.ctx.holder, self.ctx.settings, session.folder)
        worker.started.connect(self._started)
        worker.progress.connect(self._progress)
        worker.batch.connect(self._batch)
        worker.finished.connect(self._finished)
        worker.failed.connect(self._failed)
        worker.weights_missing.connect(self._weights_missing)
        self.worker = worker
        self.worker_thread = start_in_thread(worker, self.window)
        self._apply_timer.start()

    def cancel(self, wait: bool = False) -> None:
        """Ask the indexer to stop after its current batch; with `wait`, block until its thread has
        ended (never leave a running QThread behind: Qt aborts when one is destroyed)."""
        if self.worker is not None:
            self.worker.cancel()
        if wait and self.worker_thread is not None:
            self.worker_thread.quit()
            self.worker_thread.wait()
            self.worker_thread = None
            self.worker = None

    def shutdown(self) -> None:
        self.cancel(wait=True)

    def _stale(self) -> bool:
        """True in a slot called by a worker that is no longer the current one (a folder switch or a
        settings change replaced it while its last signals were still queued)."""
        return self.sender() is not self.worker

    @Slot()
    def _started(self) -> None:
        if self._stale():
            return
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.cancel_button.setVisible(True)
        self.window.say("Looking for new and changed photos …")

    @Slot(int, int, float, float)
    def _progress(self, done: int, total: int, rate: float, eta: float) -> None:
        if self._stale():
            return
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        eta_text = f", {eta:.0f} s left" if eta >= 0 else ""
        self.window.say(f"Scoring {done:,} of {total:,} photos — {rate:.1f} photos/s{eta_text}")

    @Slot(list)
    def _batch(self, ids: list[int]) -> None:
        if self._stale():
            return
        self._pending_ids.extend(ids)

    def _apply_batches(self) -> None:
        """Merge committed batches into the session; the grid updates just those rows."""
        if not self._pending_ids or self.session is None:
            if not self.indexing:
                self._apply_timer.stop()
            return
        ids, self._pending_ids = self._pending_ids, []
        self.window.thumbs.invalidate(ids)  # before the rows repaint and ask for their thumbnails
        self.session.apply_indexed(ids)

    @Slot(object)
    def _finished(self, summary: Any) -> None:
        if self._stale():
            return
        self._apply_batches()
        self._done()
        session = self.session
        changed = summary.indexed or summary.missing or summary.returned or summary.failed
        if session is not None and summary.analysis_id is not None and changed:
            session.reload()  # missing and returned photos; applied row by row like a merge
            session.rescore_prompts()
        self.last_failures = list(summary.failed)
        if session is not None:
            t = session.table
            self.last_failures = [
                (p, e or "") for p, s, e in zip(t.paths, t.status, t.errors, strict=True) if s == "error"
            ]
        if session is not None and not len(session.table) and not summary.cancelled:
            self.window.say(no_photos_message(session.folder, session.recursive))
            return
        parts = [f"{summary.indexed:,} scored", f"{summary.unchanged:,} unchanged", *summary.notes()]
        state = "Cancelled" if summary.cancelled else "Done"
        self.window.say(f"{state} in {summary.seconds:.1f} s: " + ", ".join(parts))
        if self.last_failures:
            self.failed_button.setText(f"{len(self.last_failures)} failed — show")
            self.failed_button.setVisible(True)

    @Slot(str)
    def _failed(self, message: str) -> None:
        if self._stale():
            return
        self._done()
        self.window.say(f"Indexing stopped: {message}")
        QMessageBox.warning(self.window, "Indexing stopped", message)

    @Slot(str)
    def _weights_missing(self, message: str) -> None:
        if self._stale():
            return
        self._done()
        self.window.say("Scoring needs the CLIP weights (see the dialog).")
        dialog = WeightsDialog(message, self.window)
        result = dialog.exec()
        if result == WeightsDialog.PICK and dialog.weights_file:
            self.ctx.update_settings(weights=dialog.weights_file)  # restarts the indexer
        elif result == WeightsDialog.DOWNLOAD:
            self.start()
        elif result == WeightsDialog.WITHOUT_CLIP:  # this session: the pixel measures only
            self.ctx.update_settings(run_only=True, model=NO_MODEL)  # restarts the indexer

    def _done(self) -> None:
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        if self.worker_thread is not None:
            self.worker_thread.quit()
            self.worker_thread.wait(10_000)
        self.worker_thread = None
        self.worker = None

    def show_failures(self) -> None:
        if self.last_failures:
            FailedDialog(self.last_failures, self.window).exec()
        else:
            self.window.say("No photo failed.")
