"""The streaming scorer: tiny images padded, a failing batch retried photo by photo, files that vanish."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clipiqa_desktop.imaging.decode import FILE_GONE
from clipiqa_desktop.indexing.scan import find_photos, root_vanished
from clipiqa_desktop.indexing.stream import score_photos
from clipiqa_desktop.scoring import BUILTIN_ATTRIBUTES, ClipIqaScorer, ModelSpec
from clipiqa_desktop.scoring.engine import PAD_RGB, image_to_tensor, pad_to_min_side
from clipiqa_desktop.scoring.pooling import min_input_side

from ..conftest import TINY_RN, TINY_VIT, photo
from ..hostile import delete_file, pull_card, replace_file

PAIRS = BUILTIN_ATTRIBUTES[:3]


def _load(config) -> ClipIqaScorer:
    torch.manual_seed(0)
    return ClipIqaScorer.load(ModelSpec(str(config), "none"), device="cpu", precision="fp32", engine="torch")


@pytest.mark.parametrize(("config", "expected"), [(TINY_RN, 31), (TINY_VIT, 16)])
def test_min_input_side_is_exactly_what_the_real_tower_takes(config, expected):
    scorer = _load(config)
    side = min_input_side(scorer._visual)
    assert side == scorer.min_side == expected
    scorer.encode_images(torch.zeros((1, 3, side, 284), dtype=torch.uint8))
    with pytest.raises(RuntimeError):  # the original bug: 'Output size is too small' (RN)
        scorer.encode_images(torch.zeros((1, 3, side - 1, 284), dtype=torch.uint8))


def test_padding_keeps_every_pixel_and_the_aspect():
    img = photo(284, 25, seed=3)
    padded = pad_to_min_side(image_to_tensor(img), 31)
    assert tuple(padded.shape) == (3, 31, 284)  # only the short side grows, nothing is resized
    assert np.array_equal(padded[:, 3:28, :].permute(1, 2, 0).numpy(), np.asarray(img))
    assert padded[:, 0, 0].tolist() == list(PAD_RGB) and padded[:, 30, 283].tolist() == list(PAD_RGB)
    big = image_to_tensor(photo(64, 48))
    assert pad_to_min_side(big, 31) is big


def _shoot(folder, sizes):
    folder.mkdir(exist_ok=True)
    paths = []
    for n, (w, h) in enumerate(sizes):
        path = folder / f"{n:02d}_{w}x{h}.png"
        photo(w, h, seed=n).save(path)
        paths.append(path)
    return paths


THIN = [(284, 25), (25, 2000), (1, 1), (16, 16)]
GOOD = [(96, 64), (64, 96), (96, 64), (96, 64)]


@pytest.mark.parametrize("config", [TINY_RN, TINY_VIT])
def test_tiny_and_thin_photos_are_scored(tmp_path, config):
    scorer = _load(config)
    paths = _shoot(tmp_path / "s", GOOD + THIN)
    results = sorted(score_photos(paths, scorer, PAIRS, 512, batch_size=3), key=lambda r: r.index)
    assert [r.error for r in results] == [None] * len(paths)
    for r in results:
        assert r.scores is not None and all(0.0 < v < 1.0 for v in r.scores.values())


def test_a_batch_the_tower_rejects_is_retried_one_by_one_and_never_stops_the_run(tmp_path, caplog):
    """The original bug, for real: without padding, the RN tower raises 'Output size is too small'."""
    scorer = _load(TINY_RN)
    scorer.min_side = 1  # as before the fix: thin images reach the tower as they are
    paths = _shoot(tmp_path / "s", [(96, 64), (284, 25), (284, 25), (64, 96), (284, 25), (96, 64)])
    with caplog.at_level("INFO", logger="clipiqa_desktop.indexing.stream"):
        results = {r.index: r for r in score_photos(paths, scorer, PAIRS, 512, batch_size=2)}
    assert sorted(results) == list(range(6))
    for i in (1, 2, 4):
        assert results[i].error == (
            "too small to score (284 × 25 px): the model cannot take an image this small"
        )
        assert results[i].scores is None and results[i].embedding is None
    reference = _load(TINY_RN)
    for i in (0, 3, 5):
        assert results[i].ok
        alone = next(score_photos([paths[i]], reference, PAIRS, 512))
        assert results[i].scores == pytest.approx(alone.scores, abs=1e-5)
    assert "scoring a batch of 2 failed (the image is too small for the model)" in caplog.text
    assert "Traceback" not in caplog.text


def test_files_deleted_or_replaced_after_the_scan(tmp_path, tiny_scorer):
    paths = _shoot(tmp_path / "s", GOOD)
    selection = find_photos([tmp_path / "s"])
    delete_file(paths[1])
    replace_file(paths[2])  # a 200 x 300 JPEG now, under the old name
    results = {r.index: r for r in score_photos(selection.paths, tiny_scorer, PAIRS, 512)}
    assert results[1].error is not None and results[1].error.startswith(FILE_GONE)
    assert results[0].ok and results[2].ok and results[3].ok
    assert results[2].prepared.source_size == (200, 300)  # decoded as it is now


def test_a_pulled_card_makes_every_remaining_photo_say_file_no_longer_exists(tmp_path, tiny_scorer):
    card = tmp_path / "card"
    _shoot(card, GOOD)
    selection = find_photos([card])
    assert not root_vanished(card)
    pull_card(card)
    assert root_vanished(card)
    results = list(score_photos(selection.paths, tiny_scorer, PAIRS, 512))
    assert len(results) == 4
    assert all(r.error is not None and r.error.startswith(FILE_GONE) for r in results)
