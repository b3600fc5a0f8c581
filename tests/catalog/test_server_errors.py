"""What goes wrong with a PostgreSQL catalog reaches the user as one clear CatalogError (the CLI: one
line on stderr, exit 2, no traceback), on the session's real server (tests/pg_server.py): a server
that is not running, a database that does not exist, a read-only open that tries to write, a
database holding another program's tables, and an install without the [studio] extra. A write
lock held too long is tests/catalog/test_errors.py's busy tests, which run on both backends.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from clipiqa_desktop.catalog import (
    Catalog,
    CatalogCannotOpen,
    CatalogCorrupt,
    CatalogReadOnly,
    Decision,
    PhotoRecord,
)
from clipiqa_desktop.culling.decisions import DecisionChange, change_fn

from . import raw


def _cli(*args: str, prelude: str = "") -> subprocess.CompletedProcess:
    """The real CLI in a process of its own (after `prelude`, Python run first)."""
    code = f"import sys\n{prelude}\nfrom clipiqa_desktop.cli import main\nsys.exit(main({list(args)!r}))\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def _one_clear_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert done.stdout == ""
    return lines[0]


def _refused_address() -> str:
    """A PostgreSQL address on loopback where no server listens (a free port)."""
    from tests.pg_server import _free_port

    return f"postgresql://clipiqa@127.0.0.1:{_free_port()}/catalog"


def test_a_server_that_is_not_running_is_one_line_and_exit_2(tmp_path):
    pytest.importorskip("psycopg")
    address = _refused_address()
    with pytest.raises(CatalogCannotOpen, match="cannot reach the catalog") as info:
        Catalog(address)
    assert "Connection refused" in str(info.value) and info.value.kind == "cannot-open"
    line = _one_clear_line(_cli("list", str(tmp_path), "--catalog", address))
    assert "cannot reach the catalog" in line and "Check that the PostgreSQL server runs" in line


def test_a_database_that_does_not_exist_is_named(postgres, tmp_path):
    address = postgres.database().rsplit("/", 1)[0] + "/no_such_catalog"
    for readonly in (False, True):
        with pytest.raises(CatalogCannotOpen, match='database "no_such_catalog" does not exist'):
            Catalog(address, create=not readonly, readonly=readonly)
    line = _one_clear_line(_cli("list", str(tmp_path), "--catalog", address))
    assert "no_such_catalog" in line and "address" in line


def test_a_read_only_open_that_writes_is_refused_and_changes_nothing(postgres, tmp_path):
    address = postgres.database()
    writer = Catalog(address)
    writer.save_prompt("eyes", "Eyes open.", "Eyes closed.")
    fid = writer.folder_id(tmp_path)
    aid = writer.analysis_id("m", "512", 4, 100.0)
    assert fid is not None and aid is not None
    pid = writer.write_batch(fid, aid, [PhotoRecord("a.jpg", 1, 1, fingerprint="fp-a")])["a.jpg"]
    writer.close()
    reader = Catalog(address, create=False, readonly=True)
    try:
        with pytest.raises(CatalogReadOnly, match="open read-only here") as info:
            reader.save_prompt("other", "a", "b")
        assert info.value.kind == "read-only"
        with pytest.raises(CatalogReadOnly, match="Nothing was changed"):
            reader.update_decisions([pid], change_fn(DecisionChange(stars=3)))
        reader.store_text_features("m", {"a": np.ones(4, np.float32)})  # a cache: silently not kept
        assert reader.prompts() == [("eyes", "Eyes open.", "Eyes closed.")]
        assert reader.text_features("m", ["a"]) == {}
        assert reader.decisions([pid]) == {pid: Decision()}
    finally:
        reader.close()


def test_a_database_of_another_program_is_refused_and_left_alone(postgres, tmp_path):
    address = postgres.database()
    raw.execute(address, "CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
    raw.execute(address, "INSERT INTO invoices VALUES (1, 9.5)")
    for kwargs in ({}, {"create": False}, {"create": False, "readonly": True}):
        with pytest.raises(CatalogCorrupt, match=r"another program.*invoices"):
            Catalog(address, **kwargs)  # type: ignore[arg-type]
    line = _one_clear_line(_cli("list", str(tmp_path), "--catalog", address))
    assert "not a clipiqa-desktop catalog" in line and "Choose an empty database" in line
    tables = raw.rows(address, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    assert tables == [("invoices",)], "nothing was created beside another program's tables"
    assert raw.rows(address, "SELECT id, amount FROM invoices") == [(1, 9.5)]


def test_without_psycopg_a_postgresql_catalog_names_the_studio_extra(tmp_path):
    # sys.modules[name] = None makes `import psycopg` raise ImportError, as in a desktop install
    done = _cli(
        "list", str(tmp_path), "--catalog", _refused_address(), prelude="sys.modules['psycopg'] = None"
    )
    line = _one_clear_line(done)
    assert "needs the [studio] extra" in line and "pip install 'clipiqa-desktop[studio]'" in line
