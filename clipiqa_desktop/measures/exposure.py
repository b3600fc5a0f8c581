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
marks; `histogram(rgb)` the 4 × 256 counts (luma, R, G, B).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HIGH_LEVEL = 254  # a channel at or above: clipped white
LOW_LEVEL = 2  # every channel at or below: crushed black

# Rec. 709 luma weights in 1/256ths (54 + 183 + 19 = 256, so 255 stays 255): the histogram's
# luminance curve is of the encoded values, as an editor's histogram is.
_LUMA = (54, 183, 19)


@dataclass(frozen=True)
class Clipping:
    """Fractions of the frame's pixels, each 0..1."""

    highlights: float  # at least one channel >= HIGH_LEVEL
    shadows: float  # every channel <= LOW_LEVEL
    channel_highlights: tuple[float, float, float]  # R, G, B each >= HIGH_LEVEL
    channel_shadows: tuple[float, float, float]  # R, G, B each <= LOW_LEVEL


def _rgb(rgb: np.ndarray) -> np.ndarray:
    """An H×W×3 uint8 view of `rgb` (a gray H×W image becomes three equal channels; alpha dropped)."""
    a = np.asarray(rgb)
    if a.dtype != np.uint8:
        raise ValueError(f"expected 8-bit pixels (uint8), got {a.dtype}")
    if a.ndim == 2:
        return np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ValueError(f"expected an H×W×3 RGB image, got shape {a.shape}")
    return a[:, :, :3]


def clipping(rgb: np.ndarray) -> Clipping:
    """Fractions of pixels clipped white (any channel ≥ 254) and crushed black (all ≤ 2)."""
    a = _rgb(rgb)
    n = a.shape[0] * a.shape[1]
    if n == 0:
        return Clipping(0.0, 0.0, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
    high = a >= HIGH_LEVEL
    low = a <= LOW_LEVEL
    ch_high = high.reshape(-1, 3).sum(axis=0)
    ch_low = low.reshape(-1, 3).sum(axis=0)
    return Clipping(
        highlights=float(np.count_nonzero(high.any(axis=2))) / n,
        shadows=float(np.count_nonzero(low.all(axis=2))) / n,
        channel_highlights=(float(ch_high[0]) / n, float(ch_high[1]) / n, float(ch_high[2]) / n),
        channel_shadows=(float(ch_low[0]) / n, float(ch_low[1]) / n, float(ch_low[2]) / n),
    )


def luma8(rgb: np.ndarray) -> np.ndarray:
    """Rec. 709 luma of the encoded values as uint8 (H×W), the histogram's luminance."""
    a = _rgb(rgb)
    y = (
        a[:, :, 0].astype(np.uint16) * _LUMA[0]
        + a[:, :, 1].astype(np.uint16) * _LUMA[1]
        + a[:, :, 2].astype(np.uint16) * _LUMA[2]
    )
    return (y >> 8).astype(np.uint8)


def histogram(rgb: np.ndarray) -> np.ndarray:
    """Counts per level 0..255 of luma, R, G and B: an int64 array of shape (4, 256)."""
    a = _rgb(rgb)
    out = np.empty((4, 256), np.int64)
    out[0] = np.bincount(luma8(a).ravel(), minlength=256)
    for c in range(3):
        out[c + 1] = np.bincount(np.ascontiguousarray(a[:, :, c]).ravel(), minlength=256)
    return out
