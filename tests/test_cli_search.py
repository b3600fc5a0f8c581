"""`clipiqa-desktop search FOLDER TEXT` in-process, as a photographer would run it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from clipiqa_desktop.catalog import Catalog
from clipiqa_desktop.catalog.records import PhotoRecord
from clipiqa_desktop.cli import main

from .conftest import TINY_ARGS as MODEL
from .conftest import photo


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """Four photos indexed with the tiny model (once for the module: searches only read it)."""
    root = tmp_path_factory.mktemp("search")
    folder = root / "shoot"
    folder.mkdir()
    for i in range(4):
        photo(200, 150, seed=i).save(folder / f"IMG_{i}.jpg")
    cat = ["--catalog", str(root / "c.sqlite")]
    assert main(["index", str(folder), *cat, *MODEL, "--size", "128"]) == 0
    return folder, cat


def _store_photo_as_text(catalog_path: str, folder, name: str, text: str) -> list[float]:
    """Cache a feature of `text` that points at photo `name` (the tiny random model's embeddings
    are nearly parallel: its difference from their mean); the cosines, best first."""
    catalog = Catalog(catalog_path, create=False)
    try:
        folder_id = catalog.folder_id(folder, create=False)
        analysis_id = catalog.last_analysis(folder_id)
        ids, emb = catalog.embeddings([folder_id], analysis_id)
        wanted = catalog.photo_ids_for_paths([folder / name])[folder / name]
        feature = emb[list(ids).index(wanted)] - emb.mean(axis=0)
        catalog.store_text_features(catalog.analysis(analysis_id)[0], {text: feature})
    finally:
        catalog.close()
    cosines = (emb / np.linalg.norm(emb, axis=1, keepdims=True)) @ (feature / np.linalg.norm(feature))
    assert ids[np.argmax(cosines)] == wanted, "the test's feature must point at the photo"
    return sorted(cosines.tolist(), reverse=True)


def test_ranked_table_and_json(indexed, capsys, monkeypatch):
    folder, cat = indexed
    cosines = _store_photo_as_text(cat[1], folder, "IMG_2.jpg", "the red square")
    import clipiqa_desktop.scoring.engine as engine_mod

    monkeypatch.setattr(engine_mod, "load_clip", lambda spec: pytest.fail("a cached text needs no model"))
    assert main(["search", str(folder), "the red square", *cat]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["rank", "match", "path"]
    first = lines[1].split()
    assert first[0] == "1" and float(first[1]) == pytest.approx(cosines[0], abs=1e-4)
    assert [float(line.split()[1]) for line in lines[1:]] == pytest.approx(cosines, abs=1e-4)
    assert first[2] == str(folder / "IMG_2.jpg")
    assert len(lines) == 5 and "the 4 best of 4 photos for “the red square”" in err

    assert main(["search", str(folder), "the red square", *cat, "--json", "--top", "2"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["rank"] for r in rows] == [1, 2] and set(rows[0]) == {"path", "similarity", "rank"}
    assert rows[0]["path"] == str(folder / "IMG_2.jpg")
    assert rows[0]["similarity"] >= rows[1]["similarity"]


def test_a_new_text_loads_the_folders_model_once(indexed, capsys, monkeypatch):
    folder, cat = indexed
    args = ["search", str(folder), "a wet dog", *cat, *MODEL, "--top", "0", "--json"]
    assert main(args) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["rank"] for r in rows] == [1, 2, 3, 4]
    sims = [r["similarity"] for r in rows]
    assert sims == sorted(sims, reverse=True) and all(-1 <= s <= 1 for s in sims)
    import clipiqa_desktop.scoring.engine as engine_mod

    monkeypatch.setattr(engine_mod, "load_clip", lambda spec: pytest.fail("the text is cached now"))
    assert main(["search", str(folder), "a  wet dog ", *cat, "--top", "0", "--json"]) == 0
    assert [r["similarity"] for r in json.loads(capsys.readouterr().out)] == sims


def test_missing_files_are_left_out(tmp_path, capsys):
    folder = tmp_path / "shoot"
    folder.mkdir()
    catalog = Catalog(tmp_path / "c.sqlite")
    try:
        analysis_id = catalog.analysis_id("m/none", "128", embed_dim=4, logit_scale=100.0)
        records = [
            PhotoRecord(f"P{i}.jpg", 1, 1, scores={"quality": 0.5}, embedding=np.eye(4, dtype=np.float32)[i])
            for i in range(3)
        ]
        ids = catalog.write_batch(catalog.folder_id(folder), analysis_id, records)
        catalog.set_last_analysis(catalog.folder_id(folder), analysis_id)
        catalog.store_text_features("m/none", {"first": np.eye(4, dtype=np.float32)[0]})
        catalog.mark_missing([ids["P1.jpg"]])
    finally:
        catalog.close()
    assert main(["search", str(folder), "first", "--catalog", str(tmp_path / "c.sqlite"), "--json"]) == 0
    out, err = capsys.readouterr()
    assert [r["path"].rsplit("/", 1)[-1] for r in json.loads(out)] == ["P0.jpg", "P2.jpg"]
    assert "1 missing file(s) left out" in err


def test_errors_are_one_line_and_exit_2(indexed, tmp_path, capsys, monkeypatch):
    folder, cat = indexed
    assert main(["search", str(folder), "   ", *cat]) == 2
    assert capsys.readouterr().err.strip() == "clipiqa-desktop: type what to look for, e.g. “bride laughing”"
    other = tmp_path / "other"
    other.mkdir()
    assert main(["search", str(other), "dog", *cat]) == 2
    err = capsys.readouterr().err
    assert "is not in the catalog" in err and "clipiqa-desktop index" in err and len(err.splitlines()) == 1

    # indexed with --model none: no embeddings to search
    (other / "A.jpg").write_bytes((folder / "IMG_0.jpg").read_bytes())
    none_cat = ["--catalog", str(tmp_path / "none.sqlite")]
    assert main(["index", str(other), *none_cat, "--model", "none", "--size", "128"]) == 0
    capsys.readouterr()
    assert main(["search", str(other), "dog", *none_cat]) == 2
    err = capsys.readouterr().err
    assert "without a CLIP model (--model none)" in err and len(err.splitlines()) == 1

    # a folder indexed with RN50/openai whose weights are not on this machine, and a new text
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    rn50 = tmp_path / "rn50"
    rn50.mkdir()
    catalog = Catalog(tmp_path / "rn50.sqlite")
    try:
        analysis_id = catalog.analysis_id("RN50/openai", "512", embed_dim=1024, logit_scale=100.0)
        vec = np.ones(1024, np.float32) / 32.0
        catalog.write_batch(
            catalog.folder_id(rn50),
            analysis_id,
            [PhotoRecord("A.jpg", 1, 1, scores={"q": 0.5}, embedding=vec)],
        )
        catalog.set_last_analysis(catalog.folder_id(rn50), analysis_id)
    finally:
        catalog.close()
    assert main(["search", str(rn50), "dog", "--catalog", str(tmp_path / "rn50.sqlite")]) == 2
    err = capsys.readouterr().err
    # the project's weights message (as index says it): what is missing, then how to fix it
    assert "Traceback" not in err and "weights for RN50 (openai) are not on this machine" in err, err
    assert "--weights FILE" in err
