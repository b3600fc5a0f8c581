"""How well the flags match a shoot the photographer has already culled (`evaluate`, and the
window's View ▸ How well do the flags match my culling…).

The photographer's own decisions are the labels:
- a **reject** is a photo rated −1 (X in the window, `rate --reject`, or xmp:Rating −1 imported
  from a sidecar);
- a **keeper** is a photo picked or given at least one star;
- a photo with neither (unrated, unflagged) is **undecided** and left out: on a half-culled shoot
  it may simply not have been looked at yet, and counting it as a keeper would charge the flags
  with false alarms on photos the photographer never judged. A photographer who marks only the
  rejects asks for the rest to count as keepers (`unrated_keepers=True`, `--unrated-keepers`).
  Colour labels decide nothing here: they mean different things in every workflow.

For each preset (culling/presets.py): how many of the rejects it flags (recall), how many of the
keepers it flags (false alarms) and the share of its flags that are rejects (precision). For each
attribute a preset uses, and each other scored attribute: the threshold that would have matched
the rejects best, chosen by **F1** (the harmonic mean of recall and precision) rather than
Youden's J: rejects are a small part of a shoot, and J = recall − false-alarm rate barely
notices a threshold that flags a hundred keepers among two thousand, while the photographer who
reviews the flagged photos pays for every one of them; F1 counts them against the catches.

A photo without the attribute (NaN: not measured, no face, a file that failed to decode) is
"not measured" for it and left out of its counts, never counted as a miss; a preset judges a photo
when at least one of its attributes was measured. With fewer than MIN_DECISIONS rejects or
keepers the evaluation says so instead of printing meaningless rates; the same holds per row.

Qt-free and read-only: it needs only the folder's PhotoTable (the CLI loads it, the window passes
its session's), so nothing is written and nothing leaves the machine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..catalog.table import PhotoTable
from ..measures.registry import attribute_info
from .presets import PRESETS, Condition, Preset, condition_mask, condition_range

MIN_DECISIONS = 5  # fewer rejects or keepers than this: no rates, a message instead

Side = Literal["≤", "≥"]


@dataclass(frozen=True)
class CullingLabels:
    """The photographer's decisions, one flag per row of the table."""

    reject: np.ndarray  # bool
    keeper: np.ndarray  # bool
    undecided: int  # neither (left out)
    unrated_keepers: bool  # undecided photos were counted as keepers

    @property
    def rejects(self) -> int:
        return int(self.reject.sum())

    @property
    def keepers(self) -> int:
        return int(self.keeper.sum())


def culling_labels(table: PhotoTable, unrated_keepers: bool = False) -> CullingLabels:
    """Rejects (rating −1), keepers (picked or ≥ 1 star; with `unrated_keepers` every photo that is
    not a reject) and how many photos are left out as undecided."""
    reject = np.asarray(table.rating == -1, dtype=bool)
    chosen = np.asarray(table.picked, dtype=bool) | (table.rating >= 1)
    keeper = ~reject if unrated_keepers else chosen & ~reject
    undecided = int((~reject & ~keeper).sum())
    return CullingLabels(reject, keeper, undecided, unrated_keepers)


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


