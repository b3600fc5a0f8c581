"""How a culling action changes a decision, shared by the CLI (`rate`) and the window's keys.

Like Lightroom, pick and reject exclude each other (setting one clears the other). Unlike Lightroom,
which keeps a rejected photo's stars in its private catalog, a reject here IS rating -1, as XMP and
darktable express it: rejecting replaces the stars, giving stars clears the reject, and unflagging a
reject leaves the photo unrated. Ctrl+Z brings back what a reject replaced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..catalog.records import RATING_REJECTED, Decision, DecisionDelta
from ..catalog.transaction import DecisionChangeFn


@dataclass(frozen=True)
class DecisionChange:
    reject: bool = False
    pick: bool = False
    unflag: bool = False
    stars: int | None = None
    label: str | None = None  # "" clears the label
    # only photos still undecided (no rating, pick or label) when it is written: "keep the best
    # N" must not turn a pick made elsewhere since its plan (another window, `rate`, XMP) into a reject
    only_undecided: bool = False

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
    if change.only_undecided and (rating != 0 or picked or label is not None):
        return current
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


def change_fn(change: DecisionChange) -> DecisionChangeFn:
    """The change as the catalog applies it, to each photo's decision as it is at write time."""
    return lambda _pid, current: apply_change(current, change)


def restore_fn(deltas: Sequence[DecisionDelta], to: str) -> DecisionChangeFn:
    """Undo (`to="before"`) or redo (`to="after"`) of a step: put back the value each delta's
    CHANGED fields had, and nothing else, so what another writer did to the other fields since
    (a label given in a second window, a sidecar imported) stays.

    A photo whose changed fields no longer hold what the step (or its undo) left there was decided
    again elsewhere since (stars given on another machine after this window's reject): that later
    decision stands and the photo is left as it is. Per photo, not per field: a reject's rating and
    pick go together, and half an undo would be a decision nobody made."""
    by_id = {d.photo_id: d for d in deltas}

    def restore(pid: int, current: Decision) -> Decision:
        delta = by_id.get(pid)
        if delta is None:
            return current
        source, left = (delta.before, delta.after) if to == "before" else (delta.after, delta.before)
        if any(getattr(current, f) != getattr(left, f) for f in delta.fields):
            return current
        new = replace(current, **{f: getattr(source, f) for f in delta.fields})
        if new.picked and new.rejected:  # the other writer picked what this step un-rejects, or back
            new = replace(new, picked=False) if source.rejected else replace(new, rating=0)
        return new

    return restore
