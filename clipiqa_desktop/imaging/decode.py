"""Fast, faithful decoding of photos into the analysis image (and optionally a thumbnail).

One decode serves both. Steps, in the order that keeps the work smallest:
1. open (JPEG/PNG/TIFF/WebP via Pillow, HEIC via pillow-heif, RAW via its embedded JPEG preview);
   an empty file is refused first, with that reason;
2. refuse images over MAX_PIXELS (decompression bombs) before any pixel is decoded; PNG chunk
   checksums are verified (Pillow does not check the image data's, so a damaged PNG would decode
   into wrong pixels);
3. JPEG: ask the decoder for a DCT-domain downscale (`draft`) to the smallest size that is still at
   least the analysis size, so a 24-megapixel frame decodes at 1/4 or 1/8 of its pixels;
4. convert any mode to 8-bit RGB (16-bit scaled, not clipped; alpha composited on white; CMYK
   through its ICC profile when it has one);
5. resize so the long side equals the analysis size (aspect kept, never upscaled);
6. apply the EXIF orientation (cheaper after the resize; the result is the same).
Every failure raises DecodeError with a short reason a photographer can read ("empty file (0 bytes)",
"not a photo: ...", "truncated file: ...", "damaged PNG (checksum error ...)", "image too large ...",
"file no longer exists ..." for a file deleted or a card pulled after the scan).
"""

from __future__ import annotations

import errno
import io
import math
import stat as stat_mod
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, UnidentifiedImageError

from .formats import HEIF_EXTENSIONS, JPEG_EXTENSIONS, RAW_EXTENSIONS, ensure_heif
from .metadata import PhotoMeta, quiet_pillow, read_meta, read_raw_meta

# Largest image we decode: 200 megapixels covers 150 MP medium-format backs. Pillow's own
# warning-then-error scheme is replaced by this explicit check (see _check_bomb).
MAX_PIXELS = 200_000_000
Image.MAX_IMAGE_PIXELS = None
# Pillow warns about damaged metadata ("Corrupt EXIF data", "Tag data larger than file") while it
# opens and loads files; the photo still decodes, and a line on the user's terminal helps nobody.
# (Test runs turn warnings into errors on top of this; quiet_pillow covers the header reads there.)
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")

_RESAMPLE = Image.Resampling.BICUBIC
_REDUCING_GAP = 3.0  # Pillow: ≥ 3 is "indistinguishable from fair resampling in most cases"
# rawpy's `sizes.flip` -> the EXIF orientation that undoes it.
_RAW_FLIP_TO_EXIF = {0: 1, 3: 3, 5: 8, 6: 6}


class DecodeError(Exception):
    """A photo could not be decoded; str() is the reason, e.g. 'empty file (0 bytes)'."""


@dataclass(frozen=True)
class DecodedPhoto:
    """An upright 8-bit RGB analysis image, plus facts about the original."""

    image: Image.Image
    source_size: tuple[int, int]  # upright width, height of the original (or of a RAW's preview)
    orientation: int  # EXIF orientation 1..8 that was applied
    thumbnail: Image.Image | None = None
    meta: PhotoMeta = field(default_factory=PhotoMeta)
    xmp: bytes | None = field(default=None, repr=False)  # XMP packet embedded in the file, if any
    # The upright full-resolution RGB image, only when asked for (`full=True`: the pixel measures
    # need it); the caller drops it as soon as it has measured (24 MP = 72 MB).
    full: Image.Image | None = field(default=None, repr=False)
    # With `full`, for an image at least twice REDUCED_SIDE long: the full image box-reduced by the
    # largest integer factor that keeps its long side at least REDUCED_SIDE (6000 px: 1200 px), the
    # copy the analysis image, the thumbnail and the face detector's input are made from.
    reduced: Image.Image | None = field(default=None, repr=False)


