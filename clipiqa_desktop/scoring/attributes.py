"""The CLIP-IQA attribute registry: antonym prompt pairs with stable keys.

Each attribute is scored on its own as the softmax probability of its *first* prompt against its
second (see docs/clipiqa-method in the shared docs). Keys are stable: they name database columns,
CLI options and GUI filters, so never rename one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Group = Literal["look", "feel", "custom"]


@dataclass(frozen=True)
class AttributePair:
    """One antonym pair. The score measures how much more the image matches `positive`."""

    key: str
    positive: str
    negative: str
    group: Group = "custom"

    @property
    def label(self) -> str:
        """Short human-readable name, e.g. 'Sharp ↔ Blurry'."""
        return f"{_strip_photo(self.positive)} ↔ {_strip_photo(self.negative)}"

    @property
    def scale(self) -> str:
        """The score's direction from 0 to 1, e.g. 'Blurry → Sharp' (how a range slider reads)."""
        return f"{_strip_photo(self.negative)} → {_strip_photo(self.positive)}"


def _strip_photo(prompt: str) -> str:
    return re.sub(r"\s*photo\.?$", "", prompt, flags=re.IGNORECASE).strip() or prompt


# The twelve pairs of the paper, in the order of the method doc. Note that `noisiness` is
# "Noisy photo." first: higher = noisier (torchmetrics reverses this pair; we follow the paper).
BUILTIN_ATTRIBUTES: tuple[AttributePair, ...] = (
    AttributePair("quality", "Good photo.", "Bad photo.", "look"),
    AttributePair("brightness", "Bright photo.", "Dark photo.", "look"),
    AttributePair("sharpness", "Sharp photo.", "Blurry photo.", "look"),
    AttributePair("noisiness", "Noisy photo.", "Clean photo.", "look"),
    AttributePair("colorfulness", "Colorful photo.", "Dull photo.", "look"),
    AttributePair("contrast", "High contrast photo.", "Low contrast photo.", "look"),
    AttributePair("aesthetic", "Aesthetic photo.", "Not aesthetic photo.", "feel"),
    AttributePair("happy", "Happy photo.", "Sad photo.", "feel"),
    AttributePair("natural", "Natural photo.", "Synthetic photo.", "feel"),
    AttributePair("new", "New photo.", "Old photo.", "feel"),
    AttributePair("scary", "Scary photo.", "Peaceful photo.", "feel"),
    AttributePair("complex", "Complex photo.", "Simple photo.", "feel"),
)

_BY_KEY = {a.key: a for a in BUILTIN_ATTRIBUTES}
LOOK_ATTRIBUTES: tuple[str, ...] = tuple(a.key for a in BUILTIN_ATTRIBUTES if a.group == "look")
DEFAULT_ATTRIBUTES: tuple[str, ...] = tuple(a.key for a in BUILTIN_ATTRIBUTES)


class PromptError(ValueError):
    """An attribute name or prompt pair the user gave cannot be used."""


def get_attribute(key: str) -> AttributePair:
    """Return the built-in pair for `key`, or raise with the list of valid keys."""
    try:
        return _BY_KEY[key]
    except KeyError:
        valid = ", ".join(_BY_KEY)
        raise PromptError(f"unknown attribute {key!r}; choose from: {valid}") from None


def parse_attribute_list(text: str) -> list[AttributePair]:
    """Parse 'quality,sharpness' (or 'all') into pairs, keeping order and dropping repeats."""
    if text.strip().lower() == "all":
        return list(BUILTIN_ATTRIBUTES)
    keys = [k.strip() for k in text.split(",") if k.strip()]
    if not keys:
        raise PromptError("no attribute given")
    return [get_attribute(k) for k in dict.fromkeys(keys)]


def slugify(text: str) -> str:
    """Turn a prompt into a stable key fragment: 'Eyes closed.' -> 'eyes_closed'."""
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return slug or "prompt"


# Keys a prompt pair may not be named: the built-in attributes, and the fields `list --where` and
# `--sort` already use (a pair called "rating" could never be filtered on).
# The pixel measures' keys (measures/registry.PIXEL_KEYS, checked equal by the tests): a prompt
# pair "Eyes closed.:Eyes open." must not take the column of the measured eyes_closed.
PIXEL_MEASURE_KEYS: tuple[str, ...] = (
    "focus",
    "motion_blur",
    "highlights_clipped",
    "shadows_clipped",
    "noise",
    "faces",
    "face_focus",
    "eyes_closed",
)
RESERVED_KEYS: frozenset[str] = (
    frozenset(_BY_KEY)
    | set(PIXEL_MEASURE_KEYS)
    | {
        "quality_plus",  # CLIP-IQA+ with learned prompts (scoring/learned.py)
        "rating",
        "picked",
        "label",
        "status",
        "name",
        "path",
        "captured",
    }
)
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PROMPT_FORM = "'Eyes closed.:Eyes open.' (positive:negative) or 'eyes=Eyes closed.:Eyes open.'"


def custom_pair(positive: str, negative: str, key: str | None = None) -> AttributePair:
    """A user-defined pair. Its default key is derived from the positive prompt (and prefixed with
    `custom_` when that would clash with a built-in attribute or a --where field)."""
    positive, negative = positive.strip(), negative.strip()
    if not positive or not negative:
        raise PromptError("a prompt pair needs both a positive and a negative text")
    if positive == negative:
        raise PromptError("the two prompts of a pair must differ")
    if key is None:
        key = slugify(positive)
        if key in RESERVED_KEYS or not _KEY.fullmatch(key):
            key = f"custom_{key}"
    return AttributePair(key, positive, negative, "custom")


def check_prompt_key(key: str) -> str:
    """A key the user chose for a pair: a name `--where`/`--sort` can use, not a built-in one."""
    if not _KEY.fullmatch(key):
        raise PromptError(
            f"prompt key {key!r} must be letters, digits and _ (not starting with a digit), e.g. eyes"
        )
    if key in RESERVED_KEYS:
        what = (
            "a built-in attribute"
            if key in _BY_KEY
            else "a pixel measure"
            if key in PIXEL_MEASURE_KEYS
            else "a field of --where and --sort"
        )
        raise PromptError(f"prompt key {key!r} is already {what}; choose another name")
    return key


def parse_prompt_pair(text: str) -> AttributePair:
    """Parse the CLI form 'Eyes closed.:Eyes open.' (optionally 'key=positive:negative').

    Exactly one ':' separates the two texts, both non-empty; a key before '=' must be a usable name
    that is not a built-in attribute. Anything else is refused with the form to use."""
    key: str | None = None
    body = text
    head, sep, rest = text.partition("=")
    if sep and ":" not in head:  # 'key=…': the '=' comes before the pair's ':'
        key, body = check_prompt_key(head.strip()), rest
    count = body.count(":")
    if count != 1:
        problem = "has no ':'" if count == 0 else f"has {count} ':' but needs exactly one,"
        raise PromptError(
            f"prompt pair {text!r} {problem} between its positive and negative text; "
            f"write it like {PROMPT_FORM}"
        )
    positive, _, negative = body.partition(":")
    if not positive.strip() or not negative.strip():
        half = "positive text (before ':')" if not positive.strip() else "negative text (after ':')"
        raise PromptError(f"prompt pair {text!r} has an empty {half}; write it like {PROMPT_FORM}")
    return custom_pair(positive, negative, key)
