"""Indexing throughput, measured end to end on a generated shoot of 24-megapixel camera JPEGs.

    .venv/bin/python benchmarks/index_throughput.py            # ~5 minutes on 2 CPU cores
    .venv/bin/python benchmarks/index_throughput.py --quick    # a smoke run

The shoot is made once from scikit-image's real sample photographs (pip install '.[bench]'),
scaled to 6000×4000 with film-like grain and EXIF, saved as JPEG q92, and cached (git-ignored) under
benchmarks/.cache/. Everything below runs in one process on the same files and settings, so the
ratios are meaningful even where absolute numbers drift with the machine's load:

- end-to-end photos/s of `index` (fresh catalog) at analysis sizes 224 and 512;
- the ceiling: image-encoder throughput on already-decoded tensors of the same shapes;
- the naive baseline: full decode, resize, batch-1 fp32 inference, one commit per photo;
- re-index of an unchanged folder (per 1,000 photos), rescoring a new prompt over 20,000 stored
  embeddings, and peak memory of a real `clipiqa-desktop index` process.
Weights are random (the real ones cannot be downloaded here); speed does not depend on their values.
"""

from __future__ import annotations

import os

# As the app does (clipiqa_desktop/__init__.py), before torch loads: OpenMP threads wait passively.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from clipiqa_desktop.catalog import Catalog, PhotoRecord
from clipiqa_desktop.imaging import target_size
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


def sample_photographs() -> list[np.ndarray]:
    try:
        from skimage import data
    except ImportError:
        sys.exit("benchmarks need scikit-image for real photographs: .venv/bin/pip install '.[bench]'")
    return [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.hubble_deep_field()]


def make_shoot(n: int) -> Path:
    """n camera-sized JPEGs (cached). Variants differ by crop, flip, exposure and grain."""
    folder = CACHE / f"shoot-24mp-{n}"
    if folder.is_dir() and len(list(folder.glob("*.JPG"))) == n:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    sources = sample_photographs()
    print(f"generating {n} 24-megapixel JPEGs in {folder} (once) ...", flush=True)
    for i in range(n):
        src = sources[i % len(sources)]
        h, w = src.shape[:2]
        ch, cw = int(h * rng.uniform(0.7, 1.0)), int(w * rng.uniform(0.7, 1.0))
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        crop = Image.fromarray(src[y : y + ch, x : x + cw]).convert("RGB")
        size = CAMERA if i % 4 else CAMERA[::-1]  # every 4th frame is a portrait
        big = np.asarray(crop.resize(size, Image.Resampling.BICUBIC), dtype=np.float32)
        big = (
            big * np.float32(rng.uniform(0.6, 1.2)) + rng.normal(0, 5, big.shape[:2])[..., None]
        )  # exposure, grain
        img = Image.fromarray(np.clip(big, 0, 255).astype(np.uint8))
        if i % 3 == 0:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        exif = Image.Exif()
        exif[0x010F], exif[0x0110] = "BenchCam", "Mark 24"
        exif[0x8769] = {0x9003: f"2026:06:20 15:{i // 60:02d}:{i % 60:02d}", 0x8827: 800}
        img.save(folder / f"DSC_{i:04d}.JPG", quality=92, exif=exif)
    return folder


def analysis_shapes(folder: Path, long_side: int) -> list[tuple[int, int]]:
    shapes = []
    for p in sorted(folder.glob("*.JPG")):
        with Image.open(p) as im:
            shapes.append(target_size(*im.size, long_side))
    return shapes


def ceiling(scorer: ClipIqaScorer, shapes: list[tuple[int, int]], batch: int) -> float:
    """Encoder-only photos/s on already-decoded tensors with the shoot's shapes and batch size."""
    by_shape: dict[tuple[int, int], int] = {}
    for s in shapes:
        by_shape[s] = by_shape.get(s, 0) + 1
    batches = []
    for (w, h), count in by_shape.items():
        x = torch.randint(0, 256, (batch, 3, h, w), dtype=torch.uint8)
        batches += [x[: min(batch, count - k)] for k in range(0, count, batch)]
    scorer.encode_images(batches[0])  # warm-up
    start = time.perf_counter()
    for b in batches:
        scorer.score_batch(b, BUILTIN_ATTRIBUTES)
    return len(shapes) / (time.perf_counter() - start)


def decode_only(folder: Path, long_side: int, workers: int) -> float:
    """Photos/s of the pipeline's decode step alone (analysis image, thumbnail, EXIF, XMP, fingerprint)."""
    from concurrent.futures import ThreadPoolExecutor

    from clipiqa_desktop.indexing.pipeline import _prepare

    paths = sorted(folder.glob("*.JPG"))
    opts = IndexOptions(long_side=long_side)
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda p: _prepare(p, opts, 1, ()), paths))
    return len(paths) / (time.perf_counter() - start)


