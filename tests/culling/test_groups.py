"""Grouping into bursts, brackets, focus stacks and scenes; keeper score; best of group; keep the
best N; ranks within groups — on generated inputs whose true groups are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from clipiqa_desktop.catalog.records import GroupInputs
from clipiqa_desktop.culling.groups import (
    BRACKET,
    BURST,
    FOCUS_STACK,
    SCENE,
    SINGLE,
    GroupParams,
    best_rows,
    group_percentiles,
    group_photos,
    group_ranks,
    keep_best_plan,
    keeper_explanation,
    keeper_scores,
)

D = 64
NAN = math.nan


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


class Shoot:
    """Frames appended one by one; `inputs()` builds GroupInputs with ids 1..n in append order
    (but shuffled names so that the grouping cannot lean on ids)."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.rows: list[dict] = []

    def scene(self) -> np.ndarray:
        return _unit(self.rng.normal(size=D))

    def near(self, base: np.ndarray, spread: float) -> np.ndarray:
        return _unit(base + spread * _unit(self.rng.normal(size=D)))

    def add(self, emb: np.ndarray | None, t: float, **facts: float | str | None) -> int:
        self.rows.append({"emb": emb, "t": t, **facts})
        return len(self.rows)  # the photo id

    def inputs(self) -> GroupInputs:
        n = len(self.rows)

        def col(key: str) -> np.ndarray:
            return np.array([r.get(key, NAN) if r.get(key) is not None else NAN for r in self.rows], float)

        has = np.array([r["emb"] is not None for r in self.rows])
        emb = np.stack([r["emb"] if r["emb"] is not None else np.zeros(D, np.float32) for r in self.rows])
        return GroupInputs(
            ids=np.arange(1, n + 1, dtype=np.int64),
            names=[r.get("name") or f"IMG_{i + 1:04d}.JPG" for i, r in enumerate(self.rows)],
            times=np.array([r["t"] for r in self.rows], float),
            embeddings=emb.astype(np.float32),
            has_embedding=has,
            exposure_bias=col("bias"),
            subject_distance=col("dist"),
            exposure_time=col("exposure"),
            f_number=col("f"),
            iso=col("iso"),
            camera=[r.get("camera", "Canon EOS R5") for r in self.rows],
        )


def _members(grouping, kind=None):
    return [list(g.members) for g in grouping.bursts if kind is None or g.kind == kind]


def test_bursts_split_by_time_gap_and_by_similarity() -> None:
    s = Shoot()
    a, b = s.scene(), s.scene()
    first = [s.add(s.near(a, 0.1), 100 + 0.2 * k) for k in range(5)]  # 5 fps burst
    second = [s.add(s.near(a, 0.1), 110 + 0.2 * k) for k in range(3)]  # same subject, 9 s later
    turned = [s.add(s.near(b, 0.1), 110.8 + 0.2 * k) for k in range(3)]  # the camera swung round
    g = group_photos(s.inputs())
    assert _members(g, BURST) == [first, second, turned]
    assert {g.bursts[i].kind for i in range(3)} == {BURST}
    # one scene holds the two bursts of `a`: close in time and alike; `b` starts a new one
    assert g.bursts[0].scene == g.bursts[1].scene != g.bursts[2].scene


def test_burst_gap_slider_joins_what_the_default_splits() -> None:
    s = Shoot(1)
    a = s.scene()
    ids = [s.add(s.near(a, 0.1), t) for t in (0.0, 0.5, 4.0, 4.5)]
    assert _members(group_photos(s.inputs()), BURST) == [ids[:2], ids[2:]]
    wide = group_photos(s.inputs(), GroupParams(burst_gap=5.0))
    assert _members(wide, BURST) == [ids]


def test_two_cameras_never_share_a_burst_but_share_the_scene() -> None:
    s = Shoot(2)
    a = s.scene()
    one = [s.add(s.near(a, 0.05), 10 + k * 0.3, camera="Canon EOS R5") for k in range(3)]
    two = [s.add(s.near(a, 0.05), 10.1 + k * 0.3, camera="Nikon Z 9") for k in range(3)]
    g = group_photos(s.inputs())
    assert sorted(_members(g, BURST)) == sorted([one, two])
    assert len(g.scenes) == 1 and g.scenes[0].kind == SCENE and len(g.scenes[0]) == 6


