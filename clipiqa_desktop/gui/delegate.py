"""Paints one grid cell: thumbnail, the sort attribute's value as a badge, and the decision state
(rejected = faded with a red ✕, picked = green flag, stars, colour label strip)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from .photo_model import BadgeRole, DecisionRole, StatusRole

LABEL_COLOURS = {
    "Red": QColor("#e5484d"),
    "Yellow": QColor("#f5d90a"),
    "Green": QColor("#46a758"),
    "Blue": QColor("#3e63dd"),
    "Purple": QColor("#8e4ec6"),
}
TEXT_HEIGHT = 18


def decision_html(rating: int, picked: bool, label: str | None) -> str:
    """A decision as rich text for the loupe: '✕ rejected', '⚑ picked ★★★ ■ Red', ..."""
    parts = []
    if rating == -1:
        parts.append("<span style='color:#e5484d'>✕ rejected</span>")
    if picked:
        parts.append("<span style='color:#46a758'>⚑ picked</span>")
    if rating > 0:
        parts.append("★" * rating)
    if label in LABEL_COLOURS:
        parts.append(f"<span style='color:{LABEL_COLOURS[label].name()}'>■ {label}</span>")
    return " ".join(parts)


PAD = 6


class PhotoDelegate(QStyledItemDelegate):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.thumb_size = 160

    def set_thumb_size(self, size: int) -> None:
        self.thumb_size = size

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return QSize(self.thumb_size + 2 * PAD, self.thumb_size + TEXT_HEIGHT + 2 * PAD)

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        cell: QRect = option.rect
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        painter.fillRect(cell, QColor("#2f5d9b") if selected else QColor("#1e1e1e"))
        if option.state & QStyle.StateFlag.State_HasFocus:  # the photo the next key acts on
            painter.setPen(QPen(QColor("#f5c518"), 2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(cell.adjusted(1, 1, -2, -2))
        rating, picked, label = index.data(DecisionRole) or (0, False, None)
        status = index.data(StatusRole)
        area = QRect(cell.x() + PAD, cell.y() + PAD, cell.width() - 2 * PAD, self.thumb_size)

        pix: QPixmap | None = index.data(Qt.ItemDataRole.DecorationRole)
        if rating == -1:
            painter.setOpacity(0.3)
        if isinstance(pix, QPixmap) and not pix.isNull():
            scaled = pix.size().scaled(area.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, scaled.width(), scaled.height())
            target.moveCenter(area.center())
            painter.drawPixmap(target, pix)
        else:
            painter.fillRect(area.adjusted(8, 8, -8, -8), QColor("#2a2a2a"))
            painter.setPen(QColor("#777"))
            text = {"error": "cannot decode", "missing": "missing"}.get(str(status), "…")
            painter.drawText(area, Qt.AlignmentFlag.AlignCenter, text)
        painter.setOpacity(1.0)

        if rating == -1:
            pen = QPen(QColor("#e5484d"), 4)
            painter.setPen(pen)
            c = area.center()
            r = min(area.width(), area.height()) // 6
            painter.drawLine(c.x() - r, c.y() - r, c.x() + r, c.y() + r)
            painter.drawLine(c.x() - r, c.y() + r, c.x() + r, c.y() - r)
        if picked:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor("#46a758"))
            painter.drawRoundedRect(QRectF(area.x() + 4, area.y() + 4, 14, 18), 2, 2)
        if status == "error":
            self._badge(painter, area, "!", QColor("#e5484d"), left=True)

        badge = index.data(BadgeRole)
        if badge is not None:
            self._badge(painter, area, f"{badge:.3f}", QColor(0, 0, 0, 170))

        text_rect = QRect(cell.x() + PAD, area.bottom() + 2, cell.width() - 2 * PAD, TEXT_HEIGHT)
        if label in LABEL_COLOURS:
            painter.fillRect(QRect(text_rect.x(), text_rect.y(), 6, TEXT_HEIGHT - 2), LABEL_COLOURS[label])
            text_rect.adjust(10, 0, 0, 0)
        painter.setPen(QColor("#f5c518"))
        stars = "★" * max(rating, 0)
        if stars:
            painter.drawText(text_rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, stars)
            text_rect.adjust(0, 0, -painter.fontMetrics().horizontalAdvance(stars) - 4, 0)
        painter.setPen(QColor("#d0d0d0") if rating != -1 else QColor("#777"))
        name = painter.fontMetrics().elidedText(
            str(index.data(Qt.ItemDataRole.DisplayRole)), Qt.TextElideMode.ElideLeft, text_rect.width()
        )
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, name)
        painter.restore()

    @staticmethod
    def _badge(painter: QPainter, area: QRect, text: str, colour: QColor, left: bool = False) -> None:
        painter.save()
        font = QFont(painter.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
        font.setBold(True)
        painter.setFont(font)
        w = painter.fontMetrics().horizontalAdvance(text) + 10
        x = area.x() + 4 if left else area.right() - w - 4
        rect = QRectF(x, area.y() + 4, w, 18)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawRoundedRect(rect, 4, 4)
        painter.setPen(QColor("white"))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()
