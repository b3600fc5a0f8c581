"""What one 24 MP JPEG costs the indexer, step by step, against the encoder's time per photo.

    .venv/bin/python benchmarks/photo_cost.py             # 3 photos, ~1 minute on 2 CPU cores
    .venv/bin/python benchmarks/photo_cost.py --photos 12 --memory   # the lead's full run

On the benchmark shoot of benchmarks/index_throughput.py (made and cached by its `make_shoot`),
each step of `indexing.pipeline._prepare` runs alone, on one thread as a decode thread runs it:
the full-resolution decode (the pixel measures need native pixels) and, beside it, the draft decode
an index without measures does; inside the full decode, the JPEG decode itself, the resize to the
analysis size and the thumbnail; then luminance + focus, clipping, faces (with the [faces] extra),
the whole `_prepare`, and the catalog write per photo (a batch of 8 records with scores, float16
embedding and thumbnail, divided by 8). The encoder's seconds per photo at the analysis size are
measured on the same shapes, per engine (torch, and onnx where `ClipIqaScorer.load` takes
`engine=`). Every step is printed with its share of `_prepare` and its ratio to the encoder: a
decode thread's work over the encoder above 1 / workers means the decode threads are the wall.
`--memory` adds the peak RSS of a real `clipiqa-desktop index --size 512` process.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the app does, before torch loads

import argparse
import io
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from index_throughput import analysis_shapes, make_shoot, peak_memory_mb
from machine import cpu_description

from clipiqa_desktop.catalog import Catalog, PhotoRecord
from clipiqa_desktop.imaging import decode_photo, target_size
from clipiqa_desktop.imaging.decode import REDUCED_SIDE
from clipiqa_desktop.indexing.pipeline import IndexOptions, _prepare
from clipiqa_desktop.measures.exposure import clipping
from clipiqa_desktop.measures.focus import luminance, measure_focus
from clipiqa_desktop.measures.photo import faces_unavailable


def _timed(fn: Callable[[], object], repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


# The rows that add up to the pixel work of one photo, as it was before issue 10 and as it is now
# (timed in the same run, so their ratio means something on a loaded machine).
BEFORE = (
    "  JPEG decode at full size",
    "  resize to analysis: bicubic over the frame (before)",
    "  whole-frame luminance (before)",
    "  + measure_focus of it (before)",
    "faces: detector's copy from the full frame (before)",
)
NOW = (
    "  JPEG decode at full size",
    "  resize to analysis: box reduction + bicubic (now)",
    "focus band by band from RGB (now)",
    "faces: detector's copy from the reduced copy (now)",
)


def pixel_costs(paths: list[Path], size: int, thumb: int) -> dict[str, float]:
    """Mean seconds per photo of each step (one thread)."""
    faces = faces_unavailable() is None
    if faces:
        from clipiqa_desktop.measures.faces import detect_faces

        detect_faces(np.zeros((64, 64, 3), np.uint8))  # this thread's graphs are built once
    t: dict[str, float] = {}

    def add(key: str, seconds: float) -> None:
        t[key] = t.get(key, 0.0) + seconds / len(paths)

    for p in paths:
        add("decode, draft (no measures)", _timed(lambda: decode_photo(p, size, thumb)))  # noqa: B023
        add("decode, full resolution (all of it)", _timed(lambda: decode_photo(p, size, thumb, full=True)))  # noqa: B023
        with Image.open(p) as im:
            start = time.perf_counter()
            im.load()
            add("  JPEG decode at full size", time.perf_counter() - start)
            rgb_img = im.copy()
        analysis_size = target_size(*rgb_img.size, size)
        start = time.perf_counter()
        analysis = rgb_img.resize(analysis_size, Image.Resampling.BICUBIC, reducing_gap=None)
        add("  resize to analysis: bicubic over the frame (before)", time.perf_counter() - start)
        factor = max(max(rgb_img.size) // REDUCED_SIDE, 1)

        def reduce_then_resize() -> Image.Image:
            reduced = rgb_img.reduce(factor) if factor >= 2 else rgb_img  # noqa: B023
            return reduced.resize(analysis_size, Image.Resampling.BICUBIC, reducing_gap=3.0)  # noqa: B023

        add("  resize to analysis: box reduction + bicubic (now)", _timed(reduce_then_resize))

        def make_thumb() -> None:
            small = analysis.copy()  # noqa: B023
            small.thumbnail((thumb, thumb), Image.Resampling.BICUBIC)
            small.save(io.BytesIO(), "JPEG", quality=85)

        add("  thumbnail (+ JPEG)", _timed(make_thumb))
        d = decode_photo(p, size, thumb, full=True)
        assert d.full is not None
        rgb = np.asarray(d.full)
        reduced = None if getattr(d, "reduced", None) is None else np.asarray(d.reduced)
        add("  whole-frame luminance (before)", _timed(lambda: luminance(rgb)))  # noqa: B023
        gray = luminance(rgb)
        add("  + measure_focus of it (before)", _timed(lambda: measure_focus(gray)))  # noqa: B023
        add("focus band by band from RGB (now)", _timed(lambda: _focus_rgb(rgb)))  # noqa: B023
        add("clipping (analysis image)", _timed(lambda: clipping(np.asarray(analysis))))  # noqa: B023
        if faces:
            add("faces: detector's copy from the full frame (before)", _timed(lambda: detect_faces(rgb)))  # noqa: B023
            add(
                "faces: detector's copy from the reduced copy (now)",
                _timed(lambda: detect_faces(rgb, reduced) if reduced is not None else detect_faces(rgb)),  # noqa: B023
            )
        opts = IndexOptions(long_side=size, thumb_long_side=thumb)
        add("_prepare, all of it (now)", _timed(lambda: _prepare(p, opts, 1, ())))  # noqa: B023
    return t


def _focus_rgb(rgb: np.ndarray) -> object:
    """What measure_photo does for focus: from the RGB pixels (in tiles where focus.py can)."""
    from clipiqa_desktop.measures import focus

    direct = getattr(focus, "measure_focus_rgb", None)
    return direct(rgb) if direct is not None else measure_focus(luminance(rgb))


def catalog_write(paths: list[Path], size: int, thumb: int, n: int = 64, batch: int = 8) -> float:
    """Seconds per photo of Catalog.write_batch (scores, float16 embedding, thumbnail), in batches."""
    d = decode_photo(paths[0], size, thumb)
    assert d.thumbnail is not None
    buf = io.BytesIO()
    d.thumbnail.save(buf, "JPEG", quality=85)
    thumb_bytes = (d.thumbnail.width, d.thumbnail.height, buf.getvalue())
    rng = np.random.default_rng(0)
    keys = [f"k{i}" for i in range(24)]
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Catalog(Path(tmp) / "c.sqlite")
        fid = catalog.folder_id(Path(tmp))
        aid = catalog.analysis_id("bench", str(size), 1024, 100.0)
        assert fid is not None and aid is not None
        start = time.perf_counter()
        for b in range(0, n, batch):
            records = [
                PhotoRecord(
                    f"IMG_{b + i:05d}.JPG",
                    1000 + b + i,
                    1,
                    fingerprint=f"fp{b + i}",
                    width=6000,
                    height=4000,
                    orientation=1,
                    scores={k: float(v) for k, v in zip(keys, rng.random(len(keys)), strict=True)},
                    embedding=rng.normal(size=1024).astype(np.float32),
                    thumbnail=thumb_bytes,
                )
                for i in range(batch)
            ]
            catalog.write_batch(fid, aid, records)
        seconds = (time.perf_counter() - start) / n
        catalog.close()
    return seconds


def encoder_costs(folder: Path, size: int, batch: int) -> dict[str, float]:
    """Seconds per photo of the image encoder (RN50, random weights) per engine, on the shoot's shapes."""
    import torch

    from clipiqa_desktop.scoring import ClipIqaScorer, ModelSpec

    shapes = analysis_shapes(folder, size)
    out: dict[str, float] = {}
    for engine in ("torch", "onnx"):
        try:
            scorer = ClipIqaScorer.load(ModelSpec("RN50", "none"), "cpu", "fp32", engine=engine)  # type: ignore[call-arg]
        except TypeError:  # the engine choice is not in this version
            if engine != "torch":
                continue
            scorer = ClipIqaScorer.load(ModelSpec("RN50", "none"), "cpu", "fp32")
        except Exception as exc:  # an engine that does not run here is reported, not fatal
            print(f"- engine {engine}: not measured ({type(exc).__name__}: {exc})")
            continue
        w, h = max(set(shapes), key=shapes.count)
        x = torch.randint(0, 256, (batch, 3, h, w), dtype=torch.uint8)
        scorer.encode_images(x[:1])  # warm-up
        seconds = _timed(lambda: scorer.encode_images(x), repeat=2)  # noqa: B023
        out[getattr(scorer, "engine", engine)] = seconds / batch
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=3, help="photos measured (default 3)")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=4, help="encoder batch (default 4)")
    ap.add_argument("--workers", type=int, default=2, help="decode threads the ratios assume")
    ap.add_argument("--memory", action="store_true", help="also the peak RSS of a real index run")
    args = ap.parse_args()
    folder = make_shoot(12)
    paths = sorted(folder.glob("*.JPG"))[: args.photos]
    thumb = IndexOptions().thumb_long_side or 320

    print(f"# Per-photo cost — {len(paths)} photos 6000×4000 JPEG q92, analysis {args.size} px, one thread")
    print(f"- {cpu_description()}")
    costs = pixel_costs(paths, args.size, thumb)
    costs["catalog write (per photo, batches of 8)"] = catalog_write(paths, args.size, thumb)
    enc = encoder_costs(folder, args.size, args.batch_size)
    ref_name, ref = min(enc.items(), key=lambda kv: kv[1])
    whole = costs["_prepare, all of it (now)"]
    print(
        f"- encoder s/photo at {args.size}, batch {args.batch_size}: "
        + ", ".join(f"{k} {v:.3f}" for k, v in enc.items())
    )
    print(f"\n| step | s/photo | share of _prepare | / encoder ({ref_name}) |")
    print("|---|---|---|---|")
    for key, seconds in costs.items():
        print(f"| {key} | {seconds:.3f} | {seconds / whole:.0%} | {seconds / ref:.2f} |")
    before = sum(costs.get(k, 0.0) for k in BEFORE)
    now = sum(costs.get(k, 0.0) for k in NOW)
    print(
        f"\n- pixel work per photo (decode, resize, focus, faces): before {before:.3f} s, now {now:.3f} s "
        f"(now / before {now / before:.2f}); / encoder: before {before / ref:.2f}, now {now / ref:.2f}"
    )
    print(
        f"- _prepare / encoder = {whole / ref:.2f}; with {args.workers} decode threads the pixel work "
        f"is the wall above {args.workers:.0f} (and sooner when the encoder takes the same cores)"
    )
    if args.memory:
        peak = peak_memory_mb(folder, args.size, 8)
        print(
            f"- peak RSS of `clipiqa-desktop index --size {args.size}` (12 photos): {peak:.0f} MB "
            "(goal < 2,000)"
        )


if __name__ == "__main__":
    main()
