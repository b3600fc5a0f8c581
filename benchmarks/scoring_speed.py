"""Throughput and accuracy of the CLIP-IQA image encoder: fp32 against the fast path.

What it measures
    1. Speed: images/s of `ClipIqaScorer.encode_images` for every analysis size × batch size, once
       in fp32 and once on the fast path (bf16 weights + channels-last on the CPU, fp16 on CUDA).
       Images are 4:3 landscape (size = long side, e.g. 1024 -> 1024×768) filled with fixed random
       uint8 pixels. Each measurement warms up (≥ 1 call and ≥ a quarter of `--seconds`), then
       times at least two calls and at least `--seconds`; the median call time is reported as
       images/s. The two variants' timed calls alternate, so a noisy machine biases both alike;
       a "~" marks measurements whose slowest call took over 1.5× the fastest.
    2. Accuracy of the fast path: a set of ~16 photographs (the two TID2013 images under
       ../shared/data/tid2013 and blurred / darkened / noisy / contrast-changed / flipped / rotated
       variants of them) is scored one image at a time with both variants on all 12 built-in
       attributes; the largest and mean |score difference| and the lowest embedding cosine are printed.

Weights are RANDOM (`pretrained="none"`): OpenAI's weights cannot be downloaded on the benchmark
machine. Both variants are built from the same seed, so they hold identical weights, and their logit
scale is set to 100 as in OpenAI's checkpoint, so score differences have the same sensitivity to
embedding errors as with real weights (dscore = s(1-s)·100·d(cos₊ − cos₋), up to 25× at s = 0.5).
Random image towers map all images to nearly the same embedding, so the accuracy part checks the
numeric error of the fast path only; rerun it with real weights before trusting rankings.

Run from the repository root:
    .venv/bin/python benchmarks/scoring_speed.py            # full run (several minutes on 2 cores)
    .venv/bin/python benchmarks/scoring_speed.py --quick    # smoke run (seconds)
    .venv/bin/python benchmarks/scoring_speed.py --sizes 512 --batch-sizes 1,16 --device cpu
"""

from __future__ import annotations

import os

# As the app does (clipiqa_desktop/__init__.py), before torch loads: OpenMP threads wait passively.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import logging
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from clipiqa_desktop.scoring import BUILTIN_ATTRIBUTES, ClipIqaScorer, ModelSpec, image_to_tensor
from clipiqa_desktop.scoring.device import cpu_has_fast_bf16

REPO_ROOT = Path(__file__).resolve().parent.parent
TID2013_DIR = REPO_ROOT.parent / "shared" / "data" / "tid2013"
TID2013_FILES = ("I01.BMP", "i01_01_5.bmp")

WEIGHTS_SEED = 0  # same seed before each load -> identical random weights (checked after loading)
PIXELS_SEED = 1234  # fixed random benchmark batches
NOISE_SEED = 7  # the noisy accuracy variants
OPENAI_LOGIT_SCALE = 100.0
TOLERANCE = 0.01  # the claim in scoring/device.py: fast-path scores within 0.01 of fp32
GPU_MAX_PIXELS = 32 * 1024 * 768
CPU_MAX_PIXELS = 8 * 1024 * 768  # skips batch 32 at 1024 (minutes per call on a small CPU)
WARMUP_FRACTION = 0.25  # warm-up time per measurement, as a fraction of --seconds
NOISY_SPREAD = 1.5  # flag a measurement whose slowest timed call took > 1.5× its fastest


@dataclass(frozen=True)
class Variant:
    """One way of running the image encoder."""

    label: str
    precision: str


@dataclass(frozen=True)
class SpeedRow:
    size: int
    batch: int
    images_per_s: dict[str, float | None]  # variant label -> img/s, None when skipped
    noisy: frozenset[str] = frozenset()  # variants whose timed calls varied by > NOISY_SPREAD×


@dataclass(frozen=True)
class AccuracyRow:
    size: int
    max_abs_delta: float
    mean_abs_delta: float
    min_cosine: float
    min_cross_image_cosine: float  # fp32 embeddings of different images (random-weight collapse)


# --- options -------------------------------------------------------------------------------------


