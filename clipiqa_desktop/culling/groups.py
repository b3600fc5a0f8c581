"""Similar frames: bursts, exposure brackets, focus stacks and scenes; the keeper score; the best of
each group; the "keep the best N of each group" plan; ranks and percentiles within a group.

Qt-free and numpy only, so the window, `clipiqa-desktop groups` and the benchmarks share it.

**Grouping** (`group_photos`) reads what the catalog stores (`Catalog.group_inputs`): the unit
CLIP embedding, the capture time to the sub-second, and the EXIF exposure facts. It runs in two
levels, as the paid tools do:

1. *Bursts* (near-duplicates), per camera in capture order: a frame joins the burst of the frame
   before it when it was taken at most `burst_gap` seconds later AND its embedding's cosine
   similarity to that frame is at least `burst_similarity`. Comparing neighbours (not all pairs)
   is what a burst is: a sequence, where a pan or a turn of the subject breaks it; it is linear in
   the shoot (20,000 photos: a few ms) and needs no clustering library. Two cameras (a second
   shooter) never share a burst.
   Before that, *exposure brackets* and *focus stacks* are found and kept whole: a bracket is 3, 5,
   7 or 9 consecutive frames of one camera, each at most `bracket_gap` seconds after the previous
   one ended, whose EXIF exposure bias values are distinct and evenly stepped (0, −1, +1 EV in
   any order); a focus stack is at least 3 consecutive frames of identical exposure (time, f-number,
   ISO, bias) whose EXIF subject distance steps one way. Neither is ever proposed as duplicates to
   reject, and neither has a "best" frame. Focus stacks are only found where the camera writes
   the subject distance.
2. *Scenes* (same setting), across cameras in time order: a burst joins the current scene when it
   starts at most `scene_gap` seconds after the scene's last frame AND its mean embedding is at
   least `scene_similarity` similar to the scene's mean or to the burst before it.

A photo without a capture time is placed by its name (after the timed ones) and is judged by
similarity alone; a photo without an embedding (indexed with `--model none`, or unreadable) by time
alone. Every photo belongs to exactly one burst-level group (a frame alone is a "single") and one
scene.

**Keeper score** (`keeper_scores`): what "best" means by default, 0..1: focus (the sharpest face's
when a face was found, else the frame's) 0.45, CLIP-IQA quality 0.35, eyes open (faces whose eyes
are open over faces) 0.20, weighted over the components the photo has. `keeper_explanation` says it
in words for the tooltip.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..catalog.records import GroupInputs

BURST, BRACKET, FOCUS_STACK, SCENE, SINGLE = "burst", "bracket", "focus_stack", "scene", "single"
KINDS = (BURST, BRACKET, FOCUS_STACK, SCENE, SINGLE)
KEPT_WHOLE = frozenset({BRACKET, FOCUS_STACK})  # never duplicates to reject, no best frame
LEVELS = ("burst", "scene")

KEEPER_KEY = "keeper"
KEEPER_WEIGHTS = (("focus", 0.45), ("quality", 0.35), ("eyes", 0.20))

BRACKET_SIZES = (9, 7, 5, 3)
MIN_STACK = 3
EV_TOLERANCE = 0.05  # bracket steps equal within this (cameras write 1/3 EV as 0.33 or 0.3333)
MIN_EV_STEP = 0.3


@dataclass(frozen=True)
class GroupParams:
    """The two sliders of each level, as the window and `groups` offer them.

    The defaults were measured on a generated shoot (benchmarks/grouping.py): see the README."""

    burst_similarity: float = 0.90  # cosine of neighbouring frames' embeddings
    burst_gap: float = 2.0  # seconds between neighbouring frames
    scene_similarity: float = 0.75  # cosine of a burst's mean embedding and the scene's
    scene_gap: float = 300.0  # seconds from the scene's last frame
    bracket_gap: float = 2.0  # seconds between the end of one bracket frame and the next

    def __post_init__(self) -> None:
        for name in ("burst_similarity", "scene_similarity"):
            value = getattr(self, name)
            if not -1.0 <= value <= 1.0:
                raise ValueError(f"{name.replace('_', ' ')} must be between -1 and 1, not {value}")
        for name in ("burst_gap", "scene_gap", "bracket_gap"):
            value = getattr(self, name)
            if not (value >= 0.0 and math.isfinite(value)):
                raise ValueError(f"{name.replace('_', ' ')} must be a number of seconds ≥ 0, not {value}")


@dataclass(frozen=True)
class Group:
    """One group of one level: `members` are photo ids in capture order."""

    id: int  # index in its level's list
    kind: str  # burst | bracket | focus_stack | single (level burst); scene | single (level scene)
    members: tuple[int, ...]
    scene: int = -1  # the scene a burst-level group belongs to (-1 at the scene level)

    def __len__(self) -> int:
        return len(self.members)


@dataclass
class Grouping:
    """Both levels over the photos of `GroupInputs` (rows aligned with `ids`)."""

    ids: np.ndarray  # int64, the inputs' photo ids (ascending)
    order: np.ndarray  # rows in capture order (per camera bursts, then by time)
    burst: np.ndarray  # int64 per row: index into `bursts`
    scene: np.ndarray  # int64 per row: index into `scenes`
    bursts: list[Group]
    scenes: list[Group]
    params: GroupParams = field(default_factory=GroupParams)

    def level(self, name: str) -> tuple[list[Group], np.ndarray]:
        """(groups, group index per row) of level "burst" or "scene"."""
        if name == "burst":
            return self.bursts, self.burst
        if name == "scene":
            return self.scenes, self.scene
        raise ValueError(f"unknown group level {name!r}; choose one of {', '.join(LEVELS)}")

    def row_of(self) -> dict[int, int]:
        return {int(pid): i for i, pid in enumerate(self.ids)}


def _capture_order(inputs: GroupInputs) -> np.ndarray:
    """Rows by time (timed photos first, ties by name), then the untimed ones by name."""
    n = len(inputs)
    times = np.asarray(inputs.times, dtype=np.float64)
    timed = ~np.isnan(times)
    names = np.array([s.lower() for s in inputs.names], dtype=object) if n else np.zeros(0, object)
    rows = np.arange(n)
    by_name = np.argsort(names, kind="stable") if n else rows
    # lexsort: last key is primary
    keyed = np.lexsort((np.argsort(by_name), np.where(timed, times, np.inf), ~timed))
    return rows[keyed]


def _same(a: float, b: float) -> bool:
    """Two EXIF values equal, where both are known."""
    return (math.isnan(a) and math.isnan(b)) or (
        not math.isnan(a) and not math.isnan(b) and abs(a - b) < 1e-6
    )


def _evenly_stepped(values: np.ndarray) -> bool:
    if np.isnan(values).any():
        return False
    v = np.sort(values)
    steps = np.diff(v)
    if len(steps) == 0 or steps.min() < MIN_EV_STEP:
        return False  # repeats or too small a step: not a bracket
    return bool(steps.max() - steps.min() <= EV_TOLERANCE)


def _within(inputs: GroupInputs, seq: np.ndarray, start: int, stop: int, gap: float) -> bool:
    """Frames seq[start:stop] each taken at most `gap` s after the previous one ended (unknown
    times pass: a bracket without times is judged by its exposure values alone)."""
    for k in range(start + 1, stop):
        prev, cur = seq[k - 1], seq[k]
        t0, t1 = inputs.times[prev], inputs.times[cur]
        if math.isnan(t0) or math.isnan(t1):
            continue
        exposure = inputs.exposure_time[prev]
        took = 0.0 if math.isnan(exposure) else float(exposure)
        if t1 - t0 - took > gap + 1e-6 or t1 < t0:
            return False
    return True


def _find_kept_whole(inputs: GroupInputs, seq: np.ndarray, gap: float) -> list[tuple[int, int, str]]:
    """(start, stop, kind) runs of one camera's capture sequence that are brackets or focus stacks."""
    runs: list[tuple[int, int, str]] = []
    i, n = 0, len(seq)
    bias, dist = inputs.exposure_bias, inputs.subject_distance
    while i < n:
        found = None
        for k in BRACKET_SIZES:
            if i + k <= n and _evenly_stepped(bias[seq[i : i + k]]) and _within(inputs, seq, i, i + k, gap):
                found = (i, i + k, BRACKET)
                break
        if found is None:
            j = i + 1
            direction = 0.0
            while (
                j < n
                and _stack_continues(inputs, seq, i, j, direction)
                and _within(inputs, seq, j - 1, j + 1, gap)
            ):
                direction = float(np.sign(dist[seq[j]] - dist[seq[j - 1]]))
                j += 1
            if j - i >= MIN_STACK:
                found = (i, j, FOCUS_STACK)
        if found is not None:
            runs.append(found)
            i = found[1]
        else:
            i += 1
    return runs


