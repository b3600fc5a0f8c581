"""Which sidecar belongs to which photo (culling/sidecars.py), on plain names: the two namings, the
Adobe collision of a RAW+JPEG pair, two RAWs on one stem, and files that are not photos."""

from __future__ import annotations

from pathlib import Path

import pytest

from clipiqa_desktop.culling.sidecars import sidecar_target, sidecar_to_read

FOLDER = Path("/shoot")


def _target(name: str, siblings: list[str], naming: str = "adobe") -> str | None:
    t = sidecar_target(FOLDER / name, naming, siblings)
    return None if t.path is None else t.path.name


def test_darktable_naming_gives_every_file_its_own_sidecar():
    names = ["IMG_1.CR2", "IMG_1.JPG"]
    assert [_target(n, names, "darktable") for n in names] == ["IMG_1.CR2.xmp", "IMG_1.JPG.xmp"]


def test_adobe_naming_gives_the_shared_name_to_the_raw_of_a_pair_and_says_why_not_to_the_jpeg():
    names = ["IMG_1.CR2", "IMG_1.JPG", "IMG_2.JPG"]
    assert _target("IMG_1.CR2", names) == "IMG_1.xmp"
    assert _target("IMG_2.JPG", names) == "IMG_2.xmp"
    refused = sidecar_target(FOLDER / "IMG_1.JPG", "adobe", names)
    assert refused.path is None and "IMG_1.CR2" in refused.reason


def test_two_raws_on_one_stem_leave_the_shared_name_to_nobody():
    names = ["IMG_3.CR2", "IMG_3.DNG"]
    assert _target("IMG_3.CR2", names) is None and _target("IMG_3.DNG", names) is None


@pytest.mark.parametrize("other", ["IMG_1.MOV", "IMG_1.WAV", "IMG_1.THM", "IMG_1.pp3"])
def test_a_file_that_is_not_a_photo_does_not_take_the_jpegs_sidecar(other):
    """An iPhone Live Photo's video, a voice memo, a camera thumbnail, a RawTherapee profile."""
    names = ["IMG_1.JPG", other, "IMG_1.xmp"]
    assert _target("IMG_1.JPG", names) == "IMG_1.xmp"
    assert sidecar_to_read(FOLDER / "IMG_1.JPG", names) == FOLDER / "IMG_1.xmp"


def test_reading_prefers_the_full_name_and_never_gives_the_raws_sidecar_to_the_jpeg():
    names = ["IMG_1.CR2", "IMG_1.JPG", "IMG_1.xmp", "IMG_2.JPG", "IMG_2.JPG.xmp", "IMG_2.xmp"]
    assert sidecar_to_read(FOLDER / "IMG_1.CR2", names) == FOLDER / "IMG_1.xmp"
    assert sidecar_to_read(FOLDER / "IMG_1.JPG", names) is None
    assert sidecar_to_read(FOLDER / "IMG_2.JPG", names) == FOLDER / "IMG_2.JPG.xmp"
    assert sidecar_to_read(FOLDER / "IMG_4.JPG", ["IMG_4.JPG", "IMG_4.XMP"]) == FOLDER / "IMG_4.XMP"
