"""Focus at native resolution on 24 MP scenes built from real photographs (tests/measures/scenes.py).

Every defect is applied at full resolution to a sharp periodic block (2000 × 2000) of scikit-image's
photographs at their native size over a dead-leaves texture, quantised to 8-bit levels as a decoded
JPEG would be, and tiled to 6000 × 4000. Blur is a periodic convolution, so tiling after blurring is
blurring the 24 MP frame; the noise, added to the block, repeats every 2000 px (each 256 px tile the
measure reads sees white noise).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from clipiqa_desktop.measures.focus import (
    FocusResult,
    luminance,
    measure_focus,
    measure_focus_rgb,
    peaking_mask,
)
from clipiqa_desktop.measures.registry import FOCUS_OUT, FOCUS_SOFT, MOTION_DIRECTIONAL, NOISY, noise_score

from . import scenes

SIGMAS = (0.0, 0.6, 1.2, 2.0, 3.0, 5.0)
NOISE = (2.0, 5.0, 10.0)  # σ on 0..255
MOTION_ANGLES = (0.0, 30.0, 90.0, 135.0)


def _measure(block: np.ndarray) -> FocusResult:
    """Quantise a block to 8-bit levels, tile it to 24 MP and measure it."""
    return measure_focus(scenes.frame(scenes.quantise(block)))


def _spearman(a: list[float], b: list[float]) -> float:
    ra = np.argsort(np.argsort(a)).astype(float)
    rb = np.argsort(np.argsort(b)).astype(float)
    return float(np.corrcoef(ra, rb)[0, 1])


@pytest.fixture(scope="module")
def block() -> np.ndarray:
    return scenes.luma(scenes.base_block())


@pytest.fixture(scope="module")
def blurred(block: np.ndarray) -> dict[float, np.ndarray]:
    return {sigma: scenes.gaussian_blur(block, sigma) for sigma in (*SIGMAS, 8.0)}


@pytest.fixture(scope="module")
def by_sigma(blurred: dict[float, np.ndarray]) -> dict[float, FocusResult]:
    return {sigma: _measure(blurred[sigma]) for sigma in SIGMAS}


def test_focus_falls_with_gaussian_blur_at_full_resolution(by_sigma: dict[float, FocusResult]) -> None:
    scores = [by_sigma[s].score for s in SIGMAS]
    assert _spearman([-s for s in SIGMAS], scores) >= 0.9, scores
    assert all(0.0 <= s <= 1.0 for s in scores)
    # Calibration the registry's thresholds rely on: sharp well above "soft", σ = 2 px out of focus.
    assert by_sigma[0.0].score >= FOCUS_SOFT + 0.2
    assert by_sigma[2.0].score <= FOCUS_OUT
    assert by_sigma[5.0].score < by_sigma[2.0].score


@pytest.mark.parametrize("sigma", [0.0, 2.0])
def test_noise_never_reads_as_detail(
    sigma: float, blurred: dict[float, np.ndarray], by_sigma: dict[float, FocusResult]
) -> None:
    clean = by_sigma[sigma].score
    noisy = [_measure(scenes.add_noise(blurred[sigma], level, seed=int(level))).score for level in NOISE]
    assert all(score <= clean for score in noisy), (clean, noisy)


@pytest.mark.parametrize("sigma", [1.2, 2.0])
def test_grainy_noise_never_reads_as_detail(
    sigma: float, blurred: dict[float, np.ndarray], by_sigma: dict[float, FocusResult]
) -> None:
    # Noise with a grain (white noise blurred by 0.6 px, as demosaicing leaves it): the diagonal band
    # alone would under-count it; the gradient bands' median counts it.
    noisy = _measure(scenes.add_grainy_noise(blurred[sigma], 8.0, grain=0.6, seed=7))
    assert noisy.score <= by_sigma[sigma].score


def test_sharp_subject_on_soft_background_is_sharp(
    blurred: dict[float, np.ndarray], by_sigma: dict[float, FocusResult]
) -> None:
    # Shallow depth of field: a 1200 × 1200 subject (6 % of the frame) sharp, the rest blurred σ = 8.
    background = scenes.frame(blurred[8.0])
    sharp = scenes.frame(blurred[0.0])
    y, x, side = 1400, 2400, 1200
    background[y : y + side, x : x + side] = sharp[y : y + side, x : x + side]
    portrait = measure_focus(scenes.quantise(background))
    assert portrait.score > by_sigma[2.0].score
    assert portrait.score > FOCUS_SOFT
    rx, ry, rw, rh = portrait.region
    assert x - rw <= rx <= x + side and y - rh <= ry <= y + side  # the region is on the subject


@pytest.mark.parametrize("angle", MOTION_ANGLES)
def test_motion_blur_has_a_direction(angle: float, block: np.ndarray) -> None:
    result = _measure(scenes.motion_blur(block, 15, angle))
    assert result.motion >= MOTION_DIRECTIONAL
    assert result.score <= FOCUS_OUT
    assert result.angle is not None
    difference = abs((result.angle - angle + 90.0) % 180.0 - 90.0)
    assert difference <= 15.0, (result.angle, angle)


def test_defocus_has_no_direction(by_sigma: dict[float, FocusResult]) -> None:
    assert all(by_sigma[s].motion < MOTION_DIRECTIONAL for s in SIGMAS)
    assert by_sigma[2.0].motion < 0.2


def test_dark_sharp_frame_stays_sharp(block: np.ndarray) -> None:
    # ×0.15 on the encoded values, then 8-bit levels: most of the frame below 40/255.
    assert _measure(block * np.float32(0.15)).score > FOCUS_SOFT


def test_smaller_frames_keep_the_calibration(blurred: dict[float, np.ndarray]) -> None:
    # 1.5 MP: fewer, smaller tiles, the direction read on all of them.
    sharp = measure_focus(scenes.quantise(blurred[0.0][:1000, :1500]))
    soft = measure_focus(scenes.quantise(blurred[3.0][:1000, :1500]))
    assert sharp.score > FOCUS_SOFT and soft.score <= FOCUS_OUT


def test_face_sized_crops_and_tiny_inputs_give_finite_results() -> None:
    from skimage import data

    gray = luminance(data.astronaut())
    face = gray[20:220, 140:340]  # the astronaut's face, 200 × 200
    sharp = measure_focus(face)
    soft = measure_focus(scenes.gaussian_blur(face, 2.0))
    assert sharp.score > soft.score
    for shape in ((16, 16), (16, 300), (300, 17), (64, 64), (200, 200)):
        for image in (np.zeros(shape, np.float32), gray[: shape[0], : shape[1]]):
            result = measure_focus(image)
            values = (result.score, result.motion)
            assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values), (shape, result)
            x, y, w, h = result.region
            assert 0 <= x < shape[1] and 0 <= y < shape[0] and x + w <= shape[1] and y + h <= shape[0]
    with pytest.raises(ValueError):
        measure_focus(np.zeros((10, 10, 3), np.float32))


NOISE_LEVELS = (5.0, 10.0, 20.0, 40.0)  # σ on 0..255


def test_noise_level_reads_the_noise_not_the_blur(
    block: np.ndarray, by_sigma: dict[float, FocusResult]
) -> None:
    # FocusResult.noise: σ on the 0..1 scale, from the focus pass's own bands. On the 24 MP scene
    # (σ 40 clips a little at black and white) it reads within 25 % of the noise added.
    clean = by_sigma[0.0].noise
    noisy = [_measure(scenes.add_noise(block, level, seed=int(level))).noise for level in NOISE_LEVELS]
    assert clean * 255 < 1.0, clean * 255
    assert all(n > clean for n in noisy) and noisy == sorted(noisy), [n * 255 for n in noisy]
    for level, n in zip(NOISE_LEVELS, noisy, strict=True):
        assert 0.75 * level <= n * 255 <= 1.25 * level, (level, n * 255)
    # Blur is not noise: a clean frame blurred reads as clean as the sharp one.
    assert by_sigma[2.0].noise * 255 < 1.0 and by_sigma[5.0].noise * 255 < 1.0
    # Noise with a grain (demosaicing) is counted too, from the gradient bands.
    grainy = _measure(scenes.add_grainy_noise(block, 8.0, grain=0.6, seed=7)).noise * 255
    assert 6.0 <= grainy <= 10.0, grainy
    assert noise_score(clean) < NOISY <= noise_score(noisy[1])


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "rocket", "camera"])
def test_noise_level_on_real_photographs(name: str) -> None:
    """scikit-image's photographs at their native size (0.2–0.3 MP, 64-px tiles): noise reads
    higher at σ 5, 10, 20, 40 than clean; the clean photo and a blurred copy read clean."""
    rgb = scenes._photo(name)

    def noise(img: np.ndarray) -> float:
        return measure_focus(luminance(scenes.to_uint8(img))).noise * 255

    clean = noise(rgb)
    noisy = [noise(scenes.add_noise(rgb, level, seed=int(level))) for level in NOISE_LEVELS]
    assert clean < 3.0, clean
    assert noise_score(clean / 255) < NOISY
    assert clean < noisy[0] and noisy == sorted(noisy), (clean, noisy)
    assert noise_score(noisy[1] / 255) >= NOISY  # σ 10/255 is noisy
    assert noise(scenes.gaussian_blur(rgb, 2.0)) <= min(clean, 1.0)


def test_luminance_is_rec709_luma() -> None:
    rgb = np.array([[[255, 255, 255], [0, 0, 0], [0, 255, 0], [255, 0, 0]]], dtype=np.uint8)
    y = luminance(rgb)
    assert y.dtype == np.float32 and y.shape == (1, 4)
    assert np.allclose(y[0], [1.0, 0.0, 0.7152, 0.2126], atol=1e-5)
    with pytest.raises(ValueError):
        luminance(np.zeros((4, 4, 2), np.uint8))


def test_peaking_lights_the_sharp_subject_not_the_soft_frame(
    blurred: dict[float, np.ndarray],
) -> None:
    # A 2 MP display image: a crop of the block at 100 %.
    def display(img: np.ndarray) -> np.ndarray:
        return scenes.quantise(img[:1414, :1414])

    sharp = peaking_mask(display(blurred[0.0]))
    soft = peaking_mask(display(blurred[2.0]))
    assert sharp.dtype == np.bool_ and sharp.shape == (1414, 1414)
    assert sharp.mean() > 0.02
    assert soft.mean() < sharp.mean() / 20

    portrait = blurred[8.0].copy()
    portrait[400:1000, 400:1000] = blurred[0.0][400:1000, 400:1000]
    mask = peaking_mask(display(portrait))
    inside = mask[400:1000, 400:1000].mean()
    outside = (mask.sum() - mask[400:1000, 400:1000].sum()) / (mask.size - 600 * 600)
    assert inside > 0.02 and outside < inside / 50

    # Noise on a flat frame is not focus.
    rng = np.random.default_rng(3)
    flat = np.clip(0.5 + rng.normal(0.0, 10 / 255, (500, 700)), 0, 1).astype(np.float32)
    assert peaking_mask(flat).mean() < 0.001
    grainy = scenes.quantise(scenes.add_grainy_noise(np.full((500, 700), 0.5, np.float32), 20.0, grain=1.0))
    assert peaking_mask(grainy).mean() < 0.001


def test_sharp_texture_that_runs_one_way_is_not_motion_blur():
    """Found by a new user: skimage's coffee (sharp; its wood grain runs at ~40°) pasted 1:1 on a
    larger canvas or repeated 3 × 3 read 0.00 'out of focus (motion blur)', because the grain's
    tiles have almost no edge across the grain. Only tiles whose edges run in several directions
    may tell a blur's direction now."""
    from skimage import data

    coffee = data.coffee()
    canvas = np.full((1200, 1800, 3), 128, np.uint8)
    canvas[400:800, 600:1200] = coffee
    for frame in (coffee, np.tile(coffee, (3, 3, 1)), canvas):
        result = measure_focus(luminance(frame))
        assert result.score > FOCUS_OUT and result.motion < 0.5, frame.shape