def target_size(width: int, height: int, long_side: int | None, multiple: int = 1) -> tuple[int, int]:
    """Size whose long side is `long_side` (aspect kept, never larger than the original).

    `None` means full resolution. With `multiple` > 1 (ViT patch size) both sides are rounded to
    the nearest multiple, at least one patch.
    """
    if long_side is None or long_side >= max(width, height):
        w, h = width, height
    else:
        scale = long_side / max(width, height)
        w, h = max(1, round(width * scale)), max(1, round(height * scale))
    if multiple > 1:
        w, h = (max(multiple, multiple * round(v / multiple)) for v in (w, h))
    return w, h


AUTO_SIZE_GPU, AUTO_SIZE_CPU = 1024, 512
# The long side DecodedPhoto.reduced keeps at least: the face detector's input (measures/faces.py
# DETECT_SIDE, tested equal) and the analysis sizes up to 1024.
REDUCED_SIDE = 1024


def model_long_side(size: int | str | None, device_type: str) -> int | None:
    """The analysis long side: 'auto' = 1024 on a GPU, 512 on the CPU; None = full resolution."""
    if size == "auto":
        return AUTO_SIZE_CPU if device_type == "cpu" else AUTO_SIZE_GPU
    assert size is None or isinstance(size, int)
    return size


def size_label(long_side: int | None) -> str:
    """How an analysis size is recorded with scores: '512', or 'full' for full resolution."""
    return "full" if long_side is None else str(long_side)


def _check_bomb(img: Image.Image) -> None:
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise DecodeError(
            f"image too large ({w} × {h} px) — refused as a possible decompression bomb "
            f"({w * h / 1e6:,.0f} megapixels; the limit is {MAX_PIXELS // 1_000_000})"
        )


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_checksum_error(path: Path) -> str | None:
    """The first PNG chunk whose stored CRC does not match its bytes ('IDAT'), or None if all match.

    Pillow checks only the header chunks' CRCs; a flipped bit in the image data can decode into
    wrong pixels without any error, so PNGs are checked here (crc32 runs at GB/s)."""
    with open(path, "rb") as f:
        if f.read(8) != _PNG_SIGNATURE:
            return None
        while True:
            head = f.read(8)
            if len(head) < 8:
                return None  # truncation is reported by the decoder
            length, kind = int.from_bytes(head[:4], "big"), head[4:]
            crc = zlib.crc32(kind)
            left = length
            while left:
                block = f.read(min(left, 1 << 20))
                if not block:
                    return None
                crc = zlib.crc32(block, crc)
                left -= len(block)
            stored = f.read(4)
            if len(stored) < 4:
                return None
            if int.from_bytes(stored, "big") != crc:
                return kind.decode("latin-1")
            if kind == b"IEND":
                return None


def _damaged_png(path: Path) -> DecodeError | None:
    chunk = _png_checksum_error(path)
    if chunk is None:
        return None
    if chunk == "IDAT":
        where = "image data"
    elif chunk.isascii() and chunk.isalpha():
        where = f"{chunk} chunk"
    else:  # the chunk's name is itself damaged
        where = "structure"
    return DecodeError(f"damaged PNG (checksum error): its {where} was corrupted")


def _unidentified(path: Path) -> DecodeError:
    """Why Pillow could not even recognise the file, said by its first bytes."""
    with open(path, "rb") as f:
        head = f.read(16)
    if head.startswith(_PNG_SIGNATURE):
        return _damaged_png(path) or DecodeError("damaged PNG: its header cannot be read")
    for kind, test in _SIGNATURES:
        if test(head):
            return DecodeError(f"damaged {kind}: its header cannot be read")
    if head[4:8] == b"ftyp" or head.startswith(b"\xff\x0a") or head[4:8] == b"JXL ":
        return DecodeError("cannot decode: not an image format this program reads")  # AVIF, JPEG XL
    return DecodeError("not a photo: the file's contents are not an image")


