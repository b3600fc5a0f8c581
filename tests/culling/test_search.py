"""Natural-language search over stored embeddings: ranking, the text-feature cache, errors."""

from __future__ import annotations

import numpy as np
import pytest

from clipiqa_desktop.catalog.records import PhotoRecord
from clipiqa_desktop.culling.search import (
    SEARCH_KEY,
    SearchError,
    ShootEmbeddings,
    clean_text,
    rank,
    search,
)
from clipiqa_desktop.measures.registry import attribute_info

D = 16
MODEL_ID = "test-model/none"


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def _shoot(catalog, tmp_path, embeddings: np.ndarray, model_id: str = MODEL_ID, name: str = "shoot"):
    """A folder row whose photos have exactly these embeddings (stored as float16, as indexing does)."""
    folder = tmp_path / name
    folder.mkdir()
    folder_id = catalog.folder_id(folder)
    analysis_id = catalog.analysis_id(model_id, "128", embed_dim=D, logit_scale=100.0)
    records = [
        PhotoRecord(f"IMG_{i}.jpg", 1000 + i, 1, scores={"quality": 0.5}, embedding=e)
        for i, e in enumerate(embeddings)
    ]
    ids = catalog.write_batch(folder_id, analysis_id, records)
    return folder_id, analysis_id, [ids[r.rel_path] for r in records]


def _no_model(texts):
    raise AssertionError(f"the model must not be loaded for {texts}")


def test_the_photo_whose_embedding_is_the_text_feature_ranks_first_with_exact_cosines(catalog, tmp_path):
    rng = np.random.default_rng(1)
    emb = _unit(rng.normal(size=(6, D)))
    folder_id, analysis_id, ids = _shoot(catalog, tmp_path, emb)
    # the text's cached feature is photo 4's embedding (any norm: it is made unit)
    catalog.store_text_features(MODEL_ID, {"bride laughing": emb[4] * 3.0})
    result, kept = search(catalog, [folder_id], analysis_id, "  bride   laughing ", _no_model)
    assert result.text == "bride laughing"
    assert list(result.ids) == ids
    best = result.ranking()
    assert result.ids[best[0]] == ids[4]
    stored = _unit(emb.astype(np.float16).astype(np.float32))  # what the catalog holds
    np.testing.assert_allclose(result.similarity, stored @ _unit(emb[4]), atol=1e-6)
    assert result.similarity[best[0]] == pytest.approx(1.0, abs=1e-3)
    assert all(np.diff(result.similarity[best]) <= 0), "best match first"
    assert list(result.ranking(top=2)) == list(best[:2])
    assert result.ranks()[best[0]] == 1 and sorted(result.ranks()) == list(range(1, 7))
    assert len(kept) == 6 and kept.fits([folder_id], analysis_id)


def test_a_new_text_is_encoded_once_then_comes_from_the_cache(catalog, tmp_path, tiny_scorer):
    rng = np.random.default_rng(2)
    dim = int(tiny_scorer.text_features(["x"]).shape[-1])
    folder = tmp_path / "shoot"
    folder.mkdir()
    folder_id = catalog.folder_id(folder)
    analysis_id = catalog.analysis_id(MODEL_ID, "128", embed_dim=dim, logit_scale=100.0)
    emb = _unit(rng.normal(size=(5, dim)))
    catalog.write_batch(
        folder_id,
        analysis_id,
        [PhotoRecord(f"P{i}.jpg", 1, 1, scores={"quality": 0.5}, embedding=e) for i, e in enumerate(emb)],
    )
    calls: list[list[str]] = []

    def encode(texts):
        calls.append(texts)
        return tiny_scorer.text_features(texts).numpy()

    first, kept = search(catalog, [folder_id], analysis_id, "sunset over water", encode)
    assert calls == [["sunset over water"]]
    feature = tiny_scorer.text_features(["sunset over water"]).numpy()[0]
    expected = _unit(emb.astype(np.float16).astype(np.float32)) @ _unit(feature)
    np.testing.assert_allclose(first.similarity, expected, atol=1e-5)
    again, _ = search(catalog, [folder_id], analysis_id, "sunset over water", _no_model, kept)
    np.testing.assert_allclose(again.similarity, first.similarity, atol=1e-6)
    assert len(calls) == 1, "a text searched before is not encoded again"


def test_kept_embeddings_are_reused_only_for_the_same_photos_and_analysis(catalog, tmp_path):
    rng = np.random.default_rng(3)
    a_id, analysis_id, _ = _shoot(catalog, tmp_path, _unit(rng.normal(size=(3, D))), name="a")
    b_id, _, b_ids = _shoot(catalog, tmp_path, _unit(rng.normal(size=(2, D))), name="b")
    catalog.store_text_features(MODEL_ID, {"dog": _unit(rng.normal(size=D))})
    kept = ShootEmbeddings.load(catalog, [a_id], analysis_id)
    _, used = search(catalog, [a_id], analysis_id, "dog", _no_model, kept)
    assert used is kept
    result, used = search(catalog, [b_id], analysis_id, "dog", _no_model, kept)
    assert used is not kept and list(result.ids) == b_ids
    _, both = search(catalog, [a_id, b_id], analysis_id, "dog", _no_model, used)
    assert len(both) == 5


def test_errors_are_one_line_messages(catalog, tmp_path):
    with pytest.raises(SearchError, match="type what to look for"):
        clean_text(" \t\n")
    folder = tmp_path / "measured"
    folder.mkdir()
    folder_id = catalog.folder_id(folder)
    none_id = catalog.analysis_id("none", "512", embed_dim=0, logit_scale=100.0)
    catalog.write_batch(folder_id, none_id, [PhotoRecord("A.jpg", 1, 1, scores={"focus": 0.5})])
    with pytest.raises(SearchError, match="without a CLIP model"):
        search(catalog, [folder_id], none_id, "dog", _no_model)
    empty = tmp_path / "empty"
    empty.mkdir()
    model_analysis = catalog.analysis_id(MODEL_ID, "128", embed_dim=D, logit_scale=100.0)
    with pytest.raises(SearchError, match="no photo here has a CLIP embedding"):
        search(catalog, [catalog.folder_id(empty)], model_analysis, "dog", _no_model)
    rng = np.random.default_rng(4)
    folder_id, analysis_id, _ = _shoot(catalog, tmp_path, _unit(rng.normal(size=(2, D))))
    kept = ShootEmbeddings.load(catalog, [folder_id], analysis_id)
    with pytest.raises(SearchError, match="another model"):
        rank(kept, np.ones(D + 1, np.float32), "dog")


def test_the_search_column_is_described_for_the_window():
    info = attribute_info(SEARCH_KEY)
    assert (info.label, info.group, info.kind) == ("Search match", "custom", "score")
    assert "cosine similarity" in info.help
