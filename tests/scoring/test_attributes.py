import re

import pytest

from clipiqa_desktop.scoring import (
    BUILTIN_ATTRIBUTES,
    LOOK_ATTRIBUTES,
    PromptError,
    get_attribute,
    parse_attribute_list,
    parse_prompt_pair,
)


def test_the_twelve_pairs_of_the_method_with_stable_keys():
    keys = [a.key for a in BUILTIN_ATTRIBUTES]
    assert keys == [
        "quality",
        "brightness",
        "sharpness",
        "noisiness",
        "colorfulness",
        "contrast",
        "aesthetic",
        "happy",
        "natural",
        "new",
        "scary",
        "complex",
    ]
    assert LOOK_ATTRIBUTES == ("quality", "brightness", "sharpness", "noisiness", "colorfulness", "contrast")


def test_prompts_follow_the_paper_template_and_order():
    assert (get_attribute("quality").positive, get_attribute("quality").negative) == (
        "Good photo.",
        "Bad photo.",
    )
    # higher noisiness = noisier: the paper's order, not torchmetrics' reversed one
    assert get_attribute("noisiness").positive == "Noisy photo."
    assert get_attribute("contrast").negative == "Low contrast photo."
    assert all(a.positive.endswith("photo.") and a.negative.endswith("photo.") for a in BUILTIN_ATTRIBUTES)


def test_attribute_list_parsing_keeps_order_and_rejects_unknown():
    assert [a.key for a in parse_attribute_list("sharpness, quality,sharpness")] == ["sharpness", "quality"]
    assert len(parse_attribute_list("all")) == 12
    with pytest.raises(PromptError, match=r"unknown attribute 'blur'.*sharpness"):
        parse_attribute_list("blur")


def test_custom_prompt_pair():
    pair = parse_prompt_pair("Eyes closed.:Eyes open.")
    assert (pair.key, pair.positive, pair.negative, pair.group) == (
        "custom_eyes_closed",  # eyes_closed is the measured attribute (measures/registry.py)
        "Eyes closed.",
        "Eyes open.",
        "custom",
    )
    named = parse_prompt_pair("blink=Eyes closed.:Eyes open.")
    assert named.key == "blink"
    assert parse_prompt_pair("Good photo.:Awful photo.").key == "good_photo"
    for bad in ("no separator", ":only negative", "same:same"):
        with pytest.raises(PromptError):
            parse_prompt_pair(bad)


def test_custom_key_never_shadows_a_builtin():
    # a key the user chose is refused (naming it silently otherwise would surprise); a key derived
    # from the prompt text is prefixed instead, since the user did not choose it
    for key in ("quality", "rating", "status"):
        with pytest.raises(PromptError, match=f"prompt key '{key}' is already"):
            parse_prompt_pair(f"{key}=Crisp photo.:Soft photo.")
    assert parse_prompt_pair("Quality.:Soft photo.").key == "custom_quality"
    assert parse_prompt_pair("Status:Other").key == "custom_status"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a:b:c", "has 2 ':' but needs exactly one"),
        ("eyes=Eyes: closed.:Eyes open.", "has 2 ':'"),
        ("no separator", "has no ':'"),
        (":Eyes open.", "empty positive text"),
        ("Eyes closed.:  ", "empty negative text"),
        ("eyes=:Eyes open.", "empty positive text"),
        ("my key=Eyes closed.:Eyes open.", "prompt key 'my key' must be letters"),
        ("1st=Eyes closed.:Eyes open.", "prompt key '1st' must be letters"),
        ("=Eyes closed.:Eyes open.", "prompt key '' must be letters"),
    ],
)
def test_malformed_prompt_pairs_are_refused_with_the_form_to_use(text, message):
    with pytest.raises(PromptError, match=re.escape(message)):
        parse_prompt_pair(text)


def test_label_is_readable():
    assert get_attribute("sharpness").label == "Sharp ↔ Blurry"
