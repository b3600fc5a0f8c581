"""Camera facts through indexing: EXIF written by Pillow comes out of Catalog.group_inputs, and a
catalog made before schema v4 gets the facts of its unchanged photos from their headers, no decode."""

from __future__ import annotations

import calendar
import os
import sqlite3
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from clipiqa_desktop.catalog import Catalog
from clipiqa_desktop.imaging.metadata import META_VERSION
from clipiqa_desktop.indexing import pipeline
from clipiqa_desktop.indexing.pipeline import IndexOptions, index_folder

from ..conftest import photo
from ..imaging.camera_exif import save_with_exif

OPTIONS = IndexOptions(long_side=64, batch_size=4, workers=2, thumb_long_side=32, measures=())
T0 = float(calendar.timegm((2024, 5, 1, 10, 0, 0)))
NEW_COLUMNS = ("exposure_bias", "subject_distance", "subsec", "meta_version")


@pytest.fixture
def shoot(tmp_path: Path) -> Path:
    """A bracket (-1, 0, +1 EV in one second), a focus stack (same exposure, 0.5 → 1.5 m) and a frame
    without EXIF."""
    folder = tmp_path / "shoot"
    folder.mkdir()
    for i, (bias, sub) in enumerate([(Fraction(-1), "10"), (Fraction(0), "40"), (Fraction(1), "75")]):
        save_with_exif(folder / f"BR_{i}.jpg", seed=i, bias=bias, subsec=sub)
    for i, metres in enumerate((0.5, 1.0, 1.5)):
        save_with_exif(
            folder / f"FS_{i}.jpg", seed=10 + i, captured=f"2024:05:01 10:00:0{i + 5}", subsec="045",
            distance=metres, bias=Fraction(0), model="Z 9", make="NIKON CORPORATION",
        )  # fmt: skip
    photo(64, 48, seed=20).save(folder / "plain.png")
    return folder


def _inputs(catalog: Catalog, folder: Path):
    tree = catalog.folder_ids(folder, recursive=False)
    return catalog.group_inputs(tree, catalog.last_analysis(tree), root=folder)


def test_exif_facts_round_trip_through_index_to_group_inputs(catalog, tiny_scorer, shoot):
    summary = index_folder(catalog, tiny_scorer, shoot, OPTIONS)
    assert (summary.indexed, summary.failed, summary.facts_read) == (7, [], 0)
    g = _inputs(catalog, shoot)
    by = dict(zip(g.names, range(len(g)), strict=True))
    br = [by[f"BR_{i}.jpg"] for i in range(3)]
    fs = [by[f"FS_{i}.jpg"] for i in range(3)]
    np.testing.assert_allclose(g.exposure_bias[br], [-1.0, 0.0, 1.0])
    np.testing.assert_allclose(g.times[br], [T0 + 0.10, T0 + 0.40, T0 + 0.75])
    np.testing.assert_allclose(g.subject_distance[fs], [0.5, 1.0, 1.5])
    np.testing.assert_allclose(g.times[fs], [T0 + 5.045, T0 + 6.045, T0 + 7.045])
    assert np.isnan(g.subject_distance[br]).all()
    np.testing.assert_allclose(g.exposure_time[br + fs], 1 / 250)
    assert [g.camera[i] for i in (br[0], fs[0])] == ["Canon EOS R5", "NIKON CORPORATION Z 9"]
    plain = by["plain.png"]
    assert np.isnan([g.times[plain], g.exposure_bias[plain], g.iso[plain]]).all() and g.camera[plain] is None
    assert g.has_embedding.all() and g.embeddings.shape == (7, tiny_scorer.embed_dim)


def _as_before_v4(db: Path) -> None:
    """Turn a catalog into what release 3 left: schema version 3, no camera-fact columns (v4) and
    none of v5's decision counter and folder roots."""
    con = sqlite3.connect(db)
    try:
        for column in NEW_COLUMNS:
            con.execute(f"ALTER TABLE photos DROP COLUMN {column}")
        con.execute("DROP INDEX ix_decisions_seq")
        con.execute("ALTER TABLE decisions DROP COLUMN seq")
        con.execute("DROP TABLE counters")
        con.execute("DROP TABLE root_mounts")
        con.execute("PRAGMA user_version = 3")
        con.commit()
    finally:
        con.close()


