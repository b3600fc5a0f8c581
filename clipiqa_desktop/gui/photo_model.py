"""The grid's item model: one row per photo of the session's current view (sorted and filtered)."""

from __future__ import annotations

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

Index = QModelIndex | QPersistentModelIndex


class PhotoGridModel(QAbstractListModel):
    """Rows are `session.view`; nothing is copied, so a re-sort is one reset of 20,000 ints."""

    def __init__(
        self, session: CullingSession | None, thumbs: ThumbnailCache | None, parent: Any = None
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.thumbs = thumbs
        self._row_of: dict[int, int] = {}
        if thumbs is not None:
            thumbs.ready.connect(self._thumbnail_ready)
        self._reindex()

    # --- Qt model API -----------------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        if parent.isValid() or self.session is None:
            return 0
        return len(self.session.view)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        s = self.session
        if s is None or not index.isValid() or not 0 <= index.row() < len(s.view):
            return None
        row = int(s.view[index.row()])
        t = s.table
        if role == Qt.ItemDataRole.DisplayRole:
            return t.names[row] if len(t.names) > row else ""
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbs.pixmap(int(t.ids[row])) if self.thumbs is not None else None
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row)
        if role == PhotoIdRole:
            return int(t.ids[row])
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
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    # --- updates -------------------------------------------------------------------------------------
    def set_session(self, session: CullingSession | None) -> None:
        self.beginResetModel()
        self.session = session
        self._reindex()
        self.endResetModel()

    def view_changed(self) -> None:
        """The session re-sorted, re-filtered or merged rows: rebuild the view in one reset."""
        self.beginResetModel()
        self._reindex()
        self.endResetModel()

    def rows_changed(self, photo_ids: list[int]) -> None:
        """Decisions or scores of these photos changed in place."""
        for pid in photo_ids:
            r = self._row_of.get(pid)
            if r is not None:
                idx = self.index(r)
                self.dataChanged.emit(idx, idx)

    def row_of(self, photo_id: int) -> int | None:
        return self._row_of.get(photo_id)

    def _reindex(self) -> None:
        s = self.session
        self._row_of = {} if s is None else {int(s.table.ids[r]): i for i, r in enumerate(s.view)}

    def _thumbnail_ready(self, photo_id: int) -> None:
        r = self._row_of.get(photo_id)
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
        scores = t.scores_of(row)
        lines += [f"{k}: {v:.3f}" for k, v in scores.items()]
        why = s.why(row)
        if why:
            lines += ["", "shown because:", *why]
        return "\n".join(lines)
