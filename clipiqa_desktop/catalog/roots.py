"""Folder roots per machine: one shared folder tree (a studio's NAS) that each machine mounts at a
path of its own (`/Volumes/Shoots` on one, `/mnt/shoots` on another), so a shared catalog finds
the same photos on every machine.

The table `root_mounts(root, machine, path)` records where each machine sees each root. A folder
row under a root is stored as `NAME:/REL`: the root's name, a colon, then the folder's path below
the mount with "/" on every system (`shoots:/` is the mount itself, `shoots:/2026/wedding` a folder
below it). That string is never a real absolute path: on POSIX an absolute path starts with "/",
on Windows with a single drive letter and a colon ("C:\\", "C:/") or with "\\\\" (a share), and a
root's name has at least two characters and no "/", "\\" or ":". It ends in "/" only for the
mount itself, so the catalog's folder-prefix logic (`path + "/"` and a substring compare) keeps
working on stored paths as on local ones.

The catalog translates at its boundary (catalog.py): every local path that goes into a query is
`PathMap.to_stored`, every folder path that comes out is `PathMap.to_local`; a folder outside every
root of this machine is stored as it always was (its absolute local path), so a catalog without
roots is exactly what it was before roots existed. The longest matching mount wins, on a path
component boundary (`/mnt/shoots` never matches `/mnt/shootsX`); this machine's mounts are never
nested (`roots add` refuses).

A folder stored under a root that this machine does not mount cannot be found here: reading it
raises `RootNotMounted` (a CatalogError: the CLI prints it, the window shows it), and creating a
new folder row for a local folder that holds the same photos as a folder of such a root (same
names and content fingerprints) is refused with the `roots add` command that maps it, so a second
machine never indexes a studio's shoots again as new folders, and its photos are never marked
missing for want of a mount.

Machine names: `socket.gethostname()`, or $CLIPIQA_MACHINE (tests play two machines on one host;
a machine whose host name changes can keep its mounts with it).
"""

from __future__ import annotations

import os
import re
import shlex
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePath

from sqlalchemy import Connection, delete, func, or_, select, text, update

from . import schema as s
from .errors import CatalogError
from .transaction import CatalogTransaction

MACHINE_ENV = "CLIPIQA_MACHINE"
_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{1,63}"
NAME_RE = re.compile(_NAME + r"\Z")
STORED_RE = re.compile(f"({_NAME}):/")
NAME_RULE = (
    "2 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit (no '/' or ':', and "
    "not a single letter, which would read as a Windows drive)"
)


