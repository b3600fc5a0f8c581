"""Compare: two to four photos side by side with one zoom and one position for all of them.

Each pane shows one photo decoded at full resolution in the compare pool's threads (the loupe's
decode path and job pattern: every job carries a token, the generation of the photo its pane was
showing when it started; a result for a photo no longer shown is dropped, and a job still queued
when its photo is stepped past ends without decoding, so holding → decodes only the photos shown
and the one ahead, not every frame passed on the way). A header line gives the file
name, the decision as the grid shows it and a few key scores by their registry labels.

Zoom and position are shared, not per pane: `fit`, `zoom` (the photo's pixels per screen pixel,
1.0 = 100 %, device pixels, so 100 % is true pixels on a high-DPI screen) and `center` (the point in
the middle of each pane in normalised image coordinates, 0..1 on each axis). Every pane applies the
same state, so frames of different pixel sizes stay aligned at the same relative spot, and a pane
that is given another photo (stepping through a burst) applies the state already in force: the zoom
and the position survive the step. Z, the wheel and dragging in any pane change the shared state;
the other panes follow at once.

The widget knows photos only as `PaneInfo` (no session): the controller
(gui/controllers/compare.py) decides which photos are shown, steps them and applies the culling keys.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QPoint, QPointF, QRunnable, Qt, QThread, QThreadPool, Signal
from PySide6.QtGui import QImage, QMouseEvent, QPainter, QPixmap, QResizeEvent, QTransform, QWheelEvent
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QGridLayout,
    QLabel,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ..imaging import DecodeError
from ..measures.registry import attribute_info
from .loupe import _rgb_of

MAX_PANES = 4
# the scores a header shows when the photo has them: focus, overall quality, closed eyes
HEADER_KEYS = ("focus", "quality", "eyes_closed")
ACTIVE_BORDER = "#3d8bfd"
IDLE_BORDER = "#2a2a2a"
PIN_MARK = "◆"  # in every font (an emoji pin is a box without an emoji font)
WHEEL_STEP = 1.25  # zoom factor per wheel notch
MAX_ZOOM = 16.0


@dataclass(frozen=True)
class PaneInfo:
    """One photo as a pane shows it. `decision` is rich text ('✕ rejected', '⚑ picked ★★★')."""

    photo_id: int
    path: str
    status: str = "ok"  # "ok" | "error" | "missing"
    error: str | None = None
    decision: str = ""
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.replace("\\", "/").rsplit("/", 1)[-1]


def header_html(info: PaneInfo, pinned: bool) -> str:
    """'📌 <b>IMG_1.JPG</b> ⚑ picked ★★ · Focus 0.81 · Quality (CLIP-IQA) 0.62 · Eyes closed 1'"""
    parts = [f"<b>{info.name}</b>" + (f" {info.decision}" if info.decision else "")]
    for key in HEADER_KEYS:
        if key in info.scores:
            a = attribute_info(key)
            parts.append(f"{a.label.partition(' (')[0]} {a.format(info.scores[key])}")
    line = " · ".join(parts)
    if not pinned:
        return line
    return f"<span style='background:#f5d90a; color:#111'>&nbsp;{PIN_MARK} reference&nbsp;</span> {line}"


def grid_shape(n: int, width: int, height: int, aspect: float = 1.5) -> tuple[int, int]:
    """(rows, columns) for n panes in a width × height area: 2 side by side; 3–4 in one row or in a
    2 × 2 grid, whichever shows photos of this aspect (width / height) larger."""
    if n <= 2:
        return 1, max(n, 1)

    def shown(rows: int, cols: int) -> float:
        w, h = width / cols, height / rows
        return min(w, h * aspect) * min(h, w / aspect)

    return (1, n) if shown(1, n) >= shown(2, 2) else (2, 2)


class _Signals(QObject):
    loaded = Signal(int, int, object, str)  # pane, generation, QImage | None, error


class _DecodeCount:
    """How many full-size decodes the compare pool has actually run (tests, benchmarks)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self) -> None:
        with self._lock:
            self.value += 1


decodes_run = _DecodeCount()


