"""Catalog failures on real SQLite files: each kind by its error code, with a message a photographer
can act on, and nothing lost. Busy, full (SQLite's page limit, and a real full tmpfs where the
machine lets the test mount one), read-only (a read-only bind mount as root, file modes otherwise),
damaged, another program's database; where a catalog may be created; a failed first `index`. The
busy tests run on PostgreSQL too (both_backends); its other failures are test_server_errors.py's.
"""

from __future__ import annotations

import errno
import gc
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event

from clipiqa_desktop.catalog import (
    Catalog,
    CatalogBusy,
    CatalogCannotOpen,
    CatalogCorrupt,
    CatalogError,
    CatalogFull,
    CatalogIOError,
    CatalogReadOnly,
    default_catalog_path,
)
from clipiqa_desktop.catalog import connection as connection_module
from clipiqa_desktop.catalog.errors import explain
from clipiqa_desktop.cli import main

from ..conftest import TINY_ARGS, app_command, photo
from . import raw

SIZE = ["--size", "64"]


def _sqlite_error(kind: type[sqlite3.Error], message: str, code: int, name: str) -> sqlite3.Error:
    exc = kind(message)
    exc.sqlite_errorcode = code  # type: ignore[attr-defined]
    exc.sqlite_errorname = name  # type: ignore[attr-defined]
    return exc


