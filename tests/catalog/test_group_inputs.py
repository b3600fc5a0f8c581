"""Catalog.group_inputs: what grouping into bursts, brackets and scenes reads, on a real catalog
(SQLite, and PostgreSQL: both_backends)."""

from __future__ import annotations

import calendar
import math
from pathlib import Path

import numpy as np
import pytest

from clipiqa_desktop.catalog import Catalog, Decision, PhotoMeta, PhotoRecord
from clipiqa_desktop.imaging.metadata import META_VERSION

from . import raw

pytestmark = pytest.mark.both_backends

DIM = 8


def _utc(text: str) -> float:
    return float(calendar.timegm(tuple(map(int, text.replace("T", "-").replace(":", "-").split("-")))))  # type: ignore[arg-type]


def _vec(i: int) -> np.ndarray:
    v = np.zeros(DIM, np.float32)
    v[i % DIM] = 3.0
    v[(i + 1) % DIM] = (
        4.0  # not unit length on purpose: the pipeline stores unit rows, the reader keeps them so
    )
    return v / np.linalg.norm(v)


def _rec(name: str, i: int, meta: PhotoMeta, error: str | None = None, embed: bool = True) -> PhotoRecord:
    if error is not None:
        return PhotoRecord(name, 100 + i, i, error=error)
    return PhotoRecord(
        name,
        100 + i,
        i,
        fingerprint=f"fp-{name}",
        meta=meta,
        scores={"quality": 0.5},
        embedding=_vec(i) if embed else None,
    )


@pytest.fixture
def shoot(catalog: Catalog, tmp_path: Path):
    root = (tmp_path / "shoot").resolve()
    (root / "100CANON").mkdir(parents=True)
    fid = catalog.folder_id(root)
    aid = catalog.analysis_id("tiny", "512", DIM, 100.0)
    assert fid is not None and aid is not None
    records = [
        _rec("b.jpg", 1, PhotoMeta("2024-05-01T10:00:00", "Canon", "Canon EOS R5", subsec=0.25,
                                   exposure_bias=-1.0)),
        _rec("a.jpg", 2, PhotoMeta("2024-05-01T10:00:01", "NIKON CORPORATION", "Z 9", exposure_bias=0.0,
                                   subject_distance=1.5, exposure_time=0.004, f_number=2.8, iso=400)),
        _rec("100CANON/c.jpg", 3, PhotoMeta(None, None, "X100V")),  # no time, model only
        _rec("d.jpg", 4, PhotoMeta("2024-13-45T99:00:00")),  # a time SQLite cannot read
        _rec("e.jpg", 5, PhotoMeta(), error="cannot decode: damaged JPEG"),
        _rec("f.jpg", 6, PhotoMeta("2024-05-01T10:00:02", "Canon"), embed=False),  # --model none's kind
        _rec("gone.jpg", 7, PhotoMeta("2024-05-01T10:00:03")),
    ]  # fmt: skip
    ids = catalog.write_batch(fid, aid, records)
    catalog.mark_missing([ids["gone.jpg"]])
    other = catalog.folder_id(tmp_path / "elsewhere")
    assert other is not None
    catalog.write_batch(other, aid, [_rec("x.jpg", 8, PhotoMeta("2024-05-01T09:00:00"))])
    return root, catalog.folder_ids(root, recursive=True), aid, ids


def test_every_photo_not_missing_in_id_order_with_its_facts(catalog, shoot):
    root, folders, aid, ids = shoot
    g = catalog.group_inputs(folders, aid, root=root)
    order = ["b.jpg", "a.jpg", "100CANON/c.jpg", "d.jpg", "e.jpg", "f.jpg"]  # written in this order
    assert g.names == order
    assert list(g.ids) == [ids[n] for n in order] and g.ids.dtype == np.int64
    assert np.all(np.diff(g.ids) > 0)
    assert len(g) == 6
    t0 = _utc("2024-05-01T10:00:00")
    np.testing.assert_array_equal(g.times[[0, 1, 5]], [t0 + 0.25, t0 + 1, t0 + 2])
    assert np.isnan(g.times[[2, 3, 4]]).all()  # none, unparseable, the error photo's
    np.testing.assert_array_equal(g.exposure_bias[:2], [-1.0, 0.0])
    assert np.isnan(g.exposure_bias[2:]).all()
    assert g.subject_distance[1] == 1.5 and np.isnan(g.subject_distance[[0, 2, 3, 4, 5]]).all()
    assert (g.exposure_time[1], g.f_number[1], g.iso[1]) == (0.004, 2.8, 400.0)
    assert np.isnan(g.iso[0]) and np.isnan(g.f_number[0])
    assert g.camera == ["Canon EOS R5", "NIKON CORPORATION Z 9", "X100V", None, None, "Canon"]


def test_embeddings_are_unit_rows_and_zeros_where_there_are_none(catalog, shoot):
    root, folders, aid, _ids = shoot
    g = catalog.group_inputs(folders, aid, root=root)
    assert g.embeddings.shape == (6, DIM) and g.embeddings.dtype == np.float32
    assert list(g.has_embedding) == [True, True, True, True, False, False]
    norms = np.linalg.norm(g.embeddings, axis=1)
    np.testing.assert_allclose(norms[:4], 1.0, atol=1e-6)  # exact after the float16 store
    assert (g.embeddings[4:] == 0).all()
    np.testing.assert_allclose(g.embeddings[1], _vec(2), atol=2e-3)


