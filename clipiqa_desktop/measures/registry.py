"""What every attribute is called and how it reads: the pixel measures and the CLIP-IQA pairs.

The pixel measures are computed from the photo's own pixels (`measures.measure_photo`), with no
CLIP model: focus at native resolution, clipped highlights and shadows, noise, and (with the `[faces]`
extra) faces, the focus of the sharpest face and closed eyes. They are stored beside the CLIP-IQA
scores (the catalog's `scores` table, same keys space) so that `list --where`, sorting, the grid's
filters and the XMP export treat every attribute alike. Keys are stable: never rename one.

Plain Python (no numpy, torch or Qt), so the window, the CLI and the benchmarks share the names,
groups, units and readable reasons.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from ..scoring.attributes import BUILTIN_ATTRIBUTES

Group = Literal["technical", "people", "look", "feel", "custom"]
Kind = Literal["score", "fraction", "count"]

GROUP_TITLES: dict[str, str] = {
    "technical": "Technical",
    "people": "People",
    "look": "Look (CLIP-IQA)",
    "feel": "Feel (CLIP-IQA)",
    "custom": "Your prompts (CLIP)",
}

# Thresholds the presets and the reasons share (calibrated by benchmarks/flag_accuracy.py).
FOCUS_OUT = 0.30  # focus at or below: out of focus
FOCUS_SOFT = 0.50  # focus at or below: soft
MOTION_DIRECTIONAL = 0.5  # motion_blur at or above (on a soft frame): the blur has one direction
HIGHLIGHTS_BLOWN = 0.02  # 2 % of the pixels clipped white
SHADOWS_CRUSHED = 0.05  # 5 % of the pixels crushed black
# Noise is stored as a score: noise = 1 − 2^(−σ / NOISE_HALF_LEVELS), σ in levels of 255 (the
# luminance's standard deviation in the frame's flattest tiles, measures/focus.py). 0 clean;
# 0.50 at σ 6/255 (grain plain at 100 %), 0.75 at 12/255, 0.875 at 18/255, 0.99 at 40/255.
NOISE_HALF_LEVELS = 6.0
NOISY = 0.50  # noise at or above (σ ≥ 6/255): noisy; a soft focus there is detail lost in noise
VERY_NOISY = 0.875  # noise at or above (σ ≥ 18/255): very noisy


def noise_score(sigma: float) -> float:
    """The stored noise score 0..1 of a noise σ on the 0..1 scale (FocusResult.noise)."""
    levels = max(0.0, float(sigma)) * 255.0
    return 1.0 - 2.0 ** (-levels / NOISE_HALF_LEVELS)


def noise_levels(score: float) -> float:
    """The noise σ in levels of 255 that a stored noise score stands for (inverse of noise_score)."""
    return -NOISE_HALF_LEVELS * math.log2(max(1e-12, 1.0 - min(max(score, 0.0), 1.0)))


@dataclass(frozen=True)
class AttributeInfo:
    """How one attribute is named and read, whichever engine computes it."""

    key: str
    label: str  # "Focus", "Sharpness (CLIP-IQA)"
    group: Group
    kind: Kind  # score 0..1, fraction of pixels 0..1, or a count 0..n
    scale: str  # the direction of the value, low → high: "Out of focus → Sharp"
    help: str  # one sentence for tooltips and --help
    pixel: bool = False  # computed from the pixels (no CLIP model), needs a decode
    needs_faces: bool = False  # only with the [faces] extra installed

    @property
    def maximum(self) -> float | None:
        """The largest value the attribute can take (None for a count: the shoot's maximum)."""
        return None if self.kind == "count" else 1.0

    def format(self, value: float) -> str:
        """The value as a photographer reads it: '0.21', '4.8 %', '2'."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "–"
        if self.kind == "fraction":
            return f"{value * 100:.1f} %"
        if self.kind == "count":
            return str(round(value))
        return f"{value:.2f}"


PIXEL_MEASURES: tuple[AttributeInfo, ...] = (
    AttributeInfo(
        "focus",
        "Focus",
        "technical",
        "score",
        "Out of focus → Sharp",
        "Sharpness of the sharpest region at native resolution (noise is not detail): "
        "a sharp subject on a soft background is sharp.",
        pixel=True,
    ),
    AttributeInfo(
        "motion_blur",
        "Motion blur",
        "technical",
        "score",
        "Even → One direction",
        "How much the blur of the sharpest region has one direction (camera shake, a moving "
        "subject) rather than being even (missed focus). Read it on soft frames.",
        pixel=True,
    ),
    AttributeInfo(
        "highlights_clipped",
        "Blown highlights",
        "technical",
        "fraction",
        "None → Many",
        "Fraction of pixels clipped white in at least one channel.",
        pixel=True,
    ),
    AttributeInfo(
        "shadows_clipped",
        "Crushed shadows",
        "technical",
        "fraction",
        "None → Many",
        "Fraction of pixels crushed black in every channel.",
        pixel=True,
    ),
    AttributeInfo(
        "noise",
        "Noise",
        "technical",
        "score",
        "Clean → Noisy",
        "Sensor noise in the frame's flattest parts at native resolution: 0.50 at σ 6/255 "
        "(plain at 100 %), 0.75 at 12/255, 0.99 at 40/255. A frame of fine texture alone "
        "(foliage, gravel) reads as noisy.",
        pixel=True,
    ),
    AttributeInfo(
        "faces",
        "Faces",
        "people",
        "count",
        "None → Many",
        "Number of faces found (needs the [faces] extra).",
        pixel=True,
        needs_faces=True,
    ),
    AttributeInfo(
        "face_focus",
        "Face focus",
        "people",
        "score",
        "Out of focus → Sharp",
        "Sharpness of the sharpest face and its eyes at native resolution; empty without a face.",
        pixel=True,
        needs_faces=True,
    ),
    AttributeInfo(
        "eyes_closed",
        "Eyes closed",
        "people",
        "count",
        "None → Many",
        "Number of faces whose eyes are closed; empty without a face.",
        pixel=True,
        needs_faces=True,
    ),
)
PIXEL_KEYS: tuple[str, ...] = tuple(m.key for m in PIXEL_MEASURES)
FACE_KEYS: tuple[str, ...] = tuple(m.key for m in PIXEL_MEASURES if m.needs_faces)
_PIXEL = {m.key: m for m in PIXEL_MEASURES}


def _clip_info(key: str) -> AttributeInfo | None:
    for pair in BUILTIN_ATTRIBUTES:
        if pair.key == key:
            return AttributeInfo(
                key,
                f"{key.replace('_', ' ').capitalize()} (CLIP-IQA)",
                pair.group,
                "score",
                pair.scale,
                f"CLIP-IQA: how much more the photo matches {pair.positive!r} than {pair.negative!r}.",
            )
    return None


def attribute_info(key: str) -> AttributeInfo:
    """The info of any attribute key: a pixel measure, a CLIP-IQA pair, or a user's prompt pair."""
    info = _PIXEL.get(key) or _clip_info(key)
    if info is not None:
        return info
    if key == "keeper":  # culling.groups.KEEPER_KEY: what "best of the burst" means by default
        return AttributeInfo(
            key,
            "Keeper",
            "technical",
            "score",
            "Reject → Keep",
            "The keeper score that picks the best frame of a burst: focus (the sharpest face's when "
            "a face was found) 0.45, CLIP-IQA quality 0.35, eyes open 0.20, over the parts measured.",
        )
    if key == "taste":  # culling.taste.TASTE_KEY: learnt from the photographer's own decisions
        return AttributeInfo(
            key,
            "My taste",
            "custom",
            "score",
            "Reject → Keep",
            "Keep-probability of an undecided photo, learnt from your own picks and rejects (this "
            "shoot and earlier ones) on its CLIP embedding and attributes; the status bar and "
            "`clipiqa-desktop learn` give its cross-validated accuracy. Empty for decided photos.",
        )
    if key == "quality_plus":
        return AttributeInfo(
            key,
            "Quality+ (CLIP-IQA+)",
            "look",
            "score",
            "Bad → Good",
            "CLIP-IQA+: quality with the learned prompts of the file given in --learned-prompts.",
        )
    if key == "search":  # culling.search.SEARCH_KEY: the column of the window's search box
        return AttributeInfo(
            key,
            "Search match",
            "custom",
            "score",
            "Unlike → Like the text",
            "How well the photo matches the text searched for: the cosine similarity of CLIP's "
            "embedding of the text and of the photo (about 0.1–0.35 with real CLIP weights; "
            "compare photos within one search, not values across searches).",
        )
    return AttributeInfo(key, key, "custom", "score", "Negative → Positive", f"Your prompt pair {key!r}.")


def is_pixel_measure(key: str) -> bool:
    return key in _PIXEL


def _present(values: Mapping[str, float], key: str) -> float | None:
    v = values.get(key)
    if v is None or math.isnan(v):
        return None
    return float(v)


def _verdict(focus: float) -> str:
    return "out of focus" if focus <= FOCUS_OUT else "soft" if focus <= FOCUS_SOFT else "sharp"


def _sigma(noise: float) -> str:
    return f"σ {noise_levels(noise):.0f}/255"


def focus_reason(focus: float, motion: float | None = None, noise: float | None = None) -> str:
    """'sharpest region 0.21: out of focus (motion blur)'; on a noisy frame, a focus that is not
    sharp is 'sharpest region 0.02: detail lost in noise (σ 40/255)' (the focus discounts noise,
    so detail buried in it reads as missing, whether the lens missed or not)."""
    verdict = _verdict(focus)
    if verdict != "sharp" and noise is not None and noise >= NOISY:
        return f"sharpest region {focus:.2f}: detail lost in noise ({_sigma(noise)})"
    if verdict != "sharp" and motion is not None:
        verdict += " (motion blur)" if motion >= MOTION_DIRECTIONAL else " (defocus)"
    return f"sharpest region {focus:.2f}: {verdict}"


def noise_reason(noise: float) -> str:
    """'noise σ 12/255: noisy'."""
    verdict = "very noisy" if noise >= VERY_NOISY else "noisy" if noise >= NOISY else "clean"
    return f"noise {_sigma(noise)}: {verdict}"


def reasons(values: Mapping[str, float]) -> list[str]:
    """What the pixel measures of one photo say, one readable line each, e.g.
    ['sharpest region 0.21: out of focus (motion blur)', '2 faces, 1 with eyes closed',
    '4.8 % of pixels clipped white']. Attributes not measured are left out; noise only when the
    frame is noisy."""
    out: list[str] = []
    focus = _present(values, "focus")
    noise = _present(values, "noise")
    noisy = noise is not None and noise >= NOISY
    if focus is not None:
        out.append(focus_reason(focus, _present(values, "motion_blur"), noise))
    elif noise is not None:  # measured, but no edge stood clear of the noise: nothing to judge
        out.append("no detail to judge focus on (a plain sky, fog, a flat wall)")
    faces = _present(values, "faces")
    if faces is not None:
        n = round(faces)
        if n == 0:
            out.append("no face")
        else:
            line = f"{n} face{'s' if n != 1 else ''}"
            closed = _present(values, "eyes_closed")
            if closed is not None and closed >= 1:
                c = round(closed)
                line += f", {c} with eyes closed" if n > 1 else ", eyes closed"
            face_focus = _present(values, "face_focus")
            if closed is not None and closed < 1:
                # eyes_closed never counts a face out of focus: its eyelids cannot be read
                unreadable = face_focus is None or face_focus <= FOCUS_OUT
                line += ", eyes not readable" if unreadable else ", eyes open"
            if face_focus is not None:
                verdict = _verdict(face_focus)
                if verdict != "sharp" and noisy:
                    verdict = "detail lost in noise"
                line += f"; sharpest face {face_focus:.2f}: {verdict}"
            out.append(line)
    high = _present(values, "highlights_clipped")
    if high is not None and high > 0:
        out.append(f"{high * 100:.1f} % of pixels clipped white")
    low = _present(values, "shadows_clipped")
    if low is not None and low > 0:
        out.append(f"{low * 100:.1f} % of pixels crushed black")
    if noise is not None and noisy:
        out.append(noise_reason(noise))
    return out
