"""Decoding: orientation, every image mode, draft decoding, sizes and every kind of bad file."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from clipiqa_desktop.imaging import DecodeError, decode_photo, target_size, to_rgb8
from clipiqa_desktop.imaging import decode as decode_mod

from ..conftest import photo, photo_array

# The transform that, applied to the upright image, gives the pixels stored with each orientation tag.
_STORE = {
    1: [],
    2: [Image.Transpose.FLIP_LEFT_RIGHT],
    3: [Image.Transpose.ROTATE_180],
    4: [Image.Transpose.FLIP_TOP_BOTTOM],
    5: [Image.Transpose.TRANSPOSE],
    6: [Image.Transpose.ROTATE_90],
    7: [Image.Transpose.TRANSVERSE],
    8: [Image.Transpose.ROTATE_270],
}


def _stored(upright: Image.Image, orientation: int) -> Image.Image:
    img = upright
    for op in _STORE[orientation]:
        img = img.transpose(op)
    return img


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_decodes_upright(tmp_path, orientation):
    upright = photo(240, 160)
    path = tmp_path / f"o{orientation}.png"
    _stored(upright, orientation).save(path, exif=_exif(orientation))
    decoded = decode_photo(path, None)
    assert decoded.orientation == orientation
    assert decoded.source_size == (240, 160)
    assert np.array_equal(np.asarray(decoded.image), np.asarray(upright))


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_rotated_jpeg_scores_like_its_upright_twin(tmp_path, tiny_scorer, orientation):
    from clipiqa_desktop.scoring import BUILTIN_ATTRIBUTES, image_to_tensor

    upright = photo(480, 320, seed=7)
    upright.save(tmp_path / "up.jpg", quality=95)
    _stored(upright, orientation).save(tmp_path / "rot.jpg", quality=95, exif=_exif(orientation))
    results = []
    for name in ("up.jpg", "rot.jpg"):
        img = decode_photo(tmp_path / name, 256).image
        assert img.size == (256, 171)
        results.append(tiny_scorer.score_batch(image_to_tensor(img)[None], BUILTIN_ATTRIBUTES)[0])
    sideways = tiny_scorer.score_batch(
        image_to_tensor(_stored(upright, 6).resize((171, 256)))[None], BUILTIN_ATTRIBUTES
    )[0]
    cos_twin = float(np.dot(results[0].embedding, results[1].embedding))
    cos_sideways = float(np.dot(results[0].embedding, sideways.embedding))
    assert cos_twin > 0.9999
    assert cos_twin > cos_sideways  # the check can tell an unrotated photo from an upright one
    for key, value in results[0].scores.items():
        assert results[1].scores[key] == pytest.approx(value, abs=2e-3)


def _gradient_l() -> Image.Image:
    return Image.fromarray(np.tile(np.arange(256, dtype=np.uint8), (8, 1)), "L")


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"])
def test_plain_modes_become_8bit_rgb(mode):
    src = photo(64, 48)
    img = src.convert(mode) if mode != "LAB" else src.convert("RGB")
    if mode == "LAB":
        from PIL import ImageCms

        rgb2lab = ImageCms.buildTransform(
            ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB"
        )
        img = ImageCms.applyTransform(src, rgb2lab)
        assert img is not None
    out = to_rgb8(img)
    assert out.mode == "RGB" and out.size == (64, 48)
    arr = np.asarray(out).astype(int)
    ref = np.asarray(src).astype(int)
    if mode in ("RGB", "RGBX", "YCbCr", "HSV", "LAB", "CMYK"):
        assert np.abs(arr - ref).mean() < 6, mode  # colours survive
    if mode == "L":
        assert (arr[..., 0] == arr[..., 1]).all()


def test_16bit_grey_is_scaled_not_clipped():
    grey = _gradient_l()
    wide = Image.fromarray(np.asarray(grey).astype(np.uint16) * 257)  # mode I;16
    assert wide.mode == "I;16"
    out = np.asarray(to_rgb8(wide))[..., 0]
    assert np.abs(out.astype(int) - np.asarray(grey).astype(int)).max() <= 1
    as_i = wide.convert("I")
    out_i = np.asarray(to_rgb8(as_i))[..., 0]
    assert np.abs(out_i.astype(int) - np.asarray(grey).astype(int)).max() <= 1


def test_float_images_in_unit_range_are_scaled():
    arr = np.linspace(0, 1, 256, dtype=np.float32).reshape(1, 256).repeat(4, 0)
    out = np.asarray(to_rgb8(Image.fromarray(arr, "F")))[..., 0]
    assert out[0, 0] == 0 and out[0, -1] == 255 and 120 <= out[0, 128] <= 136


@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA"])
def test_alpha_is_composited_on_white(mode):
    rgba = Image.new("RGBA", (10, 10), (200, 0, 0, 0))  # fully transparent red
    rgba.putpixel((0, 0), (0, 0, 0, 255))  # one opaque black pixel
    img = rgba.convert(mode) if mode != "PA" else rgba.convert("RGBA").convert("PA")
    out = np.asarray(to_rgb8(img))
    assert out[5, 5].tolist() == [255, 255, 255]
    assert out[0, 0].tolist() == [0, 0, 0]


def test_palette_with_transparency(tmp_path):
    img = Image.new("P", (8, 8), 1)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.info["transparency"] = 1
    img.save(tmp_path / "p.png", transparency=1)
    out = np.asarray(decode_photo(tmp_path / "p.png", None).image)
    assert out[0, 0].tolist() == [255, 255, 255]


def test_16bit_png_on_disk(tmp_path):
    grey = _gradient_l()
    Image.fromarray(np.asarray(grey).astype(np.uint16) * 257).save(tmp_path / "g16.png")
    out = np.asarray(decode_photo(tmp_path / "g16.png", None).image)[..., 0]
    assert np.abs(out.astype(int) - np.asarray(grey).astype(int)).max() <= 1


def test_cmyk_jpeg_decodes(tmp_path):
    photo(120, 80).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    d = decode_photo(tmp_path / "cmyk.jpg", None)
    assert d.image.mode == "RGB"
    assert np.abs(np.asarray(d.image).astype(int) - photo_array(120, 80).astype(int)).mean() < 12


def test_target_size_keeps_aspect_and_never_upscales():
    assert target_size(6000, 4000, 1024) == (1024, 683)
    assert target_size(4000, 6000, 512) == (341, 512)
    assert target_size(800, 600, 1024) == (800, 600)
    assert target_size(6000, 4000, None) == (6000, 4000)
    assert target_size(6000, 4000, 224, multiple=16) == (224, 144)
    assert target_size(100, 10, 224, multiple=16) == (96, 16)


def test_jpeg_uses_draft_and_matches_a_full_decode(make_jpeg, monkeypatch):
    path = make_jpeg("big.jpg", 4000, 3000)
    calls = []
    real = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        calls.append(size)
        return real(self, mode, size)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    fast = decode_photo(path, 512).image
    assert calls == [(512, 384)]
    assert fast.size == (512, 384)
    full = Image.open(path).convert("RGB").resize((512, 384), Image.Resampling.BICUBIC)
    assert np.abs(np.asarray(fast).astype(int) - np.asarray(full).astype(int)).mean() < 3


def test_thumbnail_comes_from_the_same_decode(make_jpeg):
    path = make_jpeg("t.jpg", 1200, 800, exif=_exif(6))
    d = decode_photo(path, 512, thumb_long_side=256)
    assert d.image.size == (341, 512)  # upright portrait
    assert d.thumbnail is not None and d.thumbnail.size == (171, 256)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("truncated.jpg", "truncated", "truncated file: the JPEG data stops part-way"),
        ("garbage.jpg", b"this is not a jpeg at all" * 10, "not a photo: the file's contents are not"),
        ("empty.png", b"", "empty file (0 bytes)"),
        ("avif.heic", b"\0\0\0\x1cftypavif" + b"\0" * 64, "cannot decode: not an image format this program"),
        ("broken.nef", b"\x00" * 4096, "cannot decode: unreadable or unsupported RAW"),
    ],
)
def test_bad_files_give_a_clear_reason(tmp_path, make_jpeg, name, content, reason):
    path = tmp_path / name
    if content == "truncated":
        data = make_jpeg("src.jpg", 800, 600).read_bytes()
        path.write_bytes(data[: len(data) // 3])
    else:
        path.write_bytes(content)
    with pytest.raises(DecodeError) as err:
        decode_photo(path, 224)
    assert str(err.value).startswith(reason)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DecodeError, match=r"^file no longer exists \(deleted, moved, or its card removed"):
        decode_photo(tmp_path / "nope.jpg", 224)
    with pytest.raises(DecodeError, match="folder"):
        decode_photo(tmp_path, 224)


def test_decompression_bombs_are_refused_before_decoding(tmp_path, monkeypatch):
    photo(400, 300).save(tmp_path / "big.png")
    monkeypatch.setattr(decode_mod, "MAX_PIXELS", 100_000)
    with pytest.raises(DecodeError, match=r"^image too large \(400 × 300 px\) — refused as a possible"):
        decode_photo(tmp_path / "big.png", 224)


def test_heic_through_pillow_heif(tmp_path):
    pillow_heif = pytest.importorskip("pillow_heif")
    src = photo(320, 240)
    try:
        heif = pillow_heif.from_pillow(src)
        buf = io.BytesIO()
        heif.save(buf, quality=95)
    except (RuntimeError, ValueError, OSError) as exc:
        pytest.skip(f"this libheif build cannot encode HEIC: {exc}")
    (tmp_path / "phone.heic").write_bytes(buf.getvalue())
    d = decode_photo(tmp_path / "phone.heic", 160)
    assert d.image.size == (160, 120)
    assert (
        np.abs(np.asarray(d.image).astype(int) - np.asarray(src.resize((160, 120))).astype(int)).mean() < 10
    )


@pytest.mark.parametrize("orientation", [1, 6])
def test_full_decode_gives_a_box_reduced_copy_the_analysis_image_is_made_from(tmp_path, orientation):
    upright = photo(2400, 1600, seed=3)
    path = tmp_path / "big.jpg"
    _stored(upright, orientation).save(path, quality=95, exif=_exif(orientation))
    decoded = decode_photo(path, 512, 320, full=True)
    assert decoded.full is not None and decoded.reduced is not None
    assert decoded.full.size == (2400, 1600) and decoded.reduced.size == (1200, 800)  # upright, / 2
    assert np.array_equal(np.asarray(decoded.reduced), np.asarray(decoded.full.reduce(2)))
    assert decoded.image.size == (512, 341)
    # Within JPEG's own error of the bicubic filter over the whole frame.
    plain = decoded.full.resize(decoded.image.size, Image.Resampling.BICUBIC)
    diff = np.abs(np.asarray(decoded.image, np.int16) - np.asarray(plain, np.int16))
    assert diff.mean() < 0.5 and diff.max() <= 12
    assert decode_photo(path, 512, 320).reduced is None  # only beside the full image


def test_no_reduced_copy_below_twice_its_size(tmp_path):
    path = tmp_path / "small.jpg"
    photo(2000, 1500).save(path, quality=90)
    decoded = decode_photo(path, 512, full=True)
    assert decoded.full is not None and decoded.reduced is None
    assert decoded.image.size == (512, 384)