def machine_name() -> str:
    """This machine's name in `root_mounts`: $CLIPIQA_MACHINE, else the host name; in lower case
    (Windows reports host names in capitals, `--machine edit-pc` must match it)."""
    return (os.environ.get(MACHINE_ENV, "").strip() or socket.gethostname() or "localhost").lower()


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a root, or None."""
    if NAME_RE.match(name):
        return None
    return f"{name!r} cannot name a root: use {NAME_RULE}"


def is_stored(path: str) -> bool:
    """True for a folder path in the stored form `NAME:/REL`."""
    return STORED_RE.match(path) is not None


def split_stored(path: str) -> tuple[str, str]:
    """(root name, path below the mount with "/"; "" for the mount itself) of a stored path."""
    m = STORED_RE.match(path)
    if m is None:
        raise ValueError(f"{path!r} is not a stored root path")
    return m.group(1), path[m.end() :]


def stored_path(name: str, rel: str = "") -> str:
    return f"{name}:/{rel}"


def _under(path: str, mount: str) -> str | None:
    """`path` below `mount` with "/" separators ("" for the mount itself), or None when it is not
    there; on a component boundary ("/mnt/shootsX" is not under "/mnt/shoots")."""
    if path == mount:
        return ""
    prefix = mount if mount.endswith(os.sep) else mount + os.sep
    if not path.startswith(prefix):
        return None
    return path[len(prefix) :].replace(os.sep, "/")


class RootNotMounted(CatalogError):
    """A folder of the catalog lies under a root this machine has no mount for."""

    kind = "not-mounted"

    def __init__(self, root: str, where: str = "", example: str = "PATH", catalog_option: str = "") -> None:
        self.root = root
        command = f"clipiqa-desktop roots add {root} {shlex.quote(example)}{catalog_option}"
        what = f"{where} " if where else ""
        super().__init__(
            f"{what}root {root!r} is not mounted on this machine ({machine_name()}): record where this "
            f"machine sees it with `{command}`"
        )


@dataclass(frozen=True)
class Mount:
    root: str
    machine: str
    path: str


class PathMap:
    """This machine's mounts (root name → absolute local path) and the names of every root the
    catalog knows (mounted here or not)."""

    def __init__(self, mounts: dict[str, str] | None = None, known: Iterable[str] = ()) -> None:
        self.mounts = dict(mounts or {})
        self.known = set(known) | set(self.mounts)
        # longest first: the deepest mount wins (never nested here, but a map is a map)
        self._order = sorted(self.mounts.items(), key=lambda kv: len(kv[1]), reverse=True)

    def __bool__(self) -> bool:
        return bool(self.known)

    @property
    def unmounted(self) -> set[str]:
        """Roots of the catalog that this machine has no mount for."""
        return self.known - set(self.mounts)

    def to_stored(self, local: str | os.PathLike[str]) -> str:
        """The folder path the catalog stores for an absolute local path (identity outside roots)."""
        local = os.fspath(local)
        for name, mount in self._order:
            rel = _under(local, mount)
            if rel is not None:
                return stored_path(name, rel)
        return local

    def to_local(self, stored: str) -> str:
        """The absolute local path of a stored folder path (identity for a local one); a root this
        machine does not mount raises RootNotMounted."""
        found = self.local_or_none(stored)
        if found is None:
            raise RootNotMounted(split_stored(stored)[0], f"{stored}:")
        return found

    def local_or_none(self, stored: str) -> str | None:
        """Like to_local, but None for a root this machine does not mount."""
        m = STORED_RE.match(stored)
        if m is None:
            return stored
        mount = self.mounts.get(m.group(1))
        if mount is None:
            return None
        rel = stored[m.end() :]
        if not rel:
            return mount
        return os.path.join(mount, rel.replace("/", os.sep))

    def mounts_inside(self, local: str) -> list[tuple[str, str]]:
        """(name, mount path) of this machine's mounts strictly below the local folder `local`."""
        return [(n, p) for n, p in self.mounts.items() if p != local and _under(p, local) is not None]


def load(conn: Connection, machine: str | None = None) -> PathMap:
    """The PathMap of `machine` (default: this one) from the catalog."""
    machine = machine_name() if machine is None else machine
    m = s.root_mounts.c
    mounts: dict[str, str] = {}
    known: set[str] = set()
    for root, who, path in conn.execute(select(m.root, m.machine, m.path)):
        known.add(str(root))
        if who == machine:
            mounts[str(root)] = str(path)
    return PathMap(mounts, known)


def list_mounts(conn: Connection) -> list[Mount]:
    m = s.root_mounts.c
    q = select(m.root, m.machine, m.path).order_by(m.root, m.machine)
    return [Mount(str(r), str(w), str(p)) for r, w, p in conn.execute(q)]


class RootsError(ValueError):
    """A `roots add/remove` that cannot be done, with the reason for the user."""


@dataclass(frozen=True)
class AddResult:
    converted: int  # folder rows of local paths now stored under the root
    merged: int  # of those, rows merged into the root's row of the same folder (another machine's)
    replaced: str | None  # the machine's former path of this root, when it moved


@dataclass(frozen=True)
class RemoveResult:
    converted: int  # folder rows turned back into the removed mount's local paths (the last mount)
    still_mounted_by: list[str]  # other machines that keep the root (its rows stay shared)


