"""The session's bursts and scenes: stacked view (one row per group, its best frame, expanded
stacks in capture order), the best mark, filters relative to the burst, keep-best-N as one undo
step — on catalog rows written directly (capture times with sub-seconds, EXIF exposure bias,
embeddings), so the true groups are known."""

from __future__ import annotations

import numpy as np
import pytest

from clipiqa_desktop.catalog import Catalog, PhotoRecord
from clipiqa_desktop.catalog.records import Decision
from clipiqa_desktop.culling.decisions import DecisionChange
from clipiqa_desktop.culling.groups import GroupParams
from clipiqa_desktop.culling.session import CullingSession, FilterState
from clipiqa_desktop.imaging import PhotoMeta

D = 8


def _emb(axis: int, wobble: float) -> np.ndarray:
    v = np.zeros(D, np.float32)
    v[axis] = 1.0
    v[(axis + 1) % D] = wobble
    return v / np.linalg.norm(v)


# name, seconds after 14:00:00, scene axis, quality, focus, exposure bias
SHOOT = [
    ("A1.jpg", 0.0, 0, 0.50, 0.60, 0.0),
    ("A2.jpg", 0.4, 0, 0.90, 0.95, 0.0),  # the best of burst A
    ("A3.jpg", 0.8, 0, 0.40, 0.30, 0.0),  # the worst of burst A
    ("A4.jpg", 1.2, 0, 0.70, 0.70, 0.0),
    ("B1.jpg", 60.0, 2, 0.20, 0.25, 0.0),  # the worst of burst B (worse than anything of A)
    ("B2.jpg", 60.5, 2, 0.35, 0.40, 0.0),  # the best of burst B
    ("K1.jpg", 120.0, 4, 0.30, 0.50, 0.0),  # an exposure bracket 0, -1, +1 EV
    ("K2.jpg", 120.3, 4, 0.80, 0.50, -1.0),
    ("K3.jpg", 120.6, 4, 0.60, 0.50, 1.0),
    ("S1.jpg", 600.0, 6, 0.55, 0.55, 0.0),  # alone
]
BURST_A = ["A1.jpg", "A2.jpg", "A3.jpg", "A4.jpg"]


def _record(name: str, t: float, axis: int, quality: float, focus: float, bias: float) -> PhotoRecord:
    whole = int(t)
    meta = PhotoMeta(
        captured_at=f"2024-06-01T14:{whole // 60:02d}:{whole % 60:02d}",
        subsec=round(t - whole, 3),
        camera_make="Canon",
        camera_model="EOS R5",
        exposure_time=0.01,
        f_number=2.8,
        iso=400,
        exposure_bias=bias,
    )
    return PhotoRecord(
        name,
        1,
        1,
        fingerprint=name,
        scores={"quality": quality, "focus": focus, "sharpness": quality},
        embedding=_emb(axis, 0.05 * (int(t * 10) % 3)),
        meta=meta,
    )


@pytest.fixture
def session(tmp_path):
    cat = Catalog(tmp_path / "c.sqlite")
    fid = cat.folder_id(tmp_path)
    aid = cat.analysis_id("m", "512", D, 100.0)
    cat.write_batch(fid, aid, [_record(*row) for row in SHOOT])
    cat.set_last_analysis(fid, aid)
    s = CullingSession(cat, tmp_path)
    yield s
    s.close()
    cat.close()


def names(session):
    return [session.table.names[r] for r in session.view]


def row(session, name):
    return session.table.names.index(name)


def stack(session):
    """Stacks on, then the grouping the window would compute in its worker thread."""
    asked = []
    session.events.grouping_needed.connect(lambda: asked.append(True))
    session.set_stacked(True)
    assert asked and session.needs_grouping and session.grouping is None  # the session never groups itself
    session.regroup()
    assert not session.needs_grouping


