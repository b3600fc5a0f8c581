"""XMP hand-off speed: `write_sidecars` on a generated catalog, against the I/O floor of the same files.

    .venv/bin/python benchmarks/xmp_export.py                  # 2,000 photos, about 2 minutes on 2 cores
    .venv/bin/python benchmarks/xmp_export.py --photos 500     # a smoke run
    .venv/bin/python benchmarks/xmp_export.py --dir /media/card  # measure on another file system

No model is loaded: the photos are tiny placeholder files (their bytes are never read by the
hand-off), recorded in a real catalog (`Catalog.write_batch`) with scores for the 12 built-in
attributes and a mix of decisions (rejects, stars, colour labels, picks). Cases, each timed
`--repeats` times (median; (d) `--merge-repeats`, 1 by default), darktable naming (IMG.NEF.xmp)
unless said:

(a) first export: no sidecars yet, N new files;
(b) the same export again with nothing changed: must write nothing (asserted);
(c) export after 10 % of the decisions changed (another 10 % every repeat);
(d) merging into N existing Lightroom sidecars (Adobe naming, IMG.xmp; ~4 KB each with crs: develop
    settings, history and keywords), which an index-like step (`import_changed_sidecars`, what
    `index` runs) read and recorded beforehand; the decisions are then culled in the catalog.

Each case's baseline, measured in the same run on the same file system and interleaved with it,
is its I/O floor: the same number of files of the same sizes written with the same atomic pattern
(temporary file beside it, write, fsync, chmod of a replaced file, os.replace, one fsync of the
folder per 32 files), and for unchanged sidecars one os.stat each. Compare ratios, not seconds
across machines.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the Lightroom sample of the tests

from machine import cpu_description  # noqa: E402  (benchmarks/machine.py)

from clipiqa_desktop.catalog import Catalog, Decision, PhotoRecord  # noqa: E402
from clipiqa_desktop.culling.handoff import XmpOptions, XmpReport, write_sidecars  # noqa: E402
from clipiqa_desktop.culling.sidecars import sidecar_to_read  # noqa: E402
from clipiqa_desktop.culling.xmp_import import import_changed_sidecars  # noqa: E402
from clipiqa_desktop.scoring import BUILTIN_ATTRIBUTES  # noqa: E402
from tests.culling.test_xmp_write import LIGHTROOM  # noqa: E402

CHUNK = 32  # the hand-off's batch: one fsync of the folder per batch
MODEL, SIZE = "ViT-B-32/laion2b_s34b_b79k", "512"
LABELS = ("Red", "Yellow", "Green", "Blue", "Purple")

# More of what Lightroom Classic writes in a developed photo's sidecar, so it is ~4 KB as real ones are.
_DEVELOP = " ".join(
    f'\n   crs:{k}="{v}"'
    for k, v in [
        ("Temperature", "5450"), ("Tint", "+8"), ("Saturation", "0"), ("Sharpness", "40"),
        ("LuminanceSmoothing", "12"), ("ColorNoiseReduction", "25"), ("VignetteAmount", "0"),
        ("ShadowTint", "0"), ("RedHue", "0"), ("RedSaturation", "0"), ("GreenHue", "0"),
        ("GreenSaturation", "0"), ("BlueHue", "0"), ("BlueSaturation", "0"), ("Vibrance", "+14"),
        ("HueAdjustmentRed", "0"), ("HueAdjustmentOrange", "-4"), ("SaturationAdjustmentOrange", "-6"),
        ("LuminanceAdjustmentOrange", "+5"), ("ParametricShadows", "0"), ("ParametricDarks", "0"),
        ("ParametricLights", "0"), ("ParametricHighlights", "0"), ("SharpenRadius", "+1.0"),
        ("SharpenDetail", "25"), ("SharpenEdgeMasking", "30"), ("PostCropVignetteAmount", "-12"),
        ("GrainAmount", "0"), ("LensProfileEnable", "1"), ("LensManualDistortionAmount", "0"),
        ("AutoLateralCA", "1"), ("Shadows2012", "+35"), ("Whites2012", "+10"), ("Blacks2012", "-8"),
        ("Clarity2012", "+10"), ("Texture", "+5"), ("Dehaze", "0"), ("ConvertToGrayscale", "False"),
        ("CameraProfile", "Adobe Standard"), ("LensProfileSetup", "LensDefaults"),
        ("LensProfileName", "Adobe (Canon RF 24-70mm F2.8 L IS USM)"), ("ToneCurveName2012", "Linear"),
        ("HasSettings", "True"), ("AlreadyApplied", "False"), ("OverrideLookVignette", "False"),
    ]
)  # fmt: skip
_KEYWORDS = "".join(
    f"\n     <rdf:li>{k}</rdf:li>"
    for k in ("ceremony", "reception", "bride", "groom", "family", "Lyon", "2024", "selects")
)

_LR_NS = (
    b'crs="http://ns.adobe.com/camera-raw-settings/1.0/"\n    xmlns:lr="http://ns.adobe.com/lightroom/1.0/"'
)
_HIERARCHY = (
    "\n   <lr:hierarchicalSubject>\n    <rdf:Bag>"
    + "".join(
        f"\n     <rdf:li>{k}</rdf:li>"
        for k in (
            "Events|Weddings|2024|Martin-Dubois",
            "Events|Weddings|ceremony",
            "Events|Weddings|reception",
            "Events|Weddings|first dance",
            "People|bride",
            "People|groom",
            "People|family",
            "Places|France|Lyon",
            "Workflow|selects",
            "Workflow|delivered",
        )
    )
    + "\n    </rdf:Bag>\n   </lr:hierarchicalSubject>"
).encode()


def lightroom_sidecar(i: int) -> bytes:
    """A Lightroom Classic sidecar (tests' sample, more develop settings and keywords), ~4 KB."""
    packet = LIGHTROOM.replace(b'crs:HasCrop="False">', f'crs:HasCrop="False"{_DEVELOP}>'.encode())
    packet = packet.replace(
        b"<rdf:li>first dance</rdf:li>", f"<rdf:li>first dance</rdf:li>{_KEYWORDS}".encode()
    )
    packet = packet.replace(b'crs="http://ns.adobe.com/camera-raw-settings/1.0/"', _LR_NS)
    packet = packet.replace(b"</dc:subject>", b"</dc:subject>" + _HIERARCHY)
    packet = packet.replace(b'xmp:Rating="4"', f'xmp:Rating="{i % 6}"'.encode())
    return packet.replace(b'xmp:Label="To print"', f'xmp:Label="{LABELS[i % 5]}"'.encode())


def file_system(path: Path) -> str:
    """The type and device of the mount holding `path` (fsync costs differ hugely between them)."""
    best = ("?", "?", "")
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            dev, mnt, kind = line.split()[:3]
            if str(path).startswith(mnt) and len(mnt) >= len(best[2]):
                best = (kind, dev, mnt)
    except OSError:
        pass
    return f"{best[0]} ({best[1]} on {best[2] or '?'})"


# --- the catalog ----------------------------------------------------------------------------------------
def cull(n: int, seed: int) -> list[Decision]:
    """A shoot's decisions: ~15 % rejects, ~35 % starred, some labelled, some picked, the rest unrated."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        r = rng.random()
        rating = -1 if r < 0.15 else int(rng.integers(1, 6)) if r < 0.5 else 0
        label = LABELS[int(rng.integers(0, 5))] if rng.random() < 0.2 else None
        picked = rating >= 0 and rng.random() < 0.1
        out.append(Decision(rating, picked, label))
    return out


def make_folder(catalog: Catalog, folder: Path, n: int, ext: str, seed: int) -> list[int]:
    """n placeholder photos in `folder`, recorded with scores for the 12 attributes and culled."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    fid = catalog.folder_id(folder)
    aid = catalog.analysis_id(MODEL, SIZE, 512, 100.0)
    assert fid is not None and aid is not None
    keys = [a.key for a in BUILTIN_ATTRIBUTES]
    records = []
    for i in range(n):
        path = folder / f"DSC_{i:05d}{ext}"
        path.write_bytes(b"placeholder %d" % i)
        st = path.stat()
        scores = dict(zip(keys, rng.random(len(keys)).tolist(), strict=True))
        records.append(
            PhotoRecord(path.name, st.st_size, st.st_mtime_ns, fingerprint=f"{seed}-{i}", scores=scores)
        )
    ids: list[int] = []
    for start in range(0, n, 1000):
        got = catalog.write_batch(fid, aid, records[start : start + 1000])
        ids += [got[r.rel_path] for r in records[start : start + 1000]]
    catalog.set_last_analysis(fid, aid)
    catalog.set_decisions(dict(zip(ids, cull(n, seed), strict=True)))
    return ids


def forget_sidecars(catalog: Catalog, ids: list[int]) -> None:
    """The catalog's records of the sidecars dropped, as before the folder had any."""
    with catalog.transaction() as tx:
        tx.set_sidecar_states(dict.fromkeys(ids))


# --- the I/O floor --------------------------------------------------------------------------------------
def atomic_writes(folder: Path, sizes: list[int], replace_existing: bool) -> float:
    """Seconds to write len(sizes) files of these sizes as the hand-off does, minus the XMP work."""
    folder.mkdir(exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    data = [b"x" * s for s in sizes]
    start = time.perf_counter()
    for batch in range(0, len(sizes), CHUNK):
        for i in range(batch, min(batch + CHUNK, len(sizes))):
            path, tmp = folder / f"F_{i:05d}.xmp", folder / f".F_{i:05d}.xmp.tmp"
            fd = os.open(tmp, flags, 0o666)
            with os.fdopen(fd, "wb") as f:
                f.write(data[i])
                f.flush()
                os.fsync(f.fileno())
            if replace_existing:
                os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        dfd = os.open(folder, os.O_RDONLY)
        os.fsync(dfd)
        os.close(dfd)
    return time.perf_counter() - start


def stats(paths: list[Path]) -> float:
    start = time.perf_counter()
    for p in paths:
        os.stat(p)
    return time.perf_counter() - start


def fill(folder: Path, n: int, size: int) -> None:
    """n files to be replaced by the floor's writes (written untimed)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for i in range(n):
        (folder / f"F_{i:05d}.xmp").write_bytes(b"y" * size)


# --- the cases ------------------------------------------------------------------------------------------
def timed(fn: Callable[[], XmpReport]) -> tuple[float, XmpReport]:
    start = time.perf_counter()
    report = fn()
    return time.perf_counter() - start, report


def check(report: XmpReport, written: int, unchanged: int) -> None:
    assert (report.skipped, report.failed) == ([], []), report.problems()[:3]
    assert (len(report.written), len(report.unchanged)) == (written, unchanged), report.summary()


def merge_lightroom(
    catalog: Catalog, folder: Path, ids: list[int], floor: Path
) -> tuple[float, float, float, float]:
    """(d) once: Lightroom sidecars written beside the photos, read and recorded by what `index` runs
    (new sidecars, no record: imported), the photos culled in the catalog since, then the export
    (Adobe naming) merges into them. Returns (export s, floor s, import s, mean size written)."""
    n = len(ids)
    for i in range(n):
        (folder / f"DSC_{i:05d}.xmp").write_bytes(lightroom_sidecar(i))
    forget_sidecars(catalog, ids)
    groups: dict[str, list[str]] = {}  # as the index passes them: the names sharing a stem
    for name in os.listdir(folder):
        groups.setdefault(name.partition(".")[0], []).append(name)

    def sidecar_of(photo: Path) -> str | None:
        found = sidecar_to_read(photo, groups[photo.name.partition(".")[0]])
        return None if found is None else str(found)

    start = time.perf_counter()
    photos = [(pid, folder / f"DSC_{i:05d}.CR3") for i, pid in enumerate(ids)]
    imported = import_changed_sidecars(catalog, photos, sidecar_of)
    import_s = time.perf_counter() - start
    assert imported.problems == [] and len(imported.imported) > n // 2, imported.problems[:3]
    catalog.set_decisions(dict(zip(ids, cull(n, seed=4), strict=True)))  # culled here since
    export_s, report = timed(lambda: write_sidecars(catalog, ids, XmpOptions(naming="adobe")))
    check(report, n, 0)
    written = [p.stat().st_size for p in report.written]
    fill(floor, n, len(lightroom_sidecar(0)))
    return export_s, atomic_writes(floor, written, replace_existing=True), import_s, statistics.mean(written)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--merge-repeats", type=int, default=1, help="(d) is slow (quadratic in the folder)")
    ap.add_argument("--dir", type=Path, default=None, help="where to make the shoot (default: the temp dir)")
    args = ap.parse_args()
    n, reps = args.photos, args.repeats
    with tempfile.TemporaryDirectory(prefix="xmp-bench-", dir=args.dir) as tmp_name:
        tmp = Path(tmp_name).resolve()
        catalog = Catalog(tmp / "catalog.sqlite")
        t0 = time.perf_counter()
        shoot, lr = tmp / "DCIM" / "100NIKON", tmp / "lightroom"
        ids = make_folder(catalog, shoot, n, ".NEF", seed=1)
        lr_ids = make_folder(catalog, lr, n, ".CR3", seed=2)
        setup_s = time.perf_counter() - t0
        dark = XmpOptions()
        times: dict[str, list[float]] = {k: [] for k in "abcd"}
        floors: dict[str, list[float]] = {k: [] for k in "abcd"}
        sizes: dict[str, float] = {}
        import_s: list[float] = []

        # (a) first export: new files
        for _ in range(reps):
            for p in shoot.glob("*.xmp"):
                p.unlink()
            forget_sidecars(catalog, ids)
            s, report = timed(lambda: write_sidecars(catalog, ids, dark))
            check(report, n, 0)
            times["a"].append(s)
            written = [p.stat().st_size for p in report.written]
            shutil.rmtree(tmp / "floor-a", ignore_errors=True)
            floors["a"].append(atomic_writes(tmp / "floor-a", written, replace_existing=False))
        sizes["a"] = statistics.mean(written)
        sidecars = sorted(shoot.glob("*.xmp"))

        # (b) nothing changed: nothing written
        for _ in range(reps):
            s, report = timed(lambda: write_sidecars(catalog, ids, dark))
            check(report, 0, n)
            times["b"].append(s)
            floors["b"].append(stats(sidecars))
        sizes["b"] = sizes["a"]

        # (c) 10 % of the decisions changed (stars moved on by one), another 10 % each repeat
        k = max(1, n // 10)
        order = np.random.default_rng(3).permutation(n)
        for r in range(reps):
            chosen = [ids[int(i)] for i in order[(r * k) % n : (r * k) % n + k]]
            deltas = catalog.update_decisions(
                chosen, lambda _pid, cur: replace(cur, rating=cur.rating % 5 + 1)
            )
            assert len(deltas) == len(chosen)
            s, report = timed(lambda: write_sidecars(catalog, ids, dark))
            check(report, len(chosen), n - len(chosen))
            times["c"].append(s)
            written = [p.stat().st_size for p in report.written]
            floor = atomic_writes(tmp / "floor-a", written, replace_existing=True)
            floors["c"].append(floor + stats(sidecars[: n - len(chosen)]))
        sizes["c"] = statistics.mean(written)

        # (d) merging into existing Lightroom sidecars, read and recorded by an index-like step
        for _ in range(args.merge_repeats):
            export_s, floor_s, imp_s, mean = merge_lightroom(catalog, lr, lr_ids, tmp / "floor-d")
            times["d"].append(export_s)
            floors["d"].append(floor_s)
            import_s.append(imp_s)
        sizes["d"] = mean
        quarter = make_folder(catalog, tmp / "lightroom-quarter", n // 4, ".CR3", seed=5)
        quarter_s = merge_lightroom(catalog, tmp / "lightroom-quarter", quarter, tmp / "floor-q")[0]
        fs = file_system(tmp)
        catalog.close()

    print(f"\n# XMP hand-off — {n:,} photos, 12 scores each, {reps} repeats (median)")
    print(
        f"- Python {platform.python_version()}, {os.cpu_count()} CPUs; no model loaded (precision: none; "
        f"scores are stored values); files on {fs}; setup {setup_s:.1f} s"
    )
    print(f"- CPU: {cpu_description()}\n")
    print("| case | sidecars written | mean size | export | photos/s | I/O floor | export / floor |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    rows = {
        "a": ("(a) first export, no sidecars yet", n, "atomic writes"),
        "b": ("(b) again, nothing changed", 0, "one stat each"),
        "c": ("(c) 10 % of decisions changed", k, "atomic writes + stats"),
        "d": ("(d) merge into Lightroom sidecars (~4 KB)", n, "atomic replaces"),
    }
    for key, (label, count, floor_kind) in rows.items():
        t, f = statistics.median(times[key]), statistics.median(floors[key])
        print(
            f"| {label} | {count:,} | {sizes[key] / 1024:.1f} KB | {t:.2f} s | {n / t:,.0f} "
            f"| {f:.3f} s ({floor_kind}) | {t / f:.1f}× |"
        )
    d = statistics.median(times["d"])
    print(
        f"\n- (d) with {n // 4:,} photos in the folder: {quarter_s:.2f} s, "
        f"{n // 4 / quarter_s:,.0f} photos/s; 4× the photos took {d / quarter_s:.1f}× as long (linear: 4×)"
    )
    print(
        f"- (d)'s index-like step (stat, parse and import of {n:,} new Lightroom sidecars, "
        f"untimed above): {statistics.median(import_s):.2f} s"
    )


if __name__ == "__main__":
    main()
