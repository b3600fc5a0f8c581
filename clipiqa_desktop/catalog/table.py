"""An in-memory, column-oriented view of a folder's photos for sorting and filtering.

Loading 20,000 photos takes one query; sorting and filtering then run in numpy in milliseconds, which
is what the grid needs (a sort must feel instant) and what `list`/`export` use too. Missing scores
are NaN and sort last in either direction.
"""

from __future__ import annotations

import operator
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .records import LABELS, STATUSES, ScoreMatrix

NON_SCORE_KEYS = ("name", "captured", "rating", "path")


@dataclass
class PhotoTable:
    ids: np.ndarray  # int64
    paths: list[str]
    status: list[str]
    errors: list[str | None]
    captured_at: list[str | None]
    rating: np.ndarray  # int8: -1 rejected, 0 unrated, 1..5
    picked: np.ndarray  # bool
    labels: list[str | None]
    attributes: list[str] = field(default_factory=list)
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))  # (N, K), NaN = none

    # Names as shown and sorted: the path inside the indexed folder ("sub/IMG_1.JPG"), so equal file
    # names in two sub-folders stay apart; the file name when a table is built without them.
    names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.names) != len(self.paths):
            self.names = [os.path.basename(p) for p in self.paths]

    def __len__(self) -> int:
        return len(self.ids)

    def score_column(self, key: str) -> np.ndarray:
        return self.scores[:, self.attributes.index(key)]

    def add_scores(self, key: str, photo_ids: np.ndarray, values: np.ndarray) -> None:
        """Add (or replace) a score column, e.g. a custom prompt scored from stored embeddings."""
        col = np.full(len(self), np.nan, dtype=np.float32)
        pos = {int(pid): i for i, pid in enumerate(self.ids)}
        for pid, v in zip(photo_ids, values, strict=True):
            i = pos.get(int(pid))
            if i is not None:
                col[i] = v
        if key in self.attributes:
            self.scores[:, self.attributes.index(key)] = col
        else:
            self.attributes.append(key)
            base = self.scores if self.scores.size else np.zeros((len(self), 0), np.float32)
            self.scores = np.concatenate([base, col[:, None]], axis=1)

    def merge(self, other: PhotoTable) -> None:
        """Update rows whose id is in `other` and append the rest (same attribute columns)."""
        if len(other) == 0:
            return
        if other.attributes != self.attributes:
            raise ValueError("cannot merge tables with different score columns")
        pos = {int(pid): i for i, pid in enumerate(self.ids)}
        new = [j for j, pid in enumerate(other.ids) if int(pid) not in pos]
        for j, pid in enumerate(other.ids):
            i = pos.get(int(pid))
            if i is None:
                continue
            self.paths[i], self.status[i], self.errors[i] = other.paths[j], other.status[j], other.errors[j]
            self.names[i] = other.names[j]
            self.captured_at[i], self.labels[i] = other.captured_at[j], other.labels[j]
            self.rating[i], self.picked[i] = other.rating[j], other.picked[j]
            self.scores[i] = other.scores[j]
        if new:
            self.ids = np.concatenate([self.ids, other.ids[new]])
            for name in ("paths", "names", "status", "errors", "captured_at", "labels"):
                getattr(self, name).extend(getattr(other, name)[j] for j in new)
            self.rating = np.concatenate([self.rating, other.rating[new]])
            self.picked = np.concatenate([self.picked, other.picked[new]])
            base = self.scores.reshape(len(self.ids) - len(new), len(self.attributes))
            self.scores = np.concatenate([base, other.scores[new]])

    def scores_of(self, row: int) -> dict[str, float]:
        return {
            k: float(v) for k, v in zip(self.attributes, self.scores[row], strict=True) if not np.isnan(v)
        }


class QueryError(ValueError):
    """A --where or --sort the user gave does not make sense for this table."""


_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
    "==": operator.eq,
    "=": operator.eq,
}
_WHERE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|!=|==|<|>|=)\s*(.+?)\s*$")


@dataclass(frozen=True)
class Filter:
    """One condition such as `sharpness<0.3`, `rating>=3`, `label=Red`, `status=error`, `picked=1`."""

    key: str
    op: str
    value: str

    def __str__(self) -> str:
        return f"{self.key}{self.op}{self.value}"


def parse_where(text: str) -> Filter:
    m = _WHERE.match(text)
    if not m:
        raise QueryError(f"cannot read condition {text!r}; write it like 'sharpness<0.3' or 'rating>=3'")
    return Filter(m.group(1), m.group(2), m.group(3).strip("'\""))


