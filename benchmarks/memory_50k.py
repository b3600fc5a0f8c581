"""Peak memory of `clipiqa-desktop index` on a generated 50,000-photo card, against 5,000 photos.

    .venv/bin/python benchmarks/memory_50k.py                  # 50,000 + 5,000 photos (minutes)
    .venv/bin/python benchmarks/memory_50k.py --photos 2000 --baseline 500    # a smoke run

The card is DCIM/100CANON … DCIM/119CANON (20 camera folders) of small JPEGs (64 × 48 px, each
different: gradients, shapes, exposure and noise drawn per file), generated once and cached
(git-ignored) under benchmarks/.cache/. The baseline is a second card of the first 5,000 files (hard
links, in 2 camera folders). Both are indexed with `index -r` by the real CLI into fresh catalogs, in
this one run, with the TINY random test model (tests/data/tiny-rn.json) at --size 64: the figures
are about what grows with the folder — the file list, the plan, the catalog queries, batches in
flight — not about the model (RN50's own peak is in the README's 512 run of
benchmarks/index_throughput.py).

Peak RSS is the indexer's own VmHWM, printed by the child at exit (getrusage(RUSAGE_CHILDREN) would
also count pages shared with this process); RSS is sampled every 0.5 s against the photos committed,
so the curve shows whether memory grows with the folder. The JSON result goes to
benchmarks/.cache/memory_50k.json, where benchmarks/reliability.py reads it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
CACHE = ROOT / ".cache"
TINY = REPO / "tests" / "data" / "tiny-rn.json"
RESULT = CACHE / "memory_50k.json"
INTERESTING_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")

_PEAK_PROBE = """
import runpy, sys
sys.argv = ["clipiqa-desktop", *sys.argv[1:]]
code = 0
try:
    runpy.run_module("clipiqa_desktop", run_name="__main__")
