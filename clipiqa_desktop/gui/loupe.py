"""The loupe: one photo large, fit ↔ 100 % at the pointer (Z), focus peaking (F), a histogram with
clipping marks, every attribute by its readable name in the registry's groups, what the pixel
measures say, and the reason the photo matches the active filter.

The full-size decode (with its histogram and clipping) runs in the loupe's decode pool thread and
the focus-peaking map in a second one of its own, so the photo now shown is never decoded behind a
stale map (a running job cannot be stopped; a stale peaking job ends at its next check of the
generation). Every job carries the generation of the photo it was started for, and a result for a
photo no longer shown is dropped. The decoded pixels are not kept: with F on they go straight to
the peaking job; F pressed later decodes the photo again in the peaking thread.

Focus peaking is measured once per photo at its full resolution (`measures.focus.peaking_mask`), so
it says what is sharp at 100 %, and kept as a small pyramid of bool masks: at fit, level k pools
2^k × 2^k blocks and marks a block where at least half a line of its pixels is in focus, so each
mark is drawn on at least one screen pixel and none is lost to scaling. Only the part of the level
on screen is coloured, at each paint (at 100 % a viewport's worth, not a 24 MP pixmap).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image
from PySide6.QtCore import QObject, QPointF, QRectF, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QFormLayout,
    QGraphicsItem,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QStyleOptionGraphicsItem,
    QVBoxLayout,
    QWidget,
)

from ..imaging import DecodeError, decode_photo
from ..measures.exposure import Clipping, clipping, histogram
from ..measures.registry import GROUP_TITLES, PIXEL_KEYS, attribute_info, reasons
from .histogram import HistogramView

# Magenta: cameras offer red, yellow, blue or white, but those vanish on skin, a red dress, sky or a
# white gown; pure magenta is rare in photographs and stands out on all of them.
PEAKING_COLOR = QColor(255, 0, 255)
_PEAKING_SMALLEST = 128  # the pyramid stops once a level's long side is this small


@dataclass
class _Decoded:
    image: QImage
    rgb: np.ndarray  # H×W×3 uint8: handed to the peaking job when F is on, else let go
    counts: np.ndarray  # measures.exposure.histogram
    clip: Clipping


class _Latest:
    """The generation of the photo shown, read by the pool threads to end a stale job early."""

    def __init__(self) -> None:
        self.value = 0


class _Signals(QObject):
    loaded = Signal(int, str, object, str)  # generation, path, _Decoded | None, error
    # generation, list[np.ndarray] (the pyramid) | None, error ("" and None: ended early, stale)
    peaked = Signal(int, object, str)


def _rgb_of(path: str) -> tuple[np.ndarray, Image.Image]:
    img = decode_photo(path, None).image
    img = img if img.mode == "RGB" else img.convert("RGB")
    return np.ascontiguousarray(np.asarray(img)), img


class _Decode(QRunnable):
    def __init__(self, generation: int, path: str, signals: _Signals) -> None:
        super().__init__()
        self.generation, self.path, self.signals = generation, path, signals

    def run(self) -> None:
        try:
            rgb, img = _rgb_of(self.path)
            h, w = rgb.shape[:2]
            # converted here to the format a pixmap is drawn from (a copy): the GUI thread's
            # QPixmap.fromImage of a 24 MP frame then takes 0.03 s instead of 0.27 s
            qimg = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
            qimg = qimg.convertToFormat(QImage.Format.Format_RGB32)
            counts = histogram(img)
            decoded = _Decoded(qimg, rgb, counts, clipping(rgb, counts))
            self.signals.loaded.emit(self.generation, self.path, decoded, "")
        except DecodeError as exc:
            self.signals.loaded.emit(self.generation, self.path, None, str(exc))
        except Exception as exc:  # keep the pool thread alive; show the reason
            self.signals.loaded.emit(self.generation, self.path, None, f"{type(exc).__name__}: {exc}")


def peaking_levels(mask: np.ndarray) -> list[np.ndarray]:
    """Level 0 is `mask` itself (bool); level k marks a 2^k × 2^k block holding at least 2^(k-1)
    marked pixels (half a line crossing it), until a level's long side is at most 128. A 24 MP
    pyramid holds 32 MB (bool), where premultiplied ARGB images held 128 MB."""
    mask = np.asarray(mask, dtype=bool)
    levels = [mask]
    counts: np.ndarray = mask
    k = 0
    while max(counts.shape) > _PEAKING_SMALLEST:
        k += 1
        h, w = counts.shape
        if h % 2 or w % 2:
            counts = np.pad(counts, ((0, h % 2), (0, w % 2)))
        pooled = counts[0::2, 0::2].astype(np.uint32)  # four strided adds: 10× a reshaped sum
        pooled += counts[0::2, 1::2]
        pooled += counts[1::2, 0::2]
        pooled += counts[1::2, 1::2]
        counts = pooled
        levels.append(counts >= 2 ** (k - 1))
    return levels


class _Peak(QRunnable):
    """The peaking pyramid of one photo, from its pixels (`rgb`) or, when they were let go (F
    pressed after the decode), from the file decoded again. Between its heavy steps it checks
    whether the photo is still the one shown and ends early when not."""

    def __init__(
        self, generation: int, path: str, rgb: np.ndarray | None, latest: _Latest, signals: _Signals
    ) -> None:
        super().__init__()
        self.generation, self.path, self.rgb = generation, path, rgb
        self.latest, self.signals = latest, signals

    def _stale(self) -> bool:
        return self.latest.value != self.generation

    def run(self) -> None:
        try:
            from ..measures.focus import luminance, peaking_mask  # numpy work: only when F is used

            rgb, self.rgb = self.rgb, None  # held by this frame only: let go as soon as measured
            if rgb is None and not self._stale():
                rgb = _rgb_of(self.path)[0]
            if rgb is None or self._stale():
                self.signals.peaked.emit(self.generation, None, "")
                return
            gray = luminance(rgb)
            del rgb
            if self._stale():
                self.signals.peaked.emit(self.generation, None, "")
                return
            mask = np.asarray(peaking_mask(gray), dtype=bool)
            del gray
            if self._stale():
                self.signals.peaked.emit(self.generation, None, "")
                return
            self.signals.peaked.emit(self.generation, peaking_levels(mask), "")
        except DecodeError as exc:
            self.signals.peaked.emit(self.generation, None, str(exc))
        except Exception as exc:  # keep the pool thread alive; show the reason
            self.signals.peaked.emit(self.generation, None, f"{type(exc).__name__}: {exc}")


class PeakingOverlay(QGraphicsItem):
    """One level of the peaking pyramid (a bool mask), a child of the photo scaled by 2^k. Each
    paint colours only the exposed part of the mask, nearest-neighbour: no pixmap of the whole
    level is ever made (at 100 % of a 24 MP frame that was 96 MB)."""

    def __init__(self, parent: QGraphicsItem) -> None:
        super().__init__(parent)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)  # exposedRect
        self.mask: np.ndarray | None = None
        self.painted = (0, 0)  # width, height of the part coloured by the last paint

    def set_mask(self, mask: np.ndarray | None, scale: float = 1.0) -> None:
        self.prepareGeometryChange()
        self.mask = mask
        self.setScale(scale)
        self.update()

    def boundingRect(self) -> QRectF:
        if self.mask is None:
            return QRectF()
        h, w = self.mask.shape
        return QRectF(0, 0, w, h)

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if self.mask is None:
            return
        h, w = self.mask.shape
        r = option.exposedRect
        x0, y0 = max(0, math.floor(r.left())), max(0, math.floor(r.top()))
        x1, y1 = min(w, math.ceil(r.right())), min(h, math.ceil(r.bottom()))
        if x1 <= x0 or y1 <= y0:
            return
        argb = np.where(self.mask[y0:y1, x0:x1], np.uint32(PEAKING_COLOR.rgba()), np.uint32(0))
        image = QImage(argb.data, x1 - x0, y1 - y0, 4 * (x1 - x0), QImage.Format.Format_ARGB32_Premultiplied)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        painter.drawImage(QPointF(x0, y0), image)
        painter.restore()
        self.painted = (x1 - x0, y1 - y0)


class ImageView(QGraphicsView):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.item = QGraphicsPixmapItem()
        self.item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        # the peaking overlay: a child of the photo, clipped to it, scaled by its pyramid level
        self.item.setShapeMode(QGraphicsPixmapItem.ShapeMode.BoundingRectShape)
        self.item.setFlag(QGraphicsItem.GraphicsItemFlag.ItemClipsChildrenToShape)
        self.overlay = PeakingOverlay(self.item)
        self.overlay.setVisible(False)
        self.peaking_levels: list[np.ndarray] = []
        self.peaking = False
        self.overlay_level = -1
        self.scene().addItem(self.item)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setBackgroundBrush(Qt.GlobalColor.black)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.fit = True

    def set_pixmap(self, pix: QPixmap) -> None:
        self.item.setPixmap(pix)
        self.scene().setSceneRect(self.item.boundingRect())
        self.set_peaking_levels([])
        self.apply_zoom()

    def set_peaking_levels(self, levels: list[np.ndarray]) -> None:
        """The focus-peaking pyramid of the photo shown ([] = none yet)."""
        self.peaking_levels = levels
        self.overlay_level = -1
        self.overlay.set_mask(None)
        self.update_overlay()

    def set_peaking(self, on: bool) -> None:
        self.peaking = on
        self.update_overlay()

    def update_overlay(self) -> None:
        """Show the pyramid level whose pixels land on at least one screen pixel each."""
        if not self.peaking or not self.peaking_levels or self.item.pixmap().isNull():
            self.overlay.setVisible(False)
            return
        scale = self.transform().m11()
        k = 0 if scale >= 1.0 else math.ceil(math.log2(1.0 / scale) - 1e-9)
        k = min(k, len(self.peaking_levels) - 1)
        if k != self.overlay_level:
            self.overlay_level = k
            self.overlay.set_mask(self.peaking_levels[k], float(2**k))
        self.overlay.setVisible(True)

    def toggle_zoom(self) -> None:
        """Z: fit ↔ 100 %, keeping the point under the pointer (or the centre) in place."""
        cursor = self.mapFromGlobal(self.cursor().pos())
        anchor = cursor if self.viewport().rect().contains(cursor) else self.viewport().rect().center()
        scene_point: QPointF = self.mapToScene(anchor)
        self.fit = not self.fit
        self.apply_zoom()
        if not self.fit:
            self.centerOn(scene_point)

    def apply_zoom(self) -> None:
        self.resetTransform()
        if self.fit and not self.item.pixmap().isNull():
            self.fitInView(self.item, Qt.AspectRatioMode.KeepAspectRatio)
        self.update_overlay()

    def resizeEvent(self, event: object) -> None:
        super().resizeEvent(event)  # type: ignore[arg-type]
        if self.fit:
            self.apply_zoom()


class LoupeView(QWidget):
    """Shows one photo: `show_photo(path, scores, why, status)`; F toggles focus peaking."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = ImageView()
        self.message = QLabel("")
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title = QLabel("")
        self.title.setWordWrap(True)
        self.histogram = HistogramView()
        self.bars = QFormLayout()
        self.pixels = QLabel("")  # what the pixel measures say (registry.reasons)
        self.pixels.setWordWrap(True)
        self.why = QLabel("")
        self.why.setWordWrap(True)
        side = QVBoxLayout()
        side.addWidget(self.title)
        side.addWidget(self.histogram)
        side.addWidget(QLabel("<b>What the pixels say</b>"))
        side.addWidget(self.pixels)
        side.addLayout(self.bars)
        side.addWidget(QLabel("<b>Why it is shown</b>"))
        side.addWidget(self.why)
        side.addStretch(1)
        panel = QWidget()
        panel.setLayout(side)
        panel.setFixedWidth(280)
        left = QVBoxLayout()
        left.addWidget(self.view, 1)
        left.addWidget(self.message)
        lay = QHBoxLayout(self)
        lay.addLayout(left, 1)
        lay.addWidget(panel)
        self.pool = QThreadPool(self)  # decodes the photo shown
        self.pool.setMaxThreadCount(1)
        # the peaking maps: a thread of their own, so a stale map never delays the next decode
        self.peak_pool = QThreadPool(self)
        self.peak_pool.setMaxThreadCount(1)
        self._latest = _Latest()
        self._signals = _Signals(self)
        self._signals.loaded.connect(self._loaded)
        self._signals.peaked.connect(self._peaked)
        self.path = ""
        self._status = ""
        self._generation = 0  # of the photo shown; a job's result for another one is dropped
        self._size = ""  # "6000×4000" once decoded
        self._peaking_state = ""  # "" | "measuring" | "ready" | an error (F again tries again)
        self.peaking = False

    def show_photo(
        self,
        path: str,
        scores: dict[str, float],
        why: list[str],
        status: str,
        error: str | None,
        decision: str = "",
    ) -> None:
        """`decision` is rich text such as '✕ rejected' or '★★★ ■ Red'. Showing the photo already
        shown (a decision changed) redraws the text and bars without decoding it again."""
        same = path == self.path and status == self._status
        self.path, self._status = path, status
        self.title.setText(f"<b>{path.rsplit('/', 1)[-1]}</b> {decision}<br>{path}")
        self._show_scores(scores)
        self.why.setText("\n".join(why) if why else "no score filter is active")
        if same:
            return
        self._generation += 1
        self._latest.value = self._generation  # a running peaking job for another photo ends early
        self.peak_pool.clear()
        self._size, self._peaking_state = "", ""
        self.histogram.set_data(None, None)
        self.message.setText(f"{status}: {error}" if status != "ok" else "loading …")
        self.view.set_pixmap(QPixmap())
        if status != "missing":
            self.pool.clear()  # stepping quickly: only the photo shown now is worth decoding
            self.pool.start(_Decode(self._generation, path, self._signals))

    def _show_scores(self, scores: dict[str, float]) -> None:
        """Every attribute by its readable name, in the registry's groups; counts as numbers."""
        self._stored_clip = (scores.get("highlights_clipped"), scores.get("shadows_clipped"))
        lines = reasons(scores)
        if lines:
            self.pixels.setText("\n".join(lines))
        elif not any(k in scores for k in PIXEL_KEYS):
            self.pixels.setText("not measured yet: the next index of this folder measures them")
        else:
            self.pixels.setText("nothing to report")
        while self.bars.rowCount():
            self.bars.removeRow(0)
        infos = [attribute_info(k) for k in scores]
        for group, title in GROUP_TITLES.items():
            members = [info for info in infos if info.group == group]
            if not members:
                continue
            self.bars.addRow(QLabel(f"<b>{title}</b>"))
            for info in members:
                value = scores[info.key]
                # "Sharpness (CLIP-IQA)" reads "Sharpness" under "Look (CLIP-IQA)"; the tooltip has it all
                name, _, suffix = info.label.partition(" (")
                label = QLabel(name if suffix and f"({suffix}" in title else info.label)
                label.setToolTip(f"{info.label}: {info.help}\n{info.scale}")
                row = QWidget()
                lay = QHBoxLayout(row)
                lay.setContentsMargins(0, 0, 0, 0)
                if info.kind != "count":  # a count has no top: the number alone
                    bar = QProgressBar()
                    bar.setRange(0, 1000)
                    bar.setValue(round(min(max(value, 0.0), 1.0) * 1000))
                    bar.setTextVisible(False)  # the number sits beside the bar, readable over any fill
                    bar.setMaximumHeight(12)
                    lay.addWidget(bar, 1)
                lay.addWidget(QLabel(info.format(value)))
                if info.kind == "count":
                    lay.addStretch(1)
                self.bars.addRow(label, row)

    def toggle_zoom(self) -> None:
        self.view.toggle_zoom()

    def toggle_peaking(self) -> None:
        """F: focus peaking on/off (it stays on from photo to photo, like a camera's)."""
        self.peaking = not self.peaking
        self.view.set_peaking(self.peaking)
        self._start_peaking(None)
        self._show_state()

    def wait(self, msecs: int = 5000) -> bool:
        return self.pool.waitForDone(msecs) and self.peak_pool.waitForDone(msecs)

    def shutdown(self) -> bool:
        """On quitting: queued jobs dropped, a running peaking job ends at its next check."""
        self._generation += 1
        self._latest.value = self._generation
        self.pool.clear()
        self.peak_pool.clear()
        return self.wait()

    def _start_peaking(self, rgb: np.ndarray | None) -> None:
        """With F on and the photo decoded, measure its map once: from `rgb` when the decode just
        handed its pixels over, else (F pressed later) from the file decoded again."""
        if self.peaking and self._size and self._peaking_state not in ("measuring", "ready"):
            self._peaking_state = "measuring"
            self.peak_pool.start(_Peak(self._generation, self.path, rgb, self._latest, self._signals))

    def _show_state(self) -> None:
        if not self._size:
            return  # "loading …" or the decode error stays
        if not self.peaking:
            peaking = "F: focus peaking"
        elif self._peaking_state == "measuring":
            peaking = "Focus peaking on — F (measuring …)"
        elif self._peaking_state in ("", "ready"):
            peaking = "Focus peaking on — F"
        else:
            peaking = f"Focus peaking failed: {self._peaking_state}"
        self.message.setText(f"{self._size}   Z: fit ↔ 100 %   {peaking}")

    def _loaded(self, generation: int, path: str, decoded: _Decoded | None, error: str) -> None:
        if generation != self._generation or path != self.path:
            return  # the user stepped on already
        if decoded is None:
            self.message.setText(error)
            return
        self._size = f"{decoded.image.width()}×{decoded.image.height()}"
        self.view.set_pixmap(QPixmap.fromImage(decoded.image))
        self.histogram.set_data(decoded.counts, self._clip_as_stored(decoded.clip))
        self._start_peaking(decoded.rgb)  # the pixels are not kept: the job holds them, or nobody
        self._show_state()

    def _clip_as_stored(self, clip: Clipping) -> Clipping:
        """The marks report the shares the presets and the text use (the stored measure, counted on
        the analysis image) where the photo has them; the curve is the full-size image's."""
        high, low = getattr(self, "_stored_clip", (None, None))
        if high is None or low is None:
            return clip
        return replace(clip, highlights=float(high), shadows=float(low))

    def _peaked(self, generation: int, levels: list[np.ndarray] | None, error: str) -> None:
        if generation != self._generation:
            return  # another photo by now
        if levels is None:
            self._peaking_state = error or "unknown error"
        else:
            self._peaking_state = "ready"
            self.view.set_peaking_levels(levels)
        self._show_state()
