"""Focus at native resolution: how sharp the sharpest region is, whether its blur has a direction.

The method (numpy only, single-threaded, no Python loop over pixels):

- A Haar pyramid of the luminance. The level-1 details (2×2 blocks) carry the finest edges the
  sensor recorded; the level-4 details (16×16 blocks) carry the same edges seen from afar, where a
  blur of a few pixels makes no difference. Per tile, the *ratio* of fine to coarse gradient energy
  falls as the blur widens (a step edge blurred by σ loses fine energy as 1/σ, coarse energy barely),
  whatever the edge's contrast: a dark or low-contrast frame that is sharp stays sharp.
- Noise is not detail: each tile's noise energy is measured in the tile itself (so its level at the
  tile's brightness counts) and subtracted before the ratio is taken: the larger of the diagonal
  band's energy (white noise fills it as much as each gradient band, a blurred edge hardly at all)
  and the gradient bands' median detail (which also sees noise with a grain, up to a cap).
  Tiles whose coarse edges do not stand clear of the noise are not judged.
- Gradient energy is kept as a 2×2 structure tensor per tile and scale, so the ratio can be read in
  every direction: the smallest fine/coarse ratio (a generalised eigenvalue) is the blur along its
  worst direction, the largest the blur across it. A defocus blur is the same in all directions; a
  motion blur leaves the edges along the motion sharp — the gap between the two is `motion`, the
  worst direction its `angle`. On small frames and crops, whose content may simply run one way, the
  worst direction is believed less (in proportion to the 16-px blocks it rests on).
- The frame's score is that of its sharpest tiles (the top 2 %), so a sharp subject on a soft
  background is sharp. The ratio is mapped to 0..1 so that a Gaussian blur of σ = 2 px reads at or
  below `registry.FOCUS_OUT` (0.30) and a sharp frame well above `registry.FOCUS_SOFT` (0.50).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["FocusResult", "luminance", "measure_focus", "measure_focus_rgb", "peaking_mask"]

# Rec. 709 luma weights on the encoded (sRGB) values, scaled so that 255 reads 1.0.
_LUMA = (0.2126 / 255.0, 0.7152 / 255.0, 0.0722 / 255.0)

_MIN_SIDE = 64  # smaller inputs (a small face crop) are mirrored out to this size
_TOP_FRACTION = 0.02  # the sharpest region: this fraction of the frame's tiles (at least two)
_MAX_GRAIN = 4.0  # grain: the gradient bands hold at most this many times the diagonal band's noise
_LUMA_ROWS = 256  # rows per band of the luminance conversion
_TILE_ISOTROPY = 0.5  # a tile reads a blur's direction only if its coarse edges are this round
_NOISE_MARGIN = 30.0  # a judged tile's coarse energy exceeds the noise's fluctuation this many times
_DIRECTION_BLOCKS = 1024  # the worst direction is fully believed on this many 16-px blocks
_ISOTROPY = 0.3  # the direction is read on tiles whose coarse edges are this close to all-directional
_NOISE_QUANTILE = 25.0  # the frame's noise: this percentile of its tiles' (noise is everywhere, texture not)
_NOISE_CLIP = 0.04  # tiles whose mean is this close to black or white do not say the frame's noise

# Mapping of the fine/coarse energy ratio to 0..1: score = 1 / (1 + (RATIO_MID / ratio) ** POWER).
# Calibrated on scenes built from real photographs (tests/measures/scenes.py).
RATIO_MID = 1.9
POWER = 1.75


@dataclass(frozen=True)
class FocusResult:
    """Focus of one frame: score 0..1 (sharpest region), motion 0..1, angle in degrees or None."""

    score: float  # 0 out of focus .. 1 sharp at 100 %
    motion: float  # 0 even (defocus) .. 1 all the blur in one direction (shake, moving subject)
    angle: float | None  # direction of the motion blur, degrees counter-clockwise from horizontal
    region: tuple[int, int, int, int]  # (x, y, w, h) of the sharpest tile, in the input's pixels
    # The frame's noise: standard deviation on the luminance's 0..1 scale (× 255 = levels of an
    # 8-bit file), read in its flattest tiles that are not near clipping (`_frame_noise`).
    noise: float = 0.0
    # False when no tile's edges stood clear of the noise (a plain sky, fog, a flat wall): `score`
    # then rests on the strongest tile alone and says little; `motion` is 0.
    judged: bool = True


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Luma (Rec. 709 weights on the encoded values) of an 8-bit RGB image, float32 0..1."""
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        return rgb.astype(np.float32) * np.float32(1 / 255)
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError(f"expected an H×W×3 RGB image, got shape {rgb.shape}")
    # In bands of rows: the whole-frame temporaries of a 24 MP frame would add 96 MB per decode
    # thread at the peak; a band's are a few MB. The same arithmetic, so the same values.
    y = np.empty(rgb.shape[:2], dtype=np.float32)
    w = [np.float32(v) for v in _LUMA[:3]]
    for top in range(0, rgb.shape[0], _LUMA_ROWS):
        band = rgb[top : top + _LUMA_ROWS]
        out = y[top : top + _LUMA_ROWS]
        np.multiply(band[..., 0], w[0], out=out, dtype=np.float32)
        out += band[..., 1] * w[1]
        out += band[..., 2] * w[2]
    return y


