"""The catalog side of `move-rejects`: the journal of a batch, and photo records that follow their files.

A batch is written in three steps, so that a kill at any moment can be repaired from what is on disk:

1. `record_batch`: the batch and every planned (src, dst, photo id), frame by frame, in ONE
   transaction, BEFORE any file moves (`finished_at` is NULL).
2. the files move (culling/move_rejects.py), frame by frame;
3. `finish_move`: in ONE transaction, the records of the moved photos take their new folder row
   and name (same id: decisions, scores, embeddings and thumbnail stay), the journal rows of
   frames that did not move are dropped, and the batch is marked finished.

A batch whose `finished_at` is still NULL was interrupted; `pending_batches` lists them so that the
next run (or an undo) can look at the disk and settle each frame (culling/move_rejects.recover).
Undo keeps the journal rows (a retry after a partial undo looks at the disk again) and sets
`undone_at` once every file is back.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, delete, select, update

from . import schema as s
from .catalog import Catalog, _folder_row
from .records import Decision

try:  # POSIX: one move-rejects at a time per catalog (Windows: no lock, documented)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]


class MovesBusy(RuntimeError):
    """Another move-rejects (or its undo) is running on this catalog."""


@dataclass(frozen=True)
class JournalFile:
    """One file of a batch: `grp` is the seq of its frame's first file (a frame moves as one)."""

    seq: int
    grp: int
    photo_id: int | None  # None: a sidecar, or a RAW+JPEG partner the catalog does not know
    src: Path
    dst: Path


@dataclass(frozen=True)
class MoveBatch:
    id: int
    folder: Path
    target: Path
    created_at: float
    finished: bool
    made_dirs: tuple[Path, ...]
    files: tuple[JournalFile, ...]

    def frames(self) -> list[list[JournalFile]]:
        """The files grouped by frame, in journal order."""
        out: dict[int, list[JournalFile]] = {}
        for f in self.files:
            out.setdefault(f.grp, []).append(f)
        return list(out.values())


