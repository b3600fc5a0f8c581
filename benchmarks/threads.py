"""Decode threads against inference threads: `index --size 512` on 24-megapixel JPEGs, per configuration.

    .venv/bin/python benchmarks/threads.py            # 8 photos, each setting twice (7 min, 2 busy cores)
    .venv/bin/python benchmarks/threads.py --quick    # 4 photos, once each (a smoke run)

While indexing, the decode threads (`--workers`: decode, thumbnail, focus, faces per photo) and the
image encoder's intra-op threads (torch's OpenMP threads, or ONNX Runtime's) share the cores. This
runs the real pipeline (`index_folder`, fresh catalog, every pixel measure, RN50 with random weights:
speed does not depend on their values) for each (decode workers, inference threads) pair on the same
photos, in one process, in ABBA order (the configurations, then the same in reverse), so a load that
drifts costs each alike. It prints the CPU (model, SIMD flags, load), then per configuration the
photos/s (median of its runs), the CPU seconds it spent per photo (user + system: what threads that
fight over cores waste shows here even when other programs take cores away) and the ratio to the
configuration the app picks by default (`indexing/batching.thread_defaults`).

Only the ratios within one run mean something on a shared machine. The shoot is
benchmarks/index_throughput.py's (cached under benchmarks/.cache/).
"""

from __future__ import annotations

import os

# As the app does (clipiqa_desktop/__init__.py), before torch loads: OpenMP threads wait passively.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from index_throughput import make_shoot  # benchmarks/ (this script's folder is on sys.path)
from machine import cpu_description

from clipiqa_desktop.catalog import Catalog
from clipiqa_desktop.indexing.batching import thread_defaults
from clipiqa_desktop.indexing.pipeline import IndexOptions, index_folder
from clipiqa_desktop.scoring import ClipIqaScorer, ModelSpec


def configurations(cores: int) -> list[tuple[int, int]]:
    """(decode workers, inference threads) worth comparing on `cores` cores, the default among them."""
    workers = sorted({1, max(1, cores // 2), cores, cores + 1})
    threads = sorted({1, max(1, cores // 2), cores})
    configs = [(w, t) for w in workers for t in threads]
    default = thread_defaults(cores)
    return configs if default in configs else [*configs, default]


def load(threads: int, engine: str) -> ClipIqaScorer:
    torch.set_num_threads(threads)
    spec = ModelSpec("RN50", "none")
    try:
        return ClipIqaScorer.load(spec, "cpu", "auto", engine=engine, threads=threads)
    except TypeError:  # a version without the engine choice: torch
        return ClipIqaScorer.load(spec, "cpu", "auto")


def run(
    scorer: ClipIqaScorer, folder: Path, workers: int, threads: int, batch: int | str
) -> tuple[float, float]:
    """(photos/s, CPU seconds per photo) of one `index --size 512` of `folder` into a fresh catalog."""
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Catalog(Path(tmp) / "c.sqlite")
        options = IndexOptions(long_side=512, batch_size=batch, workers=workers)
        cpu0, start = os.times(), time.perf_counter()
        summary = index_folder(catalog, scorer, folder, options)
        wall, cpu1 = time.perf_counter() - start, os.times()
        catalog.close()
    if summary.failed:
        sys.exit(f"indexing failed: {summary.failed[:3]}")
    used = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return summary.indexed / wall, used / summary.indexed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=8, help="24 MP JPEGs indexed per run (default 8)")
    ap.add_argument("--rounds", type=int, default=2, help="runs per configuration, ABBA order (default 2)")
    ap.add_argument("--batch-size", default="1", help="images per model call, or auto (default 1)")
    ap.add_argument("--engine", default="auto", choices=("auto", "torch", "onnx"))
    ap.add_argument("--configs", help="W:T,W:T,... instead of the default set (W decode workers, T threads)")
    ap.add_argument("--quick", action="store_true", help="4 photos, one round")
    args = ap.parse_args()
    if args.quick:
        args.photos, args.rounds = 4, 1
    cores = os.cpu_count() or 1
    if args.configs:
        configs = [(int(w), int(t)) for w, t in (c.split(":") for c in args.configs.split(","))]
    else:
        configs = configurations(cores)
    default = thread_defaults(cores)
    batch: int | str = args.batch_size if args.batch_size == "auto" else int(args.batch_size)
    folder = make_shoot(12)  # index_throughput's cached shoot; the first `--photos` of it are indexed
    with tempfile.TemporaryDirectory() as tmp:
        shoot = Path(tmp) / "shoot"
        shoot.mkdir()
        for p in sorted(folder.glob("*.JPG"))[: args.photos]:
            (shoot / p.name).symlink_to(p)
        scorers = {t: load(t, args.engine) for t in sorted({t for _, t in configs})}
        run(scorers[default[1]], shoot, *default, batch)  # warm-up: caches, first-call allocations
        order = [c for r in range(args.rounds) for c in (configs if r % 2 == 0 else configs[::-1])]
        results: dict[tuple[int, int], list[tuple[float, float]]] = {c: [] for c in configs}
        for w, t in order:
            results[(w, t)].append(run(scorers[t], shoot, w, t, batch))
            print(f"  workers {w}, threads {t}: {results[(w, t)][-1][0]:.2f} photos/s", file=sys.stderr)
    rate = {c: statistics.median(r for r, _ in runs) for c, runs in results.items()}
    cpu = {c: statistics.median(u for _, u in runs) for c, runs in results.items()}
    engines = "/".join(sorted({getattr(s, "engine", "torch") for s in scorers.values()}))
    print(
        f"\n# Decode workers × inference threads — index --size 512, {args.photos} photos 6000×4000 JPEG q92"
    )
    print(f"- {cpu_description()}; {cores} CPUs")
    print(
        f"- torch {torch.__version__}, RN50 random weights, engine {engines}, "
        f"batch {args.batch_size}, every pixel measure; {args.rounds} run(s) per configuration (ABBA), median"
    )
    w, t = default
    print(f"- default here (thread_defaults({cores})): {w} decode workers, {t} inference threads\n")
    print("| decode workers | inference threads | photos/s | CPU s per photo | × default |")
    print("|---|---|---|---|---|")
    for c in sorted(configs, key=lambda c: -rate[c]):
        mark = " (default)" if c == default else ""
        print(f"| {c[0]} | {c[1]}{mark} | {rate[c]:.2f} | {cpu[c]:.2f} | {rate[c] / rate[default]:.2f} |")


if __name__ == "__main__":
    main()
