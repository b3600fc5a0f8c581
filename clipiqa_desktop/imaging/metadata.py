"""Camera facts from EXIF: capture time (to the sub-second), camera, lens, exposure, exposure bias,
subject distance. Reading them costs < 0.3 ms.

Where they come from: JPEG, TIFF, PNG, WebP and HEIC through Pillow (pillow-heif) from the opened
image. A camera RAW's embedded preview often carries no EXIF (Canon CR2/CR3, DNG, most NEF/ARW
previews), so `read_raw_meta` reads the RAW file's own header: TIFF-based RAWs (CR2, NEF, ARW, DNG,
PEF, ORF, RW2) through their IFD0 and EXIF IFD, CR3 through its CMT1/CMT2 boxes, RAF through the
JPEG it embeds; the preview's facts fill what the header lacks. `read_file_meta` reads the facts of
a file without decoding its pixels (re-reading photos indexed before a fact existed).
"""

from __future__ import annotations

import contextlib
import io
import re
import struct
import threading
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, Any

from PIL import Image

from .formats import HEIF_EXTENSIONS, RAW_EXTENSIONS, ensure_heif

# What `read_meta` extracts, stored per photo (photos.meta_version): a photo read by an older
# version (or before the catalog kept it: NULL) has its facts read again from the file's header.
# 2: exposure_bias, subject_distance, subsec.
META_VERSION = 2

_EXIF_IFD = 0x8769
_TAGS_IFD0 = {"camera_make": 0x010F, "camera_model": 0x0110}
_DATETIME, _DATETIME_ORIGINAL = 0x0132, 0x9003
_EXPOSURE, _FNUMBER, _ISO, _FOCAL, _LENS = 0x829A, 0x829D, 0x8827, 0x920A, 0xA434
_EXPOSURE_BIAS, _SUBJECT_DISTANCE = 0x9204, 0x9206
_SUBSEC, _SUBSEC_ORIGINAL = 0x9290, 0x9291
_UNKNOWN_DISTANCE = 0xFFFFFFFF  # SubjectDistance 0xFFFFFFFF/1 = infinity; 0 = unknown (EXIF 2.3)


_QUIET = threading.Lock()


@contextlib.contextmanager
def quiet_pillow() -> Iterator[None]:
    """Silence Pillow's warnings (e.g. "Corrupt EXIF data") while a file is opened or its EXIF read:
    a camera's broken EXIF is not worth a line on the user's terminal, the photo is decoded without
    it. Only the short header reads are wrapped; the lock keeps decoding threads from restoring each
    other's warning filters (catch_warnings is process-wide)."""
    with _QUIET, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@dataclass(frozen=True)
class PhotoMeta:
    """What EXIF says about a photo; None where the file does not say."""

    captured_at: str | None = None  # ISO 8601, local camera time
    camera_make: str | None = None
    camera_model: str | None = None
    lens: str | None = None
    exposure_time: float | None = None  # seconds
    f_number: float | None = None
    iso: int | None = None
    focal_length: float | None = None  # mm
    exposure_bias: float | None = None  # EV (ExposureBiasValue: exposure compensation, brackets)
    subject_distance: float | None = None  # metres (SubjectDistance); None: unknown or infinity
    subsec: float | None = None  # fraction of a second of captured_at (SubSecTimeOriginal)


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    out = str(value).strip("\x00 ").strip()
    return out or None


def _number(value: object) -> float | None:
    if isinstance(value, tuple):
        value = value[0] if value else None
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return out if out == out and out not in (float("inf"), float("-inf")) else None


def _iso_time(value: object) -> str | None:
    text = _text(value)
    if not text or len(text) < 19 or text.startswith("0000"):
        return None
    date, _, clock = text[:19].partition(" ")
    return f"{date.replace(':', '-')}T{clock}" if clock else None


