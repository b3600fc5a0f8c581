"""The catalog: one SQLite file holding photos, scores, embeddings, thumbnails and decisions.

SQLite in WAL mode (readers never block the one writer), foreign keys on, a busy timeout so a second
process (the CLI while the window indexes) waits instead of failing, synchronous=NORMAL (a power cut
can lose the last transaction, never corrupt the file). Writers commit one transaction per batch, so
a kill at any moment loses at most the batch in flight.

Every method opens its own connection from the engine's pool, so one Catalog may be shared by
threads; writes from several threads are serialised by SQLite.
"""

from __future__ import annotations

import hashlib
import math
import os
import shlex
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import (
    Connection,
    Engine,
    Float,
    and_,
    bindparam,
    case,
    delete,
    func,
    literal_column,
    select,
    update,
)

from ..imaging.metadata import META_VERSION
from . import dialect
from . import roots as rt
from . import schema as s
from .connection import (
    check_location,
    is_server_address,
    open_engine,
    open_server_engine,
    server_url,
    transaction,
)
from .connection import default_catalog_path as default_catalog_path
from .dialect import insert
from .errors import CatalogError as CatalogError
from .records import (
    Decision,
    DecisionDelta,
    GroupInputs,
    PhotoMeta,
    PhotoRecord,
    PhotoScores,
    PhotoState,
    ScoreMatrix,
    SidecarState,
)
from .transaction import (
    CatalogTransaction,
    DecisionChangeFn,
    read_decision_seq,
    read_decisions,
    read_sidecar_states,
)

FINGERPRINT_CHUNK = 64 * 1024


def file_fingerprint(path: Path) -> str:
    """A content fingerprint that survives renames and moves: BLAKE2b of the size, first and last 64 KiB.

    Reading 128 KiB instead of a whole 30 MB RAW keeps this far below the decode cost; camera files
    differ in their first bytes (EXIF time stamps, maker notes), so collisions do not occur in practice.
    """
    h = hashlib.blake2b(digest_size=20)
    with path.open("rb") as f:
        # The open file's own size, not the scan's: a file replaced since the folder was read (a
        # smaller one made seek(-64 KiB, end) fail with EINVAL) is fingerprinted as it is now.
        size = os.fstat(f.fileno()).st_size
        h.update(size.to_bytes(8, "little"))
        h.update(f.read(FINGERPRINT_CHUNK))
        if size > 2 * FINGERPRINT_CHUNK:
            f.seek(-FINGERPRINT_CHUNK, 2)
            h.update(f.read(FINGERPRINT_CHUNK))
    return h.hexdigest()


