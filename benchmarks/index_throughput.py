"""Indexing throughput per inference engine, measured end to end on a generated shoot of 24 MP JPEGs.

    .venv/bin/python benchmarks/index_throughput.py            # the full run (~15 minutes on 2 cores)
    .venv/bin/python benchmarks/index_throughput.py --quick    # a smoke run (< 2 minutes)
    .venv/bin/python benchmarks/index_throughput.py --pyiqa    # + pyiqa's clipiqa (~15 minutes more)

The shoot is made once from scikit-image's real sample photographs (pip install '.[bench]'),
scaled to 6000×4000 with film-like grain and EXIF, saved as JPEG q92, and cached (git-ignored) under
benchmarks/.cache/. Everything below runs in one process on the same files, so the ratios are
meaningful even where absolute numbers drift with the machine's load:

- the machine: CPU model and SIMD flags, and its estimated fp32 FLOP peak (cores × GHz × FLOPs per
  cycle: 32 with AVX2 FMA, 64 with AVX-512; how it was estimated is printed);
- the engine and precision `--engine auto` chooses here (ClipIqaScorer.describe);
- per engine (torch, onnx; onnx is skipped with the reason where ONNX Runtime cannot run):
  the encoder alone on already-decoded tensors of the shoot's analysis shapes (the ceiling: the best
  of `--encoder-batches`), with its GFLOP/s and share of the machine's peak (the tower's FLOPs per
  image counted by torch.utils.flop_counter at those shapes); end-to-end `index` photos/s with the
  pixel measures (focus, exposure, faces) and without them (IndexOptions.measures=()), and the
  ratios e2e / naive and e2e / encoder ceiling;
- the naive loop: full decode, resize, batch-1 fp32 torch, one commit per photo (one figure per
  size, shared by both engines; it makes no pixel measures);
- re-index of an unchanged folder (per 1,000 photos), rescoring a new prompt over 20,000 stored
  embeddings, and (not with --quick) peak memory of a real `clipiqa-desktop index` process.

`--pyiqa` compares with pyiqa's `clipiqa` (RN50, its default backbone) on the same photos at full
resolution, pyiqa's default: each photo's file is handed to the metric as is. pyiqa is installed in a
throw-away virtual environment, benchmarks/.cache/pyiqa-venv (git-ignored; never a dependency of
this project: its licence is non-commercial), that sees this venv's torch through a .pth file, with
`pip install --no-deps` of pyiqa and the few small modules its import needs. pyiqa fetches CLIP
weights from the internet at run time; instead its documented `backbone` option is given the path of
a CLIP checkpoint holding the same random RN50 weights as ours (saved as TorchScript, the format of
OpenAI's checkpoints). Speed does not depend on the values. Weights here are random throughout: the
real ones cannot be downloaded on the benchmark machine.
"""

from __future__ import annotations

import os

# As the app does (clipiqa_desktop/__init__.py), before torch loads: OpenMP threads wait passively.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import logging
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import cpu_description

from clipiqa_desktop.catalog import Catalog, PhotoRecord
from clipiqa_desktop.imaging import target_size
from clipiqa_desktop.indexing.batching import thread_defaults
from clipiqa_desktop.indexing.pipeline import IndexOptions, index_folder
from clipiqa_desktop.scoring import (
    BUILTIN_ATTRIBUTES,
    ClipIqaScorer,
    LazyScorer,
    ModelSpec,
    image_to_tensor,
    pair_scores,
)

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / ".cache"
TINY = ROOT.parent / "tests" / "data" / "tiny-rn.json"
CAMERA = (6000, 4000)
RN50 = ModelSpec("RN50", "none")
ENGINES = ("torch", "onnx")
PYIQA_VERSION = "0.1.16"
# pyiqa's own import needs these besides torch, numpy, PIL, yaml, scipy, cv2, tqdm (from this venv)
PYIQA_PACKAGES = (
    f"pyiqa=={PYIQA_VERSION}",
    "openai-clip",
    "requests",
    "urllib3",
    "certifi",
    "idna",
    "charset-normalizer",
)