def _subsec(value: object) -> float | None:
    """SubSecTime* ("25" -> 0.25, "045" -> 0.045; ASCII digits, maybe padded with spaces)."""
    text = _text(value)
    digits = re.match(r"\d+", text) if text else None
    if digits is None:
        return None
    d = digits.group()[:9]
    return int(d) / 10 ** len(d)


def _distance(value: object) -> float | None:
    metres = _number(value)
    if metres is None or metres <= 0 or metres >= _UNKNOWN_DISTANCE:
        return None
    return metres


def read_meta(img: Image.Image) -> PhotoMeta:
    """Extract PhotoMeta from an opened image; broken EXIF gives an empty PhotoMeta, never an error."""
    with quiet_pillow():
        return _image_meta(img)


def _image_meta(img: Image.Image) -> PhotoMeta:
    """read_meta inside quiet_pillow (its lock is not re-entrant)."""
    try:
        exif = img.getexif()
        sub = exif.get_ifd(_EXIF_IFD)
    except Exception:  # struct.error, IndexError, ... from a malformed EXIF block
        return PhotoMeta()
    return _meta(exif, sub)


def _meta(ifd0: Mapping[int, Any], sub: Mapping[int, Any]) -> PhotoMeta:
    """PhotoMeta from IFD0 (camera, DateTime) and the EXIF IFD's tags."""
    iso = _number(sub.get(_ISO))
    return PhotoMeta(
        captured_at=_iso_time(sub.get(_DATETIME_ORIGINAL) or ifd0.get(_DATETIME)),
        camera_make=_text(ifd0.get(_TAGS_IFD0["camera_make"])),
        camera_model=_text(ifd0.get(_TAGS_IFD0["camera_model"])),
        lens=_text(sub.get(_LENS)),
        exposure_time=_number(sub.get(_EXPOSURE)),
        f_number=_number(sub.get(_FNUMBER)),
        iso=int(iso) if iso is not None else None,
        focal_length=_number(sub.get(_FOCAL)),
        exposure_bias=_number(sub.get(_EXPOSURE_BIAS)),
        subject_distance=_distance(sub.get(_SUBJECT_DISTANCE)),
        subsec=_subsec(sub.get(_SUBSEC_ORIGINAL) or sub.get(_SUBSEC)),
    )


def merged(first: PhotoMeta, then: PhotoMeta) -> PhotoMeta:
    """`first`'s facts, with `then`'s where `first` has none."""
    return PhotoMeta(
        **{
            f.name: getattr(first, f.name) if getattr(first, f.name) is not None else getattr(then, f.name)
            for f in fields(PhotoMeta)
        }
    )


# --- RAW headers ------------------------------------------------------------------------------
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*")
# Olympus ORF ("IIRO", "IIRS", "MMOR") and Panasonic RW2 ("IIU\x00") are TIFF with their own magic.
_TIFF_LIKE = {b"IIRO": b"II*\x00", b"IIRS": b"II*\x00", b"IIU\x00": b"II*\x00", b"MMOR": b"MM\x00*"}
_CR3_HEAD = 256 * 1024  # the CMT boxes sit in the moov box at the start of a CR3
_RAF_MAGIC = b"FUJIFILMCCD-RAW"


class _Magic(io.RawIOBase):
    """A file whose first four bytes read as a standard TIFF magic (for ORF, RW2)."""

    def __init__(self, fp: IO[bytes], magic: bytes) -> None:
        self._fp, self._magic = fp, magic

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fp.seek(offset, whence)

    def tell(self) -> int:
        return self._fp.tell()

    def read(self, size: int = -1) -> bytes:
        at = self._fp.tell()
        data = self._fp.read(size)
        if at < 4 and data:
            patch = self._magic[at:4][: len(data)]
            data = patch + data[len(patch) :]
        return data

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def _tiff_meta(fp: IO[bytes]) -> PhotoMeta:
    """IFD0 + EXIF IFD of a TIFF-structured file, read in place (only the IFDs are read)."""
    exif = Image.Exif()
    exif.load_from_fp(fp)
    return _meta(exif, exif.get_ifd(_EXIF_IFD))


