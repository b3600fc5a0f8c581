"""Photo files with camera EXIF written by Pillow (IFD0 + the EXIF sub-IFD 0x8769), for the tests
of the camera facts that grouping uses: exposure bias, subject distance, sub-second capture time."""

from __future__ import annotations

import datetime
import io
import struct
from fractions import Fraction
from pathlib import Path

from PIL import Image, TiffImagePlugin

from ..conftest import photo

MAKE, MODEL, DATETIME = 0x010F, 0x0110, 0x0132
EXIF_IFD = 0x8769
DATETIME_ORIGINAL, SUBSEC, SUBSEC_ORIGINAL = 0x9003, 0x9290, 0x9291
EXPOSURE, FNUMBER, ISO, BIAS, DISTANCE = 0x829A, 0x829D, 0x8827, 0x9204, 0x9206


def _rational(value: float | Fraction) -> TiffImagePlugin.IFDRational:
    f = Fraction(value).limit_denominator(1000)
    return TiffImagePlugin.IFDRational(f.numerator, f.denominator)


def exif_tags(
    captured: str | None = "2024:05:01 10:00:00",
    subsec: str | None = None,
    bias: float | Fraction | None = None,
    distance: float | tuple[int, int] | None = None,
    make: str | None = "Canon",
    model: str | None = "Canon EOS R5",
    exposure: Fraction | None = Fraction(1, 250),
    f_number: float | None = 2.8,
    iso: int | None = 400,
    subsec_plain: str | None = None,
) -> tuple[dict[int, object], dict[int, object]]:
    """(IFD0 tags, EXIF IFD tags) as a camera writes them. `distance` as (numerator, denominator)
    writes that exact rational (0xFFFFFFFF/1 is infinity)."""
    ifd0: dict[int, object] = {}
    sub: dict[int, object] = {}
    if make is not None:
        ifd0[MAKE] = make
    if model is not None:
        ifd0[MODEL] = model
    if captured is not None:
        sub[DATETIME_ORIGINAL] = captured
    if subsec is not None:
        sub[SUBSEC_ORIGINAL] = subsec
    if subsec_plain is not None:
        sub[SUBSEC] = subsec_plain
    if bias is not None:
        sub[BIAS] = _rational(bias)
    if distance is not None:
        sub[DISTANCE] = (
            TiffImagePlugin.IFDRational(*distance) if isinstance(distance, tuple) else _rational(distance)
        )
    if exposure is not None:
        sub[EXPOSURE] = _rational(exposure)
    if f_number is not None:
        sub[FNUMBER] = _rational(f_number)
    if iso is not None:
        sub[ISO] = iso
    return ifd0, sub


def exif_block(**tags: object) -> Image.Exif:
    ifd0, sub = exif_tags(**tags)  # type: ignore[arg-type]
    exif = Image.Exif()
    for k, v in ifd0.items():
        exif[k] = v
    inner = exif.get_ifd(EXIF_IFD)
    inner.update(sub)
    return exif


def save_with_exif(
    path: Path, fmt: str = "JPEG", size: tuple[int, int] = (64, 48), seed: int = 0, **tags: object
) -> Path:
    """A small photo-like image in `fmt` (JPEG, TIFF, WEBP, PNG, HEIF) carrying those tags."""
    img = photo(*size, seed=seed)
    if fmt == "TIFF":  # Pillow writes the EXIF sub-IFD of a TIFF from tiffinfo
        ifd0, sub = exif_tags(**tags)  # type: ignore[arg-type]
        img.save(path, "TIFF", tiffinfo={**ifd0, EXIF_IFD: sub})
    else:
        img.save(path, fmt, exif=exif_block(**tags).tobytes())
    return path


def tiff_bytes(**tags: object) -> bytes:
    """A TIFF-structured file as TIFF-based RAWs are (CR2, NEF, ARW, DNG: IFD0 + EXIF IFD)."""
    buf = io.BytesIO()
    ifd0, sub = exif_tags(**tags)  # type: ignore[arg-type]
    photo(32, 24).save(buf, "TIFF", tiffinfo={**ifd0, EXIF_IFD: sub})
    return buf.getvalue()


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def cr3_bytes(**tags: object) -> bytes:
    """A Canon CR3's header: ftyp 'crx ', moov > uuid > CMT1 (IFD0 as a TIFF) + CMT2 (EXIF IFD as
    a TIFF's IFD0), then filler where the image data would be."""
    ifd0, sub = exif_tags(**tags)  # type: ignore[arg-type]
    cmt1, cmt2 = Image.Exif(), Image.Exif()
    cmt1.update(ifd0)
    cmt2.update(sub)
    tiff1 = cmt1.tobytes()[6:]  # without "Exif\0\0"
    tiff2 = cmt2.tobytes()[6:]
    uuid = bytes.fromhex("85c0b687820f11e08111f4ce462b6a48")
    canon = _box(
        b"uuid",
        uuid + _box(b"CNCV", b"CanonCR3_001/00.09.00/00.00.00") + _box(b"CMT1", tiff1) + _box(b"CMT2", tiff2),
    )
    return _box(b"ftyp", b"crx \x00\x00\x00\x01crx isom") + _box(b"moov", canon) + b"\x00" * 4096


def raf_bytes(**tags: object) -> bytes:
    """A Fujifilm RAF: its header points (bytes 84, 88) at an embedded JPEG carrying the EXIF."""
    buf = io.BytesIO()
    photo(32, 24).save(buf, "JPEG", exif=exif_block(**tags).tobytes())
    jpeg = buf.getvalue()
    head = b"FUJIFILMCCD-RAW 0201FF383501".ljust(84, b"\x00")
    offset = 160
    head += struct.pack(">II", offset, len(jpeg))
    return head.ljust(offset, b"\x00") + jpeg + b"\x00" * 1024


def save_frame(
    path: Path, rgb: object, when: datetime.datetime, bias: float, sharp: bool, quality: int = 90
) -> None:
    """One frame of a generated shoot as a camera writes it: `rgb` (uint8 H×W×3) exposed by `bias`
    EV in linear light and blurred unless `sharp`, saved as a JPEG with a Canon's EXIF capture time
    to the hundredth of a second, exposure bias and a shutter time that follows the bias."""
    import numpy as np
    from PIL import ImageFilter

    pixels = np.asarray(rgb)
    if bias:
        pixels = (np.clip((pixels / 255.0) ** 2.2 * 2.0**bias, 0, 1) ** (1 / 2.2) * 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    if not sharp:
        image = image.filter(ImageFilter.GaussianBlur(4))
    exif = exif_block(
        captured=when.strftime("%Y:%m:%d %H:%M:%S"),
        subsec=f"{when.microsecond // 10_000:02d}",
        bias=Fraction(bias),
        exposure=Fraction(1, 250) * Fraction(2) ** int(bias),
        f_number=None,
        iso=None,
    )
    image.save(path, quality=quality, exif=exif.tobytes())
