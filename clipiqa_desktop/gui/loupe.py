"""The loupe: one photo large, fit ↔ 100 % at the pointer (Z), and every score as a bar with the
reason the photo matches the active filter. The full-size decode runs in a pool thread."""

from __future__ import annotations

from PySide6.QtCore import QObject, QPointF, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QFormLayout,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

from ..imaging import DecodeError, decode_photo


class _Signals(QObject):
    loaded = Signal(str, QImage, str)  # path, image, error


class _Decode(QRunnable):
    def __init__(self, path: str, signals: _Signals) -> None:
        super().__init__()
        self.path, self.signals = path, signals

    def run(self) -> None:
        try:
            img = decode_photo(self.path, None).image
            data = img.tobytes()
            qimg = QImage(data, img.width, img.height, 3 * img.width, QImage.Format.Format_RGB888).copy()
            self.signals.loaded.emit(self.path, qimg, "")
        except DecodeError as exc:
            self.signals.loaded.emit(self.path, QImage(), str(exc))
        except Exception as exc:  # keep the pool thread alive; show the reason
            self.signals.loaded.emit(self.path, QImage(), f"{type(exc).__name__}: {exc}")


class ImageView(QGraphicsView):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.item = QGraphicsPixmapItem()
        self.item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
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
        self.apply_zoom()

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

    def resizeEvent(self, event: object) -> None:
        super().resizeEvent(event)  # type: ignore[arg-type]
        if self.fit:
            self.apply_zoom()


class LoupeView(QWidget):
    """Shows one photo: `show_photo(path, scores, why, status)`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = ImageView()
        self.message = QLabel("")
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title = QLabel("")
        self.title.setWordWrap(True)
        self.bars = QFormLayout()
        self.why = QLabel("")
        self.why.setWordWrap(True)
        side = QVBoxLayout()
        side.addWidget(self.title)
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
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._signals = _Signals(self)
        self._signals.loaded.connect(self._loaded)
        self.path = ""
        self._status = ""

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
        while self.bars.rowCount():
            self.bars.removeRow(0)
        for key, value in scores.items():
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setValue(round(value * 1000))
            bar.setTextVisible(False)  # the number sits beside the bar, readable over any fill
            bar.setMaximumHeight(12)
            row = QWidget()
            lay = QHBoxLayout(row)
            lay.setContentsMargins(0, 0, 0, 0)
            lay.addWidget(bar, 1)
            lay.addWidget(QLabel(f"{value:.3f}"))
            self.bars.addRow(key, row)
        self.why.setText("\n".join(why) if why else "no score filter is active")
        if same:
            return
        self.message.setText(f"{status}: {error}" if status != "ok" else "loading …")
        self.view.set_pixmap(QPixmap())
        if status != "missing":
            self.pool.clear()  # stepping quickly: only the photo shown now is worth decoding
            self.pool.start(_Decode(path, self._signals))

    def toggle_zoom(self) -> None:
        self.view.toggle_zoom()

    def wait(self, msecs: int = 5000) -> bool:
        return self.pool.waitForDone(msecs)

    def _loaded(self, path: str, image: QImage, error: str) -> None:
        if path != self.path:
            return  # the user stepped on already
        if error:
            self.message.setText(error)
            return
        self.message.setText(f"{image.width()}×{image.height()}   Z: fit ↔ 100 %")
        self.view.set_pixmap(QPixmap.fromImage(image))