_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1")
# Formats this program reads, recognised by their first bytes when Pillow cannot open the file.
_SIGNATURES: tuple[tuple[str, Callable[[bytes], bool]], ...] = (
    ("JPEG", lambda h: h.startswith(b"\xff\xd8")),
    ("TIFF", lambda h: h[:4] in (b"II*\0", b"MM\0*")),
    ("GIF", lambda h: h[:4] == b"GIF8"),
    ("WebP", lambda h: h[:4] == b"RIFF" and h[8:12] == b"WEBP"),
    ("HEIC", lambda h: h[4:8] == b"ftyp" and h[8:12] in _HEIF_BRANDS),
)


def _open_raw(path: Path) -> tuple[Image.Image, int | None]:
    """The embedded JPEG preview of a camera RAW file, and the orientation rawpy reports."""
    try:
        import rawpy
    except ImportError as exc:
        raise DecodeError("cannot decode RAW: rawpy is not installed") from exc
    try:
        with rawpy.imread(str(path)) as raw:
            flip = int(getattr(raw.sizes, "flip", 0))
            thumb = raw.extract_thumb()
    except rawpy.LibRawNoThumbnailError as exc:
        raise DecodeError("cannot decode: RAW file has no embedded preview") from exc
    except (rawpy.LibRawFileUnsupportedError, rawpy.LibRawIOError, rawpy.LibRawError) as exc:
        if not path.exists():
            raise DecodeError(describe_os_error(FileNotFoundError(errno.ENOENT, "gone"))) from exc
        raise DecodeError(
            f"cannot decode: unreadable or unsupported RAW file ({type(exc).__name__})"
        ) from exc
    img: Image.Image
    if thumb.format == rawpy.ThumbFormat.JPEG:
        img = Image.open(io.BytesIO(bytes(thumb.data)))
    else:
        img = Image.fromarray(np.asarray(thumb.data))
    return img, _RAW_FLIP_TO_EXIF.get(flip)


def _orientation(img: Image.Image) -> int:
    try:
        with quiet_pillow():
            value = int(img.getexif().get(0x0112, 1))
    except Exception:  # unreadable EXIF (struct.error, IndexError, ...) is not worth failing the photo for
        return 1
    return value if 1 <= value <= 8 else 1


