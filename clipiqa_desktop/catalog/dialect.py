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
