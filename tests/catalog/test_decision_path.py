"""The one decision path: a change is read, applied and written in one write transaction, field by
field, and undo/redo put back only the fields a step changed — so nothing another writer did to the
other fields is lost. On a real SQLite catalog and a real PostgreSQL one, with two Catalog objects
standing in for two windows (each has its own connection pool, as two processes would)."""

from __future__ import annotations

import pytest

from clipiqa_desktop.catalog import Catalog, Decision, PhotoRecord
from clipiqa_desktop.catalog.records import SidecarState
from clipiqa_desktop.culling.decisions import DecisionChange, change_fn, restore_fn

from . import raw

pytestmark = pytest.mark.both_backends


@pytest.fixture
def ids(catalog, tmp_path):
    fid = catalog.folder_id(tmp_path)
    aid = catalog.analysis_id("m", "512", 4, 100.0)
    recs = [PhotoRecord(f"{n}.jpg", 100, 1, fingerprint=f"fp-{n}") for n in "abc"]
    got = catalog.write_batch(fid, aid, recs)
    return [got[f"{n}.jpg"] for n in "abc"]


def test_a_change_touches_only_its_field_of_the_decision_as_it_is_at_write_time(catalog, ids):
    other = Catalog(catalog.address)  # a second window / process, with its own connections
    # The first window has read "unrated" into its table; then the second one labels the photo.
    other.update_decisions(ids[:1], change_fn(DecisionChange(label="Red")))
    # The first window's stars must not replace the label it never saw.
    (delta,) = catalog.update_decisions(ids[:1], change_fn(DecisionChange(stars=3)))
    assert delta.before == Decision(label="Red")
    assert catalog.decisions(ids[:1])[ids[0]] == Decision(rating=3, label="Red")


def test_undo_and_redo_restore_only_the_fields_the_step_changed(catalog, ids):
    other = Catalog(catalog.address)
    catalog.set_decisions({ids[0]: Decision(rating=4)})
    step = catalog.update_decisions(ids[:2], change_fn(DecisionChange(reject=True)))
    assert {d.photo_id: d.fields for d in step} == {ids[0]: ("rating",), ids[1]: ("rating",)}
    other.update_decisions(ids[:2], change_fn(DecisionChange(label="Green")))  # meanwhile, elsewhere

    catalog.update_decisions([d.photo_id for d in step], restore_fn(step, "before"))
    assert catalog.decisions(ids[:2]) == {
        ids[0]: Decision(rating=4, label="Green"),
        ids[1]: Decision(label="Green"),
    }, "undo gives back the stars the reject replaced and keeps the other window's label"

    catalog.update_decisions([d.photo_id for d in step], restore_fn(step, "after"))
    assert catalog.decisions(ids[:2]) == {
        ids[0]: Decision(rating=-1, label="Green"),
        ids[1]: Decision(rating=-1, label="Green"),
    }


def test_redo_of_a_reject_after_another_writer_picked_leaves_no_picked_reject(catalog, ids):
    step = catalog.update_decisions(ids[:1], change_fn(DecisionChange(reject=True)))
    catalog.update_decisions(ids[:1], restore_fn(step, "before"))
    Catalog(catalog.address).update_decisions(ids[:1], change_fn(DecisionChange(pick=True)))
    catalog.update_decisions(ids[:1], restore_fn(step, "after"))
    assert catalog.decisions(ids[:1])[ids[0]] == Decision(rating=-1, picked=False)


def test_unchanged_photos_are_not_written_and_give_no_delta(catalog, ids):
    catalog.set_decisions({ids[0]: Decision(rating=-1)})
    with catalog.transaction() as tx:
        before = tx.decision_times(ids)
    assert catalog.update_decisions(ids[:1], change_fn(DecisionChange(reject=True))) == []
    with catalog.transaction() as tx:
        assert tx.decision_times(ids) == before, "changed_at stays when nothing changed"
    assert ids[1] not in before, "a photo never decided has no decision time"


def test_a_composed_transaction_is_all_or_nothing(catalog, ids):
    state = SidecarState("a.jpg.xmp", 123, 456)
    with pytest.raises(RuntimeError), catalog.transaction() as tx:
        tx.update_decisions(ids[:1], change_fn(DecisionChange(stars=5)))
        tx.set_sidecar_state(ids[0], state)
        raise RuntimeError("a later step fails")
    assert catalog.decisions(ids[:1])[ids[0]] == Decision()
    with catalog.transaction() as tx:
        assert tx.sidecar_states(ids[:1]) == {ids[0]: None}
        tx.update_decisions(ids[:1], change_fn(DecisionChange(stars=5)))
        tx.set_sidecar_state(ids[0], state)
    with catalog.transaction() as tx:
        assert tx.sidecar_states(ids[:1]) == {ids[0]: state}
    assert catalog.decisions(ids[:1])[ids[0]] == Decision(rating=5)


def test_a_photo_deleted_by_another_process_is_skipped(catalog, ids):
    assert raw.execute(catalog.address, "DELETE FROM photos WHERE id = :pid", pid=ids[2]) == 1
    deltas = catalog.update_decisions(ids, change_fn(DecisionChange(pick=True)))
    assert sorted(d.photo_id for d in deltas) == sorted(ids[:2])


def test_the_first_index_import_adopts_a_sidecar_decision_only_for_an_undecided_photo(catalog, tmp_path, ids):
    fid = catalog.folder_id(tmp_path)
    aid = catalog.analysis_id("m", "512", 4, 100.0)
    catalog.set_decisions({ids[0]: Decision(rating=2)})
    xmp = Decision(rating=5, label="Blue")
    recs = [PhotoRecord(f"{n}.jpg", 100, 1, fingerprint=f"fp-{n}", xmp_decision=xmp) for n in "ab"]
    catalog.write_batch(fid, aid, recs)
    assert catalog.decisions(ids[:2]) == {ids[0]: Decision(rating=2), ids[1]: xmp}


def test_an_explicit_zero_stars_is_a_decision_the_files_own_rating_never_replaces(catalog, tmp_path, ids):
    """A photo re-decoded (its file touched) brings its embedded XMP rating again: the photographer's
    "0 stars, no flag" made here must stay, although it equals Decision()."""
    fid = catalog.folder_id(tmp_path)
    aid = catalog.analysis_id("m", "512", 4, 100.0)
    catalog.set_decisions({ids[0]: Decision(rating=5)})
    catalog.update_decisions(ids[:1], change_fn(DecisionChange(stars=0)))
    catalog.write_batch(
        fid, aid, [PhotoRecord("a.jpg", 200, 2, fingerprint="fp-a", xmp_decision=Decision(5))]
    )
    assert catalog.decisions(ids[:1])[ids[0]] == Decision()