class _Decode(QRunnable):
    """The photo at full resolution as a QImage in the format a pixmap is drawn from. `wanted`: the
    tokens of the decodes still wanted (read in the pool thread); a job whose token has left it by
    the time a thread takes it up ends at once, without decoding and without a result."""

    def __init__(self, pane: int, generation: int, path: str, signals: _Signals, wanted: set[int]) -> None:
        super().__init__()
        self.pane, self.generation, self.path, self.signals = pane, generation, path, signals
        self.wanted = wanted

    def run(self) -> None:
        if self.generation not in self.wanted:
            return  # stepped past while queued
        decodes_run.add()
        try:
            rgb, _ = _rgb_of(self.path)
            h, w = rgb.shape[:2]
            qimg = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
            qimg = qimg.convertToFormat(QImage.Format.Format_RGB32)  # a copy: rgb may go
            self.signals.loaded.emit(self.pane, self.generation, qimg, "")
        except DecodeError as exc:
            self.signals.loaded.emit(self.pane, self.generation, None, str(exc))
        except Exception as exc:  # keep the pool thread alive; show the reason
            self.signals.loaded.emit(self.pane, self.generation, None, f"{type(exc).__name__}: {exc}")


class CompareImageView(QGraphicsView):
    """One pane's photo. Scroll bars off; the view is driven by the shared zoom state."""

    pressed = Signal()
    wheeled = Signal(object, float)  # viewport position (QPointF), notches (+ = zoom in)
    panned = Signal()
    resized = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.item = QGraphicsPixmapItem()
        self.item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.scene().addItem(self.item)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setBackgroundBrush(Qt.GlobalColor.black)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.applying = False  # the shared state is being applied: scrolling is not a pan
        self.horizontalScrollBar().valueChanged.connect(self._scrolled)
        self.verticalScrollBar().valueChanged.connect(self._scrolled)

    @property
    def has_photo(self) -> bool:
        return not self.item.pixmap().isNull()

    def set_pixmap(self, pix: QPixmap) -> None:
        self.item.setPixmap(pix)
        self.scene().setSceneRect(self.item.boundingRect())

    def image_size(self) -> tuple[int, int]:
        pix = self.item.pixmap()
        return pix.width(), pix.height()

    def fit_zoom(self) -> float:
        """The zoom (image pixels per device pixel) at which the whole photo fits the pane."""
        w, h = self.image_size()
        vp = self.viewport().rect()
        if not w or not h or vp.width() <= 0 or vp.height() <= 0:
            return 1.0
        return min(vp.width() / w, vp.height() / h) * self.devicePixelRatioF()

    def zoom(self) -> float:
        """The zoom shown: 1.0 = one photo pixel on one device pixel."""
        return self.transform().m11() * self.devicePixelRatioF()

    def center(self) -> tuple[float, float]:
        """The middle of the pane in normalised image coordinates."""
        w, h = self.image_size()
        if not w or not h:
            return 0.5, 0.5
        c = self.mapToScene(self.viewport().rect()).boundingRect().center()
        return c.x() / w, c.y() / h

    def normalised_at(self, pos: QPoint | QPointF) -> tuple[float, float]:
        """The normalised image point under a viewport position."""
        w, h = self.image_size()
        if not w or not h:
            return 0.5, 0.5
        p = self.mapToScene(QPointF(pos).toPoint())
        return min(max(p.x() / w, 0.0), 1.0), min(max(p.y() / h, 0.0), 1.0)

    def apply(self, fit: bool, zoom: float, center: tuple[float, float]) -> None:
        if not self.has_photo:
            return
        self.applying = True
        try:
            w, h = self.image_size()
            scale = (self.fit_zoom() if fit else zoom) / self.devicePixelRatioF()
            self.setTransform(QTransform.fromScale(scale, scale))
            self.centerOn(QPointF(center[0] * w, center[1] * h) if not fit else QPointF(w / 2, h / 2))
        finally:
            self.applying = False

    def _scrolled(self, _value: int) -> None:
        if not self.applying and self.has_photo:
            self.panned.emit()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.resized.emit()  # the shared state again: a fit changes with the pane's size

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.pressed.emit()
        super().mousePressEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        notches = event.angleDelta().y() / 120.0
        if notches:
            self.wheeled.emit(event.position(), notches)
        event.accept()


