"""Camera facts that grouping uses (exposure bias, subject distance, sub-second time) from every
file type that carries them: JPEG, TIFF, WebP, HEIC through Pillow; RAW through its own header."""

from __future__ import annotations

import io
from fractions import Fraction

import pytest
from PIL import Image

from clipiqa_desktop.imaging import DecodeError, decode_photo
from clipiqa_desktop.imaging.formats import ensure_heif
from clipiqa_desktop.imaging.metadata import PhotoMeta, read_file_meta, read_meta, read_raw_meta

from .camera_exif import cr3_bytes, raf_bytes, save_with_exif, tiff_bytes

FACTS = dict(subsec="25", bias=Fraction(-2, 3), distance=3.5)


def _check(meta: PhotoMeta) -> None:
    assert meta.captured_at == "2024-05-01T10:00:00"
    assert meta.subsec == pytest.approx(0.25)
    assert meta.exposure_bias == pytest.approx(-2 / 3, abs=1e-6)
    assert meta.subject_distance == pytest.approx(3.5)
    assert meta.camera_make == "Canon" and meta.camera_model == "Canon EOS R5"
    assert meta.exposure_time == pytest.approx(1 / 250)
    assert meta.f_number == pytest.approx(2.8) and meta.iso == 400


@pytest.mark.parametrize(("fmt", "name"), [("JPEG", "a.jpg"), ("TIFF", "a.tif"), ("WEBP", "a.webp")])
def test_pillow_formats_give_the_facts_when_decoded_and_from_the_header_alone(tmp_path, fmt, name):
    path = save_with_exif(tmp_path / name, fmt, **FACTS)
    _check(decode_photo(path, 32).meta)
    _check(read_file_meta(path))


def test_heic_gives_the_same_facts(tmp_path):
    pytest.importorskip("pillow_heif")
    assert ensure_heif()  # registers HEIF for saving too
    try:
        path = save_with_exif(tmp_path / "phone.heic", "HEIF", size=(64, 64), **FACTS)
    except (RuntimeError, ValueError, OSError, KeyError) as exc:
        pytest.skip(f"this libheif build cannot encode HEIC: {exc}")
    _check(decode_photo(path, 32).meta)
    _check(read_file_meta(path))


@pytest.mark.parametrize(
    ("given", "expected"),
    [("25", 0.25), ("045", 0.045), ("5", 0.5), ("00", 0.0), ("123 ", 0.123), ("  ", None), ("ab", None)],
)
def test_subsec_is_a_fraction_of_its_digits(given, expected):
    img = Image.open(io.BytesIO(_jpeg(subsec=given)))
    got = read_meta(img).subsec
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_subsec_falls_back_to_subsectime():
    assert read_meta(Image.open(io.BytesIO(_jpeg(subsec_plain="7")))).subsec == pytest.approx(0.7)
    both = read_meta(Image.open(io.BytesIO(_jpeg(subsec="25", subsec_plain="7"))))
    assert both.subsec == pytest.approx(0.25)  # the original's own sub-second wins


@pytest.mark.parametrize(
    ("distance", "expected"),
    [((0, 1), None), ((0xFFFFFFFF, 1), None), ((0, 0), None), ((1, 4), 0.25), ((125, 100), 1.25)],
)
def test_subject_distance_zero_and_infinity_are_unknown(distance, expected):
    got = read_meta(Image.open(io.BytesIO(_jpeg(distance=distance)))).subject_distance
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_exposure_bias_is_signed_and_absent_means_none():
    assert read_meta(Image.open(io.BytesIO(_jpeg(bias=Fraction(-5, 3))))).exposure_bias == pytest.approx(
        -5 / 3
    )
    assert read_meta(Image.open(io.BytesIO(_jpeg(bias=Fraction(0))))).exposure_bias == 0.0
    bare = read_meta(Image.open(io.BytesIO(_jpeg())))
    assert (bare.exposure_bias, bare.subject_distance, bare.subsec) == (None, None, None)


@pytest.mark.parametrize("suffix", [".nef", ".cr2", ".arw", ".dng", ".pef"])
def test_a_tiff_based_raw_gives_its_header_facts(tmp_path, suffix):
    path = tmp_path / f"IMG_1{suffix}"
    path.write_bytes(tiff_bytes(**FACTS))
    _check(read_raw_meta(path))
    _check(read_file_meta(path))


@pytest.mark.parametrize("magic", [b"IIRO", b"IIU\x00"])
def test_orf_and_rw2_are_tiff_under_their_own_magic(tmp_path, magic):
    data = tiff_bytes(**FACTS)
    assert data[:4] == b"II*\x00"
    path = tmp_path / ("a.orf" if magic == b"IIRO" else "a.rw2")
    path.write_bytes(magic + data[4:])
    _check(read_raw_meta(path))


def test_cr3_gives_the_facts_of_its_cmt_boxes(tmp_path):
    path = tmp_path / "IMG_1.CR3"
    path.write_bytes(cr3_bytes(**FACTS))
    _check(read_raw_meta(path))
    _check(read_file_meta(path))


def test_raf_gives_the_facts_of_its_embedded_jpeg(tmp_path):
    path = tmp_path / "DSCF1.RAF"
    path.write_bytes(raf_bytes(**FACTS))
    _check(read_raw_meta(path))


def test_the_raw_header_wins_and_the_preview_fills_in(tmp_path):
    path = tmp_path / "IMG_1.nef"
    path.write_bytes(tiff_bytes(bias=Fraction(1, 3), iso=None))
    preview = PhotoMeta(exposure_bias=-1.0, iso=800, lens="RF 50mm")
    got = read_raw_meta(path, preview)
    assert got.exposure_bias == pytest.approx(1 / 3)  # the RAW's own
    assert (got.iso, got.lens) == (800, "RF 50mm")  # the preview's where the header has none


@pytest.mark.parametrize(
    "content", [b"", b"II*\x00" + b"\xff" * 64, b"\x00" * 4096, b"MM\x00*\x00\x00\xff\xf0"]
)
def test_a_damaged_raw_header_gives_the_preview_facts_never_an_error(tmp_path, content):
    path = tmp_path / "bad.nef"
    path.write_bytes(content)
    preview = PhotoMeta(iso=100)
    assert read_raw_meta(path, preview) == preview


def test_an_unreadable_file_gives_none(tmp_path):
    assert read_file_meta(tmp_path / "gone.jpg") is None
    (tmp_path / "junk.jpg").write_bytes(b"not a photo at all")
    assert read_file_meta(tmp_path / "junk.jpg") is None
    (tmp_path / "junk.cr2").write_bytes(b"\x00" * 100)
    assert read_file_meta(tmp_path / "junk.cr2") is None  # no header facts, and rawpy cannot open it


def test_the_header_alone_is_read_not_the_pixels(tmp_path):
    """A JPEG cut off after its header still gives its facts: read_file_meta never decodes."""
    whole = save_with_exif(tmp_path / "whole.jpg", size=(640, 480), **FACTS).read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole[: whole.index(b"\xff\xda") + 16])  # just past the start of scan
    _check(read_file_meta(cut))
    with pytest.raises(DecodeError):
        decode_photo(cut, 32)


def _exif_bytes(**tags: object) -> bytes:
    from .camera_exif import exif_block

    return exif_block(**tags).tobytes()


def _jpeg(**tags: object) -> bytes:
    from ..conftest import photo

    buf = io.BytesIO()
    photo(16, 16).save(buf, "JPEG", exif=_exif_bytes(**tags))
    return buf.getvalue()