def _stack_continues(inputs: GroupInputs, seq: np.ndarray, start: int, j: int, direction: float) -> bool:
    """Frame seq[j] continues the focus stack begun at seq[start]: same exposure, and its subject
    distance steps on in the stack's direction."""
    a, b = seq[start], seq[j]
    for column in (inputs.exposure_time, inputs.f_number, inputs.iso, inputs.exposure_bias):
        if not _same(float(column[a]), float(column[b])):
            return False
    d0, d1 = float(inputs.subject_distance[seq[j - 1]]), float(inputs.subject_distance[b])
    if math.isnan(d0) or math.isnan(d1) or d0 == d1:
        return False
    step = math.copysign(1.0, d1 - d0)
    return direction == 0.0 or step == direction


def group_photos(inputs: GroupInputs, params: GroupParams | None = None) -> Grouping:
    """Bursts (with brackets and focus stacks kept whole) and scenes; see the module docstring."""
    params = params or GroupParams()
    n = len(inputs)
    order = _capture_order(inputs)
    emb = np.asarray(inputs.embeddings, dtype=np.float32)
    has = np.asarray(inputs.has_embedding, dtype=bool)
    times = np.asarray(inputs.times, dtype=np.float64)
    cameras = [c or "" for c in inputs.camera]

    # --- level 1, per camera in capture order ---------------------------------------------------
    runs: list[tuple[str, list[int]]] = []  # (kind, rows in capture order)
    by_camera: dict[str, list[int]] = {}
    for r in order:
        by_camera.setdefault(cameras[int(r)], []).append(int(r))
    for seq_list in by_camera.values():
        seq = np.array(seq_list, dtype=np.int64)
        whole = _find_kept_whole(inputs, seq, params.bracket_gap)
        starts = {s: (e, kind) for s, e, kind in whole}
        k = 0
        current: list[int] = []
        while k < len(seq):
            if k in starts:
                if current:
                    runs.append((BURST, current))
                    current = []
                stop, kind = starts[k]
                runs.append((kind, [int(x) for x in seq[k:stop]]))
                k = stop
                continue
            r = int(seq[k])
            if current and _joins_burst(current[-1], r, emb, has, times, params):
                current.append(r)
            else:
                if current:
                    runs.append((BURST, current))
                current = [r]
            k += 1
        if current:
            runs.append((BURST, current))

    # runs in capture order of their first frame (order position)
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    runs.sort(key=lambda run: int(position[run[1][0]]))
    burst_of = np.full(n, -1, dtype=np.int64)
    burst_rows: list[list[int]] = []
    burst_kinds: list[str] = []
    for kind, rows in runs:
        rows = sorted(rows, key=lambda x: int(position[x]))
        burst_of[rows] = len(burst_rows)
        burst_rows.append(rows)
        burst_kinds.append(SINGLE if kind == BURST and len(rows) == 1 else kind)

    # --- level 2: scenes across cameras, in time order of the bursts -----------------------------
    scene_of_burst = np.full(len(burst_rows), -1, dtype=np.int64)
    scene_rows: list[list[int]] = []
    scene_sum: np.ndarray | None = None
    scene_last = -math.inf
    previous_mean: np.ndarray | None = None
    for b, rows in enumerate(burst_rows):
        mean = _mean(emb, has, rows)
        first = _first_time(times, rows)
        joins = False
        if scene_rows:
            gap_ok = math.isnan(first) or math.isinf(scene_last) or first - scene_last <= params.scene_gap
            sims = [_cos(mean, _unit(scene_sum)), _cos(mean, previous_mean)]
            known = [s for s in sims if s is not None]
            sim_ok = not known or max(known) >= params.scene_similarity
            joins = gap_ok and sim_ok
        if not joins:
            scene_rows.append([])
            scene_sum = None
            scene_last = -math.inf
        scene_rows[-1].extend(rows)
        scene_of_burst[b] = len(scene_rows) - 1
        if mean is not None:
            scene_sum = mean.copy() if scene_sum is None else scene_sum + mean
        last = _last_time(times, rows)
        if not math.isnan(last):
            scene_last = max(scene_last, last)
        previous_mean = mean

    ids = np.asarray(inputs.ids, dtype=np.int64)
    scene_of = np.full(n, -1, dtype=np.int64)
    scenes = []
    for s, rows in enumerate(scene_rows):
        rows = sorted(rows, key=lambda x: int(position[x]))
        scene_of[rows] = s
        scenes.append(Group(s, SCENE if len(rows) > 1 else SINGLE, tuple(int(ids[r]) for r in rows)))
    bursts = [
        Group(b, kind, tuple(int(ids[r]) for r in rows), int(scene_of_burst[b]))
        for b, (kind, rows) in enumerate(zip(burst_kinds, burst_rows, strict=True))
    ]
    return Grouping(ids, order, burst_of, scene_of, bursts, scenes, params)