def to_rgb8(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB, without clipping 16-bit or float data."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(img)
        if mode == "F":
            arr = arr * 255.0 if float(np.nanmax(arr, initial=0.0)) <= 1.0 else arr
        elif mode.startswith("I;16") or int(arr.max(initial=0)) > 255:
            arr = arr.astype(np.float64) / 257.0  # 0..65535 -> 0..255
        arr8 = np.clip(np.nan_to_num(np.asarray(arr, dtype=np.float64)) + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, "L").convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode == "CMYK" and img.info.get("icc_profile"):
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(img.info["icc_profile"]))
            out = ImageCms.profileToProfile(img, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
            if out is not None:
                return out
        except (ImageCms.PyCMSError, OSError):
            pass  # a broken profile falls back to the plain conversion below
    try:
        return img.convert("RGB")
    except ValueError as exc:
        raise DecodeError(f"cannot decode: unsupported colour mode {mode}") from exc


def _open(path: Path) -> tuple[Image.Image, int | None]:
    suffix = path.suffix.lower()
    if suffix in RAW_EXTENSIONS:
        return _open_raw(path)
    if suffix in HEIF_EXTENSIONS and not ensure_heif():
        raise DecodeError("cannot decode HEIC: pillow-heif is not installed")
    with quiet_pillow():  # JPEG reads its EXIF while opening
        return Image.open(path), None


def decode_photo(
    path: str | Path,
    long_side: int | None,
    thumb_long_side: int | None = None,
    multiple: int = 1,
    full: bool = False,
) -> DecodedPhoto:
    """Decode `path` into an upright RGB analysis image whose long side is `long_side` (None = full).

    `multiple` rounds the analysis size to a multiple (ViT patch size). With `thumb_long_side` a
    thumbnail is made from the same decode. With `full` the file is decoded at its full resolution
    (no JPEG draft scaling) and `DecodedPhoto.full` holds the upright full-resolution image, and
    `DecodedPhoto.reduced` a box-reduced copy (REDUCED_SIDE); the analysis image and thumbnail
    are resized from them (one decode for everything).
    """
    path = Path(path)
    try:
        st = path.stat()
        if not stat_mod.S_ISREG(st.st_mode) and not stat_mod.S_ISDIR(st.st_mode):
            # opening a named pipe would wait forever; a device would be read for ever
            raise DecodeError("not a photo: not a regular file (a named pipe, socket or device)")
        if st.st_size == 0:
            raise DecodeError("empty file (0 bytes)")
        img, raw_orientation = _open(path)
        with img:
            _check_bomb(img)
            if img.format == "PNG":
                damaged = _damaged_png(path)
                if damaged is not None:
                    raise damaged
            stored_w, stored_h = img.size
            # Sizes wanted, in the file's stored orientation.
            tw, th = target_size(stored_w, stored_h, long_side, multiple)
            need = max(long_side or max(stored_w, stored_h), thumb_long_side or 0)
            if path.suffix.lower() in JPEG_EXTENSIONS or img.format == "JPEG":
                scale = need / max(stored_w, stored_h)
                if scale < 1 and not full:
                    img.draft("RGB", (math.ceil(stored_w * scale), math.ceil(stored_h * scale)))
            # Load before reading EXIF: for PNG/WebP getexif() loads the pixels, and a failure there
            # (swallowed as "unreadable EXIF") would leave a half-decoded image that load() accepts.
            img.load()
            orientation = _orientation(img)
            meta = read_meta(img)
            if path.suffix.lower() in RAW_EXTENSIONS:  # its preview's EXIF is often bare
                meta = read_raw_meta(path, meta)
            xmp = img.info.get("xmp")
            if orientation == 1 and raw_orientation is not None:
                orientation = raw_orientation
            swap = orientation in (5, 6, 7, 8)
            up_w, up_h = (stored_h, stored_w) if swap else (stored_w, stored_h)
            rgb = to_rgb8(img)
    except DecodeError:
        raise
    except UnidentifiedImageError as exc:
        raise _describe_unidentified(path) from exc
    except Image.DecompressionBombError as exc:
        raise DecodeError(f"image too large — refused as a possible decompression bomb ({exc})") from exc
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        raise DecodeError(_describe_failure(path, exc)) from exc
    except Exception as exc:  # a decoder's own bug on a damaged file (struct.error, IndexError...)
        raise DecodeError(f"damaged {_kind(path)}: it could not be decoded ({type(exc).__name__})") from exc

    try:
        return _finish(rgb, (tw, th), thumb_long_side, orientation, (up_w, up_h), meta, xmp, full)
    except (OSError, ValueError, MemoryError) as exc:
        raise DecodeError(_describe_failure(path, exc)) from exc


def _finish(
    rgb: Image.Image,
    size: tuple[int, int],
    thumb_long_side: int | None,
    orientation: int,
    upright: tuple[int, int],
    meta: PhotoMeta,
    xmp: object,
    full: bool = False,
) -> DecodedPhoto:
    """Resize to the analysis size, make the thumbnail, apply the orientation."""
    # From a full-resolution decode (the pixel measures'): one box reduction by an integer factor
    # (`reduced`, which the face detector's input is also made from), the bicubic filter on the rest.
    # 24 MP to 512 px: 0.34 s for the bicubic filter over the whole frame, 0.15 s this way, the
    # pixels within 7 levels of it (mean 0.3: below JPEG's own error). Other decodes take Pillow's
    # `reducing_gap` (a JPEG's draft decode comes within 6x of the size, where it changes nothing).
    factor = max(rgb.size) // REDUCED_SIDE if full else 1
    reduced = rgb.reduce(factor) if factor >= 2 else None
    source = reduced if reduced is not None and max(reduced.size) >= max(size) else rgb
    analysis = source if source.size == size else source.resize(size, _RESAMPLE, reducing_gap=_REDUCING_GAP)
    thumb = None
    if thumb_long_side:
        base = analysis if thumb_long_side <= max(analysis.size) else source
        thumb = base.copy()
        thumb.thumbnail((thumb_long_side, thumb_long_side), _RESAMPLE)
        thumb = _apply_orientation(thumb, orientation)
    return DecodedPhoto(
        image=_apply_orientation(analysis, orientation),
        source_size=upright,
        orientation=orientation,
        thumbnail=thumb,
        meta=meta,
        xmp=xmp if isinstance(xmp, bytes) else (xmp.encode() if isinstance(xmp, str) else None),
        full=_apply_orientation(rgb, orientation) if full else None,
        reduced=_apply_orientation(reduced, orientation) if reduced is not None else None,
    )


_TRANSPOSE = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT,),
    3: (Image.Transpose.ROTATE_180,),
    4: (Image.Transpose.FLIP_TOP_BOTTOM,),
    5: (Image.Transpose.TRANSPOSE,),
    6: (Image.Transpose.ROTATE_270,),
    7: (Image.Transpose.TRANSVERSE,),
    8: (Image.Transpose.ROTATE_90,),
}


