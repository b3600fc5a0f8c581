"""Decode-level outcome of every file of the hostile shoot, and the reasons a photographer reads."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest

from clipiqa_desktop.imaging import DecodeError, decode_photo
from clipiqa_desktop.imaging.decode import FILE_GONE, describe_os_error

from ..conftest import photo
from ..hostile import (
    jpeg_with_corrupt_exif,
    make_fifo,
    png_rgb16,
    replace_file,
    tiff_rgb16,
    write_hostile_shoot,
)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    return folder, write_hostile_shoot(folder)


def test_every_hostile_file_decodes_or_fails_with_its_reason(hostile):
    folder, cases = hostile
    kinds = {c.kind for c in cases}
    assert {"zero-byte", "random-bytes", "truncated-jpeg", "png-bad-crc", "decompression-bomb"} <= kinds
    assert {"cmyk-jpeg", "16-bit-png", "16-bit-tiff", "animated-webp", "mpo", "rgba", "1x1"} <= kinds
    for case in cases:
        if case.expect == "scored":
            decoded = decode_photo(folder / case.rel_path, 512)
            assert decoded.image.mode == "RGB", case
            assert min(decoded.image.size) >= 1 and max(decoded.image.size) <= 512, case
        else:
            with pytest.raises(DecodeError) as err:
                decode_photo(folder / case.rel_path, 512)
            assert case.reason is not None and case.reason in str(err.value), (case, str(err.value))
            assert "Errno" not in str(err.value) and "<" not in str(err.value), str(err.value)


def test_a_png_damaged_in_its_image_data_is_refused_not_decoded_into_wrong_pixels(hostile):
    """Before, Pillow's failure surfaced inside getexif(), was taken for bad EXIF, and the half-decoded
    pixels were scored."""
    folder, _ = hostile
    with pytest.raises(DecodeError, match=r"^damaged PNG \(checksum error\): its image data was corrupted"):
        decode_photo(folder / "bad_crc.png", 512)


def test_sixteen_bit_rgb_png_and_tiff_are_scaled_not_clipped(tmp_path):
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 65536, (20, 30, 3), dtype=np.uint16)
    (tmp_path / "a.png").write_bytes(png_rgb16(arr))
    (tmp_path / "a.tif").write_bytes(tiff_rgb16(arr))
    for name in ("a.png", "a.tif"):
        got = np.asarray(decode_photo(tmp_path / name, None).image).astype(int)
        assert np.abs(got - (arr.astype(int) >> 8)).max() <= 1, name


def test_animated_files_give_their_first_frame(tmp_path):
    frames = [photo(64, 48, seed=s) for s in (1, 2)]
    frames[0].save(tmp_path / "a.webp", save_all=True, append_images=frames[1:], lossless=True)
    frames[0].save(tmp_path / "a.mpo", format="MPO", save_all=True, append_images=frames[1:], quality=98)
    first = np.asarray(frames[0]).astype(int)
    assert np.array_equal(np.asarray(decode_photo(tmp_path / "a.webp", None).image), first)
    # an MPO is a JPEG: lossy, but frame 0 and not frame 1
    got = np.asarray(decode_photo(tmp_path / "a.mpo", None).image).astype(int)
    assert np.abs(got - first).mean() < np.abs(got - np.asarray(frames[1]).astype(int)).mean() / 3


def test_cmyk_jpeg_keeps_its_colours(tmp_path):
    src = photo(120, 80, seed=3)
    src.convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    got = np.asarray(decode_photo(tmp_path / "c.jpg", None).image).astype(int)
    assert np.abs(got - np.asarray(src).astype(int)).mean() < 12


def test_file_deleted_or_replaced_after_the_scan(tmp_path):
    a, b = tmp_path / "a.jpg", tmp_path / "b.jpg"
    photo(300, 200, seed=1).save(a)
    photo(300, 200, seed=2).save(b)
    os.unlink(a)
    with pytest.raises(DecodeError) as err:
        decode_photo(a, 512)
    assert str(err.value).startswith(FILE_GONE)
    replace_file(b)  # a portrait now: decoded as it is now, not as it was scanned
    assert decode_photo(b, 512).source_size == (200, 300)


def test_card_errors_are_said_in_words():
    assert describe_os_error(OSError(5, "Input/output error")) == (
        "cannot read the file: Input/output error (was the card or disk removed?)"
    )
    assert describe_os_error(PermissionError(13, "Permission denied")).startswith("permission denied")


@pytest.mark.parametrize("suffix", [".png", ".webp", ".tif"])
def test_truncated_files_of_every_kind_say_so(tmp_path, suffix):
    photo(300, 200).save(tmp_path / f"a{suffix}")
    data = (tmp_path / f"a{suffix}").read_bytes()
    (tmp_path / f"t{suffix}").write_bytes(data[: len(data) // 2])
    with pytest.raises(DecodeError, match=r"^(truncated file|damaged \w+: its image data is corrupt)"):
        decode_photo(tmp_path / f"t{suffix}", 512)


def test_a_folder_pulled_out_mid_decode_reads_as_gone(tmp_path):
    card = tmp_path / "card"
    card.mkdir()
    photo(100, 80).save(card / "a.png")
    os.rename(card, tmp_path / "elsewhere")
    with pytest.raises(DecodeError, match=f"^{FILE_GONE}"):
        decode_photo(card / "a.png", 512)


def test_a_named_pipe_with_a_photo_name_is_refused_without_waiting(tmp_path):
    pipe = make_fifo(tmp_path / "IMG_0001.JPG")  # opening it for reading would block for ever
    with pytest.raises(DecodeError, match=r"^not a photo: not a regular file"):
        decode_photo(pipe, 512)


def test_corrupt_exif_costs_the_metadata_not_the_photo_and_warns_nobody(tmp_path):
    """Pillow warns "Corrupt EXIF data" while opening such a JPEG; tests turn warnings into errors."""
    path = tmp_path / "e.jpg"
    path.write_bytes(jpeg_with_corrupt_exif())
    decoded = decode_photo(path, 128)
    assert decoded.image.size == (128, 85) and decoded.orientation == 1
    assert decoded.meta.camera_make is None


# What every decode failure starts with: words a photographer reads, never an internal message.
REASONS = (
    "truncated file: ",
    "damaged ",
    "not a photo: ",
    "image too large (",
    "cannot decode: not an image format this program reads",
    "cannot decode: the ",  # ... JPEG is damaged or of a variant this program does not read (...)
)


@pytest.mark.filterwarnings("ignore::UserWarning:PIL")  # damaged metadata; silenced for users too
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "TIFF", "HEIC"])
def test_randomly_damaged_files_fail_with_a_readable_reason(tmp_path, fmt):
    """Bytes flipped and files cut short at seeded random places: a DecodeError with a plain reason."""
    buf = io.BytesIO()
    src = photo(120, 90, seed=1)
    if fmt == "HEIC":
        pillow_heif = pytest.importorskip("pillow_heif")
        pillow_heif.from_pillow(src).save(buf, quality=80)
    else:
        src.save(buf, fmt, **({"compression": "tiff_lzw"} if fmt == "TIFF" else {}))
    data = buf.getvalue()
    rng = np.random.default_rng(7)
    failed = 0
    for n in range(30):
        damaged = bytearray(data)
        for i in rng.integers(0, len(data), rng.integers(1, 6)):
            damaged[i] = 0xFF if rng.random() < 0.3 else int(rng.integers(0, 256))
        if n % 4 == 0:
            damaged = damaged[: int(rng.integers(1, len(damaged)))]
        path = tmp_path / f"d{n}.{fmt.lower()}"
        path.write_bytes(bytes(damaged))
        try:
            decode_photo(path, 64)  # some damage leaves a decodable image: fine
        except DecodeError as exc:
            failed += 1
            assert str(exc).startswith(REASONS), str(exc)
            assert "Errno" not in str(exc) and "<" not in str(exc), str(exc)
    assert failed >= 10, "the damage was real"
