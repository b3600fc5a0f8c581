"""CLIP-IQA scoring: model loading, the attribute registry and the score math. No Qt."""

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
from .device import resolve_device, resolve_precision
from .engine import CLIP_MEAN, CLIP_STD, ClipIqaScorer, ImageScores, LazyScorer, image_to_tensor, pair_scores
from .errors import DeviceUnavailable, ScoringError, UnknownModel, WeightsMismatch, WeightsUnavailable
from .model import WEIGHTS_ENV, ModelSpec, load_clip

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
