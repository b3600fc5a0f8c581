"""Folder trees in the catalog: a folder row per real directory, one record per photo.

Real SQLite files, and PostgreSQL databases for the tests on the `catalog` (both_backends); no
model. The pipeline and the commands over trees are tested in
tests/indexing/test_camera_folders.py.
"""

from __future__ import annotations

import os
import sqlite3

import numpy as np
import pytest

from clipiqa_desktop.catalog import (
    Catalog,
    Decision,
    PhotoRecord,
    PhotoTable,
    QueryError,
    build_table,
    parse_where,
    schema,
    select_rows,
)

from . import raw

pytestmark = pytest.mark.both_backends


def _rec(rel: str, quality: float = 0.5, fp: str | None = None) -> PhotoRecord:
    return PhotoRecord(
        rel,
        100,
        1,
        fingerprint=fp or f"fp-{rel}",
        scores={"quality": quality},
        embedding=np.array([0.6, 0.8, 0.0, 0.0], dtype=np.float32),
    )


def _folder_of(catalog: Catalog, photo_id: int) -> tuple[str, str]:
    (row,) = raw.rows(
        catalog.address,
        "SELECT f.path, p.name FROM photos p JOIN folders f ON f.id = p.folder_id WHERE p.id = :pid",
        pid=photo_id,
    )
    return row


def test_folder_ids_match_whole_folder_names_only(catalog, tmp_path):
    for name in ("a/b", "a/bc", "a/b/c", "a/b/c/d", "a"):
        (tmp_path / name).mkdir(parents=True, exist_ok=True)
    ids = {name: catalog.folder_id(tmp_path / name) for name in ("a/b", "a/bc", "a/b/c", "a/b/c/d", "a")}
    assert catalog.folder_ids(tmp_path / "a/b", recursive=False) == [ids["a/b"]]
    assert catalog.folder_ids(tmp_path / "a/b", recursive=True) == [ids["a/b"], ids["a/b/c"], ids["a/b/c/d"]]
    assert ids["a/bc"] not in catalog.folder_ids(tmp_path / "a/b", recursive=True)
    assert catalog.folder_ids(tmp_path / "a", recursive=True)[0] == ids["a"], "the root comes first"
    # a folder that has no row of its own still finds the rows under it
    assert catalog.folder_ids(tmp_path, recursive=False) == []
    assert len(catalog.folder_ids(tmp_path, recursive=True)) == 5


def test_a_photo_is_stored_under_its_own_directory(catalog, tmp_path):
    (tmp_path / "DCIM/100CANON").mkdir(parents=True)
    root = catalog.folder_id(tmp_path / "DCIM")
    aid = catalog.analysis_id("m", "512", 4, 100.0)
    ids = catalog.write_batch(root, aid, [_rec("100CANON/IMG_1.JPG"), _rec("top.jpg")])
    sub = catalog.folder_id(tmp_path / "DCIM/100CANON", create=False)
    assert sub is not None
    assert _folder_of(catalog, ids["100CANON/IMG_1.JPG"]) == (str(tmp_path / "DCIM/100CANON"), "IMG_1.JPG")
    # written again through the sub-folder: the same record, not a second one
    again = catalog.write_batch(sub, aid, [_rec("IMG_1.JPG", 0.9)])
    assert again["IMG_1.JPG"] == ids["100CANON/IMG_1.JPG"]
    tree = catalog.folder_ids(tmp_path / "DCIM", recursive=True)
    rows, scores = catalog.rows(tree, aid)
    assert sorted(r[2] for r in rows) == ["100CANON/IMG_1.JPG", "top.jpg"]
    table = build_table(rows, scores, ["quality"])
    assert sorted(table.paths) == sorted(
        [str(tmp_path / "DCIM/100CANON/IMG_1.JPG"), str(tmp_path / "DCIM/top.jpg")]
    )
    assert scores.of(ids["100CANON/IMG_1.JPG"]) == pytest.approx({"quality": 0.9})
    # the same rows seen from the sub-folder are named inside it
    rows, _ = catalog.rows([sub], aid)
    assert [r[2] for r in rows] == ["IMG_1.JPG"]
    # photo_states over the tree, keyed by the path inside the folder asked about
    assert set(catalog.photo_states(tree, aid, root=tmp_path / "DCIM")) == {"100CANON/IMG_1.JPG", "top.jpg"}
    assert set(catalog.photo_states(sub, aid)) == {"IMG_1.JPG"}


