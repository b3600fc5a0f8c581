"""Where SQLite and PostgreSQL differ, in one place: every other catalog module speaks SQLAlchemy
Core that both accept.

- upserts: `insert(conn, table)` is the dialect's INSERT with `on_conflict_do_update/_nothing`
  (SQLite and PostgreSQL spell ON CONFLICT alike, SQLAlchemy has one construct per dialect);
- a list of ids as a table (one bound parameter however many ids): SQLite's `json_each`, PostgreSQL's
  `unnest` of an integer array;
- string aggregation is SQLAlchemy's own `func.aggregate_strings` (group_concat / string_agg);
- the raw queries that load a whole shoot (Catalog.rows, group_inputs) are text with named binds
  (`:name`), which `fetch` compiles for the connection's driver (SQLite's `?`, psycopg's
  `%(name)s`) and runs on its DB-API cursor (plain tuples, no Row objects); an id list inside them
  is `ids_sql`'s one parameter; a capture time in seconds is `epoch_seconds` (SQLite's strftime,
  arithmetic on PostgreSQL, which has no parse that fails softly);
- opening, write locking, the schema version and error kinds: catalog/connection.py and
  catalog/errors.py, each with one function per backend.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Integer, Table, bindparam, func, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.selectable import TableValuedAlias


def is_postgresql(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def insert(conn: Connection, table: Table) -> Any:
    """INSERT with ON CONFLICT support for the connection's backend."""
    return postgresql.insert(table) if is_postgresql(conn) else sqlite.insert(table)


def id_table(conn: Connection, ids: Sequence[int]) -> TableValuedAlias:
    """The ids as a one-column table (column `value`), bound as ONE parameter."""
    values = [int(i) for i in ids]
    if is_postgresql(conn):
        param = bindparam("id_list", value=values, type_=postgresql.ARRAY(Integer))
        return func.unnest(param).table_valued("value").render_derived()
    return func.json_each(json.dumps(values)).table_valued("value")


def ids_sql(conn: Connection, name: str, ids: Sequence[int]) -> tuple[str, Any]:
    """(a subquery of the ids for `column IN ...` in a text() query, the value to bind as `name`):
    one parameter however many ids."""
    values = [int(i) for i in ids]
    if is_postgresql(conn):
        return f"(SELECT unnest(CAST(:{name} AS BIGINT[])))", values
    return f"(SELECT value FROM json_each(:{name}))", json.dumps(values)


def fetch(conn: Connection, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The rows of `sql` (named binds, `:name`) as the driver's plain tuples, in this transaction:
    the text is compiled for the connection's dialect and run on its DB-API cursor, whose tuples
    numpy converts in C (SQLAlchemy Row objects cost ~40 ms more per 20,000 photos)."""
    compiled = text(sql).compile(dialect=conn.dialect)
    bound = compiled.construct_params(params)
    args: Any = [bound[n] for n in compiled.positiontup or ()] if compiled.positional else bound
    dbapi: Any = conn.connection.dbapi_connection
    # psycopg: results in PostgreSQL's binary format; bytea (the embeddings) then arrives as bytes
    # instead of hex text to decode (group_inputs' 20,000 × 2 kB: ~2× faster)
    cursor = dbapi.cursor(binary=True) if is_postgresql(conn) else dbapi.cursor()
    try:
        cursor.execute(compiled.string, args)
        return list(cursor.fetchall())
    finally:
        cursor.close()


# The form the catalog stores capture times in (imaging/metadata._iso_time): 2024-05-01T10:00:00.
_ISO_TIME = "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[T ]([01][0-9]|2[0-4]):[0-5][0-9]:[0-5][0-9]$"


def epoch_seconds(conn: Connection, column: str) -> str:
    """SQL for the capture time `column` (camera local time, read as UTC) as seconds since 1970,
    NULL where it cannot be read. SQLite: strftime('%s'). PostgreSQL's casts fail the whole query
    on one bad value (pg_input_is_valid is 16+), so a pattern guards plain arithmetic that reads
    the stored form as SQLite does (a day past the month's end runs into the next, as 24:00 does)."""
    if not is_postgresql(conn):
        return f"strftime('%s', {column})"

    def part(start: int, n: int) -> str:
        return f"CAST(substr({column}, {start}, {n}) AS INTEGER)"

    days = f"(make_date({part(1, 4)}, {part(6, 2)}, 1) + ({part(9, 2)} - 1) - DATE '1970-01-01')"
    seconds = f"{days} * CAST(86400 AS BIGINT) + {part(12, 2)} * 3600 + {part(15, 2)} * 60 + {part(18, 2)}"
    guard = f"{column} ~ '{_ISO_TIME}' AND substr({column}, 1, 4) <> '0000'"
    return f"CAST(CASE WHEN {guard} THEN {seconds} END AS DOUBLE PRECISION)"


# --- the schema version: SQLite's user_version; on PostgreSQL a one-row table ---------------------
VERSION_TABLE = "clipiqa_schema"


def schema_version(conn: Connection) -> int:
    """The catalog's schema version (0: no catalog in this database yet)."""
    if is_postgresql(conn):
        # pg_tables, not to_regclass: a name lookup goes through the server process's catalog
        # cache, which a transaction that waited for the write lock does not refresh, so a catalog
        # another process created meanwhile would look absent (and its tables another program's)
        exists = conn.exec_driver_sql(
            "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = current_schema() "
            f"AND tablename = '{VERSION_TABLE}')"
        ).scalar()
        if not exists:
            return 0
        return int(conn.exec_driver_sql(f"SELECT max(version) FROM {VERSION_TABLE}").scalar() or 0)
    return int(conn.exec_driver_sql("PRAGMA user_version").scalar_one())


def set_schema_version(conn: Connection, version: int) -> None:
    if is_postgresql(conn):
        conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version INTEGER NOT NULL)")
        conn.exec_driver_sql(f"DELETE FROM {VERSION_TABLE}")
        conn.exec_driver_sql(f"INSERT INTO {VERSION_TABLE} (version) VALUES ({int(version)})")
        return
    conn.exec_driver_sql(f"PRAGMA user_version = {int(version)}")


def table_names(conn: Connection) -> list[str]:
    """The tables of the database other than the version's own."""
    if is_postgresql(conn):
        sql = (
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            f"AND tablename <> '{VERSION_TABLE}'"
        )
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    return [str(r[0]) for r in conn.exec_driver_sql(sql)]


def integrity_check(conn: Connection) -> str:
    """SQLite's integrity_check ('ok' or what is damaged). PostgreSQL checks its own pages; an
    administrator's amcheck goes further, so a reachable server's catalog answers 'ok'."""
    if is_postgresql(conn):
        conn.exec_driver_sql("SELECT 1").scalar_one()
        return "ok"
    return str(conn.exec_driver_sql("PRAGMA integrity_check").scalar_one())
