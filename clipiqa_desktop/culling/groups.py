"""Similar frames: bursts, exposure brackets, focus stacks and scenes; the keeper score; the best of
each group; the "keep the best N of each group" plan; ranks and percentiles within a group.

Qt-free and numpy only, so the window, `clipiqa-desktop groups` and the benchmarks share it.

**Grouping** (`group_photos`) reads what the catalog stores (`Catalog.group_inputs`): the unit
CLIP embedding, the capture time to the sub-second, and the EXIF exposure facts. It runs in two
levels, as the paid tools do:

First the files of one exposure (RAW + JPEG, a second card's copy: same camera, capture time and
name stem) become one *capture*; everything below counts captures, and a capture's files share
their fate.

1. *Bursts* (near-duplicates), per camera in capture order: a frame joins an open burst when it
   was taken at most `burst_gap` seconds after that burst's last frame AND its embedding's cosine
   similarity to that frame is at least `burst_similarity` (and to the burst's first frame at
   least that minus DRIFT, so a slow pan or a 30 fps procession does not chain into one burst of
   hundreds); the most similar open burst wins, so two bodies of one model shooting side by side
   keep their own bursts. Comparing neighbours (not all pairs) is what a burst is: a sequence,
   which a turn of the subject breaks; it is linear in the shoot and needs no clustering library
   (20,000 photos: ~1 s on 2 busy cores, mostly the bracket scan in Python).
   Before that, *exposure brackets* and *focus stacks* are found and kept whole: a bracket is 3,
   5, 7 or 9 consecutive frames of one camera, each at most `bracket_gap` seconds after the
   previous one ended, whose EXIF exposure bias values are distinct and evenly stepped (0, −1, +1
   EV in any order; a stray frame before it never takes its first place), or, at one bias,
   aperture and ISO, whose shutter times are (manual mode); 2 frames count only when alike and
   on their own (a change of compensation in a burst is not a bracket). A focus stack is at least
   3 consecutive frames of identical exposure and framing (cosine ≥ 0.95) whose EXIF subject
   distance increases by ≥ 1 % each frame and ≥ 10 % in all (cameras step near to far; autofocus
   jitter does neither). Neither is ever proposed as duplicates to reject, and neither has a
   "best" frame. Focus stacks are only found where the camera writes the subject distance.
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

import itertools
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

BRACKET_SIZES = (9, 7, 5, 3, 2)
MIN_STACK = 3
STACK_STEP = 0.01  # each focus-stack frame focuses at least 1 % farther than the one before
STACK_SPAN = 0.10  # and the stack spans at least 10 % of its first distance
STACK_SIMILARITY = 0.95  # a focus stack is shot from a tripod: the framing hardly changes
DRIFT = 0.05  # a burst's frames stay within this of the similarity threshold to its first frame
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
    # members as captures, in capture order: the files of one exposure (RAW + JPEG) together;
    # empty = one capture per member
    captures: tuple[tuple[int, ...], ...] = ()
    whole: frozenset[int] = frozenset()  # members in a bracket or focus stack (level scene)

    def capture_list(self) -> tuple[tuple[int, ...], ...]:
        return self.captures or tuple((m,) for m in self.members)

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
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) < 1e-6


def _evenly_stepped(values: Sequence[float]) -> bool:
    """Distinct values, evenly stepped by at least MIN_EV_STEP (a bracket's EV offsets)."""
    if any(math.isnan(v) for v in values) or len(set(values)) != len(values):
        return False
    v = sorted(values)
    steps = [b - a for a, b in itertools.pairwise(v)]
    return min(steps) >= MIN_EV_STEP and max(steps) - min(steps) <= EV_TOLERANCE


class _Facts:
    """One camera's capture sequence as plain floats (the bracket and stack scans look at a few
    frames per position; numpy calls per window would cost seconds at 20,000 photos)."""

    def __init__(self, inputs: GroupInputs, seq: Sequence[int], emb: np.ndarray, has: np.ndarray) -> None:
        self.seq = list(seq)
        self.t = [float(inputs.times[r]) for r in seq]
        self.bias = [float(inputs.exposure_bias[r]) for r in seq]
        self.exposure = [float(inputs.exposure_time[r]) for r in seq]
        self.f = [float(inputs.f_number[r]) for r in seq]
        self.iso = [float(inputs.iso[r]) for r in seq]
        self.dist = [float(inputs.subject_distance[r]) for r in seq]
        self.emb, self.has = emb, has

    def within(self, start: int, stop: int, gap: float) -> bool:
        """Frames [start, stop) each taken at most `gap` s after the previous one ended; frames
        without times qualify only among themselves (never across the timed/untimed boundary)."""
        for k in range(start + 1, stop):
            t0, t1 = self.t[k - 1], self.t[k]
            if math.isnan(t0) and math.isnan(t1):
                continue
            if math.isnan(t0) or math.isnan(t1):
                return False
            took = 0.0 if math.isnan(self.exposure[k - 1]) else self.exposure[k - 1]
            if t1 < t0 or t1 - t0 - took > gap + 1e-6:
                return False
        return True

    def similar(self, a: int, b: int, threshold: float) -> bool:
        ra, rb = self.seq[a], self.seq[b]
        if not (self.has[ra] and self.has[rb]):
            return True  # nothing to say against it
        return float(self.emb[ra] @ self.emb[rb]) >= threshold

    def bracket(self, i: int, k: int, params: GroupParams) -> bool:
        """Frames [i, i+k) are an exposure bracket: distinct, evenly stepped EV offsets (EXIF
        exposure bias), or at one bias and fixed aperture and ISO, three or more shutter times
        evenly stepped in stops (a bracket shot in manual mode). Two frames also need to look alike."""
        if i + k > len(self.seq):
            return False
        if _same(self.bias[i], self.bias[i + 1]) and _same(self.exposure[i], self.exposure[i + 1]):
            return False  # a bracket's frames all differ
        window = range(i, i + k)
        by_bias = _evenly_stepped([self.bias[j] for j in window])
        by_shutter = (
            k >= 3  # two frames whose shutter differs are an auto-exposure burst as often
            and all(_same(self.bias[j], self.bias[i]) for j in window)
            and all(_same(self.f[j], self.f[i]) and _same(self.iso[j], self.iso[i]) for j in window)
            and all(self.exposure[j] > 0 for j in window)  # False for NaN
            and _evenly_stepped([math.log2(self.exposure[j]) for j in window])
        )
        if not (by_bias or by_shutter) or not self.within(i, i + k, params.bracket_gap):
            return False
        if k > 2:
            return True
        # two frames: alike, and on their own (a change of exposure compensation in the middle
        # of a burst is not a bracket)
        alone = not (i > 0 and self.within(i - 1, i + 1, params.bracket_gap)) and not (
            i + 2 < len(self.seq) and self.within(i + 1, i + 3, params.bracket_gap)
        )
        return alone and self.similar(i, i + 1, params.scene_similarity)

    def centred(self, i: int, k: int) -> bool:
        """The bracket [i, i+k) starts at its middle value (0, −, + is the cameras' usual order)."""
        values = sorted(self.bias[i : i + k]) if not math.isnan(self.bias[i]) else []
        return bool(values) and _same(self.bias[i], values[len(values) // 2])

    def stack_from(self, i: int, params: GroupParams) -> int:
        """The end of a focus stack starting at i (i itself when there is none): identical exposure,
        subject distance increasing by ≥ STACK_STEP from frame to frame and by ≥ STACK_SPAN in all
        (cameras' focus bracketing steps near to far; autofocus jitter does neither), the same
        framing (similar to the first frame) and within the bracket gap."""
        j = i + 1
        while (
            j < len(self.seq)
            and self.dist[j] >= self.dist[j - 1] * (1 + STACK_STEP)  # False for NaN
            and not math.isnan(self.exposure[i])
            and all(_same(c[j], c[i]) for c in (self.exposure, self.f, self.iso, self.bias))
            and self.similar(i, j, max(params.burst_similarity, STACK_SIMILARITY))
            and self.within(j - 1, j + 1, params.bracket_gap)
        ):
            j += 1
        if j - i < MIN_STACK or self.dist[j - 1] < self.dist[i] * (1 + STACK_SPAN):
            return i  # autofocus following a subject wanders by far less
        return j


def _find_kept_whole(facts: _Facts, params: GroupParams) -> list[tuple[int, int, str]]:
    """(start, stop, kind) runs of one camera's capture sequence that are brackets or focus stacks.

    Brackets: of every way to cut the sequence into bracket windows, the one that covers the most
    frames, then the one with the most windows starting at their middle value (cameras shoot
    0, −, +), so a stray frame before a bracket never takes its first place ("+1 | 0 −1 +1") and
    two brackets back to back stay two ("−2 0 +2 | −2 0 +2"). Dynamic programming from the end:
    linear, a few window checks per frame. Focus stacks are then looked for among the rest (a
    stack is at one exposure bias and shutter, a bracket never)."""
    n = len(facts.seq)
    windows: list[list[int]] = [[] for _ in range(n)]  # valid bracket sizes starting at each frame
    for i in range(n - 1):
        if _same(facts.bias[i], facts.bias[i + 1]) and _same(facts.exposure[i], facts.exposure[i + 1]):
            continue  # a bracket's frames all differ: most frames of a shoot stop here
        windows[i] = [k for k in BRACKET_SIZES if facts.bracket(i, k, params)]
    best: list[tuple[int, int]] = [(0, 0)] * (n + 1)  # (frames covered, centred windows) from i on
    choice: list[int] = [0] * (n + 1)  # the window taken at i (0: frame i is not in a bracket)
    for i in range(n - 1, -1, -1):
        best[i], choice[i] = best[i + 1], 0
        for k in windows[i]:
            covered, centred = best[i + k]
            option = (covered + k, centred + int(facts.centred(i, k)))
            if option > best[i]:
                best[i], choice[i] = option, k
    runs: list[tuple[int, int, str]] = []
    i = 0
    while i < n:
        if choice[i]:
            runs.append((i, i + choice[i], BRACKET))
            i += choice[i]
            continue
        stop = facts.stack_from(i, params)
        # a stack must not run into a bracket taken further on
        stop = next((j for j in range(i + 1, stop) if choice[j]), stop)
        if stop - i >= MIN_STACK:
            runs.append((i, stop, FOCUS_STACK))
            i = stop
        else:
            i += 1
    return runs


def _captures(inputs: GroupInputs, order: np.ndarray) -> list[list[int]]:
    """Rows grouped into captures, in capture order: the files of one exposure (RAW + JPEG, or the
    copy on a camera's second card) share the camera, the capture time and the name's stem; with
    no time, also the folder. Grouping and "keep the best N" count captures, not files."""
    out: dict[tuple[object, ...], list[int]] = {}
    for r in order:
        r = int(r)
        name = inputs.names[r].replace("\\", "/")
        folder, _, base = name.rpartition("/")
        stem = base.rsplit(".", 1)[0].lower() if "." in base else base.lower()
        t = float(inputs.times[r])
        key: tuple[object, ...] = (
            (inputs.camera[r], t, stem) if not math.isnan(t) else (inputs.camera[r], None, folder, stem)
        )
        out.setdefault(key, []).append(r)
    return list(out.values())


def group_photos(inputs: GroupInputs, params: GroupParams | None = None) -> Grouping:
    """Bursts (with brackets and focus stacks kept whole) and scenes; see the module docstring."""
    params = params or GroupParams()
    n = len(inputs)
    order = _capture_order(inputs)
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    emb = np.asarray(inputs.embeddings, dtype=np.float32)
    has = np.asarray(inputs.has_embedding, dtype=bool)
    times = np.asarray(inputs.times, dtype=np.float64)
    captures = _captures(inputs, order)
    capture_of = np.full(n, -1, dtype=np.int64)
    for c, rows in enumerate(captures):
        capture_of[rows] = c
    lead = [rows[0] for rows in captures]  # a capture is judged by its first file

    # --- level 1, per camera in capture order ---------------------------------------------------
    runs: list[tuple[str, list[int]]] = []  # (kind, lead rows in capture order)
    by_camera: dict[str, list[int]] = {}
    for r in lead:
        by_camera.setdefault(inputs.camera[r] or "", []).append(r)
    for seq in by_camera.values():
        facts = _Facts(inputs, seq, emb, has)
        starts = {s: (e, kind) for s, e, kind in _find_kept_whole(facts, params)}
        open_bursts: list[list[int]] = []  # bursts a frame may still join (two bodies interleave)
        k = 0
        while k < len(seq):
            if k in starts:
                stop, kind = starts[k]
                runs.append((kind, seq[k:stop]))
                k = stop
                continue
            r = seq[k]
            t = float(times[r])
            if not math.isnan(t):  # bursts whose last frame is too long ago are closed
                stale = [b for b in open_bursts if t - float(times[b[-1]]) > params.burst_gap]
                runs.extend((BURST, b) for b in stale)
                open_bursts = [b for b in open_bursts if not any(b is x for x in stale)]
            target = _best_burst(open_bursts, r, emb, has, times, params)
            if target is None:
                open_bursts.append([r])
            else:
                target.append(r)
                open_bursts.remove(target)
                open_bursts.append(target)  # the most recently extended last
            k += 1
        for b in open_bursts:
            runs.append((BURST, b))

    runs.sort(key=lambda run: int(position[run[1][0]]))
    burst_of = np.full(n, -1, dtype=np.int64)
    burst_rows: list[list[int]] = []
    burst_kinds: list[str] = []
    burst_captures: list[list[list[int]]] = []
    for kind, leads in runs:
        groups_of = [captures[int(capture_of[r])] for r in sorted(leads, key=lambda x: int(position[x]))]
        rows = [r for files in groups_of for r in files]
        burst_of[rows] = len(burst_rows)
        burst_rows.append(rows)
        burst_captures.append(groups_of)
        burst_kinds.append(SINGLE if kind == BURST and len(groups_of) == 1 else kind)

    # --- level 2: scenes across cameras, in time order of the bursts -----------------------------
    scene_of_burst = np.full(len(burst_rows), -1, dtype=np.int64)
    scene_bursts: list[list[int]] = []
    scene_sum: np.ndarray | None = None
    scene_last = -math.inf
    previous_mean: np.ndarray | None = None
    for bi, rows in enumerate(burst_rows):
        mean = _mean(emb, has, rows)
        first = _first_time(times, rows)
        joins = False
        if scene_bursts:
            gap_ok = math.isnan(first) or math.isinf(scene_last) or first - scene_last <= params.scene_gap
            sims = [_cos(mean, _unit(scene_sum)), _cos(mean, previous_mean)]
            known = [x for x in sims if x is not None]
            sim_ok = not known or max(known) >= params.scene_similarity
            # a frame with neither a time nor an embedding (a file that cannot be read) says
            # nothing that would put it in a scene
            evidence = not math.isnan(first) or mean is not None
            joins = evidence and gap_ok and sim_ok
        if not joins:
            scene_bursts.append([])
            scene_sum = None
            scene_last = -math.inf
        scene_bursts[-1].append(bi)
        scene_of_burst[bi] = len(scene_bursts) - 1
        if mean is not None:
            scene_sum = mean.copy() if scene_sum is None else scene_sum + mean
        last = _last_time(times, rows)
        if not math.isnan(last):
            scene_last = max(scene_last, last)
        previous_mean = mean

    ids = np.asarray(inputs.ids, dtype=np.int64)

    def id_tuple(rows: Sequence[int]) -> tuple[int, ...]:
        return tuple(int(ids[r]) for r in rows)

    bursts = [
        Group(
            b,
            kind,
            id_tuple(burst_rows[b]),
            int(scene_of_burst[b]),
            tuple(id_tuple(files) for files in burst_captures[b]),
        )
        for b, kind in enumerate(burst_kinds)
    ]
    scene_of = np.full(n, -1, dtype=np.int64)
    scenes = []
    for sc, members in enumerate(scene_bursts):
        caps = [files for b in members for files in burst_captures[b]]
        caps.sort(key=lambda files: int(position[files[0]]))
        rows = [r for files in caps for r in files]
        scene_of[rows] = sc
        whole = frozenset(pid for b in members if bursts[b].kind in KEPT_WHOLE for pid in bursts[b].members)
        scenes.append(
            Group(
                sc,
                SCENE if len(caps) > 1 else SINGLE,
                id_tuple(rows),
                -1,
                tuple(id_tuple(files) for files in caps),
                whole,
            )
        )
    return Grouping(ids, order, burst_of, scene_of, bursts, scenes, params)


def _best_burst(
    open_bursts: list[list[int]],
    r: int,
    emb: np.ndarray,
    has: np.ndarray,
    times: np.ndarray,
    params: GroupParams,
) -> list[int] | None:
    """The open burst frame `r` continues: taken within the gap of its last frame, similar to
    that frame and (so that a slow pan or a 30 fps procession does not chain into one burst of
    hundreds) to the burst's first frame within DRIFT; the most similar one when several qualify.
    A frame without a time can only continue the burst before it."""
    t = float(times[r])
    candidates = open_bursts if not math.isnan(t) else open_bursts[-1:]
    best, best_sim = None, -math.inf
    for b in candidates:
        last = b[-1]
        t0 = float(times[last])
        if not (math.isnan(t) or math.isnan(t0)) and abs(t - t0) > params.burst_gap:
            continue
        if has[r] and has[last]:
            sim = float(emb[last] @ emb[r])
            if sim < params.burst_similarity or float(emb[b[0]] @ emb[r]) < params.burst_similarity - DRIFT:
                continue
        elif math.isnan(t) or math.isnan(t0):
            continue  # neither a time nor an embedding says "same burst"
        else:
            sim = 0.0  # by time alone
        if sim > best_sim:
            best, best_sim = b, sim
    return best


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

# Attributes where less is better: the best frame by one of them has the LOWEST value.
LOWER_IS_BETTER = frozenset(
    {"noise", "motion_blur", "highlights_clipped", "shadows_clipped", "eyes_closed", "noisiness"}
)


def ranking(key: str, column: np.ndarray) -> np.ndarray:
    """`column` as "best by `key`" ranks it, higher = better: negated for the attributes where less
    is better (the best frame by noise is the cleanest, not the noisiest)."""
    values = np.asarray(column, dtype=np.float64)
    return -values if key in LOWER_IS_BETTER else values


def _capture_value(
    files: Sequence[int], row_of: Mapping[int, int], column: np.ndarray
) -> tuple[float, int | None]:
    """A capture's value (its best file's: a RAW's embedded preview and the JPEG score alike) and
    that file's row; NaN and None when no file of it has a value or a row."""
    best, best_row = math.nan, None
    for pid in files:
        r = row_of.get(pid)
        if r is None:
            continue
        v = float(column[r])
        if best_row is None or (not math.isnan(v) and (math.isnan(best) or v > best)):
            best, best_row = v, r
    return best, best_row


def best_rows(groups: Sequence[Group], row_of: Mapping[int, int], column: np.ndarray) -> list[int | None]:
    """Per group, the row (of `column`'s rows, via `row_of`: photo id -> row) of its best frame:
    the highest value, ties going to the earlier capture; None for a bracket or focus stack (no
    frame of it is better: they belong together) and for a group none of whose frames has a
    value. In a scene, frames of its brackets and stacks are never its best."""
    out: list[int | None] = []
    for g in groups:
        if g.kind in KEPT_WHOLE:
            out.append(None)
            continue
        best, best_value = None, -math.inf
        for files in g.capture_list():
            if any(pid in g.whole for pid in files):
                continue
            v, r = _capture_value(files, row_of, column)
            if r is not None and not math.isnan(v) and v > best_value:
                best, best_value = r, v
        out.append(best)
    return out


@dataclass(frozen=True)
class KeepBestPlan:
    """What "keep the best N of each group, reject the rest" would do (photo ids; the files of one
    capture, RAW + JPEG, share their fate)."""

    reject: tuple[int, ...]  # photo ids to reject
    kept: tuple[int, ...]  # kept as the best, or as the photographer's own picks/stars/labels
    held: tuple[int, ...]  # picked, starred or labelled beyond N: never rejected by this
    unscored: tuple[int, ...]  # without a value of the attribute: never rejected by this
    groups: int  # groups with more than N candidates (the ones changed)
    whole: int  # frames of brackets and focus stacks left alone

    def describe(self, n: int, level: str, label: str) -> str:
        """The confirmation text."""
        lines = [
            f"Keep the best {n} of each {level} by {label}, reject the rest: "
            f"{len(self.reject)} photo{'s' if len(self.reject) != 1 else ''} in {self.groups} "
            f"{level}{'s' if self.groups != 1 else ''} will be rejected."
        ]
        if self.held:
            lines.append(f"{len(self.held)} picked, starred or labelled photos are kept anyway.")
        if self.unscored:
            lines.append(f"{len(self.unscored)} photos without a {label} value are left as they are.")
        if self.whole:
            lines.append(f"{self.whole} frames of exposure brackets and focus stacks are left whole.")
        return "\n".join(lines)


def keep_best_plan(
    groups: Sequence[Group],
    row_of: Mapping[int, int],
    column: np.ndarray,
    rating: np.ndarray,
    picked: np.ndarray,
    n: int,
    labelled: np.ndarray | None = None,
) -> KeepBestPlan:
    """Per group, counting captures (RAW + JPEG of one exposure are one): the photographer's
    picks, starred and (with `labelled`) colour-labelled captures are kept first — they count
    toward N, and beyond it are held, never rejected; the remaining places go to the best
    undecided captures by `column`; the other undecided captures are rejected (their undecided
    files). Captures already rejected stay so and take no place. Captures without a value are
    left alone; brackets and focus stacks (and, in a scene, their frames) are skipped. Rows
    index `column`, `rating`, `picked` and `labelled` through `row_of`."""
    if n < 1:
        raise ValueError("keep at least 1 photo of each group")
    reject: list[int] = []
    kept: list[int] = []
    held: list[int] = []
    unscored: list[int] = []
    changed = whole = 0

    def chosen(r: int) -> bool:
        return bool(picked[r]) or int(rating[r]) > 0 or (labelled is not None and bool(labelled[r]))

    for g in groups:
        if g.kind in KEPT_WHOLE:
            whole += len(g.members)
            continue
        whole += len(g.whole)
        mine: list[tuple[tuple[int, ...], list[int]]] = []
        for files in g.capture_list():
            if any(pid in g.whole for pid in files):
                continue
            rows = [row_of[pid] for pid in files if pid in row_of]
            if rows:
                mine.append((files, rows))
        picks = [(files, rows) for files, rows in mine if any(chosen(r) for r in rows)]
        open_ = [
            (files, rows)
            for files, rows in mine
            if not any(chosen(r) for r in rows) and not all(int(rating[r]) < 0 for r in rows)
        ]
        if len(picks) + len(open_) <= n:
            continue
        scored = []
        for files, rows in open_:
            v, _r = _capture_value(files, row_of, column)
            if math.isnan(v):
                unscored.extend(files)
            else:
                scored.append((v, files, rows))
        scored.sort(key=lambda item: -item[0])  # stable: the earlier capture wins a tie
        places = max(0, n - len(picks))
        for files, _rows in picks[:n]:
            kept.extend(files)
        for files, _rows in picks[n:]:
            held.extend(files)
        for _v, files, _rows in scored[:places]:
            kept.extend(files)
        rest = scored[places:]
        if rest:
            changed += 1
        for _v, files, _rows in rest:
            reject.extend(pid for pid in files if pid in row_of and int(rating[row_of[pid]]) == 0)
    return KeepBestPlan(tuple(reject), tuple(kept), tuple(held), tuple(unscored), changed, whole)


# --- ranks within a group -------------------------------------------------------------------------


def group_ranks(values: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rank, size) per row: 1 = the group's highest value, equal values share the better rank;
    NaN rows get rank 0 and do not count
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
    v = values[order]
    # ties share the better rank (1, 1, 3): two identical frames are equally good
    new_value = np.r_[True, (np.diff(g) != 0) | (v[1:] != v[:-1])]
    run_start = np.maximum.accumulate(np.where(new_value, np.arange(len(order)), 0))
    rank[order] = run_start - first + 1
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
