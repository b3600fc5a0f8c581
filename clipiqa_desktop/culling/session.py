"""A culling session on one folder: the table the grid shows, filters, sort, decisions with undo.

Qt-free, so the window and the tests drive the same logic. The table is loaded once from the
catalog (one query) and kept in memory; sorting and filtering run in numpy (milliseconds for 20,000
photos); rows written by a running indexer are merged in by id. Every decision is written to the
catalog at once, and recorded on an undo stack.

The session is the model of the window (napari's model/view split): it knows nothing of Qt and
announces every change through plain-Python events (`session.events`), to which the grid, the
loupe, the filter panel and the status bar subscribe:

- `view_changed()`: the sort or the filters changed; the whole view was recomputed.
- `rows_changed(ids)`: the indexer added, rescored or removed rows (ids = the photos whose data
  changed, None = possibly all); the view was recomputed, and a view can apply it row by row.
- `decisions_changed(ids)`: ratings, picks or labels of these photos changed (also undo/redo).
- `columns_changed()`: the score columns changed (a custom prompt pair, a new analysis).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..catalog import Catalog, PhotoTable, build_table
from ..catalog.records import DecisionDelta, ScoreMatrix
from ..catalog.table import sort_rows
from ..catalog.transaction import DecisionChangeFn
from ..scoring.attributes import DEFAULT_ATTRIBUTES, AttributePair
from .decisions import DecisionChange, change_fn, restore_fn
from .prompts import prompt_scores


def column_order(attributes: Sequence[str]) -> list[str]:
    """Score columns in the registry's order, then custom prompt keys alphabetically."""
    present = set(attributes)
    return [a for a in DEFAULT_ATTRIBUTES if a in present] + sorted(present - set(DEFAULT_ATTRIBUTES))


@dataclass(frozen=True)
class Preset:
    """A one-click filter: a score range, absolute or as percentiles of the shoot."""

    name: str
    attribute: str
    absolute: tuple[float, float]
    percentile: tuple[float, float]


PRESETS: tuple[Preset, ...] = (
    Preset("Blurry", "sharpness", (0.0, 0.35), (0.0, 15.0)),
    Preset("Too dark", "brightness", (0.0, 0.25), (0.0, 10.0)),
    Preset("Too bright", "brightness", (0.8, 1.0), (90.0, 100.0)),
    Preset("Noisy", "noisiness", (0.6, 1.0), (85.0, 100.0)),
    Preset("Low quality", "quality", (0.0, 0.4), (0.0, 15.0)),
)


@dataclass(frozen=True)
class FilterState:
    """Everything the filter panel can ask for. Ranges are inclusive; with `relative` they are
    percentiles (0..100) of this shoot's scores instead of absolute scores (0..1)."""

    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    relative: bool = False
    flags: frozenset[str] = frozenset()  # subset of {"picked", "rejected", "unflagged"}; empty = all
    min_rating: int = 0  # 1..5 to require stars
    label: str | None = None
    statuses: frozenset[str] = frozenset({"ok", "error"})  # missing photos are hidden by default

    @property
    def active(self) -> bool:
        return bool(self.ranges or self.flags or self.min_rating or self.label)


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


@dataclass
class _Undo:
    deltas: list[DecisionDelta]  # what the step did, field by field, as the catalog applied it


