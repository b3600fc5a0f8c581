"""File > Export XMP sidecars…: the open folder's decisions and scores into each photo's sidecar
(culling/handoff.py), off the GUI thread, then a summary. Naming and reject encoding come from
the settings (Settings…)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QThread, Signal, Slot
from PySide6.QtWidgets import QMessageBox

from ...catalog import Catalog, CatalogError
from ...culling.handoff import XmpOptions, XmpReport, folder_photo_ids, write_sidecars
from ..workers import start_in_thread
from .base import Controller
from .moves import MovesController

if TYPE_CHECKING:
    from ..main_window import MainWindow

MAX_LISTED = 12  # problems listed in the message box; the rest are counted


class XmpExportWorker(QObject):
    """Writes the sidecars of one folder (and its sub-folders) in a worker thread."""

    finished = Signal(object)  # XmpReport
    failed = Signal(str)

    def __init__(
        self, catalog: Catalog, folder: Path, recursive: bool, options: XmpOptions, analysis_id: int | None
    ) -> None:
        super().__init__()
        self.catalog, self.folder, self.recursive = catalog, folder, recursive
        self.options, self.analysis_id = options, analysis_id
        self._stop = threading.Event()

    def cancel(self) -> None:
        """Stop after the batch being written (thread-safe)."""
        self._stop.set()

    @Slot()
    def run(self) -> None:
        try:
            ids = folder_photo_ids(self.catalog, self.folder, self.recursive)
            report = write_sidecars(self.catalog, ids, self.options, self.analysis_id, self._stop.is_set)
        except CatalogError as exc:
            self.failed.emit(str(exc))
            return
        except Exception as exc:  # a bug must reach the user as a message, not kill the thread
            self.failed.emit(f"{type(exc).__name__}: {exc}")
            return
        self.finished.emit(report)


class HandoffController(Controller):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.export_action = window.add_action("Export XMP sidecars…", self.export)
        self.export_action.setToolTip(
            "Write each photo's decision and scores into its XMP sidecar for Lightroom, darktable, "
            "digiKam or Capture One (naming and reject encoding: Settings…)"
        )
        window.file_menu.addAction(self.export_action)
        self.export_action.setEnabled(False)
        self.ctx.session_changed.connect(lambda s: self.export_action.setEnabled(s is not None))
        self.worker_thread: QThread | None = None
        self._worker: XmpExportWorker | None = None
        self.last_report: XmpReport | None = None
        self.last_message = ""

    def export(self) -> None:
        session = self.session
        if session is None:
            self.window.say("Open a folder first.")
            return
        if self.worker_thread is not None and self.worker_thread.isRunning():
            self.window.say("Still writing XMP sidecars …")
            return
        if self.window.controller(MovesController).files_busy("export XMP sidecars"):
            return
        session.flush(5.0)  # decisions made a moment ago are in the catalog before it is read
        settings = self.ctx.settings
        options = XmpOptions(naming=settings.sidecar_naming, reject_as=settings.reject_as)
        worker = XmpExportWorker(
            self.ctx.catalog, session.folder, session.recursive, options, session.analysis_id
        )
        worker.finished.connect(self._finished)
        worker.failed.connect(self._failed)
        self._worker = worker
        self.export_action.setEnabled(False)
        self.window.say(f"Writing XMP sidecars in {session.folder} …")
        self.worker_thread = start_in_thread(worker, self.window)

    @Slot(object)
    def _finished(self, report: XmpReport) -> None:
        self.worker_thread, self._worker = None, None  # the thread ends by itself (start_in_thread)
        self.export_action.setEnabled(self.session is not None)
        self.last_report = report
        summary = report.summary().capitalize() + "."
        self.window.say(f"XMP: {report.summary()}")
        problems = report.problems()
        text = summary
        if problems:
            listed = "\n".join(problems[:MAX_LISTED])
            more = f"\n… and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
            text += f"\n\n{listed}{more}"
        self._show("XMP sidecars", text, warn=bool(report.failed))

    @Slot(str)
    def _failed(self, message: str) -> None:
        self.worker_thread, self._worker = None, None
        self.export_action.setEnabled(self.session is not None)
        self.window.say("XMP sidecars were not written.")
        self._show("XMP sidecars", f"The sidecars could not be written: {message}", warn=True)

    def _show(self, title: str, text: str, warn: bool) -> None:
        self.last_message = text
        box = QMessageBox.warning if warn else QMessageBox.information
        box(self.window, title, text)

    def shutdown(self) -> None:
        if self.worker_thread is not None and self.worker_thread.isRunning():
            if self._worker is not None:
                self._worker.cancel()  # ends after the batch in hand: no sidecar is half-written
            self.worker_thread.quit()
            self.worker_thread.wait()
        self.worker_thread = None
