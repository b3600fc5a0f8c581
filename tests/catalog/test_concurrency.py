"""Several real processes on one catalog: two `index` runs and a loop of `rate`, while another
connection now and then holds the write lock. Everyone finishes with exit 0, no "database is
locked" reaches anyone, every score and decision is there, and the file is intact. On SQLite and on
PostgreSQL (both_backends), where the write lock is the catalog's advisory lock (raw.WriteLock).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ..conftest import app_command, photo
from . import raw

pytestmark = pytest.mark.both_backends

N_PER_FOLDER = 6


def _shoot(folder: Path, n: int, seed: int) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    for i in range(n):
        path = folder / f"IMG_{i:04d}.jpg"
        photo(96, 72, seed=seed + i).save(path, quality=90)
        paths.append(path)
    return paths


def _index(folder: Path, db: Path | str) -> subprocess.Popen:
    # one photo per transaction: as many write transactions as possible, to meet the others
    cmd = app_command("index", str(folder), "--size", "64", "--batch-size", "1", "--workers", "1", catalog=db)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _plain(*args: str, db: Path | str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "clipiqa_desktop", *args, "--catalog", str(db)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def _query(db: Path | str, sql: str) -> list[tuple]:
    return raw.rows(db, sql)


def _intact(db: Path | str) -> bool:
    """SQLite's integrity_check of the file (a PostgreSQL server checks its own pages)."""
    return raw.is_postgresql(db) or _query(db, "PRAGMA integrity_check") == [("ok",)]


class LockHolder(threading.Thread):
    """Another writer (say, the window saving a batch slowly) that takes the write lock for 0.7 s
    at a time, until stopped: the indexers and `rate` must wait for it, not fail."""

    def __init__(self, db: Path | str) -> None:
        super().__init__(daemon=True)
        self.db, self.stop, self.held = db, threading.Event(), 0

    def run(self) -> None:
        while not self.stop.wait(0.5):
            with raw.write_lock(self.db, commit=True) as held:
                # a row no command reads: text features of a model nobody uses
                held.execute("DELETE FROM text_features WHERE model_id = 'lock-holder'")
                held.execute(
                    "INSERT INTO text_features VALUES ('lock-holder', 'x', :v)", v=str(time.time()).encode()
                )
                time.sleep(0.7)
            self.held += 1


def test_two_indexers_and_rate_on_one_catalog_all_succeed_and_lose_nothing(catalog_address, tmp_path):
    db = catalog_address
    rated = _shoot(tmp_path / "rated", 4, seed=0)
    first = _index(rated[0].parent, db)
    _out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err

    a = _shoot(tmp_path / "card_a" / "DCIM", N_PER_FOLDER, seed=100)[0].parent
    b = _shoot(tmp_path / "card_b" / "DCIM", N_PER_FOLDER, seed=200)[0].parent
    holder = LockHolder(db)
    holder.start()
    indexers = [_index(a, db), _index(b, db)]
    rates: list[subprocess.CompletedProcess] = []
    expected: dict[str, int] = {}
    try:
        # `rate` in a loop while both index: each photo of the rated folder gets stars, several times
        round_ = 0
        while any(p.poll() is None for p in indexers) or round_ < 2:
            stars = 1 + round_ % 5
            target = rated[round_ % len(rated)]
            rates.append(_plain("rate", str(target), "--stars", str(stars), db=db))
            expected[target.name] = stars
            round_ += 1
        outputs = [p.communicate(timeout=300) for p in indexers]
    finally:
        holder.stop.set()
        holder.join(timeout=30)
        for p in indexers:
            if p.poll() is None:
                p.kill()
                p.wait()

    assert holder.held >= 1, "the other writer really held the lock meanwhile"
    for proc, (_out, err) in zip(indexers, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "locked" not in err.lower() and "busy" not in err.lower() and "Traceback" not in err
    assert len(rates) >= 2
    for r in rates:
        assert r.returncode == 0, r.stderr
        assert "locked" not in r.stderr.lower() and "Traceback" not in r.stderr

    total = 4 + 2 * N_PER_FOLDER
    assert _query(db, "SELECT count(*) FROM photos") == [(total,)], "one record per photo"
    assert _query(db, "SELECT count(DISTINCT photo_id) FROM scores") == [(total,)], "every photo scored"
    assert _query(db, "SELECT count(*) FROM embeddings") == [(total,)]
    assert _query(db, "SELECT count(*) FROM thumbnails") == [(total,)]
    assert _intact(db)
    listed = _plain("list", str(rated[0].parent), "--format", "json", db=db)
    assert listed.returncode == 0, listed.stderr
    ratings = {Path(r["path"]).name: r["rating"] for r in map(json.loads, listed.stdout.splitlines())}
    assert {name: ratings[name] for name in expected} == expected, "every last decision is there"
    for folder in (a, b):
        rows = _plain("list", str(folder), "--format", "json", db=db)
        assert rows.returncode == 0, rows.stderr
        assert sum(1 for r in map(json.loads, rows.stdout.splitlines()) if r["scores"]) == N_PER_FOLDER


def test_two_indexers_on_the_same_folder_make_one_record_per_photo(catalog_address, tmp_path):
    db = catalog_address
    folder = _shoot(tmp_path / "shoot", N_PER_FOLDER, seed=300)[0].parent
    procs = [_index(folder, db), _index(folder, db)]  # e.g. the window and the CLI at once, new catalog
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "locked" not in err.lower() and "Traceback" not in err
    assert _query(db, "SELECT count(*) FROM photos") == [(N_PER_FOLDER,)]
    assert _query(db, "SELECT count(DISTINCT photo_id) FROM scores") == [(N_PER_FOLDER,)]
    assert _intact(db)
