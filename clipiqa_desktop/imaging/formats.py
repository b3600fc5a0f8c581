"""Which files are photos, and the optional decoders (HEIC through pillow-heif, RAW through rawpy)."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

JPEG_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe"})
RAW_EXTENSIONS = frozenset({".cr2", ".cr3", ".nef", ".arw", ".dng", ".raf", ".orf", ".rw2", ".pef"})
HEIF_EXTENSIONS = frozenset({".heic", ".heif", ".hif"})
OTHER_EXTENSIONS = frozenset({".png", ".tif", ".tiff", ".webp", ".bmp", ".gif", ".jp2"})
PHOTO_EXTENSIONS = JPEG_EXTENSIONS | RAW_EXTENSIONS | HEIF_EXTENSIONS | OTHER_EXTENSIONS

_heif_registered: bool | None = None


def ensure_heif() -> bool:
    """Register pillow-heif's opener once; False (with a log line) where it is not installed."""
    global _heif_registered
    if _heif_registered is None:
        try:
            from pillow_heif import register_heif_opener

            register_heif_opener()
            _heif_registered = True
        except ImportError:
            log.warning("pillow-heif is not installed: HEIC/HEIF files cannot be read")
            _heif_registered = False
    return _heif_registered


def is_photo(name: str) -> bool:
    """True for a file name whose extension this product reads (case-insensitive)."""
    dot = name.rfind(".")
    return dot > 0 and name[dot:].lower() in PHOTO_EXTENSIONS