@pytest.mark.parametrize("biases", [(0, -1, 1), (0, -2, 2, -4, 4), (-0.7, 0, 0.7), (1, 0, -1)])
def test_exposure_brackets_are_kept_whole_in_any_order(biases: tuple[float, ...]) -> None:
    s = Shoot(3)
    a = s.scene()
    before = s.add(s.near(a, 0.05), 0.0, bias=0.0, exposure=1 / 100)
    # bracket frames look different (exposure changes the embedding) and are slower
    bracket = [s.add(s.near(a, 0.5), 1.0 + 0.6 * k, bias=b, exposure=0.5) for k, b in enumerate(biases)]
    g = group_photos(s.inputs())
    assert _members(g, BRACKET) == [bracket]
    assert [before] in _members(g)
    # the whole bracket has no best frame
    kinds = {g.bursts[g.burst[pid - 1]].kind for pid in bracket}
    assert kinds == {BRACKET}


def test_not_a_bracket_when_steps_are_uneven_or_repeat() -> None:
    s = Shoot(4)
    a = s.scene()
    for k, b in enumerate((0, -1, 2)):  # uneven
        s.add(s.near(a, 0.05), k * 0.3, bias=b)
    for k, b in enumerate((0, 0, 0)):  # a plain burst at 0 EV
        s.add(s.near(a, 0.05), 20 + k * 0.3, bias=b)
    g = group_photos(s.inputs())
    assert not _members(g, BRACKET)


@pytest.mark.parametrize(
    "biases",
    [(0, -2, 2, 0, -2, 2), (-2, 0, 2, -2, 0, 2), (2, 0, -2, 2, 0, -2), (0, -1, 1, -2, 2, 0, -1, 1, -2, 2)],
)
def test_two_brackets_in_a_row_are_two_groups(biases: tuple[float, ...]) -> None:
    s = Shoot(5)
    a = s.scene()
    ids = [s.add(s.near(a, 0.3), k * 0.2, bias=b) for k, b in enumerate(biases)]
    half = len(ids) // 2
    assert _members(group_photos(s.inputs()), BRACKET) == [ids[:half], ids[half:]]


def test_focus_stack_from_subject_distance() -> None:
    s = Shoot(6)
    a = s.scene()
    stack = [
        s.add(s.near(a, 0.02), k * 0.4, dist=0.30 + 0.05 * k, exposure=1 / 60, f=8.0, iso=100, bias=0)
        for k in range(6)
    ]
    after = s.add(s.near(a, 0.05), 3.0, dist=0.3, exposure=1 / 60, f=8.0, iso=100, bias=0)
    g = group_photos(s.inputs())
    assert _members(g, FOCUS_STACK) == [stack]
    assert g.bursts[g.burst[after - 1]].kind != FOCUS_STACK


def test_no_times_groups_by_name_order_and_similarity() -> None:
    s = Shoot(7)
    a, b = s.scene(), s.scene()
    x = [s.add(s.near(a, 0.05), NAN, name=f"A{k}.jpg") for k in range(3)]
    y = [s.add(s.near(b, 0.05), NAN, name=f"B{k}.jpg") for k in range(2)]
    g = group_photos(s.inputs())
    assert _members(g, BURST) == [x, y]


def test_no_embeddings_groups_by_time_alone() -> None:
    s = Shoot(8)
    ids = [s.add(None, t) for t in (0, 0.5, 1.0, 30, 30.4)]
    g = group_photos(s.inputs())
    assert _members(g, BURST) == [ids[:3], ids[3:]]


def test_an_unreadable_file_is_alone_in_burst_and_scene() -> None:
    s = Shoot(21)
    a = s.scene()
    burst = [s.add(s.near(a, 0.05), 0.2 * k) for k in range(3)]
    broken = s.add(None, NAN, name="IMG_9999.JPG")  # no time, no embedding: cannot be decoded
    g = group_photos(s.inputs())
    assert _members(g, BURST) == [burst]
    assert g.bursts[g.burst[broken - 1]].kind == SINGLE
    assert g.scenes[g.scene[broken - 1]].members == (broken,)