def test_rate_finds_a_photo_whatever_folder_was_indexed(catalog, tmp_path, monkeypatch):
    (tmp_path / "shoot/jpg/gps").mkdir(parents=True)
    for rel in ("shoot/jpg/gps/a.jpg", "shoot/b.jpg"):
        (tmp_path / rel).write_bytes(b"x")
    aid = catalog.analysis_id("m", "512", 4, 100.0)
    ids = catalog.write_batch(
        catalog.folder_id(tmp_path / "shoot"), aid, [_rec("jpg/gps/a.jpg"), _rec("b.jpg")]
    )
    monkeypatch.chdir(tmp_path / "shoot/jpg")  # a relative path given on the command line
    found = catalog.photo_ids_for_paths(
        [tmp_path / "shoot/jpg/gps/a.jpg", tmp_path / "shoot/b.jpg", "gps/a.jpg", tmp_path / "nope.jpg"]
    )
    assert list(found.values()) == [ids["jpg/gps/a.jpg"], ids["b.jpg"], ids["jpg/gps/a.jpg"], None]


def test_a_moved_file_takes_over_its_record_across_folders(catalog, tmp_path):
    for d in ("DCIM/100CANON", "DCIM/101CANON"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "DCIM/100CANON/IMG_1.JPG").write_bytes(b"x")
    aid = catalog.analysis_id("m", "512", 4, 100.0)
    root = catalog.folder_id(tmp_path / "DCIM")
    pid = catalog.write_batch(root, aid, [_rec("100CANON/IMG_1.JPG", fp="same")])["100CANON/IMG_1.JPG"]
    catalog.set_decisions({pid: Decision(rating=4)})
    # a copy (the original still there) is a photo of its own
    copy = catalog.write_batch(root, aid, [_rec("101CANON/copy.JPG", fp="same")])["101CANON/copy.JPG"]
    assert copy != pid
    # moved (the original gone), even when only the new folder is indexed: the record follows
    os.rename(tmp_path / "DCIM/100CANON/IMG_1.JPG", tmp_path / "DCIM/101CANON/IMG_1.JPG")
    new = catalog.folder_id(tmp_path / "DCIM/101CANON")
    moved = catalog.write_batch(new, aid, [_rec("IMG_1.JPG", fp="same")])["IMG_1.JPG"]
    assert moved == pid and catalog.decisions([pid])[pid] == Decision(rating=4)
    assert _folder_of(catalog, pid) == (str(tmp_path / "DCIM/101CANON"), "IMG_1.JPG")


def test_the_last_analysis_of_a_tree_is_the_one_most_of_its_photos_have(catalog, tmp_path):
    for d in ("t/a", "t/b", "t/c"):
        (tmp_path / d).mkdir(parents=True)
    a512 = catalog.analysis_id("m", "512", 4, 100.0)
    a1024 = catalog.analysis_id("m", "1024", 4, 100.0)
    fa, fb, fc = (catalog.folder_id(tmp_path / d) for d in ("t/a", "t/b", "t/c"))
    catalog.write_batch(fa, a512, [_rec(f"{i}.jpg") for i in range(3)])
    catalog.write_batch(fb, a1024, [_rec("x.jpg")])
    catalog.write_batch(fc, a1024, [_rec("y.jpg")])
    catalog.set_last_analysis([fa], a512)
    catalog.set_last_analysis([fb, fc], a1024)
    tree = catalog.folder_ids(tmp_path / "t", recursive=True)
    assert catalog.last_analysis(tree) == a512, "3 photos at 512 against 2 at 1024"
    catalog.write_batch(fc, a1024, [_rec("z.jpg"), _rec("w.jpg")])
    assert catalog.last_analysis(tree) == a1024
    assert catalog.last_analysis(fb) == a1024 and catalog.last_analysis([]) is None


def test_unknown_status_and_field_in_where_are_explained():
    table = PhotoTable(
        ids=np.array([1], np.int64),
        paths=["/a.jpg"],
        status=["ok"],
        errors=[None],
        captured_at=[None],
        rating=np.zeros(1, np.int8),
        picked=np.zeros(1, bool),
        labels=[None],
        attributes=["quality"],
        scores=np.array([[0.5]], np.float32),
    )
    with pytest.raises(QueryError, match=r"unknown status 'bogus'.*ok, error, missing"):
        select_rows(table, [parse_where("status=bogus")])
    with pytest.raises(QueryError, match=r"unknown field 'sharpnes'.*known: quality"):
        select_rows(table, [parse_where("sharpnes<0.3")])
    assert list(select_rows(table, [parse_where("status=OK")])) == [0]


