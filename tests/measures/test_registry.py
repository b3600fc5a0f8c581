"""The attribute registry: names, units and the readable reasons every surface shows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from clipiqa_desktop.measures.registry import (
    NOISY,
    PIXEL_KEYS,
    attribute_info,
    noise_levels,
    noise_score,
    reasons,
)
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
        "1 face, eyes not readable; sharpest face 0.20: out of focus"  # blurred eyelids say nothing
    ]
    assert reasons({"faces": 1, "eyes_closed": 0, "face_focus": 0.7}) == [
        "1 face, eyes open; sharpest face 0.70: sharp"
    ]
    assert reasons({"noise": 0.1, "highlights_clipped": 0.0}) == [
        "no detail to judge focus on (a plain sky, fog, a flat wall)"
    ]
    assert reasons({"focus": math.nan}) == []


def test_noise_score_reads_sigma_in_levels_of_255():
    assert noise_score(0.0) == 0.0
    assert noise_score(6 / 255) == pytest.approx(0.5) and noise_score(12 / 255) == pytest.approx(0.75)
    for levels in (0.5, 6.0, 12.0, 40.0, 80.0):
        assert noise_levels(noise_score(levels / 255)) == pytest.approx(levels, rel=1e-6)
    info = attribute_info("noise")
    assert (info.group, info.kind, info.label) == ("technical", "score", "Noise")
    assert info.format(0.5) == "0.50"


def test_a_noisy_frame_is_not_called_out_of_focus():
    loud = noise_score(40 / 255)
    assert reasons({"focus": 0.02, "motion_blur": 0.1, "noise": loud}) == [
        "sharpest region 0.02: detail lost in noise (σ 40/255)",
        "noise σ 40/255: very noisy",
    ]
    assert reasons({"focus": 0.4, "noise": noise_score(8 / 255)}) == [
        "sharpest region 0.40: detail lost in noise (σ 8/255)",
        "noise σ 8/255: noisy",
    ]
    # A sharp frame stays sharp, noisy or not; a clean frame out of focus is out of focus.
    assert reasons({"focus": 0.8, "noise": loud})[0] == "sharpest region 0.80: sharp"
    quiet = noise_score(2 / 255)
    assert quiet < NOISY
    assert reasons({"focus": 0.1, "motion_blur": 0.1, "noise": quiet}) == [
        "sharpest region 0.10: out of focus (defocus)"
    ]
    assert reasons({"focus": 0.05, "faces": 1, "eyes_closed": 0, "face_focus": 0.1, "noise": loud})[1] == (
        "1 face, eyes not readable; sharpest face 0.10: detail lost in noise"
    )


def test_the_noisy_coffee_reads_noisy_through_measure_photo():
    """The demo's case: scikit-image's coffee with noise σ 40/255, sharp underneath."""
    from PIL import Image

    from clipiqa_desktop.culling.presets import get_preset, preset_mask
    from clipiqa_desktop.measures.photo import measure_photo

    from . import scenes

    coffee = scenes._photo("coffee")
    clean = measure_photo(Image.fromarray(scenes.to_uint8(coffee)), keys=["focus", "noise"])
    noisy = measure_photo(Image.fromarray(scenes.to_uint8(scenes.add_noise(coffee, 40.0))), keys=["noise"])
    assert set(noisy) == {"noise"}  # noise alone is measured (from the focus pass) and stored alone
    noisy = measure_photo(Image.fromarray(scenes.to_uint8(scenes.add_noise(coffee, 40.0))))
    assert clean["noise"] < NOISY <= noisy["noise"]
    lines = reasons(noisy)
    assert lines[0].startswith("sharpest region") and "detail lost in noise (σ " in lines[0], lines
    assert "out of focus" not in " ".join(lines)
    assert any(line.endswith(": very noisy") for line in lines), lines
    columns = {"noise": np.array([clean["noise"], noisy["noise"], np.nan])}
    assert preset_mask(get_preset("Noisy"), columns, 3).tolist() == [False, True, False]
