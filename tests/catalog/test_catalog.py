"""The catalog on a real SQLite file and (tests marked both_backends run twice) a real PostgreSQL
database: settings, migrations, writes, decisions, tables and queries."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from clipiqa_desktop.catalog import (
    Catalog,
    CatalogError,
    Decision,
    PhotoRecord,
    QueryError,
    build_table,
    parse_where,
    schema,
    select_rows,
)

pytestmark = pytest.mark.both_backends


def _record(name: str, quality: float | None = 0.5, error: str | None = None, fp: str | None = None, **kw):
    emb = np.array([0.6, 0.8, 0.0, 0.0], dtype=np.float32)
    if error:
        return PhotoRecord(name, 100, 1, fingerprint=fp, error=error)
    return PhotoRecord(
        name,
        100,
        1,
        fingerprint=fp or f"fp-{name}",
        scores={"quality": quality, "sharpness": 0.1},
        embedding=emb,
        thumbnail=(4, 3, b"jpeg"),
        **kw,
    )


@pytest.mark.sqlite_only  # the SQLite file's own pragmas
def test_sqlite_settings_and_schema_version(catalog):
    conn = sqlite3.connect(catalog.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    with catalog.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
        assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL: decisions survive a power cut


def test_migrations_run_from_an_older_version_and_refuse_a_newer_one(tmp_path, monkeypatch):
    path = tmp_path / "c.sqlite"
    Catalog(path).close()
    ran = []
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, lambda conn: ran.append("v2")])
    monkeypatch.setattr(schema, "SCHEMA_VERSION", len(schema.MIGRATIONS))
    Catalog(path).close()
    assert ran == ["v2"]
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == len(schema.MIGRATIONS)
    Catalog(path).close()
    assert ran == ["v2"], "a migration runs once"
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 1)
    with pytest.raises(CatalogError, match="newer than this program"):
        Catalog(path)


def test_a_file_that_is_not_a_catalog(tmp_path):
    bogus = tmp_path / "notes.sqlite"
    bogus.write_text("just text, not a database " * 100)
    with pytest.raises(CatalogError, match="not a clipiqa-desktop catalog"):
        Catalog(bogus)


def test_catalog_in_an_unwritable_place(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CatalogError, match="folders are never created"):
        Catalog(blocker / "sub" / "catalog.sqlite")


def test_write_batch_and_read_back(catalog, tmp_path):
    fid = catalog.folder_id(tmp_path)
    aid = catalog.analysis_id("m/openai", "512", 4, 100.0)
    ids = catalog.write_batch(
        fid, aid, [_record("a.jpg", 0.9), _record("b.jpg", 0.2), _record("c.jpg", error="bad")]
    )
    states = catalog.photo_states(fid, aid)
    assert {k: (v.status, v.scored) for k, v in states.items()} == {
        "a.jpg": ("ok", True),
        "b.jpg": ("ok", True),
        "c.jpg": ("error", False),
    }
    photo_ids, emb = catalog.embeddings([fid], aid)
    assert list(photo_ids) == [ids["a.jpg"], ids["b.jpg"]]
    np.testing.assert_allclose(emb[0], [0.6, 0.8, 0, 0], atol=1e-3)  # float16 storage
    assert catalog.thumbnail(ids["a.jpg"]) == b"jpeg"
    rows, scores = catalog.rows([fid], aid)
    table = build_table(rows, scores, ["quality", "sharpness"])
    assert table.status == ["ok", "ok", "error"] and table.errors[2] == "bad"
    assert np.isnan(table.scores[2]).all()


def test_rewriting_a_photo_replaces_its_scores(catalog, tmp_path):
    fid = catalog.folder_id(tmp_path)
    aid = catalog.analysis_id("m", "512", 4, 100.0)
    catalog.write_batch(fid, aid, [_record("a.jpg", 0.9)])
    catalog.write_batch(fid, aid, [_record("a.jpg", 0.3)])
    rows, scores = catalog.rows([fid], aid)
    assert scores.of(rows[0][0]) == pytest.approx({"quality": 0.3, "sharpness": 0.1})


def test_scores_of_different_analyses_are_kept_apart(catalog, tmp_path):
    fid = catalog.folder_id(tmp_path)
    a512 = catalog.analysis_id("m", "512", 4, 100.0)
    a224 = catalog.analysis_id("m", "224", 4, 100.0)
    catalog.write_batch(fid, a512, [_record("a.jpg", 0.9)])
    catalog.write_batch(fid, a224, [_record("a.jpg", 0.1)])
    assert catalog.rows([fid], a512)[1].values[0, 0] == pytest.approx(0.9)
    assert catalog.rows([fid], a224)[1].values[0, 0] == pytest.approx(0.1)
    assert catalog.analysis_sizes("m") == ["224", "512"]


def test_missing_keeps_decisions_and_a_renamed_file_takes_its_record(catalog, tmp_path):
    fid = catalog.folder_id(tmp_path)
    aid = catalog.analysis_id("m", "512", 4, 100.0)
    ids = catalog.write_batch(fid, aid, [_record("a.jpg", fp="same-content")])
    catalog.set_decisions({ids["a.jpg"]: Decision(rating=4, label="Red")})
    catalog.mark_missing([ids["a.jpg"]])
    assert catalog.photo_states(fid, aid)["a.jpg"].status == "missing"
    assert catalog.decisions([ids["a.jpg"]])[ids["a.jpg"]] == Decision(4, False, "Red")
    moved = catalog.write_batch(fid, aid, [_record("renamed.jpg", fp="same-content")])
    assert moved["renamed.jpg"] == ids["a.jpg"]
    assert catalog.decisions([moved["renamed.jpg"]])[moved["renamed.jpg"]].rating == 4
    assert set(catalog.photo_states(fid, aid)) == {"renamed.jpg"}


def test_decisions_validate_and_return_before_and_after(catalog, tmp_path):
    fid = catalog.folder_id(tmp_path)
    aid = catalog.analysis_id("m", "512", 4, 100.0)
    pid = catalog.write_batch(fid, aid, [_record("a.jpg")])["a.jpg"]
    (delta,) = catalog.set_decisions({pid: Decision(rating=-1)})
    assert (delta.photo_id, delta.before, delta.after) == (pid, Decision(), Decision(rating=-1))
    assert delta.fields == ("rating",)
    (delta,) = catalog.set_decisions({pid: Decision(rating=2, picked=True)})
    assert delta.before == Decision(rating=-1) and delta.fields == ("rating", "picked")
    assert catalog.set_decisions({pid: Decision(rating=2, picked=True)}) == [], "no change, no write"
    with pytest.raises(ValueError, match="picked and rejected"):
        catalog.set_decisions({pid: Decision(rating=-1, picked=True)})
    with pytest.raises(ValueError, match="rating"):
        catalog.set_decisions({pid: Decision(rating=6)})
    with pytest.raises(ValueError, match="label"):
        catalog.set_decisions({pid: Decision(label="Magenta")})


def test_xmp_decision_applies_only_when_the_catalog_has_none(catalog, tmp_path):
    fid = catalog.folder_id(tmp_path)
    aid = catalog.analysis_id("m", "512", 4, 100.0)
    pid = catalog.write_batch(fid, aid, [_record("a.jpg", xmp_decision=Decision(rating=3))])["a.jpg"]
    assert catalog.decisions([pid])[pid].rating == 3
    catalog.set_decisions({pid: Decision(rating=-1)})
    catalog.write_batch(fid, aid, [_record("a.jpg", xmp_decision=Decision(rating=5))])
    assert catalog.decisions([pid])[pid].rating == -1, "the photographer's decision here wins"


def test_photo_ids_for_paths(catalog, tmp_path):
    fid = catalog.folder_id(tmp_path)
    aid = catalog.analysis_id("m", "512", 4, 100.0)
    ids = catalog.write_batch(fid, aid, [_record("a.jpg"), _record("day2/b.jpg")])
    found = catalog.photo_ids_for_paths(
        [tmp_path / "a.jpg", tmp_path / "day2" / "b.jpg", tmp_path / "zz.jpg"]
    )
    assert list(found.values()) == [ids["a.jpg"], ids["day2/b.jpg"], None]


def test_text_features_and_prompts_are_stored(catalog):
    catalog.save_prompt("eyes", "Eyes closed.", "Eyes open.")
    catalog.save_prompt("eyes", "Eyes shut.", "Eyes open.")
    assert catalog.prompts() == [("eyes", "Eyes shut.", "Eyes open.")]
    catalog.store_text_features("m", {"Eyes shut.": np.array([1.0, 0.0], np.float32)})
    got = catalog.text_features("m", ["Eyes shut.", "Eyes open."])
    assert list(got) == ["Eyes shut."] and got["Eyes shut."].tolist() == [1.0, 0.0]


def test_where_and_sort(catalog, tmp_path):
    fid = catalog.folder_id(tmp_path)
    aid = catalog.analysis_id("m", "512", 4, 100.0)
    ids = catalog.write_batch(
        fid,
        aid,
        [_record("a.jpg", 0.9), _record("b.jpg", 0.2), _record("c.jpg", 0.5), _record("d.jpg", error="x")],
    )
    catalog.set_decisions(
        {ids["b.jpg"]: Decision(rating=-1), ids["c.jpg"]: Decision(rating=3, label="Green")}
    )
    rows, scores = catalog.rows([fid], aid)
    t = build_table(rows, scores, ["quality", "sharpness"])

    def names(idx):
        return [t.names[i] for i in idx]

    assert names(select_rows(t, sort="quality")) == ["b.jpg", "c.jpg", "a.jpg", "d.jpg"]  # missing last
    assert names(select_rows(t, sort="quality", descending=True)) == ["a.jpg", "c.jpg", "b.jpg", "d.jpg"]
    assert names(select_rows(t, [parse_where("quality<0.6")])) == ["b.jpg", "c.jpg"]
    assert names(select_rows(t, [parse_where("rating>=0"), parse_where("quality >= 0.5")])) == [
        "a.jpg",
        "c.jpg",
    ]
    assert names(select_rows(t, [parse_where("rating=-1")])) == ["b.jpg"]
    assert names(select_rows(t, [parse_where("label=green")])) == ["c.jpg"]
    assert names(select_rows(t, [parse_where("status=error")])) == ["d.jpg"]
    assert names(select_rows(t, sort="name", descending=True)) == ["d.jpg", "c.jpg", "b.jpg", "a.jpg"]
    for bad in ("blur<0.3", "quality<high", "label=Magenta", "label<Red"):
        with pytest.raises(QueryError):
            select_rows(t, [parse_where(bad)])
    with pytest.raises(QueryError):
        parse_where("quality is low")
    with pytest.raises(QueryError, match="cannot sort"):
        select_rows(t, sort="colour")


def test_numpy_ids_are_accepted(catalog, tmp_path):
    fid = catalog.folder_id(tmp_path)
    aid = catalog.analysis_id("m", "512", 4, 100.0)
    pid = catalog.write_batch(fid, aid, [_record("a.jpg")])["a.jpg"]
    catalog.set_decisions({int(pid): Decision(rating=2)})
    assert catalog.decisions(np.array([pid]))[pid].rating == 2
    rows, _ = catalog.rows([fid], aid, photo_ids=np.array([pid]))
    assert len(rows) == 1


def test_add_scores_counts_what_it_added_or_replaced(catalog, tmp_path):
    fid = catalog.folder_id(tmp_path)
    aid = catalog.analysis_id("m", "512", 4, 100.0)
    ids = catalog.write_batch(fid, aid, [_record(n) for n in ("a.jpg", "b.jpg", "c.jpg")])
    pids = np.array([ids[n] for n in ("a.jpg", "b.jpg", "c.jpg")])
    assert catalog.add_scores(aid, pids, ["eyes"], np.array([[0.1], [0.2], [np.nan]])) == 2, "NaN: none"
    assert catalog.add_scores(aid, pids, ["eyes"], np.array([[0.1], [0.9], [0.3]])) == 1, "kept, and c"
    assert catalog.add_scores(aid, pids, ["eyes"], np.array([[0.3], [0.9], [0.3]]), replace_beyond=0.5) == 1
    rows, scores = catalog.rows([fid], aid)
    assert [scores.of(r[0])["eyes"] for r in rows] == pytest.approx([0.1, 0.9, 0.3])
