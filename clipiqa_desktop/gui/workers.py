"""Background work for the window: indexing and prompt scoring, each driven from its own QThread.

The pattern (napari/superqt): a QObject worker is moved to a QThread and its `run` slot does the work.
The work that needs the model runs in a child process (indexing/process.py): the thread only starts
it and relays its messages as Qt signals, blocking on the pipe (which releases the GIL), so the GUI
thread never shares the interpreter with torch, a crash in a decoder or the model is reported instead
of taking the window down, and cancel() ends the work at once. Signals carry plain data only (ints,
floats, lists of ids, frozen dataclasses).

The price: each run pays the child's start (a fresh interpreter, ~0.5 s) and, when something needs
scoring, the torch import and the model load (seconds); the window used to keep the model loaded for
the session. A folder with nothing to score never loads torch, in the child as before.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot
from shiboken6 import isValid

from ..catalog import Catalog
from ..indexing.process import ChildProcess, EncodeJob, IndexJob, ScorerSpec
from .settings import AppSettings

log = logging.getLogger(__name__)

POLL_S = 0.1  # how often a relaying thread looks at its cancel deadline while the child is quiet


class ScorerHolder:
    """Turns the settings into the picklable ScorerSpec a child process builds its scorer from.

    The model is no longer loaded in the window's process (see the module docstring); the holder is
    kept so the window's wiring stays as it was."""

    @staticmethod
    def spec_of(settings: AppSettings) -> ScorerSpec:
        """The settings' model; the CLIPIQA_WEIGHTS environment variable applies as on the CLI."""
        from ..scoring.spec import ModelSpec

        spec = ModelSpec.from_options(
            settings.model, settings.pretrained, settings.weights or None, settings.learned_prompts or None
        )
        return ScorerSpec.of(spec, settings.device, settings.precision, settings.engine)


class _ChildWorker(QObject):
    """A worker whose work runs in a child process; cancel() ends it within about half a second."""

    def __init__(self) -> None:
        super().__init__()
        self.cancel_event = threading.Event()
        self._child: ChildProcess | None = None

    @property
    def child_pid(self) -> int | None:
        """The child process's id while one runs (tests use it to kill the child)."""
        child = self._child
        return child.pid if child is not None else None

    def cancel(self) -> None:
        """Stop the work: the child is asked to stop between photos and killed if it has not within
        ~0.5 s (also during a model load or a weights download). Returns at once; the worker's
        thread ends shortly after."""
        self.cancel_event.set()
        child = self._child
        if child is not None:
            child.cancel()

    def kill(self) -> None:
        """End the child now, without waiting for it to reach a batch boundary."""
        self.cancel_event.set()
        child = self._child
        if child is not None:
            child.kill()

    def _attach(self, child: ChildProcess) -> None:
        self._child = child
        if self.cancel_event.is_set():  # cancel() came before the child existed
            child.cancel()

    def _encode(self, scorer: ScorerSpec, texts: list[str]) -> Any:
        """Text features of `texts` from a child process (the window never loads torch)."""
        from ..indexing.process import start_encoding

        if self.cancel_event.is_set():
            raise _Stopped("cancelled")
        child = start_encoding(EncodeJob(scorer, tuple(texts), logging.getLogger().getEffectiveLevel()))
        self._attach(child)
        result: list[tuple[Any, ...]] = []

        self._relay(child, result.append)  # the encoder sends one message, its last
        tag = result[0][0]
        if tag == "features":
            return result[0][1]
        if tag == "stopped":
            raise _Stopped("cancelled")
        raise _Stopped(result[0][2])

    def _relay(self, child: ChildProcess, on_message: Any) -> None:
        """Hand each message to `on_message` until the final one. The child is reaped before the
        final message is handed on: the window waits for this thread when that signal arrives."""
        try:
            while True:
                message = child.next_message(POLL_S)
                if message is None:
                    continue
                if child.done:
                    child.close()
                on_message(message)
                if child.done:
                    return
        finally:
            child.close()