def int_list(text: str) -> list[int]:
    """'224,512' -> [224, 512]."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--sizes", type=int_list, default=[224, 512, 1024], help="long sides (default 224,512,1024)"
    )
    parser.add_argument(
        "--batch-sizes", type=int_list, default=[1, 8, 32], help="batch sizes (default 1,8,32)"
    )
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="default: cuda if available"
    )
    parser.add_argument("--model", default="RN50", help="open_clip architecture (default RN50)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum timed seconds per measurement")
    parser.add_argument(
        "--max-pixels-per-batch",
        type=int,
        default=None,
        help=f"skip combinations whose batch holds more pixels (default {GPU_MAX_PIXELS} = 32×1024×768 on "
        f"CUDA, {CPU_MAX_PIXELS} = 8×1024×768 on the CPU, which skips batch 32 at 1024)",
    )
    parser.add_argument(
        "--accuracy-sizes",
        type=int_list,
        default=None,
        help="long sides for the accuracy check (default: --sizes; 224,512 with --quick)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: sizes 224, batch sizes 1,8, 0.5 s")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.batch_sizes, args.seconds = [224], [1, 8], 0.5
        if args.accuracy_sizes is None:
            args.accuracy_sizes = [224, 512]
    if args.accuracy_sizes is None:
        args.accuracy_sizes = list(args.sizes)
    return args


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: torch sees no CUDA GPU here")
    return torch.device(name)


def fast_variant(device: torch.device) -> Variant:
    return Variant("fp16", "fp16") if device.type == "cuda" else Variant("bf16+channels-last", "bf16")


def landscape_shape(size: int) -> tuple[int, int]:
    """(height, width) of a 4:3 landscape image with long side `size`."""
    return round(size * 3 / 4), size


# --- model loading -------------------------------------------------------------------------------


def load_scorer(model: str, device: torch.device, precision: str) -> ClipIqaScorer:
    """Random weights from a fixed seed, logit scale as in OpenAI's checkpoint."""
    torch.manual_seed(WEIGHTS_SEED)
    scorer = ClipIqaScorer.load(ModelSpec(model, "none"), device=device.type, precision=precision)
    scorer.logit_scale = OPENAI_LOGIT_SCALE
    return scorer


def check_same_weights(a: ClipIqaScorer, b: ClipIqaScorer) -> None:
    """Both variants must hold the same weights (up to the fast dtype), else the comparison is moot."""
    pa = dict(a._visual.named_parameters())  # private, but a benchmark may look inside
    for name, p in b._visual.named_parameters():
        if not torch.equal(pa[name].detach().to(p.dtype), p.detach()):
            raise RuntimeError(f"the two variants got different random weights ({name})")


# --- speed ---------------------------------------------------------------------------------------


def interleaved_timings(
    calls: Mapping[str, Callable[[], object]], device: torch.device, min_seconds: float
) -> dict[str, list[float]]:
    """Per variant: warm-up, then timed calls until it has ≥ 2 calls and ≥ min_seconds of them.

    Warm-up is ≥ 1 call and ≥ WARMUP_FRACTION · min_seconds per variant (oneDNN primitive caches,
    allocator growth). The variants' timed calls alternate, so slow phases of a shared or throttled
    machine hit all of them alike instead of biasing the ratio.
    """

    def run(fn: Callable[[], object]) -> float:
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    for fn in calls.values():
        spent = run(fn)
        while spent < WARMUP_FRACTION * min_seconds:
            spent += run(fn)
    times: dict[str, list[float]] = {label: [] for label in calls}
    while True:
        pending = [k for k, t in times.items() if len(t) < 2 or sum(t) < min_seconds]
        if not pending:
            return times
        for label in pending:
            times[label].append(run(calls[label]))


def measure_speed(
    scorers: dict[str, ClipIqaScorer],
    sizes: Sequence[int],
    batch_sizes: Sequence[int],
    max_pixels: int,
    min_seconds: float,
    device: torch.device,
) -> list[SpeedRow]:
    rows: list[SpeedRow] = []
    for size in sizes:
        h, w = landscape_shape(size)
        generator = torch.Generator().manual_seed(PIXELS_SEED + size)
        pixels = torch.randint(0, 256, (max(batch_sizes), 3, h, w), dtype=torch.uint8, generator=generator)
        for batch in batch_sizes:
            rates: dict[str, float | None] = dict.fromkeys(scorers)
            noisy: set[str] = set()
            if batch * h * w <= max_pixels:
                x = pixels[:batch].contiguous()
                calls = {label: partial(scorer.encode_images, x) for label, scorer in scorers.items()}
                for label, times in interleaved_timings(calls, device, min_seconds).items():
                    rates[label] = batch / statistics.median(times)
                    if max(times) > NOISY_SPREAD * min(times):
                        noisy.add(label)
            rows.append(SpeedRow(size, batch, rates, frozenset(noisy)))
            print(f"  measured {w}x{h} batch {batch}", file=sys.stderr, flush=True)
    return rows


# --- accuracy ------------------------------------------------------------------------------------


