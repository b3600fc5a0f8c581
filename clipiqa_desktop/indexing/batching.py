"""`--batch-size auto`: the number of images per model call, chosen by timing the run's own calls.

Which batch size is fastest depends on the engine, the device, the precision and the analysis size:
on a 2-core AVX2 CPU RN50 at 512 px ran 2.1 images/s at batch 1 and 1.9/s at batch 8 (issue 10),
while a GPU wants dozens per call. So the first model calls of a run try the candidate sizes
(`candidates`) and the rest of the run keeps the fastest:

- the first call of the run is a warm-up (first-call allocations, kernel selection) and is not timed;
- then every candidate is timed once in ascending order and once in descending order (1 2 4 8 8 4 2 1),
  so a load that drifts during the measurement (other programs, the decode threads ramping up)
  costs every candidate alike;
- speed is measured per pixel, so the portrait and the landscape groups (the stream batches equal
  shapes) both feed it, and shown as images per second of the run's mean image;
- a call whose batch raised is not timed (stream.py then scores its photos one by one, untimed);
  when it ran out of memory, its size and every larger one are out of the running;
- calls of another size than the one asked for (the partial batch a shape group ends with) are not
  timed.

Nothing is lost while measuring: every call scores real photos. The choice is kept for the run
only: it is cheap to measure again (a few calls at a slower size), and a choice remembered across
runs would keep the load of the run that measured it (another program busy, a laptop on battery).

No torch at import (only `inference_threads` imports it); the tuner's clock is injectable, so its
logic is tested with a fake one. The default thread counts are at the end of the module.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

log = logging.getLogger(__name__)

AUTO = "auto"

# Photos per catalog transaction while the batch size is measured: a kill loses at most one
# transaction's work, and a transaction per photo (batch 1 chosen) would make a large shoot pay
# SQLite's commit (fsync) per photo. An explicit --batch-size N still commits every N photos.
MIN_COMMIT = 8

CPU_CANDIDATES = (1, 2, 4, 8)
GPU_CANDIDATES = (1, 2, 4, 8, 16, 32)
# A candidate is tried only while one call holds at most this many pixels (the tower's activations
# grow with them). On the CPU, 8 MP = batch 8 at 1024 px (the former fixed default there); a
# full-resolution 24 MP analysis image is always scored alone.
CPU_PIXEL_BUDGET = 8 * 1024 * 1024
GPU_PIXEL_BUDGET = 32 * 1024 * 1024


def candidates(device_type: str, pixels_per_image: int) -> tuple[int, ...]:
    """The batch sizes worth trying on `device_type` ("cpu", "cuda", "mps") for images of this many
    pixels: powers of two up to 8 on the CPU and 32 on a GPU, within the device's pixel budget."""
    gpu = device_type in ("cuda", "mps")
    sizes = GPU_CANDIDATES if gpu else CPU_CANDIDATES
    budget = GPU_PIXEL_BUDGET if gpu else CPU_PIXEL_BUDGET
    return tuple(n for n in sizes if n == 1 or n * max(1, pixels_per_image) <= budget)


def largest_candidate(device_type: str) -> int:
    """The largest batch `candidates` can give on this device (the stream's read-ahead is sized by it)."""
    return max(GPU_CANDIDATES if device_type in ("cuda", "mps") else CPU_CANDIDATES)


