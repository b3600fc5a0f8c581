"""The CUDA check: the fp16 image encoder and `index --size 1024` on a GPU machine, in one short run.

    python3 benchmarks/gpu_check.py                      # on a CUDA machine: < 8 minutes (H200, 16 cores)
    .venv/bin/python benchmarks/gpu_check.py --dry-run   # here, on the CPU: that the script runs (~1 min)

What it prints (and writes to $OUT/gpu_check.txt when $OUT is set):

1. torch, CUDA, cuDNN and the GPU (name, memory, compute capability), the CPU cores.
2. The encoder alone, RN50 with random weights (speed does not depend on their values) in fp16 as
   `--device auto` runs it on CUDA: images/s at 224, 512 and 1024 px (3:2 landscape, the shoot's
   analysis shapes) at batch sizes 1, 8, 32 and 64; uint8 batches handed over from the CPU as the
   indexer hands them (the host-to-device copy is in the time).
3. fp16 against fp32 on the GPU: the largest score difference over 12 attributes on 8 of the shoot's
   photos at 512 px (the README claims fp16 is within 0.01 of fp32).
4. End to end: `index_folder` at --size 1024 (the batch size chosen by the pipeline's own auto) on a
   generated shoot of 24 MP JPEGs (200 by default, made in parallel with the benchmark's shoot maker,
   benchmarks/index_throughput.make_shoot), with the pixel measures (focus, exposure; faces only with
   the [faces] extra) and without them; beside each, the decode step alone (`_prepare`) with the same
   number of decode threads. The goal is "decode-bound, ≥ 100 photos/s at 1024 px": e2e / decode-alone
   near 1 means the GPU waits for the decoders, not the other way round.

On this project's H200 device machine (python3 there holds torch; no network), the packages it
lacks travel as wheels (see the device README). Here, once, in the repository root:

    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \\
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \\
        -d .whl open_clip_torch ftfy wcwidth SQLAlchemy platformdirs

then run with carry [".whl"] and the command

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \\
        --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1 \\
        && python3 benchmarks/gpu_check.py

Without mediapipe (the [faces] extra, too large to carry) faces are not measured there; the line
"pixel measures:" says which were made.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the app does, before torch loads

import argparse
import logging
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TextIO

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # the project, without installing it

from index_throughput import RN50, default_workers, end_to_end, make_shoot, tower_shapes

from clipiqa_desktop.imaging import target_size
from clipiqa_desktop.indexing.pipeline import IndexOptions, _prepare
from clipiqa_desktop.measures.photo import faces_unavailable, measurable_keys
from clipiqa_desktop.scoring import (
    BUILTIN_ATTRIBUTES,
    ClipIqaScorer,
    DeviceUnavailable,
    image_to_tensor,
    resolve_device,
)

GOAL = 100.0  # photos/s at 1024 px, decode-bound


class Report:
    """print() to stdout and, when $OUT is set, to $OUT/gpu_check.txt as well."""

    def __init__(self) -> None:
        out = os.environ.get("OUT")
        self.file: TextIO | None = None
        if out:
            Path(out).mkdir(parents=True, exist_ok=True)
            self.file = open(Path(out) / "gpu_check.txt", "w", encoding="utf-8")  # noqa: SIM115

    def __call__(self, text: str = "") -> None:
        print(text, flush=True)
        if self.file is not None:
            self.file.write(text + "\n")
            self.file.flush()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def timed(call: Callable[[], object], device: torch.device, min_seconds: float, min_calls: int = 3) -> float:
    """Median seconds of `call` after two warm-up calls; at least `min_calls` and `min_seconds`."""
    for _ in range(2):
        call()
    sync(device)
    times: list[float] = []
    while len(times) < min_calls or sum(times) < min_seconds:
        start = time.perf_counter()
        call()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine(report: Report, device: torch.device) -> None:
    report(
        f"- python {platform.python_version()}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
        f"cuDNN {torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else '–'}"
    )
    report(f"- CPU: {os.cpu_count()} logical CPUs, {platform.processor() or platform.machine()}")
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        report(
            f"- GPU: {p.name}, {p.total_memory / 2**30:.0f} GiB, compute capability {p.major}.{p.minor}, "
            f"{p.multi_processor_count} multiprocessors"
        )
        try:
            smi = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version,clocks.max.sm", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=20,
            )
            if smi.returncode == 0:
                report(f"- nvidia-smi: driver, max SM clock: {smi.stdout.strip()}")
        except (OSError, subprocess.SubprocessError):
            pass
    else:
        report("- no GPU: a dry run on the CPU (fp32), to show the script runs; no figure here is a GPU's")


def encoder(
    report: Report, scorer: ClipIqaScorer, sizes: list[int], batches: list[int], seconds: float
) -> None:
    dev = scorer.device
    report(f"\n## Encoder alone: RN50, {scorer.describe()}, images/s (3:2 landscape)\n")
    report("| long side | tower input | " + " | ".join(f"batch {b}" for b in batches) + " |")
    report("|---:|---|" + "---:|" * len(batches))
    for size in sizes:
        w, h = next(iter(tower_shapes(scorer, [target_size(6000, 4000, size)])))
        cells = []
        for b in batches:
            x = torch.randint(0, 256, (b, 3, h, w), dtype=torch.uint8)
            try:
                seconds_per_call = timed(partial(scorer.encode_images, x), dev, seconds)
                cells.append(f"{b / seconds_per_call:.1f}")
            except torch.OutOfMemoryError:
                cells.append("out of memory")
                torch.cuda.empty_cache()
        report(f"| {size} | {w} × {h} | " + " | ".join(cells) + " |")


def fp16_deviation(report: Report, fast: ClipIqaScorer, folder: Path, n: int = 8) -> None:
    if fast.precision == "fp32":
        report("\n- fp16 vs fp32: not measured (the fast path here is fp32)")
        return
    ref = ClipIqaScorer.load(RN50, fast.device.type, "fp32")
    kept, ref.logit_scale, fast.logit_scale = fast.logit_scale, 100.0, 100.0  # OpenAI's: 25x sensitivity
    worst, cos = 0.0, 1.0
    from PIL import Image, ImageOps

    for p in sorted(folder.glob("*.JPG"))[:n]:
        img = ImageOps.exif_transpose(Image.open(p).convert("RGB"))
        img = img.resize(target_size(*img.size, 512), Image.Resampling.BICUBIC)
        x = image_to_tensor(img)[None]
        (a,) = ref.score_batch(x, BUILTIN_ATTRIBUTES)
        (b,) = fast.score_batch(x, BUILTIN_ATTRIBUTES)
        worst = max(worst, *(abs(a.scores[k] - b.scores[k]) for k in a.scores))
        cos = min(cos, float((a.embedding * b.embedding).sum()))
    verdict = "within" if worst <= 0.01 else "NOT within"
    report(
        f"\n- {fast.precision} vs fp32 on the GPU, {n} photos × {len(BUILTIN_ATTRIBUTES)} attributes at "
        f"512 px: max |Δscore| {worst:.4f} ({verdict} 0.01), min embedding cosine {cos:.6f} (random "
        "weights, logit scale 100 as in OpenAI's checkpoint)"
    )
    fast.logit_scale = kept


def decode_alone(folder: Path, options: IndexOptions, multiple: int) -> float:
    """Photos/s of the decode step alone (`_prepare`, what the decode threads do) with the same threads."""
    paths = sorted(folder.glob("*.JPG"))
    start = time.perf_counter()
    with ThreadPoolExecutor(options.workers) as pool:
        list(pool.map(lambda p: _prepare(p, options, multiple, ()), paths))
    return len(paths) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", help="auto (CUDA, then MPS), cuda, mps or cpu")
    ap.add_argument("--photos", type=int, default=200, help="24 MP JPEGs in the generated shoot")
    ap.add_argument("--size", type=int, default=1024, help="analysis size of the end-to-end run")
    ap.add_argument("--sizes", default="224,512,1024", help="encoder sizes")
    ap.add_argument("--batches", default="1,8,32,64", help="encoder batch sizes")
    ap.add_argument("--workers", type=int, default=None, help="decode threads (default: as index)")
    ap.add_argument("--seconds", type=float, default=1.0, help="timed seconds per encoder figure")
    ap.add_argument("--dry-run", action="store_true", help="on the CPU, 6 photos, small sizes: that it runs")
    args = ap.parse_args(argv)
    if args.dry_run:
        args.device = "cpu" if args.device == "auto" else args.device
        args.photos, args.size, args.sizes, args.batches, args.seconds = 6, 224, "224", "1,2", 0.2
    logging.basicConfig(level=logging.ERROR)  # the expected "RANDOM weights" warning
    report = Report()
    started = time.perf_counter()

    try:  # a missing device is said before minutes of shoot-making
        device = resolve_device(args.device)
    except DeviceUnavailable as exc:
        print(f"gpu_check: {exc}", file=sys.stderr)
        return 2
    if device.type == "cpu" and args.device == "auto":
        print(
            "gpu_check: torch sees no GPU here (CUDA or MPS); --dry-run tries the script on the CPU",
            file=sys.stderr,
        )
        return 2
    # The shoot first: its maker forks worker processes, better before CUDA and torch's threads start.
    folder = make_shoot(args.photos, jobs=os.cpu_count() or 1)
    fast = ClipIqaScorer.load(RN50, args.device, "auto")
    workers = args.workers or default_workers(fast.device.type)
    report(f"# GPU check — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    machine(report, fast.device)
    encoder(
        report,
        fast,
        [int(s) for s in args.sizes.split(",")],
        [int(b) for b in args.batches.split(",")],
        args.seconds,
    )

    fp16_deviation(report, fast, folder)
    keys = measurable_keys()
    faces = faces_unavailable()
    report(
        f"\n## index --size {args.size}: {args.photos} generated 24 MP JPEGs, {workers} decode threads\n\n"
        f"- pixel measures: {', '.join(keys) or 'none'}"
        + (f" (faces not measured: {faces})" if faces else "")
    )
    report("\n| run | e2e photos/s | decode alone, photos/s | e2e / decode | batch size |")
    report("|---|---:|---:|---:|---|")
    options = replace(IndexOptions(), long_side=args.size, workers=workers)
    rates = {}
    for label, opts in (
        ("with the pixel measures (full-resolution decode)", replace(options, measures=tuple(keys))),
        ("without them (draft decode)", replace(options, measures=())),
    ):
        dec = decode_alone(folder, opts, fast.input_multiple)
        run = end_to_end(fast, folder, opts)
        e2e, batch = run.photos_per_s, run.batch
        rates[label] = (e2e, dec)
        report(f"| {label} | {e2e:.1f} | {dec:.1f} | {e2e / dec:.2f} | {batch} |")
    best = max(e for e, _ in rates.values())
    met = best >= GOAL and args.size >= 1024
    report(
        f"\n- goal: decode-bound (e2e / decode ≈ 1) and ≥ {GOAL:.0f} photos/s at 1024 px: best e2e "
        f"{best:.1f} photos/s at {args.size} px ({'met' if met else 'not met'}); "
        "decode-bound "
        + ", ".join(
            f"{'yes' if e / d >= 0.8 else 'no'} {label.split(' (')[0]}" for label, (e, d) in rates.items()
        )
    )
    report(f"- the whole check took {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