def add_noise(img: Image.Image, sigma: float, rng: np.random.Generator) -> Image.Image:
    arr = np.asarray(img, dtype=np.float32) + rng.normal(0.0, sigma, size=(img.height, img.width, 3))
    return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8))


def rotated_crop(img: Image.Image, degrees: float) -> Image.Image:
    """Rotate, then keep the central 4:3 region free of the black corners."""
    rotated = img.rotate(degrees, resample=Image.Resampling.BICUBIC)
    w, h = img.size
    keep = 0.7  # safely inside the rotated frame for |degrees| ≤ 12
    cw, ch = int(w * keep), int(h * keep)
    left, top = (w - cw) // 2, (h - ch) // 2
    return rotated.crop((left, top, left + cw, top + ch))


def variants_of(img: Image.Image, rng: np.random.Generator) -> list[tuple[str, Image.Image]]:
    """Eight natural-looking versions of one photograph."""
    return [
        ("original", img),
        ("blur3", img.filter(ImageFilter.GaussianBlur(3))),
        ("dark0.4", ImageEnhance.Brightness(img).enhance(0.4)),
        ("noise25", add_noise(img, 25.0, rng)),
        ("contrast1.8", ImageEnhance.Contrast(img).enhance(1.8)),
        ("contrast0.4", ImageEnhance.Contrast(img).enhance(0.4)),
        ("mirrored", ImageOps.mirror(img)),
        ("rot8-crop", rotated_crop(img, 8.0)),
    ]