def _haar(g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One Haar level on an even-sized array, unnormalised: (4 × means, 2 × x, y, diagonal details).

    A detail is the difference of the two half-block means (here doubled), so a step edge of height A
    reads A at every level. Computed in place: five arrays of a quarter of the input's size.
    """
    a = g[0::2, 0::2]
    b = g[0::2, 1::2]
    c = g[1::2, 0::2]
    d = g[1::2, 1::2]
    top = a + b
    bottom = c + d
    left_minus_right_top = a - b
    left_minus_right_bottom = c - d
    sums = top + bottom
    dy = np.subtract(top, bottom, out=top)
    diag = np.subtract(left_minus_right_top, left_minus_right_bottom, out=bottom)
    dx = np.add(left_minus_right_top, left_minus_right_bottom, out=left_minus_right_top)
    return sums, dx, dy, diag


def _tiled(x: np.ndarray, per_tile: int) -> np.ndarray:
    rows, cols = x.shape[0] // per_tile, x.shape[1] // per_tile
    return x.reshape(rows, per_tile, cols, per_tile)


def _tile_sums(x: np.ndarray, y: np.ndarray, per_tile: int) -> np.ndarray:
    """Per-tile sums of x·y (no temporary the size of x)."""
    return np.einsum("ijkl,ijkl->ik", _tiled(x, per_tile), _tiled(y, per_tile)).astype(np.float64)


def _tensor(dx: np.ndarray, dy: np.ndarray, per_tile: int, scale: float) -> np.ndarray:
    """Per-tile structure tensor (xx, yy, xy) of the details, each scaled by `scale`."""
    return np.stack(
        [
            _tile_sums(dx, dx, per_tile) * scale,
            _tile_sums(dy, dy, per_tile) * scale,
            _tile_sums(dx, dy, per_tile) * scale,
        ]
    )


def _generalised_eigen(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smallest and largest λ with det(A − λB) = 0 per tile, and the angle (radians) of the smallest.

    a, b: (3, ...) arrays of (xx, yy, xy); b must be positive definite.
    """
    a11, a22, a12 = a
    b11, b22, b12 = b
    qa = b11 * b22 - b12 * b12
    qb = -(a11 * b22 + a22 * b11 - 2 * a12 * b12)
    qc = a11 * a22 - a12 * a12
    disc = np.sqrt(np.maximum(qb * qb - 4 * qa * qc, 0.0))
    lo = (-qb - disc) / (2 * qa)
    hi = (-qb + disc) / (2 * qa)
    # (A − λB) v = 0: v = (−(a12 − λ b12), a11 − λ b11), or from the second row when that is degenerate.
    vx = -(a12 - lo * b12)
    vy = a11 - lo * b11
    alt_vx = a22 - lo * b22
    alt_vy = -(a12 - lo * b12)
    use_alt = (vx * vx + vy * vy) < (alt_vx * alt_vx + alt_vy * alt_vy)
    vx = np.where(use_alt, alt_vx, vx)
    vy = np.where(use_alt, alt_vy, vy)
    return lo, hi, np.arctan2(vy, vx)


def _score(ratio: np.ndarray | float) -> np.ndarray:
    r = np.maximum(np.asarray(ratio, dtype=np.float64), 1e-9)
    return 1.0 / (1.0 + (RATIO_MID / r) ** POWER)


def noise_sigma(gray: np.ndarray) -> float:
    """The frame's noise standard deviation (0..1 scale): MAD of the finest diagonal Haar band."""
    g = np.asarray(gray, dtype=np.float32)
    h, w = g.shape[0] // 2 * 2, g.shape[1] // 2 * 2
    g = g[:h, :w]
    step = 1 + (h * w) // 4_000_000  # a few million samples are plenty
    diag = (g[0::2, 0::2] - g[0::2, 1::2] - g[1::2, 0::2] + g[1::2, 1::2])[::step]
    diag = np.abs(diag, out=diag).ravel()
    if diag.size == 0:
        return 0.0
    k = diag.size // 2
    return float(np.partition(diag, k)[k]) * 0.5 / 0.6745


def measure_focus(gray: np.ndarray) -> FocusResult:
    """Focus of a frame from its luminance at native resolution (2-D float 0..1, any size ≥ 16 px)."""
    g = np.asarray(gray, dtype=np.float32)
    if g.ndim != 2:
        raise ValueError(f"expected a 2-D luminance image, got shape {g.shape}")
    height, width = g.shape
    if min(height, width) < _MIN_SIDE:
        pad_y = max(0, _MIN_SIDE - height)
        pad_x = max(0, _MIN_SIDE - width)
        g = np.pad(g, ((0, pad_y), (0, pad_x)), mode="wrap")
    grid = _Grid.of(g.shape)
    stats = _tile_stats(lambda top, bottom: g[top:bottom, grid.ox : grid.ox + grid.cols * grid.tile], grid)
    if stats is None:  # NaN or inf pixels
        return measure_focus(
            np.nan_to_num(np.asarray(gray, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        )
    return _judge(stats, grid, height, width)


def measure_focus_rgb(rgb: np.ndarray) -> FocusResult:
    """`measure_focus(luminance(rgb))`, the same values, without the frame's luminance: each band
    of tiles is converted and measured in turn, so a 24 MP frame needs a few MB of temporaries
    instead of the 96 MB luminance and the 96 MB of its Haar details (and stays in the CPU's cache)."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or min(rgb.shape[:2]) < _MIN_SIDE:
        return measure_focus(luminance(rgb))
    height, width = rgb.shape[:2]
    grid = _Grid.of((height, width))
    stats = _tile_stats(
        lambda top, bottom: luminance(rgb[top:bottom, grid.ox : grid.ox + grid.cols * grid.tile]), grid
    )
    if stats is None:  # cannot happen with 8-bit pixels; float ones may hold NaN
        return measure_focus(luminance(rgb))
    return _judge(stats, grid, height, width)


@dataclass(frozen=True)
class _Grid:
    """The tiles of a frame: `rows` × `cols` squares of `tile` px, centred (offset oy, ox)."""

    tile: int
    rows: int
    cols: int
    oy: int
    ox: int

    @classmethod
    def of(cls, shape: tuple[int, ...]) -> _Grid:
        side = min(shape[0], shape[1])
        tile = 256 if side >= 1024 else max(_MIN_SIDE, 1 << int(math.log2(side / 4)))
        rows, cols = shape[0] // tile, shape[1] // tile
        return cls(tile, rows, cols, (shape[0] - rows * tile) // 2, (shape[1] - cols * tile) // 2)


@dataclass
class _Stats:
    """Per-tile sums of one frame (see `_tile_stats`)."""

    fine: np.ndarray  # (3, rows, cols) level-1 structure tensor
    white: np.ndarray  # (rows, cols) diagonal-band energy
    spread: np.ndarray  # (rows, cols) sum of the gradient bands' squared median details
    diag_median: np.ndarray  # (rows, cols) median absolute diagonal detail
    means8: np.ndarray  # (rows * tile/8, cols * tile/8) 8×8 block means
    coarse: np.ndarray  # (3, rows, cols) level-4 structure tensor


def _tile_stats(band: Callable[[int, int], np.ndarray], grid: _Grid) -> _Stats | None:
    """The per-tile sums, one band of tiles (`tile` rows of luminance, `band(top, bottom)`) at a
    time: every sum is a tile's own, so the values are those of the whole frame at once. None when
    a sum is not finite (NaN or inf pixels)."""
    tile, rows, cols = grid.tile, grid.rows, grid.cols
    half, per8 = tile // 2, tile // 8
    fine = np.empty((3, rows, cols))
    white = np.empty((rows, cols))
    spread = np.zeros((rows, cols))
    diag_median = np.empty((rows, cols))
    means8 = np.empty((rows * per8, cols * per8), np.float32)
    for r in range(rows):
        top = grid.oy + r * tile
        g = band(top, top + tile)
        # Level 1: the finest details (2×2 blocks); level 4: details of 16×16 blocks (Haar of the
        # 8×8 block means). Energies are scaled by the block size (2, 16) so that a step edge
        # weighs the same at both, and by 1/4 for the doubled details of `_haar`.
        sums1, dx1, dy1, diag1 = _haar(g)
        fine[:, r : r + 1] = _tensor(dx1, dy1, half, 2.0 / 4.0)
        # White noise puts the same energy in the diagonal band as in each gradient band, and a
        # blurred edge puts almost none there: the tile's own diagonal energy is its noise energy
        # (whatever the noise's level in this tile's brightness), subtracted from each direction.
        white[r : r + 1] = _tile_sums(diag1, diag1, half) * (2.0 / 4.0)
        # Noise with a grain (demosaicing, noise reduction, JPEG) puts less in the diagonal band
        # than in the gradient bands. Their median absolute detail over the tile measures it as it
        # is (edges are few, noise is everywhere) but also takes in smooth ramps and blurred
        # texture, which have gradient details and hardly any diagonal ones: it is believed up to
        # _MAX_GRAIN times the diagonal band's estimate (noise with a grain of up to ~0.7 px).
        for detail in (dx1, dy1):
            spread[r : r + 1] += _median_abs(detail, cols, half) ** 2
        # The same tiles' median absolute diagonal detail: the reported noise level
        # (FocusResult.noise). Unlike the diagonal *energy*, a median is not raised by a few edges.
        diag_median[r : r + 1] = _median_abs(diag1, cols, half)
        del dx1, dy1, diag1
        means8[r * per8 : (r + 1) * per8] = np.einsum(
            "ijkl->ik", sums1.reshape(per8, 4, cols * per8, 4)
        ) * np.float32(1 / 64)
        del sums1, g
    _, dx4, dy4, _ = _haar(means8)
    coarse = _tensor(dx4, dy4, tile // 16, 16.0 / 4.0)
    if not (np.isfinite(fine).all() and np.isfinite(coarse).all()):
        return None
    return _Stats(fine, white, spread, diag_median, means8, coarse)


def _median_abs(detail: np.ndarray, cols: int, half: int) -> np.ndarray:
    """(1, cols) median absolute detail of one band of tiles (a sample: every 4th row, 2nd column)."""
    sub = np.abs(detail.reshape(1, half, cols, half)[:, ::4, :, ::2]).transpose(0, 2, 1, 3)
    sub = sub.reshape(1, cols, -1)
    k = sub.shape[2] // 2
    return np.partition(sub, k, axis=2)[:, :, k].astype(np.float64)


def _judge(stats: _Stats, grid: _Grid, height: int, width: int) -> FocusResult:
    """The frame's focus, motion and noise from its tiles' sums."""
    tile, rows, cols, oy, ox = grid.tile, grid.rows, grid.cols, grid.oy, grid.ox
    half, per8 = tile // 2, tile // 8
    fine, white, spread, coarse = stats.fine, stats.white, stats.spread, stats.coarse
    graded = spread / (2 * 0.6745**2) * half * half * (2.0 / 4.0)
    noise = np.maximum(white, np.minimum(graded, _MAX_GRAIN * white))
    diag_median, means8 = stats.diag_median, stats.means8

    frame_noise = _frame_noise(diag_median, spread, means8.reshape(rows, per8, cols, per8).mean(axis=(1, 3)))
    blocks = (tile // 2) ** 2
    # The subtraction is biased up by three standard deviations of its own fluctuation, so that the
    # sharpest tiles of a noisy frame are not those where the noise happened to fall short.
    margin = 1.0 + 3.0 * math.sqrt(2.0 / blocks)
    # `fine_white` (white noise taken off) reads the blur's direction: grain is even in all directions
    # and the gradient bands' estimate would take some of the direction's own ramps with it.
    fine_white = fine.copy()
    fine_white[:2] = np.maximum(fine[:2] - white * margin, 0.0)
    fine[:2] = np.maximum(fine[:2] - noise * margin, 0.0)
    # A level-4 detail averages 128 pixels per half: 1/64 of the level-1 noise variance, 8× the weight.
    coarse[:2] = np.maximum(coarse[:2] - noise / 512.0, 0.0)
    fine_tr = fine[0] + fine[1]
    coarse_tr = coarse[0] + coarse[1]

    # Judge only tiles whose coarse edges stand clear of the noise's fluctuation (and quantisation):
    # the fine energy left after subtracting the noise varies by about noise / sqrt(blocks).
    judged = coarse_tr > np.maximum(_NOISE_MARGIN * noise / math.sqrt(blocks), 2e-6 * tile * tile)
    any_judged = bool(judged.any())
    if not any_judged:
        judged = coarse_tr >= coarse_tr.max()
    ratio = np.where(judged, fine_tr / np.maximum(coarse_tr, 1e-12), -np.inf)
    order = np.argsort(ratio, axis=None)[::-1]
    n_judged = int(judged.sum())
    # A fraction of the frame, not of the judged tiles: noise that leaves fewer tiles judged must not
    # narrow the region to the very sharpest ones.
    count = min(n_judged, max(2, round(_TOP_FRACTION * rows * cols)))
    # Geometric mean of the sharpest tiles' ratios (not energy-weighted): noise can only lower a
    # tile's ratio or leave it unjudged, so it can only lower this.
    sharpest = float(np.exp(np.mean(np.log(np.maximum(ratio.flat[order[:count]], 1e-9)))))
    ratio_white = np.where(judged, (fine_white[0] + fine_white[1]) / np.maximum(coarse_tr, 1e-12), -np.inf)
    order_white = np.argsort(ratio_white, axis=None)[::-1]
    sharpest_white = float(np.exp(np.mean(np.log(np.maximum(ratio_white.flat[order_white[:count]], 1e-9)))))

    # Direction: the sharpest tiles (at least _DIRECTION_BLOCKS 16-px blocks' worth), widened (in
    # order of sharpness) until their coarse edges run in every direction, read as one tensor pair.
    # Its smallest and largest fine/coarse ratios, relative to its mean, say how much worse the blur
    # is along one direction than across it. Read with white noise taken off (grain is even in every
    # direction; the gradient bands' estimate would take some of the direction's own ramps with it);
    # the score with all the noise taken off.
    def directional(tensors: np.ndarray, ranked: np.ndarray, level: float) -> tuple[float, float, float]:
        k = min(n_judged, max(count, -(-_DIRECTION_BLOCKS // (tile // 16) ** 2)))
        while True:
            c = coarse.reshape(3, -1)[:, ranked[:k]].sum(axis=1)
            spread = math.sqrt(max((c[0] - c[1]) ** 2 + 4 * c[2] ** 2, 0.0))
            isotropy = (c[0] + c[1] - spread) / max(c[0] + c[1] + spread, 1e-12)
            if isotropy >= _ISOTROPY or k >= n_judged:
                break
            k = min(n_judged, k * 2)
        f = tensors.reshape(3, -1)[:, ranked[:k]].sum(axis=1)
        # Where even all the judged tiles' edges run mostly one way (a small crop, a face), the other
        # direction's ratio rests on little: it is pulled towards the mean.
        pull = max(0.0, _ISOTROPY - isotropy)
        c = c + np.array([1.0, 1.0, 0.0]) * (pull * 0.5 * (c[0] + c[1]) + 1e-12)
        f = f + np.array([1.0, 1.0, 0.0]) * (pull * 0.5 * (f[0] + f[1]))
        lo, hi, theta = _generalised_eigen(f[:, None], c[:, None])
        mean = max(float((f[0] + f[1]) / (c[0] + c[1])), 1e-12)
        lo_ratio = level * max(float(lo[0]), 0.0) / mean
        hi_ratio = level * max(float(hi[0]), 0.0) / mean
        # How far the directions can be told apart from content that merely runs one way: by the
        # number of 16-px blocks they rest on (all of a 24 MP frame's sharpest tiles; a few on a
        # small photo or a face crop, whose focus is then that of the mean direction).
        trust = min(1.0, k * (tile // 16) ** 2 / _DIRECTION_BLOCKS)
        return level * (lo_ratio / level) ** trust, hi_ratio, float(theta[0])

    # The focus: that of the worst direction (a defocus blur is the same in every direction; a
    # motion blur leaves the one along the motion near zero).
    # Only tiles whose own coarse edges run in several directions can tell a blur's direction: in a
    # tile of texture that runs one way (wood grain, hair, fabric) the across-the-grain direction
    # holds almost no edge, its fine energy vanishes under the noise taken off, and a sharp texture
    # would read "blurred along the grain". Those tiles keep their place in the mean-direction score.
    c_all = coarse.reshape(3, -1)
    c_spread = np.sqrt(np.maximum((c_all[0] - c_all[1]) ** 2 + 4 * c_all[2] ** 2, 0.0))
    tile_iso = (c_all[0] + c_all[1] - c_spread) / np.maximum(c_all[0] + c_all[1] + c_spread, 1e-12)
    round_tiles = tile_iso >= _TILE_ISOTROPY
    sharpest_tile = int(order[0])
    order = order[round_tiles[order]] if round_tiles[order].sum() >= count else order[:0]
    order_white = order_white[round_tiles[order_white]] if order.size else order_white[:0]
    if order.size:
        lo_ratio, _, _ = directional(fine, order, sharpest)
        focus = float(_score(lo_ratio))
    else:  # nothing to read a direction from: the focus of the mean direction, no motion blur
        focus = float(_score(sharpest))
    lo_white, hi_white, theta = (
        directional(fine_white, order_white, sharpest_white) if order_white.size else (1.0, 1.0, 0.0)
    )
    worst, best = float(_score(lo_white)), float(_score(hi_white))
    motion = min(1.0, max(0.0, best - worst)) if any_judged else 0.0
    # The blurred direction in image coordinates (y down), reported counter-clockwise from horizontal.
    angle = float((-math.degrees(theta)) % 180.0) if motion > 0.0 else None

    best_row, best_col = divmod(sharpest_tile, cols)
    x0 = min(ox + best_col * tile, width - 1)
    y0 = min(oy + best_row * tile, height - 1)
    region = (x0, y0, min(tile, width - x0), min(tile, height - y0))
    score = focus if math.isfinite(focus) else 0.0
    return FocusResult(
        score=score, motion=motion, angle=angle, region=region, noise=frame_noise, judged=any_judged
    )


def _frame_noise(diag_median: np.ndarray, spread: np.ndarray, means: np.ndarray) -> float:
    """The frame's noise σ (0..1 scale) from each tile's median absolute details (level 1).

    White noise of σ gives diagonal details (a − b − c + d) of σ 2σ, and gradient details of the
    same σ: the diagonal median reads it; the gradient bands' (`spread`: the sum of the two squared
    medians) also read noise with a grain, and are believed up to twice the diagonal's (beyond, it
    is fine texture or a blurred ramp: blur is not noise). The frame's noise is the lower quartile
    of its tiles': noise covers the whole frame, fine texture (foliage, gravel) only part of it, and
    in a photo that is nothing but fine texture it reads as noise. Tiles near clipping (a blown sky,
    crushed shadows) hold no noise and are left out.
    """
    white = diag_median / (2 * 0.6745)
    grain = np.sqrt(spread / (2 * 0.6745**2) / 4.0)
    sigma = np.maximum(white, np.minimum(grain, 2.0 * white))
    usable = (means > _NOISE_CLIP) & (means < 1.0 - _NOISE_CLIP)
    values = sigma[usable] if usable.any() else sigma.ravel()
    value = float(np.percentile(values, _NOISE_QUANTILE))
    return value if math.isfinite(value) else 0.0


def peaking_mask(gray: np.ndarray) -> np.ndarray:
    """Where the image is in focus (bool, same shape), for the loupe's focus-peaking overlay.

    True on edges whose finest gradient is close to that of a step edge, relative to the frame's
    sharpest edges and never below an absolute floor (a soft frame shows little); flat and noisy
    areas never light up. Read at the resolution given: at full resolution it says what is sharp at
    100 % (about 0.4 s for 24 MP, 0.03 s for 2 MP, single-threaded).
    """
    g = np.asarray(gray, dtype=np.float32)
    if g.ndim != 2:
        raise ValueError(f"expected a 2-D luminance image, got shape {g.shape}")
    out = np.zeros(g.shape, dtype=bool)
    if min(g.shape) < 8:
        return out
    inner = g[2:-2, 2:-2]
    # The noise: white from the diagonal band, with a grain from one-pixel differences (their median:
    # edges are few), whichever is larger.
    step = 1 + g.shape[0] // 512
    sample = np.abs(g[2:-2:step, 3:-1] - g[2:-2:step, 2:-2]).ravel()
    grain = float(np.partition(sample, sample.size // 2)[sample.size // 2]) / (0.6745 * math.sqrt(2.0))
    sigma = max(noise_sigma(g), grain)
    # Fine: one-pixel differences; wide: four-pixel differences per pixel. A step edge reads 4× wider.
    fine = np.abs(g[2:-2, 3:-1] - inner) + np.abs(g[3:-1, 2:-2] - inner)
    wide = (np.abs(g[2:-2, 4:] - g[2:-2, :-4]) + np.abs(g[4:, 2:-2] - g[:-4, 2:-2])) * np.float32(0.25)
    edge = wide > np.float32(0.02 + 3.0 * sigma)
    if not edge.any():
        return out
    ratio = fine / np.maximum(wide, np.float32(1e-6))
    values = ratio[edge]
    values = values[:: 1 + values.size // 200_000]  # a percentile needs no more samples
    reference = float(np.percentile(values, 95)) if values.size > 20 else float(values.max())
    threshold = max(2.0, 0.75 * reference)
    out[2:-2, 2:-2] = edge & (ratio >= np.float32(threshold))
    return out
