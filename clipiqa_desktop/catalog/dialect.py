"""Where SQLite and PostgreSQL differ, in one place: every other catalog module speaks SQLAlchemy
Core that both accept.

- upserts: `insert(conn, table)` is the dialect's INSERT with `on_conflict_do_update/_nothing`
  (SQLite and PostgreSQL spell ON CONFLICT alike, SQLAlchemy has one construct per dialect);
- a list of ids as a table (one bound parameter however many ids): SQLite's `json_each`, PostgreSQL's
  `unnest` of an integer array;
- string aggregation is SQLAlchemy's own `func.aggregate_strings` (group_concat / string_agg);
- opening, write locking, the schema version and error kinds: catalog/connection.py and
  catalog/errors.py, each with one function per backend.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Integer, Table, bindparam, func
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


# --- the schema version: SQLite's user_version; on PostgreSQL a one-row table ---------------------
VERSION_TABLE = "clipiqa_schema"


def schema_version(conn: Connection) -> int:
    """The catalog's schema version (0: no catalog in this database yet)."""
    if is_postgresql(conn):
        if conn.exec_driver_sql(f"SELECT to_regclass('{VERSION_TABLE}')").scalar() is None:
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
