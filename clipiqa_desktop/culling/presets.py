"""One-click filters ("presets"): a photo matches when ANY of the preset's conditions holds.

A condition is a range of one attribute. CLIP-IQA conditions also have a range in percentiles of
the shoot, used when the filter panel is "relative"; pixel measures (focus, clipping, eyes) have
absolute meanings and always use their absolute range. A photo without the attribute (NaN: not
measured, no face) never matches that condition. Qt-free: the session, `evaluate` and
benchmarks/flag_accuracy.py use the same definitions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..measures.registry import (
    FOCUS_OUT,
    HIGHLIGHTS_BLOWN,
    NOISY,
    SHADOWS_CRUSHED,
    attribute_info,
)


@dataclass(frozen=True)
class Condition:
    attribute: str
    absolute: tuple[float, float]  # inclusive range in the attribute's units
    percentile: tuple[float, float] | None = None  # inclusive range in percentiles of the shoot

    def describe(self) -> str:
        """'Focus ≤ 0.30', 'Blown highlights ≥ 2.0 %', 'Eyes closed ≥ 1'."""
        info = attribute_info(self.attribute)
        lo, hi = self.absolute
        top = info.maximum
        if lo <= 0 and top is not None and hi < top:
            return f"{info.label} ≤ {info.format(hi)}"
        if lo <= 0 and top is None and hi < 1e9:
            return f"{info.label} ≤ {info.format(hi)}"
        if top is None or hi >= top:
            return f"{info.label} ≥ {info.format(lo)}"
        return f"{info.format(lo)} ≤ {info.label} ≤ {info.format(hi)}"


@dataclass(frozen=True)
class Preset:
    name: str
    conditions: tuple[Condition, ...]  # OR
    description: str

    @property
    def attributes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.attribute for c in self.conditions))

    def explain(self) -> str:
        """The hover text: what it is for, and its rule."""
        rule = " OR ".join(c.describe() for c in self.conditions)
        return f"{self.description}\nMatches: {rule}"


_INF = float("inf")
OUT_OF_FOCUS = Condition("focus", (0.0, FOCUS_OUT))
EYES_CLOSED = Condition("eyes_closed", (1.0, _INF))
FACE_SOFT = Condition("face_focus", (0.0, FOCUS_OUT))
BLOWN = Condition("highlights_clipped", (HIGHLIGHTS_BLOWN, 1.0))
CRUSHED = Condition("shadows_clipped", (SHADOWS_CRUSHED, 1.0))
NOISE = Condition("noise", (NOISY, 1.0))

PRESETS: tuple[Preset, ...] = (
    Preset(
        "Reject candidates",
        (OUT_OF_FOCUS, EYES_CLOSED, BLOWN),
        "What photographers reject first: out of focus, eyes closed or blown highlights.",
    ),
    Preset("Out of focus", (OUT_OF_FOCUS,), "Even the sharpest region of the frame is soft."),
    Preset("Eyes closed", (EYES_CLOSED,), "A face with closed eyes (needs the [faces] extra)."),
    Preset(
        "Face out of focus",
        (FACE_SOFT,),
        "There is a face, but the sharpest face is soft (needs the [faces] extra).",
    ),
    Preset("Blown highlights", (BLOWN,), "Part of the frame is clipped white."),
    Preset("Crushed shadows", (CRUSHED,), "Part of the frame is crushed black."),
    Preset("Noisy", (NOISE,), "Grain plain at 100 % (σ ≥ 6/255) in the flattest parts of the frame."),
    Preset(
        "Blurry (CLIP-IQA)",
        (Condition("sharpness", (0.0, 0.35), (0.0, 15.0)),),
        "CLIP-IQA finds the whole frame blurry.",
    ),
    Preset(
        "Too dark (CLIP-IQA)",
        (Condition("brightness", (0.0, 0.25), (0.0, 10.0)),),
        "CLIP-IQA finds the photo dark.",
    ),
    Preset(
        "Too bright (CLIP-IQA)",
        (Condition("brightness", (0.8, 1.0), (90.0, 100.0)),),
        "CLIP-IQA finds the photo bright.",
    ),
    Preset(
        "Noisy (CLIP-IQA)",
        (Condition("noisiness", (0.6, 1.0), (85.0, 100.0)),),
        "CLIP-IQA finds the photo noisy.",
    ),
    Preset(
        "Low quality (CLIP-IQA)",
        (Condition("quality", (0.0, 0.4), (0.0, 15.0)),),
        "CLIP-IQA's 'Good photo.' vs 'Bad photo.' leans to bad.",
    ),
)
_BY_NAME = {p.name: p for p in PRESETS}


def get_preset(name: str) -> Preset:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; choose from: {', '.join(_BY_NAME)}") from None


def condition_range(condition: Condition, column: np.ndarray, relative: bool) -> tuple[float, float]:
    """The condition's range in the attribute's units: its percentile range of `column` (the
    shoot's values) when `relative` and the condition has one, else its absolute range."""
    if not relative or condition.percentile is None:
        return condition.absolute
    values = column[~np.isnan(column)]
    if values.size == 0:
        return condition.absolute
    lo, hi = np.percentile(values, condition.percentile)
    return float(lo), float(hi)


def condition_mask(condition: Condition, column: np.ndarray, relative: bool = False) -> np.ndarray:
    lo, hi = condition_range(condition, column, relative)
    with np.errstate(invalid="ignore"):
        return (column >= lo) & (column <= hi)


def preset_mask(
    preset: Preset, columns: dict[str, np.ndarray] | None, n: int, relative: bool = False
) -> np.ndarray:
    """Which of `n` photos match `preset` (any condition); `columns` maps attribute -> values
    (NaN = none). An attribute absent from `columns` matches nothing."""
    mask = np.zeros(n, dtype=bool)
    for condition in preset.conditions:
        column = (columns or {}).get(condition.attribute)
        if column is not None:
            mask |= condition_mask(condition, column, relative)
    return mask


def matched_conditions(
    preset: Preset,
    values: dict[str, float],
    columns: dict[str, np.ndarray] | None = None,
    relative: bool = False,
) -> list[str]:
    """Why one photo matches: the conditions it meets, as 'Focus 0.21 ≤ 0.30'."""
    out = []
    for condition in preset.conditions:
        v = values.get(condition.attribute)
        if v is None or np.isnan(v):
            continue
        column = (columns or {}).get(condition.attribute, np.array([v], dtype=np.float64))
        lo, hi = condition_range(condition, column, relative)
        if lo <= v <= hi:
            info = attribute_info(condition.attribute)
            out.append(f"{info.label} {info.format(v)} ({condition.describe()})")
    return out


def missing_attributes(presets: Sequence[Preset], available: Sequence[str]) -> list[str]:
    """Attributes the presets use that the table lacks (e.g. faces without the [faces] extra)."""
    have = set(available)
    return [a for p in presets for a in p.attributes if a not in have]
