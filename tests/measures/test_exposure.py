"""Clipped highlights and crushed shadows: exact fractions on constructed images, the levels chosen
for JPEG, and real photographs pushed up and down in exposure."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from clipiqa_desktop.measures.exposure import HIGH_LEVEL, LOW_LEVEL, clipping, histogram


def test_exact_fractions_on_a_constructed_image():
    a = np.full((10, 20, 3), 128, np.uint8)  # 200 pixels
    a[0, :10] = (255, 255, 255)  # 10 white
    a[1, :4] = (255, 10, 10)  # 4 with only red clipped: clipped white (one channel lost)
    a[2, :6] = (HIGH_LEVEL, 128, 128)  # 6 at the level: counted
    a[3, :5] = (HIGH_LEVEL - 1, 253, 253)  # 5 just below: not counted
    a[4, :8] = (0, 0, 0)  # 8 black
    a[5, :3] = (LOW_LEVEL, LOW_LEVEL, LOW_LEVEL)  # 3 at the level: crushed
    a[6, :7] = (0, 0, 40)  # 7 with one channel alive: a deep blue, not crushed
    a[7, :2] = (LOW_LEVEL + 1, 0, 0)  # 2 just above in one channel: not crushed
    c = clipping(a)
    assert c.highlights == pytest.approx(20 / 200)
    assert c.shadows == pytest.approx(11 / 200)
    assert c.channel_highlights == pytest.approx((20 / 200, 10 / 200, 10 / 200))
    # red ≤ 2: 8 + 3 + 7 black-red; green ≤ 2: 8 + 3 + 7 + 2; blue ≤ 2: 8 + 3 + 2
    assert c.channel_shadows == pytest.approx((18 / 200, 20 / 200, 13 / 200))
    assert clipping(a, histogram(a)) == c  # per channel from the histogram: the same
    assert clipping(Image.fromarray(a)) == c


def test_uniform_and_empty_and_gray_images():
    assert clipping(np.full((4, 4, 3), 255, np.uint8)).highlights == 1.0
    assert clipping(np.zeros((4, 4, 3), np.uint8)).shadows == 1.0
    mid = clipping(np.full((4, 4, 3), 128, np.uint8))
    assert (mid.highlights, mid.shadows) == (0.0, 0.0)
    assert clipping(np.zeros((0, 5, 3), np.uint8)).highlights == 0.0
    gray = np.array([[0, 255], [128, 128]], np.uint8)
    assert (clipping(gray).highlights, clipping(gray).shadows) == (0.25, 0.25)
    with pytest.raises(ValueError, match="uint8"):
        clipping(np.zeros((4, 4, 3), np.float32))


def test_histogram_counts_and_luma():
    a = np.zeros((2, 3, 3), np.uint8)
    a[0, 0] = (255, 255, 255)
    a[0, 1] = (255, 0, 0)
    a[0, 2] = (0, 255, 0)
    a[1, 0] = (0, 0, 255)
    a[1, 1] = (100, 100, 100)
    h = histogram(a)
    assert h.shape == (4, 256) and (h.sum(axis=1) == 6).all()
    assert h[1, 255] == 2 and h[2, 255] == 2 and h[3, 255] == 2 and h[1, 0] == 3
    # luma (Rec. 601): white 255, gray stays gray, green 150 > red 76 > blue 29, black 0
    assert {i: int(v) for i, v in enumerate(h[0]) if v} == {0: 1, 29: 1, 76: 1, 100: 1, 150: 1, 255: 1}
    assert (histogram(Image.fromarray(a)) == h).all()


def _jpeg(a: np.ndarray, quality: int = 90) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def test_a_clipped_area_through_jpeg_counts_at_254_and_less_at_255():
    """Why the level is 254: JPEG smears a clipped area's edge into 253–255."""
    from skimage import data

    src = data.astronaut().astype(np.float32)
    pushed = np.clip(src * 4, 0, 255).astype(np.uint8)  # +2 EV
    truth = float((pushed >= 255).any(axis=2).mean())
    decoded = _jpeg(pushed)
    at_255 = float((decoded >= 255).any(axis=2).mean())
    assert at_255 < clipping(decoded).highlights <= truth + 0.01


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "rocket"])
def test_real_photos_pushed_up_clip_more_and_pulled_down_crush_more(name):
    from skimage import data

    src = getattr(data, name)().astype(np.float32)

    def at(ev: float) -> np.ndarray:
        return _jpeg(np.clip(np.round(src * 2.0**ev), 0, 255).astype(np.uint8))

    base, bright, dark = clipping(at(0)), clipping(at(2)), clipping(at(-3))
    assert base.highlights < 0.02, "a well exposed photo is not flagged as blown"
    assert bright.highlights > max(0.05, 3 * base.highlights)
    assert dark.shadows > base.shadows
    assert dark.highlights <= base.highlights
    assert bright.shadows <= base.shadows
