"""The loupe's histogram: luma filled, R/G/B as lines, and a clipping mark at each end.

The marks are triangles in the top corners, as in an editor's histogram: dim when nothing is clipped,
light when some pixels are, red from the share the "Blown highlights" / "Crushed shadows" presets
flag (`measures.registry` thresholds), with the share written beside them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

from ..measures.exposure import HIGH_LEVEL, LOW_LEVEL, Clipping
from ..measures.registry import HIGHLIGHTS_BLOWN, SHADOWS_CRUSHED

MARK_RED = QColor(235, 45, 45)
MARK_LIGHT = QColor(230, 230, 230)
MARK_DIM = QColor(90, 90, 90)
_CURVES = (QColor(255, 80, 80, 200), QColor(80, 220, 80, 200), QColor(90, 140, 255, 220))


@dataclass(frozen=True)
class ClipMark:
    side: str  # "shadows" (left end) or "highlights" (right end)
    fraction: float  # share of the frame's pixels, 0..1
    alarming: bool  # at or above the preset's threshold: drawn red

    @property
    def text(self) -> str:
        return f"{self.fraction * 100:.1f} %"


class HistogramView(QWidget):
    """`set_data(counts, clipping)`: counts is measures.exposure.histogram's (4, 256) array."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(84)
        self.setMaximumHeight(84)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.counts: np.ndarray | None = None
        self.marks: tuple[ClipMark, ...] = ()

    def set_data(self, counts: np.ndarray | None, clip: Clipping | None) -> None:
        self.counts = counts
        if clip is None:
            self.marks = ()
            self.setToolTip("")
        else:
            self.marks = (
                ClipMark("shadows", clip.shadows, clip.shadows >= SHADOWS_CRUSHED),
                ClipMark("highlights", clip.highlights, clip.highlights >= HIGHLIGHTS_BLOWN),
            )
            r, g, b = (f"{v * 100:.1f}" for v in clip.channel_highlights)
            self.setToolTip(
                f"Clipped white (a channel ≥ {HIGH_LEVEL}): {clip.highlights * 100:.1f} % of the pixels "
                f"(R {r} %, G {g} %, B {b} %); red from {HIGHLIGHTS_BLOWN * 100:.0f} %.\n"
                f"Crushed black (every channel ≤ {LOW_LEVEL}): {clip.shadows * 100:.1f} %; "
                f"red from {SHADOWS_CRUSHED * 100:.0f} %.\n"
                "The shares are those the presets use; the curve is the full-size image's."
            )
        self.update()

    def mark(self, side: str) -> ClipMark | None:
        return next((m for m in self.marks if m.side == side), None)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect())
        p.fillRect(rect, QColor(28, 28, 28))
        plot = rect.adjusted(2, 14, -2, -2)  # the top strip holds the marks and their shares
        if self.counts is not None and self.counts.shape == (4, 256):
            # Scaled to the tallest bin inside the range: the end bins are what the marks report.
            inner = self.counts[:, 1:255].astype(np.float64)
            top = float(inner.max()) if inner.size and inner.max() > 0 else 1.0
            heights = np.minimum(self.counts.astype(np.float64) / top, 1.0)
            xs = plot.left() + np.arange(256) * (plot.width() / 255.0)

            def path(h: np.ndarray, closed: bool) -> QPainterPath:
                pp = QPainterPath()
                ys = plot.bottom() - h * plot.height()
                if closed:
                    pp.moveTo(QPointF(plot.left(), plot.bottom()))
                    for x, y in zip(xs, ys, strict=True):
                        pp.lineTo(QPointF(float(x), float(y)))
                    pp.lineTo(QPointF(plot.right(), plot.bottom()))
                    pp.closeSubpath()
                else:
                    pp.moveTo(QPointF(float(xs[0]), float(ys[0])))
                    for x, y in zip(xs[1:], ys[1:], strict=True):
                        pp.lineTo(QPointF(float(x), float(y)))
                return pp

            p.fillPath(path(heights[0], True), QColor(150, 150, 150, 170))
            for colour, h in zip(_CURVES, heights[1:], strict=True):
                p.setPen(QPen(colour, 1.0))
                p.drawPath(path(h, False))
        for m in self.marks:
            colour = MARK_RED if m.alarming else MARK_LIGHT if m.fraction > 0 else MARK_DIM
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(colour)
            s = 10.0
            if m.side == "shadows":
                tri = [QPointF(rect.left() + 1, rect.top() + 1), QPointF(rect.left() + 1 + s, rect.top() + 1)]
                tri.append(QPointF(rect.left() + 1, rect.top() + 1 + s))
                text_rect = QRectF(rect.left() + s + 4, rect.top(), 80, 13)
                align = Qt.AlignmentFlag.AlignLeft
            else:
                tri = [
                    QPointF(rect.right() - 1, rect.top() + 1),
                    QPointF(rect.right() - 1 - s, rect.top() + 1),
                ]
                tri.append(QPointF(rect.right() - 1, rect.top() + 1 + s))
                text_rect = QRectF(rect.right() - s - 84, rect.top(), 80, 13)
                align = Qt.AlignmentFlag.AlignRight
            p.drawPolygon(QPolygonF(tri))
            if m.fraction > 0:
                p.setPen(colour)
                font = p.font()
                font.setPointSizeF(max(6.0, font.pointSizeF() * 0.8))
                p.setFont(font)
                p.drawText(text_rect, int(align | Qt.AlignmentFlag.AlignVCenter), m.text)
        p.end()
