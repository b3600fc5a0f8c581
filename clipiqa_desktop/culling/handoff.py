"""Handing the cull to the editor: write the XMP sidecars of a set of photos from the catalog.

    report = write_sidecars(catalog, photo_ids, XmpOptions(naming="adobe", reject_as="label"))

For each photo: the sidecar it owns under the naming (culling/sidecars.py; under Adobe naming a
JPEG beside its RAW gets none and is reported as skipped), its decision and sidecar record read in
a short transaction per batch of 32, merged into the existing sidecar (culling/xmp_write.py: only
our fields change), written atomically (temporary file in the same folder, fsync, rename, fsync of
the folder once per batch; the existing sidecar's permissions kept) and only when its bytes change.
No transaction is held while files are written (a slow card must not stall other writers). The
sidecar's new stat is then recorded (`set_sidecar_state`, in a second short transaction, only over
the record the write was decided on) so the XMP-in import does not take our own write for another
tool's edit. Photo files are never opened for writing.

An existing sidecar that is not the one the catalog recorded (changed by another tool since, or
made after the folder was indexed) is not overwritten unless it already holds our values (skipped:
index the folder to import it first); a sidecar that is not valid XMP, or write-protected, is never
replaced. Every other failure (read-only folder, full disk, unreadable file, an unexpected error) is
one reason for one path; nothing is left half-written. Safe to call from a background thread (the
window's writer thread does).
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..catalog import Catalog
from ..catalog.records import Decision, PhotoScores, SidecarState
from ..text import counted
from .durable import sync_folder
from .sidecars import DEFAULT_NAMING, NAMINGS, sidecar_target, sidecar_to_read
from .xmp import stated_fields
from .xmp_write import DEFAULT_REJECT_AS, MAX_PACKET_BYTES, REJECT_AS, XmpError, fields_for, merge_packet

_CHUNK = 32  # photos per write transaction: short enough not to hold the catalog's write lock long


@dataclass(frozen=True)
class XmpOptions:
    """How sidecars are named ("darktable": IMG.CR3.xmp, "adobe": IMG.xmp) and how a reject is
    written ("rating": xmp:Rating=-1, "one-star": 1 star, "label": a purple label)."""

    naming: str = DEFAULT_NAMING
    reject_as: str = DEFAULT_REJECT_AS

    def __post_init__(self) -> None:
        if self.naming not in NAMINGS:
            raise ValueError(f"sidecar naming must be one of {', '.join(NAMINGS)}, not {self.naming!r}")
        if self.reject_as not in REJECT_AS:
            raise ValueError(f"reject_as must be one of {', '.join(REJECT_AS)}, not {self.reject_as!r}")


@dataclass
class XmpReport:
    """What one hand-off did: sidecars written, already up to date, skipped and failed (with why)."""

    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def summary(self) -> str:
        """'wrote 120 sidecars, 30 unchanged, 2 skipped, 1 failed' (the reasons are listed apart)."""
        parts = [f"wrote {counted(len(self.written), 'sidecar')}", f"{len(self.unchanged):,} unchanged"]
        if self.skipped:
            parts.append(f"{len(self.skipped):,} skipped")
        if self.failed:
            parts.append(f"{len(self.failed):,} failed")
        return ", ".join(parts)

    def problems(self) -> list[str]:
        """One line per skipped or failed path: 'skipped IMG_1.JPG: IMG_1.xmp would be shared …'."""
        return [f"skipped {p}: {why}" for p, why in self.skipped] + [
            f"failed {p}: {why}" for p, why in self.failed
        ]


def write_sidecars(
    catalog: Catalog,
    photo_ids: Iterable[int],
    options: XmpOptions | None = None,
    analysis_id: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> XmpReport:
    """Write (merge) the XMP sidecars of `photo_ids`: decision and scores from the catalog.

    The scores are those of `analysis_id`, by default of the analysis each photo's folder was last
    indexed with. Catalog errors (CatalogError) propagate; file errors are reported per path.
    `should_stop` (the window closing) is asked between batches of photos; what was written stays."""
    options = options or XmpOptions()
    report = XmpReport()
    photos = catalog.photo_scores(list(photo_ids), analysis_id)
    listings: dict[Path, _Listing | str] = {}
    for start in range(0, len(photos), _CHUNK):
        if should_stop is not None and should_stop():
            break
        chunk = photos[start : start + _CHUNK]
        ids = [p.id for p in chunk]
        # No transaction is held while files are read, written and fsynced (a slow card would
        # stall every other writer, an index in another process included): a short one reads the
        # decisions and records, the files are written, and another short one records them.
        with catalog.transaction() as tx:
            decisions = tx.decisions(ids)
            states = tx.sidecar_states(ids)
        written = len(report.written)
        new: dict[int, SidecarState] = {}
        for photo in chunk:
            state = _write_one(photo, decisions[photo.id], states.get(photo.id), options, listings, report)
            if state is not None and state != states.get(photo.id):
                new[photo.id] = state
        # The renames are made durable (one fsync per folder and batch) before the catalog
        # records them.
        for folder in {p.parent for p in report.written[written:]}:
            sync_folder(folder)
        if not new:
            continue
        with catalog.transaction() as tx:
            now = tx.sidecar_states(list(new))
            # Recorded only over the record the write was decided on: one changed meanwhile (an
            # index imported the sidecar, another export wrote it) is left as it is.
            tx.set_sidecar_states({pid: st for pid, st in new.items() if now.get(pid) == states.get(pid)})
    return report


def _write_one(
    photo: PhotoScores,
    decision: Decision,
    recorded: SidecarState | None,
    options: XmpOptions,
    listings: dict[Path, _Listing | str],
    report: XmpReport,
) -> SidecarState | None:
    """Write one photo's sidecar; returns the state to record (None: leave the record alone)."""
    if photo.status == "missing":
        report.skipped.append((photo.path, "the photo is missing (moved or deleted since it was indexed)"))
        return None
    if photo.status == "unmounted":  # a studio's shared folder this machine has no mount for
        report.skipped.append((photo.path, "its folder root is not mounted here (clipiqa-desktop roots)"))
        return None
    names = _listing(photo.path.parent, listings)
    if isinstance(names, str):
        report.failed.append((photo.path, f"cannot read its folder: {names}"))
        return None
    if photo.path.name not in names:
        report.skipped.append((photo.path, "the photo is not there any more (index the folder again)"))
        return None
    near = names.near(photo.path)  # the few names that decide (a set per photo: linear, not quadratic)
    target = sidecar_target(photo.path, options.naming, near)
    if target.path is None:
        report.skipped.append((photo.path, target.reason))
        return None
    path = target.path
    if path.name not in names and path.with_suffix(".XMP").name in names:
        path = path.with_suffix(".XMP")  # an existing IMG.CR3.XMP: merge into it, make no second file
    try:
        existing, mode = _read_existing(path)
        packet = merge_packet(
            existing,
            fields_for(decision, options.reject_as, photo.scores, photo.model_id, photo.analysis_size),
        )
        if packet is existing:
            report.unchanged.append(path)
        elif existing is not None and not _as_recorded(path, recorded):
            # Not the sidecar the catalog last read or wrote (changed since, or made by another
            # program after the folder was indexed, or before this catalog knew sidecars): the
            # decision in it would be lost, so it is left for the index to import.
            report.skipped.append((path, _not_ours(photo.path, path, recorded, near)))
            return None
        else:
            write_atomically(path, packet, mode, sync=False)
            names.add(path.name)
            near.add(path.name)
            report.written.append(path)
    except XmpError as exc:
        report.failed.append((path, f"the existing sidecar is not valid XMP ({exc}); left as it is"))
        return None
    except OSError as exc:
        report.failed.append((path, _reason(exc)))
        return None
    except Exception as exc:  # a packet no rule foresaw: this file fails, the others go on
        report.failed.append((path, f"could not be merged ({type(exc).__name__}: {exc}); left as it is"))
        return None
    read = sidecar_to_read(photo.path, near)
    if read is None or read.name != path.name:
        return None  # another sidecar is the one read for this photo: its record stays
    try:
        # with the fields the file now states: the XMP import takes only those changed since
        return replace(_stat_state(path), fields=stated_fields(packet))
    except OSError:
        return None


