"""Decisions changed elsewhere, as a window polls for them: every write transaction that changes a
decision raises counters['decisions'] once and stores the value in each decision it wrote
(decisions.seq); `decision_changes(folders, since)` returns the decisions of those folders written
after `since` and the counter as it is. Field-wise undo after another writer changed the same field
keeps the later change. On SQLite and PostgreSQL; "another process" is tests/catalog/raw.py."""

from __future__ import annotations

import pytest

from clipiqa_desktop.catalog import Decision, PhotoRecord
from clipiqa_desktop.culling.decisions import DecisionChange, change_fn, restore_fn

from . import raw

pytestmark = pytest.mark.both_backends


def _photos(catalog, folder, names):
    fid = catalog.folder_id(folder)
    aid = catalog.analysis_id("m", "512", 4, 100.0)
    got = catalog.write_batch(
        fid, aid, [PhotoRecord(n, 100, 1, fingerprint=f"{folder.name}-{n}") for n in names]
    )
    return fid, [got[n] for n in names]


def test_one_counter_value_per_transaction_and_only_the_changes_since(catalog, catalog_address, tmp_path):
    fid, (a, b, c) = _photos(catalog, tmp_path / "shoot", ["a.jpg", "b.jpg", "c.jpg"])
    other_fid, (x,) = _photos(catalog, tmp_path / "other", ["x.jpg"])
    assert catalog.decision_seq() == 0
    assert catalog.decision_changes([fid], 0) == (0, {})

    catalog.update_decisions([a, b], change_fn(DecisionChange(stars=3)))  # one transaction, 2 photos
    assert catalog.decision_seq() == 1
    assert catalog.decision_changes([fid], 0) == (1, {a: Decision(rating=3), b: Decision(rating=3)})

    with catalog.transaction() as tx:  # two steps composed in one transaction: still one value
        tx.update_decisions([b], change_fn(DecisionChange(label="Red")))
        tx.update_decisions([c], change_fn(DecisionChange(pick=True)))
    catalog.update_decisions([x], change_fn(DecisionChange(reject=True)))  # another folder
    assert catalog.decision_seq() == 3
    assert catalog.decision_changes([fid], 1) == (
        3,
        {b: Decision(rating=3, label="Red"), c: Decision(picked=True)},
    )
    assert catalog.decision_changes([fid], 2) == (3, {}), "the other folder's change is not this one's"
    assert catalog.decision_changes([fid, other_fid], 2) == (3, {x: Decision(rating=-1)})
    assert catalog.decision_changes([fid], 3) == (3, {})

    # a transaction that changes nothing takes no value
    assert catalog.update_decisions([a], change_fn(DecisionChange(stars=3))) == []
    assert catalog.decision_seq() == 3

    # a photo deleted by another process: its decision is gone, it is not reported, and writing to
    # it raises nothing
    assert raw.execute(catalog_address, "DELETE FROM photos WHERE id = :pid", pid=a) == 1
    catalog.update_decisions([a, b], change_fn(DecisionChange(stars=5)))
    assert catalog.decision_changes([fid], 3) == (4, {b: Decision(rating=5, label="Red")})
    assert catalog.update_decisions([a], change_fn(DecisionChange(stars=1))) == []
    assert catalog.decision_seq() == 4, "a write to a deleted photo only takes no counter value"
    assert a not in catalog.decision_changes([fid], 0)[1]


def test_the_import_of_xmp_decisions_counts_as_a_change_too(catalog, tmp_path):
    fid = catalog.folder_id(tmp_path)
    aid = catalog.analysis_id("m", "512", 4, 100.0)
    recs = [PhotoRecord(f"{n}.jpg", 100, 1, fingerprint=n, xmp_decision=Decision(rating=4)) for n in "ab"]
    got = catalog.write_batch(fid, aid, recs)
    seq, changed = catalog.decision_changes([fid], 0)
    assert seq == 1, "one batch, one transaction, one value"
    assert changed == {got["a.jpg"]: Decision(rating=4), got["b.jpg"]: Decision(rating=4)}


def test_undo_leaves_a_photo_another_machine_decided_again_since(catalog, tmp_path):
    """Field-wise undo puts back the fields a step changed only while they still hold what the
    step wrote: a later change of those fields made elsewhere is the later decision and stands
    (the whole photo: a reject's rating and pick go together). A change elsewhere to a field the
    step did not touch does not stop the undo (tests/catalog/test_decision_path.py)."""
    _fid, (a, b) = _photos(catalog, tmp_path, ["a.jpg", "b.jpg"])
    catalog.set_decisions({a: Decision(rating=2, picked=True), b: Decision(rating=2)})
    step = catalog.update_decisions([a, b], change_fn(DecisionChange(reject=True)))
    catalog.update_decisions([a], change_fn(DecisionChange(stars=4)))  # elsewhere, after the reject

    catalog.update_decisions([a, b], restore_fn(step, "before"))
    assert catalog.decisions([a, b]) == {a: Decision(rating=4), b: Decision(rating=2)}, (
        "their 4 stars stand (no half-undone pick beside them); b, untouched since, is undone"
    )
    catalog.update_decisions([a, b], restore_fn(step, "after"))
    assert catalog.decisions([a, b]) == {a: Decision(rating=4), b: Decision(rating=-1)}
