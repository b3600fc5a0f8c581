"""End-to-end against the published CLIP-IQA values, with the real OpenAI RN50 weights.

Runs only where the weights are present: set CLIPIQA_WEIGHTS to OpenAI's RN50.pt, or have open_clip's
cache hold RN50/openai (one `clipiqa-desktop score` on a connected machine fills it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from clipiqa_desktop.imaging import decode_photo
from clipiqa_desktop.scoring import ClipIqaScorer, ModelSpec, get_attribute, image_to_tensor
from clipiqa_desktop.scoring.model import WEIGHTS_ENV, _weights_cached

from ..conftest import SHARED_DATA

TID = SHARED_DATA / "tid2013"


def _real_spec() -> ModelSpec | None:
    file = os.environ.get(WEIGHTS_ENV)
    if file and Path(file).is_file():
        return ModelSpec("RN50", "openai", Path(file))
    if _weights_cached("RN50", "openai"):
        return ModelSpec("RN50", "openai")
    return None


SPEC = _real_spec()
pytestmark = [
    pytest.mark.real_weights,
    pytest.mark.skipif(
        SPEC is None,
        reason=f"real OpenAI RN50 weights are absent (set {WEIGHTS_ENV}=RN50.pt or download them once)",
    ),
    pytest.mark.skipif(not TID.is_dir(), reason=f"TID2013 sample images not found at {TID}"),
]


@pytest.mark.parametrize(
    ("precision", "engine"), [("fp32", "torch"), ("auto", "torch"), ("fp32", "onnx"), ("auto", "auto")]
)
def test_tid2013_pair_matches_the_official_values(precision, engine):
    assert SPEC is not None
    # ONNX Runtime runs on the CPU only; the others run where auto puts them (a GPU when there is one).
    device = "cpu" if engine == "onnx" else "auto"
    scorer = ClipIqaScorer.load(SPEC, device=device, precision=precision, engine=engine)
    assert scorer.logit_scale == pytest.approx(100.0, rel=1e-3)
    quality = [get_attribute("quality")]
    got = {}
    for name in ("I01.BMP", "i01_01_5.bmp"):
        img = decode_photo(TID / name, None).image  # full resolution, as the official code
        got[name] = scorer.score_batch(image_to_tensor(img)[None], quality)[0].scores["quality"]
    assert got["I01.BMP"] == pytest.approx(0.8916, rel=0.01)
    assert got["i01_01_5.bmp"] == pytest.approx(0.4590, rel=0.01)