def _as_recorded(path: Path, recorded: SidecarState | None) -> bool:
    """Whether the sidecar at `path` is still the one the catalog recorded (name, mtime, size)."""
    if recorded is None or recorded.name != path.name:
        return False
    st = os.stat(path)
    return (st.st_mtime_ns, st.st_size) == (recorded.mtime_ns, recorded.size)


def _not_ours(photo: Path, path: Path, recorded: SidecarState | None, names: set[str]) -> str:
    """Why an existing sidecar the catalog has no record of (or an older one) is not merged into."""
    read = sidecar_to_read(photo, names)
    if read is not None and read.name != path.name:
        return (
            f"this photo's decisions are read from {read.name}, so edits made in {path.name} "
            "could never be imported; left as it is (remove one of the two)"
        )
    if recorded is None or recorded.name != path.name:
        return "made by another program since the folder was indexed; index the folder to import it first"
    return "changed by another program since the catalog last read it; index the folder to import it first"


class _Listing(set[str]):
    """A folder's file names, indexed by case-folded stem, so that each photo's naming questions look
    at the few names that concern it (`IMG_1.*`, `IMG_1.CR2.xmp`) and not the whole folder."""

    def __init__(self, names: Iterable[str]) -> None:
        super().__init__(names)
        self._by_stem: dict[str, set[str]] = {}
        for name in self:
            self._index(name)

    def _index(self, name: str) -> None:
        self._by_stem.setdefault((name.rpartition(".")[0] or name).casefold(), set()).add(name)

    def add(self, name: str) -> None:
        super().add(name)
        self._index(name)

    def near(self, photo: Path) -> set[str]:
        """The names sharing the photo's stem, and its `IMG_1.CR2.xmp` ones."""
        empty: set[str] = set()
        return (
            {photo.name}
            | self._by_stem.get(photo.stem.casefold(), empty)
            | self._by_stem.get(photo.name.casefold(), empty)
        )


