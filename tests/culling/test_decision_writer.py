"""The writer thread behind the window's decisions (culling/writer.py) through a real session on a real
catalog: order, an undo pressed before the write returned, a failed write put back on screen and
its step dropped, what another writer did kept, the sidecar hook, and the drain on close.

"The write has not returned" is made real: another connection holds the catalog's write lock
(SQLite's BEGIN IMMEDIATE, PostgreSQL's advisory lock: tests/catalog/raw.py), as another process
would, so the writer thread waits for it. A failure is a real CatalogBusy: with the busy timeout
and retry window shortened, a writer that finds the lock taken gives up (what the window sees
after 30 s of another program's lock). Every test runs on SQLite and on PostgreSQL (both_backends).
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from clipiqa_desktop.catalog import Catalog, Decision, PhotoRecord
from clipiqa_desktop.catalog import connection as connection_module
from clipiqa_desktop.culling.decisions import DecisionChange
from clipiqa_desktop.culling.session import CullingSession
from clipiqa_desktop.culling.writer import DecisionWriter

from ..catalog import raw

pytestmark = pytest.mark.both_backends


@pytest.fixture
def session(catalog, tmp_path):
    fid = catalog.folder_id(tmp_path)
    aid = catalog.analysis_id("m", "512", 4, 100.0)
    recs = [
        PhotoRecord(f"IMG_{i}.jpg", 1, 1, fingerprint=f"f{i}", scores={"sharp": i / 10}, embedding=np.ones(4))
        for i in range(6)
    ]
    catalog.write_batch(fid, aid, recs)
    catalog.set_last_analysis(fid, aid)
    s = CullingSession(catalog, tmp_path)
    yield s
    s.close(10)


def write_lock(catalog: Catalog, commit: bool = False):
    """Another writer holding the catalog's write lock until the block ends (yields its connection)."""
    return raw.write_lock(catalog.address, commit=commit)


@pytest.fixture
def impatient(monkeypatch, catalog):
    """A writer that finds the lock taken fails (CatalogBusy) after ~0.3 s instead of 30 s."""
    monkeypatch.setattr(connection_module, "BUSY_TIMEOUT_MS", 50)
    monkeypatch.setattr(connection_module, "WRITE_RETRY_SECONDS", 0.3)
    catalog.close()  # pooled connections were opened with the long busy timeout


def row_and_id(session, k=0):
    row = int(session.view[k])
    return row, int(session.table.ids[row])


def shown(session, row):
    t = session.table
    return Decision(int(t.rating[row]), bool(t.picked[row]), t.labels[row])


def test_jobs_are_written_in_order_and_the_last_one_wins(session, catalog):
    rows = [int(r) for r in session.view]
    ids = [int(session.table.ids[r]) for r in rows]
    for stars in (1, 2, 3, 4, 5, 0, 2):
        session.decide(rows, DecisionChange(stars=stars))
    session.decide(rows[:2], DecisionChange(reject=True))
    session.decide(rows[:1], DecisionChange(label="Blue"))
    assert session.flush(10)
    now = catalog.decisions(ids)
    assert now[ids[0]] == Decision(rating=-1, label="Blue")
    assert now[ids[1]] == Decision(rating=-1)
    assert all(now[i] == Decision(rating=2) for i in ids[2:])
    assert [shown(session, r) for r in rows] == [now[i] for i in ids]
    assert session.saving == 0


def test_undo_pressed_before_the_write_returned(session, catalog):
    row, pid = row_and_id(session)
    catalog.update_decisions([pid], lambda _p, d: Decision(rating=3, label="Red"))
    session.reload()
    with write_lock(catalog):
        session.decide([row], DecisionChange(reject=True))
        assert shown(session, row).rating == -1, "shown at once, while the catalog is locked"
        session.undo()
        assert shown(session, row) == Decision(rating=3, label="Red"), "the undo is shown at once too"
        time.sleep(0.2)
        assert session.saving == 2 and catalog.decisions([pid])[pid].rating == 3, "nothing written yet"
    assert session.flush(20)
    assert catalog.decisions([pid])[pid] == Decision(rating=3, label="Red")
    assert session.can_redo and not session.can_undo
    session.redo()
    assert session.flush(10)
    assert catalog.decisions([pid])[pid] == Decision(rating=-1, label="Red")
    assert shown(session, row) == Decision(rating=-1, label="Red")


def test_a_failed_write_is_undone_on_screen_explained_and_dropped(session, catalog, impatient):
    row, pid = row_and_id(session)
    other_row, other = row_and_id(session, 1)
    session.decide([other_row], DecisionChange(stars=2))
    assert session.flush(10)
    failures = []
    session.events.write_failed.connect(failures.append)
    with write_lock(catalog):
        session.decide([row], DecisionChange(reject=True))
        session.undo()  # the undo of a step whose write fails does nothing
        assert shown(session, row).rating == 0
        session.decide([row], DecisionChange(pick=True))
        assert shown(session, row).picked
        assert session.flush(10)
    assert len(failures) == 2, failures  # the reject and the pick; the undo had nothing to write
    assert "rejected" in failures[0] and "busy" in failures[0].lower()
    assert "picked" in failures[1]
    assert catalog.decisions([pid])[pid] == Decision()
    assert shown(session, row) == Decision(), "the screen shows the catalog's values again"
    assert not session.can_redo, "the failed step left the stacks"
    assert session.can_undo  # the 2 stars, written before
    session.undo()
    assert session.flush(10)
    assert catalog.decisions([other])[other] == Decision()


