"""The Qt-free culling session: view, sort, filters (absolute and relative), decisions and undo.

Decisions are written by the session's writer thread; `flush()` waits for them and delivers the
results (the window does the same through a queued signal). The writer itself, failures and real
concurrency: tests/culling/test_decision_writer.py, tests/catalog/test_concurrent_decisions.py."""

from __future__ import annotations

import numpy as np
import pytest

from clipiqa_desktop.catalog import Catalog, Decision, PhotoRecord
from clipiqa_desktop.culling.decisions import DecisionChange
from clipiqa_desktop.culling.presets import PRESETS
from clipiqa_desktop.culling.session import CullingSession, FilterState


def _rec(name, sharp, bright=0.5, captured=None, **measures):
    from clipiqa_desktop.imaging import PhotoMeta

    return PhotoRecord(
        name,
        1,
        1,
        fingerprint=name,
        scores={"sharpness": sharp, "brightness": bright, **measures},
        embedding=np.ones(4, np.float32) / 2,
        meta=PhotoMeta(captured_at=captured),
    )


@pytest.fixture
def session(tmp_path):
    cat = Catalog(tmp_path / "c.sqlite")
    fid = cat.folder_id(tmp_path)
    aid = cat.analysis_id("m", "512", 4, 100.0)
    sharp = [0.9, 0.1, 0.5, 0.3, 0.7, 0.05, 0.8, 0.6, 0.2, 0.4]
    cat.write_batch(
        fid,
        aid,
        [_rec(f"IMG_{i}.jpg", s, captured=f"2024-01-01T10:00:{9 - i:02d}") for i, s in enumerate(sharp)],
    )
    cat.set_last_analysis(fid, aid)
    s = CullingSession(cat, tmp_path)
    yield s
    cat.close()


def names(session):
    return [session.table.names[r] for r in session.view]


def test_sorts(session):
    session.set_sort("sharpness", False)
    assert names(session)[:3] == ["IMG_5.jpg", "IMG_1.jpg", "IMG_8.jpg"]
    session.set_sort("sharpness", True)
    assert names(session)[0] == "IMG_0.jpg"
    session.set_sort("captured", False)
    assert names(session)[0] == "IMG_9.jpg"
    session.set_sort("name", True)
    assert names(session)[0] == "IMG_9.jpg"


def test_absolute_and_relative_ranges_and_why(session):
    session.set_filters(FilterState(ranges={"sharpness": (0.0, 0.35)}))
    assert sorted(names(session)) == ["IMG_1.jpg", "IMG_3.jpg", "IMG_5.jpg", "IMG_8.jpg"]
    row = session.view[0]
    assert session.why(row)[0].startswith("Sharpness (CLIP-IQA) ") and "≤ 0.35" in session.why(row)[0]
    session.set_filters(FilterState(ranges={"sharpness": (0.0, 20.0)}, relative=True))  # lowest 20 %
    assert sorted(names(session)) == ["IMG_1.jpg", "IMG_5.jpg"]
    assert "percentiles 0–20" in session.why(session.view[0])[0]


NAN = float("nan")
# name: focus, highlights_clipped, faces, eyes_closed, sharpness (NaN: not measured / no face)
MEASURED = {
    "A.jpg": (0.9, 0.00, 1, 0, 0.9),  # a keeper
    "B.jpg": (0.1, 0.00, 0, NAN, 0.2),  # out of focus
    "C.jpg": (0.8, 0.05, 0, NAN, 0.8),  # blown highlights
    "D.jpg": (0.7, 0.00, 2, 1, 0.7),  # eyes closed
    "E.jpg": (0.2, 0.10, 1, 1, 0.1),  # everything wrong
    "F.jpg": (NAN, NAN, NAN, NAN, 0.05),  # not measured: never matches a pixel condition
    "G.jpg": (0.6, 0.01, 0, NAN, 0.6),
    "H.jpg": (0.5, 0.00, 0, NAN, 0.5),
}


@pytest.fixture
def measured(tmp_path):
    cat = Catalog(tmp_path / "m.sqlite")
    folder = tmp_path / "measured"
    fid = cat.folder_id(folder)
    aid = cat.analysis_id("m", "512", 4, 100.0)
    recs = []
    for name, (focus, high, faces, eyes, sharp) in MEASURED.items():
        values = {"focus": focus, "highlights_clipped": high, "faces": faces, "eyes_closed": eyes}
        recs.append(_rec(name, sharp, **{k: v for k, v in values.items() if not np.isnan(v)}))
    cat.write_batch(fid, aid, recs)
    cat.set_last_analysis(fid, aid)
    s = CullingSession(cat, folder)
    yield s
    s.close()
    cat.close()