except SystemExit as exit:
    code = exit.code
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print("PEAK_KB", line.split()[1], file=sys.stderr)
sys.exit(code)
"""

_TORCH_FACTS = """
import json, os, torch
import open_clip
from clipiqa_desktop.scoring.device import cpu_has_fast_bf16, resolve_precision
rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:"))
print(json.dumps({
    "import_rss_mb": round(rss / 1024, 1),
    "torch": torch.__version__,
    "torch_threads": torch.get_num_threads(),
    "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    "native_bf16": cpu_has_fast_bf16(),
    "auto_precision_cpu": resolve_precision("auto", torch.device("cpu")),
}))
"""


def machine() -> dict:
    """CPU model, cores, the CPU flags that matter to torch, and what torch makes of them."""
    info: dict = {
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
    }
    try:
        text = Path("/proc/cpuinfo").read_text()
        name = re.search(r"^model name\s*:\s*(.*)$", text, re.M)
        flags = re.search(r"^flags\s*:\s*(.*)$", text, re.M)
        info["cpu"] = name.group(1).strip() if name else platform.processor()
        have = set(flags.group(1).split()) if flags else set()
        info["cpu_flags"] = [f for f in INTERESTING_FLAGS if f in have]
    except OSError:
        info["cpu"], info["cpu_flags"] = platform.processor(), []
    try:
        mem = Path("/proc/meminfo").read_text()
        total = re.search(r"MemTotal:\s*(\d+)", mem)
        info["memory_gb"] = round(int(total.group(1)) / 1024**2, 1) if total else None
    except OSError:
        info["memory_gb"] = None
    out = subprocess.run([sys.executable, "-c", _TORCH_FACTS], capture_output=True, text=True, cwd=REPO)
    if out.returncode == 0:
        info.update(json.loads(out.stdout.strip().splitlines()[-1]))
    return info


def machine_line(m: dict) -> str:
    return (
        f"{m.get('cpu')}, {m.get('cores')} cores, {m.get('memory_gb')} GB; CPU flags: "
        f"{' '.join(m.get('cpu_flags', [])) or 'none of ' + ' '.join(INTERESTING_FLAGS)}; "
        f"torch {m.get('torch')} (CPU capability {m.get('cpu_capability')}, native bf16: "
        f"{'yes' if m.get('native_bf16') else 'no'}, {m.get('torch_threads')} threads); "
        f"Python {m.get('python')}"
    )


def _tile(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    a, b = rng.uniform(-3, 3, 2)
    base = rng.uniform(0, 255, 3)
    img = base + 40 * np.sin(x[..., None] / rng.uniform(3, 12) + a) + 40 * np.cos(y[..., None] / 7 + b)
    cy, cx = rng.integers(0, h - 8), rng.integers(0, w - 8)
    img[cy : cy + rng.integers(4, 16), cx : cx + rng.integers(4, 20)] = rng.uniform(0, 255, 3)
    img = img * rng.uniform(0.6, 1.3) + rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_card(n: int, folders: int, width: int = 64, height: int = 48) -> Path:
    """n different small JPEGs in DCIM/100CANON … (cached)."""
    card = CACHE / f"card-{width}x{height}-{n}"
    done = CACHE / f"{card.name}.complete"
    if done.exists():
        return card
    per = -(-n // folders)
    rng = np.random.default_rng(50_000)
    start = time.perf_counter()
    print(f"generating {n:,} JPEGs of {width}×{height} in {folders} camera folders: {card}", flush=True)
    for i in range(n):
        sub = card / "DCIM" / f"{100 + i // per}CANON"
        if i % per == 0:
            sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_tile(rng, width, height)).save(sub / f"IMG_{i:05d}.JPG", quality=85)
        if i and i % 10_000 == 0:
            print(f"  {i:,} in {time.perf_counter() - start:.0f} s", flush=True)
    done.touch()
    return card


def baseline_card(card: Path, n: int, folders: int) -> Path:
    """The first n files of `card`, hard-linked into their own card of `folders` camera folders."""
    small = CACHE / f"{card.name}-first-{n}"
    done = CACHE / f"{small.name}.complete"
    if done.exists():
        return small
    files = sorted(card.glob("DCIM/*/*.JPG"))[:n]
    per = -(-n // folders)
    for i, src in enumerate(files):
        sub = small / "DCIM" / f"{100 + i // per}CANON"
        sub.mkdir(parents=True, exist_ok=True)
        dst = sub / src.name
        if not dst.exists():
            os.link(src, dst)
    done.touch()
    return small


def _committed(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(db, timeout=5)
        try:
            return int(con.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def _rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def index_run(folder: Path, db: Path, size: str, batch: int, precision: str) -> dict:
    """Index `folder` (recursively) with the real CLI; peak RSS, RSS curve, time and catalog size."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    photos = len(list(folder.glob("DCIM/*/*.JPG")))
    cmd = [
        sys.executable,
        "-c",
        _PEAK_PROBE,
        "index",
        str(folder),
        "-r",
        "--catalog",
        str(db),
        "--model",
        str(TINY),
        "--pretrained",
        "none",
        "--device",
        "cpu",
        "--precision",
        precision,
        "--size",
        size,
        "--batch-size",
        str(batch),
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO)
    curve: list[tuple[float, int, int]] = []  # (seconds, photos committed, RSS MB)
    next_print = 0.0
    while proc.poll() is None:
        time.sleep(0.5)
        rss = _rss_kb(proc.pid)
        if rss is None:
            continue
        t = time.perf_counter() - start
        done = _committed(db)
        curve.append((round(t, 1), done, rss // 1024))
        if t >= next_print:
            print(f"  {t:6.0f} s: {done:,}/{photos:,} committed, RSS {rss / 1024:.0f} MB", flush=True)
            next_print = t + 30
    seconds = time.perf_counter() - start
    err = proc.stderr.read() if proc.stderr else ""
    peak = re.search(r"PEAK_KB (\d+)", err)
    summary = [ln for ln in err.splitlines() if ": done in " in ln or ": cancelled in " in ln]
    size_bytes = sum(Path(f"{db}{s}").stat().st_size for s in ("", "-wal") if Path(f"{db}{s}").exists())
    return {
        "photos": photos,
        "exit": proc.returncode,
        "seconds": round(seconds, 1),
        "photos_per_s": round(photos / seconds, 1),
        "peak_rss_mb": round(int(peak.group(1)) / 1024, 1) if peak else None,
        "catalog_mb": round(size_bytes / 1e6, 1),
        "committed": _committed(db),
        "summary": summary[-1] if summary else err.strip()[-2000:],
        "traceback": "Traceback" in err,
        "rss_curve": _thin(curve, 24),
    }


def _thin(curve: list[tuple[float, int, int]], n: int) -> list[tuple[float, int, int]]:
    if len(curve) <= n:
        return curve
    step = len(curve) / n
    return [curve[int(i * step)] for i in range(n)] + [curve[-1]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=50_000)
    ap.add_argument("--baseline", type=int, default=5_000, help="photos of the baseline card")
    ap.add_argument("--folders", type=int, default=20, help="camera folders of the big card")
    ap.add_argument("--size", default="64", help="analysis size passed to index")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--precision", default="fp32", help="encoder precision (the tests' tiny-model setting)")
    ap.add_argument("--json", type=Path, default=RESULT, help="where the result is written")
    ap.add_argument("--generate-only", action="store_true", help="only make (and cache) the cards")
    args = ap.parse_args()

    CACHE.mkdir(parents=True, exist_ok=True)
    m = machine()
    card = make_card(args.photos, args.folders)
    small = baseline_card(card, args.baseline, max(1, args.folders * args.baseline // args.photos))
    if args.generate_only:
        return
    command = "benchmarks/memory_50k.py " + " ".join(sys.argv[1:])
    print(f"# Peak memory of `index -r` — {args.photos:,} vs {args.baseline:,} photos")
    print(f"- machine: {machine_line(m)}")
    print(
        f"- TINY random model (tests/data/tiny-rn.json), --size {args.size}, --precision {args.precision}, "
        f"--batch-size {args.batch_size}, device cpu\n"
    )
    runs = {}
    for label, folder in (("baseline", small), ("full", card)):
        print(f"indexing {label}: {folder}", flush=True)
        runs[label] = index_run(
            folder, CACHE / f"memory-{label}.sqlite", args.size, args.batch_size, args.precision
        )
        r = runs[label]
        print(
            f"  exit {r['exit']}, {r['seconds']} s ({r['photos_per_s']} photos/s), "
            f"peak RSS {r['peak_rss_mb']} MB, catalog {r['catalog_mb']} MB; {r['summary']}",
            flush=True,
        )
    base, full = runs["baseline"], runs["full"]
    ratio = full["peak_rss_mb"] / base["peak_rss_mb"] if base["peak_rss_mb"] and full["peak_rss_mb"] else None
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "command": command,
        "machine": m,
        "model": "tiny random RN CLIP (tests/data/tiny-rn.json)",
        "size": args.size,
        "precision": args.precision,
        "batch_size": args.batch_size,
        "folders": args.folders,
        "runs": runs,
        "peak_ratio_full_over_baseline": round(ratio, 3) if ratio else None,
        "load_average_at_end": [round(x, 1) for x in os.getloadavg()],  # other work on the machine
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    print()
    print("| photos | camera folders | exit | time | photos/s | peak RSS | catalog |")
    print("|---|---|---|---|---|---|---|")
    for label in ("baseline", "full"):
        r = runs[label]
        n_folders = len(list((small if label == "baseline" else card).glob("DCIM/*")))
        print(
            f"| {r['photos']:,} | {n_folders} | {r['exit']} | {r['seconds']:.0f} s | {r['photos_per_s']} "
            f"| {r['peak_rss_mb']} MB | {r['catalog_mb']} MB |"
        )
    print(f"\npeak RSS at {args.photos:,} / at {args.baseline:,}: {ratio:.2f}" if ratio else "\nno peak read")
    print(f"result written to {args.json}")


if __name__ == "__main__":
    main()