def test_the_screen_takes_what_another_writer_did_to_the_other_fields(session, catalog):
    row, pid = row_and_id(session)
    with write_lock(catalog, commit=True) as other:  # `rate --label green` in a terminal, meanwhile
        session.decide([row], DecisionChange(pick=True))
        other.execute(
            "INSERT INTO decisions (photo_id, rating, picked, label, changed_at, source) "
            "VALUES (:pid, 0, FALSE, 'Green', 0, 'user')",
            pid=pid,
        )
        assert shown(session, row) == Decision(picked=True)
    assert session.flush(20)
    assert catalog.decisions([pid])[pid] == Decision(picked=True, label="Green")
    assert shown(session, row) == Decision(picked=True, label="Green")
    session.undo()
    assert session.flush(10)
    assert catalog.decisions([pid])[pid] == Decision(label="Green"), "undo puts back only the pick"


def test_a_change_that_changes_nothing_leaves_no_undo_step(session, catalog):
    row, _pid = row_and_id(session)
    session.decide([row], DecisionChange(unflag=True))  # already unflagged
    assert session.can_undo  # until the writer says what it did
    assert session.flush(10)
    assert not session.can_undo


def test_after_write_runs_on_the_writer_thread_and_its_failure_keeps_the_decision(session, catalog):
    calls = []

    def hook(ids):
        calls.append((threading.current_thread().name, list(ids)))
        if len(calls) > 1:
            raise OSError("read-only folder")
        return None

    session.writer.after_write = hook
    notes = []
    session.events.write_note.connect(notes.append)
    row, pid = row_and_id(session)
    session.decide([row], DecisionChange(stars=4))
    session.decide([row], DecisionChange(stars=4))  # no change: no hook
    session.decide([row], DecisionChange(label="Red"))
    assert session.flush(10)
    assert calls == [("decision-writer", [pid]), ("decision-writer", [pid])]
    assert notes and "read-only folder" in notes[0] and "saved" in notes[0]
    assert catalog.decisions([pid])[pid] == Decision(rating=4, label="Red")


def test_close_writes_everything_queued(session, catalog):
    ids = []
    other = raw.WriteLock(catalog.address)
    for k in range(len(session.view)):
        row, pid = row_and_id(session, k)
        session.decide([row], DecisionChange(stars=1 + k % 5))
        ids.append(pid)
    release = threading.Timer(0.5, other.release)
    release.start()
    try:
        assert session.close(20), "close waits for the lock to be released, then writes everything"
    finally:
        release.join()
        other.release()
    assert [catalog.decisions(ids)[p].rating for p in ids] == [1 + k % 5 for k in range(len(ids))]
    assert session.writer.closed and session.writer.pending == 0
    assert not [t for t in threading.enumerate() if t.name == "decision-writer"]


def test_close_gives_up_on_a_catalog_that_stays_locked_and_says_so(session, catalog, impatient):
    failures = []
    session.events.write_failed.connect(failures.append)
    with write_lock(catalog):
        for k in range(3):
            row, _pid = row_and_id(session, k)
            session.decide([row], DecisionChange(reject=True))
        started = time.monotonic()
        session.close(0.1)  # the window uses 60 s; the writer's own retry window ends first there
        assert time.monotonic() - started < 2
    deadline = time.monotonic() + 10
    while [t for t in threading.enumerate() if t.name == "decision-writer"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert failures, "the user is told which decisions were not saved"
    assert any("not saved" in f.lower() for f in failures)


def test_a_writer_serves_one_job_at_a_time_on_one_thread(catalog, tmp_path):
    writer = DecisionWriter(catalog)
    assert writer.pending == 0 and writer.drain(0.1)
    writer.close(1)
    with pytest.raises(RuntimeError):
        writer.submit(None)  # type: ignore[arg-type]


def test_a_job_that_breaks_unexpectedly_is_reported_and_the_writer_keeps_writing(session, catalog):
    """A job whose photo ids cannot even be read back (a bug, not a catalog failure) must not end the
    writer thread for good: it is answered as not saved, and the next job is written."""
    from clipiqa_desktop.culling.writer import Step, WriteJob

    results = []
    writer = DecisionWriter(catalog)
    broken = Step(("not-an-id",), DecisionChange(stars=1))  # type: ignore[arg-type]
    writer.submit(WriteJob("apply", broken, results.append))
    pid = int(session.table.ids[0])
    writer.submit(WriteJob("apply", Step((pid,), DecisionChange(stars=4)), results.append))
    assert writer.drain(10)
    writer.close(1)
    assert [r.error is not None for r in results] == [True, False]
    assert "not saved" in str(results[0].error) and broken.error
    assert catalog.decisions([pid])[pid] == Decision(rating=4)
