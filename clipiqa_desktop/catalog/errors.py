"""Catalog errors, classified by SQLite's result code (never by the words of its message).

Every failure of the catalog reaches the user as a `CatalogError` whose text a photographer can act
on; the CLI prints it and exits with status 2, the window shows it in a dialog. Each kind of failure
has its own subclass, so callers (and tests) can tell a full disk from a busy catalog:

    CatalogBusy        SQLITE_BUSY / SQLITE_LOCKED after the bounded retry
    CatalogFull        SQLITE_FULL, OSError ENOSPC/EDQUOT, or an I/O error on a disk with no free space
    CatalogReadOnly    SQLITE_READONLY*, SQLITE_PERM, OSError EROFS/EACCES/EPERM
    CatalogCorrupt     SQLITE_CORRUPT, SQLITE_NOTADB, a database of another program
    CatalogIOError     SQLITE_IOERR* (a disk or network share that failed under us)
    CatalogCannotOpen  SQLITE_CANTOPEN, a missing file or folder
    CatalogTooNew      written by a newer release of this program

Python 3.11's sqlite3 exceptions carry `sqlite_errorcode` (the extended code; its low byte is the
primary code) and `sqlite_errorname`; SQLAlchemy wraps them (`exc.orig`).
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

# SQLite primary result codes (https://sqlite.org/rescode.html).
SQLITE_PERM = 3
SQLITE_BUSY = 5
SQLITE_LOCKED = 6
SQLITE_NOMEM = 7
SQLITE_READONLY = 8
SQLITE_IOERR = 10
SQLITE_CORRUPT = 11
SQLITE_FULL = 13
SQLITE_CANTOPEN = 14
SQLITE_NOTADB = 26

# Below this much free space, an I/O error while writing is a full disk (SQLite reports a failed
# extension of the -shm file as SQLITE_IOERR_SHMSIZE, not SQLITE_FULL).
NEARLY_FULL_BYTES = 1024 * 1024


class CatalogError(RuntimeError):
    """A catalog problem explained for the user. `kind` names the class of failure."""

    kind = "other"


class CatalogBusy(CatalogError):
    kind = "busy"


class CatalogFull(CatalogError):
    kind = "full"


class CatalogReadOnly(CatalogError):
    kind = "read-only"


class CatalogCorrupt(CatalogError):
    kind = "corrupt"


class CatalogIOError(CatalogError):
    kind = "io"


class CatalogCannotOpen(CatalogError):
    kind = "cannot-open"


class CatalogTooNew(CatalogError):
    kind = "too-new"


def _behind(exc: BaseException, wanted: Callable[[BaseException], bool]) -> BaseException | None:
    """The first exception in `exc`'s chain (itself, SQLAlchemy's `.orig`, its cause or context)
    that is `wanted`, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if wanted(current):
            return current
        orig = getattr(current, "orig", None)
        if isinstance(orig, BaseException):
            current = orig
            continue
        current = current.__cause__ or current.__context__
    return None


def sqlite_error(exc: BaseException) -> sqlite3.Error | None:
    """The sqlite3 exception behind `exc` (itself, SQLAlchemy's `.orig`, or a cause), if any."""
    found = _behind(exc, lambda e: isinstance(e, sqlite3.Error))
    return found if isinstance(found, sqlite3.Error) else None


def os_error(exc: BaseException) -> OSError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError):
            return current
        current = current.__cause__ or current.__context__
    return None


