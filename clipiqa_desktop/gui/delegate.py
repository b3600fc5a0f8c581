"""Paints one grid cell: thumbnail, the sort attribute's value as a badge, and the decision state
(rejected = faded with a red ✕, picked = green flag, stars, colour label strip). A grouped photo
(StackRole): a collapsed stack looks like a pile of cards with its frame count; the best frame of
a burst wears a gold crown; the cells of an expanded stack share a tinted band with a bracket line
over them, closed at its first and last cell."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPointF, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from .photo_model import BadgeRole, DecisionRole, StackRole, StatusRole

LABEL_COLOURS = {
    "Red": QColor("#e5484d"),
    "Yellow": QColor("#f5d90a"),
    "Green": QColor("#46a758"),
    "Blue": QColor("#3e63dd"),
    "Purple": QColor("#8e4ec6"),
}
TEXT_HEIGHT = 18
STACK_TINT = QColor("#213f4c")  # the band behind the cells of an expanded stack
STACK_LINE = QColor("#3fb6c8")
CROWN = QColor("#f5c518")


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
        stack = index.data(StackRole)
        band = stack is not None and stack.expanded
        painter.fillRect(cell, QColor("#2f5d9b") if selected else STACK_TINT if band else QColor("#1e1e1e"))
        if band:
            self._bracket(painter, cell, stack.first, stack.last)
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
        target = area.adjusted(8, 8, -8, -8)
        if isinstance(pix, QPixmap) and not pix.isNull():
            room = area.adjusted(0, 6, -6, 0) if stack is not None and stack.collapsed else area  # cards
            scaled = pix.size().scaled(room.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, scaled.width(), scaled.height())
            target.moveCenter(room.center())
        if stack is not None and stack.collapsed:
            self._cards(painter, target)
        if isinstance(pix, QPixmap) and not pix.isNull():
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
        if stack is not None:
            if stack.best:
                self._crown(painter, target)
            if stack.collapsed:
                self._count(painter, target, stack.count, stack.kind)

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
    def _bracket(painter: QPainter, cell: QRect, first: bool, last: bool) -> None:
        """The line over an expanded stack's cells, closed at its first and last cell."""
        painter.save()
        painter.setPen(QPen(STACK_LINE, 3))
        top = cell.top() + 2
        left = cell.left() + (4 if first else 0)
        right = cell.right() - (4 if last else 0)
        painter.drawLine(left, top, right, top)
        if first:
            painter.drawLine(left, top, left, top + 14)
        if last:
            painter.drawLine(right, top, right, top + 14)
        painter.restore()

    @staticmethod
    def _cards(painter: QPainter, target: QRect) -> None:
        """Two cards peeking out behind the frame: a collapsed stack."""
        painter.save()
        for offset, shade in ((6, "#5a5a5a"), (3, "#8a8a8a")):
            painter.setPen(QPen(QColor("#151515"), 1))
            painter.setBrush(QColor(shade))
            painter.drawRect(target.translated(offset, -offset))
        painter.restore()

    @staticmethod
    def _crown(painter: QPainter, target: QRect) -> None:
        """A gold crown in the frame's lower left corner: the best of its burst."""
        painter.save()
        x, y, w, h = target.left() + 5, target.bottom() - 19, 20.0, 14.0
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 170))
        painter.drawRoundedRect(QRectF(x - 3, y - 3, w + 6, h + 6), 4, 4)
        crown = QPolygonF(
            [
                QPointF(x, y + h),
                QPointF(x, y + 3),
                QPointF(x + w * 0.27, y + h * 0.55),
                QPointF(x + w * 0.5, y),
                QPointF(x + w * 0.73, y + h * 0.55),
                QPointF(x + w, y + 3),
                QPointF(x + w, y + h),
            ]
        )
        painter.setBrush(CROWN)
        painter.drawPolygon(crown)
        painter.restore()

    @staticmethod
    def _count(painter: QPainter, target: QRect, count: int, kind: str) -> None:
        """The frame count of a collapsed stack in its lower right corner ('7'; '3 ±EV' for an
        exposure bracket, '5 focus' for a focus stack)."""
        text = {"bracket": f"{count} ±EV", "focus_stack": f"{count} focus"}.get(kind, str(count))
        painter.save()
        font = QFont(painter.font())
        font.setBold(True)
        painter.setFont(font)
        w = painter.fontMetrics().horizontalAdvance(text) + 12
        rect = QRectF(target.right() - w - 4, target.bottom() - 24, w, 20)
        painter.setPen(QPen(QColor("white"), 1.5))
        painter.setBrush(QColor(0, 0, 0, 190))
        painter.drawRoundedRect(rect, 10, 10)
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
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