def test_a_preset_matches_any_of_its_conditions(measured):
    measured.set_filters(FilterState(presets=frozenset({"Reject candidates"})))
    assert sorted(names(measured)) == ["B.jpg", "C.jpg", "D.jpg", "E.jpg"], "focus OR eyes OR highlights"
    row = measured.row_of(int(measured.table.ids[measured.table.names.index("E.jpg")]))
    assert measured.why(row) == [
        "Focus 0.20 (Focus ≤ 0.30)",
        "Eyes closed 1 (Eyes closed ≥ 1)",
        "Blown highlights 10.0 % (Blown highlights ≥ 2.0 %)",
    ]
    assert FilterState(presets=frozenset({"Out of focus"})).active


def test_two_presets_must_both_match_and_nan_never_matches(measured):
    measured.set_filters(FilterState(presets=frozenset({"Out of focus", "Blown highlights"})))
    assert names(measured) == ["E.jpg"]
    measured.set_filters(FilterState(presets=frozenset({"Out of focus"}), ranges={"focus": (0.0, 1.0)}))
    assert sorted(names(measured)) == ["B.jpg", "E.jpg"], "F has no focus: neither preset nor range"
    measured.set_filters(FilterState(ranges={"focus": (0.0, 1.0)}))
    assert "F.jpg" not in names(measured) and len(names(measured)) == 7
    measured.set_filters(FilterState(ranges={"faces": (1.0, 2.0)}))  # a count range
    assert sorted(names(measured)) == ["A.jpg", "D.jpg", "E.jpg"]


def test_presets_relative_and_absolute(measured):
    blurry = frozenset({"Blurry (CLIP-IQA)"})  # sharpness <= 0.35, or the lowest 15 % of the shoot
    measured.set_filters(FilterState(presets=blurry))
    assert sorted(names(measured)) == ["B.jpg", "E.jpg", "F.jpg"]
    measured.set_filters(FilterState(presets=blurry, relative=True))
    assert sorted(names(measured)) == ["E.jpg", "F.jpg"]
    row = measured.row_of(int(measured.table.ids[measured.table.names.index("E.jpg")]))
    assert measured.why(row) == ["Sharpness (CLIP-IQA) 0.10 (percentiles 0–15 of this shoot: 0.05–0.11)"]
    # pixel presets keep their absolute meaning in relative mode
    measured.set_filters(FilterState(presets=frozenset({"Out of focus"}), relative=True))
    assert sorted(names(measured)) == ["B.jpg", "E.jpg"]


def test_every_preset_is_a_valid_filter_and_unavailable_says_why(session, measured):
    for preset in PRESETS:
        session.set_filters(FilterState(presets=frozenset({preset.name})))  # no KeyError
    assert session.unavailable(["sharpness", "focus"]) == {"focus": "index the folder again to measure focus"}
    reasons = measured.unavailable(["focus", "faces", "face_focus", "eyes_closed", "quality"])
    assert set(reasons) == {"face_focus", "quality"}
    assert reasons["face_focus"] == "no face found in this folder"  # faces measured: none had one
    assert reasons["quality"].startswith("Quality (CLIP-IQA) is not scored")
    assert measured.count_maximum("faces") == 2.0 and session.count_maximum("faces") == 0.0


def test_decisions_filters_undo_redo(session):
    session.set_sort("name", False)
    first, second = session.view[0], session.view[1]
    session.decide([first, second], DecisionChange(reject=True))
    assert session.table.rating[first] == -1, "shown at once"
    pid = int(session.table.ids[first])
    assert session.flush(10)
    assert session.catalog.decisions([pid])[pid] == Decision(rating=-1)
    session.set_filters(FilterState(flags=frozenset({"rejected"})))
    assert names(session) == ["IMG_0.jpg", "IMG_1.jpg"]
    session.decide([first], DecisionChange(stars=4))
    session.decide([first], DecisionChange(label="Red"))
    assert session.undo() == [pid]
    assert session.table.labels[first] is None and session.table.rating[first] == 4
    session.undo()
    assert session.table.rating[first] == -1
    assert session.flush(10)
    assert session.catalog.decisions([pid])[pid].rating == -1
    session.redo()
    assert session.flush(10)
    assert session.catalog.decisions([pid])[pid].rating == 4
    session.set_filters(FilterState(min_rating=4))
    session.refresh()
    assert names(session) == ["IMG_0.jpg"]
    session.decide([second], DecisionChange(pick=True))
    assert not session.can_redo, "a new decision clears the redo stack"