def _joins_burst(
    prev: int, cur: int, emb: np.ndarray, has: np.ndarray, times: np.ndarray, params: GroupParams
) -> bool:
    t0, t1 = times[prev], times[cur]
    if not (math.isnan(t0) or math.isnan(t1)) and abs(t1 - t0) > params.burst_gap:
        return False
    if has[prev] and has[cur]:
        return float(emb[prev] @ emb[cur]) >= params.burst_similarity
    # without embeddings only the time can tell; without either nothing says "same burst"
    return not (math.isnan(t0) or math.isnan(t1))


def _mean(emb: np.ndarray, has: np.ndarray, rows: Sequence[int]) -> np.ndarray | None:
    rows_with = [r for r in rows if has[r]]
    if not rows_with:
        return None
    return _unit(emb[rows_with].sum(axis=0))


def _unit(v: np.ndarray | None) -> np.ndarray | None:
    if v is None:
        return None
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else None


def _cos(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    if a is None or b is None:
        return None
    return float(a @ b)


def _first_time(times: np.ndarray, rows: Sequence[int]) -> float:
    t = times[list(rows)]
    t = t[~np.isnan(t)]
    return float(t.min()) if t.size else math.nan


def _last_time(times: np.ndarray, rows: Sequence[int]) -> float:
    t = times[list(rows)]
    t = t[~np.isnan(t)]
    return float(t.max()) if t.size else math.nan


# --- the keeper score ---------------------------------------------------------------------------


def _column(attributes: Sequence[str], scores: np.ndarray, key: str) -> np.ndarray:
    if key in attributes:
        return np.asarray(scores[:, list(attributes).index(key)], dtype=np.float64)
    return np.full(scores.shape[0], np.nan)


def keeper_components(attributes: Sequence[str], scores: np.ndarray) -> dict[str, np.ndarray]:
    """The keeper score's parts per photo (NaN where the photo lacks one): focus (the sharpest
    face's where a face was found), quality (CLIP-IQA), eyes (fraction of faces with open eyes)."""
    focus = _column(attributes, scores, "focus")
    face_focus = _column(attributes, scores, "face_focus")
    faces = _column(attributes, scores, "faces")
    closed = _column(attributes, scores, "eyes_closed")
    with np.errstate(invalid="ignore", divide="ignore"):
        eyes = np.where(faces > 0, 1.0 - np.clip(closed, 0, None) / faces, np.nan)
    return {
        "focus": np.where(np.isnan(face_focus), focus, face_focus),
        "quality": _column(attributes, scores, "quality"),
        "eyes": np.clip(eyes, 0.0, 1.0),
    }


def keeper_scores(attributes: Sequence[str], scores: np.ndarray) -> np.ndarray:
    """The keeper score of every row of a score matrix (PhotoTable.attributes/.scores), 0..1,
    weighted over the components each photo has; NaN for a photo with none."""
    parts = keeper_components(attributes, scores)
    total = np.zeros(scores.shape[0])
    weight = np.zeros(scores.shape[0])
    for name, w in KEEPER_WEIGHTS:
        v = parts[name]
        present = ~np.isnan(v)
        total[present] += w * v[present]
        weight[present] += w
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weight > 0, total / weight, np.nan).astype(np.float32)


