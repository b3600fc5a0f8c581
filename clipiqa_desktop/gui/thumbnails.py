"""Lazy thumbnails: JPEG bytes from the catalog, decoded to QImage in a small thread pool.

Only rows the view actually paints ask for their thumbnail (the model's DecorationRole), so a
20,000-photo folder costs nothing until it is scrolled. QPixmaps are made on the GUI thread and kept
in an LRU cache bounded by bytes (width × height × depth), not by a count of pixmaps: thumbnails
of 320 px and of 1024 px cost what they weigh. Every photo id has a generation, raised when the
indexer rewrites its thumbnail; a decode that finishes after that belongs to the old generation and
is dropped, never cached.
"""

from __future__ import annotations

from collections import OrderedDict

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage, QPixmap

from ..catalog import Catalog

DEFAULT_BUDGET_MB = 256


def pixmap_bytes(pix: QPixmap) -> int:
    return pix.width() * pix.height() * max(pix.depth(), 8) // 8


class _Signals(QObject):
    loaded = Signal(int, int, QImage)  # photo id, generation, image


class _Load(QRunnable):
    def __init__(self, catalog: Catalog, photo_id: int, generation: int, signals: _Signals) -> None:
        super().__init__()
        self.catalog, self.photo_id, self.generation, self.signals = catalog, photo_id, generation, signals

    def run(self) -> None:
        image = QImage()
        try:
            data = self.catalog.thumbnail(self.photo_id)
            if data:
                image.loadFromData(data, "JPEG")
        except Exception:  # a missing thumbnail shows the placeholder; never kill the pool thread
            image = QImage()
        self.signals.loaded.emit(self.photo_id, self.generation, image)


class ThumbnailCache(QObject):
    """`pixmap(id)` returns a cached pixmap or None (and starts loading it); `ready(id)` follows."""

    ready = Signal(int)

    def __init__(
        self, catalog: Catalog, parent: QObject | None = None, budget_bytes: int = DEFAULT_BUDGET_MB << 20
    ) -> None:
        super().__init__(parent)
        self.catalog = catalog
        self.budget_bytes = budget_bytes
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)
        self._signals = _Signals(self)
        self._signals.loaded.connect(self._on_loaded)
        self._cache: OrderedDict[int, QPixmap] = OrderedDict()
        self._bytes = 0
        self._pending: dict[int, int] = {}  # photo id -> generation being decoded
        self._generation: dict[int, int] = {}
        self._failed: set[int] = set()

    @property
    def cached_bytes(self) -> int:
        """What the cached pixmaps weigh (never more than the budget)."""
        return self._bytes

    def cached(self, photo_id: int) -> QPixmap | None:
        """The cached pixmap, without loading or touching the LRU order."""
        return self._cache.get(photo_id)

    def __len__(self) -> int:
        return len(self._cache)

    def set_budget(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self._evict()

    def pixmap(self, photo_id: int) -> QPixmap | None:
        pix = self._cache.get(photo_id)
        if pix is not None:
            self._cache.move_to_end(photo_id)
            return pix
        generation = self._generation.get(photo_id, 0)
        if self._pending.get(photo_id) != generation and photo_id not in self._failed:
            self._pending[photo_id] = generation
            self.pool.start(_Load(self.catalog, photo_id, generation, self._signals))
        return None

    def invalidate(self, photo_ids: list[int]) -> None:
        """Forget thumbnails that the indexer just (re)wrote; decodes still running are dropped."""
        for pid in photo_ids:
            pix = self._cache.pop(pid, None)
            if pix is not None:
                self._bytes -= pixmap_bytes(pix)
            self._failed.discard(pid)
            self._generation[pid] = self._generation.get(pid, 0) + 1

    def _on_loaded(self, photo_id: int, generation: int, image: QImage) -> None:
        if self._pending.get(photo_id) == generation:
            del self._pending[photo_id]
        if generation != self._generation.get(photo_id, 0):
            return  # decoded from a thumbnail the indexer has replaced since
        if image.isNull():
            self._failed.add(photo_id)
            return
        pix = QPixmap.fromImage(image)
        old = self._cache.pop(photo_id, None)
        if old is not None:
            self._bytes -= pixmap_bytes(old)
        self._cache[photo_id] = pix
        self._bytes += pixmap_bytes(pix)
        self._evict()
        self.ready.emit(photo_id)

    def _evict(self) -> None:
        while self._bytes > self.budget_bytes and self._cache:
            _pid, pix = self._cache.popitem(last=False)
            self._bytes -= pixmap_bytes(pix)

    def wait(self, msecs: int = 5000) -> bool:
        return self.pool.waitForDone(msecs)