# measure_focus as it was before it worked band by band (commit 3cf13df: the whole frame's luminance
# and Haar details at once), on the two scenes below: the band-by-band version must give the same.
_BEFORE_BANDS = {
    (1.2, 5.0, 1300, 2100): (
        0.17366410957917155,
        0.04702459635398604,
        5.438237177437875,
        (26, 1034, 256, 256),
        0.018160078976690502,
    ),
    (0.0, 2.0, 900, 700): (
        0.907669797503674,
        0.02959451622768372,
        22.01042904685241,
        (414, 642, 128, 128),
        0.00749201718146476,
    ),
}


@pytest.mark.parametrize("scene", list(_BEFORE_BANDS))
def test_band_by_band_focus_gives_the_values_of_the_whole_frame_pass(
    scene: tuple[float, float, int, int],
) -> None:
    sigma, noise, height, width = scene
    block = scenes.add_noise(scenes.gaussian_blur(scenes.base_block(), sigma), noise)
    rgb = scenes.to_uint8(scenes.frame(block, height, width))
    from_rgb = measure_focus_rgb(rgb)
    assert from_rgb == measure_focus(luminance(rgb))  # the same arithmetic on the same pixels
    score, motion, angle, region, frame_noise = _BEFORE_BANDS[scene]
    assert from_rgb.score == pytest.approx(score, rel=1e-9)
    assert from_rgb.motion == pytest.approx(motion, rel=1e-9)
    assert from_rgb.angle == pytest.approx(angle, rel=1e-9)
    assert from_rgb.region == region
    assert from_rgb.noise == pytest.approx(frame_noise, rel=1e-9)
    assert from_rgb.judged


def test_focus_from_rgb_takes_small_and_gray_inputs() -> None:
    rgb = scenes.to_uint8(scenes.frame(scenes.base_block(), 40, 90))
    assert measure_focus_rgb(rgb) == measure_focus(luminance(rgb))  # mirrored out to 64 px
    gray = rgb[..., 1]
    assert measure_focus_rgb(gray) == measure_focus(luminance(gray))