class CullingSession:
    """The photos of one folder as the grid sees them. Rows are indices into `table`.

    With `recursive`, the photos of every sub-folder of `folder` are part of the session too."""

    def __init__(self, catalog: Catalog, folder: Path, recursive: bool = False) -> None:
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
        self._undo: list[_Undo] = []
        self._redo: list[_Undo] = []
        self._custom: dict[str, tuple[AttributePair, np.ndarray, np.ndarray]] = {}
        self._row_of: dict[int, int] = {}
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
        rows, scores = self.catalog.rows(self.folder_ids(), self.analysis_id)
        self.table = build_table(rows, scores, column_order(scores.attributes) or list(DEFAULT_ATTRIBUTES))
        self._row_of = {}
        self._restore_custom()
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
        self.table.merge(fresh)
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
        self.filters = filters
        self.refresh()

    def select(self) -> np.ndarray:
        return sort_rows(self.table, np.flatnonzero(self._mask()), self.sort_key, self.descending)

    def _mask(self) -> np.ndarray:
        t, f = self.table, self.filters
        mask = np.isin(np.array(t.status, dtype=object), list(f.statuses)) if len(t) else np.zeros(0, bool)
        for attr, (lo, hi) in f.ranges.items():
            lo_abs, hi_abs = self.absolute_range(attr, lo, hi)
            col = t.score_column(attr) if attr in t.attributes else np.full(len(t), np.nan)
            with np.errstate(invalid="ignore"):
                mask &= (col >= lo_abs) & (col <= hi_abs)
        if f.flags:
            flag = np.where(t.rating == -1, "rejected", np.where(t.picked, "picked", "unflagged"))
            mask &= np.isin(flag, list(f.flags))
        if f.min_rating:
            mask &= t.rating >= f.min_rating
        if f.label:
            mask &= np.array([lab == f.label for lab in t.labels], dtype=bool)
        return mask

    def absolute_range(self, attr: str, lo: float, hi: float) -> tuple[float, float]:
        """A filter range in score units (percentiles of the shoot are converted when `relative`)."""
        if not self.filters.relative or attr not in self.table.attributes:
            return lo, hi
        col = self.table.score_column(attr)
        col = col[~np.isnan(col)]
        if col.size == 0:
            return lo, hi
        a, b = np.percentile(col, [lo, hi])
        return float(a), float(b)

    def why(self, row: int) -> list[str]:
        """Why table row `row` passes the active score filters, e.g. 'sharpness 0.12 ≤ 0.35'."""
        out = []
        for attr, (lo, hi) in self.filters.ranges.items():
            if attr not in self.table.attributes:
                continue
            value = float(self.table.score_column(attr)[row])
            lo_abs, hi_abs = self.absolute_range(attr, lo, hi)
            unit = f" (percentiles {lo:.0f}–{hi:.0f} of this shoot)" if self.filters.relative else ""
            if lo_abs > 0.0 and hi_abs < 1.0:
                out.append(f"{attr} {lo_abs:.2f} ≤ {value:.2f} ≤ {hi_abs:.2f}{unit}")
            elif hi_abs < 1.0:
                out.append(f"{attr} {value:.2f} ≤ {hi_abs:.2f}{unit}")
            else:
                out.append(f"{attr} {value:.2f} ≥ {lo_abs:.2f}{unit}")
        return out

    # --- decisions, with undo --------------------------------------------------------------------------
    def decide(self, rows: Sequence[int], change: DecisionChange) -> None:
        """Apply a culling action to table rows; saved at once; undoable as one step.

        The catalog applies the change to each photo's decision as it is at write time (not to this
        table's copy), so what another window or process did to the other fields is kept."""
        if not rows:
            return
        ids = [int(self.table.ids[r]) for r in rows]
        deltas = self._write(ids, change_fn(change))
        if deltas:
            self._undo.append(_Undo(deltas))
            self._redo.clear()
        self.events.decisions_changed.emit(ids)

    def undo(self) -> list[int]:
        """Undo the last decision step (the fields it changed, nothing else); returns the photo ids."""
        if not self._undo:
            return []
        step = self._undo[-1]
        ids = [d.photo_id for d in step.deltas]
        self._write(ids, restore_fn(step.deltas, "before"))  # a failed write raises; the step stays
        self._redo.append(self._undo.pop())
        self.events.decisions_changed.emit(ids)
        return ids

    def redo(self) -> list[int]:
        if not self._redo:
            return []
        step = self._redo[-1]
        ids = [d.photo_id for d in step.deltas]
        self._write(ids, restore_fn(step.deltas, "after"))
        self._undo.append(self._redo.pop())
        self.events.decisions_changed.emit(ids)
        return ids

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def _write(self, ids: list[int], change: DecisionChangeFn) -> list[DecisionDelta]:
        """Apply `change` in the catalog, then show every photo's decision as the catalog now has it
        (which includes what other writers did)."""
        deltas = self.catalog.update_decisions(ids, change)
        now = self.catalog.decisions(ids)
        for pid, d in now.items():
            i = self.row_of(pid)
            if i is not None:
                self.table.rating[i] = d.rating
                self.table.picked[i] = d.picked
                self.table.labels[i] = d.label
        return deltas

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