def _mask(table: PhotoTable, f: Filter) -> np.ndarray:
    op = _OPS[f.op]
    if f.key in ("label", "status"):
        if f.op not in ("=", "==", "!="):
            raise QueryError(f"{f.key} can only be compared with = or !=")
        values = table.labels if f.key == "label" else table.status
        want = f.value.capitalize() if f.key == "label" else f.value.lower()
        if f.key == "label" and want not in LABELS and want != "None":
            raise QueryError(f"unknown label {f.value!r}; labels are {', '.join(LABELS)}")
        if f.key == "status" and want not in STATUSES:
            raise QueryError(
                f"unknown status {f.value!r}; a photo's status is one of {', '.join(STATUSES)} "
                "(ok = scored, error = cannot be read, missing = file gone)"
            )
        return np.array([op(str(v), want) for v in values], dtype=bool)
    try:
        number = float(f.value)
    except ValueError:
        raise QueryError(f"{f} compares {f.key} with {f.value!r}, which is not a number") from None
    if f.key == "rating":
        return np.asarray(op(table.rating, number), dtype=bool)
    if f.key == "picked":
        return np.asarray(op(table.picked.astype(np.int8), number), dtype=bool)
    if f.key not in table.attributes:
        known = ", ".join([*table.attributes, "rating", "picked", "label", "status"])
        hint = ""
        if not table.attributes:
            hint = " (this folder has no scores yet)"
        raise QueryError(f"unknown field {f.key!r} in {f}{hint}; known: {known}")
    col = table.score_column(f.key)
    with np.errstate(invalid="ignore"):
        return np.asarray(op(col, number), dtype=bool) & ~np.isnan(col)


def select_rows(
    table: PhotoTable, filters: Sequence[Filter] = (), sort: str | None = None, descending: bool = False
) -> np.ndarray:
    """Row indices that pass every filter, in the requested order (stable; missing scores last)."""
    mask = np.ones(len(table), dtype=bool)
    for f in filters:
        mask &= _mask(table, f)
    return sort_rows(table, np.flatnonzero(mask), sort or "path", descending)


def sort_rows(table: PhotoTable, rows: np.ndarray, key: str, descending: bool = False) -> np.ndarray:
    """`rows` ordered by a score (missing scores last either way), name, captured, rating or path.

    The one sort of the project: `list`, `export` and the window's grid all use it.
    """
    if key in table.attributes:
        col = table.score_column(key)[rows]
        present = ~np.isnan(col)
        order = np.argsort(-col[present] if descending else col[present], kind="stable")
        return np.concatenate([rows[present][order], rows[~present]])
    keys: np.ndarray
    if key == "path":
        keys = np.array(table.paths)
    elif key == "name":
        keys = np.array([n.lower() for n in table.names])
    elif key == "captured":  # photos without a capture time first, then by name
        keys = np.array(
            [f"{c or ''}\x00{n.lower()}" for c, n in zip(table.captured_at, table.names, strict=True)]
        )
    elif key == "rating":
        keys = table.rating.astype(np.int64)
    else:
        raise QueryError(
            f"cannot sort by {key!r}; choose an attribute ({', '.join(table.attributes)}) "
            f"or one of {', '.join(NON_SCORE_KEYS)}"
        )
    if len(rows) == 0:
        return rows
    order = np.argsort(keys[rows], kind="stable")
    return rows[order[::-1]] if descending else rows[order]


def build_table(rows: Sequence[tuple], scores: ScoreMatrix, attributes: Sequence[str]) -> PhotoTable:
    """Assemble a PhotoTable from Catalog.rows() output (rows ordered by photo id)."""
    n = len(rows)
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)
    matrix = np.full((n, len(attributes)), np.nan, dtype=np.float32)
    if len(scores.photo_ids) and n:
        pos = np.searchsorted(ids, scores.photo_ids)
        pos = np.clip(pos, 0, n - 1)
        found = ids[pos] == scores.photo_ids
        for j, attr in enumerate(attributes):
            if attr in scores.attributes:
                matrix[pos[found], j] = scores.values[found, scores.attributes.index(attr)]
    return PhotoTable(
        ids=ids,
        paths=[os.path.join(r[1], r[2]) for r in rows],
        status=[str(r[3]) for r in rows],
        errors=[r[4] for r in rows],
        captured_at=[r[5] for r in rows],
        rating=np.fromiter((r[8] for r in rows), dtype=np.int8, count=n),
        picked=np.fromiter((bool(r[9]) for r in rows), dtype=bool, count=n),
        labels=[r[10] for r in rows],
        attributes=list(attributes),
        scores=matrix,
        names=[str(r[2]) for r in rows],
    )
