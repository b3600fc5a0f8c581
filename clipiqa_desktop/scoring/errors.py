"""Errors of the scoring layer that the user can act on (shown as a message, never a traceback)."""

from __future__ import annotations


class ScoringError(RuntimeError):
    """Base class: a problem with the model, its weights or the device, explained for a user."""


class WeightsUnavailable(ScoringError):
    """The CLIP weights could not be obtained (offline, no cached copy, no --weights file)."""


class WeightsMismatch(ScoringError):
    """A weights file was read but does not fit the chosen architecture, or is not a CLIP checkpoint."""


class DeviceUnavailable(ScoringError):
    """The requested device (cuda, mps) is not present on this machine."""


class UnknownModel(ScoringError):
    """The architecture name is not an open_clip model config."""