def test_without_an_analysis_there_are_no_embedding_columns(catalog, shoot):
    root, folders, _aid, _ids = shoot
    g = catalog.group_inputs(folders, None, root=root)
    assert g.embeddings.shape == (6, 0) and not g.has_embedding.any()
    assert g.names[0] == "b.jpg"


def test_names_default_to_the_common_folder_and_no_folders_is_empty(catalog, shoot, tmp_path):
    root, _folders, aid, _ids = shoot
    sub = catalog.folder_ids(root / "100CANON", recursive=False)
    assert catalog.group_inputs(sub, aid).names == ["c.jpg"]
    empty = catalog.group_inputs([], aid)
    assert len(empty) == 0 and empty.embeddings.shape == (0, DIM)
    none = catalog.group_inputs(catalog.folder_ids(tmp_path / "nothing", recursive=False), aid)
    assert len(none) == 0


def test_written_photos_carry_the_current_meta_version(catalog, shoot):
    _root, folders, _aid, _ids = shoot
    versions = dict(raw.rows(catalog.address, "SELECT name, meta_version FROM photos"))
    assert set(versions.values()) == {META_VERSION}
    assert catalog.stale_meta(folders) == []


def test_update_meta_fills_only_stale_ok_photos(catalog, shoot):
    root, folders, aid, ids = shoot
    raw.execute(catalog.address, "UPDATE photos SET meta_version = NULL, exposure_bias = NULL, subsec = NULL")
    stale = catalog.stale_meta(folders)
    ok = [ids[n] for n in ("b.jpg", "a.jpg", "100CANON/c.jpg", "d.jpg", "f.jpg")]
    assert stale == sorted(ok)  # not the error photo, not the missing one, not another folder's
    new = PhotoMeta("2024-05-01T10:00:00", "Canon", "Canon EOS R5", subsec=0.5, exposure_bias=2.0)
    gone, error = ids["gone.jpg"], ids["e.jpg"]
    assert catalog.update_meta([(ids["b.jpg"], new), (gone, new), (error, new)]) == 1
    g = catalog.group_inputs(folders, aid, root=root)
    assert g.exposure_bias[0] == 2.0 and g.times[0] == _utc("2024-05-01T10:00:00") + 0.5
    assert math.isnan(g.exposure_bias[4])  # the error photo was left alone
    assert catalog.stale_meta(folders) == sorted(ok[1:])
    assert catalog.update_meta([(ids["b.jpg"], PhotoMeta())]) == 0  # current now: not overwritten


def test_update_meta_keeps_what_the_header_does_not_state(catalog, shoot):
    """A RAW whose capture time and exposure live only in its embedded JPEG: the header read
    again gives the camera alone, and must not erase what the index stored from the preview."""
    _root, _folders, _aid, ids = shoot
    raw.execute(catalog.address, "UPDATE photos SET meta_version = NULL")
    header_only = PhotoMeta(None, "Panasonic", "DC-S5", subject_distance=3.0)
    assert catalog.update_meta([(ids["a.jpg"], header_only)]) == 1
    (row,) = raw.rows(
        catalog.address,
        "SELECT captured_at, camera_model, exposure_time, iso, subject_distance FROM photos WHERE id = :pid",
        pid=ids["a.jpg"],
    )
    assert row == ("2024-05-01T10:00:01", "DC-S5", 0.004, 400, 3.0)


# Capture times as a camera or a damaged file may leave them: SQLite's strftime('%s') is the
# reference (PostgreSQL reads them with dialect.epoch_seconds' arithmetic); None: unreadable.
ODD_TIMES = [
    "2024-05-01T10:00:00",
    "2024-02-30T10:00:00",  # a day past the month's end runs into the next
    "2023-02-29T00:00:00",
    "2024-05-01T24:00:00",
    "1900-01-01T00:00:00",
    "2099-12-31T23:59:59",
    "2024-05-01 10:00:00",
    "2024-13-01T10:00:00",
    "2024-05-00T10:00:00",
    "2024-05-32T10:00:00",
    "2024-05-01T23:60:00",
    "2024-05-01T10:00:0a",
    "garbage",
]


def test_capture_times_are_read_as_sqlite_reads_them(catalog, tmp_path):
    import sqlite3

    reference = sqlite3.connect(":memory:")
    expected = [reference.execute("SELECT strftime('%s', ?)", (t,)).fetchone()[0] for t in ODD_TIMES]
    reference.close()
    assert expected[0] is not None and expected[-1] is None
    fid = catalog.folder_id(tmp_path)
    aid = catalog.analysis_id("tiny", "512", DIM, 100.0)
    records = [_rec(f"{i:02d}.jpg", i, PhotoMeta(t)) for i, t in enumerate(ODD_TIMES)]
    ids = catalog.write_batch(fid, aid, records)
    g = catalog.group_inputs([fid], aid)
    got = dict(zip(g.ids.tolist(), g.times.tolist(), strict=True))
    for i, want in enumerate(expected):
        t = got[ids[f"{i:02d}.jpg"]]
        assert math.isnan(t) if want is None else t == float(want), f"{ODD_TIMES[i]}: {t} != {want}"
    catalog.set_decisions({pid: Decision(rating=1) for pid in ids.values()})
    decided, _ratings, _picked, times = catalog.decided_photos(aid)
    assert dict(zip(decided.tolist(), times.tolist(), strict=True)) == pytest.approx(got, nan_ok=True)
