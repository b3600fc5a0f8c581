"""Lazy thumbnails: JPEG bytes from the catalog, decoded to QImage in a small thread pool.

Only rows the view actually paints ask for their thumbnail (the model's DecorationRole), so a
20,000-photo folder costs nothing until it is scrolled. QPixmaps are made on the GUI thread and kept
in an LRU cache.
"""

from __future__ import annotations

from collections import OrderedDict

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage, QPixmap

from ..catalog import Catalog

CACHE_SIZE = 3000


class _Signals(QObject):
    loaded = Signal(int, QImage)


class _Load(QRunnable):
    def __init__(self, catalog: Catalog, photo_id: int, signals: _Signals) -> None:
        super().__init__()
        self.catalog, self.photo_id, self.signals = catalog, photo_id, signals

    def run(self) -> None:
        image = QImage()
        try:
            data = self.catalog.thumbnail(self.photo_id)
            if data:
                image.loadFromData(data, "JPEG")
        except Exception:  # a missing thumbnail shows the placeholder; never kill the pool thread
            image = QImage()
        self.signals.loaded.emit(self.photo_id, image)


class ThumbnailCache(QObject):
    """`pixmap(id)` returns a cached pixmap or None (and starts loading it); `ready(id)` follows."""

    ready = Signal(int)

    def __init__(self, catalog: Catalog, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.catalog = catalog
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)
        self._signals = _Signals(self)
        self._signals.loaded.connect(self._on_loaded)
        self._cache: OrderedDict[int, QPixmap] = OrderedDict()
        self._pending: set[int] = set()
        self._failed: set[int] = set()

    def pixmap(self, photo_id: int) -> QPixmap | None:
        pix = self._cache.get(photo_id)
        if pix is not None:
            self._cache.move_to_end(photo_id)
            return pix
        if photo_id not in self._pending and photo_id not in self._failed:
            self._pending.add(photo_id)
            self.pool.start(_Load(self.catalog, photo_id, self._signals))
        return None

    def invalidate(self, photo_ids: list[int]) -> None:
        """Forget thumbnails that the indexer just (re)wrote."""
        for pid in photo_ids:
            self._cache.pop(pid, None)
            self._failed.discard(pid)

    def _on_loaded(self, photo_id: int, image: QImage) -> None:
        self._pending.discard(photo_id)
        if image.isNull():
            self._failed.add(photo_id)
            return
        self._cache[photo_id] = QPixmap.fromImage(image)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        self.ready.emit(photo_id)

    def wait(self, msecs: int = 5000) -> bool:
        return self.pool.waitForDone(msecs)
