"""The catalog: SQLite through SQLAlchemy Core. No Qt."""

from .catalog import Catalog, file_fingerprint
from .connection import default_catalog_path
from .errors import (
    CatalogBusy,
    CatalogCannotOpen,
    CatalogCorrupt,
    CatalogError,
    CatalogFull,
    CatalogIOError,
    CatalogReadOnly,
    CatalogTooNew,
)
from .records import LABELS, RATING_REJECTED, Decision, PhotoMeta, PhotoRecord, PhotoState
from .table import Filter, PhotoTable, QueryError, build_table, parse_where, select_rows

__all__ = [
    "LABELS",
    "RATING_REJECTED",
    "Catalog",
    "CatalogBusy",
    "CatalogCannotOpen",
    "CatalogCorrupt",
    "CatalogError",
    "CatalogFull",
    "CatalogIOError",
    "CatalogReadOnly",
    "CatalogTooNew",
    "Decision",
    "Filter",
    "PhotoMeta",
    "PhotoRecord",
    "PhotoState",
    "PhotoTable",
    "QueryError",
    "build_table",
    "default_catalog_path",
    "file_fingerprint",
    "parse_where",
    "select_rows",
]