def add_mount(conn: Connection, name: str, machine: str, path: str) -> AddResult:
    """Record that `machine` sees root `name` at `path` (absolute, resolved), in the caller's ONE
    write transaction, and store every folder row under `path` in the root's form. A folder that
    the root already holds (another machine indexed it through its own mount) is merged into the
    root's row: photos of the same name become one (the root's record; its decision, or this one's
    when that was changed later; scores, embeddings and a thumbnail it lacks come along), the
    others move into it."""
    problem = name_problem(name)
    if problem:
        raise RootsError(problem)
    m = s.root_mounts.c
    mine = dict(conn.execute(select(m.root, m.path).where(m.machine == machine)).all())
    for other, where in mine.items():
        if other == name:
            continue
        if where == path:
            raise RootsError(f"{path} is already root {other!r} on {machine}")
        if _under(path, where) is not None:
            raise RootsError(
                f"{path} is inside root {other!r} ({where}) on {machine}: roots cannot be nested"
            )
        if _under(where, path) is not None:
            raise RootsError(f"{path} holds root {other!r} ({where}) on {machine}: roots cannot be nested")
    former = mine.get(name)
    if former is None:
        conn.execute(s.root_mounts.insert().values(root=name, machine=machine, path=path))
    elif former != path:
        conn.execute(update(s.root_mounts).where(m.root == name, m.machine == machine).values(path=path))
    one = PathMap({name: path})
    converted, merged = _convert(conn, local_under(conn, path), one.to_stored)
    return AddResult(converted, merged, former if former not in (None, path) else None)


def remove_mount(conn: Connection, name: str, machine: str) -> RemoveResult:
    """Forget where `machine` sees root `name`, in the caller's ONE write transaction. When no
    other machine mounts the root, its folder rows become plain local paths again (those of the
    removed mount: a solo user's catalog is as it was before `roots add`); otherwise they stay in
    the root's form for the machines that still mount it, and this machine no longer finds them."""
    m = s.root_mounts.c
    path = conn.execute(select(m.path).where(m.root == name, m.machine == machine)).scalar()
    if path is None:
        known = sorted(str(w) for (w,) in conn.execute(select(m.machine).where(m.root == name)))
        where = f"; it is mounted on {', '.join(known)}" if known else ""
        raise RootsError(f"root {name!r} is not mounted on {machine}{where}")
    conn.execute(delete(s.root_mounts).where(m.root == name, m.machine == machine))
    others = sorted(str(w) for (w,) in conn.execute(select(m.machine).where(m.root == name)))
    if others:
        return RemoveResult(0, others)
    back = PathMap({name: str(path)})
    prefix = stored_path(name)
    f = s.folders.c
    rows = conn.execute(select(f.id, f.path).where(func.substr(f.path, 1, len(prefix)) == prefix)).all()
    converted, _ = _convert(conn, [(int(i), str(p)) for i, p in rows], back.to_local)
    return RemoveResult(converted, [])


def local_under(conn: Connection, path: str) -> list[tuple[int, str]]:
    """(id, path) of the folder rows stored as local paths at or below the local folder `path`."""
    f = s.folders.c
    prefix = path if path.endswith(os.sep) else path + os.sep
    q = select(f.id, f.path).where((f.path == path) | (func.substr(f.path, 1, len(prefix)) == prefix))
    return [(int(i), str(p)) for i, p in conn.execute(q)]


def _convert(
    conn: Connection, rows: list[tuple[int, str]], new_path: Callable[[str], str]
) -> tuple[int, int]:
    """Give each folder row its new path; one that another row already has is merged into it."""
    f = s.folders.c
    merged = 0
    for fid, old in rows:
        new = new_path(old)
        if new == old:
            continue
        other = conn.execute(select(f.id).where(f.path == new)).scalar()
        if other is None:
            conn.execute(update(s.folders).where(f.id == fid).values(path=new))
        else:
            merge_folder(conn, fid, int(other))
            merged += 1
    return len(rows), merged


def merge_folder(conn: Connection, src: int, dst: int) -> None:
    """Merge folder row `src` into `dst` (two rows of one real folder) and delete `src`."""
    p = s.photos.c
    theirs = dict(conn.execute(select(p.name, p.id).where(p.folder_id == dst)).all())
    for pid, name in conn.execute(select(p.id, p.name).where(p.folder_id == src)).all():
        target = theirs.get(name)
        if target is None:
            conn.execute(update(s.photos).where(p.id == pid).values(folder_id=dst))
        else:
            _merge_photo(conn, int(pid), int(target))
    f = s.folders.c
    last = conn.execute(select(f.last_analysis_id, f.last_indexed_at).where(f.id == src)).first()
    if last is not None and last[0] is not None:
        conn.execute(
            update(s.folders)
            .where(f.id == dst, f.last_analysis_id.is_(None))
            .values(last_analysis_id=last[0], last_indexed_at=last[1])
        )
    conn.execute(delete(s.folders).where(f.id == src))


