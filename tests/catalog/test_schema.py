"""Catalog schema: a new catalog starts at the current version; every migration, from every older
version, on a real SQLite file with rows; a failed or killed migration leaves the old version intact.

A catalog "at version k" is built the way release k built it: migration 1 on an empty file, rows
written in version 1's tables, then migrations 2..k. Opening it with the current code must keep
every row and end at exactly the schema of a freshly created catalog.

A PostgreSQL catalog (the session's server, tests/pg_server.py) has no SQLite history: a new
database is created at the current version, reopens read-write and read-only, and a migration added
later runs once on it.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from clipiqa_desktop.catalog import (
    Catalog,
    CatalogCorrupt,
    CatalogError,
    CatalogTooNew,
    Decision,
    PhotoRecord,
    schema,
)
from clipiqa_desktop.catalog.connection import _engine, transaction

from . import raw

NOW = 1_700_000_000.0
# (id, path inside the indexed folder, size, fingerprint, rating, picked, label)
PHOTOS = [
    (1, "a.jpg", 1000, "fp-a", 3, 1, "Red"),
    (2, "sub/b.jpg", 2000, "fp-b", -1, 0, None),
    (3, "sub/deeper/c é.jpg", 3000, "fp-c", None, None, None),
    (4, "z.jpg", 4000, None, None, None, None),  # an unreadable file: no scores, status error
]


def _quality(pid: int) -> float:
    return round(0.1 * pid + 0.05, 6)


def _vector(pid: int) -> bytes:
    v = np.zeros(4, dtype="<f2")
    v[pid % 4] = 1.0
    return v.tobytes()


def _write_v1_rows(conn, root: Path) -> None:
    """Rows as release 1 wrote them (its tables, raw SQL): one analysis, one folder, photos in
    sub-folders of the indexed folder, scores, embeddings, a thumbnail, decisions, a prompt."""
    sql = conn.exec_driver_sql
    sql("INSERT INTO analyses VALUES (1, 'RN50/openai', '512', 4, 100.0)")
    sql("INSERT INTO folders VALUES (1, ?, 1, ?)", (str(root), NOW))
    for pid, rel, size, fp, rating, picked, label in PHOTOS:
        status, error = ("ok", None) if fp else ("error", "cannot decode: not an image")
        sql(
            "INSERT INTO photos (id, folder_id, rel_path, size_bytes, mtime_ns, fingerprint, width, "
            "height, captured_at, status, error, added_at, updated_at) "
            "VALUES (?, 1, ?, ?, ?, ?, 640, 480, '2024-05-01T10:00:00', ?, ?, ?, ?)",
            (pid, rel, size, pid * 10**9, fp, status, error, NOW, NOW + pid),
        )
        if fp:
            for attr, value in (("quality", _quality(pid)), ("sharpness", 0.5)):
                sql("INSERT INTO scores VALUES (?, 1, ?, ?)", (pid, attr, value))
            sql("INSERT INTO embeddings VALUES (?, 1, ?)", (pid, _vector(pid)))
        if rating is not None:
            sql("INSERT INTO decisions VALUES (?, ?, ?, ?, ?, 'user')", (pid, rating, picked, label, NOW))
    sql("INSERT INTO thumbnails VALUES (1, 32, 24, ?)", (b"\xff\xd8jpeg\xff\xd9",))
    sql("INSERT INTO prompts VALUES ('eyes', 'Eyes open.', 'Eyes closed.', ?)", (NOW,))
    sql("INSERT INTO text_features VALUES ('RN50/openai', 'Eyes open.', ?)", (b"\x00" * 16,))


def build_catalog_at(path: Path, version: int, root: Path) -> Path:
    """A catalog file at schema `version`, with version 1's rows carried up by migrations 2..k."""
    assert 1 <= version <= schema.SCHEMA_VERSION
    engine = _engine(path)  # the product's own connection setup: WAL, BEGIN IMMEDIATE
    try:
        with transaction(engine, path, write=True) as conn:
            schema.MIGRATIONS[0](conn)
            _write_v1_rows(conn, root)
            for step in schema.MIGRATIONS[1:version]:
                step(conn)
            conn.exec_driver_sql(f"PRAGMA user_version = {version}")
    finally:
        engine.dispose()
    return path


