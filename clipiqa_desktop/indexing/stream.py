"""Streaming scorer: decode photos in a thread pool while the model scores the previous batch.

Used by `clipiqa-desktop score` and, with the catalog, by the indexing pipeline. Photos whose
analysis images have the same shape are batched together (no padding, which would change scores);
a shape's partial batch is flushed at the end. Results come in completion order with the index of
the input they belong to.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np
from PIL import Image

from ..imaging import DecodeError, decode_photo
from ..scoring.errors import ScoringError
from .batching import AUTO, BatchTuner, candidates, decode_workers, inference_threads, largest_candidate

if TYPE_CHECKING:  # torch is imported when scoring starts, not when this module is
    from ..scoring import AttributePair, ClipIqaScorer


class Prepared(Protocol):
    """What a prepare function returns for one photo: at least the upright RGB analysis image."""

    @property
    def image(self) -> Image.Image: ...


class Measured(Protocol):
    """What a prepare function returns when no model scores the photo: its pixel measures."""

    @property
    def measures(self) -> dict[str, float]: ...


log = logging.getLogger(__name__)

# The reason of a photo that decoded but whose scoring failed (e.g. the device ran out of memory):
# not necessarily the photo's fault, so the next run tries it again (see pipeline._plan).
SCORING_FAILED = "could not be scored"


def is_scoring_failure(error: str | None) -> bool:
    return error is not None and error.startswith(SCORING_FAILED)


P = TypeVar("P")


@dataclass(frozen=True)
class PhotoResult:
    """The outcome for one input photo: scores and embedding, or an error reason."""

    index: int
    path: Path
    scores: dict[str, float] | None = None
    embedding: np.ndarray | None = field(default=None, repr=False)
    error: str | None = None
    prepared: Any = field(default=None, repr=False)  # what `prepare` returned (None on error)

    @property
    def ok(self) -> bool:
        return self.error is None


def decode_or_error(decode: Callable[[Path], P], path: Path) -> P | DecodeError:
    """`decode(path)`, or the DecodeError that becomes the photo's error record: a bad file must
    never stop the others (also in a cluster's decode task, clipiqa_desktop/cluster)."""
    try:
        return decode(path)
    except DecodeError as exc:
        return exc
    except Exception as exc:
        log.debug("unexpected failure reading %s", path, exc_info=True)  # traceback only with debug
        return DecodeError(f"cannot read: {_short_cause(exc)}")


def decode_ahead(
    paths: Sequence[Path],
    decode: Callable[[Path], P],
    workers: int,
    prefetch: int,
    cancel: threading.Event | None = None,
) -> Iterator[tuple[int, Path, P | DecodeError]]:
    """Decode in `workers` threads, at most `prefetch` photos ahead, yielding in input order."""

    def task(p: Path) -> P | DecodeError:
        return decode_or_error(decode, p)

    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="decode")
    try:
        pending: list[tuple[int, Path, Future[P | DecodeError]]] = []
        it = iter(enumerate(paths))
        try:
            for _ in range(max(1, prefetch)):
                i, p = next(it)
                pending.append((i, p, pool.submit(task, p)))
        except StopIteration:
            pass
        while pending:
            if cancel is not None and cancel.is_set():
                for _, _, fut in pending:
                    fut.cancel()
                return
            i, p, fut = pending.pop(0)
            nxt = next(it, None)
            if nxt is not None:
                pending.append((nxt[0], nxt[1], pool.submit(task, nxt[1])))
            yield i, p, fut.result()
    finally:  # on cancel, or when the consumer stops early, drop the queued decodes
        pool.shutdown(wait=True, cancel_futures=True)


def measure_only(
    paths: Sequence[Path],
    prepare: Callable[[Path], Measured],
    workers: int | None,
    cancel: threading.Event | None = None,
) -> Iterator[PhotoResult]:
    """Without a CLIP model (`--model none`, `score` of pixel measures only): `prepare` decodes and
    measures in `workers` threads (None: every core, batching.thread_defaults); each result's scores
    are its pixel measures (input order)."""
    workers = workers or decode_workers("none")
    ahead = decode_ahead(paths, prepare, workers, prefetch=2 * max(1, workers), cancel=cancel)
    for i, path, got in ahead:
        if isinstance(got, DecodeError):
            yield PhotoResult(i, path, error=str(got))
        else:
            yield PhotoResult(i, path, scores=dict(got.measures), prepared=got)


