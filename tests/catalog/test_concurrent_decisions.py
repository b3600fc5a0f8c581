"""Real processes write the decisions of the same 20 photos at the same time, on SQLite and on
PostgreSQL (both_backends: there the processes stand for the windows of a studio's machines).

Two processes change different fields, many rounds: one culls as the window does (a
CullingSession: shown at once, written by its writer thread, with undo and redo), the other as
`rate` does (Catalog.update_decisions, one transaction per command). Afterwards every photo has the
window's last label and pick AND the other process's last stars: no write replaced a field it did
not touch, whoever committed last.

Four processes each step a counter kept in the decisions of random photos (read the current
decision, write the next: a read-modify-write per change): every step of every process is in the
end, so no change read a decision that another committed change then replaced under it, and the
decision counter rose exactly once per change (one transaction per change).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from clipiqa_desktop.catalog import Catalog, Decision, PhotoRecord

pytestmark = pytest.mark.both_backends

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


def _catalog_with_photos(db: Path | str, tmp_path: Path) -> tuple[str, Path]:
    folder = tmp_path / "shoot"
    folder.mkdir()
    catalog = Catalog(db)
    fid = catalog.folder_id(folder)
    aid = catalog.analysis_id("m", "512", 4, 100.0)
    records = []
    for i in range(N_PHOTOS):
        (folder / f"IMG_{i:04d}.jpg").write_bytes(b"")  # `rate` finds photos by path
        records.append(PhotoRecord(f"IMG_{i:04d}.jpg", 0, 0, fingerprint=f"f{i}", embedding=np.ones(4)))
    catalog.write_batch(fid, aid, records)
    catalog.set_last_analysis(fid, aid)
    address = catalog.address
    catalog.close()
    return address, folder


def _run_together(programs: list[str], db: str, folder: Path, go: Path, rounds: int) -> list[str]:
    """Start one process per program (seeds 1, 2, ...), let them all open the catalog, start them at
    once; each one's stdout once all have finished with exit 0 and no traceback."""
    seeds = range(1, len(programs) + 1)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, db, str(folder), str(go), str(seed), str(rounds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed, code in zip(seeds, programs, strict=True)
    ]
    deadline = time.monotonic() + 60
    while not all(Path(f"{go}.{seed}").exists() for seed in seeds) and time.monotonic() < deadline:
        time.sleep(0.01)  # all import and open the catalog, then start together
    go.touch()
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "Traceback" not in err and "not saved" not in err.lower(), err
    return [out for out, _err in outputs]


def test_two_processes_change_different_fields_of_the_same_photos(catalog_address, tmp_path):
    db, folder = _catalog_with_photos(catalog_address, tmp_path)
    outputs = _run_together([WINDOW_LIKE, RATE_LIKE], db, folder, tmp_path / "go", ROUNDS)
    window = json.loads(outputs[0].splitlines()[-1])
    rate = json.loads(outputs[1].splitlines()[-1])
    assert window["failed"] == []
    assert window["shown"] == window["last"], "the window shows what it decided"
    assert len(rate["last"]) >= N_PHOTOS // 2, "the rate-like process touched most photos"
    (a0, a1), (b0, b1) = window["span"], rate["span"]
    assert a0 < b1 and b0 < a1, "the two processes really ran at the same time"

    catalog = Catalog(db)
    try:
        now = catalog.decisions([int(p) for p in window["last"]])
        assert len(now) == N_PHOTOS
        for pid, d in now.items():
            mine = window["last"][str(pid)]
            assert d.label == mine["label"], f"photo {pid}: the window's last label"
            assert d.picked == mine["picked"], f"photo {pid}: the window's last pick"
            assert d.rating == rate["last"].get(str(pid), 0), f"photo {pid}: the other process's last stars"
    finally:
        catalog.close()


# A counter of 36 values kept in a decision: stars 0..5 and one of six labels.
_STEPPER = _COMMON + textwrap.dedent("""
    from clipiqa_desktop.catalog import Decision
    LABELS = [None, "Red", "Yellow", "Green", "Blue", "Purple"]

    def step(_pid, d):
        n = (LABELS.index(d.label) * 6 + d.rating + 1) % 36
        return Decision(rating=n % 6, picked=d.picked, label=LABELS[n // 6])

    ids = sorted(catalog.photo_ids_for_paths(sorted(folder.glob("*.jpg"))).values())
    steps = {}
    changes = 0
    for _ in range(rounds):
        chosen = rng.sample(ids, rng.randint(1, 4))
        deltas = catalog.update_decisions(chosen, step)
        assert sorted(d.photo_id for d in deltas) == sorted(chosen), "every photo stepped"
        changes += 1
        for pid in chosen:
            steps[pid] = steps.get(pid, 0) + 1
    print(json.dumps({"steps": steps, "changes": changes, "span": [started, time.time()]}))
""")
LABELS = [None, "Red", "Yellow", "Green", "Blue", "Purple"]
STEPPERS, STEPPER_ROUNDS = 4, 30


def test_several_processes_stepping_the_same_decisions_lose_no_change(catalog_address, tmp_path):
    db, folder = _catalog_with_photos(catalog_address, tmp_path)
    catalog = Catalog(db)
    try:
        before = catalog.decision_seq()
        outputs = _run_together([_STEPPER] * STEPPERS, db, folder, tmp_path / "go", STEPPER_ROUNDS)
        runs = [json.loads(out.splitlines()[-1]) for out in outputs]
        spans = [r["span"] for r in runs]
        assert max(s[0] for s in spans) < min(s[1] for s in spans), "all processes ran at the same time"
        total: dict[int, int] = {}
        for r in runs:
            for pid, n in r["steps"].items():
                total[int(pid)] = total.get(int(pid), 0) + n
        assert sum(total.values()) > 36, "more steps than the counter has values"
        now = catalog.decisions(sorted(total))
        for pid, n in total.items():
            expected = Decision(rating=n % 6, label=LABELS[(n // 6) % 6])
            assert now[pid] == expected, f"photo {pid}: {n} steps, none lost"
        changes = sum(r["changes"] for r in runs)
        assert changes == STEPPERS * STEPPER_ROUNDS
        assert catalog.decision_seq() == before + changes, "one counter value per change"
    finally:
        catalog.close()
