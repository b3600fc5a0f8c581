"""Streaming scorer: decode photos in a thread pool while the model scores the previous batch.

Used by `clipiqa-desktop score` and, with the catalog, by the indexing pipeline. Photos whose
analysis images have the same shape are batched together (no padding, which would change scores);
a shape's partial batch is flushed at the end. Results come in completion order with the index of
the input they belong to.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..imaging import DecodedPhoto, DecodeError, decode_photo
from ..scoring import AttributePair, ClipIqaScorer, ScoringError, image_to_tensor


@dataclass(frozen=True)
class PhotoResult:
    """The outcome for one input photo: scores and embedding, or an error reason."""

    index: int
    path: Path
    scores: dict[str, float] | None = None
    embedding: np.ndarray | None = field(default=None, repr=False)
    error: str | None = None
    decoded: DecodedPhoto | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None


def decode_ahead(
    paths: Sequence[Path],
    decode: Callable[[Path], DecodedPhoto],
    workers: int,
    prefetch: int,
    cancel: threading.Event | None = None,
) -> Iterator[tuple[int, Path, DecodedPhoto | DecodeError]]:
    """Decode in `workers` threads, at most `prefetch` photos ahead, yielding in input order."""

    def task(p: Path) -> DecodedPhoto | DecodeError:
        try:
            return decode(p)
        except DecodeError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="decode") as pool:
        pending: list[tuple[int, Path, Future[DecodedPhoto | DecodeError]]] = []
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


def score_photos(
    paths: Sequence[Path],
    scorer: ClipIqaScorer,
    pairs: Sequence[AttributePair],
    long_side: int | None,
    batch_size: int = 8,
    workers: int = 2,
    thumb_long_side: int | None = None,
    keep_decoded: bool = False,
    cancel: threading.Event | None = None,
) -> Iterator[PhotoResult]:
    """Score every photo; yields one PhotoResult per input (completion order), errors included.

    A decode failure or a non-finite model output fails only the photos concerned. After `cancel`
    is set, no new batch is started and nothing more is yielded.
    """
    batch_size = max(1, batch_size)

    def decode(p: Path) -> DecodedPhoto:
        return decode_photo(p, long_side, thumb_long_side, multiple=scorer.input_multiple)

    groups: dict[tuple[int, int], list[tuple[int, Path, DecodedPhoto, torch.Tensor]]] = {}

    def run(group: list[tuple[int, Path, DecodedPhoto, torch.Tensor]]) -> Iterable[PhotoResult]:
        batch = torch.stack([t for _, _, _, t in group])
        try:
            results = scorer.score_batch(batch, pairs)
        except ScoringError as exc:
            if len(group) > 1:  # find the photo at fault rather than failing its neighbours
                for item in group:
                    yield from run([item])
                return
            i, p, d, _ = group[0]
            yield PhotoResult(i, p, error=str(exc), decoded=d if keep_decoded else None)
            return
        for (i, p, d, _), r in zip(group, results, strict=True):
            yield PhotoResult(i, p, r.scores, r.embedding, decoded=d if keep_decoded else None)

    stream = decode_ahead(paths, decode, workers, prefetch=batch_size * 2 + workers, cancel=cancel)
    for i, p, dec in stream:
        if isinstance(dec, DecodeError):
            yield PhotoResult(i, p, error=str(dec))
            continue
        tensor = image_to_tensor(dec.image)
        key = (int(tensor.shape[1]), int(tensor.shape[2]))
        group = groups.setdefault(key, [])
        group.append((i, p, dec, tensor))
        if len(group) >= batch_size:
            del groups[key]
            if cancel is not None and cancel.is_set():
                return
            yield from run(group)
    for group in list(groups.values()):
        if cancel is not None and cancel.is_set():
            return
        yield from run(group)