def measure_costs(folder: Path, scorer: ClipIqaScorer, batch: int, n: int = 6) -> dict[str, float]:
    """Seconds per 24 MP JPEG of each step of the pixel measures (one thread, as a decode thread
    runs them), beside the decode the analysis needs anyway and the encoder's time per photo at 512."""
    from clipiqa_desktop.imaging import decode_photo
    from clipiqa_desktop.measures.exposure import clipping
    from clipiqa_desktop.measures.faces import detect_faces, faces_unavailable
    from clipiqa_desktop.measures.focus import luminance, measure_focus

    paths = sorted(folder.glob("*.JPG"))[:n]
    t: dict[str, float] = dict.fromkeys(("draft", "full", "luminance", "focus", "clipping", "faces"), 0.0)
    faces = faces_unavailable() is None
    for p in paths:
        start = time.perf_counter()
        decode_photo(p, 512, 320)
        t["draft"] += time.perf_counter() - start
        start = time.perf_counter()
        d = decode_photo(p, 512, 320, full=True)
        t["full"] += time.perf_counter() - start
        rgb = np.asarray(d.full)
        start = time.perf_counter()
        gray = luminance(rgb)
        t["luminance"] += time.perf_counter() - start
        start = time.perf_counter()
        measure_focus(gray)
        t["focus"] += time.perf_counter() - start
        start = time.perf_counter()
        clipping(np.asarray(d.image))
        t["clipping"] += time.perf_counter() - start
        if faces:
            start = time.perf_counter()
            detect_faces(rgb)
            t["faces"] += time.perf_counter() - start
    out = {k: v / len(paths) for k, v in t.items()}
    if not faces:
        out["faces"] = float("nan")
    out["encoder"] = 1.0 / ceiling(scorer, analysis_shapes(folder, 512), batch)
    return out


def end_to_end(scorer: ClipIqaScorer, folder: Path, long_side: int, batch: int, workers: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Catalog(Path(tmp) / "c.sqlite")
        opts = IndexOptions(long_side=long_side, batch_size=batch, workers=workers)
        start = time.perf_counter()
        summary = index_folder(catalog, scorer, folder, opts)
        seconds = time.perf_counter() - start
        catalog.close()
    assert summary.indexed == len(list(folder.glob("*.JPG"))), summary.failed
    return summary.indexed / seconds


def naive(scorer_fp32: ClipIqaScorer, folder: Path, long_side: int) -> float:
    """Full decode, resize, batch-1 fp32 inference, one commit per photo."""
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
        tiny = ClipIqaScorer.load(ModelSpec(str(TINY), "none"), "cpu", "fp32")
        index_folder(catalog, tiny, folder, opts)
        lazy = LazyScorer(ModelSpec(str(TINY), "none"), "cpu", "fp32")
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


def peak_memory_mb(folder: Path, long_side: int, batch: int) -> float:
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=48)
    ap.add_argument("--sizes", default="224,512")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="12 photos, size 224, no memory run")
    args = ap.parse_args()
    if args.quick:
        args.photos, args.sizes = 12, "224"
    sizes = [int(s) for s in args.sizes.split(",")]
    folder = make_shoot(args.photos)
    mb = sum(p.stat().st_size for p in folder.glob("*.JPG")) / len(list(folder.glob("*.JPG"))) / 1e6

    fast = ClipIqaScorer.load(ModelSpec("RN50", "none"), "auto", "auto")
    fp32 = ClipIqaScorer.load(ModelSpec("RN50", "none"), fast.device.type, "fp32")
    print(f"\n# Indexing throughput — {args.photos} photos, 6000×4000 JPEG q92 (mean {mb:.1f} MB)")
    print(
        f"- torch {torch.__version__}, device {fast.device}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs; RN50 random weights; fast path precision {fast.precision}; "
        f"batch {args.batch_size}, {args.workers} decode threads\n"
    )
    print(
        "| size | end-to-end photos/s | encoder ceiling | decode-only | naive photos/s "
        "| e2e/encoder ceiling (≥0.8) | e2e/min(encoder, decode) | e2e/naive (≥3) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for size in sizes:
        e2e = end_to_end(fast, folder, size, args.batch_size, args.workers)
        top = ceiling(fast, analysis_shapes(folder, size), args.batch_size)
        dec = decode_only(folder, size, args.workers)
        base = naive(fp32, folder, size)
        print(
            f"| {size} | {e2e:.2f} | {top:.2f} | {dec:.2f} | {base:.2f} | {e2e / top:.2f} "
            f"| {e2e / min(top, dec):.2f} | {e2e / base:.1f} |",
            flush=True,
        )

    c = measure_costs(folder, fast, args.batch_size, 3 if args.quick else 6)
    focus = c["luminance"] + c["focus"]
    extra = c["full"] - c["draft"] + focus + c["clipping"] + np.nan_to_num(c["faces"])
    print(
        "\n## Pixel measures, seconds per 24 MP JPEG on one decode thread (encoder: per photo at 512)\n"
        "| decode (draft, 512) | decode (full) | focus (luminance + measure) | clipping | faces "
        "| encoder at 512 | focus / encoder (< 1) | all measures + extra decode / encoder |\n"
        "|---|---|---|---|---|---|---|---|\n"
        f"| {c['draft']:.3f} | {c['full']:.3f} | {focus:.3f} | {c['clipping']:.4f} | {c['faces']:.3f} "
        f"| {c['encoder']:.3f} | {focus / c['encoder']:.2f} "
        f"| {extra / c['encoder']:.2f} |",
        flush=True,
    )

    per_k = reindex_unchanged(200 if args.quick else 1000)
    print(f"\n- re-index of an unchanged folder: {per_k:.2f} s per 1,000 photos (goal < 1 s)")
    load_s, score_s, text_s = rescoring(fast, 2000 if args.quick else 20_000)
    n = "2,000" if args.quick else "20,000"
    print(
        f"- rescoring a new prompt over {n} stored embeddings: {load_s + score_s:.3f} s "
        f"(load {load_s:.3f} s + score {score_s:.3f} s; goal < 1 s), plus {text_s:.2f} s to encode the "
        "prompt's two texts once"
    )
    if not args.quick:
        peak = peak_memory_mb(folder, max(sizes), args.batch_size)
        print(
            f"- peak memory of `clipiqa-desktop index --size {max(sizes)}`: {peak:.0f} MB (goal < 2,000 MB)"
        )


if __name__ == "__main__":
    main()
