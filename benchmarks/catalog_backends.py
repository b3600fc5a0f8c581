"""The same catalog work on an SQLite file and on a PostgreSQL database, timed in one run.

    .venv/bin/python benchmarks/catalog_backends.py                 # 20,000 photos, a throw-away server
    .venv/bin/python benchmarks/catalog_backends.py --quick         # 2,000 photos: a smoke run
    .venv/bin/python benchmarks/catalog_backends.py --url postgresql://me@db/bench   # a real server

What a studio's editors feel: indexing's batch writes (photos/s), the window's load of a shoot
(`Catalog.rows`) and of grouping's inputs (`group_inputs`), one keypress's decision write
(`update_decisions` of one photo: median and 95th percentile), and the window's poll for decisions
made elsewhere (`decision_changes` with nothing new). Without --url the PostgreSQL server is the
tests' throw-away one on loopback (tests/pg_server.py: fsync off, so its writes are a lower bound);
a studio's server is across a network, whose round trip adds to every statement. Figures on a shared
machine are skewed: compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import cpu_description
from clipiqa_desktop.catalog import Catalog, Decision, PhotoMeta, PhotoRecord
from clipiqa_desktop.culling.decisions import DecisionChange, change_fn

BATCH = 500


def build(
    address: Path | str, root: Path, n: int, dim: int
) -> tuple[Catalog, list[int], int, list[int], float]:
    rng = np.random.default_rng(0)
    catalog = Catalog(address)
    folders = [int(catalog.folder_id(root / "100CANON") or 0), int(catalog.folder_id(root / "101CANON") or 0)]
    aid = catalog.analysis_id("bench/model", "512", dim, 100.0)
    assert aid is not None
    ids: list[int] = []
    started = time.perf_counter()
    for start in range(0, n, BATCH):
        count = min(BATCH, n - start)
        emb = rng.normal(size=(count, dim)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        by_folder: dict[int, list[PhotoRecord]] = {}
        for i in range(count):
            k = start + i
            second = k // 3
            meta = PhotoMeta(
                captured_at=f"2026-06-20T{second // 3600 % 24:02d}:{second // 60 % 60:02d}:{second % 60:02d}",
                camera_make="Canon",
                camera_model="Canon EOS R5",
                exposure_time=1 / 250,
                exposure_bias=float((k % 3) - 1),
                subsec=(k % 3) / 10,
            )
            scores = {
                "quality": float(rng.random()),
                "sharpness": float(rng.random()),
                "focus": float(rng.random()),
            }
            by_folder.setdefault(folders[k % 2], []).append(
                PhotoRecord(f"IMG_{k:05d}.JPG", 1000 + k, k, f"fp-{k}", meta=meta, scores=scores,
                            embedding=emb[i], thumbnail=(160, 107, bytes(12_000)))
            )  # fmt: skip
        for fid, records in by_folder.items():
            ids += list(catalog.write_batch(fid, aid, records).values())
    return catalog, folders, aid, ids, n / (time.perf_counter() - started)


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def measure(address: Path | str, root: Path, n: int, dim: int, repeats: int, keys: int) -> dict[str, float]:
    catalog, folders, aid, ids, write_rate = build(address, root, n, dim)
    try:
        out = {"write": write_rate}
        out["rows"] = median_ms(lambda: catalog.rows(folders, aid, root=root), repeats)
        out["group"] = median_ms(lambda: catalog.group_inputs(folders, aid, root=root), repeats)
        rng = np.random.default_rng(1)
        times = []
        for i in range(keys):
            pid = int(ids[int(rng.integers(len(ids)))])
            change = DecisionChange(stars=int(i % 5) + 1)
            started = time.perf_counter()
            catalog.update_decisions([pid], change_fn(change))
            times.append(time.perf_counter() - started)
        out["key"] = statistics.median(times) * 1000
        out["key95"] = float(np.percentile(times, 95)) * 1000
        since = catalog.decision_seq()
        out["poll"] = median_ms(lambda: catalog.decision_changes(folders, since), repeats * 4)
        assert catalog.decisions(ids[:1])[ids[0]] != Decision() or keys < n
        return out
    finally:
        catalog.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=1024, help="embedding size (RN50: 1024)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--keys", type=int, default=200, help="single-photo decision writes to time")
    ap.add_argument("--url", help="an empty PostgreSQL database to use instead of a throw-away server")
    ap.add_argument("--quick", action="store_true", help="2,000 photos, 50 keys")
    args = ap.parse_args()
    if args.quick:
        args.photos, args.keys, args.repeats = 2000, 50, 3
    print(cpu_description())
    server = None
    if args.url is None:
        from tests import pg_server

        reason = pg_server.unavailable()
        if reason:
            sys.exit(f"catalog_backends: {reason}; or give --url")
        server = pg_server.PostgresServer()
    try:
        url = args.url or server.database()  # type: ignore[union-attr]
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "shoot"
            res = {
                "SQLite": measure(
                    Path(tmp) / "catalog.sqlite", root, args.photos, args.dim, args.repeats, args.keys
                ),
                "PostgreSQL": measure(url, root, args.photos, args.dim, args.repeats, args.keys),
            }
    finally:
        if server is not None:
            server.stop()
    lite, pg = res["SQLite"], res["PostgreSQL"]
    print(f"{args.photos} photos × {args.dim}-d embeddings, 3 scores and a 12 kB thumbnail each")
    print(f"{'':34}{'SQLite':>12}{'PostgreSQL':>12}{'PG/SQLite':>11}")
    rows = [
        ("index batch writes (photos/s)", "write", "{:.0f}"),
        ("Catalog.rows, the window's load (ms)", "rows", "{:.0f}"),
        ("group_inputs (ms)", "group", "{:.0f}"),
        ("one decision write, median (ms)", "key", "{:.2f}"),
        ("one decision write, 95th pct (ms)", "key95", "{:.2f}"),
        ("poll for changes, none (ms)", "poll", "{:.2f}"),
    ]
    for label, key, fmt in rows:
        print(f"{label:34}{fmt.format(lite[key]):>12}{fmt.format(pg[key]):>12}{pg[key] / lite[key]:>10.2f}×")


if __name__ == "__main__":
    main()
