"""Indexing (and prompt encoding) in a child process: the window never shares the GIL with torch, a
crash in a decoder or the model ends only the child, and cancel can always end the work at once.

The child is started with multiprocessing's "spawn" context (never fork: the parent runs Qt and
threads). It opens its own Catalog on the same SQLite file, builds the scorer from a plain picklable
`ScorerSpec`, runs `index_folder` and sends small tagged tuples to the parent:

    ("progress", done, total, photos_per_s, eta_s)   eta_s = -1.0 when unknown
    ("batch", [photo ids])                            one committed transaction
    ("finished", IndexSummary)                        the last message of a run that ended normally
    ("failed", kind, message)                         the last message of a run that could not go on

`kind` is one of FAILURE_KINDS; the message is written for a photographer; the traceback, if any, is
logged by the child (stderr), never sent. The parent adds one message of its own:

    ("stopped", seconds)                              the child was ended by cancel()'s kill or kill()

and reports a child that died without a last message (SIGKILL, a segfault in a codec, the OOM
killer) as ("failed", "died", "the indexer stopped unexpectedly (signal 9) — ...").

Messages travel through a one-way Pipe rather than a multiprocessing.Queue: the parent closes its
copy of the write end, so the child's death is seen at once as end-of-file, and a message the child
was writing when it was killed can never leave the reader blocked on a half-written record (a Queue's
reader can wait forever there, because the parent holds the Queue's writer open too).

Cancel is cooperative first (a flag the pipeline checks between photos; the batch in flight is
dropped, everything committed stays), then, `grace_s` later, the child is terminated and killed.
SQLite commits one transaction per batch, so a kill loses only the batch in flight.

Plain Python, no Qt: the window drives `ChildProcess` from a QThread (gui/workers.py).
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from ..scoring import ModelSpec
    from .pipeline import IndexOptions

log = logging.getLogger(__name__)

# "weights_missing": the CLIP weights cannot be had (the window offers to pick a file);
# "indexing": the folder cannot be read; "scoring": model, weights file or device problem;
# "catalog": the catalog cannot be opened or written; "internal": a bug, logged with its traceback;
# "died": the child ended without a word (killed, crashed).
FAILURE_KINDS = ("weights_missing", "indexing", "scoring", "catalog", "internal", "died")
CANCEL_GRACE_S = 0.5  # after a cooperative cancel, how long the child may take to stop by itself
KILL_GRACE_S = 0.2  # after SIGTERM, how long before SIGKILL
EXIT_WAIT_S = 1.0  # how long a child that sent its last message may take to exit (torch unloading)
PARENT_GONE_GRACE_S = 2.0  # a child whose parent died stops cooperatively, or exits after this

Message = tuple[Any, ...]
_FINAL = ("finished", "failed", "stopped", "features")


@dataclass(frozen=True)
class ScorerSpec:
    """Which model, on which device, as plain strings: what a child needs to build the scorer."""

    model: str
    pretrained: str
    weights: str | None = None
    device: str = "auto"
    precision: str = "auto"
    learned_prompts: str | None = None  # CLIP-IQA+ context file (scoring/learned.py)
    engine: str = "auto"  # what runs the image tower: auto, torch or onnx (scoring/onnx_engine.py)

    @classmethod
    def of(
        cls, spec: ModelSpec, device: str = "auto", precision: str = "auto", engine: str = "auto"
    ) -> ScorerSpec:
        learned = str(spec.learned_prompts) if spec.learned_prompts else None
        weights = str(spec.weights) if spec.weights else None
        return cls(spec.arch, spec.pretrained, weights, device, precision, learned, engine)

    def model_spec(self) -> ModelSpec:
        from ..scoring.spec import ModelSpec

        return ModelSpec(
            self.model,
            self.pretrained,
            Path(self.weights) if self.weights else None,
            Path(self.learned_prompts) if self.learned_prompts else None,
        )


@dataclass(frozen=True)
class IndexJob:
    """One indexing run: catalog file, folder, scorer and options (IndexOptions holds the size)."""

    catalog_path: str
    folder: str
    scorer: ScorerSpec
    options: IndexOptions
    log_level: int = logging.WARNING


@dataclass(frozen=True)
class EncodeJob:
    """Text features of `texts` from the text tower of `scorer` (a new custom prompt pair)."""

    scorer: ScorerSpec
    texts: tuple[str, ...]
    log_level: int = logging.WARNING


def death_message(exitcode: int | None, what: str = "the indexer") -> str:
    """What to tell the photographer when the child ended without a last message."""
    if exitcode is not None and exitcode < 0:
        how = f"signal {-exitcode}"
    elif exitcode is None:
        how = "no exit status"
    else:
        how = f"exit status {exitcode}"
    if what == "the indexer":
        return (
            f"the indexer stopped unexpectedly ({how}) — what was committed is kept; "
            "open the folder again to resume"
        )
    return f"{what} stopped unexpectedly ({how}); try again"


class ChildProcess:
    """The parent's side of one child run: start(), next_message(), cancel(), kill(), close().

    Used from one thread (the worker's QThread); cancel() and kill() may also be called from another
    (the GUI thread). next_message() never blocks longer than its timeout, and after cancel() it ends
    the child `grace_s` later if the child has not ended by itself.
    """

    def __init__(
        self,
        target: Callable[..., None],
        job: Any,
        what: str = "the indexer",
        grace_s: float = CANCEL_GRACE_S,
    ) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._target, self._job, self.what, self.grace_s = target, job, what, grace_s
        # A lock-free shared byte, not a multiprocessing.Event: an Event's lock can die held by a
        # killed child, and the next set() or is_set() here would wait forever.
        self._cancel: Any = self._ctx.RawValue("b", 0)
        self._reader: Connection | None = None
        self._process: BaseProcess | None = None
        self._cancel_deadline: float | None = None
        self._done = False  # a final message was returned
        self._lock = threading.RLock()  # kill() may come from another thread than close()
        self._started_at = 0.0

    # --- state -------------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def exitcode(self) -> int | None:
        return self._process.exitcode if self._process is not None else None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    @property
    def done(self) -> bool:
        """True once next_message() has returned the final message."""
        return self._done

    @property
    def cancelled(self) -> bool:
        return bool(self._cancel.value)

    # --- control -----------------------------------------------------------------------------------
    def start(self) -> None:
        reader, writer = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(
            target=self._target,
            args=(self._job, writer, self._cancel),
            name="clipiqa-indexer" if self.what == "the indexer" else "clipiqa-encoder",
            daemon=True,  # ended by multiprocessing's exit handler if the window exits first
        )
        self._started_at = time.monotonic()
        try:
            process.start()
        except BaseException:  # no child (out of memory, too many processes): leak no pipe ends
            reader.close()
            raise
        finally:
            writer.close()  # the child holds the only write end: its death is end-of-file here
        self._reader, self._process = reader, process

    def cancel(self) -> None:
        """Ask the child to stop between photos; next_message() kills it `grace_s` from now if not."""
        if not self._cancel.value:
            self._cancel_deadline = time.monotonic() + self.grace_s
            self._cancel.value = 1

    def kill(self) -> None:
        """End the child now: SIGTERM, then SIGKILL after a short grace. Idempotent."""
        with self._lock:
            process = self._process
            if process is None or process.exitcode is not None:
                return
            process.terminate()
            process.join(KILL_GRACE_S)
            if process.exitcode is None:
                process.kill()
                process.join(KILL_GRACE_S * 5)

    def close(self) -> None:
        """Release the pipe and reap the child (killing it if it is still running)."""
        with self._lock:
            process = self._process
            if process is not None:
                if process.exitcode is None and self._done:  # it said its last word: let it exit
                    limit = EXIT_WAIT_S
                    if self._cancel_deadline is not None:  # but not past what cancel promised
                        limit = min(limit, max(0.0, self._cancel_deadline - time.monotonic()))
                    process.join(limit)
                self.kill()
                if process.exitcode is not None:
                    process.close()
                self._process = None
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    # --- messages ----------------------------------------------------------------------------------
    def next_message(self, timeout: float = 0.1) -> Message | None:
        """The child's next message, or None when nothing came within `timeout` seconds.

        After a final message ("finished", "failed", "stopped", "features") it returns None.
        """
        if self._done or self._reader is None or self._process is None:
            return None
        if self._cancel_deadline is not None:
            left = self._cancel_deadline - time.monotonic()
            if left <= 0:
                return self._stop()
            timeout = min(timeout, left)
        ready = wait([self._reader], timeout)
        if not ready:
            if self._cancel_deadline is not None and time.monotonic() >= self._cancel_deadline:
                return self._stop()
            return None
        try:
            message = cast(Message, self._reader.recv())
        except (EOFError, OSError):  # the child is gone without a last word
            return self._died()
        except Exception:  # a message that cannot be unpickled: a bug; the run cannot be trusted
            log.exception("unreadable message from %s", self.what)
            self.kill()
            self._done = True
            return ("failed", "internal", f"{self.what} sent a message this window cannot read")
        if message[0] in _FINAL:
            self._done = True
        return message

    def _stop(self) -> Message:
        self.kill()
        self._done = True
        return ("stopped", time.monotonic() - self._started_at)

    def _died(self) -> Message:
        process = self._process
        assert process is not None
        process.join(1.0)  # EOF comes as the child exits; its exit status follows at once
        self._done = True
        if self._cancel.value:  # ended while we were stopping it: that is the cancel's doing
            return ("stopped", time.monotonic() - self._started_at)
        code = process.exitcode
        log.warning("%s ended without a result, exit status %s", self.what, code)
        return ("failed", "died", death_message(code, self.what))


def start_indexing(job: IndexJob, grace_s: float = CANCEL_GRACE_S) -> ChildProcess:
    """Start indexing `job.folder` in a child process; read it with next_message()."""
    child = ChildProcess(_index_main, job, "the indexer", grace_s)
    child.start()
    return child


def start_encoding(job: EncodeJob, grace_s: float = CANCEL_GRACE_S) -> ChildProcess:
    """Start encoding `job.texts` in a child; its final message is ("features", float32 array)."""
    child = ChildProcess(_encode_main, job, "the text encoder", grace_s)
    child.start()
    return child


# --- the child's side ----------------------------------------------------------------------------------
class CancelFlag:
    """The child's view of the parent's shared cancel byte, with threading.Event's is_set()/set()."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    def is_set(self) -> bool:
        return bool(self._raw.value)

    def set(self) -> None:
        self._raw.value = 1


def _child_setup(log_level: int, cancel: CancelFlag) -> None:
    """Logging like the CLI's, Ctrl+C left to the parent, a watch on the parent's life, and
    `kill -USR1 PID` dumping every thread's stack to stderr (to see where a slow child is)."""
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; a terminal's ^C reaches both
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("clipiqa-desktop: %(message)s"))
    logging.basicConfig(level=log_level, handlers=[handler], force=True)
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()  # returns when the parent is gone (its sentinel closes)
        cancel.set()
        time.sleep(PARENT_GONE_GRACE_S)
        os._exit(0)  # nobody is listening; what was committed is kept

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _classify(exc: BaseException) -> tuple[str, str]:
    """(kind, message) for an exception that ended a child's work."""
    from ..catalog import CatalogError
    from ..scoring.errors import ScoringError, WeightsUnavailable
    from .pipeline import IndexingError

    if isinstance(exc, WeightsUnavailable):
        return "weights_missing", str(exc)
    if isinstance(exc, ScoringError):
        return "scoring", str(exc)
    if isinstance(exc, IndexingError):
        return "indexing", str(exc)
    if isinstance(exc, CatalogError):
        return "catalog", str(exc)
    if isinstance(exc, MemoryError):
        return "internal", "the computer ran out of memory; try a smaller analysis size in Settings"
    return "internal", f"an unexpected error stopped the work ({type(exc).__name__}: {exc}); see the log"


