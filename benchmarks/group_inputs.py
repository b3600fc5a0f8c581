"""Loading what grouping needs (`Catalog.group_inputs`) and reading camera facts again from headers.

    .venv/bin/python benchmarks/group_inputs.py              # 20,000 photos, 1024-d embeddings
    .venv/bin/python benchmarks/group_inputs.py --quick      # 2,000 photos: a smoke run

(a) `group_inputs` on a generated catalog (`Catalog.write_batch`: photos in two camera folders,
    capture times with sub-seconds, exposure bias, float16 embeddings of --dim), cold (a new
    Catalog, first query) and warm (median of --repeats); the issue asks for well under 0.5 s at
    20,000 photos. `Catalog.rows` (the window's load) is timed beside it for scale.
(b) `read_file_meta` on --headers 24 MP JPEGs with camera EXIF against `decode_photo` of the same
    files at full resolution: what refreshing a photo indexed before schema v4 costs, relative to
    decoding it again (made once in benchmarks/.cache/).

No model is loaded. Timings on a shared machine are skewed: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, TiffImagePlugin

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clipiqa_desktop.catalog import Catalog, PhotoMeta, PhotoRecord
from clipiqa_desktop.imaging import decode_photo
from clipiqa_desktop.imaging.metadata import read_file_meta

CACHE = Path(__file__).resolve().parent / ".cache" / "group-inputs"
BATCH = 1000


def build_catalog(path: Path, root: Path, n: int, dim: int) -> tuple[list[int], int]:
    rng = np.random.default_rng(0)
    catalog = Catalog(path)
    folders = [catalog.folder_id(root / "100CANON"), catalog.folder_id(root / "101CANON")]
    aid = catalog.analysis_id("bench/model", "512", dim, 100.0)
    assert aid is not None and None not in folders
    for start in range(0, n, BATCH):
        count = min(BATCH, n - start)
        emb = rng.normal(size=(count, dim)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        by_folder: dict[int, list[PhotoRecord]] = {}
        for i in range(count):
            k = start + i
            second = k // 3  # bursts of three frames a second apart
            meta = PhotoMeta(
                captured_at=f"2026-06-20T{second // 3600 % 24:02d}:{second // 60 % 60:02d}:{second % 60:02d}",
                camera_make="Canon",
                camera_model="Canon EOS R5",
                exposure_time=1 / 250,
                f_number=2.8,
                iso=400,
                exposure_bias=float((k % 3) - 1),
                subsec=(k % 3) / 10,
            )
            fid = int(folders[k % 2])  # type: ignore[arg-type]
            by_folder.setdefault(fid, []).append(
                PhotoRecord(f"IMG_{k:05d}.JPG", 1000 + k, k, f"fp-{k}", meta=meta, scores={"quality": 0.5},
                            embedding=emb[i])
            )  # fmt: skip
        for fid, records in by_folder.items():
            catalog.write_batch(fid, aid, records)
    catalog.close()
    return [int(f) for f in folders], aid  # type: ignore[arg-type]


def time_group_inputs(path: Path, root: Path, folders: list[int], aid: int, repeats: int) -> dict[str, float]:
    catalog = Catalog(path)
    try:
        started = time.perf_counter()
        g = catalog.group_inputs(folders, aid, root=root)
        cold = time.perf_counter() - started
        warm = []
        for _ in range(repeats):
            started = time.perf_counter()
            g = catalog.group_inputs(folders, aid, root=root)
            warm.append(time.perf_counter() - started)
        rows = []
        for _ in range(repeats):
            started = time.perf_counter()
            catalog.rows(folders, aid, root=root)
            rows.append(time.perf_counter() - started)
        assert len(g) > 0 and g.has_embedding.all() and not np.isnan(g.times).any()
        return {"cold": cold, "warm": statistics.median(warm), "rows": statistics.median(rows), "n": len(g)}
    finally:
        catalog.close()


def make_jpegs(n: int) -> list[Path]:
    CACHE.mkdir(parents=True, exist_ok=True)
    paths = []
    rng = np.random.default_rng(1)
    for i in range(n):
        path = CACHE / f"IMG_{i:03d}.JPG"
        paths.append(path)
        if path.exists():
            continue
        small = rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)
        img = Image.fromarray(small, "RGB").resize((6000, 4000), Image.Resampling.BICUBIC)
        exif = Image.Exif()
        exif[0x010F], exif[0x0110] = "Canon", "Canon EOS R5"
        sub = exif.get_ifd(0x8769)
        sub[0x9003], sub[0x9291] = "2026:06:20 10:00:00", f"{i % 100:02d}"
        bias = Fraction(i % 3 - 1)
        sub[0x9204] = TiffImagePlugin.IFDRational(bias.numerator, bias.denominator)
        img.save(path, "JPEG", quality=90, exif=exif.tobytes())
    return paths


def time_headers(paths: list[Path]) -> dict[str, float]:
    started = time.perf_counter()
    for p in paths:
        assert read_file_meta(p) is not None
    header = (time.perf_counter() - started) / len(paths)
    started = time.perf_counter()
    for p in paths:
        decode_photo(p, 512, 320, full=True)
    decode = (time.perf_counter() - started) / len(paths)
    return {"header": header, "decode": decode}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=1024, help="embedding size (RN50: 1024, ViT-B/32: 512)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--headers", type=int, default=6, help="24 MP JPEGs for (b); 0 skips it")
    ap.add_argument("--quick", action="store_true", help="2,000 photos, 2 JPEGs")
    args = ap.parse_args()
    if args.quick:
        args.photos, args.headers, args.repeats = 2000, 2, 3
    cpu = platform.processor() or platform.machine()
    print(f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "shoot"
        path = Path(tmp) / "catalog.sqlite"
        started = time.perf_counter()
        folders, aid = build_catalog(path, root, args.photos, args.dim)
        print(f"built {args.photos} photos × {args.dim}-d in {time.perf_counter() - started:.1f} s")
        t = time_group_inputs(path, root, folders, aid, args.repeats)
    print(
        f"(a) group_inputs, {int(t['n'])} photos × {args.dim}-d float16: cold {t['cold'] * 1000:.0f} ms, "
        f"warm {t['warm'] * 1000:.0f} ms (median of {args.repeats}); Catalog.rows {t['rows'] * 1000:.0f} ms"
    )
    if args.headers:
        h = time_headers(make_jpegs(args.headers))
        print(
            f"(b) per 24 MP JPEG: read_file_meta {h['header'] * 1000:.2f} ms, decode_photo(full) "
            f"{h['decode'] * 1000:.0f} ms: a refresh costs 1/{h['decode'] / h['header']:.0f} of a decode"
        )


if __name__ == "__main__":
    main()