def _shoot(folder: Path, n: int, size: tuple[int, int] = (320, 240), first_seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"IMG_{i:04d}.jpg"
        photo(*size, seed=first_seed + i).save(path, quality=95)
        paths.append(path)
    return paths


def _run(*args: str, catalog: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """The real CLI in a process of its own; `index` with the tiny model, other commands plain."""
    command = (
        app_command(*args, catalog=catalog)
        if args[0] == "index"
        else [sys.executable, "-m", "clipiqa_desktop", *args, "--catalog", str(catalog)]
    )
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def _integrity(db: Path) -> str:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return str(con.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        con.close()


def _scored_photos(db: Path) -> int:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(con.execute("SELECT count(DISTINCT photo_id) FROM scores").fetchone()[0])
    finally:
        con.close()


# --- the classification: error codes, never the words of the message ------------------------------
@pytest.mark.parametrize(
    ("exc", "expected", "words"),
    [
        # the words say "locked", the code says full: the code wins
        (
            _sqlite_error(sqlite3.OperationalError, "database is locked", 13, "SQLITE_FULL"),
            CatalogFull,
            "full",
        ),
        (_sqlite_error(sqlite3.OperationalError, "x", 5, "SQLITE_BUSY"), CatalogBusy, "another program"),
        (_sqlite_error(sqlite3.OperationalError, "x", 6, "SQLITE_LOCKED"), CatalogBusy, "another program"),
        (_sqlite_error(sqlite3.OperationalError, "x", 517, "SQLITE_BUSY_SNAPSHOT"), CatalogBusy, "try again"),
        (_sqlite_error(sqlite3.OperationalError, "x", 8, "SQLITE_READONLY"), CatalogReadOnly, "read-only"),
        (_sqlite_error(sqlite3.OperationalError, "x", 1288, "SQLITE_READONLY_CANTINIT"), CatalogReadOnly, ""),
        (_sqlite_error(sqlite3.DatabaseError, "x", 11, "SQLITE_CORRUPT"), CatalogCorrupt, "damaged"),
        (_sqlite_error(sqlite3.DatabaseError, "x", 26, "SQLITE_NOTADB"), CatalogCorrupt, "not a clipiqa"),
        (_sqlite_error(sqlite3.OperationalError, "x", 778, "SQLITE_IOERR_WRITE"), CatalogIOError, "drive"),
        (_sqlite_error(sqlite3.OperationalError, "x", 14, "SQLITE_CANTOPEN"), CatalogCannotOpen, "open"),
        (OSError(errno.ENOSPC, "No space left on device"), CatalogFull, "free some space"),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), CatalogFull, "full"),
        (OSError(errno.EROFS, "Read-only file system"), CatalogReadOnly, "read-only"),
        (OSError(errno.EIO, "Input/output error"), CatalogIOError, "disconnected"),
    ],
)
def test_failures_are_classified_by_their_code(tmp_path, exc, expected, words):
    err = explain(exc, tmp_path / "catalog.sqlite")
    assert type(err) is expected
    assert words.lower() in str(err).lower()
    assert "database is locked" not in str(err)


def test_sqlalchemy_wrapped_errors_are_classified_too(tmp_path):
    from sqlalchemy.exc import OperationalError

    orig = _sqlite_error(sqlite3.OperationalError, "database or disk is full", 13, "SQLITE_FULL")
    assert type(explain(OperationalError("INSERT", {}, orig), tmp_path / "c.sqlite")) is CatalogFull


# --- busy: wait and retry, never "database is locked" ----------------------------------------------
@contextmanager
def _write_lock_held(db: Path | str, seconds: float | None) -> Iterator[threading.Event]:
    """Another connection holds the catalog's write lock (SQLite's BEGIN IMMEDIATE, PostgreSQL's
    advisory lock: raw.WriteLock) for `seconds`, or until the yielded event is set."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with raw.write_lock(db, commit=True) as held:
            held.execute("INSERT INTO prompts VALUES ('held', 'a', 'b', 0)")
            taken.set()
            release.wait(seconds)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert taken.wait(10)
        yield release
    finally:
        release.set()
        thread.join()


@pytest.mark.both_backends
def test_a_writer_retries_while_another_process_holds_the_lock_longer_than_the_busy_timeout(
    catalog_address, monkeypatch
):
    monkeypatch.setattr(connection_module, "BUSY_TIMEOUT_MS", 100)  # SQLite gives up after 0.1 s
    cat = Catalog(catalog_address)
    try:
        with _write_lock_held(cat.address, seconds=1.5):
            cat.save_prompt("mine", "Sharp.", "Blurry.")  # waits for the lock, then writes
        assert {k for k, _p, _n in cat.prompts()} == {"held", "mine"}
    finally:
        cat.close()


@pytest.mark.both_backends  # PostgreSQL: the advisory write lock's lock_timeout
def test_a_catalog_busy_beyond_the_retry_is_a_clear_busy_error(catalog_address, monkeypatch):
    monkeypatch.setattr(connection_module, "BUSY_TIMEOUT_MS", 50)
    monkeypatch.setattr(connection_module, "WRITE_RETRY_SECONDS", 0.4)
    cat = Catalog(catalog_address)
    try:
        with _write_lock_held(cat.address, seconds=None), pytest.raises(CatalogBusy) as info:
            cat.save_prompt("mine", "Sharp.", "Blurry.")
        assert "locked" not in str(info.value) and "try again" in str(info.value)
        assert info.value.kind == "busy"
        cat.save_prompt("mine", "Sharp.", "Blurry.")  # the lock is free again: it works
        assert {k for k, _p, _n in cat.prompts()} == {"held", "mine"}
    finally:
        cat.close()


# --- full: SQLite's own page limit (anywhere), and a real full file system (where allowed) ---------
def test_a_full_catalog_is_a_clear_error_and_loses_nothing(tmp_path):
    cat = Catalog(tmp_path / "c.sqlite")
    cat.save_prompt("before", "Sharp.", "Blurry.")
    with cat.engine.connect() as conn:
        pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())

    def limit(dbapi_conn, _record) -> None:  # SQLite answers SQLITE_FULL beyond this many pages
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages + 2}")

    cat.engine.dispose()
    event.listen(cat.engine, "connect", limit)
    big = {f"prompt {i}": np.full(20_000, 0.5, dtype=np.float32) for i in range(4)}
    with pytest.raises(CatalogFull) as info:
        cat.store_text_features("m", big)
    assert "full" in str(info.value) and "Nothing was lost" in str(info.value)
    assert info.value.kind == "full"
    assert cat.integrity_check() == "ok"
    assert cat.text_features("m", list(big)) == {}, "the failed transaction wrote nothing"
    assert [k for k, _p, _n in cat.prompts()] == ["before"]
    event.remove(cat.engine, "connect", limit)
    cat.engine.dispose()
    cat.store_text_features("m", big)  # space again: the same write succeeds
    assert set(cat.text_features("m", list(big))) == set(big)
    cat.close()


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, timeout=30)


def _umount(target: Path) -> None:
    for _ in range(50):
        if subprocess.run(["umount", str(target)], capture_output=True, timeout=30).returncode == 0:
            return
        time.sleep(0.1)
    subprocess.run(["umount", "-l", str(target)], capture_output=True, timeout=30)


@contextmanager
def small_disk(where: Path, megabytes: int) -> Iterator[Path]:
    """A real file system of `megabytes` (tmpfs) mounted at `where`; skips where mounting is refused."""
    where.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small file system needs root")
    try:
        _mount("-t", "tmpfs", "-o", f"size={megabytes}m,mode=0755", "tmpfs", str(where))
    except (subprocess.CalledProcessError, OSError) as exc:
        pytest.skip(f"this machine refuses to mount a small file system: {exc}")
    try:
        yield where
    finally:
        _umount(where)


def test_a_really_full_disk_stops_index_clearly_keeps_the_catalog_and_the_run_resumes(tmp_path):
    with small_disk(tmp_path / "disk", 3) as disk:
        db = disk / "catalog.sqlite"
        first = _shoot(tmp_path / "first", 2)
        done = _run("index", str(first[0].parent), *SIZE, catalog=db)
        assert done.returncode == 0, done.stderr
        assert _run("rate", str(first[0]), "--stars", "4", catalog=db).returncode == 0
        # Fill the disk, but for 64 KiB: far less than 40 thumbnails need.
        free = shutil.disk_usage(disk).free
        ballast = disk / "ballast"
        ballast.write_bytes(b"\0" * (free - 64 * 1024))
        second = _shoot(tmp_path / "second", 40, first_seed=100)
        full = _run("index", str(second[0].parent), *SIZE, "--batch-size", "4", catalog=db)
        assert full.returncode == 2, full.stderr
        assert "is full" in full.stderr and "Nothing was lost" in full.stderr, full.stderr
        assert "Traceback" not in full.stderr and "locked" not in full.stderr
        assert _integrity(db) == "ok"
        listed = _run("list", str(first[0].parent), "--format", "json", catalog=db)
        assert listed.returncode == 0, listed.stderr
        assert '"rating": 4' in listed.stdout, "the decision made before the full disk is there"
        ballast.unlink()  # the photographer frees some space and runs index again
        again = _run("index", str(second[0].parent), *SIZE, "--batch-size", "4", catalog=db)
        assert again.returncode == 0, again.stderr
        assert _integrity(db) == "ok"
        assert _scored_photos(db) == 2 + 40


# --- read-only: a clear error before any work; readers still read ----------------------------------
@contextmanager
def read_only_view(folder: Path, view: Path) -> Iterator[Path]:
    """`folder` seen read-only at `view`: a read-only bind mount as root (root ignores file modes),
    the write bits removed otherwise. Skips where neither can be had."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in (folder, *folder.iterdir())}
        for p, mode in modes.items():
            p.chmod(mode & ~0o222)
        try:
            yield folder
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    view.mkdir()
    try:
        _mount("--bind", str(folder), str(view))
    except (subprocess.CalledProcessError, OSError) as exc:
        pytest.skip(f"this machine refuses a bind mount: {exc}")
    try:
        _mount("-o", "remount,bind,ro", str(view))
        yield view
    finally:
        _umount(view)


@pytest.fixture
def indexed(tmp_path) -> tuple[Path, Path]:
    """(shoot folder, catalog) indexed in-process with the tiny model, one photo picked."""
    shoot = tmp_path / "shoot"
    paths = _shoot(shoot, 3, size=(160, 120))
    store = tmp_path / "store"
    store.mkdir()
    db = store / "catalog.sqlite"
    assert main(["index", str(shoot), "--catalog", str(db), *TINY_ARGS, *SIZE]) == 0
    assert main(["rate", str(paths[1]), "--pick", "--catalog", str(db)]) == 0
    gc.collect()  # the commands' catalogs are closed, as at the end of a CLI process: no -wal left
    return shoot, db


def test_index_into_a_read_only_place_fails_clearly_before_loading_the_model(tmp_path, indexed):
    shoot, db = indexed
    more = _shoot(tmp_path / "more", 2, size=(160, 120), first_seed=50)[0].parent
    with read_only_view(db.parent, tmp_path / "ro") as ro:
        code = (
            "import sys\n"
            "from clipiqa_desktop.cli import main\n"
            f"rc = main({['index', str(more), '--catalog', str(ro / db.name), *TINY_ARGS, *SIZE]!r})\n"
            "print('torch loaded' if 'torch' in sys.modules else 'no torch')\n"
            "sys.exit(rc)\n"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        assert result.returncode == 2, result.stderr
        assert "cannot be written" in result.stderr and "read-only" in result.stderr, result.stderr
        assert result.stdout.strip() == "no torch", "the model must not load for a run that cannot write"
        assert "Traceback" not in result.stderr
        rate = _run("rate", str(shoot / "IMG_0000.jpg"), "--reject", catalog=ro / db.name)
        assert rate.returncode == 2 and "read-only" in rate.stderr and "Traceback" not in rate.stderr


@pytest.mark.parametrize("writer_open", [False, True], ids=["closed-cleanly", "window-has-it-open"])
def test_a_read_only_catalog_can_still_be_listed_and_exported(tmp_path, indexed, writer_open, capsys):
    shoot, db = indexed
    wal = db.with_name(db.name + "-wal")
    writer = Catalog(db, create=False) if writer_open else None  # e.g. the window on another mount
    try:
        if writer is not None:
            writer.prompts()  # a connection is open: the -wal and -shm exist
            assert wal.exists()
        else:
            assert not wal.exists(), "closed cleanly: no -wal, so SQLite cannot use WAL read-only"
        with read_only_view(db.parent, tmp_path / "ro") as ro:
            capsys.readouterr()
            assert main(["list", str(shoot), "--format", "json", "--catalog", str(ro / db.name)]) == 0
            out = capsys.readouterr().out
            assert out.count('"path"') == 3 and out.count('"picked": true') == 1
            csv_path = tmp_path / "out.csv"
            assert main(["export", str(shoot), "--csv", str(csv_path), "--catalog", str(ro / db.name)]) == 0
            assert len(csv_path.read_text().splitlines()) == 4
            assert sorted(p.name for p in (ro.iterdir())) == sorted(p.name for p in db.parent.iterdir())
    finally:
        if writer is not None:
            writer.close()
    assert _integrity(db) == "ok"


def test_a_catalog_opened_read_only_refuses_writes_clearly(tmp_path, indexed):
    _shoot_folder, db = indexed
    cat = Catalog(db, create=False, readonly=True)
    try:
        with pytest.raises(CatalogReadOnly, match="cannot be written"):
            cat.save_prompt("k", "a", "b")
        cat.store_text_features("m", {"a": np.ones(4, dtype=np.float32)})  # a cache: silently not kept
        assert cat.prompts() == []
    finally:
        cat.close()


# --- damaged files ------------------------------------------------------------------------------------
def test_a_damaged_catalog_is_reported_as_damaged(tmp_path):
    path = tmp_path / "c.sqlite"
    cat = Catalog(path)
    for i in range(300):  # several pages of rows
        cat.save_prompt(f"k{i}", "positive " * 20, "negative " * 20)
    cat.close()
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 6 * page
    data[3 * page : len(data)] = os.urandom(len(data) - 3 * page)  # header and schema pages survive
    path.write_bytes(bytes(data))
    with pytest.raises(CatalogCorrupt, match="damaged") as info:
        cat = Catalog(path, create=False)
        try:
            cat.prompts()
        finally:
            cat.close()
    assert "choose another --catalog" in str(info.value)


def test_a_file_that_is_not_a_database(tmp_path):
    bogus = tmp_path / "notes.sqlite"
    bogus.write_text("just text, not a database " * 100)
    for readonly in (False, True):
        with pytest.raises(CatalogCorrupt, match="not a clipiqa-desktop catalog"):
            Catalog(bogus, readonly=readonly)
    assert bogus.read_text().startswith("just text"), "left as it was"


# --- where a catalog may be created --------------------------------------------------------------------
@pytest.mark.parametrize("where", ["tmp", "root"])
def test_catalog_never_creates_folders(tmp_path, where, capsys):
    base = tmp_path if where == "tmp" else Path("/")
    missing = base / "no-such-folder-clipiqa" / "deeper"
    assert not missing.parent.exists()
    shoot = _shoot(tmp_path / "shoot", 1, size=(64, 48))[0].parent
    assert main(["index", str(shoot), "--catalog", str(missing / "c.sqlite"), *TINY_ARGS, *SIZE]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
    assert not missing.parent.exists()


def test_the_default_catalog_folder_is_created(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    path = default_catalog_path()
    assert path.is_relative_to(tmp_path / "data") and not path.parent.exists()
    Catalog(path).close()
    assert path.is_file()


def test_a_folder_given_as_catalog_is_explained(tmp_path):
    with pytest.raises(CatalogCannotOpen, match="is a folder"):
        Catalog(tmp_path)


def test_a_missing_catalog_is_not_created_by_readers(tmp_path, capsys):
    db = tmp_path / "typo.sqlite"
    shoot = _shoot(tmp_path / "shoot", 1, size=(64, 48))[0].parent
    for command in (["list", str(shoot)], ["export", str(shoot), "--csv", "-"]):
        assert main([*command, "--catalog", str(db)]) == 2
        assert "there is no catalog" in capsys.readouterr().err
    assert not db.exists()


# --- a failed first index leaves no catalog file --------------------------------------------------------
def test_a_failed_first_index_leaves_no_catalog_behind(tmp_path, capsys):
    shoot = _shoot(tmp_path / "shoot", 2, size=(64, 48))[0].parent
    weights = tmp_path / "broken.pt"
    weights.write_bytes(b"this is not a checkpoint" * 100)
    db = tmp_path / "c.sqlite"
    args = ["index", str(shoot), "--catalog", str(db), "--weights", str(weights), "--device", "cpu", *SIZE]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.pt", "shoot"], "no catalog, no -wal/-shm"


def test_a_failed_index_never_removes_an_existing_catalog(tmp_path, capsys):
    db = tmp_path / "c.sqlite"
    cat = Catalog(db)
    cat.save_prompt("mine", "Sharp.", "Blurry.")
    cat.close()
    shoot = _shoot(tmp_path / "shoot", 1, size=(64, 48))[0].parent
    weights = tmp_path / "broken.pt"
    weights.write_bytes(b"not a checkpoint")
    assert (
        main(["index", str(shoot), "--catalog", str(db), "--weights", str(weights), "--device", "cpu"]) == 2
    )
    capsys.readouterr()
    cat = Catalog(db, create=False)
    assert [k for k, _p, _n in cat.prompts()] == ["mine"]
    cat.close()


def test_catalog_errors_are_catalog_errors():
    for cls in (CatalogBusy, CatalogFull, CatalogReadOnly, CatalogCorrupt, CatalogIOError, CatalogCannotOpen):
        assert issubclass(cls, CatalogError)


def test_a_new_catalog_on_a_full_disk_is_a_clear_error_and_leaves_no_file(tmp_path):
    with small_disk(tmp_path / "disk", 1) as disk:
        ballast = disk / "ballast"
        with ballast.open("wb", buffering=0) as f:  # fill it to the last byte
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        with pytest.raises(CatalogFull, match="is full"):
            Catalog(disk / "catalog.sqlite")
        assert sorted(p.name for p in disk.iterdir()) == ["ballast"]
        ballast.unlink()
        Catalog(disk / "catalog.sqlite").close()  # with space, the same call creates it


def test_an_older_catalog_on_read_only_media_says_it_needs_one_upgrade(tmp_path):
    from clipiqa_desktop.catalog import schema

    from .test_schema import build_catalog_at

    if schema.SCHEMA_VERSION < 2:
        pytest.skip("needs a schema with at least two versions")
    store = tmp_path / "store"
    store.mkdir()
    build_catalog_at(store / "c.sqlite", 1, tmp_path)
    with read_only_view(store, tmp_path / "ro") as ro, pytest.raises(CatalogReadOnly, match="upgraded once"):
        Catalog(ro / "c.sqlite", create=False, readonly=True)


def test_a_default_data_folder_that_cannot_be_made_is_explained(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "keep").write_text("x")
    with read_only_view(home, tmp_path / "ro") as ro:
        monkeypatch.setenv("XDG_DATA_HOME", str(ro / "data"))
        with pytest.raises(CatalogReadOnly, match="read-only"):
            Catalog(default_catalog_path())
    assert sorted(p.name for p in home.iterdir()) == ["keep"]


def test_a_catalog_path_with_spaces_accents_emoji_and_uri_characters_opens_read_only(tmp_path):
    folder = tmp_path / "Fotos é 📷 #1 ?x=%20"
    folder.mkdir()
    cat = Catalog(folder / "my catalog.sqlite")
    cat.save_prompt("k", "Sharp.", "Blurry.")
    cat.close()
    reader = Catalog(folder / "my catalog.sqlite", create=False, readonly=True)
    try:
        assert reader.path == (folder / "my catalog.sqlite").resolve()
        assert [k for k, _p, _n in reader.prompts()] == ["k"]
    finally:
        reader.close()
    assert {p.name.split(".sqlite")[0] for p in folder.iterdir()} == {"my catalog"}, "no stray files"
