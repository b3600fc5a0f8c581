"""Two real processes change different fields of the same 20 photos at the same time, many rounds:
one culls as the window does (a CullingSession: shown at once, written by its writer thread, with
undo and redo), the other as `rate` does (Catalog.update_decisions, one transaction per command).
Afterwards every photo has the window's last label and pick AND the other process's last stars:
no write replaced a field it did not touch, whoever committed last.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from clipiqa_desktop.catalog import Catalog, PhotoRecord

N_PHOTOS = 20
ROUNDS = 40

# Both children wait for the go file, then run ROUNDS rounds; each prints its last value per photo.
_COMMON = """
import json, os, random, sys, time
from pathlib import Path
from clipiqa_desktop.catalog import Catalog
from clipiqa_desktop.culling.decisions import DecisionChange, change_fn
db, folder, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
seed, rounds = int(sys.argv[4]), int(sys.argv[5])
rng = random.Random(seed)
catalog = Catalog(db)
catalog.decisions([1])  # connected
Path(f"{go}.{seed}").touch()  # ready
while not go.exists():
    time.sleep(0.005)
started = time.time()
"""

WINDOW_LIKE = _COMMON + textwrap.dedent("""
    from clipiqa_desktop.culling.session import CullingSession
    session = CullingSession(catalog, folder)
    rows = [int(r) for r in session.view]
    ids = {r: int(session.table.ids[r]) for r in rows}
    labels = ["Red", "Yellow", "Green", "Blue", ""]
    meant = {ids[r]: {"label": None, "picked": False} for r in rows}  # kept apart from the session
    for _ in range(rounds):
        chosen = rng.sample(rows, rng.randint(1, 6))
        if rng.random() < 0.5:
            label = rng.choice(labels)
            change = DecisionChange(label=label)
            for r in chosen:
                meant[ids[r]]["label"] = label or None
        else:
            pick = rng.random() < 0.5
            change = DecisionChange(pick=True) if pick else DecisionChange(unflag=True)
            for r in chosen:
                meant[ids[r]]["picked"] = pick
        session.decide(chosen, change)
        if rng.random() < 0.2:  # Ctrl+Z, Ctrl+Shift+Z right away, before the write returned
            session.undo()
            session.redo()
        time.sleep(rng.random() * 0.01)
    failed = []
    session.events.write_failed.connect(failed.append)
    assert session.close(60), "every decision written"
    ended = time.time()
    t = session.table
    shown = {ids[r]: {"label": t.labels[r], "picked": bool(t.picked[r])} for r in rows}
    print(json.dumps({"last": meant, "shown": shown, "failed": failed, "span": [started, ended]}))
""")

RATE_LIKE = _COMMON + textwrap.dedent("""
    ids = sorted(catalog.photo_ids_for_paths(sorted(folder.glob("*.jpg"))).values())
    last = {}
    for _ in range(rounds):
        chosen = rng.sample(ids, rng.randint(1, 6))
        stars = rng.randint(0, 5)
        catalog.update_decisions(chosen, change_fn(DecisionChange(stars=stars)))
        for pid in chosen:
            last[pid] = stars
        time.sleep(rng.random() * 0.01)
    print(json.dumps({"last": last, "span": [started, time.time()]}))
""")


def _catalog_with_photos(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "shoot"
    folder.mkdir()
    db = tmp_path / "catalog.sqlite"
    catalog = Catalog(db)
    fid = catalog.folder_id(folder)
    aid = catalog.analysis_id("m", "512", 4, 100.0)
    records = []
    for i in range(N_PHOTOS):
        (folder / f"IMG_{i:04d}.jpg").write_bytes(b"")  # `rate` finds photos by path
        records.append(PhotoRecord(f"IMG_{i:04d}.jpg", 0, 0, fingerprint=f"f{i}", embedding=np.ones(4)))
    catalog.write_batch(fid, aid, records)
    catalog.set_last_analysis(fid, aid)
    catalog.close()
    return db, folder


def test_two_processes_change_different_fields_of_the_same_photos(tmp_path):
    db, folder = _catalog_with_photos(tmp_path)
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(db), str(folder), str(go), str(seed), str(ROUNDS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed, code in ((1, WINDOW_LIKE), (2, RATE_LIKE))
    ]
    deadline = time.monotonic() + 60
    while not all(Path(f"{go}.{seed}").exists() for seed in (1, 2)) and time.monotonic() < deadline:
        time.sleep(0.01)  # both import and open the catalog, then start together
    go.touch()
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "Traceback" not in err and "not saved" not in err.lower(), err
    window = json.loads(outputs[0][0].splitlines()[-1])
    rate = json.loads(outputs[1][0].splitlines()[-1])
    assert window["failed"] == []
    assert window["shown"] == window["last"], "the window shows what it decided"
    assert len(rate["last"]) >= N_PHOTOS // 2, "the rate-like process touched most photos"
    (a0, a1), (b0, b1) = window["span"], rate["span"]
    assert a0 < b1 and b0 < a1, "the two processes really ran at the same time"

    catalog = Catalog(db)
    try:
        now = catalog.decisions(list(range(1, N_PHOTOS + 1)))
        assert set(now) == {int(p) for p in window["last"]}
        for pid, d in now.items():
            mine = window["last"][str(pid)]
            assert d.label == mine["label"], f"photo {pid}: the window's last label"
            assert d.picked == mine["picked"], f"photo {pid}: the window's last pick"
            assert d.rating == rate["last"].get(str(pid), 0), f"photo {pid}: the other process's last stars"
    finally:
        catalog.close()
