"""Camera folders (DCIM/100CANON, a shoot of sub-folders): one record per photo whatever folder it
is reached from; filling in new attributes without decoding; cancel and a pulled card.

Real JPEGs written by the tests, a real catalog file and the tiny random CLIP.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sqlite3
import threading

import numpy as np
import pytest

from clipiqa_desktop.catalog import Catalog, Decision
from clipiqa_desktop.cli import main
from clipiqa_desktop.indexing.pipeline import IndexingError, IndexOptions, index_folder
from clipiqa_desktop.measures.registry import PIXEL_KEYS
from clipiqa_desktop.scoring import BUILTIN_ATTRIBUTES

from ..conftest import TINY_ARGS, photo

OPTIONS = IndexOptions(long_side=128, batch_size=4, workers=2, thumb_long_side=64)
RECURSIVE = IndexOptions(long_side=128, batch_size=4, workers=2, thumb_long_side=64, recursive=True)


@pytest.fixture
def card(tmp_path):
    """DCIM/100CANON and DCIM/101CANON, three photos each, none in DCIM itself."""
    dcim = tmp_path / "card" / "DCIM"
    for k, sub in enumerate(("100CANON", "101CANON")):
        (dcim / sub).mkdir(parents=True)
        for i in range(3):
            photo(160, 120, seed=10 * k + i).save(dcim / sub / f"IMG_{k}{i:03d}.JPG", quality=90)
    return dcim


def _photo_rows(catalog: Catalog) -> list[tuple[str, str, str]]:
    """Every photo record: (directory, file name, status)."""
    conn = sqlite3.connect(catalog.path)
    try:
        return conn.execute(
            "SELECT f.path, p.name, p.status FROM photos p JOIN folders f ON f.id = p.folder_id "
            "ORDER BY f.path, p.name"
        ).fetchall()
    finally:
        conn.close()


def _id_of(catalog: Catalog, path) -> int:
    pid = catalog.photo_ids_for_paths([path])[path]
    assert pid is not None
    return pid


def test_parent_then_child_and_child_then_parent_never_duplicate(catalog, tiny_scorer, card):
    first = index_folder(catalog, tiny_scorer, card, RECURSIVE)
    assert first.indexed == 6 and len(_photo_rows(catalog)) == 6
    pid = _id_of(catalog, card / "100CANON/IMG_0001.JPG")
    catalog.set_decisions({pid: Decision(rating=-1)})
    child = index_folder(catalog, tiny_scorer, card / "100CANON", OPTIONS)
    assert (child.indexed, child.unchanged, child.missing) == (0, 3, 0)
    assert len(_photo_rows(catalog)) == 6
    # the decision made through the parent is the photo's decision seen from the child
    sub = catalog.folder_ids(card / "100CANON", recursive=False)
    rows, _ = catalog.rows(sub, catalog.last_analysis(sub))
    assert {r[2]: r[8] for r in rows}["IMG_0001.JPG"] == -1

    # the other way round: a new card indexed folder by folder, then as a whole
    other = card.parent.parent / "card2" / "DCIM"
    shutil.copytree(card, other)
    index_folder(catalog, tiny_scorer, other / "101CANON", OPTIONS)
    whole = index_folder(catalog, tiny_scorer, other, RECURSIVE)
    assert (whole.indexed, whole.unchanged) == (3, 3)
    assert len(_photo_rows(catalog)) == 12
    assert all(status == "ok" for _, _, status in _photo_rows(catalog))


def test_a_photo_moved_between_camera_folders_keeps_its_record(catalog, tiny_scorer, card):
    index_folder(catalog, tiny_scorer, card, RECURSIVE)
    pid = _id_of(catalog, card / "100CANON/IMG_0002.JPG")
    catalog.set_decisions({pid: Decision(rating=4, label="Green")})
    os.rename(card / "100CANON/IMG_0002.JPG", card / "101CANON/IMG_0002.JPG")
    summary = index_folder(catalog, tiny_scorer, card, RECURSIVE)
    assert (summary.renamed, summary.missing, summary.indexed) == (1, 0, 1)
    assert _id_of(catalog, card / "101CANON/IMG_0002.JPG") == pid
    assert catalog.decisions([pid])[pid] == Decision(rating=4, label="Green")
    assert len(_photo_rows(catalog)) == 6


def test_a_non_recursive_run_marks_missing_only_in_its_own_folder(catalog, tiny_scorer, card):
    index_folder(catalog, tiny_scorer, card, RECURSIVE)
    os.remove(card / "101CANON/IMG_1000.JPG")
    flat = index_folder(catalog, tiny_scorer, card / "100CANON", OPTIONS)
    assert flat.missing == 0, "101CANON was not looked into"
    deep = index_folder(catalog, tiny_scorer, card, RECURSIVE)
    assert deep.missing == 1
    assert (str(card / "101CANON"), "IMG_1000.JPG", "missing") in _photo_rows(catalog)


def _garble_keeping_size_and_time(path) -> None:
    """Overwrite a photo with bytes that cannot be decoded, keeping its size and modification time:
    the indexer sees it unchanged, and any attempt to decode it would fail loudly."""
    st = path.stat()
    path.write_bytes(b"\x00" * st.st_size)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_new_attribute_is_filled_in_from_stored_embeddings_without_decoding(catalog, tiny_scorer, card):
    eleven, new = list(BUILTIN_ATTRIBUTES[:-1]), BUILTIN_ATTRIBUTES[-1]
    first = index_folder(catalog, tiny_scorer, card, RECURSIVE, pairs=eleven)
    tree = catalog.folder_ids(card, recursive=True)
    _, scores = catalog.rows(tree, first.analysis_id)
    clip = [a for a in scores.attributes if a not in PIXEL_KEYS]
    assert new.key not in scores.attributes and len(clip) == 11
    for path in card.rglob("*.JPG"):
        _garble_keeping_size_and_time(path)

    second = index_folder(catalog, tiny_scorer, card, RECURSIVE)  # all twelve
    assert (second.indexed, second.failed, second.unchanged) == (0, [], 6), "no image was decoded"
    assert second.filled_in == [new.key] and second.filled_in_scores == 6
    rows, scores = catalog.rows(tree, second.analysis_id)
    assert {r[3] for r in rows} == {"ok"}
    ids, emb = catalog.embeddings(tree, second.analysis_id)
    expected = tiny_scorer.score_embeddings(emb, [new])[:, 0]
    filled = np.array([scores.of(int(i))[new.key] for i in ids])
    np.testing.assert_allclose(filled, expected, atol=1e-5)
    assert not np.allclose(filled, filled[0]), "six different photos, six different scores"
    third = index_folder(catalog, tiny_scorer, card, RECURSIVE)
    assert third.filled_in == [] and third.unchanged == 6


def test_a_cancelled_reindex_leaves_the_last_complete_analysis_shown(catalog, tiny_scorer, card):
    complete = index_folder(catalog, tiny_scorer, card, RECURSIVE)
    tree = catalog.folder_ids(card, recursive=True)
    assert catalog.last_analysis(tree) == complete.analysis_id
    cancel = threading.Event()
    other = IndexOptions(long_side=96, batch_size=2, workers=2, thumb_long_side=64, recursive=True)
    half = index_folder(catalog, tiny_scorer, card, other, on_batch=lambda ids: cancel.set(), cancel=cancel)
    assert half.cancelled and 0 < half.indexed < 6 and half.analysis_id != complete.analysis_id
    for fid in tree:
        assert catalog.last_analysis(fid) == complete.analysis_id, "list and the window show 128"
    finished = index_folder(catalog, tiny_scorer, card, other)
    assert not finished.cancelled and finished.indexed + half.indexed == 6
    assert catalog.last_analysis(tree) == half.analysis_id, "a complete run moves it"
    for fid in tree:
        assert catalog.last_analysis(fid) == half.analysis_id


def test_a_first_run_that_is_cancelled_still_shows_what_it_scored(catalog, tiny_scorer, card):
    cancel = threading.Event()
    half = index_folder(
        catalog, tiny_scorer, card, RECURSIVE, on_batch=lambda ids: cancel.set(), cancel=cancel
    )
    assert half.cancelled
    assert catalog.last_analysis(catalog.folder_ids(card, recursive=True)) == half.analysis_id


def test_a_folder_that_vanishes_while_indexing_stops_the_run_and_keeps_what_was_done(
    catalog, tiny_scorer, tmp_path
):
    folder = tmp_path / "CARD"
    folder.mkdir()
    for i in range(40):
        photo(160, 120, seed=i).save(folder / f"IMG_{i:04d}.JPG", quality=90)
    away = tmp_path / "pulled"

    def pull_the_card(ids):
        if folder.exists():
            folder.rename(away)

    with pytest.raises(IndexingError, match=r"CARD is no longer there — was the card removed\? Nothing"):
        index_folder(catalog, tiny_scorer, folder, OPTIONS, on_batch=pull_the_card)
    rows = _photo_rows(catalog)
    assert len(rows) >= 4, "the committed batch is kept"
    assert len(rows) < 40, "the photos after the card was pulled were not recorded"
    assert {status for _, _, status in rows} == {"ok"}, "nothing marked failed or missing"
    away.rename(folder)
    resumed = index_folder(catalog, tiny_scorer, folder, OPTIONS)
    assert (resumed.indexed + resumed.unchanged, resumed.failed, resumed.missing) == (40, [], 0)


# --- the commands ---------------------------------------------------------------------------------


@pytest.fixture
def shoot(tmp_path):
    """photos/jpg (3 photos) and photos/jpg/gps (3 photos); photos itself holds none."""
    gps = tmp_path / "photos" / "jpg" / "gps"
    gps.mkdir(parents=True)
    for i in range(3):
        photo(160, 120, seed=i).save(gps.parent / f"J{i}.jpg")
        photo(160, 120, seed=20 + i).save(gps / f"G{i}.jpg")
    return tmp_path / "photos"


def _list(folder, cat, capsys, *extra) -> tuple[list[dict], str]:
    assert main(["list", str(folder), *cat, "--format", "json", *extra]) == 0
    out = capsys.readouterr()
    return [json.loads(line) for line in out.out.splitlines()], out.err


def test_commands_on_any_folder_inside_an_indexed_tree(shoot, tmp_path, capsys):
    db = tmp_path / "c.sqlite"
    cat = ["--catalog", str(db)]
    model = [*TINY_ARGS, "--size", "128"]

    assert main(["index", str(shoot), *cat, *model]) == 2
    err = capsys.readouterr().err
    assert "has no photos of its own; its sub-folders (jpg) hold 6" in err
    # the suggested command works as pasted: on the same catalog and model, not the default ones
    assert f"clipiqa-desktop index -r {shoot} --catalog {db}" in err and "indexed 0" not in err
    assert not db.exists(), "nothing was indexed, no catalog was created"
    suggested = shlex.split(err.split("Index them with -r: ", 1)[1].strip())
    assert suggested[:2] == ["clipiqa-desktop", "index"] and "--model" in suggested
    assert main(suggested[1:]) == 0
    assert "indexed 6" in capsys.readouterr().err

    rows, err = _list(shoot / "jpg" / "gps", cat, capsys)
    assert sorted(r["path"] for r in rows) == [str(shoot / f"jpg/gps/G{i}.jpg") for i in range(3)]
    rows, err = _list(shoot, cat, capsys)
    assert len(rows) == 6 and "has no photos of its own; showing the 6 photos of its sub-folders" in err
    rows, err = _list(shoot / "jpg", cat, capsys)
    assert len(rows) == 3 and "sub-folders" not in err
    rows, _ = _list(shoot / "jpg", cat, capsys, "-r")
    assert len(rows) == 6
    assert main(["list", str(shoot / "jpg"), *cat, "-r"]) == 0
    table = capsys.readouterr().out
    assert "gps/G0.jpg" in table and " J0.jpg" in table, "names are paths inside the folder listed"

    assert main(["rate", str(shoot / "jpg/gps/G1.jpg"), *cat, "--reject"]) == 0
    capsys.readouterr()
    assert main(["index", str(shoot / "jpg" / "gps"), *cat, *model]) == 0
    assert "indexed 0, unchanged 3" in capsys.readouterr().err
    rows, _ = _list(shoot, cat, capsys, "--where", "rating=-1")
    assert [r["path"] for r in rows] == [str(shoot / "jpg/gps/G1.jpg")]
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM photos").fetchone() == (6,), "one record per photo"
    conn.close()

    assert main(["export", str(shoot / "jpg"), *cat, "-r", "--csv", "-"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1 + 6

    assert main(["list", str(shoot), *cat, "--where", "status=bogus"]) == 2
    assert "unknown status 'bogus'" in capsys.readouterr().err
    a_photo = next((shoot / "jpg").glob("*.jpg"))
    assert main(["list", str(a_photo), *cat]) == 2
    err = capsys.readouterr().err
    assert (
        "is a photo, not a folder" in err and f"clipiqa-desktop list {a_photo.parent} --catalog {db}" in err
    )
