"""A culling session on one folder: the table the grid shows, filters, sort, decisions with undo.

Qt-free, so the window and the tests drive the same logic. The table is loaded once from the
catalog (one query) and kept in memory; sorting and filtering run in numpy (milliseconds for 20,000
photos); rows written by a running indexer are merged in by id. A decision is shown at once and
written by the one writer thread (culling/writer.py), in order, through the catalog's one decision
path; its result (the catalog's values, or why it failed) comes back through `deliver()` on the
session's own thread. Each step is recorded on an undo stack; undo/redo are written the same way.

The session is the model of the window (napari's model/view split): it knows nothing of Qt and
announces every change through plain-Python events (`session.events`), to which the grid, the
loupe, the filter panel and the status bar subscribe:

- `view_changed()`: the sort or the filters changed; the whole view was recomputed.
- `rows_changed(ids)`: the indexer added, rescored or removed rows (ids = the photos whose data
  changed, None = possibly all), or decisions changed elsewhere were applied (`apply_poll`, then
  `decisions_changed` too); the view was recomputed, and a view can apply it row by row.
- `decisions_changed(ids)`: ratings, picks or labels of these photos changed (also undo/redo).
- `columns_changed()`: the score columns changed (a custom prompt pair, a new analysis).
- `write_failed(message)`: a decision, undo or redo could not be saved; its photos show the
  catalog's values again and the step left the undo stack.
- `write_note(message)`: something the writer has to say after a saved decision (a sidecar that
  could not be written); the decision itself stands.
- `grouping_needed()`: something shown asks for bursts and scenes the session has not got yet
  (stacks turned on, a range relative to the burst or scene; `needs_grouping`). The session never
  groups by itself: its owner calls `regroup()` (the CLI, tests) or runs `grouping_task` in a
  worker thread and hands the result to `set_grouping` (the window).

Decisions changed elsewhere (another window, another machine on a shared catalog, `rate`, an XMP
import) arrive by polling: `poll_task()` returns a function that reads `Catalog.decision_changes`
since the session's counter, which the owner runs off its own thread (the window: every
gui/controllers/live.POLL_INTERVAL_MS); `apply_poll()` applies the result on the session's
thread. A photo this session changed while the poll ran, or whose write is still queued or in
flight, keeps the local value (its write is the later change and comes back through `deliver`)
and is read again by the next poll; the session's own writes come back too and change nothing.
"""

from __future__ import annotations

import importlib.util
import queue
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..catalog import Catalog, PhotoTable, build_table
from ..catalog.records import Decision, DecisionDelta, GroupInputs, ScoreMatrix
from ..catalog.table import sort_rows
from ..measures.registry import PIXEL_KEYS, attribute_info
from ..scoring.attributes import DEFAULT_ATTRIBUTES, AttributePair
from .decisions import DecisionChange, apply_change, restore_fn
from .groups import (
    KEEPER_KEY,
    LEVELS,
    Grouping,
    GroupParams,
    KeepBestPlan,
    group_photos,
    keep_best_plan,
    keeper_explanation,
    keeper_scores,
    ranking,
)
from .presets import PRESETS, Preset, condition_range, get_preset, preset_mask
from .prompts import prompt_scores
from .stacks import RELATIVE_TO, StackInfo, StackMaps, kind_text, ordinal
from .writer import DecisionWriter, JobKind, Step, WriteJob, WriteResult

# How long closing the window or switching folders waits for decisions still being written. A
# write that waits for another process's write lock gives up by itself after the catalog's retry
# window (catalog/connection.py: 30 s, plus SQLite's busy timeout), and is then reported.
FLUSH_SECONDS = 60.0


def _faces_unavailable() -> str | None:
    """Why this installation cannot measure faces (None: it can), without importing the detector:
    the window asks on every folder, and mediapipe takes a second to import and brings OpenCV's own
    Qt along (the indexer's processes load it, never the window)."""
    if importlib.util.find_spec("mediapipe") is not None:
        return None
    from ..measures.faces import INSTALL_HINT

    return f"needs the [faces] extra: {INSTALL_HINT}"


def column_order(attributes: Sequence[str]) -> list[str]:
    """Pixel measures, then CLIP-IQA scores, in the registry's order; then custom prompt keys
    alphabetically."""
    present = set(attributes)
    known = [*PIXEL_KEYS, *DEFAULT_ATTRIBUTES]
    return [a for a in known if a in present] + sorted(present - set(known))


@dataclass(frozen=True)
class DecisionPoll:
    """What one poll for decisions changed elsewhere read (see `CullingSession.poll_task`)."""

    seq: int  # the catalog's decision counter when read
    decisions: dict[int, Decision]  # changed since the session's counter, and the photos re-read
    load: int  # the session's load (reload) the poll was started in
    mark: int  # the session's count of local changes when the poll started
    busy: frozenset[int]  # photos with a local write queued or in flight when the poll started


@dataclass(frozen=True)
class FilterState:
    """Everything the filter panel can ask for. Ranges are inclusive, in the attribute's units
    (scores 0..1, fractions 0..1, counts); with `relative` they are percentiles (0..100) of this
    shoot's values instead. `presets` are names of `presets.PRESETS`: a photo must match every
    active preset (each one: any of its conditions). A photo without a value (NaN: not measured,
    no face) never passes a range or a condition on that attribute. `relative_to` says of what the
    percentiles are: the whole shoot, or each photo's own burst or scene (groups.group_percentiles:
    a soft frame of a dark reception is compared with its burst, not with a daylight portrait)."""

    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    relative: bool = False
    relative_to: str = "shoot"  # "shoot" | "burst" | "scene" (with `relative`)
    presets: frozenset[str] = frozenset()
    flags: frozenset[str] = frozenset()  # subset of {"picked", "rejected", "unflagged"}; empty = all
    min_rating: int = 0  # 1..5 to require stars
    label: str | None = None
    statuses: frozenset[str] = frozenset({"ok", "error"})  # missing photos are hidden by default

    @property
    def active(self) -> bool:
        return bool(self.ranges or self.presets or self.flags or self.min_rating or self.label)


