"""Opening the catalog's SQLite file: where it may be created, pragmas, transactions, retries.

SQLite in WAL mode (readers never block the one writer), foreign keys on, synchronous=FULL (a
committed decision survives a power cut), a busy timeout so a second process waits instead of
failing. Writers start with BEGIN IMMEDIATE, retried with backoff for up to WRITE_RETRY_SECONDS
while another process holds the write lock, so two indexers and a `rate` on one catalog all
succeed and "database is locked" never reaches the user.

Readers (`list`, `export`) open the catalog read-only (SQLite URI `mode=ro`), so a catalog on a
read-only drive or share can still be listed; when its folder is read-only and no -wal file exists
(the catalog was closed cleanly), SQLite cannot create the -shm it needs for WAL and the catalog is
opened `immutable=1` instead (nobody can be writing into a read-only folder).

A writer checks before any work that the catalog's file and folder can be written, so `index`
fails with a clear message before it loads a model. `--catalog` never creates folders, except the
per-user data folder of the default catalog. A catalog created by a run that then failed before
writing any photo is removed again (`discard_if_unused`), so a failed first `index` leaves nothing.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import QueuePool

from . import dialect, schema
from .errors import (
    SQLITE_CANTOPEN,
    CatalogCannotOpen,
    CatalogCorrupt,
    CatalogError,
    CatalogReadOnly,
    CatalogTooNew,
    explain,
    is_busy,
    primary_code,
    read_only_message,
)

BUSY_TIMEOUT_MS = 15_000  # SQLite's own wait for a lock, per attempt
WRITE_RETRY_SECONDS = 30.0  # how long a writer keeps trying to get the write lock, in all
_RETRY_FIRST_DELAY, _RETRY_MAX_DELAY = 0.05, 1.0


def default_catalog_path() -> Path:
    """The per-user catalog: e.g. ~/.local/share/clipiqa-desktop/catalog.sqlite on Linux."""
    from platformdirs import user_data_path

    return user_data_path("clipiqa-desktop", appauthor=False) / "catalog.sqlite"


def _sidecars(path: Path) -> tuple[Path, Path]:
    return path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


def _writable(path: Path) -> bool:
    """True when this process may write the catalog `path` (and create its -wal/-shm beside it)."""
    folder = path.parent
    if path.exists() and not os.access(path, os.W_OK):
        return False
    if os.access(folder, os.W_OK | os.X_OK):
        return True
    # A read-only folder is fine while the WAL files exist and can be written (SQLite reuses them).
    wal, shm = _sidecars(path)
    return path.exists() and all(p.exists() and os.access(p, os.W_OK) for p in (wal, shm))


# "postgresq://…", "postgresql:/…" (what Path makes of "postgresql://…"), "mysql://…"
_LIKE_ADDRESS = re.compile(r"(?i)^(postgres\w*|pg|psql)(\+\w+)?:")


def check_location(path: Path | str, create: bool, readonly: bool = False) -> tuple[Path, bool]:
    """(resolved path, exists) of a catalog about to be opened; CatalogError when it cannot be.

    Only the default catalog's own data folder is ever created; a --catalog elsewhere needs an
    existing folder (a typo must not create folders anywhere, even under /).
    """
    if "://" in str(path) or _LIKE_ADDRESS.match(str(path)):  # a mistyped address, not a file name
        raise CatalogCannotOpen(
            f"{path} is neither a catalog file nor a PostgreSQL address; write "
            "postgresql://USER@HOST[:PORT]/DATABASE"
        )
    path = Path(path).expanduser().resolve()
    if path.is_dir():
        raise CatalogCannotOpen(f"{path} is a folder; give a file name, e.g. {path / 'catalog.sqlite'}")
    exists = path.exists()
    if not exists:
        if not create:
            raise CatalogCannotOpen(
                f"there is no catalog at {path} (`clipiqa-desktop index FOLDER` creates it)"
            )
        folder = path.parent
        if not folder.is_dir():
            default = default_catalog_path().expanduser().resolve()
            if path == default:
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                except OSError as exc:  # a full disk, a read-only home, ...: by its errno
                    raise explain(exc, path) from exc
            elif folder.exists():
                raise CatalogCannotOpen(f"cannot create the catalog {path}: {folder} is a file, not a folder")
            else:
                raise CatalogCannotOpen(
                    f"cannot create the catalog {path}: the folder {folder} does not exist "
                    "(create it first, or choose another --catalog; folders are never created "
                    "for a --catalog)"
                )
    if not readonly and not _writable(path):
        raise CatalogReadOnly(read_only_message(path))
    return path, exists


def open_engine(path: Path, exists: bool, readonly: bool) -> Engine:
    """The engine of a checked catalog, its schema created or brought up to date.

    Raises CatalogError (of the right kind) for anything that stops the catalog from being used.
    """
    if readonly:
        return _open_readonly(path)
    engine = _engine(path)
    version = 0
    try:
        with transaction(engine, path, write=True) as conn:
            version = schema.current_version(conn)
            schema.migrate(conn)
    except schema.SchemaTooNew as exc:
        engine.dispose()
        raise CatalogTooNew(str(exc)) from exc
    except schema.NotACatalog as exc:
        engine.dispose()
        raise CatalogCorrupt(f"{path} is not a clipiqa-desktop catalog: {exc}") from exc
    except CatalogError:
        engine.dispose()
        if not exists:  # never leave an empty file behind for a catalog that could not be made
            _remove_catalog_files(path)
        raise
    except Exception as exc:  # a migration that failed: its transaction was rolled back
        engine.dispose()
        if not exists:
            _remove_catalog_files(path)
            raise CatalogError(f"creating the catalog {path} failed: {exc!r}") from exc
        raise CatalogError(
            f"upgrading the catalog {path} from version {version} to {schema.SCHEMA_VERSION} failed "
            f"({type(exc).__name__}: {exc}); it was left unchanged at version {version}. Please "
            "report this with the message"
        ) from exc
    return engine


def _engine(path: Path) -> Engine:
    # SQLAlchemy's pool for SQLite files hands each unit of work a connection of its own (one
    # thread at a time). Keeping connections open also keeps the WAL file: closing the last one
    # would checkpoint and delete it on every keypress.
    # URL.create: a folder named "Shoot #1 ?" must not be parsed as a URL's query or fragment.
    engine = create_engine(URL.create("sqlite", database=str(path)))
    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "begin", _on_begin)
    return engine


def _readonly_engine(path: Path, immutable: bool) -> Engine:
    query = "mode=ro&immutable=1" if immutable else "mode=ro"
    uri = f"file:{urllib.parse.quote(str(path))}?{query}"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)

    engine = create_engine("sqlite://", creator=connect, poolclass=QueuePool)
    event.listen(engine, "connect", _on_connect_readonly)
    event.listen(engine, "begin", _on_begin)
    return engine


def _open_readonly(path: Path) -> Engine:
    """A read-only engine on an existing catalog: `mode=ro`, or `immutable=1` where WAL cannot work."""
    wal, _ = _sidecars(path)
    engine = _readonly_engine(path, immutable=False)
    try:
        version = _readonly_version(engine, path)
    except CatalogError as exc:
        engine.dispose()
        # No -wal: every committed change is in the file itself, and a read-only folder admits no
        # writer, so reading it as immutable is exact.
        if primary_code(exc) != SQLITE_CANTOPEN or wal.exists() or _writable(path):
            raise
        engine = _readonly_engine(path, immutable=True)
        try:
            version = _readonly_version(engine, path)
        except CatalogError:
            engine.dispose()
            raise
    if version == schema.SCHEMA_VERSION:
        return engine
    engine.dispose()
    if version > schema.SCHEMA_VERSION:
        raise CatalogTooNew(
            f"this catalog has schema version {version}, newer than this program's "
            f"{schema.SCHEMA_VERSION}; update clipiqa-desktop or choose another --catalog"
        )
    if not _writable(path):
        raise CatalogReadOnly(
            f"the catalog {path} was written by an older release and must be upgraded once, which "
            "needs a place where it can be written; it is read-only here. Copy it to a writable "
            "folder (or make this one writable) and run the command again"
        )
    # An older catalog in a writable place: upgrade it once, then read it read-only.
    open_engine(path, exists=True, readonly=False).dispose()
    return _open_readonly(path)


def _readonly_version(engine: Engine, path: Path) -> int:
    with transaction(engine, path) as conn:
        version = schema.current_version(conn)
        tables = conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar_one()
    if version == 0:
        detail = "it is empty" if not tables else "it is an SQLite database of another program"
        raise CatalogCorrupt(f"{path} is not a clipiqa-desktop catalog: {detail}")
    return version


@contextmanager
def transaction(engine: Engine, path: Path | str, write: bool = False) -> Iterator[Connection]:
    """One transaction on a pooled connection; database errors become CatalogError.

    Writers start with BEGIN IMMEDIATE: they take SQLite's write lock up front (retrying while
    another process holds it), so a read-then-write transaction can never fail half-way because
    another process wrote in between. Readers use a plain BEGIN and never block the writer (WAL).
    On PostgreSQL a writer takes the catalog's one transaction-level advisory lock first
    (`_lock_for_write`): the same one-writer-at-a-time guarantee, on every machine of a studio, and
    readers are never blocked (MVCC). `path`: the catalog's file, or a server's address for messages.
    """
    try:
        with engine.connect() as conn:
            conn.execution_options(sqlite_write=write)
            with conn.begin():
                if write and engine.dialect.name == "postgresql":
                    _lock_for_write(conn)
                yield conn
    except (DBAPIError, sqlite3.Error) as exc:
        raise explain(exc, path) from exc


# The advisory lock every write transaction of a PostgreSQL catalog takes (one catalog per database,
# and advisory locks are per database). 0x636c6970 = "clip".
WRITE_LOCK_KEY = 0x636C6970


def _lock_for_write(conn: Connection) -> None:
    """Wait for the catalog's write lock up to WRITE_RETRY_SECONDS (then lock_not_available, which
    errors.py explains as CatalogBusy); released at COMMIT or ROLLBACK, also when a process dies."""
    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(WRITE_RETRY_SECONDS * 1000)}ms'")
    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")


# --- PostgreSQL: a studio's shared catalog ------------------------------------------------------
SERVER_SCHEMES = ("postgresql", "postgres")
STUDIO_EXTRA = "pip install 'clipiqa-desktop[studio]'"


def is_server_address(location: Path | str) -> bool:
    """True for a PostgreSQL address (postgresql://USER@HOST[:PORT]/DATABASE) rather than a file."""
    if not isinstance(location, str) or "://" not in location:
        return False
    return location.split("://", 1)[0].split("+", 1)[0].lower() in SERVER_SCHEMES


def server_url(address: str) -> tuple[URL, str]:
    """(SQLAlchemy URL with the psycopg driver, the address as shown in messages: no password)."""
    try:
        url = make_url(address.strip())
    except (ArgumentError, ValueError) as exc:
        raise CatalogCannotOpen(
            f"{address!r} is not a PostgreSQL address ({exc}); write postgresql://USER@HOST[:PORT]/DATABASE"
        ) from None
    if not url.database or (not url.host and "host" not in url.query):
        raise CatalogCannotOpen(
            f"the address {url.render_as_string(hide_password=True)} names no "
            f"{'database' if not url.database else 'host'}; write postgresql://USER@HOST[:PORT]/DATABASE"
        )
    url = url.set(drivername="postgresql+psycopg")
    # shown without any password (not even ***), so a command our messages suggest can be pasted:
    # libpq then takes the password from ~/.pgpass or PGPASSWORD
    bare = URL.create("postgresql", url.username, None, url.host, url.port, url.database, url.query)
    shown = bare.render_as_string(hide_password=False)
    return url, shown


def server_connect_args(readonly: bool) -> dict[str, Any]:
    """libpq settings of every connection: a machine that vanishes (a laptop asleep, Wi-Fi gone)
    is noticed within about a minute on both ends, so its locks (the write lock of a transaction in
    flight, move-rejects' session lock) do not block the studio for the server's default of two
    hours; a transaction left idle is ended after a minute (ours last milliseconds)."""
    options = [
        "-c tcp_keepalives_idle=30",
        "-c tcp_keepalives_interval=10",
        "-c tcp_keepalives_count=3",
        "-c idle_in_transaction_session_timeout=60000",
    ]
    if readonly:
        options.append("-c default_transaction_read_only=on")
    return {
        "connect_timeout": 10,
        "application_name": "clipiqa-desktop",
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "tcp_user_timeout": 60_000,  # ms: unacknowledged data for a minute ends the connection
        "options": " ".join(options),
    }


def open_server_engine(url: URL, shown: str, create: bool, readonly: bool) -> Engine:
    """The engine of a PostgreSQL catalog, its schema created or brought up to date (the database
    itself is the administrator's: it is never created here). CatalogError for anything that stops it."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise CatalogCannotOpen(
            f"a PostgreSQL catalog ({shown}) needs the [studio] extra: {STUDIO_EXTRA}"
        ) from None
    engine = create_engine(
        url,
        pool_pre_ping=True,  # a server restarted since: a new connection instead of an error
        # READ COMMITTED whatever the database's default: a writer reads after it got the write lock,
        # so it must see what the writer before it committed (under REPEATABLE READ its snapshot
        # would predate the wait and its counter update would fail as a serialization error).
        isolation_level="READ COMMITTED",
        connect_args=server_connect_args(readonly),
    )
    try:
        with transaction(engine, shown) as conn:
            # the tables first: each statement reads what is committed when it starts, and a first
            # run elsewhere commits its tables and version together, so tables seen before a
            # version 0 are another program's (never "index creates it": index would refuse them)
            tables = dialect.table_names(conn)
            version = schema.current_version(conn)
            others = tables if version == 0 else []
        if others:
            raise schema.NotACatalog(
                f"it is a database of another program (tables: {', '.join(sorted(others)[:5])})"
            )
        if version == 0 and not create:
            raise CatalogCannotOpen(
                f"there is no catalog in {shown} yet (`clipiqa-desktop index FOLDER --catalog ADDRESS` "
                "creates it)"
            )
        if version > schema.SCHEMA_VERSION:
            raise schema.SchemaTooNew(
                f"this catalog has schema version {version}, newer than this program's "
                f"{schema.SCHEMA_VERSION}; update clipiqa-desktop or choose another --catalog"
            )
        if version < schema.SCHEMA_VERSION:
            if readonly:  # upgrade once with a writer, then read
                open_server_engine(url, shown, create=False, readonly=False).dispose()
            else:
                with transaction(engine, shown, write=True) as conn:
                    schema.migrate(conn)  # under the write lock: two first runs create it once
    except schema.SchemaTooNew as exc:
        engine.dispose()
        raise CatalogTooNew(str(exc)) from exc
    except schema.NotACatalog as exc:
        engine.dispose()
        raise CatalogCorrupt(
            f"the database {shown} is not a clipiqa-desktop catalog: {exc}. Choose an empty database"
        ) from exc
    except CatalogError:
        engine.dispose()
        raise
    except Exception as exc:  # a migration that failed: its transaction was rolled back
        engine.dispose()
        raise CatalogError(
            f"creating or upgrading the catalog {shown} failed ({type(exc).__name__}: {exc}); it was "
            "left as it was. Please report this with the message"
        ) from exc
    return engine


def _on_begin(conn: Connection) -> None:
    if not conn.get_execution_options().get("sqlite_write"):
        conn.exec_driver_sql("BEGIN")
        return
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    with_busy_retry(lambda: dbapi.execute("BEGIN IMMEDIATE"))


def with_busy_retry(step: Any, seconds: float | None = None) -> Any:
    """Run `step()`, again with growing pauses while SQLite answers busy/locked, for `seconds` in all.

    Only for steps that did nothing yet when they fail busy (BEGIN IMMEDIATE, a pragma at connect):
    SQLite's busy timeout already waits inside each attempt; the retry covers a writer that holds
    the lock longer than that, and the cases where SQLite returns busy without waiting (it would
    deadlock, or a WAL file is being recovered).
    """
    deadline = time.monotonic() + (WRITE_RETRY_SECONDS if seconds is None else seconds)
    delay = _RETRY_FIRST_DELAY
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, _RETRY_MAX_DELAY)


def _on_connect(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite's own transaction handling never BEGINs before DDL (migrations would not be atomic);
    # switch it off and let _on_begin emit BEGIN (SQLAlchemy's documented recipe).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    # Switching a new file to WAL takes an exclusive lock: two processes creating one catalog at
    # once wait for each other here.
    with_busy_retry(lambda: cur.execute("PRAGMA journal_mode = WAL"))
    # FULL: a committed decision survives a power cut too (one fsync per commit: per batch, per key).
    cur.execute("PRAGMA synchronous = FULL")
    cur.execute("PRAGMA foreign_keys = ON")
    cur.close()


def _on_connect_readonly(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA query_only = ON")
    cur.close()


def _remove_catalog_files(path: Path) -> None:
    # and the lock file of move-rejects (catalog/moves.py), which an index run takes shared
    for p in (path, *_sidecars(path), path.with_name(path.name + ".moves.lock")):
        with suppress(OSError):
            p.unlink(missing_ok=True)


def discard_if_unused(engine: Engine, path: Path) -> bool:
    """Delete a catalog this run created when it holds no photo, decision or prompt; True if deleted.

    For a failed first `index` (missing weights, a folder without photos, ...): the user is left
    with no empty catalog file. Nothing is deleted while another program has the catalog open:
    SQLite removes the -wal file when its last connection closes, so a -wal left after closing ours
    means someone else is using it.
    """
    try:
        with transaction(engine, path, write=True) as conn:
            used = conn.exec_driver_sql(
                "SELECT EXISTS (SELECT 1 FROM photos) OR EXISTS (SELECT 1 FROM decisions) "
                "OR EXISTS (SELECT 1 FROM prompts)"
            ).scalar_one()
    except CatalogError:
        return False
    engine.dispose()
    if used or any(p.exists() for p in _sidecars(path)):
        return False
    _remove_catalog_files(path)
    return True