# --- the shoot ------------------------------------------------------------------------------------


def sample_photographs() -> list[np.ndarray]:
    try:
        from skimage import data
    except ImportError:
        sys.exit("benchmarks need scikit-image for real photographs: .venv/bin/pip install '.[bench]'")
    return [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.hubble_deep_field()]


def _make_photo(folder: Path, i: int) -> None:
    """Frame i of the shoot: a crop of a sample photograph at camera size, exposure, grain, EXIF."""
    rng = np.random.default_rng([1, i])  # per frame, so frames can be made in parallel
    sources = sample_photographs()
    src = sources[i % len(sources)]
    h, w = src.shape[:2]
    ch, cw = int(h * rng.uniform(0.7, 1.0)), int(w * rng.uniform(0.7, 1.0))
    y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    crop = Image.fromarray(src[y : y + ch, x : x + cw]).convert("RGB")
    size = CAMERA if i % 4 else CAMERA[::-1]  # every 4th frame is a portrait
    big = np.asarray(crop.resize(size, Image.Resampling.BICUBIC), dtype=np.float32)
    big = (
        big * np.float32(rng.uniform(0.6, 1.2))
        + rng.normal(0, 5, big.shape[:2]).astype(np.float32)[..., None]
    )
    img = Image.fromarray(np.clip(big, 0, 255).astype(np.uint8))
    if i % 3 == 0:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "BenchCam", "Mark 24"
    exif[0x8769] = {0x9003: f"2026:06:20 15:{i // 60 % 60:02d}:{i % 60:02d}", 0x8827: 800}
    part = folder / f".DSC_{i:04d}.part"
    img.save(part, "JPEG", quality=92, exif=exif)
    part.rename(folder / f"DSC_{i:04d}.JPG")


def make_shoot(n: int, jobs: int = 1) -> Path:
    """n camera-sized JPEGs (cached), made by `jobs` processes. Frames differ by crop, flip, exposure
    and grain."""
    folder = CACHE / f"shoot-24mp-{n}"
    if folder.is_dir() and len(list(folder.glob("*.JPG"))) == n:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    missing = [i for i in range(n) if not (folder / f"DSC_{i:04d}.JPG").is_file()]
    print(f"generating {len(missing)} 24-megapixel JPEGs in {folder} (once) ...", flush=True)
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            list(pool.map(_make_photo, [folder] * len(missing), missing))
    else:
        for i in missing:
            _make_photo(folder, i)
    return folder


def analysis_shapes(folder: Path, long_side: int) -> list[tuple[int, int]]:
    """(width, height) of each photo's analysis image at `long_side`."""
    shapes = []
    for p in sorted(folder.glob("*.JPG")):
        with Image.open(p) as im:
            shapes.append(target_size(*im.size, long_side))
    return shapes