def _apply_orientation(img: Image.Image, orientation: int) -> Image.Image:
    """Same transforms as ImageOps.exif_transpose, for an image that no longer carries EXIF."""
    for op in _TRANSPOSE.get(orientation, ()):
        img = img.transpose(op)
    return img


# The words `root_vanished` callers and the indexer look for when files disappear mid-run.
FILE_GONE = "file no longer exists"
_DEVICE_GONE = {
    getattr(errno, name) for name in ("EIO", "ENODEV", "ENXIO", "ESTALE", "ENOMEDIUM") if hasattr(errno, name)
}


def describe_os_error(exc: OSError) -> str:
    """A file-system error while reading a photo, in a photographer's words."""
    if isinstance(exc, FileNotFoundError):
        return f"{FILE_GONE} (deleted, moved, or its card removed after the folder was read)"
    if isinstance(exc, PermissionError):
        return "permission denied: your user may not read this file"
    if isinstance(exc, IsADirectoryError):
        return "is a folder, not a photo"
    if exc.errno in _DEVICE_GONE:
        return f"cannot read the file: {exc.strerror or 'input/output error'} (was the card or disk removed?)"
    return f"cannot read the file: {exc.strerror or exc}"


def _describe_unidentified(path: Path) -> DecodeError:
    try:
        return _unidentified(path)
    except OSError as exc:
        return DecodeError(describe_os_error(exc))


def _kind(path: Path) -> str:
    if path.suffix.lower() in JPEG_EXTENSIONS:
        return "JPEG"
    suffix = path.suffix[1:].upper()
    return {"TIF": "TIFF", "WEBP": "WebP", "HEIF": "HEIC", "HIF": "HEIC"}.get(suffix, suffix or "image")


# What Pillow's decoders say when the compressed image data is damaged.
_DAMAGED_DATA = (
    "broken data stream",
    "unrecognized data stream",
    "could not create decoder",
    "decoder error",
    "failed to read next frame",
)


def _describe_failure(path: Path, exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno is not None:
        return describe_os_error(exc)  # a file-system error, not a decoding one
    text = str(exc)
    kind = _kind(path)
    if any(t in text.lower() for t in ("truncated", "end of file")) or isinstance(exc, EOFError):
        return f"truncated file: the {kind} data stops part-way (an incomplete copy or download?)"
    if isinstance(exc, MemoryError):
        return "cannot decode: not enough memory"
    if kind == "PNG":
        try:
            damaged = _damaged_png(path)
        except OSError as os_exc:
            return describe_os_error(os_exc)
        if damaged is not None:
            return str(damaged)
    if kind == "HEIC" or any(t in text for t in _DAMAGED_DATA):  # libheif: "Invalid input: ..."
        return f"damaged {kind}: its image data is corrupt or incomplete"
    detail = text or type(exc).__name__
    return f"cannot decode: the {kind} is damaged or of a variant this program does not read ({detail})"