class IndexWorker(_ChildWorker):
    """Indexes one folder in a child process. Signals, in order: started, progress*, batch*
    (interleaved), then exactly one of finished(summary) / failed(message) / weights_missing(message).
    After cancel(), finished carries a summary with `cancelled` set."""

    started = Signal()
    progress = Signal(int, int, float, float)  # done, total, photos/s, eta seconds (-1 = unknown)
    batch = Signal(list)  # catalog ids written by one committed batch
    finished = Signal(object)  # IndexSummary (a plain dataclass)
    failed = Signal(str)
    weights_missing = Signal(str)

    def __init__(self, catalog: Catalog, holder: ScorerHolder, settings: AppSettings, folder: Path) -> None:
        super().__init__()
        self.catalog, self.holder, self.settings, self.folder = catalog, holder, settings, folder
        self._committed = 0  # photos committed (scored or recorded as failed), per the progress reports

    @Slot()
    def run(self) -> None:
        self.started.emit()
        started = time.monotonic()
        try:
            from ..indexing.pipeline import IndexOptions
            from ..indexing.process import start_indexing

            if self.cancel_event.is_set():
                self.finished.emit(self._stopped_summary(0.0))
                return
            job = IndexJob(
                self.catalog.address,  # its file, or a PostgreSQL address
                str(self.folder),
                self.holder.spec_of(self.settings),
                IndexOptions(long_side=self.settings.size_option(), recursive=self.settings.recursive),
                logging.getLogger().getEffectiveLevel(),
            )
            child = start_indexing(job)
            self._attach(child)
            self._relay(child, self._on_message)
        except Exception as exc:  # a bug or an environment fault (cannot start a process): report it
            log.exception("indexing %s failed", self.folder)
            if self.cancel_event.is_set():
                self.finished.emit(self._stopped_summary(time.monotonic() - started))
            else:
                self.failed.emit(f"the indexer could not run ({type(exc).__name__}: {exc})")

    def _on_message(self, message: tuple[Any, ...]) -> None:
        tag = message[0]
        if tag == "progress":
            _, done, total, rate, eta = message
            self._committed = done
            self.progress.emit(done, total, rate, eta)
        elif tag == "batch":
            self.batch.emit(message[1])
        elif tag == "finished":
            self.finished.emit(message[1])
        elif tag == "stopped":
            self.finished.emit(self._stopped_summary(message[1]))
        elif tag == "failed":
            _, kind, text = message
            (self.weights_missing if kind == "weights_missing" else self.failed).emit(text)

    def _stopped_summary(self, seconds: float) -> Any:
        """The summary of a run that cancel() had to kill: what the progress reports said was
        committed (scored or failed photos), and the folder's analysis as the catalog has it."""
        from ..catalog import CatalogError
        from ..indexing.pipeline import IndexSummary

        folder_id = analysis_id = None
        try:
            folder_id = self.catalog.folder_id(self.folder, create=False)
            if folder_id is not None:
                analysis_id = self.catalog.last_analysis(folder_id)
        except CatalogError as exc:  # busy or gone: the window reloads the folder anyway
            log.warning("after cancelling: %s", exc)
        committed = self._committed
        return IndexSummary(folder_id or 0, analysis_id, indexed=committed, cancelled=True, seconds=seconds)


class PromptWorker(_ChildWorker):
    """Scores one custom prompt pair over the folder's stored embeddings. The texts' features come
    from the catalog's cache; a pair never seen with this model is encoded in a child process (the
    text tower needs torch and the model: seconds, which the window must not wait for)."""

    finished = Signal(object, object, object)  # pair, photo ids (ndarray), values (ndarray)
    failed = Signal(str)

    def __init__(
        self,
        catalog: Catalog,
        holder: ScorerHolder,
        settings: AppSettings,
        folder_id: int,
        analysis_id: int,
        pair: Any,
    ) -> None:
        super().__init__()
        self.catalog, self.holder, self.settings = catalog, holder, settings
        self.folder_id, self.analysis_id, self.pair = folder_id, analysis_id, pair

    @Slot()
    def run(self) -> None:
        try:
            from ..culling.prompts import prompt_scores
            from ..scoring import ScoringError

            try:
                # The texts must be encoded by the model that made the stored embeddings,
                # whatever the settings say now.
                current = self.holder.spec_of(self.settings)
                model_id = self.catalog.analysis(self.analysis_id)[0]
                spec = current.model_spec().for_model_id(model_id)
                scorer = ScorerSpec.of(spec, current.device, current.precision, current.engine)
                ids, values = prompt_scores(
                    self.catalog,
                    [self.folder_id],
                    self.analysis_id,
                    [self.pair],
                    lambda texts: self._encode(scorer, texts),
                )
            except (ScoringError, _Stopped) as exc:
                self.failed.emit(str(exc))
                return
            self.finished.emit(self.pair, ids, values[:, 0])
        except Exception as exc:
            log.exception("prompt scoring failed")
            self.failed.emit(f"{type(exc).__name__}: {exc}")