def test_grouping_waits_until_asked(session):
    assert session.grouping is None and "keeper" not in session.table.attributes
    assert len(session.view) == len(SHOOT)
    session.set_stacked(True)  # flat until the grouping arrives
    assert session.grouping is None and len(session.view) == len(SHOOT)
    assert list(session.step_order()) == list(session.view_ids)
    with pytest.raises(RuntimeError, match="not grouped yet"):
        session.keep_best_plan(1, "burst")


def test_stacked_view_shows_each_group_by_its_best_frame(session):
    session.set_sort("name", False)
    stack(session)
    assert "keeper" in session.table.attributes
    # A by its best (A2), B by B2, the bracket by its first frame, the single
    assert names(session) == ["A2.jpg", "B2.jpg", "K1.jpg", "S1.jpg"]
    a2 = session.stack_info(row(session, "A2.jpg"))
    assert a2 is not None and a2.count == 4 and a2.best and a2.collapsed and a2.kind == "burst"
    k1 = session.stack_info(row(session, "K1.jpg"))
    assert k1 is not None and k1.kind == "bracket" and k1.count == 3 and not k1.best
    assert session.stack_info(row(session, "S1.jpg")) is None
    tip = session.stack_tooltip(row(session, "A2.jpg"))
    assert tip[0].startswith("burst of 4 frames") and tip[1].startswith("Keeper 0.")
    assert "1st of 4 in this burst by Keeper" in tip
    assert session.stack_tooltip(row(session, "K2.jpg")) == [
        "exposure bracket of 3 frames: kept together (S shows them all)"
    ]
    # sorting applies to the representatives
    session.set_sort("keeper", True)
    assert names(session) == ["A2.jpg", "S1.jpg", "K1.jpg", "B2.jpg"]


def test_expand_collapse_and_best_by(session):
    session.set_sort("name", False)
    stack(session)
    a2 = int(session.table.ids[row(session, "A2.jpg")])
    assert session.toggle_stack(a2)
    assert names(session) == [*BURST_A, "B2.jpg", "K1.jpg", "S1.jpg"]  # capture order, in place
    first = session.stack_info(row(session, "A1.jpg"))
    last = session.stack_info(row(session, "A4.jpg"))
    assert first is not None and first.expanded and first.first and not first.last and not first.best
    assert last is not None and last.last
    best = session.stack_info(row(session, "A2.jpg"))
    assert best is not None and best.best and best.expanded  # marked in the expanded stack too
    assert session.toggle_stack(int(session.table.ids[row(session, "A3.jpg")]))  # any member collapses
    assert names(session)[0] == "A2.jpg" and len(session.view) == 4
    assert not session.toggle_stack(int(session.table.ids[row(session, "S1.jpg")]))
    session.set_best_by("sharpness")
    session.set_best_by("focus")
    assert session.stack_info(row(session, "A2.jpg")).best  # type: ignore[union-attr]
    session.set_stacked(False)
    assert len(session.view) == len(SHOOT)


def test_best_by_an_attribute_where_less_is_better_crowns_the_lowest(session):
    stack(session)
    ids = np.array([session.table.ids[row(session, n)] for n in BURST_A])
    session.set_column("noise", ids, np.array([0.9, 0.6, 0.1, 0.7], np.float32))
    session.set_best_by("noise")
    crowned = [n for n in BURST_A if session.stack_info(row(session, n)).best]  # type: ignore[union-attr]
    assert crowned == ["A3.jpg"]  # the cleanest, not the noisiest


def test_a_filter_that_hides_the_best_shows_the_best_matching_member(session):
    session.set_sort("name", False)
    stack(session)
    session.set_filters(FilterState(ranges={"quality": (0.0, 0.6)}))
    # A2 (0.9) and A4 (0.7) fail: burst A is shown by A1 (0.5, its best matching member)
    assert names(session)[0] == "A1.jpg"
    info = session.stack_info(row(session, "A1.jpg"))
    assert info is not None and info.count == 4 and not info.best


