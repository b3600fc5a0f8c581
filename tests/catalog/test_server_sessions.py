"""What every connection to a PostgreSQL catalog is set up with, on the session's real server: READ
COMMITTED whatever the database's default (two writers in a row both succeed when the database
defaults to REPEATABLE READ), keepalives and an idle-transaction limit so a vanished machine's locks
are freed within about a minute, and addresses shown without their password."""

from __future__ import annotations

import threading
import time

import pytest

from clipiqa_desktop.catalog import Catalog, Decision, PhotoRecord
from clipiqa_desktop.catalog.connection import server_url
from clipiqa_desktop.culling.decisions import DecisionChange, change_fn

from . import raw


def _photo(catalog: Catalog, tmp_path) -> int:
    fid = catalog.folder_id(tmp_path)
    aid = catalog.analysis_id("m", "512", 4, 100.0)
    assert fid is not None and aid is not None
    return catalog.write_batch(fid, aid, [PhotoRecord("a.jpg", 1, 1, fingerprint="fp-a")])["a.jpg"]


def test_writers_read_committed_even_where_the_database_defaults_to_repeatable_read(postgres, tmp_path):
    address = postgres.database()
    name = address.rsplit("/", 1)[1]
    raw.execute(
        postgres.admin_url, f"ALTER DATABASE \"{name}\" SET default_transaction_isolation = 'repeatable read'"
    )
    first, second = Catalog(address), Catalog(address)
    try:
        pid = _photo(first, tmp_path)
        inside = threading.Event()
        errors: list[BaseException] = []

        def slow_stars(_pid: int, current: Decision) -> Decision:
            inside.set()
            time.sleep(0.8)  # holds the write lock while the second writer waits for it
            return change_fn(DecisionChange(stars=3))(_pid, current)

        def run_first() -> None:
            try:
                first.update_decisions([pid], slow_stars)
            except BaseException as exc:  # reported below
                errors.append(exc)

        t = threading.Thread(target=run_first)
        t.start()
        assert inside.wait(10)
        # waits for the lock, then must see the stars and raise the counter after the first writer
        second.update_decisions([pid], change_fn(DecisionChange(label="Red")))
        t.join(30)
        assert not errors, errors
        assert second.decisions([pid])[pid] == Decision(rating=3, label="Red")
        assert raw.rows(address, "SELECT current_setting('default_transaction_isolation')") == [
            ("repeatable read",)
        ], "the database default stays the administrator's"
    finally:
        first.close()
        second.close()


def test_every_connection_has_keepalives_and_an_idle_transaction_limit(postgres):
    catalog = Catalog(postgres.database())
    try:
        with catalog.engine.connect() as conn:
            got = {
                name: conn.exec_driver_sql(f"SHOW {name}").scalar_one()
                for name in (
                    "tcp_keepalives_idle",
                    "idle_in_transaction_session_timeout",
                    "transaction_isolation",
                )
            }
    finally:
        catalog.close()
    assert got == {
        "tcp_keepalives_idle": "30",
        "idle_in_transaction_session_timeout": "1min",
        "transaction_isolation": "read committed",
    }


def test_an_address_is_shown_without_its_password():
    url, shown = server_url("postgresql://editor:s3cret@studio-db:5433/catalog")
    assert shown == "postgresql://editor@studio-db:5433/catalog"
    assert url.password == "s3cret" and url.drivername == "postgresql+psycopg"


def test_a_mistyped_address_is_named_and_never_made_a_file(tmp_path, monkeypatch):
    from clipiqa_desktop.catalog import CatalogCannotOpen

    monkeypatch.chdir(tmp_path)
    for typo in ("postgresq://editor@db/catalog", "postgresql:/editor@db/catalog", "mysql://db/catalog"):
        with pytest.raises(CatalogCannotOpen, match="neither a catalog file nor a PostgreSQL address"):
            Catalog(typo)
    assert list(tmp_path.iterdir()) == []


def test_hints_name_the_catalog_without_its_password(postgres, tmp_path, capsys):
    from clipiqa_desktop.cli import main

    address = postgres.database().replace("clipiqa@", "clipiqa:SECRET@")  # the test server trusts any
    Catalog(address).close()  # the catalog exists (its first index made it)
    folder = tmp_path / "unindexed"
    folder.mkdir()
    assert main(["list", str(folder), "--catalog", address]) == 2
    err = capsys.readouterr().err
    bare = address.replace(":SECRET@", "@")
    assert f"is not in the catalog {bare}; run `clipiqa-desktop index" in err
    assert f"--catalog {bare}`" in err and "SECRET" not in err and "None" not in err
    assert main(["list", str(tmp_path / "nowhere"), "--catalog", address]) == 2
    err = capsys.readouterr().err
    assert f"the catalog {bare} has no such folder" in err and "SECRET" not in err


def test_a_connection_lost_while_the_moves_lock_is_held_does_not_hide_the_error(postgres, tmp_path):
    from clipiqa_desktop.catalog.moves import moves_lock

    address = postgres.database()
    catalog = Catalog(address)
    name = address.rsplit("/", 1)[1]
    try:
        with pytest.raises(RuntimeError, match="the run's own error"), moves_lock(catalog, shared=True):
            # the server ends every session of this database (as a stopped server or a lost network)
            raw.execute(
                postgres.admin_url,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :db",
                db=name,
            )
            raise RuntimeError("the run's own error")
        with moves_lock(catalog):  # the server freed the lock with the session
            pass
    finally:
        catalog.close()