def _snapshot(db: Path) -> dict[str, list[tuple]]:
    con = sqlite3.connect(db)
    try:
        return {
            "photos": con.execute(
                "SELECT id, name, size_bytes, mtime_ns, fingerprint, status, error, captured_at, updated_at "
                "FROM photos ORDER BY id"
            ).fetchall(),
            "scores": con.execute("SELECT * FROM scores ORDER BY photo_id, attribute").fetchall(),
            "embeddings": con.execute("SELECT * FROM embeddings ORDER BY photo_id").fetchall(),
            "thumbnails": con.execute("SELECT * FROM thumbnails ORDER BY photo_id").fetchall(),
        }
    finally:
        con.close()


def test_an_older_catalog_gets_the_facts_of_unchanged_photos_without_decoding(
    tmp_path, tiny_scorer, shoot, monkeypatch
):
    db = tmp_path / "old.sqlite"
    cat = Catalog(db)
    index_folder(cat, tiny_scorer, shoot, OPTIONS)
    cat.close()
    _as_before_v4(db)
    # one unchanged file (same size and mtime) that no longer reads: left alone, never failed
    junk = shoot / "FS_2.jpg"
    st = junk.stat()
    junk.write_bytes(b"\x00" * st.st_size)
    os.utime(junk, ns=(st.st_atime_ns, st.st_mtime_ns))
    before = _snapshot(db)

    decodes: list[Path] = []
    real_decode = pipeline.decode_photo

    def counting_decode(path, *args, **kwargs):
        decodes.append(Path(path))
        return real_decode(path, *args, **kwargs)

    monkeypatch.setattr(pipeline, "decode_photo", counting_decode)
    cat = Catalog(db)  # migrates 3 -> 5
    try:
        summary = index_folder(cat, tiny_scorer, shoot, OPTIONS)
        assert decodes == [] and summary.indexed == 0 and summary.failed == []
        assert summary.facts_read == 6  # seven photos, the unreadable one left as it was
        assert any("read from the files" in note for note in summary.notes())
        assert _snapshot(db) == before  # scores, embeddings, thumbnails, status, updated_at: untouched
        g = _inputs(cat, shoot)
        by = dict(zip(g.names, range(len(g)), strict=True))
        np.testing.assert_allclose(g.exposure_bias[[by[f"BR_{i}.jpg"] for i in range(3)]], [-1.0, 0.0, 1.0])
        np.testing.assert_allclose(g.times[by["BR_2.jpg"]], T0 + 0.75)
        np.testing.assert_allclose(g.subject_distance[[by["FS_0.jpg"], by["FS_1.jpg"]]], [0.5, 1.0])
        assert np.isnan(g.subject_distance[by["FS_2.jpg"]]) and g.times[by["FS_2.jpg"]] == T0 + 7  # as stored
        con = sqlite3.connect(db)
        versions = dict(con.execute("SELECT name, meta_version FROM photos").fetchall())
        con.close()
        assert versions == {**dict.fromkeys(by, META_VERSION), "FS_2.jpg": None}

        again = index_folder(cat, tiny_scorer, shoot, OPTIONS)  # the unreadable one is tried again only
        assert (again.indexed, again.facts_read, decodes) == (0, 0, [])
        assert not any("read from the files" in note for note in again.notes())
        junk.unlink()
        save_with_exif(junk, seed=12, captured="2024:05:01 10:00:07", subsec="045", distance=1.5)
        third = index_folder(cat, tiny_scorer, shoot, OPTIONS)  # a changed file is decoded as always
        assert (third.indexed, third.facts_read, decodes) == (1, 0, [junk])
        assert cat.stale_meta(cat.folder_ids(shoot, recursive=False)) == []
        g = _inputs(cat, shoot)
        assert g.subject_distance[g.names.index("FS_2.jpg")] == 1.5
    finally:
        cat.close()
