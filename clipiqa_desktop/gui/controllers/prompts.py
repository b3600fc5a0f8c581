"""Your own prompt pair: scored from the stored embeddings in a worker thread, shown as a column and
sorted by."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QThread, Slot

from ...scoring.attributes import PromptError, custom_pair
from ..workers import PromptWorker, start_in_thread
from .base import Controller

if TYPE_CHECKING:
    from ..main_window import MainWindow


class PromptController(Controller):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.panel = window.view.filters
        self.panel.prompt_requested.connect(self.score_prompt)
        self.worker_thread: QThread | None = None
        self._worker: PromptWorker | None = None
        self._target: tuple[int | None, int | None] = (None, None)

    def score_prompt(self, positive: str, negative: str) -> None:
        session = self.session
        if session is None or session.analysis_id is None or session.folder_id is None:
            self.panel.prompt_status.setText("Open and index a folder first.")
            return
        try:
            pair = custom_pair(positive, negative)
        except PromptError as exc:
            self.panel.prompt_status.setText(str(exc))
            return
        if self.worker_thread is not None and self.worker_thread.isRunning():
            self.panel.prompt_status.setText("Still scoring the previous pair …")
            return
        worker = PromptWorker(
            self.ctx.catalog, self.ctx.holder, self.ctx.settings, session.folder_id, session.analysis_id, pair
        )
        worker.finished.connect(self._scored)
        worker.failed.connect(self._failed)
        self._worker = worker
        self._target = (session.folder_id, session.analysis_id)
        self.worker_thread = start_in_thread(worker, self.window)

    @Slot(str)
    def _failed(self, message: str) -> None:
        self.panel.prompt_status.setText(f"Could not score: {message}")

    @Slot(object, object, object)
    def _scored(self, pair: Any, ids: Any, values: Any) -> None:
        session = self.session
        if session is None or self._target != (session.folder_id, session.analysis_id):
            return  # the folder or its analysis changed while this pair was being scored
        session.add_prompt_scores(pair, ids, values)
        if session.recursive:
            # The worker scores the embeddings of one folder row; a tree has one row per directory.
            # Its text features are cached in the catalog now, so the tree costs one matrix product.
            session.rescore_prompts()
        self.window.view.sort_by(pair.key, descending=True)
        self.panel.prompt_status.setText(f"Sorted by “{pair.positive}” vs “{pair.negative}” ({pair.key}).")

    def shutdown(self) -> None:
        if self.worker_thread is not None and self.worker_thread.isRunning():
            if self._worker is not None:
                # Ends the encoder child at once; otherwise closing waits for its torch import.
                self._worker.cancel()
            self.worker_thread.quit()
            self.worker_thread.wait()
        self.worker_thread = None  # the window deletes the QThread; keep no wrapper of it alive