@dataclass(frozen=True)
class Match:
    """How one flag (a preset, or an attribute at a threshold) meets the photographer's culling."""

    caught: int  # rejects it flags
    rejects: int  # rejects it could judge (measured)
    false_alarms: int  # keepers it flags
    keepers: int  # keepers it could judge (measured)
    unmeasured_rejects: int
    unmeasured_keepers: int

    @property
    def enough(self) -> bool:
        """Enough measured decisions for the rates to mean something."""
        return self.rejects >= MIN_DECISIONS and self.keepers >= MIN_DECISIONS

    @property
    def recall(self) -> float | None:
        """Share of the (measured) rejects it flags."""
        return _rate(self.caught, self.rejects)

    @property
    def false_alarm_rate(self) -> float | None:
        """Share of the (measured) keepers it flags."""
        return _rate(self.false_alarms, self.keepers)

    @property
    def precision(self) -> float | None:
        """Share of its flags (among decided photos) that are rejects; None when it flags none."""
        return _rate(self.caught, self.caught + self.false_alarms)

    @property
    def f1(self) -> float | None:
        return _rate(2 * self.caught, 2 * self.caught + self.false_alarms + (self.rejects - self.caught))

    @property
    def unmeasured(self) -> int:
        return self.unmeasured_rejects + self.unmeasured_keepers

    def as_dict(self) -> dict[str, Any]:
        return {
            "caught": self.caught,
            "rejects": self.rejects,
            "false_alarms": self.false_alarms,
            "keepers": self.keepers,
            "not_measured_rejects": self.unmeasured_rejects,
            "not_measured_keepers": self.unmeasured_keepers,
            "recall": _round(self.recall),
            "false_alarm_rate": _round(self.false_alarm_rate),
            "precision": _round(self.precision),
            "f1": _round(self.f1),
            "enough": self.enough,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def match(flagged: np.ndarray, measured: np.ndarray, labels: CullingLabels) -> Match:
    """Count a flag mask against the labels; photos not `measured` are left out."""
    r, k = labels.reject, labels.keeper
    return Match(
        caught=int((flagged & measured & r).sum()),
        rejects=int((measured & r).sum()),
        false_alarms=int((flagged & measured & k).sum()),
        keepers=int((measured & k).sum()),
        unmeasured_rejects=int((~measured & r).sum()),
        unmeasured_keepers=int((~measured & k).sum()),
    )


@dataclass(frozen=True)
class PresetResult:
    preset: Preset
    match: Match
    missing: tuple[str, ...]  # attributes of the preset this table has no column for

    @property
    def name(self) -> str:
        return self.preset.name

    @property
    def rule(self) -> str:
        return " OR ".join(c.describe() for c in self.preset.conditions)

    def as_dict(self) -> dict[str, Any]:
        return {
            "preset": self.name,
            "rule": self.rule,
            "missing_attributes": list(self.missing),
            **self.match.as_dict(),
        }


def evaluate_preset(
    preset: Preset, table: PhotoTable, labels: CullingLabels, relative: bool = False
) -> PresetResult:
    """A photo is judged when at least one of the preset's attributes was measured for it."""
    n = len(table)
    flagged = np.zeros(n, dtype=bool)
    measured = np.zeros(n, dtype=bool)
    missing = []
    for attribute in preset.attributes:
        if attribute not in table.attributes:
            missing.append(attribute)
            continue
        measured |= ~np.isnan(table.score_column(attribute))
    for condition in preset.conditions:
        if condition.attribute in table.attributes:
            flagged |= condition_mask(condition, table.score_column(condition.attribute), relative)
    return PresetResult(preset, match(flagged, measured, labels), tuple(missing))


def _flags(column: np.ndarray, side: Side, threshold: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (column <= threshold) if side == "≤" else (column >= threshold)


@dataclass(frozen=True)
class ThresholdResult:
    """The threshold of one attribute (flag the photos on `side` of it) that matched the rejects
    best, beside the threshold the presets use now (if a preset uses this attribute and side)."""

    attribute: str
    side: Side
    best: float | None  # None: too few measured decisions, or no reject measured
    best_match: Match | None
    current: float | None  # the presets' threshold on this side (relative ones converted)
    current_match: Match | None
    measured_rejects: int
    measured_keepers: int
    unmeasured: int  # decided photos without a value (left out)

    @property
    def label(self) -> str:
        return attribute_info(self.attribute).label

    @property
    def flags_all(self) -> bool:
        """The best it can do is flag every measured photo: the attribute does not tell their
        rejects from their keepers."""
        m = self.best_match
        return m is not None and m.caught == m.rejects and m.false_alarms == m.keepers

    def rule(self, threshold: float | None) -> str:
        """'≤ 0.27', '≥ 2.0 %', '≥ 1' (the value as the attribute is read)."""
        if threshold is None:
            return "–"
        return f"{self.side} {attribute_info(self.attribute).format(threshold)}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "attribute": self.attribute,
            "label": self.label,
            "side": "<=" if self.side == "≤" else ">=",
            "current_threshold": self.current,
            "current": self.current_match.as_dict() if self.current_match else None,
            "best_threshold": None if self.best is None else float(self.best),
            "best": self.best_match.as_dict() if self.best_match else None,
            "measured_rejects": self.measured_rejects,
            "measured_keepers": self.measured_keepers,
            "not_measured": self.unmeasured,
            "best_flags_every_photo": self.flags_all,
        }


def best_threshold(
    column: np.ndarray, side: Side, labels: CullingLabels
) -> tuple[float | None, Match | None, float]:
    """(threshold, its Match, its F1) maximising F1 of `column side threshold` against the rejects.
    Candidates are the rejects' own values (a threshold between two values flags no more rejects
    than the value before it, only more keepers). Ties go to the threshold that flags fewer photos."""
    measured = ~np.isnan(column)
    rej = np.sort(column[measured & labels.reject])
    keep = np.sort(column[measured & labels.keeper])
    if rej.size == 0:
        return None, None, -1.0
    candidates = np.unique(rej)
    if side == "≤":
        tp = np.searchsorted(rej, candidates, side="right")
        fp = np.searchsorted(keep, candidates, side="right")
    else:
        tp = rej.size - np.searchsorted(rej, candidates, side="left")
        fp = keep.size - np.searchsorted(keep, candidates, side="left")
    f1 = 2 * tp / (tp + fp + rej.size)
    best = float(f1.max())
    winners = np.flatnonzero(f1 == best)
    i = int(winners[0] if side == "≤" else winners[-1])
    threshold = float(candidates[i])
    return threshold, match(_flags(column, side, threshold), measured, labels), best


def _preset_sides(presets: Sequence[Preset]) -> list[tuple[str, Side, Condition]]:
    """(attribute, side, condition) of every preset condition, once each."""
    out: dict[tuple[str, Side], Condition] = {}
    for preset in presets:
        for c in preset.conditions:
            lo, hi = c.absolute
            top = attribute_info(c.attribute).maximum
            side: Side = "≤" if lo <= 0 and (top is None or hi < top) and hi < math.inf else "≥"
            out.setdefault((c.attribute, side), c)
    return [(a, s, c) for (a, s), c in out.items()]


def evaluate_threshold(
    attribute: str,
    side: Side | None,
    table: PhotoTable,
    labels: CullingLabels,
    condition: Condition | None = None,
    relative: bool = False,
) -> ThresholdResult:
    """The best threshold of `attribute` on `side` (None: the side that matches better)."""
    column = table.score_column(attribute)
    measured = ~np.isnan(column)
    m_rej, m_keep = int((measured & labels.reject).sum()), int((measured & labels.keeper).sum())
    unmeasured = labels.rejects + labels.keepers - m_rej - m_keep
    current = current_match = None
    if condition is not None and side is not None:
        lo, hi = condition_range(condition, column, relative)
        current = hi if side == "≤" else lo
        current_match = match(condition_mask(condition, column, relative), measured, labels)
    best = best_match = None
    chosen: Side = side or "≤"
    if m_rej >= MIN_DECISIONS and m_keep >= MIN_DECISIONS:
        tried: list[Side] = [side] if side is not None else ["≤", "≥"]
        scored = [(s, *best_threshold(column, s, labels)) for s in tried]
        chosen, best, best_match, _ = max(scored, key=lambda t: t[3])  # first of equals: "≤"
    return ThresholdResult(
        attribute, chosen, best, best_match, current, current_match, m_rej, m_keep, unmeasured
    )


@dataclass(frozen=True)
class Evaluation:
    photos: int
    rejects: int
    keepers: int
    undecided: int
    unrated_keepers: bool
    relative: bool
    presets: tuple[PresetResult, ...]
    thresholds: tuple[ThresholdResult, ...]
    missing: tuple[str, ...]  # attributes the presets use that the table has no column for

    @property
    def enough(self) -> bool:
        return self.rejects >= MIN_DECISIONS and self.keepers >= MIN_DECISIONS

    @property
    def problem(self) -> str | None:
        """Why there are no numbers (too few decisions), or None."""
        if self.enough:
            return None
        return (
            f"too few decisions to measure anything: {self.rejects} rejected and {self.keepers} kept "
            f"({self.keepers_rule}); at least {MIN_DECISIONS} of each are needed"
        )

    @property
    def unrated_would_help(self) -> bool:
        """Counting the undecided photos as keepers would make enough keepers (say how)."""
        return (
            not self.unrated_keepers
            and self.keepers < MIN_DECISIONS
            and self.keepers + self.undecided >= MIN_DECISIONS
        )

    @property
    def keepers_rule(self) -> str:
        return "every photo not rejected" if self.unrated_keepers else "picked or at least 1 star"

    def summary(self) -> str:
        """'12 rejected, 30 kept (picked or at least 1 star); 8 unrated photos left out'."""
        text = f"{self.rejects:,} rejected, {self.keepers:,} kept ({self.keepers_rule})"
        if self.undecided:
            s = "" if self.undecided == 1 else "s"
            text += f"; {self.undecided:,} unrated photo{s} left out"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "photos": self.photos,
            "rejects": self.rejects,
            "keepers": self.keepers,
            "undecided": self.undecided,
            "keepers_are": self.keepers_rule,
            "relative": self.relative,
            "problem": self.problem,
            "threshold_criterion": "F1",
            "min_decisions": MIN_DECISIONS,
            "missing_attributes": list(self.missing),
            "presets": [p.as_dict() for p in self.presets],
            "thresholds": [t.as_dict() for t in self.thresholds],
        }


