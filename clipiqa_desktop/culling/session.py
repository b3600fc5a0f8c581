"""A culling session on one folder: the table the grid shows, filters, sort, decisions with undo.

Qt-free, so the window and the tests drive the same logic. The table is loaded once from the
catalog (one query) and kept in memory; sorting and filtering run in numpy (milliseconds for 20,000
photos); rows written by a running indexer are merged in by id. Every decision is written to the
catalog at once, and recorded on an undo stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..catalog import Catalog, Decision, PhotoTable, build_table
from ..catalog.records import ScoreMatrix
from ..catalog.table import sort_rows
from ..scoring.attributes import DEFAULT_ATTRIBUTES, AttributePair
from .decisions import DecisionChange, apply_change


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


@dataclass
class _Undo:
    before: dict[int, Decision]
    after: dict[int, Decision]


class CullingSession:
    """The photos of one folder as the grid sees them. Rows are indices into `table`."""

    def __init__(self, catalog: Catalog, folder: Path) -> None:
        self.catalog = catalog
        self.folder = Path(folder).expanduser().resolve()
        self.folder_id = catalog.folder_id(self.folder)
        self.analysis_id: int | None = None
        self.table: PhotoTable = build_table([], ScoreMatrix.empty(), [])
        self.filters = FilterState()
        self.sort_key = "name"
        self.descending = False
        self.view: np.ndarray = np.zeros(0, dtype=np.int64)  # table rows shown, in order
        self._undo: list[_Undo] = []
        self._redo: list[_Undo] = []
        self._custom: dict[str, tuple[AttributePair, np.ndarray, np.ndarray]] = {}
        self._row_of: dict[int, int] = {}
        self.reload()

    # --- loading -----------------------------------------------------------------------------------
    def reload(self) -> None:
        """Read the whole folder from the catalog (one query) and re-apply sort and filters."""
        assert self.folder_id is not None
        previous = self.analysis_id
        tree = self.catalog.folder_ids(self.folder, recursive=True)  # a folder row per real directory
        self.analysis_id = self.catalog.last_analysis(tree)
        if self.analysis_id != previous:
            self._custom.clear()  # prompt scores belong to the embeddings of one analysis
        rows, scores = self.catalog.rows(tree, self.analysis_id)
        self.table = build_table(rows, scores, column_order(scores.attributes) or list(DEFAULT_ATTRIBUTES))
        self._row_of = {}
        for _pair, ids, values in self._custom.values():  # custom prompt columns survive a reload
            self.table.add_scores(_pair.key, ids, values)
        self.refresh()

    def merge(self, photo_ids: Sequence[int]) -> None:
        """Bring in rows the indexer just wrote (new photos or new scores), keeping everything else."""
        assert self.folder_id is not None
        if self.analysis_id is None:
            self.analysis_id = self.catalog.last_analysis(self.folder_id)
        tree = self.catalog.folder_ids(self.folder, recursive=True)
        rows, scores = self.catalog.rows(tree, self.analysis_id, photo_ids=list(photo_ids))
        fresh = build_table(rows, scores, self.table.attributes)
        self.table.merge(fresh)
        self.refresh()

    # --- the view ------------------------------------------------------------------------------------
    def refresh(self) -> None:
        self.view = self.select()

    def row_of(self, photo_id: int) -> int | None:
        """The table row of a photo id (the map is rebuilt when the table grows)."""
        if len(self._row_of) != len(self.table):
            self._row_of = {int(pid): i for i, pid in enumerate(self.table.ids)}
        return self._row_of.get(int(photo_id))

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
        """Apply a culling action to table rows; saved at once; undoable as one step."""
        if not rows:
            return
        ids = [int(self.table.ids[r]) for r in rows]
        current = {pid: self._decision_of(r) for pid, r in zip(ids, rows, strict=True)}
        after = {pid: apply_change(d, change) for pid, d in current.items()}
        self._write(after)
        self._undo.append(_Undo(current, after))
        self._redo.clear()

    def undo(self) -> list[int]:
        """Undo the last decision step; returns the photo ids it touched."""
        if not self._undo:
            return []
        step = self._undo[-1]
        self._write(step.before)  # a failed write raises and leaves the step where it was
        self._redo.append(self._undo.pop())
        return list(step.before)

    def redo(self) -> list[int]:
        if not self._redo:
            return []
        step = self._redo[-1]
        self._write(step.after)
        self._undo.append(self._redo.pop())
        return list(step.after)

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def _decision_of(self, row: int) -> Decision:
        t = self.table
        return Decision(int(t.rating[row]), bool(t.picked[row]), t.labels[row])

    def _write(self, decisions: dict[int, Decision]) -> None:
        self.catalog.set_decisions(decisions)
        for pid, d in decisions.items():
            i = self.row_of(pid)
            if i is not None:
                self.table.rating[i] = d.rating
                self.table.picked[i] = d.picked
                self.table.labels[i] = d.label

    # --- custom prompts ----------------------------------------------------------------------------
    def add_prompt_scores(self, pair: AttributePair, photo_ids: np.ndarray, values: np.ndarray) -> None:
        """Show a custom pair's scores (computed from stored embeddings) as a column."""
        self._custom[pair.key] = (pair, photo_ids, values)
        self.table.add_scores(pair.key, photo_ids, values)

    @property
    def sort_keys(self) -> list[str]:
        return [*self.table.attributes, "name", "captured", "rating"]