def test_singles_and_every_photo_in_exactly_one_group() -> None:
    s = Shoot(9)
    for k in range(40):
        s.add(s.scene(), k * 10.0)
    inputs = s.inputs()
    g = group_photos(inputs)
    assert all(b.kind == SINGLE for b in g.bursts)
    members = sorted(pid for b in g.bursts for pid in b.members)
    assert members == list(inputs.ids)
    assert sorted(pid for sc in g.scenes for pid in sc.members) == list(inputs.ids)


def test_params_are_checked() -> None:
    with pytest.raises(ValueError, match="burst gap"):
        GroupParams(burst_gap=-1)
    with pytest.raises(ValueError, match="scene similarity"):
        GroupParams(scene_similarity=2)


ATTRS = ["focus", "face_focus", "faces", "eyes_closed", "quality"]


def _scores(rows: list[tuple[float, ...]]) -> np.ndarray:
    return np.array(rows, dtype=np.float32)


def test_keeper_score_weights_what_is_measured() -> None:
    m = _scores(
        [
            (0.9, NAN, 0, NAN, 0.8),  # no face: focus .45 + quality .35 over .8
            (0.2, 0.9, 2, 0, 0.5),  # faces: the face's focus counts, eyes open
            (0.9, 0.9, 2, 2, 0.5),  # both pairs of eyes closed
            (NAN, NAN, NAN, NAN, NAN),
        ]
    )
    k = keeper_scores(ATTRS, m)
    assert k[0] == pytest.approx((0.45 * 0.9 + 0.35 * 0.8) / 0.8)
    assert k[1] == pytest.approx(0.45 * 0.9 + 0.35 * 0.5 + 0.20 * 1.0)
    assert k[2] == pytest.approx(0.45 * 0.9 + 0.35 * 0.5 + 0.0)
    assert math.isnan(k[3])
    text = keeper_explanation(dict(zip(ATTRS, m[1].tolist(), strict=True)))
    assert "eyes open 1.00" in text and "sharpest face" in text and text.startswith("Keeper 0.")
    assert "no eyes open" in keeper_explanation({"focus": 0.5, "quality": 0.5})


def test_best_of_each_group_and_none_for_a_bracket() -> None:
    s = Shoot(10)
    a = s.scene()
    burst = [s.add(s.near(a, 0.05), k * 0.2) for k in range(4)]
    bracket = [s.add(s.near(a, 0.5), 5 + k * 0.3, bias=b) for k, b in enumerate((0, -1, 1))]
    g = group_photos(s.inputs())
    column = np.array([0.3, 0.9, 0.9, NAN, 1.0, 1.0, 1.0])  # tie: the earlier frame
    best = best_rows(g.bursts, g.row_of(), column)
    assert best[g.burst[burst[0] - 1]] == burst[1] - 1
    assert best[g.burst[bracket[0] - 1]] is None


def test_keep_best_plan_keeps_picks_and_leaves_brackets() -> None:
    s = Shoot(11)
    a = s.scene()
    burst = [s.add(s.near(a, 0.05), k * 0.2) for k in range(6)]
    bracket = [s.add(s.near(a, 0.5), 5 + k * 0.3, bias=b) for k, b in enumerate((0, -1, 1))]
    n = len(s.rows)
    g = group_photos(s.inputs())
    column = np.array([0.1, 0.9, 0.5, 0.8, NAN, 0.2, 0.0, 0.0, 0.0])
    rating = np.zeros(n, np.int8)
    picked = np.zeros(n, bool)
    picked[burst[5] - 1] = True  # the photographer's own pick, although it scores low
    rating[burst[0] - 1] = -1  # already rejected: takes no place
    plan = keep_best_plan(g.bursts, g.row_of(), column, rating, picked, n=2)
    assert set(plan.kept) == {burst[5], burst[1]}  # the pick + the best undecided
    assert set(plan.reject) == {burst[2], burst[3]}
    assert plan.unscored == (burst[4],)
    assert plan.whole == 3 and plan.groups == 1  # the bracket's three frames
    assert not set(plan.reject) & set(bracket)
    assert "2 photos in 1 burst will be rejected" in plan.describe(2, "burst", "Keeper")
    with pytest.raises(ValueError):
        keep_best_plan(g.bursts, g.row_of(), column, rating, picked, n=0)