def normalised_schema(path: Path) -> dict:
    """Tables, columns, keys, indexes and foreign keys as SQLite reports them, in a stable order
    (column order and the DDL's spelling may differ between ALTER TABLE and CREATE TABLE)."""
    con = sqlite3.connect(path)
    try:
        out: dict = {}
        objects = con.execute(
            "SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
        ).fetchall()
        out["objects"] = objects
        for _type, name, _tbl in objects:
            if _type != "table":
                continue
            cols = con.execute(f"PRAGMA table_xinfo('{name}')").fetchall()
            out[f"{name}.columns"] = sorted((c[1], c[2].upper(), c[3], c[4], c[5], c[6]) for c in cols)
            fks = con.execute(f"PRAGMA foreign_key_list('{name}')").fetchall()
            out[f"{name}.fks"] = sorted((f[2], f[3], f[4], f[5], f[6]) for f in fks)
            indexes = []
            for ix in con.execute(f"PRAGMA index_list('{name}')").fetchall():
                cols_ix = [r[2] for r in con.execute(f"PRAGMA index_info('{ix[1]}')").fetchall()]
                indexes.append((ix[2], ix[3], tuple(cols_ix)))  # unique, origin (c/u/pk), columns
            out[f"{name}.indexes"] = sorted(indexes)
        return out
    finally:
        con.close()


def _check_v1_rows_survived(path: Path, root: Path) -> None:
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        for table, count in (
            ("photos", 4),
            ("scores", 6),
            ("embeddings", 3),
            ("thumbnails", 1),
            ("decisions", 2),
            ("prompts", 1),
            ("text_features", 1),
            ("analyses", 1),
        ):
            assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == count, table
        for pid, _rel, size, fp, rating, picked, label in PHOTOS:
            row = con.execute(
                "SELECT size_bytes, fingerprint, status FROM photos WHERE id = ?", (pid,)
            ).fetchone()
            assert row == (size, fp, "ok" if fp else "error")
            if fp:
                q = con.execute(
                    "SELECT value FROM scores WHERE photo_id = ? AND attribute = 'quality'", (pid,)
                ).fetchone()
                assert q == (_quality(pid),)
                emb = con.execute("SELECT vector FROM embeddings WHERE photo_id = ?", (pid,)).fetchone()
                assert emb == (_vector(pid),)
            dec = con.execute(
                "SELECT rating, picked, label FROM decisions WHERE photo_id = ?", (pid,)
            ).fetchone()
            assert dec == (None if rating is None else (rating, picked, label))
    finally:
        con.close()
    cat = Catalog(path, create=False)
    try:  # the current code finds every photo by its path, wherever it sits in the tree
        found = cat.photo_ids_for_paths([root / rel for _pid, rel, *_ in PHOTOS])
        assert found == {root / rel: pid for pid, rel, *_ in PHOTOS}
        assert cat.integrity_check() == "ok"
    finally:
        cat.close()


def _version(path: Path) -> int:
    con = sqlite3.connect(path)
    try:
        return int(con.execute("PRAGMA user_version").fetchone()[0])
    finally:
        con.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "shoot"
    folder.mkdir()
    return folder.resolve()


def test_a_new_catalog_is_created_at_the_current_version_without_running_migrations(tmp_path, monkeypatch):
    def must_not_run(conn):
        raise AssertionError("a new catalog must not be built by running migrations")

    monkeypatch.setattr(schema, "MIGRATIONS", [must_not_run] * len(schema.MIGRATIONS))
    path = tmp_path / "new.sqlite"
    Catalog(path).close()
    assert _version(path) == schema.SCHEMA_VERSION
    assert {t for _type, t, _ in normalised_schema(path)["objects"] if _type == "table"} == set(
        schema.metadata.tables
    )