def synthetic_photo(seed: int, size: tuple[int, int] = (512, 384)) -> Image.Image:
    """A smooth colour gradient with a few shapes and mild noise (fallback when TID2013 is missing)."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack(
        [
            128 + 100 * np.sin(xx / w * np.pi * (1 + c) + rng.uniform(0, 3)) * np.cos(yy / h * 2)
            for c in range(3)
        ],
        axis=-1,
    )
    for _ in range(6):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(20, 90)
        base[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.uniform(0, 255, size=3)
    base += rng.normal(0, 6, size=base.shape)
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))


def accuracy_images() -> tuple[list[tuple[str, Image.Image]], str]:
    """The ~16 test images and a line saying where they came from."""
    rng = np.random.default_rng(NOISE_SEED)
    paths = [TID2013_DIR / name for name in TID2013_FILES]
    if all(p.is_file() for p in paths):
        bases = [(p.stem, Image.open(p).convert("RGB")) for p in paths]
        source = f"TID2013 {', '.join(TID2013_FILES)} from {TID2013_DIR} + 7 variants of each"
    else:
        bases = [(f"synthetic{i}", synthetic_photo(i)) for i in range(2)]
        source = f"SYNTHETIC gradient+noise images ({TID2013_DIR} is missing) + 7 variants of each"
    images = [(f"{stem}/{name}", im) for stem, base in bases for name, im in variants_of(base, rng)]
    return images, source


def resize_long_side(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    scale = size / max(w, h)
    return img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BICUBIC)


def measure_accuracy(
    reference: ClipIqaScorer,
    fast: ClipIqaScorer,
    images: Sequence[tuple[str, Image.Image]],
    sizes: Sequence[int],
) -> list[AccuracyRow]:
    rows: list[AccuracyRow] = []
    for size in sizes:
        deltas: list[float] = []
        cosines: list[float] = []
        ref_embeddings: list[np.ndarray] = []
        for _name, img in images:
            x = image_to_tensor(resize_long_side(img, size)).unsqueeze(0)
            (ref,) = reference.score_batch(x, BUILTIN_ATTRIBUTES)
            (got,) = fast.score_batch(x, BUILTIN_ATTRIBUTES)
            deltas.extend(abs(got.scores[a.key] - ref.scores[a.key]) for a in BUILTIN_ATTRIBUTES)
            cosines.append(float(np.dot(ref.embedding, got.embedding)))
            ref_embeddings.append(ref.embedding)
        emb = np.stack(ref_embeddings)
        cross = float((emb @ emb.T).min())
        rows.append(AccuracyRow(size, max(deltas), float(np.mean(deltas)), min(cosines), cross))
        print(f"  accuracy at {size} done", file=sys.stderr, flush=True)
    return rows


# --- report --------------------------------------------------------------------------------------


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def print_header(args: argparse.Namespace, device: torch.device, fast: Variant, max_pixels: int) -> None:
    if device.type == "cuda":
        where = f"cuda ({torch.cuda.get_device_name(device)})"
    else:
        where = f"cpu ({cpu_name()}; native bf16: {'yes' if cpu_has_fast_bf16() else 'no'})"
    print("# CLIP-IQA image encoder: fp32 vs fast path")
    print()
    print(f"- torch {torch.__version__}, python {platform.python_version()}")
    print(f"- device: {where}")
    print(f"- CPU threads (torch.get_num_threads()): {torch.get_num_threads()}")
    print(f"- model: {args.model}; fast path: {fast.label} (precision={fast.precision!r})")
    print(
        "- weights: RANDOM (pretrained='none'; both variants hold identical weights, checked); real "
        f"OpenAI weights are not downloadable on this machine. Logit scale set to {OPENAI_LOGIT_SCALE:g} "
        "as in OpenAI's checkpoint."
    )
    print(
        f"- timing: encode_images on fixed random uint8 4:3 batches; warm-up ≥1 call and "
        f"≥{WARMUP_FRACTION * args.seconds:g} s, then ≥2 calls and ≥{args.seconds:g} s per variant "
        "(variants interleaved); median call time -> img/s"
    )
    print(f"- max pixels per batch: {max_pixels} (larger combinations are skipped)")
    print()


def fmt_rate(value: float | None, noisy: bool = False) -> str:
    if value is None:
        return "skipped"
    return f"{value:.2f}{' ~' if noisy else ''}"


def print_speed(rows: Sequence[SpeedRow], ref: Variant, fast: Variant, max_pixels: int) -> None:
    print(f"| size | batch | {ref.label} img/s | {fast.label} img/s | ratio fast/fp32 |")
    print("|---:|---:|---:|---:|---:|")
    for row in rows:
        h, w = landscape_shape(row.size)
        a, b = row.images_per_s[ref.label], row.images_per_s[fast.label]
        ratio = "skipped" if a is None or b is None else f"{b / a:.2f}×"
        cells = [fmt_rate(a, ref.label in row.noisy), fmt_rate(b, fast.label in row.noisy)]
        print(f"| {w}x{h} | {row.batch} | {cells[0]} | {cells[1]} | {ratio} |")
    print()
    notes = []
    skipped = [f"batch {r.batch} at {r.size}" for r in rows if None in r.images_per_s.values()]
    if skipped:
        notes.append(f"skipped (batch holds more than {max_pixels} pixels): {', '.join(skipped)}")
    if any(r.noisy for r in rows):
        notes.append(
            f"~ = noisy: the slowest timed call took more than {NOISY_SPREAD:g}× the fastest (median shown)"
        )
    for note in notes:
        print(note)
    if notes:
        print()


def print_accuracy(rows: Sequence[AccuracyRow], n_images: int, source: str, fast: Variant) -> None:
    print(
        f"Accuracy of {fast.label} vs fp32: {n_images} images, batch 1, {len(BUILTIN_ATTRIBUTES)} attributes "
        f"each ({source}); random weights, logit scale {OPENAI_LOGIT_SCALE:g}."
    )
    print()
    print("| size | max \\|Δscore\\| | mean \\|Δscore\\| | min cos(emb) |")
    print("|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row.size} | {row.max_abs_delta:.4f} | {row.mean_abs_delta:.4f} | {row.min_cosine:.6f} |")
    print()
    cross = min(r.min_cross_image_cosine for r in rows)
    print(
        "Caveat: with random weights the fp32 embeddings of *different* images are nearly identical "
        f"(pairwise cos ≥ {cross:.4f}), so this checks the numeric error of the fast path, not rankings."
    )
    worst = max(r.max_abs_delta for r in rows)
    verdict = "yes" if worst <= TOLERANCE else "no"
    print(f"fast path within {TOLERANCE:g} of fp32: {verdict} (max |Δscore| {worst:.4f})")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # silence the expected "RANDOM weights" warning
    device = pick_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    ref, fast = Variant("fp32", "fp32"), fast_variant(device)
    max_pixels = args.max_pixels_per_batch or (GPU_MAX_PIXELS if device.type == "cuda" else CPU_MAX_PIXELS)
    print_header(args, device, fast, max_pixels)

    scorers = {v.label: load_scorer(args.model, device, v.precision) for v in (ref, fast)}
    check_same_weights(scorers[ref.label], scorers[fast.label])

    speed = measure_speed(scorers, args.sizes, args.batch_sizes, max_pixels, args.seconds, device)
    print_speed(speed, ref, fast, max_pixels)

    images, source = accuracy_images()
    accuracy = measure_accuracy(scorers[ref.label], scorers[fast.label], images, args.accuracy_sizes)
    print_accuracy(accuracy, len(images), source, fast)
    return 0


if __name__ == "__main__":
    sys.exit(main())