@contextmanager
def moves_lock(catalog: Catalog, shared: bool = False) -> Iterator[None]:
    """Held while files move (exclusive): a second move-rejects on the same catalog is refused, so
    that one run never 'repairs' a batch another run is still moving. An index run holds it
    `shared` (indexing/pipeline.py): while files move no index starts (it would adopt a file half
    way between its two places), and while any index runs no move starts; both are refused with a
    message (MovesBusy), in any process that uses this catalog, never waited for."""
    if catalog.path is None:  # a PostgreSQL catalog: the same lock for every machine of the studio
        with _server_moves_lock(catalog, shared):
            yield
        return
    if fcntl is None:  # pragma: no cover
        yield
        return
    lock_path = catalog.path.with_name(catalog.path.name + ".moves.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _busy(shared) from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


# The session-level advisory lock of moves on a PostgreSQL catalog ("move"); the write lock of
# connection.py is another key.
MOVES_LOCK_KEY = 0x6D6F7665


def _busy(shared: bool) -> MovesBusy:
    return MovesBusy(
        "rejects are being moved (or put back) on this catalog; index again when that is done"
        if shared
        else "another move-rejects (or its undo) or an index is running on this catalog; "
        "try again when it is done"
    )


@contextmanager
def _server_moves_lock(catalog: Catalog, shared: bool) -> Iterator[None]:
    """moves_lock on PostgreSQL: an advisory lock held by one connection for the whole run (shared
    or exclusive, never waited for); the server releases it when that connection ends, also when
    the process is killed or its machine loses the network."""
    suffix = "_shared" if shared else ""
    with catalog.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        if not conn.exec_driver_sql(f"SELECT pg_try_advisory_lock{suffix}({MOVES_LOCK_KEY})").scalar():
            raise _busy(shared)
        try:
            yield
        finally:
            # on a connection that is gone (the server stopped, the network) the server has freed
            # the lock with the session; the error that ended the run is the one to report
            with suppress(Exception):
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock{suffix}({MOVES_LOCK_KEY})")


def record_batch(
    catalog: Catalog,
    folder: Path,
    target: Path,
    frames: Sequence[Sequence[tuple[int | None, Path, Path]]],
    made_dirs: Sequence[Path] = (),
    keep: Callable[[int, Mapping[int, Decision]], bool] | None = None,
) -> MoveBatch:
    """Journal a batch BEFORE anything moves: `frames` = per frame, its files as (photo id, src, dst);
    `made_dirs`: the folders the batch is about to create (undo removes them again when empty).
    `keep(i, decisions)` is asked inside this write transaction, with the current decisions of every
    photo of the frames, whether frame `i` still moves (a decision may have changed since the plan
    was made, in this or another process); a frame it refuses is not journalled."""
    now = time.time()
    files: list[JournalFile] = []
    with catalog.transaction() as tx:
        if keep is not None:
            decisions = tx.decisions([pid for fr in frames for pid, _s, _d in fr if pid is not None])
            frames = [fr for i, fr in enumerate(frames) if keep(i, decisions)]
        result = tx.conn.execute(
            s.move_batches.insert().values(
                folder=str(folder),
                target=str(target),
                created_at=now,
                made_dirs="\n".join(str(d) for d in made_dirs) or None,
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        batch_id = int(key[0])
        seq = 0
        for frame in frames:
            grp = seq
            for photo_id, src, dst in frame:
                files.append(JournalFile(seq, grp, photo_id, Path(src), Path(dst)))
                seq += 1
        if files:
            tx.conn.execute(
                s.moved_files.insert(),
                [
                    {
                        "batch_id": batch_id,
                        "seq": f.seq,
                        "grp": f.grp,
                        "photo_id": f.photo_id,
                        "src": str(f.src),
                        "dst": str(f.dst),
                    }
                    for f in files
                ],
            )
    return MoveBatch(batch_id, Path(folder), Path(target), now, False, tuple(made_dirs), tuple(files))


def finish_move(
    catalog: Catalog,
    batch_id: int,
    moved: Sequence[JournalFile],
    stayed: Sequence[JournalFile],
    lost: Sequence[JournalFile] = (),
) -> list[str]:
    """After the files moved, in ONE transaction: the records of `moved` photos take their new
    place; the journal rows of frames that `stayed` (and of `lost` files, at neither place) go, the
    records of those that stayed pointing at their old place (an index run may have followed a file
    that was later put back); the batch is finished, or deleted when nothing moved. Returns notes
    on records that could not follow."""
    notes: list[str] = []
    with catalog.transaction() as tx:
        key = catalog.roots.to_stored
        notes = _place_all(tx.conn, key, [(f.photo_id, f.src, f.dst) for f in moved])
        notes += _place_all(tx.conn, key, [(f.photo_id, f.dst, f.src) for f in stayed], follow_unknown=False)
        gone = [f.seq for f in (*stayed, *lost)]
        for chunk in _chunks(gone):
            tx.conn.execute(
                delete(s.moved_files).where(
                    s.moved_files.c.batch_id == batch_id, s.moved_files.c.seq.in_(chunk)
                )
            )
        left = tx.conn.execute(
            select(s.moved_files.c.seq).where(s.moved_files.c.batch_id == batch_id)
        ).first()
        if left is None:
            tx.conn.execute(delete(s.move_batches).where(s.move_batches.c.id == batch_id))
        else:
            tx.conn.execute(
                update(s.move_batches).where(s.move_batches.c.id == batch_id).values(finished_at=time.time())
            )
    return notes


def finish_undo(
    catalog: Catalog, batch_id: int, restored: Sequence[tuple[JournalFile, Path]], complete: bool
) -> list[str]:
    """After files came back, in ONE transaction: their records take the place each file is at now
    (`restored`: journal file, where it went, which is `src` unless that name was taken), the
    journal remembers a changed name, and with `complete` the batch is marked undone."""
    notes: list[str] = []
    with catalog.transaction() as tx:
        back = [(f.photo_id, f.dst, where) for f, where in restored]
        notes = _place_all(tx.conn, catalog.roots.to_stored, back)
        for f, where in restored:
            if where != f.src:
                tx.conn.execute(
                    update(s.moved_files)
                    .where(s.moved_files.c.batch_id == batch_id, s.moved_files.c.seq == f.seq)
                    .values(src=str(where))
                )
        if complete:
            tx.conn.execute(
                update(s.move_batches).where(s.move_batches.c.id == batch_id).values(undone_at=time.time())
            )
    return notes


def pending_batches(catalog: Catalog, folder: Path) -> list[MoveBatch]:
    """Batches of `folder` that were interrupted while their files moved (oldest first)."""
    b = s.move_batches.c
    return _batches(catalog, (b.folder == str(folder)) & b.finished_at.is_(None) & b.undone_at.is_(None))


def last_batch(catalog: Catalog, folder: Path) -> MoveBatch | None:
    """The last batch of `folder` whose files are still at their new place, or None."""
    b = s.move_batches.c
    found = _batches(catalog, (b.folder == str(folder)) & b.finished_at.is_not(None) & b.undone_at.is_(None))
    return found[-1] if found else None


def names_in(catalog: Catalog, directory: Path) -> set[str]:
    """File names the catalog holds a record for in `directory` (a target name must not take one)."""
    q = (
        select(s.photos.c.name)
        .join(s.folders, s.folders.c.id == s.photos.c.folder_id)
        .where(s.folders.c.path == catalog.roots.to_stored(str(directory)))
    )
    with catalog._begin() as conn:  # a read: never waits behind another writer
        return {str(n) for (n,) in conn.execute(q)}


def _batches(catalog: Catalog, where: object) -> list[MoveBatch]:
    b, m = s.move_batches.c, s.moved_files.c
    out: list[MoveBatch] = []
    with catalog._begin() as conn:  # a read
        rows = conn.execute(
            select(b.id, b.folder, b.target, b.created_at, b.finished_at, b.made_dirs)
            .where(where)  # type: ignore[arg-type]
            .order_by(b.id)
        ).all()
        for bid, folder, target, created, finished, made in rows:
            files = tuple(
                JournalFile(int(seq), int(grp), None if pid is None else int(pid), Path(src), Path(dst))
                for seq, grp, pid, src, dst in conn.execute(
                    select(m.seq, m.grp, m.photo_id, m.src, m.dst).where(m.batch_id == bid).order_by(m.seq)
                )
            )
            dirs = tuple(Path(d) for d in str(made).split("\n")) if made else ()
            out.append(
                MoveBatch(
                    int(bid), Path(folder), Path(target), float(created), finished is not None, dirs, files
                )
            )
    return out


def _place_all(
    conn: Connection,
    key: Callable[[str], str],
    files: Sequence[tuple[int | None, Path, Path]],
    follow_unknown: bool = True,
) -> list[str]:
    """Move the records of photo files from `old` to `new` (folder row + name), keeping their ids;
    a photo's recorded sidecar name follows its sidecar when that moved too. With `follow_unknown`,
    a file journalled without a photo id (a partner indexed only after it moved) takes the record
    the catalog has at `old`, if any. `key`: a local folder's path as the catalog stores it (under
    a folder root, roots.py); the journal itself keeps the moving machine's local paths."""
    renamed = {str(old): new for _pid, old, new in files}
    notes: list[str] = []
    p = s.photos.c
    for pid, old, new in files:
        if pid is None and follow_unknown:
            pid = conn.execute(
                select(p.id)
                .join(s.folders, s.folders.c.id == p.folder_id)
                .where(s.folders.c.path == key(str(old.parent)), p.name == old.name)
            ).scalar()
        if pid is None:
            continue
        folder_id = _folder_row(conn, key(str(new.parent)))
        other = conn.execute(select(p.id).where(p.folder_id == folder_id, p.name == new.name)).scalar()
        if other is not None and int(other) != pid:
            notes.append(
                f"{new}: the catalog already has another record there; index {new.parent} to settle it"
            )
            continue
        values: dict[str, object] = {"folder_id": folder_id, "name": new.name, "updated_at": time.time()}
        sidecar = conn.execute(select(p.sidecar_name).where(p.id == pid)).scalar()
        if sidecar is not None and str(old.parent / str(sidecar)) in renamed:
            values["sidecar_name"] = renamed[str(old.parent / str(sidecar))].name
        conn.execute(update(s.photos).where(p.id == pid).values(**values))
    return notes


def _chunks(items: list[int], n: int = 500) -> Iterator[list[int]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]
