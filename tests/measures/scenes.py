"""Camera-resolution test scenes built from real photographs, and controlled defects applied to them.

A scene is a periodic block (2000 × 2000 by default) of scikit-image's sample photographs at their
native resolution — never upscaled, which would itself blur them — laid over a dead-leaves texture
(random occluding discs with a power-law size distribution: the texture of ISO 19567-2 sharpness
charts). `frame()` tiles the block into a 24 MP frame (6000 × 4000). Because the block is periodic,
blurring it with a periodic (FFT) convolution and then tiling equals blurring the whole 24 MP frame at
full resolution, at a sixth of the cost. Values are float32 0..1 (sRGB-encoded, as decoded from a
JPEG); `to_uint8` quantises like an 8-bit file.

Shared by the measures' tests, the faces tests and benchmarks/flag_accuracy.py.
"""

from __future__ import annotations

import functools
import math

import numpy as np

BLOCK = 2000
FRAME = (4000, 6000)  # height, width: 24 MP

# Bundled with scikit-image (no download): colour and grey photographs of many kinds.
_PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "camera",
    "coins",
    "brick",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "text",
    "page",
)


def _photo(name: str) -> np.ndarray:
    from skimage import data

    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return img[..., :3].astype(np.float32) / np.float32(255)


def dead_leaves(height: int, width: int, seed: int = 0, discs: int = 12000) -> np.ndarray:
    """A colour dead-leaves texture (H×W×3 float32): discs of radius r ∝ r⁻³ between 3 and 250 px."""
    rng = np.random.default_rng(seed)
    img = np.full((height, width, 3), 0.5, dtype=np.float32)
    rmin, rmax = 3.0, 250.0
    u = rng.random(discs)
    # Inverse CDF of p(r) ∝ r⁻³ on [rmin, rmax]; drawn largest first so the small discs stay on top.
    radii = np.sort(1.0 / np.sqrt(1 / rmin**2 - u * (1 / rmin**2 - 1 / rmax**2)))[::-1]
    centres_y = rng.random(discs) * height
    centres_x = rng.random(discs) * width
    colours = rng.random((discs, 3)).astype(np.float32) * 0.9 + 0.05
    for r, cy, cx, colour in zip(radii, centres_y, centres_x, colours, strict=True):
        y0, y1 = max(0, int(cy - r)), min(height, int(cy + r) + 1)
        x0, x1 = max(0, int(cx - r)), min(width, int(cx + r) + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        yy = np.arange(y0, y1, dtype=np.float32)[:, None] - cy
        xx = np.arange(x0, x1, dtype=np.float32)[None, :] - cx
        inside = yy * yy + xx * xx <= r * r
        img[y0:y1, x0:x1][inside] = colour
    return img


@functools.lru_cache(maxsize=2)
def base_block(size: int = BLOCK, seed: int = 0) -> np.ndarray:
    """The sharp periodic block (size × size × 3, float32 0..1): photographs over dead leaves.

    Read-only (cached): copy before writing into it.
    """
    img = dead_leaves(size, size, seed)
    y = x = 24
    row_height = 0
    for name in _PHOTOS:
        photo = _photo(name)
        h, w = photo.shape[:2]
        if x + w > size - 24:
            x = 24
            y += row_height + 24
            row_height = 0
        if y + h > size - 24:
            break
        img[y : y + h, x : x + w] = photo
        x += w + 24
        row_height = max(row_height, h)
    img.setflags(write=False)
    return img


def luma(img: np.ndarray) -> np.ndarray:
    """Rec. 709 luma of an H×W×3 float image (what measures.focus.luminance gives for 8-bit)."""
    if img.ndim == 2:
        return img.astype(np.float32)
    w = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    return np.asarray(img[..., :3] @ w, dtype=np.float32)


def _convolve_periodic(img: np.ndarray, kernel_ft: np.ndarray) -> np.ndarray:
    spectrum = np.fft.rfft2(img, axes=(0, 1))
    if img.ndim == 3:
        spectrum *= kernel_ft[..., None]
    else:
        spectrum *= kernel_ft
    return np.fft.irfft2(spectrum, s=img.shape[:2], axes=(0, 1)).astype(np.float32)


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Periodic Gaussian blur of σ pixels (exact: the Gaussian's transfer function), any channels."""
    if sigma <= 0:
        return np.array(img, dtype=np.float32)
    h, w = img.shape[:2]
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    transfer = np.exp(-2.0 * (math.pi * sigma) ** 2 * (fx * fx + fy * fy)).astype(np.float32)
    return _convolve_periodic(img, transfer)


def motion_blur(img: np.ndarray, length: float, angle: float) -> np.ndarray:
    """Periodic blur by a straight line kernel of `length` pixels at `angle` degrees.

    The angle is counter-clockwise from horizontal as the photograph is seen (y up). The kernel is the
    segment rasterised with bilinear weights (the path of a point during the exposure).
    """
    h, w = img.shape[:2]
    samples = max(2, int(length * 8))
    t = np.linspace(-0.5, 0.5, samples) * (length - 1)
    theta = math.radians(angle)
    xs = t * math.cos(theta)
    ys = -t * math.sin(theta)  # image rows grow downwards
    x0 = np.floor(xs).astype(int)
    y0 = np.floor(ys).astype(int)
    fx = xs - x0
    fy = ys - y0
    index = np.concatenate(
        [((y0 + dy) % h) * w + (x0 + dx) % w for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1))]
    )
    weight = np.concatenate([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx])
    kernel = np.bincount(index, weights=weight, minlength=h * w).reshape(h, w).astype(np.float32)
    kernel /= kernel.sum()
    return _convolve_periodic(img, np.fft.rfft2(kernel))


def frame(block: np.ndarray, height: int = FRAME[0], width: int = FRAME[1]) -> np.ndarray:
    """Tile a periodic block into a frame of height × width (24 MP by default)."""
    reps_y = -(-height // block.shape[0])
    reps_x = -(-width // block.shape[1])
    reps = (reps_y, reps_x) + (1,) * (block.ndim - 2)
    return np.tile(block, reps)[:height, :width]


def add_noise(img: np.ndarray, sigma_255: float, seed: int = 1) -> np.ndarray:
    """Add white Gaussian noise of σ = sigma_255 on the 0..255 scale (clipped to 0..1)."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(img.shape, dtype=np.float32)
    noise *= np.float32(sigma_255 / 255.0)
    noise += img
    return np.clip(noise, 0.0, 1.0, out=noise)


def add_grainy_noise(img: np.ndarray, sigma_255: float, grain: float, seed: int = 1) -> np.ndarray:
    """Add Gaussian noise of σ = sigma_255 (0..255 scale) with a grain: white noise blurred by a
    Gaussian of `grain` px (periodic) and scaled back to σ, as demosaicing and noise reduction leave
    it in a camera's JPEG. Clipped to 0..1."""
    rng = np.random.default_rng(seed)
    noise = gaussian_blur(rng.standard_normal(img.shape[:2], dtype=np.float32), grain)
    noise *= np.float32(sigma_255 / 255.0) / noise.std()
    if img.ndim == 3:
        noise = noise[..., None]
    return np.clip(img + noise, 0.0, 1.0).astype(np.float32)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Quantise a float 0..1 image like an 8-bit file."""
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def quantise(img: np.ndarray) -> np.ndarray:
    """Round a float 0..1 image to 8-bit levels, staying float32 (luminance of an 8-bit file)."""
    return np.clip(np.rint(img * np.float32(255)), 0, 255).astype(np.float32) * np.float32(1 / 255)
