"""The catalog's tables (SQLAlchemy Core) and its schema migrations.

The schema version lives in SQLite's `user_version` (PostgreSQL: a one-row table; dialect.py). A
new catalog is created directly at the current version from the tables below
(`metadata.create_all`). Each migration is a function that takes an existing catalog from version
N-1 to N; `migrate()` runs the missing ones in order inside the caller's ONE transaction, so a
catalog written by any earlier release opens in this one, and a migration that fails (or is
killed) leaves the catalog at its old version, untouched.

Migrations are frozen: they spell out their own DDL and never use the tables below, which describe
only the current version (tests/catalog/test_schema.py checks that migrating from every older
version ends at exactly the schema of a freshly created catalog, with the data intact).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePath

from sqlalchemy import (
    BigInteger,
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
)

from . import dialect

metadata = MetaData()

# Byte sizes and nanosecond times pass 2**31: BIGINT on PostgreSQL (SQLite's INTEGER holds 64 bits,
# and its DDL stays the one every migration was written against).
BigInt = Integer().with_variant(BigInteger(), "postgresql")

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
    Column("name", Text, nullable=False),  # the file name; the folder row is its real directory
    Column("size_bytes", BigInt, nullable=False),
    Column("mtime_ns", BigInt, nullable=False),
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
    # The XMP sidecar beside the photo as last read or written (its own stat, not the photo's):
    # a sidecar whose mtime/size differ was edited by another tool and is imported again.
    Column("sidecar_name", Text),
    Column("sidecar_mtime_ns", BigInt),
    Column("sidecar_size", BigInt),
    # Its decision fields as it stated them then (JSON: {"rating": 3, "label": null}; only the
    # fields it stated): the import takes only the fields the other tool changed since.
    Column("sidecar_fields", Text),
    # Camera facts for grouping (bursts, exposure brackets, focus stacks), from EXIF
    Column("exposure_bias", Float),  # EV (ExposureBiasValue)
    Column("subject_distance", Float),  # metres (SubjectDistance)
    Column("subsec", Float),  # fraction of a second of captured_at (SubSecTimeOriginal)
    # which imaging.metadata.META_VERSION read these facts; NULL: indexed before version 4 kept
    # them (an unchanged file's facts are then read again from its header, never re-decoded)
    Column("meta_version", Integer),
    UniqueConstraint("folder_id", "name"),
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
    # counters['decisions'] when this decision last changed: a window polls for seq > the last it
    # saw, so a decision made in another window or machine appears without a restart. A counter,
    # not changed_at: the clocks of a studio's machines differ.
    Column("seq", Integer),
)
Index("ix_decisions_seq", decisions.c.seq)

counters = Table(
    "counters",  # catalog-wide counters, incremented inside the write transaction that uses them
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", Integer, nullable=False),
)

root_mounts = Table(
    "root_mounts",  # where each machine of a studio sees a shared folder root (see catalog/roots.py)
    metadata,
    Column("root", String(64), primary_key=True),  # the root's name, e.g. "shoots"
    Column("machine", Text, primary_key=True),  # catalog.roots.machine_name()
    Column("path", Text, nullable=False),  # absolute, as this machine mounts it
    UniqueConstraint("machine", "path"),
)

move_batches = Table(
    "move_batches",  # one `move-rejects` run, so that it can be undone
    metadata,
    Column("id", Integer, primary_key=True),
    Column("folder", Text, nullable=False),  # the folder whose rejects were moved
    Column("target", Text, nullable=False),  # where they went (absolute)
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float),  # NULL while files are moving (a kill: `move-rejects` repairs it)
    Column("undone_at", Float),  # NULL while the files are at their new place
    Column("made_dirs", Text),  # folders this batch created, one per line (undo removes them if empty)
)

moved_files = Table(
    "moved_files",  # every file a batch moved (photos, their sidecars, RAW+JPEG partners)
    metadata,
    Column("batch_id", Integer, ForeignKey("move_batches.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("grp", Integer, nullable=False),  # seq of its frame's first file: a frame moves as one
    Column("photo_id", Integer, ForeignKey("photos.id", ondelete="SET NULL")),  # NULL for a sidecar
    Column("src", Text, nullable=False),  # absolute paths
    Column("dst", Text, nullable=False),
)

thumbnails = Table(
    "thumbnails",
    metadata,
    Column("photo_id", Integer, ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("jpeg", LargeBinary, nullable=False),
)


# Version 1, as SQLAlchemy emitted it for the tables of that release (frozen: never edit).
_V1_DDL = (
    """CREATE TABLE analyses (
	id INTEGER NOT NULL,
	model_id TEXT NOT NULL,
	size VARCHAR(8) NOT NULL,
	embed_dim INTEGER NOT NULL,
	logit_scale FLOAT NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (model_id, size)
)""",
    """CREATE TABLE prompts (
	"key" VARCHAR(64) NOT NULL,
	positive TEXT NOT NULL,
	negative TEXT NOT NULL,
	created_at FLOAT NOT NULL,
	PRIMARY KEY ("key")
)""",
    """CREATE TABLE text_features (
	model_id TEXT NOT NULL,
	prompt TEXT NOT NULL,
	vector BLOB NOT NULL,
	PRIMARY KEY (model_id, prompt)
)""",
    """CREATE TABLE folders (
	id INTEGER NOT NULL,
	path TEXT NOT NULL,
	last_analysis_id INTEGER,
	last_indexed_at FLOAT,
	PRIMARY KEY (id),
	UNIQUE (path),
	FOREIGN KEY(last_analysis_id) REFERENCES analyses (id) ON DELETE SET NULL
)""",
    """CREATE TABLE photos (
	id INTEGER NOT NULL,
	folder_id INTEGER NOT NULL,
	rel_path TEXT NOT NULL,
	size_bytes INTEGER NOT NULL,
	mtime_ns INTEGER NOT NULL,
	fingerprint VARCHAR(40),
	width INTEGER,
	height INTEGER,
	orientation INTEGER,
	captured_at TEXT,
	camera_make TEXT,
	camera_model TEXT,
	lens TEXT,
	exposure_time FLOAT,
	f_number FLOAT,
	iso INTEGER,
	focal_length FLOAT,
	status VARCHAR(8) DEFAULT 'ok' NOT NULL,
	error TEXT,
	added_at FLOAT NOT NULL,
	updated_at FLOAT NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (folder_id, rel_path),
	FOREIGN KEY(folder_id) REFERENCES folders (id) ON DELETE CASCADE
)""",
    "CREATE INDEX ix_photos_fingerprint ON photos (fingerprint)",
    """CREATE TABLE decisions (
	photo_id INTEGER NOT NULL,
	rating INTEGER DEFAULT '0' NOT NULL,
	picked BOOLEAN DEFAULT '0' NOT NULL,
	label VARCHAR(16),
	changed_at FLOAT NOT NULL,
	source VARCHAR(8) DEFAULT 'user' NOT NULL,
	PRIMARY KEY (photo_id),
	FOREIGN KEY(photo_id) REFERENCES photos (id) ON DELETE CASCADE
)""",
    """CREATE TABLE embeddings (
	photo_id INTEGER NOT NULL,
	analysis_id INTEGER NOT NULL,
	vector BLOB NOT NULL,
	PRIMARY KEY (photo_id, analysis_id),
	FOREIGN KEY(photo_id) REFERENCES photos (id) ON DELETE CASCADE,
	FOREIGN KEY(analysis_id) REFERENCES analyses (id) ON DELETE CASCADE
)""",
    """CREATE TABLE scores (
	photo_id INTEGER NOT NULL,
	analysis_id INTEGER NOT NULL,
	attribute VARCHAR(64) NOT NULL,
	value FLOAT NOT NULL,
	PRIMARY KEY (photo_id, analysis_id, attribute),
	FOREIGN KEY(photo_id) REFERENCES photos (id) ON DELETE CASCADE,
	FOREIGN KEY(analysis_id) REFERENCES analyses (id) ON DELETE CASCADE
)""",
    "CREATE INDEX ix_scores_sort ON scores (analysis_id, attribute, value, photo_id)",
    """CREATE TABLE thumbnails (
	photo_id INTEGER NOT NULL,
	width INTEGER NOT NULL,
	height INTEGER NOT NULL,
	jpeg BLOB NOT NULL,
	PRIMARY KEY (photo_id),
	FOREIGN KEY(photo_id) REFERENCES photos (id) ON DELETE CASCADE
)""",
)


def _v1(conn: Connection) -> None:
    """The first schema (an empty database -> version 1)."""
    for ddl in _V1_DDL:
        conn.exec_driver_sql(ddl)


def _v2(conn: Connection) -> None:
    """One record per photo, whatever folder it was indexed from: a photo is keyed by the directory
    that really contains it (a folder row per directory) and its file name.

    Version 1 keyed photos by (indexed folder, path inside it), so `index -r photos` stored
    (photos, "gps/a.jpg") and a later `index photos/gps` a second record (photos/gps, "a.jpg").
    `photos.rel_path` becomes `photos.name`; every "sub/a.jpg" moves to the folder row of
    `folder/sub` (created with the indexed folder's last analysis), keeping its id, scores,
    embeddings, thumbnail and decision. Two records of one file are merged into the one updated
    last: it gains the other's scores, embeddings and thumbnail where it has none, and the decision
    changed last; the other record (its id) is deleted.
    """
    conn.exec_driver_sql("ALTER TABLE photos RENAME COLUMN rel_path TO name")
    folders_by_id = {
        int(i): (str(p), a, t)
        for i, p, a, t in conn.exec_driver_sql(
            "SELECT id, path, last_analysis_id, last_indexed_at FROM folders"
        )
    }
    id_of_path = {p: i for i, (p, _a, _t) in folders_by_id.items()}
    nested = conn.exec_driver_sql(
        "SELECT id, folder_id, name FROM photos WHERE name LIKE '%/%' ORDER BY id"
    ).all()
    for pid, fid, rel in nested:
        root, analysis, indexed_at = folders_by_id[int(fid)]
        sub, _, name = str(rel).rpartition("/")
        directory = str(PurePath(root, *sub.split("/")))
        target = id_of_path.get(directory)
        if target is None:
            target = int(
                conn.exec_driver_sql(
                    "INSERT INTO folders (path, last_analysis_id, last_indexed_at) VALUES (?, ?, ?)",
                    (directory, analysis, indexed_at),
                ).lastrowid
            )
            id_of_path[directory] = target
            folders_by_id[target] = (directory, analysis, indexed_at)
        other = conn.exec_driver_sql(
            "SELECT id FROM photos WHERE folder_id = ? AND name = ?", (target, name)
        ).scalar()
        if other is not None:
            pid = _v2_merge(conn, int(pid), int(other))
        conn.exec_driver_sql("UPDATE photos SET folder_id = ?, name = ? WHERE id = ?", (target, name, pid))


def _v2_merge(conn: Connection, a: int, b: int) -> int:
    """Merge two records of one file into the one updated last; returns the id that is kept."""
    keep, drop = (a, b) if _v2_updated(conn, a) >= _v2_updated(conn, b) else (b, a)
    for table, columns in (
        ("scores", "analysis_id, attribute, value"),
        ("embeddings", "analysis_id, vector"),
        ("thumbnails", "width, height, jpeg"),
    ):
        conn.exec_driver_sql(
            f"INSERT OR IGNORE INTO {table} (photo_id, {columns}) "
            f"SELECT ?, {columns} FROM {table} WHERE photo_id = ?",
            (keep, drop),
        )
    conn.exec_driver_sql(
        "INSERT OR REPLACE INTO decisions (photo_id, rating, picked, label, changed_at, source) "
        "SELECT ?, rating, picked, label, changed_at, source FROM decisions d WHERE d.photo_id = ? "
        "AND d.changed_at > COALESCE((SELECT changed_at FROM decisions WHERE photo_id = ?), -1)",
        (keep, drop, keep),
    )
    conn.exec_driver_sql("DELETE FROM photos WHERE id = ?", (drop,))  # cascades to its rows
    return keep


def _v2_updated(conn: Connection, photo_id: int) -> float:
    return float(conn.exec_driver_sql("SELECT updated_at FROM photos WHERE id = ?", (photo_id,)).scalar_one())


def _v3(conn: Connection) -> None:
    """Decisions leave the catalog: the sidecar each photo was last seen with (to notice edits by
    other tools), and the journal of `move-rejects` runs (to undo them)."""
    for column in (
        "sidecar_name TEXT",
        "sidecar_mtime_ns INTEGER",
        "sidecar_size INTEGER",
        "sidecar_fields TEXT",
    ):
        conn.exec_driver_sql(f"ALTER TABLE photos ADD COLUMN {column}")
    conn.exec_driver_sql(
        """CREATE TABLE move_batches (
	id INTEGER NOT NULL,
	folder TEXT NOT NULL,
	target TEXT NOT NULL,
	created_at FLOAT NOT NULL,
	finished_at FLOAT,
	undone_at FLOAT,
	made_dirs TEXT,
	PRIMARY KEY (id)
)"""
    )
    conn.exec_driver_sql(
        """CREATE TABLE moved_files (
	batch_id INTEGER NOT NULL,
	seq INTEGER NOT NULL,
	grp INTEGER NOT NULL,
	photo_id INTEGER,
	src TEXT NOT NULL,
	dst TEXT NOT NULL,
	PRIMARY KEY (batch_id, seq),
	FOREIGN KEY(batch_id) REFERENCES move_batches (id) ON DELETE CASCADE,
	FOREIGN KEY(photo_id) REFERENCES photos (id) ON DELETE SET NULL
)"""
    )


def _v4(conn: Connection) -> None:
    """Camera facts for grouping photos into bursts, exposure brackets and focus stacks: exposure
    bias, subject distance, the capture time's sub-second, and which metadata reader stored them
    (NULL here: the next index reads the facts of these photos from their files' headers)."""
    for column in (
        "exposure_bias FLOAT",
        "subject_distance FLOAT",
        "subsec FLOAT",
        "meta_version INTEGER",
    ):
        conn.exec_driver_sql(f"ALTER TABLE photos ADD COLUMN {column}")


_V5_DDL = (
    "ALTER TABLE decisions ADD COLUMN seq INTEGER",
    "CREATE INDEX ix_decisions_seq ON decisions (seq)",
    """CREATE TABLE counters (
	name VARCHAR(32) NOT NULL,
	value INTEGER NOT NULL,
	PRIMARY KEY (name)
)""",
    """CREATE TABLE root_mounts (
	root VARCHAR(64) NOT NULL,
	machine TEXT NOT NULL,
	path TEXT NOT NULL,
	PRIMARY KEY (root, machine),
	UNIQUE (machine, path)
)""",
)


def _v5(conn: Connection) -> None:
    """A studio shares one catalog: decisions carry the change counter windows poll for (NULL for
    decisions made before: nobody is waiting for those), and folder roots are mapped per machine.
    Plain DDL that SQLite and PostgreSQL both accept (a PostgreSQL catalog starts at version 5 or
    later, so later migrations must keep to such DDL)."""
    for ddl in _V5_DDL:
        conn.exec_driver_sql(ddl)


# MIGRATIONS[i] takes the schema from version i to i + 1. Append, never edit a released one.
MIGRATIONS: list[Callable[[Connection], None]] = [_v1, _v2, _v3, _v4, _v5]
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNew(RuntimeError):
    """The catalog was written by a newer release of this program."""


class NotACatalog(RuntimeError):
    """An SQLite database with tables but no catalog schema version: someone else's file."""


def current_version(conn: Connection) -> int:
    return dialect.schema_version(conn)


def migrate(conn: Connection) -> int:
    """Bring the schema up to SCHEMA_VERSION inside the caller's transaction; returns the old version.

    An empty database is created directly at the current version (no migration runs); an older
    catalog runs the missing migrations in order. The caller's transaction makes it all or nothing.
    """
    version = current_version(conn)
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"this catalog has schema version {version}, newer than this program's {SCHEMA_VERSION}; "
            "update clipiqa-desktop or choose another --catalog"
        )
    if version == SCHEMA_VERSION:
        return version
    if version == 0:
        tables = dialect.table_names(conn)
        if tables:
            raise NotACatalog(
                f"it is a database of another program (tables: {', '.join(sorted(tables)[:5])})"
            )
        create_current(conn)
        return version
    for step in MIGRATIONS[version:]:
        step(conn)
    dialect.set_schema_version(conn, SCHEMA_VERSION)
    return version


def create_current(conn: Connection) -> None:
    """A new, empty catalog at the current version, in the caller's transaction."""
    metadata.create_all(conn)
    dialect.set_schema_version(conn, SCHEMA_VERSION)
