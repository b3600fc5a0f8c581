"""The attribute registry: names, units and the readable reasons every surface shows."""

from __future__ import annotations

import math

import pytest

from clipiqa_desktop.measures.registry import PIXEL_KEYS, attribute_info, reasons
from clipiqa_desktop.scoring.attributes import (
    BUILTIN_ATTRIBUTES,
    PIXEL_MEASURE_KEYS,
    PromptError,
    check_prompt_key,
    custom_pair,
)


def test_prompt_pairs_never_take_a_pixel_measures_column():
    assert PIXEL_MEASURE_KEYS == PIXEL_KEYS
    assert custom_pair("Eyes closed.", "Eyes open.").key == "custom_eyes_closed"
    with pytest.raises(PromptError, match="a pixel measure"):
        check_prompt_key("focus")


def test_every_attribute_has_a_readable_name_group_and_unit():
    for key in [*PIXEL_KEYS, *(p.key for p in BUILTIN_ATTRIBUTES), "quality_plus"]:
        info = attribute_info(key)
        assert info.label and info.label != key and info.help, key
        assert info.group in ("technical", "people", "look", "feel"), key
    assert attribute_info("highlights_clipped").format(0.048) == "4.8 %"
    assert attribute_info("faces").format(2.0) == "2"
    assert attribute_info("focus").format(math.nan) == "–"
    assert attribute_info("my_pair").group == "custom"


def test_reasons_read_like_a_photographer_would_say_them():
    assert reasons(
        {"focus": 0.21, "motion_blur": 0.8, "faces": 2, "eyes_closed": 1, "highlights_clipped": 0.048}
    ) == [
        "sharpest region 0.21: out of focus (motion blur)",
        "2 faces, 1 with eyes closed",
        "4.8 % of pixels clipped white",
    ]
    assert reasons({"focus": 0.4, "motion_blur": 0.1})[0] == "sharpest region 0.40: soft (defocus)"
    assert reasons({"focus": 0.9, "faces": 0.0, "shadows_clipped": 0.0}) == [
        "sharpest region 0.90: sharp",
        "no face",
    ]
    assert reasons({"faces": 1, "eyes_closed": 0, "face_focus": 0.2}) == [
        "1 face, eyes open; sharpest face 0.20: out of focus"
    ]
    assert reasons({"focus": math.nan}) == []