def test_relative_to_burst_picks_each_bursts_worst(session):
    # the lowest quality of each burst, not of the shoot: A3 (0.40) is above B's frames
    asked = []
    session.events.grouping_needed.connect(lambda: asked.append(True))
    session.set_filters(FilterState(ranges={"quality": (0.0, 0.0)}, relative=True, relative_to="burst"))
    # the session does not group on the caller's thread: the relative range waits (nothing hidden)
    assert asked == [True] and session.grouping is None and len(session.view) == len(SHOOT)
    assert session.why(row(session, "A3.jpg")) == [
        "(ranges relative to its burst apply once the bursts are grouped)"
    ]
    session.regroup()
    assert set(names(session)) == {"A3.jpg", "B1.jpg", "K1.jpg"}
    why = session.why(row(session, "A3.jpg"))
    assert why == ["Quality (CLIP-IQA) 0.40: percentile 0 of its burst (percentiles 0–0 of its burst)"]
    shoot = FilterState(ranges={"quality": (0.0, 20.0)}, relative=True)  # the shoot's lowest 20 %
    session.set_filters(shoot)
    assert set(names(session)) == {"B1.jpg", "K1.jpg"}
    # the CLIP-IQA presets' percentile conditions too: "Low quality" = percentiles 0–15 of its burst
    session.set_filters(
        FilterState(presets=frozenset({"Low quality (CLIP-IQA)"}), relative=True, relative_to="burst")
    )
    assert set(names(session)) == {"A3.jpg", "B1.jpg", "K1.jpg"}
    assert "percentile 0 of its burst" in session.why(row(session, "A3.jpg"))[0]
    with pytest.raises(ValueError, match="relative to"):
        session.set_filters(FilterState(relative=True, relative_to="wedding"))


def test_keep_best_one_rejects_the_plan_in_one_undo_step(session, tmp_path):
    session.regroup()
    session.decide([row(session, "S1.jpg")], DecisionChange(stars=3))  # the photographer's own
    plan = session.keep_best_plan(1, "burst")
    rejected = {session.table.names[session.row_of(pid)] for pid in plan.reject}  # type: ignore[index]
    assert rejected == {"A1.jpg", "A3.jpg", "A4.jpg", "B1.jpg"}  # A2, B2 best; the bracket whole
    assert plan.whole == 3  # the bracket's frames, left whole
    assert "4 photos in 2 bursts will be rejected" in plan.describe(1, "burst", "Keeper")
    undo_depth = len(session._undo)
    assert session.keep_best(plan) == 4
    assert len(session._undo) == undo_depth + 1
    assert session.flush(30)
    reader = Catalog(tmp_path / "c.sqlite")
    try:
        ratings = {r[2]: r[8] for r in reader.rows(session.folder_ids(), session.analysis_id)[0]}
    finally:
        reader.close()
    assert {n for n, r in ratings.items() if r == -1} == {"A1.jpg", "A3.jpg", "A4.jpg", "B1.jpg"}
    assert ratings["K1.jpg"] == ratings["K2.jpg"] == ratings["K3.jpg"] == 0  # brackets untouched
    session.undo()
    assert session.flush(30)
    reader = Catalog(tmp_path / "c.sqlite")
    try:
        ratings = {r[2]: r[8] for r in reader.rows(session.folder_ids(), session.analysis_id)[0]}
    finally:
        reader.close()
    assert [n for n, r in ratings.items() if r == -1] == [] and ratings["S1.jpg"] == 3


def test_sliders_regroup_and_reload_keeps_grouping(session):
    session.set_sort("name", False)
    stack(session)
    session.regroup(GroupParams(burst_gap=0.1))  # every frame its own burst; the bracket stays whole
    assert names(session) == [n for n, *_ in SHOOT if n not in ("K2.jpg", "K3.jpg")]
    session.regroup(GroupParams())
    session.reload()
    assert session.grouping is not None and names(session) == ["A2.jpg", "B2.jpg", "K1.jpg", "S1.jpg"]