def _index_main(job: IndexJob, conn: Connection, raw_cancel: Any) -> None:
    """The child: index the folder, reporting through `conn`."""
    cancel = CancelFlag(raw_cancel)
    _child_setup(job.log_level, cancel)
    try:
        from ..catalog import Catalog
        from ..scoring.spec import LazyScorer
        from .pipeline import index_folder

        catalog = Catalog(job.catalog_path)
        try:
            spec = job.scorer
            scorer = LazyScorer(spec.model_spec(), spec.device, spec.precision, spec.engine)
            summary = index_folder(
                catalog,
                scorer,
                Path(job.folder),
                job.options,
                on_progress=lambda p: conn.send(
                    ("progress", p.done, p.total, p.photos_per_s, -1.0 if p.eta_s is None else p.eta_s)
                ),
                on_batch=lambda ids: conn.send(("batch", list(ids))),
                cancel=cast(threading.Event, cancel),  # the is_set() the pipeline checks
            )
        finally:
            catalog.close()
        conn.send(("finished", summary))
    except (BrokenPipeError, ConnectionResetError):  # the parent is gone: nobody to tell
        pass
    except Exception as exc:
        kind, message = _classify(exc)
        if kind == "internal":
            log.exception("indexing %s failed", job.folder)
        _send_quietly(conn, ("failed", kind, message))
    finally:
        conn.close()


def _encode_main(job: EncodeJob, conn: Connection, raw_cancel: Any) -> None:
    """The child: text features for a custom prompt pair."""
    _child_setup(job.log_level, CancelFlag(raw_cancel))
    try:
        from ..scoring.engine import ClipIqaScorer

        spec = job.scorer
        # Only the text tower is used: no ONNX export or engine measurement for it.
        model = ClipIqaScorer.load(spec.model_spec(), spec.device, spec.precision, engine="torch")
        features = model.text_features(list(job.texts)).float().cpu().numpy()
        conn.send(("features", features))
    except (BrokenPipeError, ConnectionResetError):
        pass
    except Exception as exc:
        kind, message = _classify(exc)
        if kind == "internal":
            log.exception("encoding prompts failed")
        _send_quietly(conn, ("failed", kind, message))
    finally:
        conn.close()


def _send_quietly(conn: Connection, message: Message) -> None:
    with contextlib.suppress(OSError):  # the parent is gone
        conn.send(message)
