"""Decoding photos (Pillow, pillow-heif, rawpy). No Qt, no torch."""

from .decode import MAX_PIXELS, DecodedPhoto, DecodeError, decode_photo, size_label, target_size, to_rgb8
from .formats import PHOTO_EXTENSIONS, RAW_EXTENSIONS, is_photo
from .metadata import PhotoMeta, read_meta

__all__ = [
    "MAX_PIXELS",
    "PHOTO_EXTENSIONS",
    "RAW_EXTENSIONS",
    "DecodeError",
    "DecodedPhoto",
    "PhotoMeta",
    "decode_photo",
    "is_photo",
    "read_meta",
    "size_label",
    "target_size",
    "to_rgb8",
]