_PART_LABELS = {"focus": "focus", "quality": "quality (CLIP-IQA)", "eyes": "eyes open"}


def keeper_explanation(values: Mapping[str, float]) -> str:
    """'Keeper 0.78: focus 0.86 (weight 0.45), quality (CLIP-IQA) 0.70 (0.35), eyes open 1.00
    (0.20)' for one photo's scores; says which parts it lacks."""
    attributes = list(values)
    row = np.array([[values[a] for a in attributes]], dtype=np.float64)
    parts = keeper_components(attributes, row)
    score = float(keeper_scores(attributes, row)[0])
    if math.isnan(score):
        return "Keeper: not known (no focus, quality or face measured)"
    used = [(n, w, float(parts[n][0])) for n, w in KEEPER_WEIGHTS if not math.isnan(float(parts[n][0]))]
    weight = sum(w for _n, w, _v in used)
    said = ", ".join(f"{_PART_LABELS[n]} {v:.2f} × {w / weight:.2f}" for n, w, v in used)
    face = " (the sharpest face's focus)" if not math.isnan(values.get("face_focus", math.nan)) else ""
    missing = [_PART_LABELS[n] for n, _w in KEEPER_WEIGHTS if n not in {u[0] for u in used}]
    tail = f"; no {', '.join(missing)}" if missing else ""
    return f"Keeper {score:.2f} = {said}{face}{tail}"


