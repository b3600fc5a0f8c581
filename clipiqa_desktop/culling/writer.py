"""The one thread that writes the window's decisions (the pattern of MusicBrainz Picard's save thread).

The window never waits on SQLite for a keypress: `CullingSession.decide` shows the change at once
and hands a job to a `DecisionWriter`, whose thread runs the jobs one at a time, in the order they
were submitted (FIFO). Each job is one write transaction through the one decision path
(`CatalogTransaction.update_decisions`), and reads back, in the same transaction, the decisions of
its photos as they are after the write (with what other writers did to the other fields). The
result goes to the job's `reply` callback ON THE WRITER THREAD; the window marshals it to the GUI
thread through a queued Qt signal, tests call `CullingSession.flush()`. No Qt here.

Undo and redo are jobs too. A step's real deltas are known only once its write ran, so an undo job
looks them up when it runs: because the queue is FIFO, an undo pressed before the write it undoes
returned runs after that write and finds its deltas; the undo of a step whose write failed does
nothing.

A job that fails (`CatalogError`: disk full, read-only, another process holding the write lock past
the retry window of catalog/connection.py) is reported in its result with the decisions as the
catalog has them, so the screen goes back to the truth. After a successful job, `after_write`
(e.g. "write XMP sidecars as I cull") runs on the writer thread; its failure does not undo the
decision, it is reported as a note.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..catalog import Catalog, CatalogError
from ..catalog.records import Decision, DecisionDelta
from .decisions import DecisionChange, change_fn, restore_fn

log = logging.getLogger(__name__)

JobKind = Literal["apply", "undo", "redo"]

# after_write(photo ids whose decision changed) -> a status note (None: nothing to say); runs on the
# writer thread after each successful job that changed something.
AfterWrite = Callable[[list[int]], str | None]


@dataclass(eq=False)
class Step:
    """One undoable culling action. `shown` is what the screen showed at once (computed from the
    session's copy); `deltas` is what the catalog really did, set by the writer thread when the
    write ran (None before, and for ever when it failed: `error` says why)."""

    photo_ids: tuple[int, ...]
    change: DecisionChange
    shown: list[DecisionDelta] = field(default_factory=list)
    deltas: list[DecisionDelta] | None = None
    error: str | None = None

    @property
    def written(self) -> bool:
        return self.deltas is not None

    def display_deltas(self) -> list[DecisionDelta]:
        """The deltas to show an undo/redo with: the real ones once known, else what was shown."""
        deltas = self.deltas
        return deltas if deltas is not None else self.shown


@dataclass(frozen=True, eq=False)
class WriteJob:
    kind: JobKind
    step: Step
    reply: Callable[[WriteResult], None]  # called on the writer thread
    source: str = "user"


@dataclass(frozen=True, eq=False)
class WriteResult:
    job: WriteJob
    deltas: list[DecisionDelta]  # what this job changed ([] for a no-op or a failure)
    decisions: dict[int, Decision]  # the job's photos as the catalog has them afterwards ({}: unreadable)
    error: str | None = None  # why the write failed (the catalog is as it was)
    note: str | None = None  # what after_write said (e.g. sidecars written, or why not)


IDLE_SECONDS = 5.0  # the thread ends after this long without a job; the next job starts another


class DecisionWriter:
    """A thread and a FIFO queue of decision jobs on one catalog. The thread starts with the first
    job, ends after IDLE_SECONDS without one (so a forgotten writer holds no thread), and at
    `close()`. There is never more than one thread per writer: jobs are written in order."""

    def __init__(self, catalog: Catalog, after_write: AfterWrite | None = None) -> None:
        self.catalog = catalog
        self.after_write = after_write
        self._jobs: deque[WriteJob] = deque()
        self._cond = threading.Condition()
        self._running = False  # a job is being executed
        self._closed = False
        self._thread: threading.Thread | None = None

    # --- the caller's side ------------------------------------------------------------------------
    def submit(self, job: WriteJob) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("the decision writer is closed")
            self._jobs.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="decision-writer", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending(self) -> int:
        """Jobs queued or being written."""
        with self._cond:
            return len(self._jobs) + int(self._running)

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every job submitted so far has been written (and replied); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._jobs and not self._running, timeout)

    def close(self, timeout: float | None = None) -> list[WriteJob]:
        """Write what is queued (waiting up to `timeout`), then stop the thread. Returns the jobs
        that had not started by then: each was replied to as failed ("not saved")."""
        self.drain(timeout)
        with self._cond:
            self._closed = True
            dropped = list(self._jobs)
            self._jobs.clear()
            self._cond.notify_all()
            thread = self._thread
        for job in dropped:
            self._reply(job, WriteResult(job, [], {}, error="not saved: the catalog stayed busy"))
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        return dropped

    # --- the writer thread ----------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._jobs or self._closed, IDLE_SECONDS)
                if not self._jobs:  # closed, or idle: the next submit starts a new thread
                    self._thread = None
                    return
                job = self._jobs.popleft()
                self._running = True
            try:
                try:
                    result = self._execute(job)
                except Exception as exc:  # a bug, not a catalog failure: report it, keep writing
                    log.exception("a decision job failed")
                    if job.kind == "apply":
                        job.step.error = f"{type(exc).__name__}: {exc}"
                    result = WriteResult(job, [], {}, error=f"not saved: {type(exc).__name__}: {exc}")
                self._reply(job, result)
            finally:
                with self._cond:
                    self._running = False
                    self._cond.notify_all()

    def _execute(self, job: WriteJob) -> WriteResult:
        step = job.step
        ids = list(step.photo_ids)
        if job.kind == "apply":
            change = change_fn(step.change)
        elif step.deltas is None:  # its write failed (or was never made): nothing to undo or redo
            change = None
        else:
            change = restore_fn(step.deltas, "before" if job.kind == "undo" else "after")
        if change is None:  # no write, so no write lock to wait for: show the catalog's values
            return WriteResult(job, [], self._read_back(ids))
        try:
            with self.catalog.transaction() as tx:
                deltas = tx.update_decisions(ids, change, job.source)
                now = tx.decisions(ids)
        except Exception as exc:  # CatalogError (full, read-only, busy past the retry), or a bug
            if not isinstance(exc, CatalogError):
                log.exception("writing a decision failed")
            else:
                log.warning("a decision was not saved: %s", exc)
            message = str(exc) if isinstance(exc, CatalogError) else f"{type(exc).__name__}: {exc}"
            if job.kind == "apply":
                step.error = message
            return WriteResult(job, [], self._read_back(ids), error=message)
        if job.kind == "apply":
            step.deltas = deltas  # before the next job runs: an undo queued behind it finds them
        note = None
        if deltas and self.after_write is not None:
            changed = [d.photo_id for d in deltas]
            try:
                note = self.after_write(changed)
            except Exception as exc:  # the decision is saved; only the hand-off failed
                log.warning("after a decision was saved: %s", exc)
                note = f"decision saved, but not its sidecar: {exc}"
        return WriteResult(job, deltas, now, note=note)

    def _read_back(self, ids: Sequence[int]) -> dict[int, Decision]:
        try:
            return self.catalog.decisions(ids)  # a reader: works while another process writes
        except CatalogError:
            return {}

    @staticmethod
    def _reply(job: WriteJob, result: WriteResult) -> None:
        try:
            job.reply(result)
        except Exception:  # a broken receiver must not stop the writer
            log.exception("delivering a decision result failed")