def test_merge_brings_in_new_rows(session, tmp_path):
    cat = session.catalog
    aid = session.analysis_id
    ids = cat.write_batch(session.folder_id, aid, [_rec("NEW.jpg", 0.99), _rec("IMG_0.jpg", 0.01)])
    session.merge(list(ids.values()))
    assert len(session.table) == 11
    session.set_sort("sharpness", False)
    assert names(session)[0] == "IMG_0.jpg" and names(session)[-1] == "NEW.jpg"


def test_names_keep_their_sub_folder(session):
    cat = session.catalog
    tree = CullingSession(cat, session.folder, recursive=True)
    ids = cat.write_batch(session.folder_id, session.analysis_id, [_rec("day2/IMG_0.jpg", 0.5)])
    tree.merge(list(ids.values()))
    assert "day2/IMG_0.jpg" in tree.table.names and "IMG_0.jpg" in tree.table.names
    session.merge(list(ids.values()))
    assert "day2/IMG_0.jpg" not in session.table.names, "without sub-folders, only the folder's own"
    assert len(CullingSession(cat, session.folder, recursive=True).table) == 11


def test_events_say_what_changed(session):
    seen = []
    for name in ("view_changed", "rows_changed", "decisions_changed", "columns_changed"):
        getattr(session.events, name).connect(lambda *a, name=name: seen.append((name, *a)))
    session.set_sort("sharpness", True)
    session.set_filters(FilterState(ranges={"sharpness": (0.0, 0.5)}))
    assert seen == [("view_changed",), ("view_changed",)]
    seen.clear()
    row = int(session.view[0])
    pid = int(session.table.ids[row])
    session.decide([row], DecisionChange(pick=True))
    session.undo()
    assert session.flush(10)
    # shown at once twice; the catalog's values agree with the screen, so no third announcement
    assert seen == [("decisions_changed", [pid]), ("decisions_changed", [pid])]
    seen.clear()
    ids = session.catalog.write_batch(session.folder_id, session.analysis_id, [_rec("NEW.jpg", 0.1)])
    session.apply_indexed(list(ids.values()))
    assert seen == [("rows_changed", list(ids.values()))]
    assert "NEW.jpg" in [session.table.names[r] for r in session.view]
    seen.clear()
    from clipiqa_desktop.scoring.attributes import custom_pair

    pair = custom_pair("Eyes closed.", "Eyes open.")
    session.add_prompt_scores(pair, session.table.ids, np.zeros(len(session.table), np.float32))
    assert [e[0] for e in seen] == ["columns_changed", "rows_changed"]


def test_a_failed_undo_keeps_its_step(session, monkeypatch):
    """The catalog cannot be written when Ctrl+Z is pressed (another process holds the write lock
    past the retry window): the photo shows the reject again, and the step can be undone later."""
    import sqlite3

    from clipiqa_desktop.catalog import connection as connection_module

    row = int(session.view[0])
    pid = int(session.table.ids[row])
    session.decide([row], DecisionChange(reject=True))
    assert session.flush(10)
    monkeypatch.setattr(connection_module, "BUSY_TIMEOUT_MS", 50)
    monkeypatch.setattr(connection_module, "WRITE_RETRY_SECONDS", 0.3)
    session.catalog.close()  # pooled connections took the long busy timeout
    failures = []
    session.events.write_failed.connect(failures.append)
    other = sqlite3.connect(session.catalog.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        session.undo()
        assert session.table.rating[row] == 0, "the undo is shown at once"
        assert session.flush(10)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert failures and "undo" in failures[0] and "busy" in failures[0].lower()
    assert session.table.rating[row] == -1, "the screen shows the catalog again"
    assert session.can_undo and not session.can_redo
    session.undo()
    assert session.flush(10)
    assert session.catalog.decisions([pid])[pid].rating == 0


def test_a_new_analysis_drops_prompt_columns_and_their_sort(session):
    from clipiqa_desktop.scoring.attributes import custom_pair

    pair = custom_pair("Eyes closed.", "Eyes open.")
    session.add_prompt_scores(pair, session.table.ids, np.arange(len(session.table), dtype=np.float32))
    session.set_sort(pair.key, True)
    cat = session.catalog
    other = cat.analysis_id("m", "1024", 4, 100.0)  # re-indexed at another size
    ids = cat.write_batch(session.folder_id, other, [_rec(f"IMG_{i}.jpg", 0.5) for i in range(10)])
    cat.set_last_analysis(session.folder_id, other)
    session.apply_indexed(list(ids.values()))
    assert session.analysis_id == other and pair.key not in session.table.attributes
    assert session.sort_key == "name" and len(session.view) == 10