def score_photos(
    paths: Sequence[Path],
    scorer: ClipIqaScorer,
    pairs: Sequence[AttributePair],
    long_side: int | None,
    batch_size: int | str | BatchTuner = AUTO,
    workers: int | None = None,
    prepare: Callable[[Path], Prepared] | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[PhotoResult]:
    """Score every photo; yields one PhotoResult per input (completion order), errors included.

    `prepare` runs in the decoding threads and must return an object with the analysis `image`
    (default: `decode_photo` at `long_side`); the indexing pipeline uses it to also make the
    thumbnail, read EXIF/XMP and fingerprint the file from the same decode. Images smaller than the
    tower takes are padded up to it (`pad_to_min_side`). A DecodeError fails only its photo; when
    scoring a batch raises anything (a shape the tower rejects, out of memory, non-finite output),
    its photos are scored one by one and only those that still fail are recorded as failed
    ("could not be scored: ...", or "too small to score (W × H px) ..." where padding cannot help
    a tower whose smallest input is unknown). After `cancel` is set, no new batch is started and nothing more
    is yielded.

    `batch_size` is the number of images per model call, or "auto" / a BatchTuner (batching.py):
    the first calls try the candidate sizes for the device and image size and the run keeps the
    fastest (pass a BatchTuner to read its choice afterwards: `describe()`). `workers` decode
    threads (None: batching.thread_defaults for the scorer's device); torch's intra-op threads are
    sized by `batching.inference_threads` while the photos are scored.
    """
    import torch

    from ..scoring.engine import image_to_tensor, pad_to_min_side

    tuner: BatchTuner | None = None
    fixed = 1
    if isinstance(batch_size, BatchTuner):
        tuner = batch_size
    elif batch_size == AUTO:
        tuner = BatchTuner()
    elif isinstance(batch_size, int):
        fixed = max(1, batch_size)
    else:
        raise ValueError(f"batch size must be a number or {AUTO!r}, not {batch_size!r}")

    def size() -> int:
        return tuner.size if tuner is not None else fixed

    def default_prepare(p: Path) -> Prepared:
        return decode_photo(p, long_side, multiple=scorer.input_multiple)

    Item = tuple[int, Path, Prepared, torch.Tensor]
    groups: dict[tuple[int, int], list[Item]] = {}

    def run(group: list[Item], timed: bool = True) -> Iterable[PhotoResult]:
        try:
            batch = torch.stack([t for _, _, _, t in group])
            if tuner is not None and timed:
                with tuner.timing(len(group), int(batch.shape[2] * batch.shape[3])):
                    results = scorer.score_batch(batch, pairs)
            else:
                results = scorer.score_batch(batch, pairs)
        except Exception as exc:  # never let one photo stop the run: find the one at fault
            if len(group) > 1:
                log.info(
                    "scoring a batch of %d failed (%s); scoring its photos one by one",
                    len(group),
                    _short_cause(exc),
                )
                for item in group:  # not timed: the batch size tuner never sees the fallback
                    if cancel is not None and cancel.is_set():
                        return
                    yield from run([item], timed=False)
                return
            i, p, prep, _ = group[0]
            cause = _short_cause(exc)
            if isinstance(exc, ScoringError):
                reason = str(exc)
            elif cause == _TOO_SMALL:  # only where padding could not help (a tower we cannot size)
                w, h = prep.image.size
                reason = f"too small to score ({w} × {h} px): the model cannot take an image this small"
            else:
                log.debug("scoring %s failed", p, exc_info=True)  # traceback only with debug logging
                reason = f"{SCORING_FAILED}: {cause}"
            yield PhotoResult(i, p, error=reason)
            return
        for (i, p, prep, _), r in zip(group, results, strict=True):
            yield PhotoResult(i, p, r.scores, r.embedding, prepared=prep)

    workers = workers or decode_workers(scorer.device.type)
    ahead = largest_candidate(scorer.device.type) if tuner is not None else fixed
    stream = decode_ahead(
        paths, prepare or default_prepare, workers, prefetch=ahead * 2 + workers, cancel=cancel
    )

    def full_batches() -> Iterator[PhotoResult]:
        """Score every shape group that holds a batch of the current size (it may have just changed)."""
        for key in list(groups):
            group = groups[key]
            while len(group) >= size():
                chunk = group[: size()]
                del group[: len(chunk)]
                if cancel is not None and cancel.is_set():
                    return
                yield from run(chunk)
            if not group:
                del groups[key]

    with inference_threads():  # torch's threads while its tower runs (an ONNX tower sized its own)
        for i, p, prep in stream:
            if isinstance(prep, DecodeError):
                yield PhotoResult(i, p, error=str(prep))
                continue
            try:
                tensor = pad_to_min_side(image_to_tensor(prep.image), scorer.min_side)
            except ValueError as exc:
                yield PhotoResult(i, p, error=f"{SCORING_FAILED}: {exc}")
                continue
            key = (int(tensor.shape[1]), int(tensor.shape[2]))
            if tuner is not None and not tuner.begun:  # the device and the image size are known now
                tuner.begin(candidates(scorer.device.type, key[0] * key[1]))
            groups.setdefault(key, []).append((i, p, prep, tensor))
            yield from full_batches()
            if cancel is not None and cancel.is_set():
                return
        yield from full_batches()
        for group in list(groups.values()):  # each shape's partial batch
            if cancel is not None and cancel.is_set():
                return
            yield from run(group)
        if tuner is not None and tuner.begun:
            tuner.finish()


_TOO_SMALL = "the image is too small for the model"
_CAUSES = (  # what the tower's own error texts mean, for a photographer
    ("Output size is too small", _TOO_SMALL),
    ("Kernel size can't be greater", _TOO_SMALL),
    ("out of memory", "out of memory on the device"),
)


def _short_cause(exc: BaseException) -> str:
    """One short line about an unexpected exception, without a traceback."""
    text = str(exc).strip()
    for needle, meaning in _CAUSES:
        if needle.lower() in text.lower():
            return meaning
    first = text.splitlines()[0] if text else ""
    if len(first) > 120:
        first = first[:117] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