@pytest.mark.parametrize("version", range(1, schema.SCHEMA_VERSION))
def test_every_older_version_migrates_to_the_fresh_schema_with_its_rows(tmp_path, root, version):
    old = build_catalog_at(tmp_path / f"v{version}.sqlite", version, root)
    assert _version(old) == version
    Catalog(old).close()
    assert _version(old) == schema.SCHEMA_VERSION
    fresh = tmp_path / "fresh.sqlite"
    Catalog(fresh).close()
    assert normalised_schema(old) == normalised_schema(fresh)
    _check_v1_rows_survived(old, root)


def test_the_current_version_built_by_migrations_equals_a_fresh_catalog(tmp_path, root):
    """Migrations 1..N on an empty file give what metadata.create_all gives (no drift)."""
    built = build_catalog_at(tmp_path / "built.sqlite", schema.SCHEMA_VERSION, root)
    fresh = tmp_path / "fresh.sqlite"
    Catalog(fresh).close()
    assert normalised_schema(built) == normalised_schema(fresh)
    _check_v1_rows_survived(built, root)


def _add_stars_column(conn) -> None:
    """A real schema change for the tests: a new column computed from existing rows."""
    conn.exec_driver_sql("ALTER TABLE decisions ADD COLUMN stars_text TEXT")
    conn.exec_driver_sql(
        "UPDATE decisions SET stars_text = CASE WHEN rating < 0 THEN 'rejected' "
        "ELSE substr('*****', 1, rating) END"
    )
    conn.exec_driver_sql("CREATE INDEX ix_decisions_stars ON decisions (stars_text)")


@pytest.mark.parametrize("version", range(1, schema.SCHEMA_VERSION + 1))
def test_a_new_migration_runs_once_from_every_older_version(tmp_path, root, monkeypatch, version):
    old = build_catalog_at(tmp_path / f"v{version}.sqlite", version, root)
    ran: list[int] = []

    def step(conn) -> None:
        ran.append(schema.current_version(conn))
        _add_stars_column(conn)

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, step])
    monkeypatch.setattr(schema, "SCHEMA_VERSION", len(schema.MIGRATIONS))
    Catalog(old).close()
    Catalog(old).close()
    assert ran == [version], "the new step runs once, after the older ones, on the old version number"
    assert _version(old) == schema.SCHEMA_VERSION
    con = sqlite3.connect(old)
    stars = dict(con.execute("SELECT photo_id, stars_text FROM decisions").fetchall())
    con.close()
    assert stars == {1: "***", 2: "rejected"}
    _check_v1_rows_survived(old, root)


def test_a_migration_that_fails_half_way_leaves_the_old_version_intact(tmp_path, root, monkeypatch):
    path = build_catalog_at(tmp_path / "c.sqlite", schema.SCHEMA_VERSION, root)
    before = normalised_schema(path)

    def broken(conn) -> None:
        _add_stars_column(conn)
        conn.exec_driver_sql("DROP TABLE thumbnails")
        conn.exec_driver_sql("DELETE FROM decisions")
        raise RuntimeError("the power went out")

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, broken])
    monkeypatch.setattr(schema, "SCHEMA_VERSION", len(schema.MIGRATIONS))
    with pytest.raises(CatalogError, match="left unchanged") as info:
        Catalog(path)
    assert "the power went out" in str(info.value)
    monkeypatch.undo()
    assert _version(path) == schema.SCHEMA_VERSION
    assert normalised_schema(path) == before
    _check_v1_rows_survived(path, root)