class Catalog:
    """Open (creating and migrating as needed) the catalog at `path`."""

    def __init__(self, path: Path | str, create: bool = True, readonly: bool = False) -> None:
        """`path`: the catalog's SQLite file, or a PostgreSQL address (postgresql://USER@HOST/DB).

        With `create=False` a missing catalog file is an error instead of a new empty catalog.

        With `readonly=True` (list, export) the catalog is opened read-only, so it can be read on a
        read-only drive; a write then raises CatalogReadOnly. Opening, pragmas, retries and error
        classification live in connection.py and errors.py.
        """
        self.readonly = readonly
        # what opens this catalog again (another process, the window's indexer): its file or address
        self.address = str(path)
        self.path: Path | None
        if is_server_address(path):
            # A PostgreSQL database (the [studio] extra): one code path, its differences in
            # dialect.py, connection.py and errors.py.
            url, self.location = server_url(str(path))
            self.path = None
            self.created = False  # the database is the administrator's; nothing to discard
            self.engine: Engine = open_server_engine(url, self.location, create, readonly)
            return
        self.path, existed = check_location(path, create=create, readonly=readonly)
        self.location = str(self.path)  # for messages
        self.address = str(self.path)
        self.created = not existed  # this Catalog made the file (see connection.discard_if_unused)
        self.engine = open_engine(self.path, existed, readonly)

    @property
    def shared(self) -> bool:
        """True for a catalog on a PostgreSQL server (several machines may use it at once)."""
        return self.path is None

    @contextmanager
    def _begin(self, write: bool = False) -> Iterator[Connection]:
        """One transaction on a pooled connection; database errors become CatalogError.

        Writers start with BEGIN IMMEDIATE (retried while another process writes); readers with a
        plain BEGIN (connection.transaction).
        """
        where = self.path if self.path is not None else self.location
        with transaction(self.engine, where, write=write and not self.readonly) as conn:
            yield conn

    # --- folder roots per machine (roots.py): local paths in and out, stored paths inside ----------
    @property
    def roots(self) -> rt.PathMap:
        """This machine's folder roots: read when first needed, and again by every folder lookup
        (folder_id, folder_ids), so a `roots add` made meanwhile (in another process) applies."""
        found = self.__dict__.get("_roots")
        return found if found is not None else self.reload_roots()

    def reload_roots(self, conn: Connection | None = None) -> rt.PathMap:
        if conn is None:
            with self._begin() as own:
                return self.reload_roots(own)
        self._roots: rt.PathMap = rt.load(conn)
        return self._roots

    def _new_folder_row(self, conn: Connection, local: str) -> int:
        """The id of the folder row of the local directory `local`, created if needed; a new row
        for a folder that holds a folder of a root this machine does not mount is refused
        (RootNotMounted), so a second machine never indexes a studio's shoots as new folders."""
        paths = self.roots
        key = paths.to_stored(local)
        row = conn.execute(select(s.folders.c.id).where(s.folders.c.path == key)).scalar()
        if row is not None:
            return int(row)
        if key == local and paths.unmounted:
            match = rt.unmounted_match(conn, local, paths, file_fingerprint)
            if match is not None:
                raise self._not_mounted(local, match)
        return _new_id(conn.execute(s.folders.insert().values(path=key)))

    def unmounted_root(self, folder: Path) -> rt.RootNotMounted | None:
        """Why the local `folder`, which has no folder row, is not in the catalog when it holds the
        photos of a folder under a root this machine does not mount (list/export say so instead
        of "not indexed"); None otherwise."""
        local = str(Path(folder).expanduser().resolve())
        with self._begin() as conn:
            paths = self.reload_roots(conn)
            if not paths.unmounted or not os.path.isdir(local):
                return None
            match = rt.unmounted_match(conn, local, paths, file_fingerprint)
        if match is None:
            return None
        return self._not_mounted(local, match)

    def check_mounted(self, directories: Iterable[Path]) -> None:
        """Raise RootNotMounted when one of these local directories (an index run's, checked before
        anything is decoded or written) has no folder row yet and holds the photos of a folder of a
        root this machine does not mount. One small query while every root is mounted here."""
        with self._begin() as conn:
            paths = self.reload_roots(conn)
            if not paths.unmounted:
                return
            for local in sorted({str(Path(d)) for d in directories}):
                key = paths.to_stored(local)
                if key != local:  # under a root this machine mounts
                    continue
                if conn.execute(select(s.folders.c.id).where(s.folders.c.path == key)).first() is not None:
                    continue
                match = rt.unmounted_match(conn, local, paths, file_fingerprint)
                if match is not None:
                    raise self._not_mounted(local, match)

    def _not_mounted(self, local: str, match: tuple[str, str, str]) -> rt.RootNotMounted:
        root, stored, mount = match
        where = f"{local} holds the photos of {stored}, but"
        return rt.RootNotMounted(root, where, mount, self._catalog_option())

    def _catalog_option(self) -> str:
        """` --catalog WHERE` for a command our messages suggest, unless it is the default catalog."""
        if self.path is not None and self.path == default_catalog_path():
            return ""
        return f" --catalog {shlex.quote(self.address if self.path is not None else self.location)}"

    def _local_name(self, name: str, base: str) -> str:
        """A photo name of `_relative_name_sql` outside its (stored) base, made local ("/"
        separators): relative to the local `base` when it lies below it (a root mounted below the
        listed folder: "shoots/2026/IMG_1.JPG", as photo_states names it), else absolute; a stored
        one of a root this machine does not mount is left as it is."""
        if not rt.is_stored(name):
            return name
        root, rel = rt.split_stored(name)
        local = self.roots.local_or_none(rt.stored_path(root, rel.lstrip("/")))
        if local is None:
            return name
        local = local.replace(os.sep, "/")
        prefix = _prefix(base).replace(os.sep, "/")
        return local[len(prefix) :] if local.startswith(prefix) else local

    # --- folders and analyses ------------------------------------------------------------------
    def folder_id(self, folder: Path, create: bool = True) -> int | None:
        key = str(Path(folder).expanduser().resolve())
        # A lookup is a read: it must not wait behind another process's write (the window calls it).
        with self._begin(write=create) as conn:
            paths = self.reload_roots(conn)
            if create:
                return self._new_folder_row(conn, key)
            q = select(s.folders.c.id).where(s.folders.c.path == paths.to_stored(key))
            row = conn.execute(q).scalar()
            return None if row is None else int(row)

    def folders(self) -> list[tuple[int, Path]]:
        """(id, local path) of every folder row; those under a root this machine does not mount are
        left out."""
        with self._begin() as conn:
            rows = conn.execute(select(s.folders.c.id, s.folders.c.path)).all()
        paths = self.roots
        return [(int(i), Path(local)) for i, p in rows if (local := paths.local_or_none(str(p))) is not None]

    def folder_ids(self, root: Path, recursive: bool) -> list[int]:
        """The folder rows of `root` (first, when it has one) and, if `recursive`, of every folder
        under it. A folder row is one real directory, so `/a/b` never matches `/a/bc`. A root this
        machine mounts below `root` is part of the tree (its rows are stored in the root's form)."""
        local = str(Path(root).expanduser().resolve())
        path = s.folders.c.path
        with self._begin() as conn:
            paths = self.reload_roots(conn)
            key = paths.to_stored(local)
            where = path == key
            if recursive:
                inside = [key, *(rt.stored_path(name) for name, _ in paths.mounts_inside(local))]
                for top in inside:
                    prefix = _prefix(top)
                    where = where | (path == top) | (func.substr(path, 1, len(prefix)) == prefix)
            q = select(s.folders.c.id, path).where(where)
            found = [(str(p) != key, str(p), int(i)) for i, p in conn.execute(q)]
        return [i for _, _, i in sorted(found)]

    def photo_count(self, folder_ids: Sequence[int]) -> int:
        """How many photos (of any status) these folder rows hold."""
        ids = [int(f) for f in folder_ids]
        if not ids:
            return 0
        with self._begin() as conn:
            q = select(func.count()).select_from(s.photos).where(s.photos.c.folder_id.in_(ids))
            return int(conn.execute(q).scalar_one())

    def analysis_id(
        self, model_id: str, size: str, embed_dim: int | None = None, logit_scale: float | None = None
    ) -> int | None:
        """The id of (model, analysis size); created when embed_dim and logit_scale are given."""
        with self._begin(write=True) as conn:
            row = conn.execute(
                select(s.analyses.c.id).where(s.analyses.c.model_id == model_id, s.analyses.c.size == size)
            ).scalar()
            if row is None and embed_dim is not None and logit_scale is not None:
                row = _new_id(
                    conn.execute(
                        s.analyses.insert().values(
                            model_id=model_id, size=size, embed_dim=embed_dim, logit_scale=logit_scale
                        )
                    )
                )
            return None if row is None else int(row)

    def has_scores(self, folder_ids: int | Sequence[int], analysis_id: int) -> bool:
        """True when some photo of the folder(s) has scores of this analysis."""
        ids = _ids(folder_ids)
        with self._begin() as conn:
            q = (
                select(s.scores.c.photo_id)
                .join(s.photos, s.photos.c.id == s.scores.c.photo_id)
                .where(s.scores.c.analysis_id == analysis_id, s.photos.c.folder_id.in_(ids))
                .limit(1)
            )
            return conn.execute(q).first() is not None

    def analysis_sizes(self, model_id: str) -> list[str]:
        """Analysis sizes that have scores for `model_id`, newest first."""
        with self._begin() as conn:
            q = (
                select(s.analyses.c.size)
                .where(s.analyses.c.model_id == model_id)
                .order_by(s.analyses.c.id.desc())
            )
            return [str(r[0]) for r in conn.execute(q)]

    def analysis(self, analysis_id: int) -> tuple[str, str, float]:
        """(model_id, size, logit_scale) of an analysis."""
        with self._begin() as conn:
            row = conn.execute(
                select(s.analyses.c.model_id, s.analyses.c.size, s.analyses.c.logit_scale).where(
                    s.analyses.c.id == analysis_id
                )
            ).one()
            return str(row[0]), str(row[1]), float(row[2])

    def last_analysis(self, folder_ids: int | Sequence[int]) -> int | None:
        """The analysis whose scores `list` and the window show for a folder, or for a tree.

        A folder row's last analysis is the last one a complete index run left it with (a
        cancelled run never moves it, unless the folder had none). For several folder rows (a
        tree): the analysis that most photos of the tree were last indexed with, and among equals
        the one indexed latest."""
        ids = _ids(folder_ids)
        if not ids:
            return None
        n_photos = (
            select(func.count(s.photos.c.id))
            .where(s.photos.c.folder_id == s.folders.c.id)
            .correlate(s.folders)
            .scalar_subquery()
        )
        q = (
            select(s.folders.c.last_analysis_id)
            .where(s.folders.c.id.in_(ids), s.folders.c.last_analysis_id.is_not(None))
            .group_by(s.folders.c.last_analysis_id)
            .order_by(func.sum(n_photos).desc(), func.max(s.folders.c.last_indexed_at).desc())
            .limit(1)
        )
        with self._begin() as conn:
            value = conn.execute(q).scalar()
            return None if value is None else int(value)

    def set_last_analysis(self, folder_ids: int | Sequence[int], analysis_id: int) -> None:
        with self._begin(write=True) as conn:
            for chunk in _chunks(_ids(folder_ids), 500):
                conn.execute(
                    update(s.folders)
                    .where(s.folders.c.id.in_(chunk))
                    .values(last_analysis_id=analysis_id, last_indexed_at=time.time())
                )

    # --- indexing ------------------------------------------------------------------------------
    def photo_states(
        self,
        folder_ids: int | Sequence[int],
        analysis_id: int | None,
        root: Path | None = None,
        measures: Sequence[str] = (),
    ) -> dict[str, PhotoState]:
        """What the catalog knows of the photos of these folder rows, keyed by their path relative
        to `root` ("100CANON/a.jpg"; default: the first folder's path), or by their absolute path
        when they are not under `root`. `PhotoState.measured` says which of the attributes
        `measures` (the pixel measures) each photo has in that analysis."""
        ids = _ids(folder_ids)
        if not ids:
            return {}
        scored = (
            select(
                s.scores.c.photo_id,
                # which pixel measures it has (a photo indexed before they existed lacks them)
                func.aggregate_strings(
                    case((s.scores.c.attribute.in_(list(measures)), s.scores.c.attribute), else_=None), ","
                ).label("measured"),
            )
            .where(s.scores.c.analysis_id == analysis_id)
            .group_by(s.scores.c.photo_id)
            .subquery()
        )
        q = (
            select(
                s.photos.c.id,
                s.photos.c.name,
                s.photos.c.size_bytes,
                s.photos.c.mtime_ns,
                s.photos.c.status,
                scored.c.photo_id.is_not(None),
            )
            .add_columns(s.photos.c.folder_id, s.photos.c.error, scored.c.measured)
            .select_from(s.photos.outerjoin(scored, scored.c.photo_id == s.photos.c.id))
            .where(s.photos.c.folder_id.in_(ids))
        )
        with self._begin() as conn:
            stored = conn.execute(select(s.folders.c.id, s.folders.c.path).where(s.folders.c.id.in_(ids)))
            paths = {fid: self.roots.to_local(str(path)) for fid, path in stored}
            base = str(Path(root).expanduser().resolve()) if root is not None else _common(paths.values())
            where = {fid: _relative_prefix(str(path), base) for fid, path in paths.items()}
            states = {}
            for r in conn.execute(q):
                key = where[r[6]] + r[1]
                measured = frozenset(r[8].split(",")) if r[8] else frozenset()
                states[key] = PhotoState(
                    int(r[0]), key, int(r[2]), int(r[3]), r[4], bool(r[5]), r[7], measured
                )
            return states

    def mark_missing(self, photo_ids: Iterable[int]) -> int:
        """Mark photos whose files are gone. Their scores and decisions stay."""
        ids = [int(p) for p in photo_ids]
        if not ids:
            return 0
        with self._begin(write=True) as conn:
            for chunk in _chunks(ids, 500):
                conn.execute(
                    update(s.photos)
                    .where(s.photos.c.id.in_(chunk))
                    .values(status="missing", updated_at=time.time())
                )
        return len(ids)

    def mark_present(self, photo_ids: Iterable[int]) -> None:
        """A missing photo came back unchanged: it is ok again, with everything it had."""
        ids = [int(p) for p in photo_ids]
        with self._begin(write=True) as conn:
            for chunk in _chunks(ids, 500):
                conn.execute(
                    update(s.photos)
                    .where(s.photos.c.id.in_(chunk), s.photos.c.status == "missing")
                    .values(status="ok", updated_at=time.time())
                )

    def stale_meta(self, folder_ids: int | Sequence[int]) -> list[int]:
        """Ids of the readable photos (status ok) of these folder rows whose camera facts were read by
        an older metadata reader than META_VERSION (NULL: indexed before the catalog kept them). Once
        they are refreshed this finds none: a re-index of an unchanged folder costs one query."""
        ids = _ids(folder_ids)
        if not ids:
            return []
        q = select(s.photos.c.id).where(
            s.photos.c.folder_id.in_(ids),
            s.photos.c.status == "ok",
            s.photos.c.meta_version.is_(None) | (s.photos.c.meta_version < META_VERSION),
        )
        with self._begin() as conn:
            return [int(r[0]) for r in conn.execute(q.order_by(s.photos.c.id))]

    def update_meta(self, facts: Sequence[tuple[int, PhotoMeta]]) -> int:
        """Store camera facts read again from unchanged files (`stale_meta`'s photos), in ONE
        transaction; a photo indexed meanwhile (its facts already current) or no longer ok is left
        alone. Returns how many photos were updated. A fact the file no longer states keeps its
        stored value; nothing else of the photo changes."""
        if not facts:
            return 0
        names = list(PhotoMeta.__dataclass_fields__)
        q = (
            update(s.photos)
            .where(
                s.photos.c.id == bindparam("pid"),
                s.photos.c.status == "ok",
                s.photos.c.meta_version.is_(None) | (s.photos.c.meta_version < META_VERSION),
            )
            # a fact the header does not state keeps the value the index stored (from the decoded
            # preview: many RAWs keep their capture time only in the embedded JPEG)
            .values(
                {
                    **{n: func.coalesce(bindparam(f"m_{n}"), s.photos.c[n]) for n in names},
                    "meta_version": META_VERSION,
                }
            )
        )
        rows = [{"pid": int(pid), **{f"m_{n}": getattr(meta, n) for n in names}} for pid, meta in facts]
        with self._begin(write=True) as conn:
            return int(conn.execute(q, rows).rowcount)

    def write_batch(
        self,
        folder_id: int,
        analysis_id: int,
        records: Sequence[PhotoRecord],
        replaced: list[str] | None = None,
    ) -> dict[str, int]:
        """Write a batch of indexed photos in ONE transaction; returns rel_path -> photo id.

        A file that now holds a DIFFERENT photo (another capture time, e.g. a reused card's
        numbering copied over an earlier import) does not inherit the old photo's decision, scores
        or embeddings: they are dropped and its rel_path is appended to `replaced`. An edit of the
        same photo (same capture time, or none known) keeps everything.

        Each photo is stored under the folder row of the directory that contains it (`rel_path` is
        relative to `folder_id`'s folder, or absolute), so it has one record whatever folder was
        indexed. A new path whose fingerprint matches a photo marked missing, or one whose file is
        no longer where the catalog has it, takes over that photo's record, so a renamed or moved
        file keeps its scores and decisions, across folders too.
        """
        now = time.time()
        ids: dict[str, int] = {}
        with self._begin(write=True) as conn:
            tx = CatalogTransaction(conn)
            stored = conn.execute(select(s.folders.c.path).where(s.folders.c.id == folder_id)).scalar_one()
            root = self.roots.to_local(str(stored))
            directories: dict[str, int] = {}
            for rec in records:
                head, _, name = rec.rel_path.rpartition("/")
                if head or rec.rel_path.startswith("/"):
                    directory = str(Path(root) / (head or "/"))
                    if directory not in directories:
                        directories[directory] = self._new_folder_row(conn, directory)
                    where = directories[directory]
                else:
                    where = folder_id
                pid, other_photo = self._upsert_photo(conn, where, name, rec, now)
                ids[rec.rel_path] = pid
                if other_photo:
                    for table in (s.decisions, s.scores, s.embeddings):
                        conn.execute(delete(table).where(table.c.photo_id == pid))
                    if replaced is not None:
                        replaced.append(rec.rel_path)
                conn.execute(
                    delete(s.scores).where(s.scores.c.photo_id == pid, s.scores.c.analysis_id == analysis_id)
                )
                if rec.error is not None:  # a file that no longer decodes keeps no stale results
                    conn.execute(
                        delete(s.embeddings).where(
                            s.embeddings.c.photo_id == pid, s.embeddings.c.analysis_id == analysis_id
                        )
                    )
                    conn.execute(delete(s.thumbnails).where(s.thumbnails.c.photo_id == pid))
                elif rec.scores:  # without an embedding: pixel measures only (--model none)
                    conn.execute(
                        s.scores.insert(),
                        [
                            {"photo_id": pid, "analysis_id": analysis_id, "attribute": k, "value": float(v)}
                            for k, v in rec.scores.items()
                        ],
                    )
                if rec.error is None and rec.scores is not None and rec.embedding is not None:
                    vec = np.asarray(rec.embedding, dtype="<f2").tobytes()
                    conn.execute(
                        insert(conn, s.embeddings)
                        .values(photo_id=pid, analysis_id=analysis_id, vector=vec)
                        .on_conflict_do_update(
                            index_elements=["photo_id", "analysis_id"], set_={"vector": vec}
                        )
                    )
                if rec.thumbnail is not None:
                    w, h, jpeg = rec.thumbnail
                    conn.execute(
                        insert(conn, s.thumbnails)
                        .values(photo_id=pid, width=w, height=h, jpeg=jpeg)
                        .on_conflict_do_update(
                            index_elements=["photo_id"], set_={"width": w, "height": h, "jpeg": jpeg}
                        )
                    )
                # A decision made in another tool, through the one decision path: adopted only while
                # the catalog holds no decision row for this photo (an explicit "0 stars, no flag"
                # made here is a decision and stays).
                found = rec.xmp_decision
                if found is not None and not tx.decided([pid]):
                    tx.set_decisions({pid: found}, "xmp")
                if rec.sidecar is not None:
                    tx.set_sidecar_state(pid, rec.sidecar)
        return ids

    def _upsert_photo(
        self, conn: Any, folder_id: int, name: str, rec: PhotoRecord, now: float
    ) -> tuple[int, bool]:
        """(photo id, whether the file at this path now holds a different photo than its record)."""
        values: dict[str, Any] = {
            "size_bytes": rec.size_bytes,
            "mtime_ns": rec.mtime_ns,
            "fingerprint": rec.fingerprint,
            "status": "ok" if rec.error is None else "error",
            "error": rec.error,
            "updated_at": now,
            "meta_version": META_VERSION,  # the facts below are this reader's (none for an error)
        }
        if rec.error is not None:  # forget what the old content said about itself
            values.update(
                width=None, height=None, orientation=None, **dict.fromkeys(PhotoMeta.__dataclass_fields__)
            )
        else:
            values.update(
                width=rec.width,
                height=rec.height,
                orientation=rec.orientation,
                **{k: getattr(rec.meta, k) for k in rec.meta.__dataclass_fields__},
            )
        row = conn.execute(
            select(s.photos.c.id, s.photos.c.fingerprint, s.photos.c.captured_at).where(
                s.photos.c.folder_id == folder_id, s.photos.c.name == name
            )
        ).first()
        existing = None if row is None else row[0]
        other_photo = (
            row is not None
            and rec.error is None
            and None not in (row[1], rec.fingerprint, row[2], rec.meta.captured_at)
            and row[1] != rec.fingerprint
            and row[2] != rec.meta.captured_at
        )
        if existing is None and rec.fingerprint:
            existing = _moved_record(conn, rec.fingerprint, self.roots.local_or_none)
            if existing is not None:  # renamed or moved: the record follows the file
                values.update(folder_id=folder_id, name=name)
        if existing is not None:
            conn.execute(update(s.photos).where(s.photos.c.id == existing).values(**values))
            return int(existing), other_photo
        result = conn.execute(
            s.photos.insert().values(folder_id=folder_id, name=name, added_at=now, **values)
        )
        return _new_id(result), False

    def unscored_attributes(
        self, folder_ids: Sequence[int], analysis_id: int, keys: Sequence[str]
    ) -> list[str]:
        """Those of `keys` that some photo with an embedding of this analysis has no score for
        (e.g. an attribute added after the folder was indexed)."""
        ids = _ids(folder_ids)
        if not ids or not keys:
            return []
        in_tree = s.photos.c.folder_id.in_(ids)
        with self._begin() as conn:
            # Fast path (every re-index asks): when no photo of the whole catalog lacks one of the
            # keys, none of the tree does. Both counts read indexes/rows only, no join.
            everywhere = conn.execute(
                select(func.count())
                .select_from(s.embeddings)
                .where(s.embeddings.c.analysis_id == analysis_id)
            ).scalar_one()
            per_key: dict[str, int] = dict(
                conn.execute(
                    select(s.scores.c.attribute, func.count())
                    .where(s.scores.c.analysis_id == analysis_id, s.scores.c.attribute.in_(list(keys)))
                    .group_by(s.scores.c.attribute)
                ).all()
            )
            if all(per_key.get(k, 0) >= everywhere for k in keys):
                return []
            n = conn.execute(
                select(func.count())
                .select_from(s.embeddings.join(s.photos, s.photos.c.id == s.embeddings.c.photo_id))
                .where(s.embeddings.c.analysis_id == analysis_id, in_tree)
            ).scalar_one()
            counts: dict[str, int] = dict(
                conn.execute(
                    select(s.scores.c.attribute, func.count())
                    .select_from(
                        s.scores.join(s.photos, s.photos.c.id == s.scores.c.photo_id).join(
                            s.embeddings,
                            and_(
                                s.embeddings.c.photo_id == s.scores.c.photo_id,
                                s.embeddings.c.analysis_id == s.scores.c.analysis_id,
                            ),
                        )
                    )
                    .where(
                        s.scores.c.analysis_id == analysis_id, s.scores.c.attribute.in_(list(keys)), in_tree
                    )
                    .group_by(s.scores.c.attribute)
                ).all()
            )
        return [k for k in keys if counts.get(k, 0) < n]

    def add_scores(
        self,
        analysis_id: int,
        photo_ids: np.ndarray,
        keys: Sequence[str],
        values: np.ndarray,
        replace_beyond: float | None = None,
    ) -> int:
        """Fill in scores (N photos × K keys) computed from stored embeddings, in ONE transaction;
        scores a photo already has are kept, or with `replace_beyond` replaced when they differ by
        more than that. Returns how many were added (or replaced)."""
        rows = [
            {"photo_id": int(pid), "analysis_id": int(analysis_id), "attribute": k, "value": float(v)}
            for pid, row in zip(photo_ids, values, strict=True)
            for k, v in zip(keys, row, strict=True)
            if np.isfinite(v)
        ]
        added = 0
        with self._begin(write=True) as conn:
            stmt = insert(conn, s.scores)
            upsert = (
                stmt.on_conflict_do_nothing()
                if replace_beyond is None
                else stmt.on_conflict_do_update(
                    index_elements=["photo_id", "analysis_id", "attribute"],
                    set_={"value": stmt.excluded.value},
                    where=func.abs(s.scores.c.value - stmt.excluded.value) > replace_beyond,
                )
            )
            # counted by RETURNING (the rows inserted, or updated past the WHERE): an executemany's
            # rowcount is -1 where SQLAlchemy batches the INSERT (PostgreSQL)
            upsert = upsert.returning(s.scores.c.photo_id)
            for chunk in _chunks(rows, 5000):
                added += len(conn.execute(upsert, chunk).all())
        return added

    def replace_scores(
        self,
        analysis_id: int,
        key: str,
        folder_ids: Sequence[int],
        photo_ids: Sequence[int],
        values: np.ndarray,
    ) -> int:
        """Set one attribute computed from stored data (`learn --save`'s keep-probability) for the
        photos of these folder rows, in ONE transaction: `values` for `photo_ids`, and none for
        every other photo of the folders (a value an earlier run left would be stale). Returns how
        many were written."""
        rows = [
            {"photo_id": int(pid), "analysis_id": int(analysis_id), "attribute": key, "value": float(v)}
            for pid, v in zip(photo_ids, values, strict=True)
            if np.isfinite(v)
        ]
        sc = s.scores.c
        in_tree = select(s.photos.c.id).where(s.photos.c.folder_id.in_(_ids(folder_ids)))
        with self._begin(write=True) as conn:
            conn.execute(
                delete(s.scores).where(
                    sc.analysis_id == analysis_id, sc.attribute == key, sc.photo_id.in_(in_tree)
                )
            )
            for chunk in _chunks(rows, 5000):
                conn.execute(insert(conn, s.scores).on_conflict_do_nothing(), chunk)
        return len(rows)

    # --- reading ---------------------------------------------------------------------------------
    def embeddings(self, folder_ids: Sequence[int], analysis_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(photo ids, float32 matrix N×D) of the stored embeddings, for rescoring without images."""
        q = (
            select(s.embeddings.c.photo_id, s.embeddings.c.vector)
            .join(s.photos, s.photos.c.id == s.embeddings.c.photo_id)
            .where(s.embeddings.c.analysis_id == analysis_id, s.photos.c.folder_id.in_(_ids(folder_ids)))
            .order_by(s.embeddings.c.photo_id)
        )
        with self._begin() as conn:
            rows = conn.execute(q).all()
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        blob = b"".join(r[1] for r in rows)
        matrix = np.frombuffer(blob, dtype="<f2").reshape(len(rows), -1).astype(np.float32)
        return ids, matrix

    def embeddings_of(self, photo_ids: Sequence[int], analysis_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(photo ids, float32 matrix N×D) of these photos' stored embeddings of one analysis, ordered
        by id; photos without one are left out (the taste model reads other shoots' decided photos)."""
        e = s.embeddings.c
        rows: list[Any] = []
        with self._begin() as conn:
            for chunk in _chunks(sorted({int(p) for p in photo_ids}), 500):
                q = select(e.photo_id, e.vector).where(e.analysis_id == analysis_id, e.photo_id.in_(chunk))
                rows += conn.execute(q.order_by(e.photo_id)).all()
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        blob = b"".join(r[1] for r in rows)
        return ids, np.frombuffer(blob, dtype="<f2").reshape(len(rows), -1).astype(np.float32)

    def decided_photos(
        self, analysis_id: int, exclude_folder_ids: Sequence[int] = ()
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(photo ids, ratings, picked, capture times) of every photo outside `exclude_folder_ids`
        that is kept or rejected (rating ≠ 0 or picked) and has an embedding of this analysis,
        ordered by id: the photographer's decisions on other shoots, which the taste model learns
        from too. Times are seconds (camera time read as UTC, dialect.epoch_seconds), NaN when
        unknown: the taste model keeps a burst's frames within one cross-validation fold."""
        d, p, e = s.decisions.c, s.photos.c, s.embeddings.c
        excluded = _ids(exclude_folder_ids) if exclude_folder_ids else []
        with self._begin() as conn:
            seconds = literal_column(dialect.epoch_seconds(conn, "photos.captured_at"), Float)
            q = (
                select(d.photo_id, d.rating, d.picked, seconds)
                .join(s.photos, p.id == d.photo_id)
                .join(s.embeddings, and_(e.photo_id == d.photo_id, e.analysis_id == analysis_id))
                .where((d.rating != 0) | d.picked)
                .order_by(d.photo_id)
            )
            if excluded:
                q = q.where(p.folder_id.not_in(excluded))
            rows = conn.execute(q).all()
        n = len(rows)
        return (
            np.fromiter((r[0] for r in rows), dtype=np.int64, count=n),
            np.fromiter((r[1] for r in rows), dtype=np.int8, count=n),
            np.fromiter((bool(r[2]) for r in rows), dtype=bool, count=n),
            np.fromiter(
                (float(r[3]) if r[3] is not None else math.nan for r in rows), dtype=np.float64, count=n
            ),
        )

    def thumbnail(self, photo_id: int) -> bytes | None:
        with self._begin() as conn:
            return conn.execute(
                select(s.thumbnails.c.jpeg).where(s.thumbnails.c.photo_id == photo_id)
            ).scalar()

    def group_inputs(
        self, folder_ids: Sequence[int], analysis_id: int | None, root: Path | None = None
    ) -> GroupInputs:
        """What grouping into bursts, brackets and scenes needs (records.GroupInputs): every photo of
        these folder rows that is not missing, ordered by id, named relative to `root` as `rows`
        names them; the capture time (camera local time read as UTC) plus its sub-second as float
        seconds, NaN when unknown or unparseable; the embeddings of `analysis_id` (unit float32 rows,
        zeros where none; no columns for None or an analysis without embeddings); the camera as
        "make model" (just the model when it already names the make). Two raw queries: 20,000
        photos with 1024-d embeddings load in ~0.1 s (benchmarks/group_inputs.py)."""
        folders = [int(f) for f in folder_ids]
        dim = 0
        if analysis_id is not None:
            with self._begin() as conn:
                found = conn.execute(
                    select(s.analyses.c.embed_dim).where(s.analyses.c.id == int(analysis_id))
                ).scalar()
            dim = int(found or 0)
        if not folders:
            return GroupInputs.empty(dim)
        base = str(Path(root).expanduser().resolve()) if root is not None else self._common_folder(folders)
        relative, params = _relative_name_sql(self.roots.to_stored(base))
        camera = (
            "CASE WHEN p.camera_make IS NULL THEN p.camera_model WHEN p.camera_model IS NULL "
            "THEN p.camera_make WHEN lower(substr(p.camera_model, 1, length(p.camera_make))) "
            "= lower(p.camera_make) THEN p.camera_model ELSE p.camera_make || ' ' || p.camera_model END"
        )
        with self._begin() as conn:
            in_folders, params["folders"] = dialect.ids_sql(conn, "folders", folders)
            where = f"p.folder_id IN {in_folders} AND p.status != 'missing'"
            # epoch_seconds is NULL for a time that cannot be read: NaN below
            photo_sql = (
                f"SELECT p.id, {dialect.epoch_seconds(conn, 'p.captured_at')} + COALESCE(p.subsec, 0.0), "
                "p.exposure_bias, p.subject_distance, p.exposure_time, p.f_number, p.iso, "
                f"{relative}, {camera} "
                f"FROM photos p JOIN folders f ON f.id = p.folder_id WHERE {where} ORDER BY p.id"
            )
            rows = dialect.fetch(conn, photo_sql, params)
            vectors = []
            if dim and rows:  # in any order (no sort of the blobs): placed by id below
                vectors = dialect.fetch(
                    conn,
                    "SELECT e.photo_id, e.vector FROM photos p JOIN embeddings e ON e.photo_id = p.id "
                    f"AND e.analysis_id = :analysis WHERE {where} AND length(e.vector) = :length",
                    {"analysis": int(analysis_id), "folders": params["folders"], "length": 2 * dim},  # type: ignore[arg-type]
                )
        if not rows:
            return GroupInputs.empty(dim)
        columns = list(zip(*rows, strict=True))
        if self.roots:  # a photo outside base under a root: its local path
            columns[7] = tuple(self._local_name(n, base) if rt.is_stored(n) else n for n in columns[7])
        numbers = np.array(columns[:7], dtype=np.float64)  # None -> NaN
        ids = numbers[0].astype(np.int64)
        embeddings, has = _unit_rows(ids, vectors, dim)
        return GroupInputs(
            ids=ids,
            names=list(columns[7]),
            times=numbers[1],
            embeddings=embeddings,
            has_embedding=has,
            exposure_bias=numbers[2],
            subject_distance=numbers[3],
            exposure_time=numbers[4],
            f_number=numbers[5],
            iso=numbers[6],
            camera=list(columns[8]),
        )

    def rows(
        self,
        folder_ids: Sequence[int],
        analysis_id: int | None,
        photo_ids: Sequence[int] | None = None,
        root: Path | None = None,
    ) -> tuple[list[tuple], ScoreMatrix]:
        """Photo rows joined with decisions, ordered by id, and the scores of one analysis.

        A row is (id, root, path relative to root, status, error, captured_at, width, height,
        rating, picked, label): `root` defaults to the folder all of `folder_ids` are in (the
        folder itself for one), the relative path is "100CANON/IMG_1.JPG" for a photo of a sub-folder, and
        absolute for a photo outside root; os.path.join(row[1], row[2]) is the file.
        With `photo_ids`, only those photos (the GUI merges each indexed batch this way). Raw SQL
        and a pivot in SQLite: 20,000 photos × 12 scores load in a fraction of a second.
        """
        folders = [int(f) for f in folder_ids]
        base = str(Path(root).expanduser().resolve()) if root is not None else self._common_folder(folders)
        relative, params = _relative_name_sql(self.roots.to_stored(base))
        params["root"] = base  # the root column
        with self._begin() as conn:
            in_folders, params["folders"] = dialect.ids_sql(conn, "folders", folders)
            where = f"p.folder_id IN {in_folders}"
            if photo_ids is not None:
                in_photos, params["photos"] = dialect.ids_sql(conn, "photos", [int(p) for p in photo_ids])
                where += f" AND p.id IN {in_photos}"
            photo_sql = (
                f"SELECT p.id, CAST(:root AS TEXT), {relative}, p.status, p.error, p.captured_at, "
                "p.width, p.height, COALESCE(d.rating, 0), CASE WHEN d.picked THEN 1 ELSE 0 END, d.label "
                "FROM photos p JOIN folders f ON f.id = p.folder_id "
                f"LEFT JOIN decisions d ON d.photo_id = p.id WHERE {where} ORDER BY p.id"
            )
            # plain tuples from the DB-API cursor, which numpy converts in C (dialect.fetch)
            rows = dialect.fetch(conn, photo_sql, params)
            if self.roots:  # a photo outside base under a root: its local path
                rows = [
                    (*r[:2], self._local_name(r[2], base), *r[3:]) if rt.is_stored(r[2]) else r for r in rows
                ]
            if analysis_id is None or not rows:
                return rows, ScoreMatrix.empty()
            params["analysis"] = int(analysis_id)
            attributes = [
                str(a)
                for (a,) in dialect.fetch(
                    conn,
                    "SELECT DISTINCT attribute FROM scores WHERE analysis_id = :analysis ORDER BY attribute",
                    params,
                )
            ]
            if not attributes:
                return rows, ScoreMatrix.empty()
            pivot = ", ".join(
                f"MAX(CASE WHEN s.attribute = :a{i} THEN s.value END)" for i in range(len(attributes))
            )
            params.update({f"a{i}": a for i, a in enumerate(attributes)})
            score_sql = (
                f"SELECT s.photo_id, {pivot} FROM scores s JOIN photos p ON p.id = s.photo_id "
                f"WHERE s.analysis_id = :analysis AND {where} GROUP BY s.photo_id ORDER BY s.photo_id"
            )
            table = dialect.fetch(conn, score_sql, params)
        if not table:
            return rows, ScoreMatrix.empty()
        values = np.array(table, dtype=np.float64)  # None -> nan
        return rows, ScoreMatrix(values[:, 0].astype(np.int64), attributes, values[:, 1:].astype(np.float32))

    def photo_ids_for_paths(self, paths: Sequence[Path]) -> dict[Path, int | None]:
        """Map photo files to catalog ids (None where the catalog does not know the file), whatever
        folder they were indexed from: a photo is keyed by its real directory and file name."""
        out: dict[Path, int | None] = {}
        q = (
            select(s.photos.c.id)
            .join(s.folders, s.folders.c.id == s.photos.c.folder_id)
            .where(s.folders.c.path == bindparam("folder"), s.photos.c.name == bindparam("name"))
        )
        with self._begin() as conn:
            for raw in paths:
                given = Path(raw).expanduser()
                folder = self.roots.to_stored(str(given.parent.resolve()))
                pid = conn.execute(q, {"folder": folder, "name": given.name}).scalar()
                out[Path(raw)] = None if pid is None else int(pid)
        return out

    def photo_scores(self, photo_ids: Sequence[int], analysis_id: int | None = None) -> list[PhotoScores]:
        """Each photo's file, status and scores (what the XMP hand-off writes beside its decision),
        in the order given; unknown ids are left out. The scores are those of `analysis_id`, or by
        default of the analysis the photo's folder was last indexed with."""
        ids = list(dict.fromkeys(int(p) for p in photo_ids))
        p, f = s.photos.c, s.folders.c
        found: dict[int, tuple[Path, str, int | None]] = {}
        scores: dict[tuple[int, int], dict[str, float]] = {}
        analyses: dict[int, tuple[str, str]] = {}
        with self._begin() as conn:
            for chunk in _chunks(ids, 500):
                q = (
                    select(p.id, f.path, p.name, p.status, f.last_analysis_id)
                    .join(s.folders, f.id == p.folder_id)
                    .where(p.id.in_(chunk))
                )
                for pid, folder, name, status, last in conn.execute(q):
                    aid = analysis_id if analysis_id is not None else last
                    # a root this machine does not mount: status "unmounted", the stored path
                    local = self.roots.local_or_none(str(folder))
                    where, status = (folder, "unmounted") if local is None else (local, status)
                    found[int(pid)] = (Path(where) / name, str(status), None if aid is None else int(aid))
                sc = s.scores.c
                q2 = select(sc.photo_id, sc.analysis_id, sc.attribute, sc.value).where(sc.photo_id.in_(chunk))
                for pid, aid, attribute, value in conn.execute(q2):
                    scores.setdefault((int(pid), int(aid)), {})[str(attribute)] = float(value)
            a = s.analyses.c
            for aid, model_id, size in conn.execute(select(a.id, a.model_id, a.size)):
                analyses[int(aid)] = (str(model_id), str(size))
        out: list[PhotoScores] = []
        for pid in ids:
            if pid not in found:
                continue
            path, status, aid = found[pid]
            model, size = analyses.get(aid, (None, None)) if aid is not None else (None, None)
            out.append(PhotoScores(pid, path, status, model, size, scores.get((pid, aid or -1), {})))
        return out

    def _common_folder(self, folder_ids: list[int]) -> str:
        """The deepest folder that all these folder rows are in (itself for one)."""
        with self._begin() as conn:
            q = select(s.folders.c.path).where(s.folders.c.id.in_(folder_ids))
            stored = [str(p) for (p,) in conn.execute(q)]
        return _common(self.roots.to_local(p) for p in stored)

    # --- decisions -----------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[CatalogTransaction]:
        """One write transaction for several steps (see transaction.py): all of them or none."""
        with self._begin(write=True) as conn:
            yield CatalogTransaction(conn)

    def decisions(self, photo_ids: Sequence[int]) -> dict[int, Decision]:
        """Current decisions (Decision() for photos that have none)."""
        with self._begin() as conn:
            return read_decisions(conn, [int(p) for p in photo_ids])  # numpy ints do not bind

    def decision_seq(self) -> int:
        """The decision change counter now: where a window starts polling decision_changes."""
        with self._begin() as conn:
            return read_decision_seq(conn)

    def decision_changes(self, folder_ids: Sequence[int], since: int) -> tuple[int, dict[int, Decision]]:
        """(the counter now, the decisions of photos in these folder rows changed after `since`):
        what other windows, machines, `rate` and XMP imports changed since the last poll. One read
        transaction, the counter read FIRST and the decisions bounded by it, so under PostgreSQL's
        read committed too a decision is never reported early and missed later (writers take the
        counter in commit order). A cheap read: the seq index. A counter lower than `since` (a
        catalog restored from a backup) starts again from 0. A photo deleted since is not reported
        (its decision went with it)."""
        d, p = s.decisions.c, s.photos.c
        with self._begin() as conn:
            seq = read_decision_seq(conn)
            if seq == since:
                return seq, {}
            start = since if since < seq else 0
            # folder_id + 0: no index on it, so SQLite starts from the seq index (a few changed
            # rows) instead of every photo of the folder (0.1 ms instead of 6 ms at 20,000 photos)
            q = (
                select(d.photo_id, d.rating, d.picked, d.label)
                .join(s.photos, p.id == d.photo_id)
                .where(d.seq > start, d.seq <= seq, (p.folder_id + 0).in_(_ids(folder_ids)))
            )
            return seq, {
                int(pid): Decision(int(rating), bool(picked), label)
                for pid, rating, picked, label in conn.execute(q)
            }

    def sidecar_states(self, photo_ids: Sequence[int]) -> dict[int, SidecarState | None]:
        """The sidecar each photo was last seen or written with (None: none recorded, or no such
        photo), read without the write lock (culling/xmp_import.py compares every photo's)."""
        ids = [int(i) for i in photo_ids]
        with self._begin() as conn:
            return dict.fromkeys(ids) | read_sidecar_states(conn, ids, recorded_only=True)

    def update_decisions(
        self, photo_ids: Iterable[int], change: DecisionChangeFn, source: str = "user"
    ) -> list[DecisionDelta]:
        """Apply a change to photos' current decisions in one transaction (CatalogTransaction)."""
        with self.transaction() as tx:
            return tx.update_decisions(photo_ids, change, source)

    def set_decisions(self, decisions: dict[int, Decision], source: str = "user") -> list[DecisionDelta]:
        """Set whole decisions (test set-up, imports of a complete state). Culling actions use
        update_decisions, which changes only the fields the user touched."""
        with self.transaction() as tx:
            return tx.set_decisions(decisions, source)

    # --- prompts and text features -------------------------------------------------------------
    def save_prompt(self, key: str, positive: str, negative: str) -> None:
        vals = {"positive": positive, "negative": negative}
        with self._begin(write=True) as conn:
            conn.execute(
                insert(conn, s.prompts)
                .values(key=key, created_at=time.time(), **vals)
                .on_conflict_do_update(index_elements=["key"], set_=vals)
            )

    def prompts(self) -> list[tuple[str, str, str]]:
        with self._begin() as conn:
            q = select(s.prompts.c.key, s.prompts.c.positive, s.prompts.c.negative).order_by(
                s.prompts.c.created_at
            )
            return [tuple(r) for r in conn.execute(q)]

    def text_features(self, model_id: str, prompts: Sequence[str]) -> dict[str, np.ndarray]:
        with self._begin() as conn:
            q = select(s.text_features.c.prompt, s.text_features.c.vector).where(
                and_(s.text_features.c.model_id == model_id, s.text_features.c.prompt.in_(list(prompts)))
            )
            return {p: np.frombuffer(v, dtype="<f4").copy() for p, v in conn.execute(q)}

    def store_text_features(self, model_id: str, features: dict[str, np.ndarray]) -> None:
        if self.readonly:  # a cache: a catalog opened read-only computes them again next time
            return
        with self._begin(write=True) as conn:
            for prompt, vec in features.items():
                blob = np.asarray(vec, dtype="<f4").tobytes()
                conn.execute(
                    insert(conn, s.text_features)
                    .values(model_id=model_id, prompt=prompt, vector=blob)
                    .on_conflict_do_update(index_elements=["model_id", "prompt"], set_={"vector": blob})
                )

    # --- maintenance ---------------------------------------------------------------------------
    def integrity_check(self) -> str:
        with self._begin() as conn:
            return dialect.integrity_check(conn)

    def close(self) -> None:
        self.engine.dispose()

    def __del__(self) -> None:
        # A Catalog dropped without close(): its pooled connections are closed now, not left to the
        # garbage collector (psycopg warns about a server connection deleted while open).
        engine = self.__dict__.get("engine")
        if engine is not None:
            with suppress(Exception):
                engine.dispose()


def _new_id(result: Any) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _unit_rows(ids: np.ndarray, vectors: list[tuple[int, bytes]], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(N×dim float32 unit rows in the order of `ids`, zeros where none; which rows have one) from
    (photo id, float16 blob) pairs in any order, all of them photos of `ids`. The float16 rows are
    cast straight into the one output array and normalised in place (float16 storage leaves
    |v| = 1 ± 1e-3): at 20,000 × 1024 the 80 MB output is the cost, so nothing else that size is made."""
    out = np.zeros((len(ids), dim), np.float32)
    if not vectors:
        return out, np.zeros(len(ids), bool)
    vectors.sort(key=lambda v: v[0])
    half = np.frombuffer(b"".join(v[1] for v in vectors), "<f2").reshape(len(vectors), dim)
    if len(vectors) == len(ids):  # every photo has one: the same ids, both sorted
        out[...] = half
    else:
        out[np.searchsorted(ids, np.fromiter((v[0] for v in vectors), np.int64, len(vectors)))] = half
    norms = np.sqrt(np.einsum("ij,ij->i", out, out))
    has = norms > 0
    out /= np.where(has, norms, 1.0)[:, None].astype(np.float32)
    return out, has


def _chunks(items: list[Any], n: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _ids(folder_ids: int | Sequence[int]) -> list[int]:
    """One folder id or several, as plain ints (numpy ints do not bind)."""
    if isinstance(folder_ids, int | np.integer):
        return [int(folder_ids)]
    return [int(f) for f in folder_ids]


def _common(paths: Iterable[str]) -> str:
    """The deepest folder that all `paths` are in ("" for none)."""
    paths = list(paths)
    return os.path.commonpath(paths) if paths else ""


def _prefix(folder: str) -> str:
    """What every path inside `folder` starts with: "/a/b/" (so "/a/bc" is not inside "/a/b");
    "/" after a folder stored under a root ("shoots:/2026/"), whatever the system's separator."""
    sep = "/" if rt.is_stored(folder) else os.sep
    return folder if folder.endswith(sep) else folder + sep


def _relative_name_sql(base: str) -> tuple[str, dict[str, Any]]:
    """The SQL expression (over `photos p JOIN folders f`) naming a photo relative to `base` as
    `Catalog.rows` and `group_inputs` show it: "IMG_1.JPG" in base, "100CANON/IMG_1.JPG" below it,
    absolute outside it, with "/" on every system; and its named parameters (dialect.fetch)."""
    prefix = _prefix(base)
    relative = (
        "CASE WHEN f.path = :rel_base THEN p.name "
        "WHEN substr(f.path, 1, CAST(:rel_len AS INTEGER)) = :rel_prefix "
        "THEN substr(f.path, CAST(:rel_start AS INTEGER)) || '/' || p.name ELSE f.path || '/' || p.name END"
    )
    if os.sep != "/":
        relative = f"replace({relative}, '{os.sep}', '/')"
    return relative, {
        "rel_base": base,
        "rel_len": len(prefix),
        "rel_prefix": prefix,
        "rel_start": len(prefix) + 1,
    }


def _relative_prefix(folder: str, root: str) -> str:
    """How a photo of `folder` is named relative to `root`: "" in root, "sub/" below it, or the
    absolute folder path + "/" outside it."""
    if folder == root:
        return ""
    inside = folder.startswith(_prefix(root))
    rel = folder[len(_prefix(root)) :] if inside else folder
    return rel.replace(os.sep, "/") + "/"


def _folder_row(conn: Connection, path: str) -> int:
    """The id of the folder row of `path` (an absolute, resolved directory), created if needed."""
    row = conn.execute(select(s.folders.c.id).where(s.folders.c.path == path)).scalar()
    if row is None:
        row = _new_id(conn.execute(s.folders.insert().values(path=path)))
    return int(row)


def _moved_record(conn: Connection, fingerprint: str, local: Callable[[str], str | None]) -> int | None:
    """The record a renamed or moved file takes over: one with the same content fingerprint that
    is marked missing, or whose folder is there but no longer holds the file. A copy (the original
    still in its place) gets a record of its own, and so does a copy made while the original's card
    or drive is unplugged (its folder is gone too): the original keeps its record and decisions.
    `local` gives a stored folder's local path: a folder under a root this machine does not mount
    (None) counts as unplugged, never as a folder that lost the file."""
    q = (
        select(s.photos.c.id, s.photos.c.status, s.folders.c.path, s.photos.c.name)
        .join(s.folders, s.folders.c.id == s.photos.c.folder_id)
        .where(s.photos.c.fingerprint == fingerprint)
        .order_by(s.photos.c.status != "missing", s.photos.c.id)
    )
    for pid, status, stored, name in conn.execute(q):
        folder = local(str(stored))
        if status == "missing" or (
            folder is not None and os.path.isdir(folder) and not os.path.lexists(os.path.join(folder, name))
        ):
            return int(pid)
    return None