def _v1_catalog(path, root: str) -> None:
    """A catalog as release 1 left it, with photos of one file recorded twice: through the parent
    (rel_path 'sub/dup.jpg') and through the sub-folder ('dup.jpg'), as the old keying allowed."""
    conn = sqlite3.connect(path)
    for ddl in schema._V1_DDL:
        conn.execute(ddl)
    conn.executescript(
        f"""
        INSERT INTO analyses VALUES (1, 'm', '512', 4, 100.0), (2, 'm', '1024', 4, 100.0);
        INSERT INTO folders VALUES (1, '{root}', 1, 10.0), (2, '{root}/sub', 2, 20.0);
        INSERT INTO photos (id, folder_id, rel_path, size_bytes, mtime_ns, fingerprint, status,
                            added_at, updated_at) VALUES
            (1, 1, 'top.jpg', 1, 1, 'f1', 'ok', 1, 1),
            (2, 1, 'sub/dup.jpg', 1, 1, 'f2', 'ok', 1, 5),
            (3, 2, 'dup.jpg', 1, 1, 'f2', 'ok', 1, 9),
            (4, 1, 'other/deep/x.jpg', 1, 1, 'f4', 'ok', 1, 1);
        INSERT INTO scores VALUES (2, 1, 'quality', 0.25), (3, 2, 'quality', 0.75), (4, 1, 'quality', 0.5);
        INSERT INTO embeddings VALUES (2, 1, x'0000'), (3, 2, x'0000');
        INSERT INTO thumbnails VALUES (2, 4, 3, x'ffd8');
        INSERT INTO decisions VALUES (2, 5, 1, 'Red', 300.0, 'user'), (3, -1, 0, NULL, 100.0, 'user'),
                                     (4, 2, 0, NULL, 50.0, 'user');
        PRAGMA user_version = 1;
        """
    )
    conn.commit()
    conn.close()


def test_migration_2_splits_paths_into_folders_and_merges_double_records(tmp_path):
    path, root = tmp_path / "old.sqlite", str(tmp_path / "shoot")
    _v1_catalog(path, root)
    cat = Catalog(path)
    try:
        assert _folder_of(cat, 1) == (root, "top.jpg")
        assert _folder_of(cat, 4) == (f"{root}/other/deep", "x.jpg"), "ids are kept"
        assert cat.decisions([4])[4] == Decision(rating=2)
        # photo 3 (updated last) keeps the record; it gains photo 2's scores, embedding, thumbnail
        # and its decision, which was changed later
        conn = sqlite3.connect(path)
        assert conn.execute("SELECT id FROM photos WHERE fingerprint = 'f2'").fetchall() == [(3,)]
        assert _folder_of(cat, 3) == (f"{root}/sub", "dup.jpg")
        assert cat.decisions([3])[3] == Decision(rating=5, picked=True, label="Red")
        assert conn.execute(
            "SELECT analysis_id, value FROM scores WHERE photo_id = 3 ORDER BY 1"
        ).fetchall() == [
            (1, 0.25),
            (2, 0.75),
        ]
        assert conn.execute("SELECT COUNT(*) FROM embeddings WHERE photo_id = 3").fetchone() == (2,)
        assert conn.execute("SELECT jpeg FROM thumbnails WHERE photo_id = 3").fetchone() == (b"\xff\xd8",)
        # the new folder rows show what their photos were last indexed with
        deep = cat.folder_id(tmp_path / "shoot/other/deep", create=False)
        assert deep is not None and cat.last_analysis(deep) == 1
        assert conn.execute("SELECT COUNT(*) FROM photos WHERE name LIKE '%/%'").fetchone() == (0,)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        conn.close()
    finally:
        cat.close()


def test_rows_of_a_tree_without_a_row_of_its_own_are_named_inside_it(catalog, tmp_path):
    for d in ("DCIM/100CANON", "DCIM/101CANON"):
        (tmp_path / d).mkdir(parents=True)
    aid = catalog.analysis_id("m", "512", 4, 100.0)
    catalog.write_batch(catalog.folder_id(tmp_path / "DCIM/101CANON"), aid, [_rec("b.jpg")])
    catalog.write_batch(catalog.folder_id(tmp_path / "DCIM/100CANON"), aid, [_rec("a.jpg")])
    tree = catalog.folder_ids(tmp_path / "DCIM", recursive=True)  # DCIM itself has no row
    assert len(tree) == 2
    rows, _ = catalog.rows(tree, aid)
    assert sorted(r[2] for r in rows) == ["100CANON/a.jpg", "101CANON/b.jpg"]
    assert set(catalog.photo_states(tree, aid)) == {"100CANON/a.jpg", "101CANON/b.jpg"}