_OUT_OF_MEMORY = ("out of memory", "can't allocate memory", "failed to allocate memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether a model call failed for want of memory (torch CPU/CUDA/MPS, ONNX Runtime's arena)."""
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or any(needle in text for needle in _OUT_OF_MEMORY)


@dataclass
class Timing:
    """The timed calls of one candidate size."""

    calls: int = 0
    images: int = 0
    pixels: int = 0
    seconds: float = 0.0

    @property
    def pixels_per_s(self) -> float:
        return self.pixels / self.seconds if self.seconds > 0 else float("inf")


class BatchTuner:
    """Chooses the batch size by timing model calls; see the module docstring.

    The stream asks `size` before each call, wraps the call in `timing(n, pixels_per_image)` and
    calls `finish()` at the end of the run (which chooses from what was measured when the run was
    too short to try everything). `begin(candidates)` is called once the device and the first
    image's size are known; until then `size` is 1.
    """

    def __init__(self, rounds: int = 2, warmup: int = 1, clock: Callable[[], float] = time.perf_counter):
        self.rounds, self.clock = max(1, rounds), clock
        self._warmup = max(0, warmup)
        self.candidates: tuple[int, ...] = ()
        self._schedule: list[int] = []
        self._pos = 0
        self.timings: dict[int, Timing] = {}
        self.failed: set[int] = set()  # out of the running: a size whose call raised, and larger ones
        self.raised: list[int] = []  # the sizes whose call raised
        self.chosen: int | None = None
        self.complete = False  # every scheduled call was timed (not cut short by the end of the run)

    @property
    def begun(self) -> bool:
        return bool(self.candidates)

    def begin(self, candidates: Sequence[int]) -> None:
        sizes = tuple(sorted(set(candidates)))
        if not sizes or sizes[0] < 1:
            raise ValueError(f"batch size candidates must be whole numbers ≥ 1, got {candidates}")
        self.candidates = sizes
        self._schedule = [n for r in range(self.rounds) for n in (sizes if r % 2 == 0 else sizes[::-1])]
        self.timings = {n: Timing() for n in sizes}
        if len(sizes) == 1:  # nothing to choose between
            self._choose(complete=True)

    @property
    def size(self) -> int:
        """The batch size the next call should have."""
        if self.chosen is not None:
            return self.chosen
        if not self._schedule:
            return 1
        return self._schedule[0] if self._warmup else self._schedule[self._pos]

    @contextmanager
    def timing(self, images: int, pixels_per_image: int) -> Iterator[None]:
        """Time one model call of `images` images: counted when it returns and has the size that
        was asked for; a call that runs out of memory puts its size and the larger ones out of the
        running."""
        asked = self.size
        started = self.clock()
        try:
            yield
        except BaseException as exc:
            self._failed(images, asked, exc)
            raise
        self._record(images, pixels_per_image, self.clock() - started, asked)

    def _record(self, images: int, pixels_per_image: int, seconds: float, asked: int) -> None:
        if self.chosen is not None or not self._schedule:
            return
        if self._warmup:
            self._warmup -= 1
            return
        if images != asked:  # a shape group's partial batch: another size than the one being timed
            return
        t = self.timings[images]
        t.calls += 1
        t.images += images
        t.pixels += images * pixels_per_image
        t.seconds += max(seconds, 0.0)
        self._advance()

    def _failed(self, images: int, asked: int, exc: BaseException) -> None:
        if self.chosen is not None or not self._schedule:
            return
        if self._warmup:  # a first call that fails still warmed the engine up
            self._warmup -= 1
            return
        if images <= 1 or images != asked:  # one photo at fault says nothing about a size
            return
        if is_out_of_memory(exc):  # a larger batch would need more: those are out too
            out = {n for n in self.candidates if n >= images}
            log.info("batch size %d ran out of memory; sizes %s are not tried", images, sorted(out))
            self.failed |= out
            self.raised.append(images)
        self._advance()  # any other failure (a photo the tower rejects): this call is just not timed

    def _advance(self) -> None:
        self._pos += 1
        while self._pos < len(self._schedule) and self._schedule[self._pos] in self.failed:
            self._pos += 1
        if self._pos >= len(self._schedule):
            self._choose(complete=True)

    def finish(self) -> int:
        """The end of the run: choose from what was measured (if not chosen yet); the chosen size."""
        if self.chosen is None:
            self._choose(complete=False)
        assert self.chosen is not None
        return self.chosen

    def _choose(self, complete: bool) -> None:
        timed = {n: t for n, t in self.timings.items() if t.calls and n not in self.failed}
        # the fastest per pixel; on a tie the smaller batch (less memory, earlier commits)
        self.chosen = min(timed, key=lambda n: (-timed[n].pixels_per_s, n)) if timed else 1
        self.complete = complete and bool(timed)
        if timed or self.failed:
            log.info("%s", self.describe())

    def images_per_s(self) -> dict[int, float]:
        """Each timed candidate's speed in images/s of the run's mean timed image (per-pixel speed,
        so a size timed on portraits and one timed on square crops compare fairly)."""
        timed = {n: t for n, t in self.timings.items() if t.calls and t.seconds > 0 and n not in self.failed}
        images = sum(t.images for t in timed.values())
        if not images:
            return {}
        mean_pixels = sum(t.pixels for t in timed.values()) / images
        return {n: t.pixels_per_s / mean_pixels for n, t in sorted(timed.items())}

    def describe(self) -> str:
        """'batch size 2 (measured: 1 → 2.9/s, 2 → 3.1/s, 4 → 3.0/s)' for the run's summary."""
        if self.chosen is None:
            return "batch size: not chosen yet"
        if len(self.candidates) == 1 and not self.failed:
            return f"batch size {self.chosen} (the only size that fits these images in memory)"
        rates = self.images_per_s()
        parts = [f"{n} → {r:.2f}/s" if r < 10 else f"{n} → {r:.0f}/s" for n, r in rates.items()]
        parts += [f"{n} failed" if n in self.raised else f"{n} not tried" for n in sorted(self.failed)]
        if not parts:
            return f"batch size {self.chosen} (too few photos to measure)"
        cut = "" if self.complete else "; the run ended before each size was timed twice"
        return f"batch size {self.chosen} (measured: {', '.join(parts)}{cut})"


# --- threads --------------------------------------------------------------------------------------
# While indexing, the decode threads (decode, thumbnail, focus, faces: ~1 CPU-s per 24 MP photo) and
# the encoder's intra-op threads (torch's OpenMP pool, or ONNX Runtime's, which the tower takes from
# torch's count when it loads) share the cores. benchmarks/threads.py on 2 cores (AVX2, ONNX engine,
# `index --size 512`, 8 photos of 24 MP), two runs on a shared machine: at load 4-6 every pair but
# 1 decode + 2 inference (0.88x) ran within 2 % of 2 + 1, the decode threads being the wall, and
# 2 inference threads cost 5-10 % more CPU seconds per photo (an intra-op pool as wide as the
# machine waits at each parallel region for a thread a decoder has pre-empted); at load 6-13, 2 + 1
# ran 1.35x the former 2 + 2, which the quieter run did not repeat. Hence: inference gets half the
# cores, decoding the rest and at least 2 threads (decoding costs more than the encoder per photo
# at 512 px). Where the encoder runs on a GPU or not at all (--model none), every core decodes.


def thread_defaults(cores: int | None, device: str = "cpu") -> tuple[int, int]:
    """(decode workers, inference threads) for `cores` CPUs (os.cpu_count()) when the image encoder
    runs on `device` ("cpu", "cuda", "mps", or "none" without a model); see above."""
    cores = max(1, cores or 1)
    threads = max(1, cores // 2)
    if device != "cpu":
        return max(2, cores), threads
    return max(2, cores - threads), threads


def decode_workers(device: str = "cpu") -> int:
    """This machine's default number of decode threads (`--workers`) for an encoder on `device`."""
    return thread_defaults(os.cpu_count(), device)[0]


@contextmanager
def inference_threads() -> Iterator[None]:
    """Within: torch's intra-op threads sized by `thread_defaults` (an ONNX tower loaded within takes
    its count from torch), restored after; untouched where the user set OMP_NUM_THREADS. The model
    is loaded within it (ONNX Runtime's pool is sized once) and torch's tower runs within it."""
    if os.environ.get("OMP_NUM_THREADS"):
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(thread_defaults(os.cpu_count())[1])
    try:
        yield
    finally:
        torch.set_num_threads(before)