def primary_code(exc: BaseException) -> int | None:
    """SQLite's primary result code of `exc` (SQLITE_BUSY, SQLITE_FULL, ...), or None."""
    err = sqlite_error(exc)
    code = getattr(err, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def is_busy(exc: BaseException) -> bool:
    return primary_code(exc) in (SQLITE_BUSY, SQLITE_LOCKED)


def _disk_is_full(path: Path) -> bool:
    for folder in (path.parent, *path.parents):
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free < NEARLY_FULL_BYTES
            except OSError:
                return False
    return False


def full_message(path: Path) -> str:
    return (
        f"the disk holding the catalog {path} is full. Nothing was lost: free some space and run "
        "the command again (index continues where it stopped)"
    )


def read_only_message(path: Path) -> str:
    return (
        f"the catalog {path} cannot be written: its file or folder is read-only (a locked card, a "
        "read-only drive or share, or file permissions). Nothing was changed. Choose a catalog in a "
        "writable place with --catalog, or make that folder writable; list and export can still "
        "read it"
    )


def explain(exc: BaseException, path: Path | str) -> CatalogError:
    """The CatalogError (of the right kind) that tells the user what `exc` means for the catalog
    (`path`: its file, or for PostgreSQL its address without the password)."""
    if isinstance(exc, CatalogError):
        return exc
    pg = server_error(exc)
    if pg is not None or isinstance(path, str):
        return explain_server(exc, str(path))
    err = sqlite_error(exc)
    if err is None:
        oserr = os_error(exc)
        if oserr is not None:
            return _explain_os_error(oserr, path)
        return CatalogError(f"catalog error in {path}: {exc}")
    detail = f"{err} ({getattr(err, 'sqlite_errorname', 'no error code')})"
    code = primary_code(err)
    if code in (SQLITE_BUSY, SQLITE_LOCKED):
        return CatalogBusy(
            f"the catalog {path} is being written by another program (the window, or another "
            "clipiqa-desktop command) and stayed busy too long. Nothing was lost: try again when it "
            "has finished"
        )
    if code == SQLITE_FULL or (code == SQLITE_IOERR and _disk_is_full(path)):
        return CatalogFull(full_message(path))
    if code in (SQLITE_READONLY, SQLITE_PERM):
        return CatalogReadOnly(read_only_message(path))
    if code in (SQLITE_CORRUPT, SQLITE_NOTADB):
        return CatalogCorrupt(
            f"{path} is damaged or is not a clipiqa-desktop catalog ({detail}). Keep the file (it "
            "may be recoverable) and choose another --catalog"
        )
    if code == SQLITE_IOERR:
        return CatalogIOError(
            f"the disk holding the catalog {path} reported a read or write error ({detail}). Was "
            "the drive disconnected? What was saved before is kept: check the drive and try again"
        )
    if code == SQLITE_CANTOPEN:
        return CatalogCannotOpen(
            f"cannot open the catalog {path} ({detail}): check that its folder exists and can be "
            "read, or choose another --catalog"
        )
    if code == SQLITE_NOMEM:
        return CatalogError(f"out of memory while using the catalog {path}; close other programs and retry")
    return CatalogError(f"catalog error in {path}: {detail}")


def _explain_os_error(exc: OSError, path: Path) -> CatalogError:
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return CatalogFull(full_message(path))
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return CatalogReadOnly(read_only_message(path))
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return CatalogCannotOpen(f"cannot open the catalog {path}: {reason}")
    if exc.errno == errno.EIO:
        return CatalogIOError(
            f"the disk holding the catalog {path} reported a read or write error ({reason}). Was the "
            "drive disconnected? What was saved before is kept: check the drive and try again"
        )
    return CatalogError(f"catalog error in {path}: {reason}")


# --- PostgreSQL (a studio's shared catalog): classified by SQLSTATE, never by the message's words ---
# https://www.postgresql.org/docs/current/errcodes-appendix.html
PG_BUSY = ("55P03", "40001", "40P01", "57014")  # lock_not_available, serialization, deadlock, canceled
PG_FULL = ("53100", "53200")  # disk_full, out_of_memory
PG_READ_ONLY = ("25006",)  # read_only_sql_transaction
PG_DENIED = ("42501", "28000", "28P01")  # insufficient_privilege, invalid authorization / password


def server_error(exc: BaseException) -> BaseException | None:
    """The psycopg exception behind `exc` (itself, SQLAlchemy's `.orig`, or a cause), if any."""
    return _behind(exc, lambda e: type(e).__module__.startswith("psycopg"))


def sqlstate(exc: BaseException) -> str | None:
    err = server_error(exc)
    return getattr(err, "sqlstate", None) if err is not None else None


def explain_server(exc: BaseException, where: str) -> CatalogError:
    """CatalogError for a failure of a PostgreSQL catalog at `where` (its address, no password)."""
    err = server_error(exc)
    state = sqlstate(exc)
    first = str(err if err is not None else exc).strip().splitlines()
    detail = first[0] if first else type(exc).__name__
    if state in PG_BUSY:
        return CatalogBusy(
            f"the catalog {where} is being written by another program (a window or command on this or "
            "another machine) and stayed busy too long. Nothing was lost: try again when it has finished"
        )
    if state in PG_FULL:
        return CatalogFull(
            f"the PostgreSQL server of the catalog {where} is out of disk space or memory ({detail}). "
            "Nothing was lost: ask its administrator to free space, then run the command again"
        )
    if state in PG_READ_ONLY:
        return CatalogReadOnly(
            f"the catalog {where} is open read-only here (list and export read it). Nothing was changed"
        )
    if state in PG_DENIED:
        return CatalogReadOnly(
            f"the PostgreSQL server refused this user for the catalog {where} ({detail}). Nothing was "
            "changed: ask its administrator for access (CONNECT, and CREATE on the schema for the first "
            "index), or use another user in the address"
        )
    if state is None or state.startswith("08") or state.startswith("57P"):
        # no SQLSTATE: the connection itself failed (refused, timed out, no such database)
        return CatalogCannotOpen(
            f"cannot reach the catalog {where}: {detail}. Check that the PostgreSQL server runs, that "
            "the address (host, port, user, database) is right, and that the user's password is in "
            "~/.pgpass (mode 600) or PGPASSWORD"
        )
    return CatalogError(f"catalog error in {where}: {detail} (SQLSTATE {state})")