def evaluate(
    table: PhotoTable,
    unrated_keepers: bool = False,
    relative: bool = False,
    presets: Sequence[Preset] = PRESETS,
) -> Evaluation:
    """Every preset and attribute against the photographer's decisions in `table` (read only).
    With too few decisions the result has counts and a `problem`, and no rows."""
    labels = culling_labels(table, unrated_keepers)
    missing = tuple(dict.fromkeys(a for p in presets for a in p.attributes if a not in table.attributes))

    def result(
        rows: tuple[PresetResult, ...] = (), thresholds: tuple[ThresholdResult, ...] = ()
    ) -> Evaluation:
        return Evaluation(
            len(table),
            labels.rejects,
            labels.keepers,
            labels.undecided,
            unrated_keepers,
            relative,
            rows,
            thresholds,
            missing,
        )

    if labels.rejects < MIN_DECISIONS or labels.keepers < MIN_DECISIONS:
        return result()
    rows = tuple(evaluate_preset(p, table, labels, relative) for p in presets)
    thresholds: list[ThresholdResult] = []
    covered = set()
    for attribute, side, condition in _preset_sides(presets):
        if attribute in table.attributes:
            thresholds.append(evaluate_threshold(attribute, side, table, labels, condition, relative))
            covered.add(attribute)
    for attribute in table.attributes:
        if attribute not in covered:
            thresholds.append(evaluate_threshold(attribute, None, table, labels))
    return result(rows, tuple(thresholds))


