"""Clipped highlights and crushed shadows, and the histogram the loupe draws (numpy only).

Levels, on the 8-bit sRGB values a decoder gives:

- **clipped white**: a pixel with at least one channel at or above `HIGH_LEVEL` = 254. A channel at
  its ceiling has lost its detail even when the others have not (a blown red sky, a saturated
  flower), which is what a raw converter's clipping warning shows too. 254 rather than 255 because
  a JPEG smears a clipped channel (4:2:0 chroma subsampling, block quantisation) into 250–255:
  measured on scikit-image's photos pushed +1/+2 EV and saved at quality 90, ≥ 255 finds 60–90 %
  of the pixels that were clipped before the encoder, ≥ 254 68–93 %, while the pixels ≥ 254 that
  were not clipped stay under 1 % of the frame (≥ 250 finds more but marks up to 1.6 % of an
  unclipped frame, too near the 2 % "Blown highlights" threshold).
- **crushed black**: a pixel with every channel at or below `LOW_LEVEL` = 2. One dark channel is a
  saturated colour, not a loss; all three near zero is black without texture (values 1–2 are
  JPEG ringing around 0 and sensor noise, not detail).

`clipping(rgb)` gives the fractions (0..1) of the whole frame, and per channel for the histogram's
marks; `histogram(rgb)` the 4 × 256 counts: luma (Rec. 601, the Y of JPEG's YCbCr, as Pillow's
"L"), R, G, B. Both take an H×W×3 uint8 array or a Pillow RGB image, and cost about 0.3 s for a
24 MP frame on a slow laptop core (one max over the channels; Pillow's C histogram).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

HIGH_LEVEL = 254  # a channel at or above: clipped white
LOW_LEVEL = 2  # every channel at or below: crushed black


@dataclass(frozen=True)
class Clipping:
    """Fractions of the frame's pixels, each 0..1."""

    highlights: float  # at least one channel >= HIGH_LEVEL
    shadows: float  # every channel <= LOW_LEVEL
    channel_highlights: tuple[float, float, float]  # R, G, B each >= HIGH_LEVEL
    channel_shadows: tuple[float, float, float]  # R, G, B each <= LOW_LEVEL


def _rgb(rgb: np.ndarray | Image.Image) -> np.ndarray:
    """An H×W×3 uint8 view of `rgb` (a gray H×W image becomes three equal channels; alpha dropped)."""
    if isinstance(rgb, Image.Image):
        rgb = rgb if rgb.mode == "RGB" else rgb.convert("RGB")
    a = np.asarray(rgb)
    if a.dtype != np.uint8:
        raise ValueError(f"expected 8-bit pixels (uint8), got {a.dtype}")
    if a.ndim == 2:
        return np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ValueError(f"expected an H×W×3 RGB image, got shape {a.shape}")
    return a[:, :, :3]


def clipping(rgb: np.ndarray | Image.Image, counts: np.ndarray | None = None) -> Clipping:
    """Fractions of pixels clipped white (any channel ≥ 254) and crushed black (all ≤ 2).

    `counts`, the image's `histogram` when the caller has it, saves counting each channel again."""
    a = _rgb(rgb)
    n = a.shape[0] * a.shape[1]
    if n == 0:
        return Clipping(0.0, 0.0, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
    # Any channel >= HIGH is the channels' maximum >= HIGH; every channel <= LOW is the maximum <= LOW.
    top = np.maximum(np.maximum(a[:, :, 0], a[:, :, 1]), a[:, :, 2])
    if counts is None:
        high = tuple(int(np.count_nonzero(a[:, :, c] >= HIGH_LEVEL)) for c in range(3))
        low = tuple(int(np.count_nonzero(a[:, :, c] <= LOW_LEVEL)) for c in range(3))
    else:
        high = tuple(int(counts[c + 1, HIGH_LEVEL:].sum()) for c in range(3))
        low = tuple(int(counts[c + 1, : LOW_LEVEL + 1].sum()) for c in range(3))
    return Clipping(
        highlights=int(np.count_nonzero(top >= HIGH_LEVEL)) / n,
        shadows=int(np.count_nonzero(top <= LOW_LEVEL)) / n,
        channel_highlights=(high[0] / n, high[1] / n, high[2] / n),
        channel_shadows=(low[0] / n, low[1] / n, low[2] / n),
    )


def histogram(rgb: np.ndarray | Image.Image) -> np.ndarray:
    """Counts per level 0..255 of luma, R, G and B: an int64 array of shape (4, 256)."""
    if isinstance(rgb, Image.Image) and rgb.mode == "RGB":
        img = rgb
    else:
        img = Image.fromarray(np.ascontiguousarray(_rgb(rgb)))
    out = np.empty((4, 256), np.int64)
    out[1:] = np.asarray(img.histogram(), np.int64).reshape(3, 256)
    out[0] = img.convert("L").histogram()
    return out
