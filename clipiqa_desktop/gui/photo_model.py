"""The grid's item model: one row per photo of the session's current view (sorted and filtered).

The model follows the session's events. A new sort or filter is one model reset (20,000 ints); rows
that a running indexer adds, rescores or removes are applied row by row (rowsRemoved, a layout
change when their order moved, rowsInserted, dataChanged), so the selection, the current photo and
the scroll position stay where they were; decisions are dataChanged of their rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt

from ..culling.session import CullingSession
from .thumbnails import ThumbnailCache

PhotoIdRole = Qt.ItemDataRole.UserRole + 1
BadgeRole = Qt.ItemDataRole.UserRole + 2  # the current sort attribute's value, or None
DecisionRole = Qt.ItemDataRole.UserRole + 3  # (rating, picked, label)
StatusRole = Qt.ItemDataRole.UserRole + 4  # "ok" | "error" | "missing"
TableRowRole = Qt.ItemDataRole.UserRole + 5
StackRole = Qt.ItemDataRole.UserRole + 6  # culling.stacks.StackInfo of a grouped photo, or None

Index = QModelIndex | QPersistentModelIndex

# An update scattered over more runs of rows than this is shown with one reset instead (a reset
# costs one layout; hundreds of separate inserts would each cost one).
MAX_RUNS = 200


def _runs(positions: np.ndarray) -> list[tuple[int, int]]:
    """Sorted positions as inclusive (first, last) runs of consecutive values."""
    if not len(positions):
        return []
    breaks = np.flatnonzero(np.diff(positions) != 1)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(positions) - 1]])
    return [(int(positions[a]), int(positions[b])) for a, b in zip(starts, ends, strict=True)]


class PhotoGridModel(QAbstractListModel):
    """Rows are the photo ids of `session.view`, in order; the data is read from the session's table."""

    def __init__(
        self, session: CullingSession | None, thumbs: ThumbnailCache | None, parent: Any = None
    ) -> None:
        super().__init__(parent)
        self.session: CullingSession | None = None
        self.thumbs = thumbs
        self._ids: np.ndarray = np.zeros(0, dtype=np.int64)
        self._pos: dict[int, int] | None = {}
        self.resets = 0  # how many times the model was reset (tests check merges do not reset)
        if thumbs is not None:
            thumbs.ready.connect(self._thumbnail_ready)
        self.set_session(session)

    # --- Qt model API -----------------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        if parent.isValid():
            return 0
        return len(self._ids)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        s = self.session
        if s is None or not index.isValid() or not 0 <= index.row() < len(self._ids):
            return None
        pid = int(self._ids[index.row()])
        if role == PhotoIdRole:
            return pid
        row = s.row_of(pid)
        if row is None:
            return None
        t = s.table
        if role == Qt.ItemDataRole.DisplayRole:
            return t.names[row] if len(t.names) > row else ""
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbs.pixmap(pid) if self.thumbs is not None else None
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row)
        if role == TableRowRole:
            return row
        if role == BadgeRole:
            if s.sort_key in t.attributes:
                value = float(t.score_column(s.sort_key)[row])
                return None if np.isnan(value) else value
            return None
        if role == DecisionRole:
            return (int(t.rating[row]), bool(t.picked[row]), t.labels[row])
        if role == StatusRole:
            return t.status[row]
        if role == StackRole:
            return s.stack_info(row)
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    # --- following the session -------------------------------------------------------------------
    def set_session(self, session: CullingSession | None) -> None:
        old = self.session
        if old is not None:
            old.events.view_changed.disconnect(self.view_changed)
            old.events.rows_changed.disconnect(self.apply_rows)
            old.events.decisions_changed.disconnect(self.rows_changed)
        self.beginResetModel()
        self.session = session
        self._ids = self._session_ids()
        self._pos = None
        self.endResetModel()
        if session is not None:
            session.events.view_changed.connect(self.view_changed)
            session.events.rows_changed.connect(self.apply_rows)
            session.events.decisions_changed.connect(self.rows_changed)

    def view_changed(self) -> None:
        """The session re-sorted or re-filtered: show the new view in one reset."""
        self.beginResetModel()
        self._ids = self._session_ids()
        self._pos = None
        self.resets += 1
        self.endResetModel()

    def apply_rows(self, changed: Sequence[int] | None) -> None:
        """The session merged indexed rows (`changed` ids, None = any): move to the new view row by
        row — removals, a layout change if the order of the remaining rows moved, insertions, and
        dataChanged — so that views keep their selection and scroll position."""
        new = self._session_ids()
        old = self._ids
        keep = np.isin(old, new)
        added = ~np.isin(new, old)
        removed_runs = _runs(np.flatnonzero(~keep))
        added_runs = _runs(np.flatnonzero(added))
        if len(removed_runs) + len(added_runs) > MAX_RUNS:
            self.view_changed()
            return
        for first, last in reversed(removed_runs):
            self.beginRemoveRows(QModelIndex(), first, last)
            self._ids = np.concatenate([self._ids[:first], self._ids[last + 1 :]])
            self._pos = None
            self.endRemoveRows()
        staying = new[~added]
        if not np.array_equal(self._ids, staying):
            self._move_to(staying)
        for first, last in added_runs:
            self.beginInsertRows(QModelIndex(), first, last)
            self._ids = np.concatenate([self._ids[:first], new[first : last + 1], self._ids[first:]])
            self._pos = None
            self.endInsertRows()
        if changed is None:
            if len(self._ids):
                self.dataChanged.emit(self.index(0), self.index(len(self._ids) - 1))
        else:
            self.rows_changed(changed)

    def _move_to(self, order: np.ndarray) -> None:
        """Reorder the rows (same ids, another order) as a layout change, moving persistent indexes."""
        self.layoutAboutToBeChanged.emit()
        before = self.persistentIndexList()
        old_ids = [int(self._ids[i.row()]) for i in before]
        self._ids = order
        self._pos = None
        after = [self.index(self.row_of(pid) or 0) for pid in old_ids]
        self.changePersistentIndexList(before, after)
        self.layoutChanged.emit()

    def rows_changed(self, photo_ids: Sequence[int]) -> None:
        """Decisions or scores of these photos changed in place."""
        rows = sorted(r for pid in photo_ids if (r := self.row_of(int(pid))) is not None)
        for first, last in _runs(np.asarray(rows, dtype=np.int64)):
            self.dataChanged.emit(self.index(first), self.index(last))

    def row_of(self, photo_id: int) -> int | None:
        if self._pos is None:
            self._pos = {int(pid): i for i, pid in enumerate(self._ids)}
        return self._pos.get(photo_id)

    def photo_id(self, row: int) -> int:
        return int(self._ids[row])

    def _session_ids(self) -> np.ndarray:
        return np.zeros(0, dtype=np.int64) if self.session is None else self.session.view_ids.copy()

    def _thumbnail_ready(self, photo_id: int) -> None:
        r = self.row_of(photo_id)
        if r is not None:
            idx = self.index(r)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])

    def _tooltip(self, row: int) -> str:
        s = self.session
        assert s is not None
        t = s.table
        lines = [t.paths[row]]
        if t.status[row] == "error":
            lines.append(f"error: {t.errors[row]}")
        elif t.status[row] == "missing":
            lines.append("missing: the file is gone (its decisions are kept)")
        stack = s.stack_tooltip(row)
        if stack:
            lines += [*stack, ""]
        scores = t.scores_of(row)
        lines += [f"{k}: {v:.3f}" for k, v in scores.items()]
        why = s.why(row)
        if why:
            lines += ["", "shown because:", *why]
        return "\n".join(lines)
