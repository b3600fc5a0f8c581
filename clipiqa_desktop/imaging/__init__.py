"""Decoding photos (Pillow, pillow-heif, rawpy). No Qt, no torch."""

from .decode import MAX_PIXELS, DecodedPhoto, DecodeError, decode_photo, target_size, to_rgb8
from .formats import PHOTO_EXTENSIONS, RAW_EXTENSIONS, is_photo

__all__ = [
    "MAX_PIXELS",
    "PHOTO_EXTENSIONS",
    "RAW_EXTENSIONS",
    "DecodeError",
    "DecodedPhoto",
    "decode_photo",
    "is_photo",
    "target_size",
    "to_rgb8",
]
