"""A smoke run of benchmarks/flag_accuracy.py: two small photos (a clean scene and the same scene
defocused σ 3) through the product's own path (JPEG on disk, decode_photo, measure_photo, the tiny
CLIP model). The full run at camera resolution is the benchmark's (README's accuracy table)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("skimage.data", reason="scikit-image (the [test] extra) gives the photographs")

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import defects
        import flag_accuracy

        yield flag_accuracy, defects
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_two_photos_print_every_attribute_and_preset(bench, tiny_scorer, tmp_path, capsys):
    flag_accuracy, _ = bench
    from clipiqa_desktop.culling.presets import PRESETS
    from clipiqa_desktop.measures.registry import PIXEL_KEYS, attribute_info
    from clipiqa_desktop.scoring import BUILTIN_ATTRIBUTES

    argv = ["--size", "600x400", "--scenes", "1", "--defects", "clean,defocus-3"]
    assert flag_accuracy.main([*argv, "--out", str(tmp_path)], scorer=tiny_scorer) == 0
    out = capsys.readouterr().out

    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene1-clean.jpg", "scene1-defocus-3.jpg"]
    assert "Set: 2 photos at 600×400 (1 labelled rejects)" in out
    assert "random weights: meaningless here" in out
    for key in (*PIXEL_KEYS, *(p.key for p in BUILTIN_ATTRIBUTES)):
        assert re.search(rf"^\| {re.escape(attribute_info(key).label)} \| \d/2 \|", out, re.M), key
    for preset in PRESETS:
        assert f"| {preset.name}" in out, preset.name
    rho = re.search(r"ρ\(−σ, focus\) over defocus σ 0…5 = ([+-]\d\.\d\d)", out)
    assert rho is not None and float(rho.group(1)) > 0
    out_of_focus = next(line for line in out.splitlines() if line.startswith("| Out of focus |"))
    # σ 3 is the one reject and the focus measure flags it (recall 1.00, its defect caught 1/1)
    assert re.match(
        r"\| Out of focus \| [12] \| \S+ \| 1\.00 \| defocus σ ≥ 2, motion ≥ 15 \| 1/1 \|", out_of_focus
    )


def test_labels_and_defects(bench):
    _, defects = bench
    names = {d.name: d.reject for d in (*defects.scene_defects(), *defects.FACE_DEFECTS)}
    rejects = {n for n, r in names.items() if r}
    assert rejects == {
        "defocus-2",
        "defocus-3",
        "defocus-5",
        *(f"motion-{n}px-{a}deg" for n in (15, 25) for a in (0, 45, 90)),
        "exposure+2EV",
        "exposure+3EV",
        "exposure-3EV",
        "face-eyes-closed",
    }
    assert not names["shallow-dof"] and not names["jpeg-10"] and not names["noise-16"]
    levels = np.arange(256, dtype=np.uint8)[None, :, None].repeat(3, axis=2)
    brighter, darker = defects.exposure(levels, 1), defects.exposure(levels, -1)
    assert (brighter >= levels).all() and (darker <= levels).all()
    # +1 EV doubles linear light: sRGB level 188 (linear 0.50) and above clip, 187 does not
    assert brighter[0, 188, 0] == 255 and brighter[0, 187, 0] < 255
    kind, block = defects.scene_block(2)
    frame = defects.render(block, defects.Defect("clean"), (600, 400))
    assert kind == "mosaic" and frame.shape == (400, 600, 3) and frame.dtype == np.uint8


def test_a_wrong_size_is_one_line(bench, capsys):
    flag_accuracy, _ = bench
    with pytest.raises(SystemExit) as exc:
        flag_accuracy.main(["--size", "big"])
    assert exc.value.code == 2
    assert "--size takes WIDTHxHEIGHT, e.g. 6000x4000, not 'big'" in capsys.readouterr().err