def _listing(folder: Path, listings: dict[Path, _Listing | str]) -> _Listing | str:
    """The file names of `folder` (cached per hand-off), or the reason it cannot be listed."""
    if folder not in listings:
        try:
            listings[folder] = _Listing(os.listdir(folder))
        except OSError as exc:
            listings[folder] = _reason(exc)
    return listings[folder]


def _read_existing(path: Path) -> tuple[bytes | None, int | None]:
    """(the sidecar's bytes, its permission bits), or (None, None) when there is none."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None, None
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
        raise OSError(0, "is not a regular file (a link or a folder); not replaced")
    # The rename would replace a file we may not write all the same: a write-protected sidecar
    # is the user's "hands off" (its mode bits: root may write anything), and one this user may
    # not write fails with the reason (opened for writing without truncating: nothing changes).
    if not st.st_mode & stat.S_IWUSR:
        raise OSError(errno.EACCES, "the sidecar is write-protected; left as it is")
    os.close(os.open(path, os.O_WRONLY | getattr(os, "O_BINARY", 0)))
    if st.st_size > MAX_PACKET_BYTES:
        raise XmpError(f"larger than {MAX_PACKET_BYTES // (1024 * 1024)} MB")
    with open(path, "rb") as f:
        return f.read(MAX_PACKET_BYTES + 1), stat.S_IMODE(st.st_mode)


def _stat_state(path: Path) -> SidecarState:
    st = os.stat(path)
    return SidecarState(path.name, st.st_mtime_ns, st.st_size)


def write_atomically(path: Path, data: bytes, mode: int | None = None, sync: bool = True) -> None:
    """Replace `path` with `data` so that it is either the old file or the new one, never half:
    temporary file in the same folder, write, flush, fsync, rename over, and (with `sync`; else the
    caller does it once for several files) fsync the folder so the rename survives a power cut."""
    fd, tmp = _temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)  # the existing sidecar's permissions (a new one: 0o666 less the umask)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync:
        sync_folder(path.parent)


def _temp_beside(path: Path) -> tuple[int, Path]:
    """A new temporary file in `path`'s folder, created with mode 0o666 (the kernel applies the
    umask, as for any new file; mkstemp's 0o600 would make a new sidecar unreadable to others)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path.parent))


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def folder_photo_ids(catalog: Catalog, folder: Path, recursive: bool) -> Sequence[int]:
    """Ids of the photos of `folder` (and its sub-folders with `recursive`), for the window and CLI."""
    rows, _ = catalog.rows(catalog.folder_ids(folder, recursive), None, root=folder)
    return [int(r[0]) for r in rows]