def test_ranks_and_percentiles_within_groups() -> None:
    values = np.array([0.2, 0.9, 0.5, 0.4, NAN, 0.1])
    group = np.array([0, 0, 0, 1, 1, 2])
    rank, size = group_ranks(values, group)
    assert rank.tolist() == [3, 1, 2, 1, 0, 1]
    assert size.tolist() == [3, 3, 3, 1, 0, 1]
    pct = group_percentiles(values, group)
    assert pct[:4].tolist() == [0.0, 100.0, 50.0, 50.0]
    assert math.isnan(pct[4])


def test_raw_and_jpeg_of_one_exposure_are_one_capture() -> None:
    s = Shoot(12)
    a = s.scene()
    pairs = []
    for k, b in enumerate((0, -1, 1)):
        e = s.near(a, 0.4)
        t = 10 + 0.5 * k
        pairs.append((s.add(e, t, bias=b, name=f"IMG_{k}.CR3"), s.add(e, t, bias=b, name=f"IMG_{k}.JPG")))
    lone = s.add(s.scene(), 100.0, name="IMG_9.CR3")
    lone_jpg = s.add(s.rows[-1]["emb"], 100.0, name="IMG_9.JPG")
    g = group_photos(s.inputs())
    assert _members(g, BRACKET) == [[pid for pair in pairs for pid in pair]]
    single = g.bursts[g.burst[lone - 1]]
    assert single.kind == SINGLE and single.members == (lone, lone_jpg)
    assert single.capture_list() == ((lone, lone_jpg),)
    # keep best 1 never rejects one file of a single capture
    column = np.arange(len(s.rows), dtype=float)
    z = np.zeros(len(s.rows))
    plan = keep_best_plan(g.bursts, g.row_of(), column, z.astype(np.int8), z.astype(bool), n=1)
    assert plan.reject == ()


def test_burst_of_raw_and_jpeg_rejects_whole_captures() -> None:
    s = Shoot(13)
    a = s.scene()
    caps = []
    for k in range(3):
        e = s.near(a, 0.03)
        caps.append((s.add(e, 0.2 * k, name=f"A_{k}.CR3"), s.add(e, 0.2 * k, name=f"A_{k}.JPG")))
    g = group_photos(s.inputs())
    assert len(g.bursts) == 1 and len(g.bursts[0].capture_list()) == 3
    column = np.array([0.1, 0.1, 0.9, 0.8, 0.5, 0.5])  # the JPEG of capture 0 scored apart
    z = np.zeros(6)
    plan = keep_best_plan(g.bursts, g.row_of(), column, z.astype(np.int8), z.astype(bool), n=1)
    assert set(plan.kept) == set(caps[1]) and set(plan.reject) == {*caps[0], *caps[2]}


def test_subject_walking_to_the_camera_is_a_burst_not_a_focus_stack() -> None:
    s = Shoot(14)
    a = s.scene()
    facts = {"exposure": 1 / 1000, "f": 2.8, "iso": 400, "bias": 0}
    walk = [s.add(s.near(a, 0.1), 0.1 * k, dist=12 - 0.5 * k, **facts) for k in range(12)]
    rng = np.random.default_rng(0)
    jitter = [
        s.add(s.near(a, 0.1), 30 + 0.1 * k, dist=5 + float(rng.normal(0, 0.03)), **facts) for k in range(12)
    ]
    g = group_photos(s.inputs())
    assert not _members(g, FOCUS_STACK)
    assert _members(g, BURST) == [walk, jitter]


def test_scene_level_plan_and_best_leave_brackets_alone() -> None:
    s = Shoot(15)
    a = s.scene()
    burst = [s.add(s.near(a, 0.03), 0.2 * k, bias=0) for k in range(3)]
    bracket = [s.add(s.near(a, 0.2), 5 + 0.5 * k, bias=b) for k, b in enumerate((0, -1, 1))]
    g = group_photos(s.inputs())
    assert len(g.scenes) == 1 and set(g.scenes[0].whole) == set(bracket)
    column = np.array([0.5, 0.6, 0.7, 0.99, 0.99, 0.99])
    z = np.zeros(6)
    assert best_rows(g.scenes, g.row_of(), column) == [burst[2] - 1]
    plan = keep_best_plan(g.scenes, g.row_of(), column, z.astype(np.int8), z.astype(bool), n=1)
    assert set(plan.reject) == set(burst[:2]) and plan.whole == 3


