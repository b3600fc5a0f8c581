"""The indexing pipeline on real files and a real catalog, with the tiny model."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
from PIL import Image

from clipiqa_desktop.catalog import Decision
from clipiqa_desktop.indexing.pipeline import IndexingError, IndexOptions, index_folder
from clipiqa_desktop.measures.photo import measurable_keys
from clipiqa_desktop.scoring import DEFAULT_ATTRIBUTES, LazyScorer, ModelSpec, get_attribute

from ..conftest import TINY_RN, photo
from ..culling.test_xmp import ATTR_FORM

OPTIONS = IndexOptions(long_side=128, batch_size=4, workers=2, thumb_long_side=64)


@pytest.fixture
def shoot(tmp_path):
    folder = tmp_path / "shoot"
    folder.mkdir()
    for i in range(6):
        exif = Image.Exif()
        exif[0x0110] = "TestCam"
        exif[0x8769] = {0x9003: f"2024:06:01 14:00:{i:02d}", 0x8827: 400}
        photo(240, 160, seed=i).save(folder / f"IMG_{i:04d}.jpg", quality=90, exif=exif)
    return folder


def _states(catalog, folder):
    """What the catalog knows of every photo under `folder`, keyed by path inside it."""
    tree = catalog.folder_ids(folder, recursive=True)
    return catalog.photo_states(tree, catalog.last_analysis(tree), root=folder)


def test_first_index_stores_everything_from_one_decode(catalog, tiny_scorer, shoot):
    summary = index_folder(catalog, tiny_scorer, shoot, OPTIONS)
    assert (summary.indexed, summary.unchanged, summary.failed) == (6, 0, [])
    fid = catalog.folder_id(shoot)
    rows, scores = catalog.rows([fid], summary.analysis_id)
    # the twelve CLIP-IQA scores and the pixel measures that apply (no face in these photos)
    measured = [k for k in measurable_keys() if k not in ("face_focus", "eyes_closed")]
    assert sorted(scores.attributes) == sorted([*DEFAULT_ATTRIBUTES, *measured])
    assert len(rows) == 6 and not np.isnan(scores.values).any()
    assert rows[0][5] == "2024-06-01T14:00:00"  # capture time from EXIF
    assert (rows[0][6], rows[0][7]) == (240, 160)
    thumb = catalog.thumbnail(rows[0][0])
    assert thumb is not None and thumb[:2] == b"\xff\xd8"
    ids, emb = catalog.embeddings([fid], summary.analysis_id)
    assert emb.shape == (6, tiny_scorer.embed_dim)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=2e-3)
    # the stored scores are the scores of the analysis image
    again = tiny_scorer.score_embeddings(emb, [get_attribute("quality")])
    stored = [scores.of(int(i))["quality"] for i in ids]
    np.testing.assert_allclose(again[:, 0], stored, atol=1e-3)


def test_reindex_is_incremental(catalog, tiny_scorer, shoot):
    index_folder(catalog, tiny_scorer, shoot, OPTIONS)
    second = index_folder(catalog, tiny_scorer, shoot, OPTIONS)
    assert (second.indexed, second.unchanged) == (0, 6)
    time.sleep(0.01)
    photo(240, 160, seed=99).save(shoot / "IMG_0002.jpg", quality=80)  # edited
    photo(240, 160, seed=50).save(shoot / "IMG_0100.jpg")  # new
    third = index_folder(catalog, tiny_scorer, shoot, OPTIONS)
    assert (third.indexed, third.unchanged) == (2, 5)


def test_unchanged_folder_does_not_load_the_model(catalog, tiny_scorer, shoot, monkeypatch):
    index_folder(catalog, tiny_scorer, shoot, OPTIONS)
    lazy = LazyScorer(ModelSpec(str(TINY_RN), "none"), "cpu", "fp32", "torch")
    summary = index_folder(catalog, lazy, shoot, OPTIONS)
    assert summary.unchanged == 6 and not lazy.loaded


def test_rename_and_move_keep_decisions(catalog, tiny_scorer, shoot):
    first = index_folder(catalog, tiny_scorer, shoot, OPTIONS)
    fid = catalog.folder_id(shoot)
    pid = _states(catalog, shoot)["IMG_0001.jpg"].id
    catalog.set_decisions({pid: Decision(rating=-1, label="Red")})
    (shoot / "keepers").mkdir()
    os.rename(shoot / "IMG_0001.jpg", shoot / "renamed.jpg")
    second = index_folder(catalog, tiny_scorer, shoot, OPTIONS)
    assert (second.missing, second.renamed, second.indexed) == (0, 1, 1)
    assert _states(catalog, shoot)["renamed.jpg"].id == pid
    assert catalog.decisions([pid])[pid] == Decision(rating=-1, label="Red")
    os.rename(shoot / "renamed.jpg", shoot / "keepers" / "moved.jpg")
    index_folder(catalog, tiny_scorer, shoot, OPTIONS)  # marks it missing
    third = index_folder(catalog, tiny_scorer, shoot, IndexOptions(**{**OPTIONS.__dict__, "recursive": True}))
    assert _states(catalog, shoot)["keepers/moved.jpg"].id == pid
    assert catalog.decisions([pid])[pid].rating == -1
    assert first.analysis_id == third.analysis_id and fid == catalog.folder_id(shoot)


def test_missing_files_are_marked_and_return_intact(catalog, tiny_scorer, shoot, tmp_path):
    index_folder(catalog, tiny_scorer, shoot, OPTIONS)
    pid = _states(catalog, shoot)["IMG_0003.jpg"].id
    catalog.set_decisions({pid: Decision(rating=5, picked=True)})
    os.rename(shoot / "IMG_0003.jpg", tmp_path / "away.jpg")
    summary = index_folder(catalog, tiny_scorer, shoot, OPTIONS)
    assert summary.missing == 1
    assert _states(catalog, shoot)["IMG_0003.jpg"].status == "missing"
    os.rename(tmp_path / "away.jpg", shoot / "IMG_0003.jpg")
    back = index_folder(catalog, tiny_scorer, shoot, OPTIONS)
    assert back.returned == 1 and back.indexed == 0
    state = _states(catalog, shoot)["IMG_0003.jpg"]
    assert (state.id, state.status, state.scored) == (pid, "ok", True)
    assert catalog.decisions([pid])[pid] == Decision(rating=5, picked=True)


def test_every_bad_file_kind_is_recorded_with_its_reason(catalog, tiny_scorer, shoot, monkeypatch):
    data = (shoot / "IMG_0000.jpg").read_bytes()
    (shoot / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (shoot / "empty.jpg").write_bytes(b"")
    (shoot / "text.png").write_text("not a png")
    (shoot / "broken.nef").write_bytes(b"\x00" * 2048)
    photo(400, 300).save(shoot / "huge.png")
    from clipiqa_desktop.imaging import decode as decode_mod

    monkeypatch.setattr(decode_mod, "MAX_PIXELS", 100_000)  # huge.png stands in for a decompression bomb
    summary = index_folder(catalog, tiny_scorer, shoot, OPTIONS)
    reasons = dict(summary.failed)
    assert reasons["truncated.jpg"].startswith("truncated file: the JPEG data stops part-way")
    assert reasons["empty.jpg"] == "empty file (0 bytes)"
    assert reasons["text.png"] == "not a photo: the file's contents are not an image"
    assert reasons["broken.nef"].startswith("cannot decode: unreadable or unsupported RAW")
    assert reasons["huge.png"].startswith("image too large (400 × 300 px) — refused")
    assert summary.indexed == 6
    fid = catalog.folder_id(shoot)
    rows, _ = catalog.rows([fid], summary.analysis_id)
    errors = {r[2]: r[4] for r in rows if r[3] == "error"}
    assert errors == reasons
    again = index_folder(catalog, tiny_scorer, shoot, OPTIONS)
    assert again.indexed == 0 and again.failed_before == 5, "unchanged bad files are not retried"


def test_xmp_ratings_from_other_tools_show_up(catalog, tiny_scorer, shoot):
    (shoot / "IMG_0004.xmp").write_bytes(ATTR_FORM)
    index_folder(catalog, tiny_scorer, shoot, OPTIONS)
    pid = _states(catalog, shoot)["IMG_0004.jpg"].id
    assert catalog.decisions([pid])[pid] == Decision(rating=4, label="Red")


def test_progress_batches_and_cancel(catalog, tiny_scorer, shoot):
    for i in range(6, 20):
        photo(240, 160, seed=i).save(shoot / f"IMG_{i:04d}.jpg")
    cancel = threading.Event()
    progress, batches = [], []

    def on_batch(ids):
        batches.append(ids)
        if len(batches) == 2:
            cancel.set()

    summary = index_folder(
        catalog, tiny_scorer, shoot, OPTIONS, on_progress=progress.append, on_batch=on_batch, cancel=cancel
    )
    assert summary.cancelled and len(batches) == 2 and summary.indexed == 8
    assert progress[0].done == 0 and progress[0].total == 20
    assert [p.done for p in progress[1:]] == [4, 8]
    assert progress[-1].photos_per_s > 0 and progress[-1].eta_s is not None
    resumed = index_folder(catalog, tiny_scorer, shoot, OPTIONS)
    assert (resumed.indexed, resumed.unchanged) == (12, 8)


def test_folder_errors(catalog, tiny_scorer, tmp_path):
    with pytest.raises(IndexingError, match="does not exist"):
        index_folder(catalog, tiny_scorer, tmp_path / "nope", OPTIONS)
    (tmp_path / "f.jpg").write_bytes(b"x")
    with pytest.raises(IndexingError, match="not a folder"):
        index_folder(catalog, tiny_scorer, tmp_path / "f.jpg", OPTIONS)


def test_a_non_recursive_run_leaves_sub_folder_photos_alone(catalog, tiny_scorer, shoot):
    (shoot / "day2").mkdir()
    photo(240, 160, seed=77).save(shoot / "day2" / "D2.jpg")
    index_folder(catalog, tiny_scorer, shoot, IndexOptions(**{**OPTIONS.__dict__, "recursive": True}))
    flat = index_folder(catalog, tiny_scorer, shoot, OPTIONS)
    assert flat.missing == 0
    assert _states(catalog, shoot)["day2/D2.jpg"].status == "ok"


def test_a_file_that_no_longer_decodes_keeps_no_stale_scores(catalog, tiny_scorer, shoot):
    first = index_folder(catalog, tiny_scorer, shoot, OPTIONS)
    (shoot / "IMG_0001.jpg").write_bytes(b"overwritten by a broken copy")
    index_folder(catalog, tiny_scorer, shoot, OPTIONS)
    state = _states(catalog, shoot)["IMG_0001.jpg"]
    assert state.status == "error" and not state.scored
    rows, scores = catalog.rows([catalog.folder_id(shoot)], first.analysis_id)
    assert scores.of(state.id) == {} and catalog.thumbnail(state.id) is None
    row = next(r for r in rows if r[0] == state.id)
    assert row[6] is None and row[5] is None  # size and capture time of the old content are gone


def test_an_unexpected_failure_fails_one_photo_not_the_run(catalog, tiny_scorer, shoot, monkeypatch):
    import clipiqa_desktop.indexing.pipeline as pipeline

    real = pipeline.read_photo_xmp

    def flaky(path, embedded=None, siblings=None):
        if path.name == "IMG_0002.jpg":
            raise RuntimeError("a bug in some plugin")
        return real(path, embedded, siblings)

    monkeypatch.setattr(pipeline, "read_photo_xmp", flaky)
    summary = index_folder(catalog, tiny_scorer, shoot, OPTIONS)
    assert summary.indexed == 5
    assert dict(summary.failed) == {"IMG_0002.jpg": "cannot read: RuntimeError: a bug in some plugin"}