def test_a_migration_killed_half_way_leaves_the_old_version_intact(tmp_path, root):
    """SIGKILL while a migration has already altered tables (not yet committed)."""
    path = build_catalog_at(tmp_path / "c.sqlite", schema.SCHEMA_VERSION, root)
    before = normalised_schema(path)
    script = textwrap.dedent(
        f"""
        import sys, time
        from clipiqa_desktop.catalog import Catalog, schema

        def slow(conn):
            conn.exec_driver_sql("ALTER TABLE decisions ADD COLUMN stars_text TEXT")
            conn.exec_driver_sql("UPDATE decisions SET stars_text = 'x'")
            conn.exec_driver_sql("DELETE FROM scores")
            print("migrating", flush=True)
            time.sleep(120)

        schema.MIGRATIONS.append(slow)
        schema.SCHEMA_VERSION = len(schema.MIGRATIONS)
        Catalog({str(path)!r})
        """
    )
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "migrating"
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert _version(path) == schema.SCHEMA_VERSION
    Catalog(path).close()  # opens (recovering the WAL) with the current code
    assert normalised_schema(path) == before
    _check_v1_rows_survived(path, root)


def test_a_newer_catalog_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "c.sqlite"
    Catalog(path).close()
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    con.commit()
    con.close()
    for readonly in (False, True):
        with pytest.raises(CatalogTooNew, match="newer than this program"):
            Catalog(path, readonly=readonly)
    assert _version(path) == schema.SCHEMA_VERSION + 1


def test_another_programs_database_is_not_written_into(tmp_path):
    path = tmp_path / "other.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE contacts (name TEXT)")
    con.execute("INSERT INTO contacts VALUES ('Ada')")
    con.commit()
    con.close()
    for readonly in (False, True):
        with pytest.raises(CatalogCorrupt, match="not a clipiqa-desktop catalog"):
            Catalog(path, readonly=readonly)
    con = sqlite3.connect(path)
    assert [r[0] for r in con.execute("SELECT name FROM sqlite_master")] == ["contacts"]
    con.close()


def test_a_reader_upgrades_an_older_catalog_where_it_may_write(tmp_path, root):
    if schema.SCHEMA_VERSION < 2:
        pytest.skip("needs a schema with at least two versions")
    old = build_catalog_at(tmp_path / "v1.sqlite", 1, root)
    Catalog(old, create=False, readonly=True).close()
    assert _version(old) == schema.SCHEMA_VERSION
    _check_v1_rows_survived(old, root)


def test_version_4_adds_camera_facts_unknown_for_older_photos_until_read_again(tmp_path, root):
    """v3 -> v4: every photo keeps its rows; exposure bias, subject distance and sub-second are
    NULL and meta_version NULL, so the readable photos are the ones whose facts an index reads again
    (the error photo has nothing to read); a photo written now carries META_VERSION."""
    from clipiqa_desktop.catalog import PhotoMeta, PhotoRecord
    from clipiqa_desktop.imaging.metadata import META_VERSION

    old = build_catalog_at(tmp_path / "v3.sqlite", 3, root)
    cat = Catalog(old)
    try:
        con = sqlite3.connect(old)
        facts = con.execute(
            "SELECT id, exposure_bias, subject_distance, subsec, meta_version, captured_at FROM photos "
            "ORDER BY id"
        ).fetchall()
        con.close()
        assert facts == [(pid, None, None, None, None, "2024-05-01T10:00:00") for pid, *_ in PHOTOS]
        folders = cat.folder_ids(root, recursive=True)
        assert cat.stale_meta(folders) == [1, 2, 3]  # 4 is the unreadable file
        g = cat.group_inputs(folders, 1, root=root)
        assert g.names == [rel for _pid, rel, *_ in PHOTOS]
        assert np.isnan(g.exposure_bias).all() and not np.isnan(g.times).any()
        assert list(g.has_embedding) == [True, True, True, False]
        fid = cat.folder_id(root)
        assert fid is not None
        meta = PhotoMeta("2024-05-01T10:00:00", exposure_bias=-0.5, subsec=0.5)
        scores = {"quality": _quality(1), "sharpness": 0.5}
        cat.write_batch(fid, 1, [PhotoRecord("a.jpg", 1000, 10**9, "fp-a", meta=meta, scores=scores)])
        con = sqlite3.connect(old)
        assert con.execute(
            "SELECT exposure_bias, subsec, meta_version FROM photos WHERE id = 1"
        ).fetchone() == (
            -0.5,
            0.5,
            META_VERSION,
        )
        con.close()
        assert cat.stale_meta(folders) == [2, 3]
    finally:
        cat.close()
    _check_v1_rows_survived(old, root)