def tower_shapes(scorer: ClipIqaScorer, shapes: list[tuple[int, int]]) -> Counter[tuple[int, int]]:
    """How many photos of each (width, height) the tower gets (rounded to its input multiple)."""
    m = scorer.input_multiple
    return Counter((-(-w // m) * m, -(-h // m) * m) for w, h in shapes)


# --- the machine ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Peak:
    gflops: float
    how: str


def _lscpu() -> dict[str, str]:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}


def flop_peak() -> Peak:
    """The CPU's fp32 peak: physical cores this process may use × clock × FLOPs per cycle per core."""
    info = _lscpu()
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    found = re.search(r"^flags\s*:(.*)$", cpuinfo, re.M)
    flags = set(found.group(1).split()) if found else set()
    logical = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    per_core = int(info.get("Thread(s) per core", "1") or 1)
    cores = max(1, logical // max(1, per_core))
    if info.get("CPU max MHz"):
        mhz, source = float(info["CPU max MHz"]), "lscpu's CPU max MHz"
    elif m := re.search(r"^cpu MHz\s*:\s*([\d.]+)", cpuinfo, re.M):
        mhz, source = float(m.group(1)), "/proc/cpuinfo's cpu MHz (the current clock; lscpu gives no maximum)"
    else:
        mhz, source = 2000.0, "an assumed 2.0 GHz (no clock found in lscpu or /proc/cpuinfo)"
    if "avx512f" in flags:
        per_cycle, unit = 64, "AVX-512 FMA: 2 units × 16 fp32 lanes × 2"
    elif "avx2" in flags and "fma" in flags:
        per_cycle, unit = 32, "AVX2 FMA: 2 units × 8 fp32 lanes × 2"
    elif "avx" in flags:
        per_cycle, unit = 16, "AVX without FMA: 8 lanes × (add + mul)"
    else:
        per_cycle, unit = 8, "SSE: 4 lanes × (add + mul)"
    gflops = cores * mhz / 1000 * per_cycle
    how = (
        f"{cores} cores ({logical} logical / {per_core} per core) × {mhz / 1000:.2f} GHz ({source}) "
        f"× {per_cycle} FLOP/cycle ({unit}) = {gflops:.0f} GFLOP/s"
    )
    return Peak(gflops, how)


def tower_gflop(fp32_torch: ClipIqaScorer, shapes: Counter[tuple[int, int]]) -> float:
    """The image tower's GFLOP per image (multiply-add = 2), the mean over the shoot's shapes."""
    from torch.utils.flop_counter import FlopCounterMode

    visual = fp32_torch._visual  # private, but a benchmark may look inside
    total = 0.0
    for (w, h), count in shapes.items():
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            visual(torch.zeros(1, 3, h, w))
        total += counter.get_total_flops() * count
    return total / sum(shapes.values()) / 1e9


def default_workers(device: str = "cpu") -> int:
    """The decode threads `index` uses by default on this machine for an encoder on `device`."""
    try:
        from clipiqa_desktop.indexing.batching import decode_workers
    except ImportError:  # before the thread defaults existed
        return IndexOptions().workers or 2
    return decode_workers(device)


# --- measurements ---------------------------------------------------------------------------------


def encoder_rate(
    scorer: ClipIqaScorer, shapes: Counter[tuple[int, int]], batch: int, seconds: float
) -> float:
    """Images/s of `encode_images` alone on uint8 batches of the shoot's shapes, weighted by how many
    photos have each shape: per shape a warm-up call, then ≥ 2 calls and ≥ `seconds`, the median."""
    per_image = 0.0
    for (w, h), count in shapes.items():
        x = torch.randint(
            0, 256, (batch, 3, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(w)
        )
        scorer.encode_images(x)
        times: list[float] = []
        while len(times) < 2 or sum(times) < seconds:
            start = time.perf_counter()
            scorer.encode_images(x)
            times.append(time.perf_counter() - start)
        per_image += statistics.median(times) / batch * count
    return sum(shapes.values()) / per_image


def decode_only(folder: Path, options: IndexOptions, multiple: int = 32) -> float:
    """Photos/s of the pipeline's decode step alone (`_prepare`: analysis image, pixel measures,
    thumbnail, EXIF, XMP, fingerprint) with the same decode threads."""
    from concurrent.futures import ThreadPoolExecutor

    from clipiqa_desktop.indexing.pipeline import _prepare
    from clipiqa_desktop.measures.photo import measurable_keys

    if options.measures is None:
        options = replace(options, measures=tuple(measurable_keys()))
    paths = sorted(folder.glob("*.JPG"))
    start = time.perf_counter()
    with ThreadPoolExecutor(options.workers) as pool:
        list(pool.map(lambda p: _prepare(p, options, multiple, ()), paths))
    return len(paths) / (time.perf_counter() - start)


@dataclass
class Run:
    photos_per_s: float
    batch: str  # what --batch-size auto chose, or the size given


def end_to_end(scorer: ClipIqaScorer, folder: Path, options: IndexOptions) -> Run:
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Catalog(Path(tmp) / "c.sqlite")
        start = time.perf_counter()
        summary = index_folder(catalog, scorer, folder, options)
        seconds = time.perf_counter() - start
        catalog.close()
    if summary.indexed != len(list(folder.glob("*.JPG"))):
        raise SystemExit(f"index failed on {len(summary.failed)} photos: {summary.failed[:3]}")
    chosen = getattr(summary, "batch_size", None) or f"batch size {options.batch_size}"
    return Run(summary.indexed / seconds, str(chosen))


def naive(scorer_fp32: ClipIqaScorer, folder: Path, long_side: int) -> float:
    """Full decode, resize, batch-1 fp32 torch inference, one commit per photo."""
    from PIL import ImageOps

    with tempfile.TemporaryDirectory() as tmp:
        catalog = Catalog(Path(tmp) / "c.sqlite")
        fid = catalog.folder_id(folder)
        aid = catalog.analysis_id("naive", str(long_side), scorer_fp32.embed_dim, scorer_fp32.logit_scale)
        assert fid is not None and aid is not None
        paths = sorted(folder.glob("*.JPG"))
        start = time.perf_counter()
        for p in paths:
            img = ImageOps.exif_transpose(Image.open(p).convert("RGB"))
            img = img.resize(target_size(*img.size, long_side), Image.Resampling.BICUBIC)
            r = scorer_fp32.score_batch(image_to_tensor(img)[None], BUILTIN_ATTRIBUTES)[0]
            st = p.stat()
            catalog.write_batch(
                fid,
                aid,
                [PhotoRecord(p.name, st.st_size, st.st_mtime_ns, scores=r.scores, embedding=r.embedding)],
            )
        seconds = time.perf_counter() - start
        catalog.close()
    return len(paths) / seconds


def reindex_unchanged(n: int = 1000) -> float:
    """Seconds to re-index an unchanged folder of n photos (the model is never loaded)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "card"
        folder.mkdir()
        src = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
        for i in range(n):
            Image.fromarray(np.roll(src, i, axis=1)).save(folder / f"IMG_{i:05d}.JPG", quality=80)
        catalog = Catalog(Path(tmp) / "c.sqlite")
        opts = IndexOptions(long_side=64, batch_size=32)
        tiny = ClipIqaScorer.load(ModelSpec(str(TINY), "none"), "cpu", "fp32", engine="torch")
        index_folder(catalog, tiny, folder, opts)
        lazy = LazyScorer(ModelSpec(str(TINY), "none"), "cpu", "fp32", engine="torch")
        start = time.perf_counter()
        summary = index_folder(catalog, lazy, folder, opts)
        seconds = time.perf_counter() - start
        assert summary.unchanged == n and not lazy.loaded
        catalog.close()
    return seconds * 1000 / n


def rescoring(scorer: ClipIqaScorer, n: int = 20_000) -> tuple[float, float, float]:
    """(load embeddings s, score s, text-encode s) for a new prompt over n stored embeddings."""
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Catalog(Path(tmp) / "c.sqlite")
        fid = catalog.folder_id(Path(tmp))
        aid = catalog.analysis_id(scorer.model_id, "512", scorer.embed_dim, scorer.logit_scale)
        assert fid is not None and aid is not None
        rng = np.random.default_rng(0)
        for start in range(0, n, 2000):
            emb = rng.normal(size=(2000, scorer.embed_dim)).astype(np.float32)
            emb /= np.linalg.norm(emb, axis=1, keepdims=True)
            catalog.write_batch(
                fid,
                aid,
                [
                    PhotoRecord(
                        f"IMG_{start + i:05d}.JPG",
                        1,
                        1,
                        fingerprint=f"{start + i}",
                        scores={"quality": 0.5},
                        embedding=e,
                    )
                    for i, e in enumerate(emb)
                ],
            )
        t0 = time.perf_counter()
        text = scorer.text_features(["Eyes closed.", "Eyes open."]).cpu()
        t1 = time.perf_counter()
        ids, matrix = catalog.embeddings([fid], aid)
        t2 = time.perf_counter()
        values = pair_scores(matrix, text[:1].numpy(), text[1:].numpy(), scorer.logit_scale)
        t3 = time.perf_counter()
        assert values.shape == (n, 1) and len(ids) == n
        catalog.close()
    return t2 - t1, t3 - t2, t1 - t0


_PEAK_PROBE = """
import runpy, sys
sys.argv = ["clipiqa-desktop", *sys.argv[1:]]
try:
    runpy.run_module("clipiqa_desktop", run_name="__main__")
except SystemExit as exit:
    code = exit.code
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print("PEAK_KB", line.split()[1])
sys.exit(code)
"""


def peak_memory_mb(folder: Path, long_side: int, batch: int | str = "auto") -> float:
    """Peak RSS of a real `clipiqa-desktop index` process (model load included).

    Read from the child's own VmHWM: getrusage(RUSAGE_CHILDREN) would count the pages the child
    shared with this (large) benchmark process between fork and exec.
    """
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "index",
            str(folder),
            "--catalog",
            f"{tmp}/c.sqlite",
            "--pretrained",
            "none",
            "--size",
            str(long_side),
            "--batch-size",
            str(batch),
        ]
        out = subprocess.run(
            [sys.executable, "-c", _PEAK_PROBE, *args], check=True, capture_output=True, text=True
        )
    kb = next(int(line.split()[1]) for line in out.stdout.splitlines() if line.startswith("PEAK_KB"))
    return kb / 1024


# --- pyiqa ----------------------------------------------------------------------------------------

_PYIQA_PROBE = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import torch, pyiqa
jit, size, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
metric = pyiqa.create_metric("clipiqa", device="cpu", backbone=jit)
print(json.dumps({"threads": torch.get_num_threads(), "version": pyiqa.__version__}), flush=True)
if size:  # the same analysis images as ours: resized before the metric, tensors in
    from PIL import Image, ImageOps
    def load(p):
        im = ImageOps.exif_transpose(Image.open(p).convert("RGB"))
        s = size / max(im.size)
        im = im.resize((round(im.width * s), round(im.height * s)), Image.Resampling.BICUBIC)
        return torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).view(im.height, im.width, 3)\
            .permute(2, 0, 1)[None].float() / 255
else:  # pyiqa's default: the file as it is, at full resolution
    load = str
with torch.inference_mode():
    metric(torch.rand(1, 3, 224, 224))  # warm-up (not timed): first-call allocations
    for p in paths:
        start = time.perf_counter()
        score = float(metric(load(p)))
        print(json.dumps({"path": p, "seconds": time.perf_counter() - start, "score": score}), flush=True)
"""


def pyiqa_python() -> tuple[Path | None, str]:
    """The throw-away venv's python with pyiqa installed (made once), or None and why not."""
    venv = CACHE / "pyiqa-venv"
    python = venv / "bin" / "python"
    done = venv / ".installed"
    if done.is_file() and python.is_file():
        return python, done.read_text().strip()
    shutil.rmtree(venv, ignore_errors=True)
    base = getattr(sys, "_base_executable", sys.executable)
    steps = [[base, "-m", "venv", str(venv)]]
    steps.append([str(python), "-m", "pip", "install", "-q", "--no-deps", *PYIQA_PACKAGES])
    for cmd in steps:
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            lines = [x for x in (out.stderr or out.stdout).splitlines() if x.strip() and "ignored" not in x]
            return None, f"`{' '.join(cmd[:5])} …` failed: {lines[-1] if lines else out.returncode}"
        if cmd[1:3] == ["-m", "venv"]:  # see this venv's torch, numpy, PIL ... (after its own packages)
            site = subprocess.run(
                [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            import sysconfig

            (Path(site) / "clipiqa-project-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    version = subprocess.run(
        [
            str(python),
            "-c",
            "import warnings; warnings.filterwarnings('ignore'); import pyiqa; print(pyiqa.__version__)",
        ],
        capture_output=True,
        text=True,
    )
    if version.returncode != 0:
        tail = (version.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"pyiqa installed but does not import: {tail}"
    note = f"pyiqa {version.stdout.strip()} in {venv} (pip --no-deps; torch from this venv)"
    done.write_text(note)
    return python, note


def random_clip_checkpoint() -> Path:
    """RN50 with this project's random weights (load_clip's seed), as a TorchScript archive whose
    state_dict has OpenAI's CLIP keys: what pyiqa's CLIP loader reads from a path."""
    from torch import nn

    from clipiqa_desktop.scoring.model import load_clip

    path = CACHE / "rn50-random-openai-format.jit"
    if path.is_file():
        return path
    model, _ = load_clip(RN50)
    root = nn.Module()
    for key, value in model.state_dict().items():
        *parents, leaf = key.split(".")
        module = root
        for name in parents:
            if not hasattr(module, name):
                module.add_module(name, nn.Module())
            module = getattr(module, name)
        module.register_buffer(leaf, value.detach().clone())
    with torch.jit.optimized_execution(False):
        scripted = torch.jit.script(root)
    tmp = path.with_suffix(".part")
    scripted.save(str(tmp))
    tmp.rename(path)
    return path


@dataclass
class PyiqaResult:
    photos_per_s: float | None
    note: str
    per_photo: list[float] = field(default_factory=list)


def run_pyiqa(paths: list[Path], size: int, timeout: float) -> PyiqaResult:
    """pyiqa's clipiqa on `paths` (size 0: the files at full resolution; else resized to `size`)."""
    python, note = pyiqa_python()
    if python is None:
        return PyiqaResult(None, f"not run: {note}")
    jit = random_clip_checkpoint()
    cmd = [str(python), "-c", _PYIQA_PROBE, str(jit), str(size), *map(str, paths)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        times = [json.loads(x)["seconds"] for x in stdout.splitlines() if x.startswith('{"path"')]
        rate = len(times) / sum(times) if times else None
        return PyiqaResult(
            rate, f"{note}; stopped after {timeout:.0f} s with {len(times)} photos timed", times
        )
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["?"])[-1]
        return PyiqaResult(None, f"pyiqa failed: {tail}")
    rows = [json.loads(x) for x in out.stdout.splitlines() if x.startswith("{")]
    times = [r["seconds"] for r in rows if "seconds" in r]
    threads = next((r["threads"] for r in rows if "threads" in r), "?")
    return PyiqaResult(len(times) / sum(times), f"{note}; {threads} torch threads", times)


# --- report ---------------------------------------------------------------------------------------


def load_engine(engine: str, app: bool = False) -> tuple[ClipIqaScorer | None, str]:
    """RN50 (random weights) on the CPU run by `engine`, or None and why it cannot run here. `app`:
    loaded as `index` loads it, within batching.inference_threads (an ONNX Runtime pool is sized at
    load: the app's inference threads); else with every core (the encoder's ceiling)."""
    from clipiqa_desktop.indexing.batching import inference_threads
    from clipiqa_desktop.scoring import DeviceUnavailable, ScoringError

    if app:
        with inference_threads():
            return load_engine(engine)

    if engine == "onnx":
        from clipiqa_desktop.scoring.onnx_engine import onnx_unavailable

        reason = onnx_unavailable()
        if reason is not None:
            return None, reason
    try:
        return ClipIqaScorer.load(RN50, "cpu", "auto", engine=engine), ""
    except (DeviceUnavailable, ScoringError) as exc:
        return None, str(exc)


def fmt(x: float) -> str:
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=48)
    ap.add_argument("--sizes", default="224,512", help="analysis sizes (long side), default 224,512")
    ap.add_argument("--batch-size", default=None, help="for index (default: the pipeline's own, auto)")
    ap.add_argument("--workers", type=int, default=None, help="decode threads (default: the pipeline's)")
    ap.add_argument("--encoder-batches", default="1,8", help="batch sizes the encoder ceiling tries")
    ap.add_argument("--seconds", type=float, default=3.0, help="timed seconds per encoder measurement")
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--quick", action="store_true", help="6 photos at 512 only, short timings, no memory run")
    ap.add_argument("--pyiqa", action="store_true", help="compare with pyiqa's clipiqa (throw-away venv)")
    ap.add_argument("--pyiqa-photos", type=int, default=2, help="photos pyiqa scores at full resolution")
    ap.add_argument("--pyiqa-timeout", type=float, default=900.0, help="seconds allowed per pyiqa run")
    args = ap.parse_args()
    if args.quick:
        args.photos, args.sizes, args.seconds, args.encoder_batches = 6, "512", 0.5, "1,4"
        args.pyiqa_photos = min(args.pyiqa_photos, 1)
    logging.basicConfig(level=logging.ERROR)  # the expected "RANDOM weights" warning
    sizes = [int(s) for s in args.sizes.split(",")]
    encoder_batches = [int(b) for b in args.encoder_batches.split(",")]
    folder = make_shoot(args.photos, jobs=os.cpu_count() or 1)
    paths = sorted(folder.glob("*.JPG"))
    mb = sum(p.stat().st_size for p in paths) / len(paths) / 1e6
    base = IndexOptions()
    options = replace(
        base,
        batch_size=(int(args.batch_size) if args.batch_size.isdigit() else args.batch_size)
        if args.batch_size
        else base.batch_size,
        workers=args.workers or default_workers("cpu"),
    )

    peak = flop_peak()
    print(f"\n# Indexing throughput — {len(paths)} photos, 6000×4000 JPEG q92 (mean {mb:.1f} MB)\n")
    print(f"- CPU: {cpu_description()}")
    print(f"- estimated fp32 peak: {peak.how}")
    print(
        f"- torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; "
        f"RN50 random weights; index: batch size {options.batch_size}, {options.workers} decode threads"
    )
    auto, _ = load_engine("auto", app=True)
    assert auto is not None
    print(f"- `--engine auto` runs: **{auto.describe()}**")
    print(
        f"- the encoder alone runs on every core ({torch.get_num_threads()} threads); `index` loads and runs "
        f"it as the app does, with {thread_defaults(os.cpu_count())[1]} inference thread(s) "
        f"beside {options.workers} decode threads"
    )
    fp32 = ClipIqaScorer.load(RN50, "cpu", "fp32", engine="torch")  # naive loop and FLOP count
    flops = {s: tower_gflop(fp32, tower_shapes(fp32, analysis_shapes(folder, s))) for s in sizes}
    print(
        "- image tower, counted by torch.utils.flop_counter at the shoot's analysis shapes: "
        + ", ".join(f"{flops[s]:.1f} GFLOP per image at {s}" for s in sizes)
    )
    naive_rate = {s: naive(fp32, folder, s) for s in sizes}
    dec = {s: decode_only(folder, replace(options, long_side=s), fp32.input_multiple) for s in sizes}
    print(
        "- naive loop (full decode, resize, batch-1 fp32 torch, commit per row; no pixel measures): "
        + ", ".join(f"{fmt(naive_rate[s])} photos/s at {s}" for s in sizes)
    )
    print(
        f"- decode + pixel measures alone ({options.workers} decode threads): "
        + ", ".join(f"{fmt(dec[s])} photos/s at {s}" for s in sizes)
    )
    print(
        "\n| engine | size | encoder alone, images/s (best batch) | GFLOP/s (share of peak) "
        "| e2e photos/s, with measures | without measures | e2e / naive (≥ 2.5) "
        "| e2e / encoder (≥ 0.8) | without measures: e2e / encoder | batch size chosen |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    results: dict[tuple[str, int], float] = {}
    skipped: list[str] = []
    for engine in args.engines.split(","):
        scorer, why = load_engine(engine)  # the ceiling: every core
        app = (auto if engine == auto.engine else load_engine(engine, app=True)[0]) or scorer
        if scorer is None:
            skipped.append(f"- {engine}: not measured — {why}")
            print(f"| {engine} | – | not run: {why} | | | | | | | |", flush=True)
            continue
        label = f"{engine} ({scorer.precision})"
        for s in sizes:
            shapes = tower_shapes(scorer, analysis_shapes(folder, s))
            rates = {b: encoder_rate(scorer, shapes, b, args.seconds) for b in encoder_batches}
            best = max(rates, key=lambda b: rates[b])
            top = rates[best]
            gflops = top * flops[s]
            with_m = end_to_end(app, folder, replace(options, long_side=s))
            without = end_to_end(app, folder, replace(options, long_side=s, measures=()))
            results[(engine, s)] = with_m.photos_per_s
            print(
                f"| {label} | {s} | {fmt(top)} (batch {best}; "
                + ", ".join(f"{b}: {fmt(r)}" for b, r in rates.items())
                + f") | {gflops:.0f} ({gflops / peak.gflops:.0%}) | {fmt(with_m.photos_per_s)} "
                f"| {fmt(without.photos_per_s)} | {with_m.photos_per_s / naive_rate[s]:.2f}× "
                f"| {with_m.photos_per_s / top:.2f} | {without.photos_per_s / top:.2f} | {with_m.batch} |",
                flush=True,
            )
    for line in skipped:
        print(line)
    print(
        "\ne2e / naive compares unequal work: the naive loop makes no pixel measures (focus, noise, "
        "clipping, faces), index does; the column 'without measures' is index with "
        "IndexOptions(measures=()), i.e. the same work as the naive loop. Per-step costs of one photo: "
        "benchmarks/photo_cost.py."
    )

    if args.pyiqa:
        ours = max((r for (_e, s), r in results.items() if s == max(sizes)), default=None)
        sample = paths[: args.pyiqa_photos]
        print(f"\n## pyiqa's clipiqa (RN50) on the first {len(sample)} photos, same random weights\n")
        print("| input | pyiqa photos/s | s per photo | ours (e2e, best engine) | ours / pyiqa |")
        print("|---|---:|---:|---:|---:|")
        notes: list[str] = []
        for size, what in (
            (0, "full resolution (pyiqa's default: the file)"),
            (max(sizes), f"resized to {max(sizes)} px"),
        ):
            r = run_pyiqa(sample, size, args.pyiqa_timeout)
            notes.append(r.note)
            if r.photos_per_s is None:
                print(f"| {what} | {r.note} | | | |", flush=True)
                continue
            ratio = f"{ours / r.photos_per_s:.0f}×" if ours else "–"
            per = ", ".join(f"{t:.1f}" for t in r.per_photo)
            mine = f"{fmt(ours)} at {max(sizes)}" if ours else "–"
            print(f"| {what} | {r.photos_per_s:.3g} | {per} | {mine} | {ratio} |", flush=True)
        print(f"\n- {notes[0]}")
        print(
            "- pyiqa's time is the metric's call per photo (its own decode of the file included, or the "
            "resized tensor), after one warm-up call on a small image; it encodes its 10 prompts again "
            "on every call."
        )

    per_k = reindex_unchanged(200 if args.quick else 1000)
    print(f"\n- re-index of an unchanged folder: {per_k:.2f} s per 1,000 photos (goal < 1 s)")
    load_s, score_s, text_s = rescoring(fp32, 2000 if args.quick else 20_000)
    n = "2,000" if args.quick else "20,000"
    print(
        f"- rescoring a new prompt over {n} stored embeddings: {load_s + score_s:.3f} s "
        f"(load {load_s:.3f} s + score {score_s:.3f} s; goal < 1 s), plus {text_s:.2f} s to encode the "
        "prompt's two texts once"
    )
    if not args.quick:
        peak_mb = peak_memory_mb(folder, max(sizes), options.batch_size)
        print(
            f"- peak memory of `clipiqa-desktop index --size {max(sizes)}`: {peak_mb:.0f} MB "
            "(goal < 2,000 MB)"
        )


if __name__ == "__main__":
    main()
