"""Background work for the window: indexing and prompt scoring, each in its own QThread.

The pattern (napari/superqt): a QObject worker is moved to a QThread; its `run` slot drives the
plain-Python pipeline, which calls back between batches; cancel is a threading.Event checked there.
Signals carry plain data only (ints, floats, lists of ids, frozen dataclasses). The model lives in a
LazyScorer created and loaded inside the worker thread, never on the GUI thread; it is kept for the
next folder so it loads once per session.
"""

from __future__ import annotations

import logging
import threading
import weakref
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from ..catalog import Catalog
from .settings import AppSettings

log = logging.getLogger(__name__)


class ScorerHolder:
    """The LazyScorer of the current model, kept so the model loads once per session. Creating one
    imports no torch; `LazyScorer.get()` (in a worker thread) loads torch and the model."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[Any, ...] | None = None
        self._lazy: Any = None

    @staticmethod
    def spec_of(settings: AppSettings) -> Any:
        from ..scoring.spec import ModelSpec

        return ModelSpec.from_options(settings.model, settings.pretrained, settings.weights or None)

    def get(self, settings: AppSettings, spec: Any = None) -> Any:
        """The LazyScorer for `spec` (default: the settings' model) on the settings' device."""
        from ..scoring.spec import LazyScorer

        spec = spec or self.spec_of(settings)
        key = (spec, settings.device, settings.precision)
        with self._lock:
            if self._lazy is None or key != self._key:
                self._lazy = LazyScorer(spec, settings.device, settings.precision)
                self._key = key
            return self._lazy


class IndexWorker(QObject):
    """Indexes one folder. Signals, in order: started, progress*, batch* (interleaved), then exactly one
    of finished(summary) / failed(message) / weights_missing(message)."""

    started = Signal()
    progress = Signal(int, int, float, float)  # done, total, photos/s, eta seconds (-1 = unknown)
    batch = Signal(list)  # catalog ids written by one committed batch
    finished = Signal(object)  # IndexSummary (a plain dataclass)
    failed = Signal(str)
    weights_missing = Signal(str)

    def __init__(self, catalog: Catalog, holder: ScorerHolder, settings: AppSettings, folder: Path) -> None:
        super().__init__()
        self.catalog, self.holder, self.settings, self.folder = catalog, holder, settings, folder
        self.cancel_event = threading.Event()

    def cancel(self) -> None:
        self.cancel_event.set()

    @Slot()
    def run(self) -> None:
        self.started.emit()
        try:
            from ..indexing.pipeline import IndexingError, IndexOptions, index_folder
            from ..scoring import ScoringError, WeightsUnavailable

            lazy = self.holder.get(self.settings)
            options = IndexOptions(long_side=self.settings.size_option())
            try:
                summary = index_folder(
                    self.catalog,
                    lazy,
                    self.folder,
                    options,
                    on_progress=lambda p: self.progress.emit(
                        p.done, p.total, p.photos_per_s, -1.0 if p.eta_s is None else p.eta_s
                    ),
                    on_batch=self.batch.emit,
                    cancel=self.cancel_event,
                )
            except WeightsUnavailable as exc:
                self.weights_missing.emit(str(exc))
                return
            except (IndexingError, ScoringError) as exc:
                self.failed.emit(str(exc))
                return
            self.finished.emit(summary)
        except Exception as exc:  # a bug or an environment fault: report it, never a dead thread
            log.exception("indexing %s failed", self.folder)
            self.failed.emit(f"{type(exc).__name__}: {exc}")


class PromptWorker(QObject):
    """Scores one custom prompt pair over the folder's stored embeddings."""

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

            def encode(texts: list[str]) -> Any:
                return self.holder.get(self.settings, spec).get().text_features(texts).cpu().numpy()

            try:
                # The texts must be encoded by the model that made the stored embeddings,
                # whatever the settings say now.
                spec = self.holder.spec_of(self.settings).for_model_id(
                    self.catalog.analysis(self.analysis_id)[0]
                )
                ids, values = prompt_scores(
                    self.catalog, [self.folder_id], self.analysis_id, [self.pair], encode
                )
            except ScoringError as exc:
                self.failed.emit(str(exc))
                return
            self.finished.emit(self.pair, ids, values[:, 0])
        except Exception as exc:
            log.exception("prompt scoring failed")
            self.failed.emit(f"{type(exc).__name__}: {exc}")


# Every worker thread this module starts, so tests can assert that none outlives its test.
live_threads: weakref.WeakSet[QThread] = weakref.WeakSet()


def start_in_thread(worker: QObject, parent: QObject) -> QThread:
    """Move `worker` to a new QThread, run its `run` slot there, and clean both up when it ends."""
    thread = QThread(parent)
    live_threads.add(thread)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)  # type: ignore[attr-defined]
    for name in ("finished", "failed", "weights_missing"):
        signal = getattr(worker, name, None)
        if signal is not None:
            signal.connect(thread.quit)
    thread.finished.connect(worker.deleteLater)
    thread.start()
    return thread