# --- best of each group, keep the best N ------------------------------------------------------------


def best_rows(groups: Sequence[Group], row_of: Mapping[int, int], column: np.ndarray) -> list[int | None]:
    """Per group, the row (of `column`'s rows, via `row_of`: photo id -> row) of its best frame:
    the highest value, ties and NaN going to the earlier frame; None for a bracket or focus stack
    (no frame of it is better: they belong together) and for a group none of whose frames has a
    value."""
    out: list[int | None] = []
    for g in groups:
        if g.kind in KEPT_WHOLE:
            out.append(None)
            continue
        best, best_value = None, -math.inf
        for pid in g.members:
            r = row_of.get(pid)
            if r is None:
                continue
            v = float(column[r])
            if not math.isnan(v) and v > best_value:
                best, best_value = r, v
        out.append(best)
    return out


@dataclass(frozen=True)
class KeepBestPlan:
    """What "keep the best N of each group, reject the rest" would do."""

    reject: tuple[int, ...]  # photo ids to reject
    kept: tuple[int, ...]  # photo ids kept as the best (or the photographer's own picks/stars)
    held: tuple[int, ...]  # picked or starred photos beyond N: never rejected by this
    unscored: tuple[int, ...]  # photos without a value of the attribute: never rejected by this
    groups: int  # groups with more than N candidates (the ones changed)
    whole: int  # brackets and focus stacks left alone

    def describe(self, n: int, level: str, label: str) -> str:
        """The confirmation text."""
        lines = [
            f"Keep the best {n} of each {level} by {label}, reject the rest: "
            f"{len(self.reject)} photo{'s' if len(self.reject) != 1 else ''} in {self.groups} "
            f"{level}{'s' if self.groups != 1 else ''} will be rejected."
        ]
        if self.held:
            lines.append(f"{len(self.held)} picked or starred photos are kept anyway.")
        if self.unscored:
            lines.append(f"{len(self.unscored)} photos without a {label} value are left as they are.")
        if self.whole:
            lines.append(f"{self.whole} exposure brackets / focus stacks are left whole.")
        return "\n".join(lines)


