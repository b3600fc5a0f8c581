"""What stacking bursts costs the window, on a generated catalog of --photos photos.

    .venv/bin/python benchmarks/stacks.py              # 20,000 photos, 512-d embeddings
    .venv/bin/python benchmarks/stacks.py --quick      # 2,000 photos: a smoke run

A real CullingSession over a real catalog (`Catalog.write_batch`: bursts of 1–8 frames 0.3 s apart,
pauses of 5–60 s between them, a ±1 EV bracket every 40 bursts, embeddings near a scene direction,
quality/focus scores). Timed, median of --repeats:

- read: `grouping_task` (Catalog.group_inputs; on the GUI thread, once per reload)
- group: `groups.group_photos` (the window runs it in its GroupWorker thread)
- show: `set_grouping` (keeper column + the stacked view's select; GUI thread)
- select: one re-selection of the stacked view (a sort or filter change; GUI thread)
- relative: a range relative to the burst (group percentiles in the mask; GUI thread)
- expand: S on one stack (GUI thread)
- step order: compare's stepping order over the stacked view (`step_order`; GUI thread)

No model is loaded. Timings on a shared machine are skewed: compare figures within one run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clipiqa_desktop.catalog import Catalog, PhotoMeta, PhotoRecord
from clipiqa_desktop.culling.groups import group_photos
from clipiqa_desktop.culling.session import CullingSession, FilterState

BATCH = 1000


def make_catalog(db: Path, folder: Path, n: int, dim: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    catalog = Catalog(db)
    fid = catalog.folder_id(folder)
    aid = catalog.analysis_id("bench", "512", dim, 100.0)
    scene = rng.normal(size=dim)
    t, burst_left, bracket, records = 0.0, 0, 0, []
    for i in range(n):
        bias = 0.0
        if burst_left == 0:
            t += float(rng.uniform(5, 60))
            burst_left = int(rng.integers(1, 9))
            bracket += 1
            if rng.random() < 0.1:
                scene = rng.normal(size=dim)
        else:
            t += 0.3
        if bracket % 40 == 0 and burst_left >= 3:
            bias = float((burst_left % 3) - 1)  # a ±1 EV bracket
        burst_left -= 1
        whole = int(t)
        emb = (scene + 0.2 * rng.normal(size=dim)).astype(np.float32)
        meta = PhotoMeta(
            captured_at=f"2026-06-{20 + whole // 86400:02d}T{whole % 86400 // 3600:02d}:"
            f"{whole % 3600 // 60:02d}:{whole % 60:02d}",
            subsec=round(t - whole, 3),
            camera_make="Nikon",
            camera_model="NIKON Z 6",
            exposure_time=0.004,
            f_number=2.8,
            iso=400,
            exposure_bias=bias,
        )
        scores = {"quality": float(rng.random()), "focus": float(rng.random())}
        records.append(
            PhotoRecord(f"DSC_{i:05d}.JPG", 1, 1, fingerprint=str(i), scores=scores, embedding=emb, meta=meta)
        )
        if len(records) == BATCH:
            catalog.write_batch(fid, aid, records)
            records = []
    if records:
        catalog.write_batch(fid, aid, records)
    catalog.set_last_analysis(fid, aid)
    catalog.close()


def timed(fn, repeats: int) -> float:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return statistics.median(out) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="2,000 photos, 3 repeats")
    args = ap.parse_args()
    if args.quick:
        args.photos, args.repeats = 2_000, 3
    with tempfile.TemporaryDirectory(prefix="stacks-bench-") as tmp:
        folder = Path(tmp) / "shoot"
        folder.mkdir()
        db = Path(tmp) / "c.sqlite"
        start = time.perf_counter()
        make_catalog(db, folder, args.photos, args.dim)
        print(f"catalog of {args.photos:,} photos made in {time.perf_counter() - start:.1f} s")
        catalog = Catalog(db)
        session = CullingSession(catalog, folder)
        read = timed(lambda: session.grouping_task(reread=True), args.repeats)
        inputs, params, generation = session.grouping_task()
        group = timed(lambda: group_photos(inputs, params), args.repeats)
        grouping = group_photos(inputs, params)
        session.stacked = True
        show = timed(lambda: session.set_grouping(grouping, generation), args.repeats)
        select = timed(session.refresh, args.repeats)
        kinds = [b.kind for b in grouping.bursts]
        relative = FilterState(ranges={"quality": (0.0, 30.0)}, relative=True, relative_to="burst")
        rel = timed(lambda: session.set_filters(relative), args.repeats)
        session.set_filters(FilterState())
        pid = int(session.table.ids[session.view[0]])
        expand = timed(lambda: session.toggle_stack(pid), args.repeats)
        steps = timed(session.step_order, args.repeats)
        catalog.close()
    cpu = platform.processor() or platform.machine()
    print(
        f"{args.photos:,} photos ({kinds.count('burst'):,} bursts, {kinds.count('bracket'):,} brackets, "
        f"{kinds.count('single'):,} singles, {len(grouping.scenes):,} scenes), {args.dim}-d; "
        f"{os.cpu_count()} CPUs ({cpu}), load {os.getloadavg()[0]:.1f}; median of {args.repeats}:"
    )
    for name, ms in (
        ("read (GUI thread)", read),
        ("group (worker thread)", group),
        ("show (GUI thread)", show),
        ("select, stacked (GUI)", select),
        ("relative to burst (GUI)", rel),
        ("expand one stack (GUI)", expand),
        ("step order, compare (GUI)", steps),
    ):
        print(f"  {name:<26} {ms:8.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
