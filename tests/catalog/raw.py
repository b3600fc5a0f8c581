"""Another connection to a test's catalog, whatever its backend: what "another process" does to the
catalog behind the code under test (deletes a row, writes a decision, holds the write lock), in SQL
that SQLite and PostgreSQL both accept, with named parameters (`:pid`) through SQLAlchemy's text().

`address` is the catalog_address fixture's value (or Catalog.address): an SQLite file, or a
postgresql:// URL. Each call opens its own engine and closes it again, as another program would.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event, text
from sqlalchemy.pool import NullPool

from clipiqa_desktop.catalog.connection import WRITE_LOCK_KEY, is_server_address, server_url


def is_postgresql(address: Path | str) -> bool:
    return is_server_address(str(address))


def engine(address: Path | str, autocommit: bool = False) -> Engine:
    """A fresh engine on the catalog (no pool: its connection closes with the block that used it).
    SQLite: foreign keys on, as the catalog's own connections have them (ON DELETE CASCADE)."""
    isolation = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
    if is_postgresql(address):
        url, _shown = server_url(str(address))
        return create_engine(url, poolclass=NullPool, **isolation)  # type: ignore[arg-type]
    made = create_engine(
        URL.create("sqlite", database=str(address)),
        poolclass=NullPool,
        connect_args={"check_same_thread": False, "timeout": 30},
        **isolation,  # type: ignore[arg-type]
    )

    @event.listens_for(made, "connect")
    def _foreign_keys(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA foreign_keys = ON")

    return made


def rows(address: Path | str, sql: str, **params: Any) -> list[tuple]:
    """The rows of one query, read in a connection of its own."""
    made = engine(address)
    try:
        with made.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]
    finally:
        made.dispose()


def execute(address: Path | str, sql: str, **params: Any) -> int:
    """One statement in a transaction of its own, committed; the number of rows it changed."""
    made = engine(address)
    try:
        with made.begin() as conn:
            return int(conn.execute(text(sql), params).rowcount)
    finally:
        made.dispose()


class WriteLock:
    """Another writer holding the catalog's write lock until `release` (SQLite: BEGIN IMMEDIATE;
    PostgreSQL: the transaction-level advisory lock every writer of the catalog takes first,
    connection.WRITE_LOCK_KEY). `execute` writes inside that transaction. Thread-safe, so a timer
    may release it."""

    def __init__(self, address: Path | str) -> None:
        self._engine = engine(address, autocommit=True)  # BEGIN and COMMIT spelt out below
        self._conn: Connection | None = self._engine.connect()
        self._guard = threading.Lock()
        if is_postgresql(address):
            self._conn.exec_driver_sql("BEGIN")
            self._conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK_KEY})
        else:
            self._conn.exec_driver_sql("BEGIN IMMEDIATE")

    def execute(self, sql: str, **params: Any) -> None:
        with self._guard:
            assert self._conn is not None, "released already"
            self._conn.execute(text(sql), params)

    def release(self, commit: bool = False) -> None:
        with self._guard:
            if self._conn is None:
                return
            try:
                self._conn.exec_driver_sql("COMMIT" if commit else "ROLLBACK")
            finally:
                self._conn.close()
                self._conn = None
                self._engine.dispose()


@contextmanager
def write_lock(address: Path | str, commit: bool = False) -> Iterator[WriteLock]:
    """Another writer holds the write lock for the block (its writes committed with `commit`)."""
    held = WriteLock(address)
    try:
        yield held
    except BaseException:
        held.release(commit=False)
        raise
    held.release(commit=commit)
