"""The catalog: SQLite through SQLAlchemy Core. No Qt."""

from .catalog import Catalog, CatalogError, default_catalog_path, file_fingerprint
from .records import LABELS, RATING_REJECTED, Decision, PhotoMeta, PhotoRecord, PhotoState
from .table import Filter, PhotoTable, QueryError, build_table, parse_where, select_rows

__all__ = [
    "LABELS",
    "RATING_REJECTED",
    "Catalog",
    "CatalogError",
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