class ComparePane(QFrame):
    """A header line, the photo, and a line for 'loading …' or a decode error."""

    def __init__(self, index: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.index = index
        self.setObjectName("comparePane")
        self.header = QLabel("")
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.header.setWordWrap(True)
        self.header.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.header.setStyleSheet("color: #e0e0e0; padding: 2px 4px;")
        self.view = CompareImageView()
        self.message = QLabel("")
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setStyleSheet("color: #b0b0b0;")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(3, 3, 3, 3)
        lay.setSpacing(2)
        lay.addWidget(self.header)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.message)
        self.info: PaneInfo | None = None
        self.pinned = False
        self.generation = 0  # of the photo shown; a decode for another one is dropped
        self.set_active(False)

    def set_active(self, active: bool) -> None:
        colour = ACTIVE_BORDER if active else IDLE_BORDER
        self.setStyleSheet(f"#comparePane {{ border: 3px solid {colour}; background: #151515; }}")
        self.active = active

    def show_header(self) -> None:
        self.header.setText(header_html(self.info, self.pinned) if self.info is not None else "")

    def apply(self, fit: bool, zoom: float, center: tuple[float, float]) -> None:
        """The shared zoom and position, and the photo's size and zoom under it."""
        if not self.view.has_photo:
            return
        self.view.apply(fit, zoom, center)
        w, h = self.view.image_size()
        shown = f"fit {self.view.zoom():.0%}" if fit else f"{self.view.zoom():.0%}"
        self.message.setText(f"{w}×{h}   {shown}")