# --- the same cells for the command's table and the window's panel ---------------------------------------


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f} %"


def match_cells(m: Match) -> list[str]:
    """Caught, recall, flagged keepers, false-alarm rate, precision, not measured ('–' for a rate
    with too few decisions behind it)."""
    rates = m.enough
    return [
        f"{m.caught} of {m.rejects}",
        percent(m.recall) if rates else "–",
        f"{m.false_alarms} of {m.keepers}",
        percent(m.false_alarm_rate) if rates else "–",
        percent(m.precision) if rates else "–",
        str(m.unmeasured),
    ]


def threshold_cells(t: ThresholdResult) -> list[str]:
    """Attribute, the presets' threshold with its recall/precision, the best one with recall,
    precision and F1, not measured, and a note."""
    now = [t.rule(t.current), "", ""]
    if t.current_match is not None and t.current_match.enough:
        now[1:] = [percent(t.current_match.recall), percent(t.current_match.precision)]
    best = [t.rule(t.best), "", "", ""]
    m = t.best_match
    if m is not None:
        best[1:] = [percent(m.recall), percent(m.precision), "–" if m.f1 is None else f"{m.f1:.2f}"]
    note = ""
    if t.best is None:
        note = f"too few measured ({t.measured_rejects} rejects, {t.measured_keepers} keepers)"
    elif t.flags_all:
        note = "flags every photo: tells nothing apart"
    return [t.label, *now, *best, str(t.unmeasured), note]
