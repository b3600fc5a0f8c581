"""The catalog's tables (SQLAlchemy Core) and its schema migrations.

The schema version lives in SQLite's `user_version`. Each migration is a function that takes the
database from version N-1 to N inside one transaction; `migrate()` runs the missing ones in order,
so a catalog written by any earlier release opens in this one.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

folders = Table(
    "folders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("path", Text, nullable=False, unique=True),  # absolute, resolved
    Column("last_analysis_id", Integer, ForeignKey("analyses.id", ondelete="SET NULL")),
    Column("last_indexed_at", Float),  # unix time
)

photos = Table(
    "photos",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("folder_id", Integer, ForeignKey("folders.id", ondelete="CASCADE"), nullable=False),
    Column("rel_path", Text, nullable=False),  # POSIX form, relative to the folder
    Column("size_bytes", Integer, nullable=False),
    Column("mtime_ns", Integer, nullable=False),
    Column("fingerprint", String(40)),  # content hash: a renamed/moved file keeps its record
    Column("width", Integer),  # upright pixel size
    Column("height", Integer),
    Column("orientation", Integer),
    Column("captured_at", Text),  # ISO 8601 from EXIF DateTimeOriginal
    Column("camera_make", Text),
    Column("camera_model", Text),
    Column("lens", Text),
    Column("exposure_time", Float),  # seconds
    Column("f_number", Float),
    Column("iso", Integer),
    Column("focal_length", Float),  # mm
    Column("status", String(8), nullable=False, server_default="ok"),  # ok | error | missing
    Column("error", Text),
    Column("added_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("folder_id", "rel_path"),
)
Index("ix_photos_fingerprint", photos.c.fingerprint)

analyses = Table(
    "analyses",  # one model + analysis size: scores of different analyses are never mixed
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Text, nullable=False),
    Column("size", String(8), nullable=False),  # long side in pixels, or "full"
    Column("embed_dim", Integer, nullable=False),
    Column("logit_scale", Float, nullable=False),
    UniqueConstraint("model_id", "size"),
)

embeddings = Table(
    "embeddings",
    metadata,
    Column("photo_id", Integer, ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True),
    Column("analysis_id", Integer, ForeignKey("analyses.id", ondelete="CASCADE"), primary_key=True),
    Column("vector", LargeBinary, nullable=False),  # float16, unit length, little-endian
)

scores = Table(
    "scores",
    metadata,
    Column("photo_id", Integer, ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True),
    Column("analysis_id", Integer, ForeignKey("analyses.id", ondelete="CASCADE"), primary_key=True),
    Column("attribute", String(64), primary_key=True),
    Column("value", Float, nullable=False),
)
Index("ix_scores_sort", scores.c.analysis_id, scores.c.attribute, scores.c.value, scores.c.photo_id)

prompts = Table(
    "prompts",  # user-defined prompt pairs, scored from stored embeddings
    metadata,
    Column("key", String(64), primary_key=True),
    Column("positive", Text, nullable=False),
    Column("negative", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

text_features = Table(
    "text_features",  # cached per model, so stored prompts rescore without loading the model
    metadata,
    Column("model_id", Text, primary_key=True),
    Column("prompt", Text, primary_key=True),
    Column("vector", LargeBinary, nullable=False),  # float32, unit length
)

decisions = Table(
    "decisions",
    metadata,
    Column("photo_id", Integer, ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True),
    Column("rating", Integer, nullable=False, server_default="0"),  # -1 rejected, 0 unrated, 1..5
    Column("picked", Boolean, nullable=False, server_default="0"),
    Column("label", String(16)),  # Red, Yellow, Green, Blue, Purple
    Column("changed_at", Float, nullable=False),
    Column("source", String(8), nullable=False, server_default="user"),  # user | xmp
)

thumbnails = Table(
    "thumbnails",
    metadata,
    Column("photo_id", Integer, ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("jpeg", LargeBinary, nullable=False),
)


def _v1(conn: Connection) -> None:
    metadata.create_all(conn)


# MIGRATIONS[i] takes the schema from version i to i + 1. Append, never edit a released one.
MIGRATIONS: list[Callable[[Connection], None]] = [_v1]
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNew(RuntimeError):
    """The catalog was written by a newer release of this program."""


def current_version(conn: Connection) -> int:
    return int(conn.execute(text("PRAGMA user_version")).scalar_one())


def migrate(conn: Connection) -> int:
    """Bring the schema up to SCHEMA_VERSION inside the caller's transaction; returns the old version."""
    version = current_version(conn)
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"this catalog has schema version {version}, newer than this program's {SCHEMA_VERSION}; "
            "update clipiqa-desktop or choose another --catalog"
        )
    for step in MIGRATIONS[version:]:
        step(conn)
    if version != SCHEMA_VERSION:
        conn.execute(text(f"PRAGMA user_version = {SCHEMA_VERSION}"))
    return version