# --- PostgreSQL: no SQLite history to migrate, but the same fresh schema and later migrations ------
def _pg_version(address: str) -> int:
    (row,) = raw.rows(address, "SELECT version FROM clipiqa_schema")
    return int(row[0])


def _pg_columns(address: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for table, column in raw.rows(
        address,
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema()",
    ):
        found.setdefault(str(table), set()).add(str(column))
    return found


def test_a_new_postgresql_catalog_is_created_at_the_current_version_and_reopens(postgres, monkeypatch):
    def must_not_run(conn):
        raise AssertionError("a new catalog must not be built by running migrations")

    monkeypatch.setattr(schema, "MIGRATIONS", [must_not_run] * len(schema.MIGRATIONS))
    address = postgres.database()
    with pytest.raises(CatalogError, match=r"no catalog in .* yet"):
        Catalog(address, create=False, readonly=True)  # a reader never creates one
    cat = Catalog(address)
    cat.save_prompt("eyes", "Eyes open.", "Eyes closed.")
    cat.close()
    assert _pg_version(address) == schema.SCHEMA_VERSION
    expected = {name: {c.name for c in table.columns} for name, table in schema.metadata.tables.items()}
    assert _pg_columns(address) == {**expected, "clipiqa_schema": {"version"}}
    for kwargs in ({"create": False}, {"create": False, "readonly": True}):
        again = Catalog(address, **kwargs)  # type: ignore[arg-type]
        try:
            assert again.prompts() == [("eyes", "Eyes open.", "Eyes closed.")]
            assert again.shared and again.path is None and again.address == address
        finally:
            again.close()
    assert _pg_version(address) == schema.SCHEMA_VERSION


def test_a_new_migration_runs_once_on_postgresql_and_a_reader_upgrades_first(postgres, monkeypatch):
    old = postgres.database()
    cat = Catalog(old)
    fid, aid = cat.folder_id(Path("/shoot")), cat.analysis_id("m", "512", 4, 100.0)
    assert fid is not None and aid is not None
    ids = cat.write_batch(fid, aid, [PhotoRecord(n, 1, 1, fingerprint=n) for n in ("a.jpg", "b.jpg")])
    cat.set_decisions({ids["a.jpg"]: Decision(rating=3), ids["b.jpg"]: Decision(rating=-1)})
    cat.close()
    ran: list[int] = []

    def step(conn) -> None:
        ran.append(schema.current_version(conn))
        _add_stars_column(conn)

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, step])
    monkeypatch.setattr(schema, "SCHEMA_VERSION", len(schema.MIGRATIONS))
    Catalog(old, create=False, readonly=True).close()  # upgraded once by a writer, then read
    Catalog(old).close()
    assert ran == [schema.SCHEMA_VERSION - 1], "the new step ran once, on the old version number"
    assert _pg_version(old) == schema.SCHEMA_VERSION
    stars = dict(raw.rows(old, "SELECT photo_id, stars_text FROM decisions"))
    assert stars == {ids["a.jpg"]: "***", ids["b.jpg"]: "rejected"}


def test_a_newer_postgresql_catalog_is_refused_and_left_alone(postgres):
    address = postgres.database()
    Catalog(address).close()
    raw.execute(address, "UPDATE clipiqa_schema SET version = :v", v=schema.SCHEMA_VERSION + 1)
    for readonly in (False, True):
        with pytest.raises(CatalogTooNew, match="newer than this program"):
            Catalog(address, readonly=readonly)
    assert _pg_version(address) == schema.SCHEMA_VERSION + 1
