"""The window culls with keys while two other processes write into the same catalog and folder: a CLI
`index` (re-scoring the shoot at another size, one photo per transaction) and a loop of CLI `rate`
giving stars. Afterwards every decision each side made is there: the window's labels and picks
AND rate's stars; nobody's keypress waited on the catalog long enough to fail, nothing was lost.
"""

from __future__ import annotations

import random
import subprocess
import threading
import time

import pytest
from PySide6.QtCore import Qt
from sqlalchemy import text

from clipiqa_desktop.gui.photo_model import PhotoIdRole

from ..catalog import raw
from ..conftest import app_command

# On an SQLite file and on a PostgreSQL database: the window, the indexer and rate are three
# processes writing one catalog either way.
pytestmark = pytest.mark.both_backends

KEYS = {Qt.Key.Key_6: "Red", Qt.Key.Key_7: "Yellow", Qt.Key.Key_8: "Green", Qt.Key.Key_9: "Blue"}


def test_window_culls_while_index_and_rate_write_the_same_catalog(qtbot, window, shoot, catalog, settings):
    db = settings.catalog_location
    (shoot / "IMG_9999.jpg").unlink()  # the broken file would make `index` exit 1
    assert window.open_folder(shoot)
    qtbot.waitUntil(lambda: not window.indexing and window.index_thread is None, timeout=60_000)
    qtbot.waitUntil(lambda: window.model.rowCount() == 12, timeout=10_000)
    photos = sorted(shoot.glob("*.jpg"))
    ids = catalog.photo_ids_for_paths(photos)

    indexer = subprocess.Popen(
        app_command("index", str(shoot), "--size", "64", "--batch-size", "1", "--workers", "1", catalog=db),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    rated: dict[int, int] = {}
    rate_errors: list[str] = []
    stop = threading.Event()

    def rate_loop() -> None:
        rng = random.Random(7)
        n = 0
        while not stop.is_set() or n < 3:
            path = rng.choice(photos)
            stars = rng.randint(0, 5)
            cmd = app_command("rate", str(path), "--stars", str(stars), catalog=db)
            cmd = cmd[: cmd.index("--model")]  # rate takes no model options
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            if proc.returncode != 0:
                rate_errors.append(proc.stderr)
            else:
                rated[int(ids[path])] = stars
            n += 1

    rater = threading.Thread(target=rate_loop)
    rater.start()
    rng = random.Random(3)
    meant: dict[int, dict] = {}
    # How many photos the indexer has committed (scores at its size), read as another reader would:
    # keypresses count only while it is committing, not while its interpreter and torch start.
    reader = raw.engine(db)

    def committed() -> int:
        q = (
            "SELECT COUNT(DISTINCT photo_id) FROM scores JOIN analyses a ON a.id = analysis_id "
            "WHERE a.size = '64'"
        )
        with reader.connect() as conn:
            return int(conn.execute(text(q)).scalar_one())

    seen_while_committing: list[int] = []
    window.grid.setFocus()
    try:
        deadline = time.monotonic() + 120
        while (indexer.poll() is None or len(meant) < 12) and time.monotonic() < deadline:
            row = rng.randrange(window.model.rowCount())
            index = window.model.index(row)
            pid = index.data(PhotoIdRole)
            window.grid.setCurrentIndex(index)
            window.grid.clearSelection()
            mine = meant.setdefault(pid, {"label": None, "picked": False})
            key = rng.choice([*KEYS, Qt.Key.Key_P, Qt.Key.Key_U])
            qtbot.keyClick(window.grid, key)
            if key in KEYS:
                mine["label"] = None if mine["label"] == KEYS[key] else KEYS[key]
            else:
                mine["picked"] = key == Qt.Key.Key_P
            if indexer.poll() is None and (n := committed()) > 0:
                seen_while_committing.append(n)
            qtbot.wait(rng.randint(5, 40))
    finally:
        stop.set()
        rater.join(180)
        _out, err = indexer.communicate(timeout=120)
        reader.dispose()
    assert indexer.returncode == 0, err
    assert "locked" not in err.lower() and "Traceback" not in err
    assert not rate_errors, rate_errors[0]
    assert len(seen_while_committing) >= 3 and len(set(seen_while_committing)) >= 2, (
        f"keys were pressed while the indexer committed batches: {seen_while_committing}"
    )
    assert len(rated) >= 3

    assert window.decisions.flush(30)
    now = catalog.decisions([int(i) for i in ids.values()])
    for pid, mine in meant.items():
        d = now[pid]
        assert (d.label, d.picked) == (mine["label"], mine["picked"]), f"photo {pid}: the window's decision"
    for pid, stars in rated.items():
        assert now[pid].rating == stars, f"photo {pid}: rate's last stars"
    for pid, mine in meant.items():  # and the window shows its own decisions
        row = window.session.row_of(pid)
        assert (window.session.table.labels[row], bool(window.session.table.picked[row])) == (
            mine["label"],
            mine["picked"],
        )