def test_stacking_an_empty_folder_then_indexing_shows_the_new_photos(tmp_path):
    cat = Catalog(tmp_path / "c.sqlite")
    fid = cat.folder_id(tmp_path)
    aid = cat.analysis_id("m", "512", D, 100.0)
    s = CullingSession(cat, tmp_path)
    try:
        s.set_stacked(True)  # "Stack bursts" on before the card is indexed
        s.regroup()
        assert s.grouping is not None and not s.grouping.bursts
        ids = cat.write_batch(fid, aid, [_record(*r) for r in SHOOT])
        cat.set_last_analysis(fid, aid)
        s.apply_indexed(list(ids) if ids else [r[0] for r in cat.rows([fid], aid)[0]])
        assert len(s.view) == len(SHOOT)  # new to the grouping: shown alone until regrouped
    finally:
        s.close()
        cat.close()


def test_keep_best_holds_labelled_frames_and_never_overrides_a_later_pick(session, tmp_path):
    session.decide([row(session, "A1.jpg")], DecisionChange(label="Red"))  # a "maybe"
    session.regroup()
    plan = session.keep_best_plan(1, "burst")
    a1 = int(session.table.ids[row(session, "A1.jpg")])
    a3 = int(session.table.ids[row(session, "A3.jpg")])
    assert a1 not in plan.reject and a1 in plan.kept + plan.held
    assert a3 in plan.reject
    assert session.flush(30)
    other = Catalog(tmp_path / "c.sqlite")  # meanwhile, `rate --pick` in a terminal
    try:
        other.set_decisions({a3: Decision(picked=True)})
    finally:
        other.close()
    session.keep_best(plan)
    assert session.flush(30)
    reader = Catalog(tmp_path / "c.sqlite")
    try:
        decided = reader.decisions([a1, a3])
    finally:
        reader.close()
    assert decided[a3].picked and decided[a3].rating == 0  # the later pick stands
    assert decided[a1].label == "Red" and decided[a1].rating == 0


def test_step_order_puts_each_collapsed_stacks_matching_frames_in_its_place(session):
    session.set_sort("name", False)
    stack(session)
    b1 = int(session.table.ids[row(session, "B1.jpg")])
    assert session.toggle_stack(b1)  # B open: its frames are cells of their own
    session.set_filters(FilterState(ranges={"quality": (0.0, 0.85)}))  # hides A2, the best of A
    assert names(session) == ["A4.jpg", "B1.jpg", "B2.jpg", "K1.jpg", "S1.jpg"]
    order = [session.table.names[session.row_of(int(i))] for i in session.step_order()]  # type: ignore[index]
    assert order == ["A1.jpg", "A3.jpg", "A4.jpg", "B1.jpg", "B2.jpg", "K1.jpg", "K2.jpg", "K3.jpg", "S1.jpg"]


def test_shown_row_of_a_hidden_frame_is_its_stacks_cell(session):
    session.set_sort("name", False)
    ids = {n: int(session.table.ids[row(session, n)]) for n, *_ in SHOOT}
    assert session.shown_row_of(ids["A3.jpg"]) == names(session).index("A3.jpg")  # flat: its own
    stack(session)
    assert names(session) == ["A2.jpg", "B2.jpg", "K1.jpg", "S1.jpg"]
    assert session.shown_row_of(ids["A3.jpg"]) == 0  # hidden in A's pile: A's cell
    assert session.shown_row_of(ids["K3.jpg"]) == 2 and session.shown_row_of(ids["S1.jpg"]) == 3
    session.toggle_stack(ids["A3.jpg"])
    assert session.shown_row_of(ids["A3.jpg"]) == names(session).index("A3.jpg")  # open: itself
    session.set_filters(FilterState(ranges={"quality": (0.0, 0.45)}))  # A3, B1, B2, K1 pass
    assert session.shown_row_of(ids["A2.jpg"]) is None  # its open stack is shown, but not it
    assert names(session) == ["A3.jpg", "B2.jpg", "K1.jpg"]
    assert session.shown_row_of(ids["B1.jpg"]) == 1  # B1 matches too: hidden in B's pile, B's cell
    assert session.shown_row_of(ids["S1.jpg"]) is None  # filtered out
