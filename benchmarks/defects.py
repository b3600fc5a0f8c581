"""The labelled set of benchmarks/flag_accuracy.py: real photographs at camera resolution with
controlled defects, each photo labelled with its defect, its strength and whether it is a reject.

Scenes. A camera frame is 24 MP; scikit-image's sample photographs are 300–1000 px. A scene is a
periodic 2000 × 2000 block of them at their NATIVE scale, tiled into the frame (3 × 2 blocks at
6000 × 4000). Nothing is ever upscaled: an upscaled photo is already blurred, and the "sharp"
originals would not be sharp. Odd scenes are tests/measures/scenes.py's block (the photographs over
a dead-leaves texture, the focus tests' own scene), even scenes a mosaic of crops of astronaut,
coffee, chelsea, rocket, camera, immunohistochemistry and the Middlebury motorcycle pair alone.
Blurs are periodic convolutions of the block (the same as blurring the whole frame); a defect in
pixels means the same at any `--size`, a smaller size only has less content.

Defects (pixel units are those of the frame):
- defocus: Gaussian blur σ 0.6, 1.2, 2, 3, 5 px;
- motion: a straight line kernel of 9, 15, 25 px at 0°, 45°, 90° (anti-aliased, sums to 1);
- noise: Gaussian noise of σ 4, 8, 16 levels of 255 per channel (ISO-like, not a reject);
- exposure: ±1, ±2, ±3 EV, linear light multiplied by 2^EV and clipped (sRGB curve both ways);
- jpeg: saved at quality 10 (every other frame at 92);
- shallow_dof: a KEEPER: the centre (a third of the width and height) sharp, the rest blurred σ 8
  with a soft transition;
- faces: the astronaut's portrait at its native 512 px with open eyes, and the same with the eyes
  painted shut by tests/measures/test_faces.py's close_eyes (eyelid skin over each eye along
  the contour the face mesh finds on the unpainted photo).

Labels (what a photographer rejects): defocus σ ≥ 2, motion ≥ 15 px, +2/+3 EV, −3 EV, eyes closed.
Everything else is a keeper, including noise, quality-10 JPEG, ±1 EV, −2 EV and the shallow depth
of field.

numpy + scipy + scikit-image (the [bench] extra); importable by tests (tests/test_flag_accuracy_smoke.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache

import numpy as np

CAMERA_SIZE = (6000, 4000)  # 24 MP, 3:2
PORTRAIT = "astronaut"
SOURCES = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "camera",
    "immunohistochemistry",
    "motorcycle_left",
    "motorcycle_right",
)
DEFOCUS_SIGMAS = (0.6, 1.2, 2.0, 3.0, 5.0)
MOTION_LENGTHS = (9, 15, 25)
MOTION_ANGLES = (0, 45, 90)
NOISE_SIGMAS = (4.0, 8.0, 16.0)
EXPOSURES = (-3, -2, -1, 1, 2, 3)
JPEG_HEAVY = 10
JPEG_NORMAL = 92
DOF_BACKGROUND_SIGMA = 8.0

# The labelling (printed by the benchmark).
LABELLING = (
    "true rejects: defocus σ ≥ 2 px, motion blur ≥ 15 px, +2/+3 EV, −3 EV, eyes closed; "
    "keepers: clean originals, defocus σ 0.6/1.2, motion 9 px, noise, ±1 EV, −2 EV, JPEG q10, "
    "shallow depth of field (sharp subject, background σ 8), open eyes"
)


@dataclass(frozen=True)
class Defect:
    kind: str  # clean, defocus, motion, noise, exposure, jpeg, shallow_dof, face
    strength: float = 0.0  # σ px, length px, noise σ, EV, JPEG quality; 1 = eyes closed for "face"
    angle: int | None = None  # motion only, degrees

    @property
    def name(self) -> str:
        if self.kind == "clean":
            return "clean"
        if self.kind == "motion":
            return f"motion-{self.strength:g}px-{self.angle}deg"
        if self.kind == "exposure":
            return f"exposure{self.strength:+g}EV"
        if self.kind == "face":
            return "face-eyes-closed" if self.strength else "face-eyes-open"
        if self.kind == "shallow_dof":
            return "shallow-dof"
        return f"{self.kind}-{self.strength:g}"

    @property
    def reject(self) -> bool:
        """The label: would a photographer reject this frame (see LABELLING)."""
        if self.kind == "defocus":
            return self.strength >= 2
        if self.kind == "motion":
            return self.strength >= 15
        if self.kind == "exposure":
            return self.strength >= 2 or self.strength <= -3
        if self.kind == "face":
            return self.strength >= 1
        return False

    @property
    def quality(self) -> int:
        """The JPEG quality the frame is saved with."""
        return JPEG_HEAVY if self.kind == "jpeg" else JPEG_NORMAL


def scene_defects() -> tuple[Defect, ...]:
    """Every defect applied to each mosaic scene (the clean original first)."""
    return (
        Defect("clean"),
        *(Defect("defocus", s) for s in DEFOCUS_SIGMAS),
        *(Defect("motion", n, a) for n in MOTION_LENGTHS for a in MOTION_ANGLES),
        *(Defect("noise", s) for s in NOISE_SIGMAS),
        *(Defect("exposure", ev) for ev in EXPOSURES),
        Defect("jpeg", JPEG_HEAVY),
        Defect("shallow_dof", DOF_BACKGROUND_SIGMA),
    )


FACE_DEFECTS = (Defect("face", 0), Defect("face", 1))


# --- the scenes -----------------------------------------------------------------------------------
SCENES = ("dead-leaves", "mosaic")  # alternate: scene 1 dead leaves, scene 2 mosaic, scene 3 dead leaves...


@cache
def sample_photo(name: str) -> np.ndarray:
    """One of scikit-image's sample photographs as uint8 RGB (H, W, 3), read-only."""
    from skimage import data

    if name.startswith("motorcycle_"):
        left, right, _ = data.stereo_motorcycle()
        img = left if name.endswith("left") else right
    else:
        img = getattr(data, name)()
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = np.ascontiguousarray(img[:, :, :3], dtype=np.uint8)
    img.setflags(write=False)
    return img