class SearchWorker(_ChildWorker):
    """Ranks the open photos by a text from their stored embeddings (culling/search.py). A text never
    searched with the folder's model is encoded in a child process, as PromptWorker does; the
    embeddings of an earlier search of the same photos are reused (reading them is most of the cost)."""

    finished = Signal(object, object)  # SearchResult, the ShootEmbeddings used (for the next search)
    failed = Signal(str)

    def __init__(
        self,
        catalog: Catalog,
        holder: ScorerHolder,
        settings: AppSettings,
        folder_ids: list[int],
        analysis_id: int,
        text: str,
        embeddings: Any = None,
    ) -> None:
        super().__init__()
        self.catalog, self.holder, self.settings = catalog, holder, settings
        self.folder_ids, self.analysis_id, self.text = folder_ids, analysis_id, text
        self.embeddings = embeddings

    @Slot()
    def run(self) -> None:
        try:
            from ..culling.search import SearchError, search
            from ..scoring import ScoringError

            try:
                result, used = search(
                    self.catalog,
                    self.folder_ids,
                    self.analysis_id,
                    self.text,
                    self._encode_text,
                    self.embeddings,
                )
            except (SearchError, ScoringError, _Stopped) as exc:
                self.failed.emit(str(exc))
                return
            self.finished.emit(result, used)
        except Exception as exc:
            log.exception("search failed")
            self.failed.emit(f"{type(exc).__name__}: {exc}")

    def _encode_text(self, texts: list[str]) -> Any:
        # by the model that made the stored embeddings, whatever the settings say now
        current = self.holder.spec_of(self.settings)
        spec = current.model_spec().for_model_id(self.catalog.analysis(self.analysis_id)[0])
        return self._encode(ScorerSpec.of(spec, current.device, current.precision, current.engine), texts)


class _Stopped(Exception):
    """The prompt encoder ended without features (cancelled, failed, died); the text says why."""


# Every worker thread this module starts, so tests can assert that none outlives its test, and
# every worker it runs, so a benchmark can watch one without reaching into the window.
live_threads: weakref.WeakSet[QThread] = weakref.WeakSet()
live_workers: weakref.WeakSet[QObject] = weakref.WeakSet()


class WorkerThread(QThread):
    """A worker's thread, deleted (deleteLater) once it has finished, so a window that searches,
    groups and fits all day does not keep one QThread child per run. Controllers keep the handle
    to ask whether their work still runs: once the thread is deleted, the handle reads as a
    finished thread (isRunning False, wait True, quit nothing) instead of raising."""

    def isRunning(self) -> bool:
        return isValid(self) and super().isRunning()

    def isFinished(self) -> bool:
        return not isValid(self) or super().isFinished()

    def wait(self, *args: Any) -> bool:
        return not isValid(self) or super().wait(*args)

    def quit(self) -> None:
        if isValid(self):
            super().quit()


def start_in_thread(worker: QObject, parent: QObject) -> QThread:
    """Move `worker` to a new QThread, run its `run` slot there, and clean both up when it ends
    (the thread too: see WorkerThread)."""
    thread = WorkerThread(parent)
    live_threads.add(thread)
    live_workers.add(worker)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)  # type: ignore[attr-defined]
    # Qt's own quit slot, queued to the GUI thread as before: a Python method (the override above)
    # would be called in the worker's thread at once, ending it, and deleting the worker, before
    # the controller's slot for the same signal ran (its sender() would then be gone)
    quit_slot = super(WorkerThread, thread).quit
    for name in ("finished", "failed", "weights_missing"):
        signal = getattr(worker, name, None)
        if signal is not None:
            signal.connect(quit_slot)
    thread.finished.connect(worker.deleteLater)
    thread.finished.connect(thread.deleteLater)
    thread.start()
    return thread
