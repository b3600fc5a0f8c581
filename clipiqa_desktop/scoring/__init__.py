"""CLIP-IQA scoring: model loading, the attribute registry and the score math. No Qt.

Names are imported lazily (PEP 562): `from clipiqa_desktop.scoring import DEFAULT_ATTRIBUTES` or
`ScoringError` costs nothing, and torch/open_clip (several seconds to import) are loaded only when a
name that needs them is first used. That keeps `rate`, `list` and the window's first paint fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_SOURCES = {
    "attributes": (
        "BUILTIN_ATTRIBUTES",
        "DEFAULT_ATTRIBUTES",
        "LOOK_ATTRIBUTES",
        "AttributePair",
        "PromptError",
        "custom_pair",
        "get_attribute",
        "parse_attribute_list",
        "parse_prompt_pair",
    ),
    "errors": ("DeviceUnavailable", "ScoringError", "UnknownModel", "WeightsMismatch", "WeightsUnavailable"),
    "device": ("resolve_device", "resolve_precision"),
    "engine": (
        "CLIP_MEAN",
        "CLIP_STD",
        "ClipIqaScorer",
        "ImageScores",
        "image_to_tensor",
    ),
    "scores": ("pair_scores",),
    "model": ("load_clip",),
    "spec": ("LazyScorer", "ModelSpec"),
    "constants": ("WEIGHTS_ENV",),
}
_WHERE = {name: module for module, names in _SOURCES.items() for name in names}
__all__ = [
    "BUILTIN_ATTRIBUTES",
    "CLIP_MEAN",
    "CLIP_STD",
    "DEFAULT_ATTRIBUTES",
    "LOOK_ATTRIBUTES",
    "WEIGHTS_ENV",
    "AttributePair",
    "ClipIqaScorer",
    "DeviceUnavailable",
    "ImageScores",
    "LazyScorer",
    "ModelSpec",
    "PromptError",
    "ScoringError",
    "UnknownModel",
    "WeightsMismatch",
    "WeightsUnavailable",
    "custom_pair",
    "get_attribute",
    "image_to_tensor",
    "load_clip",
    "pair_scores",
    "parse_attribute_list",
    "parse_prompt_pair",
    "resolve_device",
    "resolve_precision",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from .attributes import (
        BUILTIN_ATTRIBUTES,
        DEFAULT_ATTRIBUTES,
        LOOK_ATTRIBUTES,
        AttributePair,
        PromptError,
        custom_pair,
        get_attribute,
        parse_attribute_list,
        parse_prompt_pair,
    )
    from .constants import WEIGHTS_ENV
    from .device import resolve_device, resolve_precision
    from .engine import (
        CLIP_MEAN,
        CLIP_STD,
        ClipIqaScorer,
        ImageScores,
        image_to_tensor,
    )
    from .errors import DeviceUnavailable, ScoringError, UnknownModel, WeightsMismatch, WeightsUnavailable
    from .model import load_clip
    from .scores import pair_scores
    from .spec import LazyScorer, ModelSpec