class CompareView(QWidget):
    """2–4 photos side by side. `set_photos(infos)` shows them (zoom back to fit); `set_pane(i,
    info)` gives pane i another photo, keeping the zoom and position; `update_info(i, info)` redraws
    its header only. `activated(i)`: the user clicked pane i."""

    activated = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setStyleSheet("CompareView { background: #101010; }")
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(2, 2, 2, 2)
        self.grid.setSpacing(4)
        self.panes: list[ComparePane] = []
        self.active = 0
        self.fit = True
        self.zoom = 1.0
        self.center = (0.5, 0.5)
        self._shape = (0, 0)
        self.pool = QThreadPool(self)  # one decode per pane at most, never more than the cores
        self.pool.setMaxThreadCount(max(1, min(MAX_PANES, QThread.idealThreadCount())))
        self._signals = _Signals(self)
        self._signals.loaded.connect(self._loaded)
        # decoding ahead: the photo the stepping pane shows next, decoded while the photographer
        # looks at this one (a 24 MP JPEG takes ~0.4 s to decode; one frame ahead, ~96 MB)
        self._serial = 0  # the last token given to a pane's photo or a decode-ahead job
        self._wanted: set[int] = set()  # the tokens whose decode is still wanted (see _Decode)
        self._job = 0  # the latest decode-ahead job's token
        self._pending: dict[int, str] = {}  # decode-ahead job -> path
        self._waiting: dict[int, tuple[int, int]] = {}  # job -> (pane, its generation) waiting for it
        self._ahead: tuple[str, QImage] | None = None

    # --- photos ------------------------------------------------------------------------------------
    def set_photos(self, infos: list[PaneInfo], active: int = 0) -> None:
        """Show these photos (at most MAX_PANES), at fit, none pinned."""
        infos = infos[:MAX_PANES]
        self._drop_ahead()
        for pane in self.panes:
            pane.generation = self._token()  # a decode still running for it is dropped
            self.grid.removeWidget(pane)
            pane.hide()  # at once: deleteLater waits for the event loop
            pane.deleteLater()
        self.panes = []
        for i in range(len(infos)):
            pane = ComparePane(i)
            pane.view.pressed.connect(lambda i=i: self._pressed(i))
            pane.view.wheeled.connect(lambda pos, notches, i=i: self.wheel_zoom(i, pos, notches))
            pane.view.panned.connect(lambda i=i: self._panned(i))
            pane.view.resized.connect(lambda i=i: self._resized(i))
            self.panes.append(pane)
        self._shape = (0, 0)
        self._layout()
        self.fit, self.zoom, self.center = True, 1.0, (0.5, 0.5)
        for i, info in enumerate(infos):
            self.set_pane(i, info)
        self.set_active(active)

    def set_pane(self, i: int, info: PaneInfo) -> None:
        """Pane i shows another photo at the zoom and position in force."""
        pane = self.panes[i]
        same = pane.info is not None and pane.info.photo_id == info.photo_id and pane.view.has_photo
        pane.info = info
        pane.show_header()
        if same:
            return
        self._unwant_pane(i)
        pane.generation = self._token()
        pane.view.set_pixmap(QPixmap())
        if info.status == "missing":
            pane.message.setText(f"missing: {info.error or info.path}")
            return
        pane.message.setText("loading …")
        if self._ahead is not None and self._ahead[0] == info.path:
            image, self._ahead = self._ahead[1], None
            self._show(pane, image)
            return
        job = next((j for j, p in self._pending.items() if p == info.path), None)
        if job is not None:  # being decoded ahead: that decode is this pane's
            self._waiting[job] = (i, pane.generation)
            return
        self._wanted.add(pane.generation)
        self.pool.start(_Decode(i, pane.generation, info.path, self._signals, self._wanted))

    def _token(self) -> int:
        """A generation never used before in this view (a new pane's own count would start again
        at 0, and a late result of the pane it replaced could pass for its own)."""
        self._serial += 1
        return self._serial

    def _unwant_pane(self, i: int) -> None:
        """Pane i steps on: its queued decode, and a decode-ahead it waited for that is no longer
        the latest one ahead, are not wanted any more."""
        self._wanted.discard(self.panes[i].generation)
        for job, (pane, _) in list(self._waiting.items()):
            if pane == i:
                del self._waiting[job]
                if job != self._job:
                    self._pending.pop(job, None)
                    self._wanted.discard(job)

    def decode_ahead(self, path: str) -> None:
        """Decode this photo now, at a lower priority than the panes' own decodes, so a step onto
        it shows it at once. One photo ahead at a time: an older one not yet needed is dropped."""
        if (self._ahead is not None and self._ahead[0] == path) or path in self._pending.values():
            return
        self._ahead = None
        for job in [j for j in self._pending if j not in self._waiting]:
            del self._pending[job]
            self._wanted.discard(job)
        self._job = self._token()
        self._pending[self._job] = path
        self._wanted.add(self._job)
        self.pool.start(_Decode(-1, self._job, path, self._signals, self._wanted), -1)

    def _drop_ahead(self) -> None:
        self.pool.clear()
        self._wanted.clear()
        self._pending.clear()
        self._waiting.clear()
        self._ahead = None

    def update_info(self, i: int, info: PaneInfo) -> None:
        self.panes[i].info = info
        self.panes[i].show_header()

    def photo_ids(self) -> list[int]:
        return [p.info.photo_id for p in self.panes if p.info is not None]

    def _loaded(self, i: int, generation: int, image: QImage | None, error: str) -> None:
        self._wanted.discard(generation)
        if i < 0:  # decoded ahead (generation = the job)
            path = self._pending.pop(generation, None)
            waiting = self._waiting.pop(generation, None)
            if waiting is not None:
                i, generation = waiting
            elif path is not None and image is not None:
                self._ahead = (path, image)
                return
            else:
                return  # not wanted any more, or failed: a step onto it decodes it and says why
        if i >= len(self.panes) or self.panes[i].generation != generation:
            return  # stepped on, or another set of photos by now
        pane = self.panes[i]
        if image is None:
            pane.message.setText(error)
            return
        self._show(pane, image)

    def _show(self, pane: ComparePane, image: QImage) -> None:
        pane.view.set_pixmap(QPixmap.fromImage(image))
        pane.apply(self.fit, self.zoom, self.center)

    @property
    def loaded(self) -> bool:
        """Every pane shows its photo (tests, screenshots)."""
        return bool(self.panes) and all(p.view.has_photo for p in self.panes)

    def wait(self, msecs: int = 5000) -> bool:
        return self.pool.waitForDone(msecs)

    def release(self) -> None:
        """Back to the grid: queued decodes dropped, a running one's result ignored, the
        full-size pixmaps let go (never waits: a running decode ends on its own)."""
        self._drop_ahead()
        for pane in self.panes:
            pane.generation = self._token()
            pane.info = None
            pane.view.set_pixmap(QPixmap())

    def shutdown(self) -> bool:
        """On quitting: release, and wait for a running decode."""
        self.release()
        return self.wait()

    # --- active pane, pins ---------------------------------------------------------------------------
    def set_active(self, i: int) -> None:
        if not self.panes:
            return
        self.active = i % len(self.panes)
        for pane in self.panes:
            pane.set_active(pane.index == self.active)

    def set_pinned(self, i: int, pinned: bool) -> None:
        self.panes[i].pinned = pinned
        self.panes[i].show_header()

    def _pressed(self, i: int) -> None:
        self.set_active(i)
        self.setFocus()
        self.activated.emit(i)

    # --- layout ------------------------------------------------------------------------------------
    def _aspect(self) -> float:
        sizes = [p.view.image_size() for p in self.panes if p.view.has_photo]
        ratios = [w / h for w, h in sizes if h]
        return sum(ratios) / len(ratios) if ratios else 1.5

    def _layout(self) -> None:
        n = len(self.panes)
        shape = grid_shape(n, max(self.width(), 1), max(self.height(), 1), self._aspect())
        if shape == self._shape:
            return
        self._shape = shape
        for pane in self.panes:
            self.grid.removeWidget(pane)
        rows, cols = shape
        for r in range(max(rows, 2)):
            self.grid.setRowStretch(r, 1 if r < rows else 0)
        for c in range(MAX_PANES):
            self.grid.setColumnStretch(c, 1 if c < cols else 0)
        for pane in self.panes:
            self.grid.addWidget(pane, pane.index // cols, pane.index % cols)

    @property
    def shape(self) -> tuple[int, int]:
        return self._shape

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._layout()
        self.apply_all()

    def showEvent(self, event: object) -> None:
        super().showEvent(event)  # type: ignore[arg-type]
        self._layout()
        self.apply_all()

    # --- the shared zoom and position ------------------------------------------------------------------
    def apply_all(self, skip: int = -1) -> None:
        for pane in self.panes:
            if pane.index != skip:
                pane.apply(self.fit, self.zoom, self.center)

    def _pane_under_pointer(self) -> tuple[ComparePane, QPointF] | None:
        for pane in self.panes:
            pos = pane.view.viewport().mapFromGlobal(pane.view.cursor().pos())
            if pane.view.has_photo and pane.view.viewport().rect().contains(pos):
                return pane, QPointF(pos)
        return None

    def toggle_zoom(self) -> None:
        """Z: fit ↔ 100 %, every pane centred on the point under the pointer (or, with the pointer
        outside the panes, on the middle of what the active pane shows)."""
        if self.fit:
            hit = self._pane_under_pointer()
            if hit is not None:
                self.center = hit[0].view.normalised_at(hit[1])
            elif self.panes and self.panes[self.active].view.has_photo:
                self.center = self.panes[self.active].view.center()
            self.fit, self.zoom = False, 1.0
        else:
            self.fit = True
        self.apply_all()

    def zoom_to(self, zoom: float, center: tuple[float, float]) -> None:
        """Every pane at this zoom (1.0 = 100 %) around this normalised point (scripts, tests)."""
        self.fit, self.zoom, self.center = False, zoom, center
        self.apply_all()

    def wheel_zoom(self, i: int, pos: QPointF, notches: float) -> None:
        """The wheel over pane i: zoom by WHEEL_STEP a notch, keeping the point under the pointer
        in place in that pane; zooming out past the pane's fit returns every pane to fit."""
        view = self.panes[i].view
        if not view.has_photo:
            return
        before = view.zoom()
        fit_zoom = view.fit_zoom()
        after = min(MAX_ZOOM, before * WHEEL_STEP**notches)
        if after <= fit_zoom * 1.001:
            self.fit = True
            self.apply_all()
            return
        w, h = view.image_size()
        under = view.mapToScene(pos.toPoint())
        middle = QPointF(view.viewport().rect().center())
        scale = after / view.devicePixelRatioF()
        c = QPointF(under.x() - (pos.x() - middle.x()) / scale, under.y() - (pos.y() - middle.y()) / scale)
        self.fit, self.zoom, self.center = False, after, (c.x() / w, c.y() / h)
        self.apply_all()

    def _resized(self, i: int) -> None:
        if i < len(self.panes):
            self.panes[i].apply(self.fit, self.zoom, self.center)

    def _panned(self, i: int) -> None:
        """Pane i was dragged: the others follow to the same normalised centre."""
        if self.fit:
            return
        self.center = self.panes[i].view.center()
        self.apply_all(skip=i)

    def pan_by(self, i: int, dx: int, dy: int) -> None:
        """Scroll pane i by screen pixels as a drag does (scripts, tests)."""
        view = self.panes[i].view
        view.horizontalScrollBar().setValue(view.horizontalScrollBar().value() + dx)
        view.verticalScrollBar().setValue(view.verticalScrollBar().value() + dy)