def mosaic(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A width × height uint8 RGB image tiled with native-scale crops of the sample photographs.

    Rows of one height (256–300 px by seed, every sample is at least 300 px tall); each row starts
    at another photo and another horizontal offset, so neighbouring rows do not repeat one another.
    """
    rng = np.random.default_rng(seed)
    photos = [sample_photo(n) for n in SOURCES]
    row_h = int(rng.integers(256, 301))
    out = np.empty((height, width, 3), dtype=np.uint8)
    order = rng.permutation(len(photos))
    k = 0
    for y in range(0, height, row_h):
        h = min(row_h, height - y)
        x = 0
        while x < width:
            img = photos[order[k % len(order)]]
            k += 1
            top = int(rng.integers(0, img.shape[0] - row_h + 1))
            left = int(rng.integers(0, max(1, img.shape[1] // 4)))
            tile = img[top : top + h, left:]
            if rng.random() < 0.5:
                tile = tile[:, ::-1]
            w = min(tile.shape[1], width - x)
            out[y : y + h, x : x + w] = tile[:, :w]
            x += w
    return out


def scene_block(index: int) -> tuple[str, np.ndarray]:
    """Scene `index` (1, 2, ...): its kind and its sharp periodic block (float32 0..1, BLOCK²).

    Odd scenes are tests/measures/scenes.py's block (photographs over a dead-leaves texture, the
    measures' tests' own scene); even ones a mosaic of the photographs alone, with no texture."""
    from tests.measures import scenes

    kind = SCENES[(index - 1) % len(SCENES)]
    if kind == "dead-leaves":
        return kind, scenes.base_block(scenes.BLOCK, seed=index)
    return kind, mosaic(scenes.BLOCK, scenes.BLOCK, seed=index).astype(np.float32) / np.float32(255)


# --- the defects ----------------------------------------------------------------------------------
def _srgb_to_linear(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * np.power(np.maximum(v, 0), 1 / 2.4) - 0.055)


def exposure(rgb: np.ndarray, ev: float) -> np.ndarray:
    """Multiply linear light of an 8-bit image by 2^ev and clip, as a longer or shorter exposure
    would (one 256-entry lookup table: exact for 8-bit input)."""
    levels = np.arange(256, dtype=np.float64) / 255
    lut = np.clip(_linear_to_srgb(np.clip(_srgb_to_linear(levels) * 2.0**ev, 0, 1)) * 255, 0, 255)
    return np.rint(lut).astype(np.uint8)[rgb]


def soft_rectangle(height: int, width: int) -> np.ndarray:
    """1 on the centre third (width and height), 0 outside, with a soft edge: (H, W, 1) float32."""
    from scipy import ndimage

    edge = max(2.0, min(height, width) / 200)

    def profile(n: int) -> np.ndarray:
        step = np.zeros(n, dtype=np.float32)
        step[n // 3 : n - n // 3] = 1
        return ndimage.gaussian_filter1d(step, edge)

    return np.outer(profile(height), profile(width))[:, :, None]


def render(block: np.ndarray, defect: Defect, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """The frame (uint8 RGB, size = width × height) of a sharp periodic scene block with `defect`.

    Blurs are periodic (FFT) on the block, then the block is tiled: the same as blurring the whole
    frame at full resolution (tests/measures/scenes.py). Noise is added to the whole frame, the
    exposure is applied to the 8-bit frame (JPEG quality is applied when saving: Defect.quality)."""
    from tests.measures import scenes

    width, height = size
    if defect.kind == "defocus":
        block = scenes.gaussian_blur(block, defect.strength)
    elif defect.kind == "motion":
        block = scenes.motion_blur(block, defect.strength, defect.angle or 0)
    elif defect.kind == "shallow_dof":
        sharp = scenes.frame(block, height, width)
        soft = scenes.frame(scenes.gaussian_blur(block, defect.strength), height, width)
        mask = soft_rectangle(height, width)
        return scenes.to_uint8(mask * sharp + (1 - mask) * soft)
    elif defect.kind not in ("clean", "jpeg", "noise", "exposure"):
        raise ValueError(f"unknown defect {defect.kind!r}")
    img = scenes.frame(block, height, width)
    if defect.kind == "noise":
        img = scenes.add_noise(img, defect.strength, seed)
    rgb = scenes.to_uint8(img)
    return exposure(rgb, defect.strength) if defect.kind == "exposure" else rgb


# --- faces ----------------------------------------------------------------------------------------
def face_frame(eyes_closed: bool) -> tuple[np.ndarray, str]:
    """The astronaut's portrait at native resolution, eyes open or painted shut, and how it was made.

    Closed eyes come from tests/measures/test_faces.py's builder (eyelid skin painted over the eyes
    along the contour the detector finds) when the tests and the [faces] extra are importable."""
    base = sample_photo(PORTRAIT)
    if not eyes_closed:
        return base, "scikit-image astronaut, 512 px, eyes open"
    try:
        from clipiqa_desktop.measures.faces import detect_faces
        from tests.measures.test_faces import close_eyes
    except ImportError as exc:
        raise RuntimeError(f"no closed-eyes builder: {exc}") from exc
    found = detect_faces(np.array(base))
    if len(found) != 1 or found[0].landmarks is None:
        raise RuntimeError(f"the astronaut's face was not found once (found {len(found)})")
    painted = close_eyes(np.array(base), found[0].landmarks)
    return np.asarray(
        painted, dtype=np.uint8
    ), "astronaut with eyelids painted shut along the mesh's eye contours"


# --- the set --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LabelledPhoto:
    name: str  # file stem: "scene1-defocus-2"
    scene: str  # "scene1", "face"
    defect: Defect
    rgb: np.ndarray


def labelled_set(
    size: tuple[int, int] = CAMERA_SIZE,
    scenes: int = 2,
    faces: bool = True,
    keep: Callable[[Defect], bool] | None = None,
) -> Iterator[LabelledPhoto]:
    """Every photo of the set (only the defects `keep` accepts), one at a time: a 24 MP frame is
    72 MB, the set is never in memory."""
    for s in range(1, scenes + 1):
        kind, block = scene_block(s)
        scene = f"scene{s}"
        for i, defect in enumerate(scene_defects()):
            if keep is not None and not keep(defect):
                continue
            rgb = render(block, defect, size, seed=100 * s + i)
            yield LabelledPhoto(f"{scene}-{defect.name}", f"{scene} ({kind})", defect, rgb)
    if faces:
        for defect in FACE_DEFECTS:
            if keep is not None and not keep(defect):
                continue
            rgb, _ = face_frame(bool(defect.strength))
            yield LabelledPhoto(f"{defect.name}", "face", defect, rgb)
