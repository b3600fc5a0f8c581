"""How a culling action changes a decision, shared by the CLI (`rate`) and the window's keys.

Like Lightroom, pick and reject exclude each other (setting one clears the other). Unlike Lightroom,
which keeps a rejected photo's stars in its private catalog, a reject here IS rating -1, as XMP and
darktable express it: rejecting replaces the stars, giving stars clears the reject, and unflagging a
reject leaves the photo unrated. Ctrl+Z brings back what a reject replaced.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..catalog.records import RATING_REJECTED, Decision


@dataclass(frozen=True)
class DecisionChange:
    reject: bool = False
    pick: bool = False
    unflag: bool = False
    stars: int | None = None
    label: str | None = None  # "" clears the label

    def describe(self) -> str:
        if self.reject:
            return "rejected"
        if self.pick:
            return "picked"
        if self.unflag:
            return "unflagged"
        if self.stars is not None:
            return f"rated {self.stars} star(s):"
        return f"labelled {self.label or 'none'}:"


def apply_change(current: Decision, change: DecisionChange) -> Decision:
    """The decision after `change`; fields the change does not concern are kept."""
    rating, picked, label = current.rating, current.picked, current.label
    if change.reject:
        rating, picked = RATING_REJECTED, False
    elif change.pick:
        picked = True
        rating = 0 if rating == RATING_REJECTED else rating
    elif change.unflag:
        picked = False
        rating = 0 if rating == RATING_REJECTED else rating
    elif change.stars is not None:
        rating = change.stars
    elif change.label is not None:
        label = change.label or None
    return Decision(rating=rating, picked=picked, label=label)