def test_two_frame_bracket_alone_but_not_a_change_of_compensation_mid_burst() -> None:
    s = Shoot(16)
    a = s.scene()
    two = [s.add(s.near(a, 0.1), 0.5 * k, bias=b) for k, b in enumerate((0, -1))]
    mid = [s.add(s.near(a, 0.05), 60 + 0.2 * k, bias=b) for k, b in enumerate((0, 0, -1, -1))]
    g = group_photos(s.inputs())
    assert _members(g, BRACKET) == [two]
    assert _members(g, BURST) == [mid]


def test_bracket_after_a_stray_frame_starts_at_its_centre() -> None:
    s = Shoot(17)
    a = s.scene()
    stray = s.add(s.near(a, 0.3), 0.0, bias=1)
    bracket = [s.add(s.near(a, 0.3), 0.4 + 0.4 * k, bias=b) for k, b in enumerate((0, -1, 1))]
    g = group_photos(s.inputs())
    assert _members(g, BRACKET) == [bracket]
    assert g.bursts[g.burst[stray - 1]].kind != BRACKET


def test_manual_bracket_by_shutter_time() -> None:
    s = Shoot(18)
    a = s.scene()
    ids = [
        s.add(s.near(a, 0.3), 0.5 * k, bias=0, f=8, iso=100, exposure=e)
        for k, e in enumerate((1 / 60, 1 / 240, 1 / 15))
    ]
    assert _members(group_photos(s.inputs()), BRACKET) == [ids]


def test_two_bodies_of_one_model_interleaved_keep_their_bursts() -> None:
    s = Shoot(19)
    a, b = s.scene(), s.scene()
    one, two = [], []
    for k in range(4):
        one.append(s.add(s.near(a, 0.05), 0.2 * k))
        two.append(s.add(s.near(b, 0.05), 0.2 * k + 0.05))
    g = group_photos(s.inputs())
    assert sorted(_members(g, BURST)) == sorted([one, two])


def test_slow_pan_does_not_chain_into_one_burst() -> None:
    s = Shoot(20)
    a, b = s.scene(), s.scene()
    ids = []
    for k in range(40):  # 10 fps while the view turns from a to b
        w = k / 39
        ids.append(s.add(_unit((1 - w) * a + w * b), 0.1 * k))
    g = group_photos(s.inputs())
    assert len([x for x in g.bursts if len(x) > 1]) >= 2


def test_tied_values_share_the_rank() -> None:
    rank, size = group_ranks(np.array([0.5, 0.5, 0.2]), np.array([0, 0, 0]))
    assert rank.tolist() == [1, 1, 3] and size.tolist() == [3, 3, 3]
    assert group_percentiles(np.array([0.5, 0.5]), np.array([0, 0])).tolist() == [100.0, 100.0]


def test_twenty_thousand_photos_group_in_well_under_a_second() -> None:
    """Not a timing test: it proves grouping is linear (a quadratic pass over 20,000 photos would
    not finish in the suite's time), and that a realistic shoot comes out in bursts."""
    rng = np.random.default_rng(0)
    n, bursts = 20_000, 2_000
    centres = _unit(rng.normal(size=(bursts, D)))
    which = np.repeat(np.arange(bursts), n // bursts)
    emb = _unit(centres[which] + 0.05 * _unit(rng.normal(size=(n, D))))
    times = which * 30.0 + np.tile(np.arange(n // bursts) * 0.2, bursts)
    # realistic EXIF: every frame at 0 EV, one exposure, a subject distance (AF) that wanders
    zero, full = np.zeros(n), np.full(n, 1 / 250)
    dist = 3 + rng.normal(0, 0.05, n)
    inputs = GroupInputs(
        np.arange(1, n + 1), [f"{i}.jpg" for i in range(n)], times, emb, np.ones(n, bool),
        zero, dist, full, full * 0 + 4.0, full * 0 + 800, ["cam"] * n,
    )  # fmt: skip
    g = group_photos(inputs)
    assert len(g.bursts) == bursts
    assert {b.kind for b in g.bursts} == {BURST}