def _merge_photo(conn: Connection, src: int, dst: int) -> None:
    """Photo record `src` and `dst` are one file: keep `dst`, with the later decision of the two and
    what it lacks of `src`'s scores, embeddings and thumbnail; delete `src`."""
    d = s.decisions.c
    mine = conn.execute(select(d.changed_at).where(d.photo_id == src)).scalar()
    theirs = conn.execute(select(d.changed_at).where(d.photo_id == dst)).scalar()
    if mine is not None and (theirs is None or float(mine) > float(theirs)):
        conn.execute(delete(s.decisions).where(d.photo_id == dst))
        # a new change counter value: windows open on the merged folder poll it like any change
        seq = CatalogTransaction(conn).decision_seq()
        conn.execute(update(s.decisions).where(d.photo_id == src).values(photo_id=dst, seq=seq))
    ids = {"src": src, "dst": dst}
    keyed = (("scores", ("analysis_id", "attribute")), ("embeddings", ("analysis_id",)), ("thumbnails", ()))
    for table, keys in keyed:
        same = "".join(f" AND t.{k} = {table}.{k}" for k in keys)
        conn.execute(
            text(
                f"UPDATE {table} SET photo_id = :dst WHERE photo_id = :src AND NOT EXISTS "
                f"(SELECT 1 FROM {table} t WHERE t.photo_id = :dst{same})"
            ),
            ids,
        )
    conn.execute(update(s.moved_files).where(s.moved_files.c.photo_id == src).values(photo_id=dst))
    conn.execute(delete(s.photos).where(s.photos.c.id == src))


def unmounted_match(
    conn: Connection, local_dir: str, paths: PathMap, fingerprint: Callable[[Path], str]
) -> tuple[str, str, str] | None:
    """(root, stored folder, local mount) when the local folder `local_dir`, which has no folder row
    yet, holds the photos of a folder of a root this machine does not mount: the same folder names
    below the mount, and a photo at the same place in it or in a sub-folder with the same content
    fingerprint (up to 3 compared per folder). None at once when every root of the catalog is
    mounted here, so a solo catalog pays nothing."""
    names = sorted(paths.unmounted)
    if not names:
        return None
    parts = PurePath(local_dir).parts
    candidates: dict[str, tuple[str, str]] = {}
    for k in range(len(parts)):  # k trailing components below the mount; the mount keeps the anchor
        rel = "/".join(parts[len(parts) - k :])
        mount = str(PurePath(*parts[: len(parts) - k]))
        for name in names:
            candidates[stored_path(name, rel)] = (name, mount)
    f, p = s.folders.c, s.photos.c
    # the folder rows of those roots (a small table), matched in Python; photos read per candidate
    tops = [stored_path(name) for name in names]
    under = conn.execute(
        select(f.id, f.path).where(or_(*(func.substr(f.path, 1, len(t)) == t for t in tops)))
    )
    folders = [(int(i), str(x)) for i, x in under]
    for stored, (root, mount) in candidates.items():
        prefix = stored if stored.endswith("/") else stored + "/"
        inside = {i: x[len(prefix) :] for i, x in folders if x == stored or x.startswith(prefix)}
        if not inside:
            continue
        q = (
            select(p.folder_id, p.name, p.fingerprint)
            .where(p.folder_id.in_(list(inside)[:500]), p.fingerprint.is_not(None), p.status != "missing")
            .order_by(p.id)
            .limit(50)
        )
        compared = 0
        for fid, name, fp in conn.execute(q):
            below = inside[int(fid)]
            file = Path(local_dir, *below.split("/"), str(name)) if below else Path(local_dir, str(name))
            if not file.is_file():
                continue
            try:
                if fingerprint(file) == fp:
                    return root, stored, mount
            except OSError:
                continue
            compared += 1
            if compared >= 3:
                break
    return None