class Event:
    """A plain-Python signal: `connect(callback)`, `emit(*args)` calls the callbacks in order."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., object]] = []

    def connect(self, callback: Callable[..., object]) -> None:
        self._callbacks.append(callback)

    def disconnect(self, callback: Callable[..., object]) -> None:
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def emit(self, *args: object) -> None:
        for callback in list(self._callbacks):
            callback(*args)


class SessionEvents:
    """What a session announces (see the module docstring)."""

    def __init__(self) -> None:
        self.view_changed = Event()
        self.rows_changed = Event()
        self.decisions_changed = Event()
        self.columns_changed = Event()
        self.write_failed = Event()
        self.write_note = Event()
        self.grouping_needed = Event()


class CullingSession:
    """The photos of one folder as the grid sees them. Rows are indices into `table`.

    With `recursive`, the photos of every sub-folder of `folder` are part of the session too."""

    def __init__(
        self, catalog: Catalog, folder: Path, recursive: bool = False, writer: DecisionWriter | None = None
    ) -> None:
        self.catalog = catalog
        self.folder = Path(folder).expanduser().resolve()
        self.recursive = recursive
        self.folder_id = catalog.folder_id(self.folder)
        self.analysis_id: int | None = None
        self.table: PhotoTable = build_table([], ScoreMatrix.empty(), [])
        self.filters = FilterState()
        self.sort_key = "name"
        self.descending = False
        self.view: np.ndarray = np.zeros(0, dtype=np.int64)  # table rows shown, in order
        self.events = SessionEvents()
        self._undo: list[Step] = []
        self._redo: list[Step] = []
        self.writer = writer if writer is not None else DecisionWriter(catalog)
        # called on the writer thread after each result is queued (the window: a queued Qt signal
        # whose slot calls deliver()); None: the owner calls deliver() or flush() itself
        self.wake: Callable[[], None] | None = None
        self._inbox: queue.SimpleQueue[WriteResult] = queue.SimpleQueue()
        self._pending: Counter[int] = Counter()  # photo id -> its jobs not yet delivered
        self._custom: dict[str, tuple[AttributePair, np.ndarray, np.ndarray]] = {}
        # columns computed by the session's owners from stored data (search, taste, keeper): key ->
        # (photo ids, values); like custom prompt columns they survive a reload of the same analysis
        self._derived: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._row_of: dict[int, int] = {}
        # bursts and scenes (culling/groups.py, culling/stacks.py): computed when first asked for
        # (stacking, a range relative to the burst, keep-best-N), then again on every reload and
        # when the sliders change; never on an indexer's merge (rows merged since are alone)
        self.grouping: Grouping | None = None
        self.group_params = GroupParams()
        self.stacked = False
        self.expanded: set[int] = set()  # expanded stacks, by the photo id of their first frame
        self.best_by = KEEPER_KEY
        self._group_inputs: GroupInputs | None = None
        self._generation = 0  # of what was read for grouping: a reload makes the grouping stale
        self.grouping_stale = False  # the photos changed since the grouping (the window regroups)
        self._maps: StackMaps | None = None
        self._passing: np.ndarray = np.zeros(0, dtype=np.int64)  # rows passing the filters at select()
        self._edges: dict[int, tuple[bool, bool]] = {}  # row of an expanded stack -> (first, last)
        # decisions changed elsewhere (poll_task / apply_poll): the catalog's decision counter the
        # table is current with, the loads (a poll started before a reload is stale), and when each
        # photo last changed here (a local decision, an indexer merge) by a count of local changes
        self.decision_seq = 0
        self._load = 0
        self._local = 0
        self._touched: dict[int, int] = {}
        self._recheck: set[int] = set()  # photos a poll passed over: the next poll reads them again
        self.reload()

    # --- loading -----------------------------------------------------------------------------------
    def folder_ids(self) -> list[int]:
        """The catalog folders this session reads (a folder row per real directory): the folder,
        and with `recursive` every folder under it. Names are paths inside the folder
        ("100CANON/IMG_1.JPG")."""
        assert self.folder_id is not None
        return self.catalog.folder_ids(self.folder, recursive=self.recursive)

    def reload(self) -> None:
        """Read the whole folder from the catalog (one query) and re-apply sort and filters."""
        assert self.folder_id is not None
        previous, columns = self.analysis_id, list(self.table.attributes)
        self.analysis_id = self.catalog.last_analysis(self.folder_ids())  # the tree's, see Catalog
        if self.analysis_id != previous:
            self._custom.clear()  # prompt scores belong to the embeddings of one analysis
            self._derived.clear()  # and so do search and taste columns
        seq = self.catalog.decision_seq()  # before the rows: a change between them comes again
        rows, scores = self.catalog.rows(self.folder_ids(), self.analysis_id)
        kept = self._keep_pending()
        self.table = build_table(rows, scores, column_order(scores.attributes) or list(DEFAULT_ATTRIBUTES))
        self._row_of = {}
        self._put_back(kept)
        self.decision_seq, self._load = seq, self._load + 1
        self._recheck = set(kept)  # their writes may return values older than these rows
        self._restore_custom()
        if self.grouping is not None:  # new photos, embeddings, another analysis: group again
            self._group_inputs, self._generation = None, self._generation + 1
            self.grouping_stale = True  # kept meanwhile: photos it does not know are shown alone
            self._add_keeper()
        if self.sort_key not in self.sort_keys:
            self.sort_key = "name"  # sorted by a prompt pair of the previous analysis
        self.view = self.select()
        if self.table.attributes != columns:
            self.events.columns_changed.emit()
        self.events.rows_changed.emit(None)

    def merge(self, photo_ids: Sequence[int]) -> None:
        """Bring in rows the indexer just wrote (new photos or new scores), keeping everything else."""
        assert self.folder_id is not None
        if self.analysis_id is None:
            self.analysis_id = self.catalog.last_analysis(self.folder_ids())
        ids = [int(i) for i in photo_ids]
        rows, scores = self.catalog.rows(self.folder_ids(), self.analysis_id, photo_ids=ids)
        fresh = build_table(rows, scores, self.table.attributes)
        kept = self._keep_pending()
        self.table.merge(fresh)
        self._put_back(kept)
        self._touch(ids)  # read now: newer than what a poll running meanwhile read
        self._restore_custom()  # a merged row keeps its prompt score until the pair is rescored
        self.view = self.select()
        self.events.rows_changed.emit(ids)

    def apply_indexed(self, photo_ids: Sequence[int]) -> None:
        """Rows an indexer committed: merged, or everything reloaded when the folder's analysis
        changed under us (a new model or analysis size)."""
        assert self.folder_id is not None
        if self.catalog.last_analysis(self.folder_ids()) != self.analysis_id:
            self.reload()
        else:
            self.merge(photo_ids)

    def _restore_custom(self) -> None:
        for pair, ids, values in self._custom.values():  # custom prompt columns survive a reload
            self.table.add_scores(pair.key, ids, values)
        for key, (ids, values) in self._derived.items():
            self.table.add_scores(key, ids, values)

    def set_column(self, key: str, photo_ids: np.ndarray, values: np.ndarray) -> None:
        """Show a column computed from stored data (a search's similarity, the taste model's
        keep-probability, the keeper score): photos not in `photo_ids` get NaN. It becomes a sort
        key and a filter range like a score, and survives reloads of the same analysis."""
        ids = np.asarray(photo_ids, dtype=np.int64)
        vals = np.asarray(values, dtype=np.float32)
        new = key not in self.table.attributes
        self._derived[key] = (ids, vals)
        self.table.add_scores(key, ids, vals)
        self.view = self.select()
        if new:
            self.events.columns_changed.emit()
        self.events.rows_changed.emit(None)

    def drop_column(self, key: str) -> None:
        """Remove a column added by `set_column` (a cleared search)."""
        if self._derived.pop(key, None) is None or key not in self.table.attributes:
            return
        j = self.table.attributes.index(key)
        self.table.attributes.pop(j)
        if len(self.table):
            self.table.scores = np.delete(self.table.scores, j, axis=1)
        else:
            self.table.scores = np.zeros((0, len(self.table.attributes)), np.float32)
        if self.sort_key == key:
            self.sort_key = "name"
        ranges = {k: v for k, v in self.filters.ranges.items() if k != key}
        self.filters = replace(self.filters, ranges=ranges)
        self.view = self.select()
        self.events.columns_changed.emit()
        self.events.rows_changed.emit(None)

    # --- the view ------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Recompute the view (e.g. after decisions, which do not re-filter on their own)."""
        self.view = self.select()
        self.events.view_changed.emit()

    def row_of(self, photo_id: int) -> int | None:
        """The table row of a photo id (the map is rebuilt when the table grows)."""
        if len(self._row_of) != len(self.table):
            self._row_of = {int(pid): i for i, pid in enumerate(self.table.ids)}
        return self._row_of.get(int(photo_id))

    @property
    def view_ids(self) -> np.ndarray:
        """The photo ids shown, in order."""
        return self.table.ids[self.view] if len(self.view) else np.zeros(0, dtype=np.int64)

    def set_sort(self, key: str, descending: bool) -> None:
        self.sort_key, self.descending = key, descending
        self.refresh()

    def set_filters(self, filters: FilterState) -> None:
        if filters.relative_to not in RELATIVE_TO:
            raise ValueError(f"relative to {filters.relative_to!r}? choose one of {', '.join(RELATIVE_TO)}")
        self.filters = filters
        self.refresh()  # ranges relative to a burst wait for the grouping (see _mask)
        if self.needs_grouping:
            self.events.grouping_needed.emit()

    def select(self) -> np.ndarray:
        self._maps = self._stack_maps()
        rows = np.flatnonzero(self._mask())
        self._passing = rows
        if not self.stacked or self._maps is None:
            self._edges = {}
            return sort_rows(self.table, rows, self.sort_key, self.descending)
        return self._stack_rows(self._maps, rows)

    def _mask(self) -> np.ndarray:
        """The rows passing the filters. Ranges and presets relative to the burst (scene) wait for
        the grouping: until it arrives (`needs_grouping`, computed off the GUI thread in the
        window) they are not applied, so the photos stay in place rather than vanishing for a
        second; the other filters apply at once."""
        t, f = self.table, self.filters
        mask = np.isin(np.array(t.status, dtype=object), list(f.statuses)) if len(t) else np.zeros(0, bool)
        level = self._relative_level()
        if level is not None and self._maps is None:
            f = replace(f, ranges={}, presets=frozenset())  # waiting for the grouping
        for attr, (lo, hi) in f.ranges.items():
            col = t.score_column(attr) if attr in t.attributes else np.full(len(t), np.nan)
            if level is not None and self._maps is not None:
                col = self._maps.percentiles(col, level)  # lo, hi are percentiles of the group
                lo_abs, hi_abs = lo, hi
            else:
                lo_abs, hi_abs = self.absolute_range(attr, lo, hi)
            with np.errstate(invalid="ignore"):
                mask &= (col >= lo_abs) & (col <= hi_abs)
        for name in f.presets:  # AND between presets, OR between a preset's conditions
            preset = get_preset(name)
            if level is not None and self._maps is not None:
                mask &= self._group_preset_mask(preset, self._maps, level)
            else:
                mask &= preset_mask(preset, self._columns(preset), len(t), f.relative)
        if f.flags:
            flag = np.where(t.rating == -1, "rejected", np.where(t.picked, "picked", "unflagged"))
            mask &= np.isin(flag, list(f.flags))
        if f.min_rating:
            mask &= t.rating >= f.min_rating
        if f.label:
            mask &= np.array([lab == f.label for lab in t.labels], dtype=bool)
        return mask

    def _columns(self, preset: Preset) -> dict[str, np.ndarray]:
        t = self.table
        return {a: t.score_column(a) for a in preset.attributes if a in t.attributes}

    def absolute_range(self, attr: str, lo: float, hi: float) -> tuple[float, float]:
        """A filter range in the attribute's units (percentiles of the shoot are converted when
        `relative`; percentiles of a burst or scene have no one value in units: returned as they are)."""
        if not self.filters.relative or attr not in self.table.attributes or self._relative_level():
            return lo, hi
        col = self.table.score_column(attr)
        col = col[~np.isnan(col)]
        if col.size == 0:
            return lo, hi
        a, b = np.percentile(col, [lo, hi])
        return float(a), float(b)

    def why(self, row: int) -> list[str]:
        """Why table row `row` passes the active filters, readable: the range filters
        ('Sharpness (CLIP-IQA) 0.12 ≤ 0.35') and the conditions of each active preset it meets
        ('Focus 0.21 (Focus ≤ 0.30)')."""
        out = []
        t, f = self.table, self.filters
        level = self._relative_level()
        if level is not None and self._maps is None:  # not applied yet (see _mask)
            return (
                [f"(ranges relative to its {level} apply once the {level}s are grouped)"] if f.active else []
            )
        for attr, (lo, hi) in f.ranges.items():
            if attr not in t.attributes:
                continue
            info = attribute_info(attr)
            value = float(t.score_column(attr)[row])
            if level is not None and self._maps is not None:
                p = float(self._maps.percentiles(t.score_column(attr), level)[row])
                out.append(
                    f"{info.label} {info.format(value)}: percentile {p:.0f} of its {level} "
                    f"(percentiles {lo:.0f}–{hi:.0f} of its {level})"
                )
                continue
            lo_abs, hi_abs = self.absolute_range(attr, lo, hi)
            unit = f" (percentiles {lo:.0f}–{hi:.0f} of this shoot)" if f.relative else ""
            top = info.maximum if info.maximum is not None else self.count_maximum(attr)
            v, a, b = info.format(value), info.format(lo_abs), info.format(hi_abs)
            if lo_abs > 0.0 and hi_abs < top:
                out.append(f"{info.label} {a} ≤ {v} ≤ {b}{unit}")
            elif hi_abs < top:
                out.append(f"{info.label} {v} ≤ {b}{unit}")
            else:
                out.append(f"{info.label} {v} ≥ {a}{unit}")
        if f.presets:
            values = t.scores_of(row)  # NaN left out: it never matches
            for preset in PRESETS:  # in the panel's order
                if preset.name in f.presets:
                    out.extend(self._matched(preset, values, row))
        return out

    def _matched(self, preset: Preset, values: dict[str, float], row: int | None = None) -> list[str]:
        """The conditions of `preset` a photo meets: 'Focus 0.21 (Focus ≤ 0.30)'; a CLIP-IQA
        condition in relative mode says its percentiles and what they are in this shoot."""
        out = []
        columns, relative = self._columns(preset), self.filters.relative
        level, maps = self._relative_level(), self._maps
        for condition in preset.conditions:
            value, column = values.get(condition.attribute), columns.get(condition.attribute)
            if value is None or column is None:
                continue
            grouped = level is not None and maps is not None and row is not None
            if grouped and condition.percentile is not None:
                assert level is not None and maps is not None and row is not None
                p_lo, p_hi = condition.percentile
                p = float(maps.percentiles(column, level)[row])
                if p_lo <= p <= p_hi:
                    info = attribute_info(condition.attribute)
                    out.append(
                        f"{info.label} {info.format(value)} (percentile {p:.0f} of its {level}; "
                        f"percentiles {p_lo:.0f}–{p_hi:.0f} of its {level})"
                    )
                continue
            lo, hi = condition_range(condition, column, relative)
            if not lo <= value <= hi:
                continue
            info = attribute_info(condition.attribute)
            rule = condition.describe()
            if relative and condition.percentile is not None:
                p_lo, p_hi = condition.percentile
                rule = f"percentiles {p_lo:.0f}–{p_hi:.0f} of this shoot: {info.format(lo)}–{info.format(hi)}"
            out.append(f"{info.label} {info.format(value)} ({rule})")
        return out

    def count_maximum(self, attr: str) -> float:
        """The largest value of a column in this shoot (0 when it has none): a count's range."""
        if attr not in self.table.attributes or not len(self.table):
            return 0.0
        col = self.table.score_column(attr)
        return float(np.nanmax(col)) if not np.isnan(col).all() else 0.0

    def unavailable(self, attributes: Sequence[str]) -> dict[str, str]:
        """Why each of `attributes` has no value in this folder (absent: it has, or the folder has
        no photo yet, so nothing is known), e.g. "needs the [faces] extra: pip install
        'clipiqa-desktop[faces]'" or 'index the folder again to measure focus'."""
        t = self.table
        if not len(t):
            return {}
        have = {a for a in t.attributes if not np.isnan(t.score_column(a)).all()}
        out = {}
        for attr in attributes:
            if attr in have:
                continue
            info = attribute_info(attr)
            if info.needs_faces and "faces" in have:
                out[attr] = "no face found in this folder"
            elif info.needs_faces and (reason := _faces_unavailable()) is not None:
                out[attr] = reason
            elif info.pixel:
                out[attr] = f"index the folder again to measure {info.label.lower()}"
            else:
                out[attr] = f"{info.label} is not scored in this folder (index it again to add it)"
        return out

    # --- bursts and scenes ---------------------------------------------------------------------------
    def _relative_level(self) -> str | None:
        """The level ("burst" or "scene") when the filter ranges are percentiles of the photo's own group."""
        f = self.filters
        return f.relative_to if f.relative and f.relative_to in LEVELS else None

    @property
    def needs_grouping(self) -> bool:
        """Stacks or a range relative to the burst (scene) are asked for and there is no grouping
        yet: the owner should group (`grouping_needed` is emitted when this becomes true)."""
        return self.grouping is None and (self.stacked or self._relative_level() is not None)

    def regroup(self, params: GroupParams | None = None, reread: bool = False) -> None:
        """Group the folder into bursts and scenes now (with `params`: the sliders moved), and add
        the keeper column. The window runs the same in a worker thread instead (`grouping_task`,
        `group_photos` there, `set_grouping` back here): 20,000 photos take a second or two."""
        inputs, params, generation = self.grouping_task(params, reread)
        self.set_grouping(group_photos(inputs, params), generation)

    def grouping_task(
        self, params: GroupParams | None = None, reread: bool = False
    ) -> tuple[GroupInputs, GroupParams, int]:
        """What grouping needs, read here (on the session's thread; the catalog is read the first
        time, after a reload and with `reread`; new params reuse what was read): (inputs, params,
        generation) for groups.group_photos and then `set_grouping`."""
        if params is not None:
            self.group_params = params
        if reread or self._group_inputs is None:
            self._group_inputs = self.catalog.group_inputs(self.folder_ids(), self.analysis_id)
        return self._group_inputs, self.group_params, self._generation

    def set_grouping(self, grouping: Grouping, generation: int | None = None) -> None:
        """Show a grouping (of `grouping_task`'s `generation`: a reload since leaves it stale).
        Emits columns_changed when the keeper column is new, then view_changed."""
        columns = list(self.table.attributes)
        self.grouping = grouping
        self.grouping_stale = generation is not None and generation != self._generation
        self._add_keeper()
        self.view = self.select()
        if self.table.attributes != columns:
            self.events.columns_changed.emit()
        self.events.view_changed.emit()

    def _add_keeper(self) -> None:
        """The keeper column (groups.keeper_scores of the table's focus, quality and eyes)."""
        t = self.table
        if not len(t):
            return  # no photo yet: the keeper column comes with the first reload that has some
        keeper = keeper_scores(t.attributes, t.scores)
        self._derived[KEEPER_KEY] = (t.ids.copy(), keeper)  # survives reloads like the others
        t.add_scores(KEEPER_KEY, t.ids, keeper)

    def _stack_maps(self) -> StackMaps | None:
        if self.grouping is None:
            return None
        return StackMaps(self.grouping, self.table.ids, self.best_values())

    def best_values(self) -> np.ndarray:
        """The "best by" attribute per table row as it ranks them, higher = better (negated where
        less is better: the best frame by noise is the cleanest; groups.ranking); NaN where none."""
        t = self.table
        if self.best_by in t.attributes:
            return ranking(self.best_by, t.score_column(self.best_by))
        return np.full(len(t), np.nan, dtype=np.float64)

    def set_stacked(self, stacked: bool) -> None:
        """Show each burst, bracket and focus stack as one cell (its best frame; a bracket's first)
        unless it is expanded. Without a grouping the view stays flat until one is set
        (`grouping_needed`)."""
        self.stacked = stacked
        self.refresh()
        if self.needs_grouping:
            self.events.grouping_needed.emit()

    def set_best_by(self, key: str) -> None:
        """The attribute that chooses each group's best frame (default: the keeper score)."""
        self.best_by = key
        self.refresh()

    def toggle_stack(self, photo_id: int) -> bool:
        """Expand the collapsed stack of this photo, or collapse its expanded one; False when the
        photo is in no group of several frames."""
        row = self.row_of(photo_id)
        info = self.stack_info(row) if row is not None else None
        if info is None or self.grouping is None:
            return False
        key = self.grouping.bursts[info.group].members[0]
        self.expanded ^= {key}
        self.refresh()
        return True

    def step_order(self) -> np.ndarray:
        """Photo ids in the order compare steps through them: the view's, with each collapsed
        stack replaced by its frames that pass the filters, in capture order, so stepping through
        a burst shows every frame of it (with the zoom and position kept) without expanding it.
        Vectorised (one lexsort and one gather; no Python loop over the view)."""
        ids = self.view_ids
        maps, grouping = self._maps, self.grouping
        if not self.stacked or maps is None or grouping is None or not len(self.view) or not len(maps.sizes):
            return ids
        passing = self._passing
        g = maps.burst[passing]
        passing, g = passing[g >= 0], g[g >= 0]
        order = np.lexsort((maps.position[passing], g))
        passing, g = passing[order], g[order]  # the filtered members, by group, in capture order
        count = np.bincount(g, minlength=len(maps.sizes))
        start = np.cumsum(count) - count  # each group's first member in `passing`
        view = self.view
        vg = np.maximum(maps.burst[view], 0)
        collapsed = (maps.burst[view] >= 0) & (maps.sizes[vg] > 1) & (count[vg] > 0)
        if self.expanded:
            first = np.array([b.members[0] for b in grouping.bursts], dtype=np.int64)
            collapsed &= ~np.isin(first, np.fromiter(self.expanded, np.int64, len(self.expanded)))[vg]
        length = np.where(collapsed, count[vg], 1)
        cell = np.repeat(np.arange(len(view)), length)  # the view position of each output slot
        within = np.arange(len(cell)) - np.repeat(np.cumsum(length) - length, length)
        member = np.minimum(start[vg[cell]] + within, len(passing) - 1)
        rows = np.where(collapsed[cell], passing[np.maximum(member, 0)] if len(passing) else 0, view[cell])
        return self.table.ids[rows]

    def shown_row_of(self, photo_id: int) -> int | None:
        """The view position that shows this photo: its own, or (a frame hidden in a collapsed
        stack) that of the cell standing for its stack; None when neither is shown. What the grid
        makes current when a stack closes over the current photo (S, Ctrl+G, a regroup, "best by")."""
        row = self.row_of(photo_id)
        if row is None or not len(self.view):
            return None
        at = np.flatnonzero(self.view == row)
        if len(at):
            return int(at[0])
        maps = self._maps
        if not self.stacked or maps is None or not 0 <= row < len(maps.burst) or maps.burst[row] < 0:
            return None
        at = np.flatnonzero(maps.burst[self.view] == maps.burst[row])
        if len(at) != 1:  # not collapsed (an open stack whose frame a filter hides), or not shown
            return None
        info = self.stack_info(int(self.view[at[0]]))
        return int(at[0]) if info is not None and info.collapsed else None

    def stack_info(self, row: int) -> StackInfo | None:
        """The group of a table row as the grid draws it; None for a frame alone (or before any
        grouping)."""
        maps, grouping = self._maps, self.grouping
        if maps is None or grouping is None or not 0 <= row < len(maps.burst):
            return None
        g = int(maps.burst[row])
        if g < 0 or len(grouping.bursts[g]) < 2:
            return None
        group = grouping.bursts[g]
        expanded = self.stacked and group.members[0] in self.expanded
        first, last = self._edges.get(row, (False, False))
        best, collapsed = bool(maps.is_best[row]), self.stacked and not expanded
        return StackInfo(g, group.kind, len(group), best, collapsed, expanded, first, last)

    def stack_tooltip(self, row: int) -> list[str]:
        """The tooltip lines of a grouped photo: what its group is, the keeper score explained,
        and its rank ('2nd of 7 in this burst by Keeper')."""
        info, maps = self.stack_info(row), self._maps
        if info is None or maps is None:
            return []
        lines = [kind_text(info.kind, info.count)]
        if info.collapsed:
            lines[0] += " (S shows them all)"
        if info.kind in ("bracket", "focus_stack"):
            return lines
        lines.append(keeper_explanation(self.table.scores_of(row)))
        label = attribute_info(self.best_by).label
        rank, size = maps.rank(self.best_values(), "burst", row)
        if rank:
            lines.append(f"{ordinal(rank)} of {size} in this burst by {label}")
        if info.best:
            lines.append(f"the best of its burst by {label}")
        return lines

    def keep_best_plan(self, n: int, level: str = "burst") -> KeepBestPlan:
        """What "keep the best N of each burst (scene), reject the rest" would reject
        (groups.keep_best_plan over the whole folder, by the "best by" attribute). Needs a
        grouping: `regroup()` first, or the window's worker thread."""
        if self.grouping is None:
            raise RuntimeError("the folder is not grouped yet: regroup() first")
        groups, _index = self.grouping.level(level)
        t = self.table
        row_of = {int(pid): i for i, pid in enumerate(t.ids)}
        labelled = np.array([lab is not None for lab in t.labels], dtype=bool)
        return keep_best_plan(groups, row_of, self.best_values(), t.rating, t.picked, n, labelled)

    def keep_best(self, plan: KeepBestPlan) -> int:
        """Reject the plan's photos as ONE step (one Ctrl+Z restores them all); returns how many.
        Only photos still undecided when the write runs are rejected (a pick made meanwhile, here
        or elsewhere, stands)."""
        rows = [r for pid in plan.reject if (r := self.row_of(pid)) is not None]
        self.decide(rows, DecisionChange(reject=True, only_undecided=True))
        return len(rows)

    def _stack_rows(self, maps: StackMaps, rows: np.ndarray) -> np.ndarray:
        """The stacked view of the rows passing the filters: each group of several frames by one
        row (StackMaps.representatives), sorted with the frames alone; an expanded group's
        matching frames then take its place, in capture order."""
        assert self.grouping is not None
        stacked = maps.stacked(rows)
        reps = maps.representatives(rows[stacked])
        have = np.flatnonzero(reps >= 0)
        shown = np.concatenate([rows[~stacked], reps[have]])
        ordered = sort_rows(self.table, shown, self.sort_key, self.descending)
        self._edges = {}
        bursts = self.grouping.bursts
        open_groups = [int(g) for g in have if bursts[int(g)].members[0] in self.expanded]
        if not open_groups:
            return ordered
        members = rows[stacked]
        groups_of = maps.burst[members]
        pieces, start = [], 0
        for at in np.flatnonzero(np.isin(maps.burst[ordered], open_groups)):
            g = int(maps.burst[ordered[at]])
            mine = members[groups_of == g]
            mine = mine[np.argsort(maps.position[mine], kind="stable")]
            pieces += [ordered[start:at], mine]
            start = int(at) + 1
            for r in mine:
                self._edges[int(r)] = (r == mine[0], r == mine[-1])
        pieces.append(ordered[start:])
        return np.concatenate(pieces)

    def _group_preset_mask(self, preset: Preset, maps: StackMaps, level: str) -> np.ndarray:
        """A preset relative to the burst (scene): a CLIP-IQA condition's percentile range is of
        the photo's own group; pixel measures keep their absolute meaning."""
        columns = self._columns(preset)
        mask = np.zeros(len(self.table), dtype=bool)
        for condition in preset.conditions:
            column = columns.get(condition.attribute)
            if column is None:
                continue
            if condition.percentile is None:
                lo, hi = condition.absolute
            else:
                column = maps.percentiles(column, level)
                lo, hi = condition.percentile
            with np.errstate(invalid="ignore"):
                mask |= (column >= lo) & (column <= hi)
        return mask

    # --- decisions, with undo --------------------------------------------------------------------------
    def decide(self, rows: Sequence[int], change: DecisionChange) -> None:
        """Apply a culling action to table rows: shown at once, written by the writer thread,
        undoable as one step. Never waits on the catalog.

        The table shows `apply_change` of its own copy at once (for display only); the catalog
        applies the change to each photo's decision as it is at write time, so what another window
        or process did to the other fields is kept, and the table takes the catalog's values when
        the result comes back (`deliver`)."""
        if not rows:
            return
        ids = [int(self.table.ids[r]) for r in rows]
        shown = []
        for r, pid in zip(rows, ids, strict=True):
            before = self._decision_at(int(r))
            after = apply_change(before, change)
            if after != before:
                shown.append(DecisionDelta(pid, before, after))
                self._show(int(r), after)
        step = Step(tuple(ids), change, shown)
        self._undo.append(step)
        self._redo.clear()
        self._submit("apply", step)
        self.events.decisions_changed.emit(ids)

    def undo(self) -> list[int]:
        """Undo the last decision step (the fields it changed, nothing else); returns the photo ids.

        Works before the step's own write has returned: the writer runs jobs in order, so the undo
        is written after the step and finds its real deltas then."""
        if not self._undo:
            return []
        step = self._undo.pop()
        self._redo.append(step)
        return self._restore(step, "undo")

    def redo(self) -> list[int]:
        if not self._redo:
            return []
        step = self._redo.pop()
        self._undo.append(step)
        return self._restore(step, "redo")

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def saving(self) -> int:
        """Decision jobs not yet written and delivered."""
        return self.writer.pending + self._inbox.qsize()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every decision made so far is written, then deliver the results on this
        thread. False when `timeout` passed first (what was written by then is delivered)."""
        ok = self.writer.drain(timeout)
        self.deliver()
        return ok

    def close(self, timeout: float = FLUSH_SECONDS) -> bool:
        """Closing the window or switching folders: write what is queued (waiting at most `timeout`
        seconds), deliver the results, and stop the writer's thread. A job that could not start by
        then (the catalog stayed locked by another process) is reported as not saved through
        `write_failed`; a write in progress ends by itself when its retry window runs out."""
        ok = self.writer.drain(timeout)
        in_flight = self.writer.pending - len(self.writer.close(0.0 if not ok else timeout))
        self.deliver()
        if not ok and in_flight > 0:
            self.events.write_failed.emit(
                f"A decision was still waiting for the catalog after {timeout:.0f} s (another program "
                "holds it locked); it is saved only if the catalog frees up before this program ends."
            )
        return ok

    def deliver(self) -> None:
        """Apply the writer's results on the thread that owns the session (the GUI thread)."""
        while True:
            try:
                result = self._inbox.get_nowait()
            except queue.Empty:
                return
            self._apply_result(result)

    def _restore(self, step: Step, kind: JobKind) -> list[int]:
        deltas = step.display_deltas()
        show = restore_fn(deltas, "before" if kind == "undo" else "after")
        ids = []
        for d in deltas:
            i = self.row_of(d.photo_id)
            if i is not None:
                self._show(i, show(d.photo_id, self._decision_at(i)))
            ids.append(d.photo_id)
        self._submit(kind, step)
        self.events.decisions_changed.emit(ids)
        return ids

    def _submit(self, kind: JobKind, step: Step) -> None:
        for pid in step.photo_ids:
            self._pending[pid] += 1
        self._touch(step.photo_ids)
        if self.writer.closed:  # closed by a folder switch that then failed: this session goes on
            self.writer = DecisionWriter(self.catalog, self.writer.after_write)
        self.writer.submit(WriteJob(kind, step, self._post))

    def _post(self, result: WriteResult) -> None:
        """On the writer thread: queue the result for `deliver`, and wake the owner (the window
        connects `wake` to a queued Qt signal)."""
        self._inbox.put(result)
        wake = self.wake
        if wake is not None:
            wake()

    def _apply_result(self, result: WriteResult) -> None:
        job = result.job
        step, kind = job.step, job.kind
        settled = []
        for pid in step.photo_ids:
            self._pending[pid] -= 1
            if self._pending[pid] <= 0:
                del self._pending[pid]
                settled.append(pid)
        # The screen takes the catalog's values (which include other writers' fields), for photos
        # no later job is still writing (those keep showing the later change until it returns).
        fallback = None
        if result.error and not result.decisions:  # the catalog cannot even be read: undo our display
            to = "before" if kind in ("apply", "redo") else "after"
            fallback = restore_fn(step.display_deltas() if kind != "apply" else step.shown, to)
        changed = []
        for pid in settled:
            i = self.row_of(pid)
            if i is None:
                continue
            current = self._decision_at(i)
            truth = result.decisions.get(pid)
            if truth is None:
                truth = fallback(pid, current) if fallback is not None else current
            if truth != current:
                self._show(i, truth)
                changed.append(pid)
        if result.error:
            self._forget_failed(step, kind)
            what = {"apply": step.change.describe().rstrip(":"), "undo": "undo", "redo": "redo"}[kind]
            n = len(step.photo_ids)
            self.events.write_failed.emit(
                f"Not saved ({what}, {n} photo{'s' if n != 1 else ''}): {result.error}"
            )
        elif kind == "apply" and not result.deltas:  # nothing changed in the catalog: no step
            self._drop(step)
        if changed:
            self.events.decisions_changed.emit(changed)
        if result.note:
            self.events.write_note.emit(result.note)

    # --- decisions changed elsewhere ------------------------------------------------------------------
    def poll_task(self) -> Callable[[], DecisionPoll]:
        """A function that reads what changed in the catalog since this session's counter, to be
        run on another thread (it touches nothing of the session); hand its result to `apply_poll`
        on the session's thread. One poll at a time."""
        catalog, folder, recursive = self.catalog, self.folder, self.recursive
        since, load, mark = self.decision_seq, self._load, self._local
        busy, recheck = frozenset(self._pending), sorted(self._recheck)

        def poll() -> DecisionPoll:
            seq, changed = catalog.decision_changes(catalog.folder_ids(folder, recursive), since)
            if recheck:  # read after the changes: the newer values win
                changed = changed | catalog.decisions(recheck)
            return DecisionPoll(seq, changed, load, mark, busy)

        return poll

    def apply_poll(self, poll: DecisionPoll) -> list[int]:
        """Show decisions changed elsewhere; returns the photos whose shown decision changed. Rows
        update in place and the filters are applied again (`rows_changed`, then
        `decisions_changed`). A photo changed here since the poll started, or with a write of this
        session queued or in flight then or now, keeps what it shows and is read again next time.
        The undo stack stays: undo leaves a photo decided again elsewhere (decisions.restore_fn)."""
        if poll.load != self._load:
            return []  # a reload read newer rows, and its own counter, since the poll started
        skip = poll.busy.union(self._pending, (p for p, m in self._touched.items() if m > poll.mark))
        changed = []
        for pid, decision in poll.decisions.items():
            if pid in skip:
                self._recheck.add(pid)
                continue
            self._recheck.discard(pid)
            i = self.row_of(pid)
            if i is not None and self._decision_at(i) != decision:
                self._show(i, decision)
                changed.append(pid)
        self.decision_seq = poll.seq
        if changed:
            self.view = self.select()
            self.events.rows_changed.emit(changed)
            self.events.decisions_changed.emit(changed)
        return changed

    def poll_decisions(self) -> list[int]:
        """Poll on this thread (the CLI, tests): `apply_poll(poll_task()())`."""
        return self.apply_poll(self.poll_task()())

    def _touch(self, photo_ids: Sequence[int]) -> None:
        self._local += 1
        for pid in photo_ids:
            self._touched[int(pid)] = self._local

    def _forget_failed(self, step: Step, kind: JobKind) -> None:
        """A failed write: its step leaves the undo stack (an undo of it would do nothing); a
        failed undo (redo) goes back where it was, or is dropped when newer steps came since."""
        if kind == "apply":
            self._drop(step)
            return
        moved_to, back_to = (self._redo, self._undo) if kind == "undo" else (self._undo, self._redo)
        if moved_to and moved_to[-1] is step:
            back_to.append(moved_to.pop())
        else:
            self._drop(step)

    def _drop(self, step: Step) -> None:
        self._undo[:] = [s for s in self._undo if s is not step]
        self._redo[:] = [s for s in self._redo if s is not step]

    def _decision_at(self, row: int) -> Decision:
        t = self.table
        return Decision(int(t.rating[row]), bool(t.picked[row]), t.labels[row])

    def _show(self, row: int, d: Decision) -> None:
        self.table.rating[row] = d.rating
        self.table.picked[row] = d.picked
        self.table.labels[row] = d.label

    def _keep_pending(self) -> dict[int, Decision]:
        """The shown decisions of photos whose write has not returned (a reload must not flash
        the catalog's older values until it does)."""
        out = {}
        for pid in self._pending:
            i = self.row_of(pid)
            if i is not None:
                out[pid] = self._decision_at(i)
        return out

    def _put_back(self, kept: dict[int, Decision]) -> None:
        for pid, d in kept.items():
            i = self.row_of(pid)
            if i is not None:
                self._show(i, d)

    # --- custom prompts ----------------------------------------------------------------------------
    def add_prompt_scores(self, pair: AttributePair, photo_ids: np.ndarray, values: np.ndarray) -> None:
        """Show a custom pair's scores (computed from stored embeddings) as a column."""
        self._custom[pair.key] = (pair, photo_ids, values)
        self.table.add_scores(pair.key, photo_ids, values)
        self.view = self.select()
        self.events.columns_changed.emit()
        self.events.rows_changed.emit(None)

    def rescore_prompts(self) -> None:
        """Recompute the custom prompt columns from the stored embeddings (after an index run
        rescored photos). Their text features are cached in the catalog, so no model is needed."""
        if not self._custom or self.analysis_id is None:
            return

        def cached_only(texts: list[str]) -> np.ndarray:
            raise LookupError(f"text features of {texts} are not cached")

        pairs = [pair for pair, _ids, _values in self._custom.values()]
        try:
            ids, values = prompt_scores(self.catalog, self.folder_ids(), self.analysis_id, pairs, cached_only)
        except LookupError:
            return  # keep the columns as they were; a new "Score and sort" recomputes them
        for j, pair in enumerate(pairs):
            self._custom[pair.key] = (pair, ids, values[:, j])
        self._restore_custom()
        self.view = self.select()
        self.events.rows_changed.emit(None)

    @property
    def sort_keys(self) -> list[str]:
        return [*self.table.attributes, "name", "captured", "rating"]
