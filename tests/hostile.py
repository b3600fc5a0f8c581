"""A hostile shoot: real files of every awkward kind a memory card or a download folder holds.

`write_hostile_shoot(folder)` writes them and returns one `HostileCase` per file, saying whether the
product must score it or record it as failed, and which words the recorded reason must contain.
The tests (tests/indexing/test_hostile_inputs.py, tests/imaging) and the reliability report
(docs/reliability.md) run the product over this folder. Everything is written with Pillow, numpy
or plain bytes (16-bit RGB PNG/TIFF by hand: Pillow cannot write them), seeded so runs repeat.

Dynamic cases (a symlink loop, a file deleted or replaced while indexing, a card pulled out) are
helpers the tests call at the moment they need them.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from .conftest import photo, photo_array


@dataclass(frozen=True)
class HostileCase:
    rel_path: str  # path inside the shoot folder, '/'-separated
    kind: str  # short label, e.g. "zero-byte", "cmyk-jpeg"
    expect: Literal["scored", "failed"]
    reason: str | None = None  # words the recorded error must contain (failed cases only)


# Names that test the file system and the output code rather than the decoder.
LONG_NAME = "long_name_" + "x" * 166 + ".jpg"  # 180 characters
SPACE_NAME = "with space.jpg"
ACCENT_NAME = "café été à Noël.jpg"
EMOJI_NAME = "📷 sunset 🌅.jpg"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_rgb16(arr: np.ndarray) -> bytes:
    """A 16-bit-per-channel RGB PNG (what scanners and raw converters export)."""
    h, w, _ = arr.shape
    rows = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
        + _png_chunk(b"IDAT", zlib.compress(rows))
        + _png_chunk(b"IEND", b"")
    )


def tiff_rgb16(arr: np.ndarray) -> bytes:
    """A baseline uncompressed little-endian 16-bit RGB TIFF (Lightroom's '16-bit TIFF' export)."""
    h, w, _ = arr.shape
    data = arr.astype("<u2").tobytes()
    bps_at, data_at = 8, 16
    ifd_at = data_at + len(data)
    tags = [  # (tag, type 3=SHORT 4=LONG, count, value or offset)
        (256, 3, 1, w),
        (257, 3, 1, h),
        (258, 3, 3, bps_at),
        (259, 3, 1, 1),  # no compression
        (262, 3, 1, 2),  # RGB
        (273, 4, 1, data_at),
        (277, 3, 1, 3),
        (278, 3, 1, h),
        (279, 4, 1, len(data)),
        (284, 3, 1, 1),  # chunky
    ]
    ifd = struct.pack("<H", len(tags))
    for tag, typ, count, value in tags:
        if typ == 3 and count == 1:
            ifd += struct.pack("<HHIHH", tag, typ, count, value, 0)
        else:
            ifd += struct.pack("<HHII", tag, typ, count, value)
    ifd += struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", ifd_at) + struct.pack("<HHH", 16, 16, 16) + b"\0\0" + data + ifd


def _rgb16(width: int, height: int, seed: int) -> np.ndarray:
    arr8 = photo_array(width, height, seed).astype(np.uint16)
    return arr8 * 257 + np.random.default_rng(seed).integers(0, 257, arr8.shape, dtype=np.uint16)


def _jpeg_bytes(img: Image.Image, **save: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, **save)
    return buf.getvalue()


def jpeg_claiming_size(width: int, height: int) -> bytes:
    """A small valid JPEG whose frame header (SOF0) claims `width` × `height` pixels."""
    data = bytearray(_jpeg_bytes(photo(64, 48, seed=9)))
    sof = data.find(b"\xff\xc0")
    assert sof > 0, "Pillow wrote no baseline SOF0 marker"
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def png_with_bad_checksum(header: bool = False) -> bytes:
    """A PNG damaged on the card: one flipped byte in the image data (or the header), CRC unchanged."""
    buf = io.BytesIO()
    photo(96, 64, seed=5).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    if header:
        data[8 + 8 + 5] ^= 0x40  # inside IHDR's width/height field
        return bytes(data)
    pos = 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"IDAT":
            data[pos + 8 + length // 2] ^= 0x55
            return bytes(data)
        pos += 12 + length
    raise AssertionError("no IDAT chunk")


def jpeg_with_corrupt_exif() -> bytes:
    """A JPEG whose EXIF block (APP1) is garbage after a valid TIFF header, as some phone apps write."""
    data = _jpeg_bytes(photo(300, 200, seed=30))
    junk = b"Exif\0\0II*\0\x08\0\0\0" + np.random.default_rng(30).integers(0, 256, 200, np.uint8).tobytes()
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(junk) + 2) + junk + data[2:]


def _heic_bytes(img: Image.Image) -> bytes | None:
    try:
        import pillow_heif

        buf = io.BytesIO()
        pillow_heif.from_pillow(img).save(buf, quality=85)
        return buf.getvalue()
    except (ImportError, RuntimeError, ValueError, OSError):
        return None  # this pillow-heif build cannot encode: the case is left out


def write_hostile_shoot(folder: Path) -> list[HostileCase]:
    """Write the hostile shoot into `folder` (created if needed); one HostileCase per file written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cases: list[HostileCase] = []

    def put(name: str, content: bytes | Image.Image, kind: str, reason: str | None = None, **save: object):
        path = folder / name
        if isinstance(content, Image.Image):
            content.save(path, **save)
        else:
            path.write_bytes(content)
        cases.append(HostileCase(name, kind, "failed" if reason else "scored", reason))

    # Good, ordinary photos.
    put("IMG_0001.JPG", _jpeg_bytes(photo(640, 427, seed=1)), "jpeg")
    put("IMG_0002.JPG", _jpeg_bytes(photo(427, 640, seed=2)), "jpeg")
    # Broken files.
    put("empty.jpg", b"", "zero-byte", "empty file (0 bytes)")
    put(
        "random.jpg",
        np.random.default_rng(3).integers(0, 256, 20_000, dtype=np.uint8).tobytes(),
        "random-bytes",
        "not a photo",
    )
    whole = _jpeg_bytes(photo(800, 600, seed=4))
    put("truncated.jpg", whole[: len(whole) // 3], "truncated-jpeg", "truncated file")
    put("bad_crc.png", png_with_bad_checksum(), "png-bad-crc", "damaged PNG (checksum error)")
    put(
        "bad_header_crc.png",
        png_with_bad_checksum(header=True),
        "png-bad-header-crc",
        "damaged PNG (checksum error)",
    )
    put(
        "bomb.jpg",
        jpeg_claiming_size(60000, 60000),
        "decompression-bomb",
        "image too large (60000 × 60000 px)",
    )
    # Tiny and extreme shapes: scored (padded up to what the image tower accepts).
    put("tiny_1x1.png", photo(1, 1, seed=6), "1x1")
    put("tiny_16x16.jpg", _jpeg_bytes(photo(16, 16, seed=7)), "16x16")
    put("banner_284x25.jpg", _jpeg_bytes(photo(284, 25, seed=8)), "284x25")
    put("strip_25x2000.jpg", _jpeg_bytes(photo(25, 2000, seed=9)), "25x2000")
    # Colour modes and bit depths.
    put("cmyk.jpg", _jpeg_bytes(photo(300, 200, seed=10).convert("CMYK")), "cmyk-jpeg")
    put("rgb16.png", png_rgb16(_rgb16(300, 200, 11)), "16-bit-png")
    put("gray16.png", Image.fromarray(_rgb16(300, 200, 12)[..., 0]), "16-bit-gray-png")
    put("rgb16.tif", tiff_rgb16(_rgb16(300, 200, 13)), "16-bit-tiff")
    put("gray16.tif", Image.fromarray(_rgb16(300, 200, 14)[..., 1]), "16-bit-gray-tiff")
    put("gray.jpg", _jpeg_bytes(photo(300, 200, seed=15).convert("L")), "grayscale")
    put("corrupt_exif.jpg", jpeg_with_corrupt_exif(), "corrupt-exif")
    rgba = photo(300, 200, seed=16).convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize((300, 200)))
    put("rgba.png", rgba, "rgba")
    pal = photo(300, 200, seed=17).quantize(64)
    put("palette.gif", pal, "palette-gif", transparency=0)
    frames = [photo(200, 150, seed=18 + i) for i in range(3)]
    put("animated.gif", frames[0], "animated-gif", save_all=True, append_images=frames[1:], duration=100)
    put(
        "animated.webp",
        frames[0],
        "animated-webp",
        save_all=True,
        append_images=frames[1:],
        duration=100,
        quality=80,
    )
    put("still.webp", photo(300, 200, seed=21), "webp", quality=85)
    heic = _heic_bytes(photo(320, 240, seed=22))
    if heic is not None:
        put("phone.heic", heic, "heic")
    put(
        "stereo_mpo.jpg",
        photo(320, 240, seed=23),
        "mpo",
        format="MPO",
        save_all=True,
        append_images=[photo(320, 240, seed=24)],
    )
    # Names.
    for name, seed in ((SPACE_NAME, 25), (ACCENT_NAME, 26), (EMOJI_NAME, 27), (LONG_NAME, 28)):
        put(name, _jpeg_bytes(photo(300, 200, seed=seed)), "name")
    return cases


# --- dynamic cases -------------------------------------------------------------------------------


def make_symlink_loop(folder: Path) -> Path:
    """`folder/nested/loop` → `folder` (the case that made 20 files into 700 catalog rows)."""
    nested = Path(folder) / "nested"
    nested.mkdir(exist_ok=True)
    link = nested / "loop"
    os.symlink(Path(folder).resolve(), link, target_is_directory=True)
    return link


def make_file_link(link: Path, target: Path) -> Path:
    """A symlinked file (e.g. `favourites/best.jpg` → `../IMG_0001.JPG`)."""
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.relpath(target, link.parent), link)
    return link


def make_fifo(path: Path) -> Path:
    """A named pipe with a photo's name: opening it would wait for a writer for ever."""
    os.mkfifo(path)
    return path


def delete_file(path: Path) -> None:
    """A file deleted between the scan and its decode (the photographer tidying up meanwhile)."""
    Path(path).unlink()


def replace_file(path: Path, seed: int = 99) -> None:
    """A file replaced by a different photo of another size between the scan and its decode."""
    tmp = Path(path).with_name(".replacing.tmp")
    photo(200, 300, seed=seed).save(tmp, "JPEG", quality=90)
    os.replace(tmp, path)


def pull_card(folder: Path) -> None:
    """The card is pulled out: the whole folder disappears (moved away, as unmounting looks)."""
    shutil.rmtree(folder)
