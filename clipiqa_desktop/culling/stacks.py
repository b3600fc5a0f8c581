"""Stacks in the culling view: a burst shown as one cell (its best frame) with its count, the best
frame of each group marked, and filter ranges in percentiles of the photo's own burst or scene.

Qt-free and numpy only: the session (culling/session.py) calls these over its whole table on every
re-selection (vectorised: a few ms for 20,000 photos), so nothing is cached that could go stale.

`StackMaps` aligns a `groups.Grouping` (rows = `GroupInputs` ids) with the session's table rows
(missing photos and rows merged in since the grouping have no group: −1, shown alone).

Which frame stands for a collapsed stack: the best member by the "best by" attribute among the
members that pass the filters; so when a filter hides the best frame but matches other members, the
stack is shown by its best *matching* member (its count still says how many frames the burst has).
Members without a value go after those with one, in capture order. An exposure bracket or focus
stack has no best frame: it is shown by its first matching frame in capture order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .groups import KEPT_WHOLE, Grouping, group_of, group_percentiles, group_ranks

RELATIVE_TO = ("shoot", "burst", "scene")


@dataclass(frozen=True)
class StackInfo:
    """What the grid needs to draw one cell of a grouped photo."""

    group: int  # index into Grouping.bursts
    kind: str  # burst | bracket | focus_stack | single
    count: int  # frames in the group
    best: bool  # this frame is its group's best by the "best by" attribute
    collapsed: bool  # the cell stands for the whole (collapsed) stack
    expanded: bool  # the cell is a member of an expanded stack
    first: bool = False  # first / last cell of an expanded stack in the view
    last: bool = False


class StackMaps:
    """A grouping seen from the table: group per row, capture position per row, the best row of
    each burst-level group by `values`."""

    def __init__(self, grouping: Grouping, table_ids: np.ndarray, values: np.ndarray) -> None:
        ids = np.asarray(table_ids, dtype=np.int64)
        self.grouping = grouping
        self.burst = group_of(grouping, "burst", ids)
        self.scene = group_of(grouping, "scene", ids)
        position = np.empty(len(grouping.ids), dtype=np.int64)
        position[grouping.order] = np.arange(len(grouping.ids))
        pos = np.searchsorted(grouping.ids, ids)
        pos = np.clip(pos, 0, max(len(grouping.ids) - 1, 0))
        known = (grouping.ids[pos] == ids) if len(grouping.ids) else np.zeros(len(ids), bool)
        self.position = np.full(len(ids), np.iinfo(np.int64).max, dtype=np.int64)
        self.position[known] = position[pos[known]]
        self.sizes = np.array([len(g) for g in grouping.bursts], dtype=np.int64)
        self.whole = np.array([g.kind in KEPT_WHOLE for g in grouping.bursts], dtype=bool)
        self.values = np.asarray(values, dtype=np.float64)
        self.best = _first_per_group(self.burst, self.values, self.position, len(grouping.bursts), False)
        self.best[self.whole] = -1  # a bracket's frames belong together: none is "best"
        self.is_best = np.zeros(len(ids), dtype=bool)
        self.is_best[self.best[self.best >= 0]] = True

    def stacked(self, rows: np.ndarray) -> np.ndarray:
        """Of `rows`, those in a group of more than one frame."""
        g = self.burst[rows]
        if not len(self.sizes):  # a grouping of an empty folder: every photo is new to it
            return np.zeros(len(rows), dtype=bool)
        return (g >= 0) & (self.sizes[np.maximum(g, 0)] > 1)

    def representatives(self, rows: np.ndarray) -> np.ndarray:
        """Per burst-level group among `rows` (the rows passing the filters): the row standing for
        it, -1 for a group none of whose members is among `rows` (see the module docstring)."""
        burst = np.full(len(self.burst), -1, dtype=np.int64)
        burst[rows] = self.burst[rows]
        values = self.values.copy()
        if not len(self.sizes):
            return np.zeros(0, dtype=np.int64)
        whole_rows = (burst >= 0) & self.whole[np.maximum(burst, 0)]
        values[whole_rows] = np.nan  # capture order only
        return _first_per_group(burst, values, self.position, len(self.sizes), True)

    def percentiles(self, column: np.ndarray, level: str) -> np.ndarray:
        """Each value as a percentile (0..100) of its own burst or scene (groups.group_percentiles)."""
        return group_percentiles(column, self.burst if level == "burst" else self.scene)

    def rank(self, column: np.ndarray, level: str, row: int) -> tuple[int, int]:
        """(rank, size) of one row's value within its burst or scene (0, 0: no value or group)."""
        rank, size = group_ranks(column, self.burst if level == "burst" else self.scene)
        return int(rank[row]), int(size[row])


def _first_per_group(
    group: np.ndarray, values: np.ndarray, position: np.ndarray, n_groups: int, nan_too: bool
) -> np.ndarray:
    """Per group: the row with the highest value (ties: the earlier frame); with `nan_too` rows
    without a value count too, after those with one, in capture order; -1 when a group has none."""
    out = np.full(n_groups, -1, dtype=np.int64)
    valid = group >= 0
    if not nan_too:
        valid &= ~np.isnan(values)
    rows = np.flatnonzero(valid)
    if not len(rows):
        return out
    v = values[rows]
    key = np.where(np.isnan(v), np.inf, -v)
    order = rows[np.lexsort((position[rows], key, group[rows]))]
    g = group[order]
    starts = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
    out[g[starts]] = order[starts]
    return out


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 21st."""
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def kind_text(kind: str, count: int) -> str:
    """'exposure bracket of 3 frames: kept together', 'burst of 7 frames'."""
    if kind == "bracket":
        return f"exposure bracket of {count} frames: kept together"
    if kind == "focus_stack":
        return f"focus stack of {count} frames: kept together"
    if kind == "burst":
        return f"burst of {count} frames"
    return "a frame alone (no burst)"