def keep_best_plan(
    groups: Sequence[Group],
    row_of: Mapping[int, int],
    column: np.ndarray,
    rating: np.ndarray,
    picked: np.ndarray,
    n: int,
) -> KeepBestPlan:
    """Per group: the photographer's picks and starred photos are kept first (they count toward
    N, and beyond it are held, never rejected); the remaining places go to the best undecided
    frames by `column`; the other undecided frames are rejected. Already rejected photos stay
    rejected and take no place. Photos without a value are left alone; brackets and focus stacks
    are skipped. Rows index `column`, `rating` and `picked` through `row_of`."""
    if n < 1:
        raise ValueError("keep at least 1 photo of each group")
    reject: list[int] = []
    kept: list[int] = []
    held: list[int] = []
    unscored: list[int] = []
    changed = whole = 0
    for g in groups:
        if g.kind in KEPT_WHOLE:
            whole += 1
            continue
        rows = [(pid, row_of[pid]) for pid in g.members if pid in row_of]
        chosen = [(pid, r) for pid, r in rows if bool(picked[r]) or int(rating[r]) > 0]
        open_ = [(pid, r) for pid, r in rows if not bool(picked[r]) and int(rating[r]) == 0]
        if len(chosen) + len(open_) <= n:
            continue
        scored = [(pid, r) for pid, r in open_ if not math.isnan(float(column[r]))]
        unscored.extend(pid for pid, r in open_ if math.isnan(float(column[r])))
        # stable: the earlier frame wins a tie
        scored.sort(key=lambda item: -float(column[item[1]]))
        places = max(0, n - len(chosen))
        kept.extend(pid for pid, _r in chosen[:n])
        held.extend(pid for pid, _r in chosen[n:])
        kept.extend(pid for pid, _r in scored[:places])
        rest = [pid for pid, _r in scored[places:]]
        if rest:
            changed += 1
        reject.extend(rest)
    return KeepBestPlan(tuple(reject), tuple(kept), tuple(held), tuple(unscored), changed, whole)


# --- ranks within a group -------------------------------------------------------------------------


def group_ranks(values: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rank, size) per row: 1 = the group's highest value; NaN rows get rank 0 and do not count
    in the size. `group` is the group index per row (Grouping.burst / .scene aligned to `values`;
    −1 = no group: rank 0)."""
    values = np.asarray(values, dtype=np.float64)
    group = np.asarray(group, dtype=np.int64)
    n = len(values)
    rank = np.zeros(n, dtype=np.int64)
    size = np.zeros(n, dtype=np.int64)
    valid = ~np.isnan(values) & (group >= 0)
    if not valid.any():
        return rank, size
    rows = np.flatnonzero(valid)
    order = rows[np.lexsort((-values[rows], group[rows]))]
    g = group[order]
    starts = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
    counts = np.diff(np.r_[starts, len(order)])
    first = np.repeat(starts, counts)
    rank[order] = np.arange(len(order)) - first + 1
    size[order] = np.repeat(counts, counts)
    return rank, size


def group_percentiles(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Each value as a percentile (0..100) of its own group: 100 = the group's best, 0 = its worst,
    50 for a group of one; NaN where the value or the group is missing. A filter range in
    percentiles then means "relative to the burst (scene)", as `FilterState.relative` means
    "relative to the shoot"."""
    rank, size = group_ranks(values, group)
    out = np.full(len(rank), np.nan)
    one = size == 1
    many = size > 1
    out[one] = 50.0
    out[many] = 100.0 * (size[many] - rank[many]) / (size[many] - 1)
    return out


def group_of(grouping: Grouping, level: str, ids: np.ndarray) -> np.ndarray:
    """The group index of `level` for photo ids `ids` (−1 for a photo the grouping does not know)."""
    _groups, index = grouping.level(level)
    pos = np.searchsorted(grouping.ids, ids)
    pos = np.clip(pos, 0, max(len(grouping.ids) - 1, 0))
    out = np.full(len(ids), -1, dtype=np.int64)
    if len(grouping.ids):
        found = grouping.ids[pos] == ids
        out[found] = index[pos[found]]
    return out
