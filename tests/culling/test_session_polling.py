"""The session's side of decisions changed elsewhere (poll_task on another thread, apply_poll on the
session's), Qt-free, with the races laid out step by step: a poll never shows a value older than
one the session already has (its own write, a reload), and a photo it passed over because of a
local write is read again by the next poll."""

from __future__ import annotations

import pytest

from clipiqa_desktop.catalog import Decision, PhotoRecord
from clipiqa_desktop.culling.decisions import DecisionChange, change_fn
from clipiqa_desktop.culling.session import CullingSession

pytestmark = pytest.mark.both_backends


@pytest.fixture
def session(catalog, tmp_path):
    fid = catalog.folder_id(tmp_path)
    aid = catalog.analysis_id("m", "512", 4, 100.0)
    catalog.write_batch(fid, aid, [PhotoRecord(f"IMG_{i}.jpg", 1, 1, fingerprint=f"f{i}") for i in range(4)])
    catalog.set_last_analysis(fid, aid)
    s = CullingSession(catalog, tmp_path)
    yield s
    s.close(10)


def _shown(session, pid):
    t, row = session.table, session.row_of(pid)
    return Decision(int(t.rating[row]), bool(t.picked[row]), t.labels[row])


def _elsewhere(catalog, pid, **change):
    catalog.update_decisions([pid], change_fn(DecisionChange(**change)))


def test_changes_elsewhere_are_shown_and_own_writes_change_nothing(session, catalog):
    a, b = (int(i) for i in session.table.ids[:2])
    assert session.poll_decisions() == []
    _elsewhere(catalog, a, stars=3)
    assert session.poll_decisions() == [a]
    assert _shown(session, a) == Decision(rating=3)
    session.decide([session.row_of(b)], DecisionChange(pick=True))
    session.flush()
    assert session.poll_decisions() == [], "the session's own write comes back as no change"
    assert _shown(session, b) == Decision(picked=True)
    assert session.decision_seq == catalog.decision_seq()


def test_a_photo_passed_over_for_a_local_write_is_read_again(session, catalog):
    """Written here (not yet delivered), then labelled elsewhere, then polled: the poll passes the
    photo over (a local write was in flight when it started) and the delivered result predates the
    label; the next poll reads the photo again and shows the label."""
    a = int(session.table.ids[0])
    session.decide([session.row_of(a)], DecisionChange(stars=5))
    task = session.poll_task()  # the photo's write is queued
    assert session.writer.drain(10)  # written, its result not delivered yet
    _elsewhere(catalog, a, label="Red")
    poll = task()
    session.deliver()
    assert _shown(session, a) == Decision(rating=5), "the write's own result, from before the label"
    assert session.apply_poll(poll) == []
    assert session.poll_decisions() == [a]
    assert _shown(session, a) == Decision(rating=5, label="Red")


def test_a_poll_read_before_a_reload_or_a_merge_is_not_applied(session, catalog):
    a, b = (int(i) for i in session.table.ids[:2])
    _elsewhere(catalog, a, stars=2)
    _elsewhere(catalog, b, stars=2)
    before_reload = session.poll_task()()
    _elsewhere(catalog, a, stars=4)
    session.reload()
    assert session.apply_poll(before_reload) == []
    assert _shown(session, a) == Decision(rating=4), "the reload's newer value stays"

    _elsewhere(catalog, b, stars=1)
    before_merge = session.poll_task()()
    _elsewhere(catalog, b, stars=5)
    session.merge([b])  # an indexer's batch re-reads the row
    session.apply_poll(before_merge)
    assert _shown(session, b) == Decision(rating=5)
    session.poll_decisions()
    assert _shown(session, b) == Decision(rating=5)