def _cr3_meta(head: bytes) -> PhotoMeta:
    """Canon CR3: CMT1 is IFD0 as a TIFF of its own, CMT2 the EXIF IFD (as that TIFF's IFD0)."""
    parts = []
    for box in (b"CMT1", b"CMT2"):
        at = head.find(box)
        if at < 4:
            return PhotoMeta()
        size = struct.unpack(">I", head[at - 4 : at])[0]
        exif = Image.Exif()
        exif.load(head[at + 4 : at - 4 + size])
        parts.append(exif)
    return _meta(parts[0], dict(parts[1]))


def _raf_meta(fp: IO[bytes]) -> PhotoMeta:
    """Fujifilm RAF: the JPEG it embeds (offset and length at bytes 84 and 88) carries the EXIF."""
    fp.seek(84)
    offset, length = struct.unpack(">II", fp.read(8))
    fp.seek(offset)
    head = fp.read(min(length, 128 * 1024))  # APP1 (EXIF) comes first, at most 64 KiB
    with Image.open(io.BytesIO(head)) as img:
        return _image_meta(img)


def read_raw_meta(path: Path, preview: PhotoMeta | None = None) -> PhotoMeta:
    """A camera RAW's facts from its own header, `preview`'s (the embedded JPEG's EXIF) filling
    what it lacks; an unknown layout or a damaged header gives `preview`'s, never an error."""
    found = PhotoMeta()
    try:
        with quiet_pillow(), open(path, "rb") as fp:
            magic = fp.read(16)
            fp.seek(0)
            if magic[:4] in _TIFF_MAGIC:
                found = _tiff_meta(fp)
            elif magic[:4] in _TIFF_LIKE:
                found = _tiff_meta(_Magic(fp, _TIFF_LIKE[magic[:4]]))  # type: ignore[arg-type]
            elif magic[4:12] == b"ftypcrx ":
                found = _cr3_meta(fp.read(_CR3_HEAD))
            elif magic[:15] == _RAF_MAGIC:
                found = _raf_meta(fp)
    except Exception:  # OSError, struct.error, SyntaxError ("not a TIFF file"), ...
        found = PhotoMeta()
    return merged(found, preview) if preview is not None else found


_WARM = 64 * 1024  # where EXIF (a JPEG's APP1, a TIFF's IFDs) sits in nearly every file


def read_file_meta(path: Path) -> PhotoMeta | None:
    """A photo file's facts without decoding its pixels (its header only; a RAW without them in its
    header: its embedded preview's); None when the file cannot be opened."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:  # outside quiet_pillow's lock, so that threads overlap the reads of a slow card or share
        with open(path, "rb") as fp:
            fp.read(_WARM)
    except OSError:
        return None
    if suffix in RAW_EXTENSIONS:
        found = read_raw_meta(path)
        if found != PhotoMeta():
            return found
        return _raw_preview_meta(path)
    if suffix in HEIF_EXTENSIONS and not ensure_heif():
        return None
    try:
        with quiet_pillow(), Image.open(path) as img:
            if img.format == "PNG" and "exif" not in img.info:
                return PhotoMeta()  # its getexif() would decode the pixels to look for an eXIf chunk
            return _image_meta(img)
    except Exception:  # unreadable, gone, not an image: left as it is
        return None


def _raw_preview_meta(path: Path) -> PhotoMeta | None:
    try:
        import rawpy

        with rawpy.imread(str(path)) as raw:
            thumb = raw.extract_thumb()
        if thumb.format != rawpy.ThumbFormat.JPEG:
            return PhotoMeta()
        with quiet_pillow(), Image.open(io.BytesIO(bytes(thumb.data))) as img:
            return _image_meta(img)
    except Exception:  # no rawpy, no preview, unsupported or damaged RAW
        return None
