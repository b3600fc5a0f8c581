"""Rejected photos moved aside, never deleted: plan, move, undo, and repair after a kill.

Which files move. The rejected photos (rating -1) the catalog has for the folder (with `recursive`,
for its whole tree, the target excepted) whose files are on disk, one FRAME at a time. A frame is
every photo file of one folder with the same stem (`IMG_1.CR2` + `IMG_1.JPG`, case-insensitive)
and their XMP sidecars: `IMG_1.CR2.xmp` (darktable naming) and `IMG_1.xmp` (Adobe naming, which
belongs to the frame; culling/sidecars.py says which member it describes), `.XMP` too. A frame
moves when one member is rejected and no member is picked or has stars; otherwise it stays and is
reported ("IMG_1.CR2 is rejected but IMG_1.JPG is picked: left in place"). A member the catalog
does not know (a JPEG that was never indexed) is the same frame and moves with it. Files of other
kinds with the same stem (`IMG_1.MOV`, `IMG_1.WAV`) are not photos of the frame and stay. The plan
is checked again when the move starts, inside the transaction that journals it: a frame whose
photos were un-rejected, picked or starred meanwhile (in the window, or by `rate` in another
process while a confirmation waited) stays and is reported (`MoveResult.held`).

Where. `target` (default FOLDER/_rejected); a sub-folder's frames go to the same sub-folder under
the target (`FOLDER/_rejected/100CANON/IMG_1.CR2`). Nothing is ever overwritten: when a name is
taken in the target (on disk or by a catalog record), the whole frame gets the next free
`IMG_1 (2)` stem, so a photo, its partner and its sidecars keep matching names.

How. Each file is moved by `os.link(src, dst)` (which fails if `dst` exists: it cannot replace
anything, unlike `os.rename`) and then `os.unlink(src)`. Where hard links are impossible (another
file system, a FAT/exFAT card) the file is copied to a temporary `.IMG_1.CR2.clipiqa-partial` in
the target, fsynced, its times kept, given its name (a hard link, or on FAT/exFAT a rename after a
check that the name is free), and then the original is unlinked. A frame that fails part-way (a
full disk, a read-only folder, a name taken meanwhile) is put back where it was, reported, and the
run goes on with the next.

The catalog follows (catalog/moves.py): the batch and every planned file are journalled before
anything moves; after the moves, one transaction gives the moved photos their new folder and name
(same id: decisions, scores, thumbnails kept) and drops the journal rows of frames that stayed. A
run killed in between is repaired by the next `move-rejects` or undo of that folder (`recover`):
each frame of the unfinished batch is looked at on disk (a file at dst and not at src has moved),
completed when all of it moved, else put back wholly; a complete copy beside its original (a kill
before the unlink) counts as one file, and the temporaries of a copy cut short are removed. A file
at neither place counts as lost, never as moved; and while the folder, or the target of a batch that
moved anything, is not there (a drive not mounted: every file would look lost), repair and undo
refuse with a message and change nothing.
"""

from __future__ import annotations

import contextlib
import errno
import filecmp
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..catalog import Catalog, Decision
from ..catalog.moves import (
    JournalFile,
    MoveBatch,
    finish_move,
    finish_undo,
    last_batch,
    moves_lock,
    names_in,
    pending_batches,
    record_batch,
)
from ..imaging.formats import is_photo
from .durable import sync_folder

DEFAULT_TARGET = "_rejected"
PARTIAL_SUFFIX = ".clipiqa-partial"  # a copy to another drive is written under a temporary name
# os.link errors that mean "no hard link possible here", not "something is wrong": copy instead
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS}


class MoveError(Exception):
    """Nothing can be moved (or undone): the message says why, for the user."""


@dataclass(frozen=True)
class PlannedFile:
    src: Path
    dst: Path
    photo_id: int | None
    kind: str  # "rejected", "partner" (another photo file of the frame) or "sidecar"


@dataclass(frozen=True)
class Frame:
    files: tuple[PlannedFile, ...]

    @property
    def name(self) -> str:
        return self.files[0].src.name

    @property
    def renamed(self) -> bool:
        return self.files[0].src.name != self.files[0].dst.name


@dataclass
class MovePlan:
    folder: Path
    target: Path
    recursive: bool
    frames: list[Frame] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # frames left in place, and why
    absent: list[str] = field(default_factory=list)  # rejected photos whose file is not on disk

    def count(self, kind: str | None = None) -> int:
        return sum(1 for fr in self.frames for f in fr.files if kind is None or f.kind == kind)

    @property
    def photos(self) -> int:
        return self.count("rejected")

    @property
    def files(self) -> int:
        return self.count()

    def headline(self) -> str:
        """'37 rejected photos (52 files with sidecars and RAW+JPEG partners) to /x/_rejected'."""
        extra = []
        if self.count("partner"):
            extra.append(f"{self.count('partner')} RAW+JPEG partner{_s(self.count('partner'))}")
        if self.count("sidecar"):
            extra.append(f"{self.count('sidecar')} sidecar{_s(self.count('sidecar'))}")
        files = f" ({self.files} files with {' and '.join(extra)})" if extra else ""
        return f"{self.photos} rejected photo{_s(self.photos)}{files} to {self.target}"

    def destinations(self) -> list[tuple[Path, Path, int]]:
        """(from folder, to folder, how many files), per folder pair."""
        out: dict[tuple[Path, Path], int] = {}
        for fr in self.frames:
            for f in fr.files:
                key = (f.src.parent, f.dst.parent)
                out[key] = out.get(key, 0) + 1
        return [(a, b, n) for (a, b), n in out.items()]

    def lines(self) -> list[str]:
        """What goes where, for the CLI and the window's details."""
        partners, sidecars = self.count("partner"), self.count("sidecar")
        out = [
            f"{self.photos} rejected photo{_s(self.photos)}, {partners} RAW+JPEG partner{_s(partners)}, "
            f"{sidecars} sidecar{_s(sidecars)}: {self.files} file{_s(self.files)}"
        ]
        for src, dst, n in self.destinations():
            out.append(f"  {n} file{_s(n)}: {src} -> {dst}")
        for fr in self.frames:
            if fr.renamed:
                new = fr.files[0].dst
                out.append(f"  {fr.name} becomes {new.name} ({fr.name} is taken in {new.parent})")
        return out


@dataclass
class MoveResult:
    moved: list[Frame] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # one line per frame that stayed, with why
    held: list[str] = field(default_factory=list)  # frames decided otherwise since the plan: stayed
    notes: list[str] = field(default_factory=list)  # repairs of an interrupted run, catalog notes

    @property
    def files(self) -> int:
        return sum(len(fr.files) for fr in self.moved)

    @property
    def photos(self) -> int:
        return sum(1 for fr in self.moved for f in fr.files if f.kind == "rejected")


@dataclass
class UndoResult:
    batch: MoveBatch | None = None
    restored: int = 0  # files put back
    failed: list[str] = field(default_factory=list)  # frames that could not go back (they stay moved)
    lost: list[str] = field(default_factory=list)  # files of the batch found at neither place
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every file of the batch is back (none failed, none lost)."""
        return not self.failed and not self.lost


def _s(n: int) -> str:
    return "" if n == 1 else "s"


# --- planning ------------------------------------------------------------------------------------------
def resolve_target(folder: Path, to: str | Path = DEFAULT_TARGET) -> Path:
    """`to` relative to `folder` (or absolute), resolved."""
    to = Path(to).expanduser()
    return (to if to.is_absolute() else folder / to).resolve()


def plan_moves(
    catalog: Catalog, folder: Path | str, to: str | Path = DEFAULT_TARGET, recursive: bool = False
) -> MovePlan:
    """Which files would move where (nothing is changed). MoveError when nothing can be planned."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise MoveError(f"{root} is not a folder" if root.exists() else f"{root} does not exist")
    root = root.resolve()
    target = resolve_target(root, to)
    if target == root or root.is_relative_to(target):
        raise MoveError(f"the target {target} must not be {root} or a folder above it")
    if target.exists() and not target.is_dir():
        raise MoveError(f"the target {target} is a file, not a folder")
    tree = set(catalog.folder_ids(root, recursive))
    if not tree and not (not recursive and catalog.folder_ids(root, recursive=True)):
        # (a folder whose sub-folders only are indexed, a card's DCIM, plans nothing without -r)
        unmounted = catalog.unmounted_root(root)  # a studio's shared folder not mapped here
        raise MoveError(
            str(unmounted)
            if unmounted is not None
            else f"{root} is not in the catalog {catalog.location}; index it first"
        )
    paths = {fid: path for fid, path in catalog.folders() if fid in tree}
    ids = [fid for fid, path in paths.items() if not (path == target or path.is_relative_to(target))]
    plan = MovePlan(root, target, recursive)
    if not ids:
        return plan
    rows, _scores = catalog.rows(ids, None, root=root)
    known: dict[Path, dict[str, tuple[int, int, bool]]] = {}  # folder -> name -> (id, rating, picked)
    for row in rows:
        path = Path(row[1]) / row[2]
        known.setdefault(path.parent, {})[path.name] = (int(row[0]), int(row[8]), bool(row[9]))
    reserved: dict[Path, set[str]] = {}
    for directory in sorted(known):
        rejected = sorted(n for n, (_i, rating, _p) in known[directory].items() if rating == -1)
        if not rejected:
            continue
        try:
            listing = os.listdir(directory)
        except OSError as exc:
            plan.held.append(f"{directory}: cannot be read ({exc.strerror}): its rejects stay")
            continue
        on_disk = set(listing)
        stems: dict[str, list[str]] = {}
        folded: dict[str, list[str]] = {}  # casefolded name -> names (`IMG.xmp`, `IMG.XMP`)
        for n in listing:
            folded.setdefault(n.casefold(), []).append(n)
        for n in sorted(listing):
            if is_photo(n) and not n.startswith("."):
                stems.setdefault(Path(n).stem.casefold(), []).append(n)
        dst_dir = target / directory.relative_to(root)
        seen: set[str] = set()
        for name in rejected:
            if name not in on_disk:
                plan.absent.append(str(directory / name))
                continue
            stem = Path(name).stem.casefold()
            if stem in seen:
                continue
            seen.add(stem)
            members = stems.get(stem, [name])
            blocker = _blocker(name, members, known[directory])
            if blocker:
                where = "" if directory == root else f"{directory.relative_to(root)}/"
                plan.held.append(where + blocker)
                continue
            frame_files = [(m, known[directory].get(m)) for m in members]
            wanted = {stem + ".xmp", *((m + ".xmp").casefold() for m in members)}
            sidecars = sorted(n for w in wanted for n in folded.get(w, ()))
            taken = reserved.setdefault(dst_dir, _taken(catalog, dst_dir))
            new_names = _free_names([*members, *sidecars], taken)
            taken.update(n.casefold() for n in new_names)
            planned: list[PlannedFile] = []
            for (m, info), new in zip(frame_files, new_names[: len(members)], strict=True):
                kind = "rejected" if info is not None and info[1] == -1 else "partner"
                planned.append(
                    PlannedFile(directory / m, dst_dir / new, None if info is None else info[0], kind)
                )
            for sc, new in zip(sidecars, new_names[len(members) :], strict=True):
                planned.append(PlannedFile(directory / sc, dst_dir / new, None, "sidecar"))
            plan.frames.append(Frame(tuple(planned)))
    return plan


def _blocker(name: str, members: list[str], known: dict[str, tuple[int, int, bool]]) -> str | None:
    """Why a frame with the rejected `name` stays: a member that is picked or has stars."""
    for m in members:
        info = known.get(m)
        if info is None or m == name:
            continue
        if info[2]:
            return f"{name} is rejected but {m} is picked: left in place"
        if info[1] > 0:
            return f"{name} is rejected but {m} has {info[1]} star{_s(info[1])}: left in place"
    return None


def _taken(catalog: Catalog, directory: Path) -> set[str]:
    """Names (casefolded) a new file in `directory` must not take: on disk, or held by a record."""
    names = set(names_in(catalog, directory))
    with contextlib.suppress(FileNotFoundError):
        names |= set(os.listdir(directory))
    return {n.casefold() for n in names}


def _stem_length(name: str) -> int:
    """Where `(2)` goes in a frame's file name: after the stem (`IMG_1` of `IMG_1.CR2.xmp` and of
    `IMG_1.xmp` too)."""
    if name.casefold().endswith(".xmp"):
        base = name[:-4]
        return len(Path(base).stem) if is_photo(base) else len(base)
    return len(Path(name).stem)


def _free_names(names: Sequence[str], taken: set[str]) -> list[str]:
    """`names` as they are when all are free in `taken`, else with the first free ` (k)` after the
    stem, the same k for the whole frame."""
    k = 1
    while True:
        out = [n if k == 1 else f"{n[: _stem_length(n)]} ({k}){n[_stem_length(n) :]}" for n in names]
        if not any(n.casefold() in taken for n in out):
            return out
        k += 1


# --- moving files --------------------------------------------------------------------------------------
def move_file(src: Path, dst: Path) -> None:
    """Move one file; never replaces an existing `dst` (FileExistsError instead).

    A hard link then an unlink on one file system; where links are impossible a copy into a
    temporary, fsync, the copy takes its name, then the unlink. When the original cannot be
    removed, the new copy is removed again, so the file is at exactly one of its two places."""
    try:
        os.link(src, dst, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
        _copy_to_new(src, dst)
    try:
        os.unlink(src)
    except OSError:
        _remove_quietly(dst)
        raise


def partial_name(dst: Path) -> Path:
    """Where a copy of `dst` is written before it is complete (`.IMG_1.CR2.clipiqa-partial`)."""
    return dst.with_name(f".{dst.name}{PARTIAL_SUFFIX}")


def _copy_to_new(src: Path, dst: Path) -> None:
    """Copy into a temporary name beside `dst`, fsync, then give it the name `dst`: a kill part-way
    leaves a temporary that the repair removes, never a partial file under the photo's name."""
    tmp = partial_name(dst)
    _remove_quietly(tmp)  # left by a killed run (the moves lock is held: it is ours)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
            fout.flush()
            os.fsync(fout.fileno())
        shutil.copystat(src, tmp)
        _place(tmp, dst)
    except BaseException:
        _remove_quietly(tmp)
        raise


def _place(tmp: Path, dst: Path) -> None:
    """Give the complete copy `tmp` the name `dst`, never replacing a file there: a hard link (then
    the temporary goes); where the target has no hard links (FAT/exFAT) a rename after a check that
    `dst` is free (not one step; the moves lock keeps our own runs apart)."""
    try:
        os.link(tmp, dst, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(tmp), None, str(dst)) from None
        os.rename(tmp, dst)
        return
    _remove_quietly(tmp)


def _remove_partials(dirs: Iterable[Path]) -> None:
    """Remove the temporaries of copies a killed run left in these folders."""
    for d in set(dirs):
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for n in names:
            if n.startswith(".") and n.endswith(PARTIAL_SUFFIX):
                _remove_quietly(d / n)


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _fsync_dirs(dirs: Iterable[Path]) -> None:
    """Make the renames durable before the catalog says they happened (POSIX; elsewhere a no-op)."""
    for d in set(dirs):
        sync_folder(d)


def _why(exc: OSError) -> str:
    if isinstance(exc, FileExistsError):
        return f"{exc.filename2 or exc.filename} appeared meanwhile (nothing is overwritten)"
    name = exc.filename2 if exc.errno == errno.ENOSPC and exc.filename2 else exc.filename
    return f"{exc.strerror or exc}" + (f" ({name})" if name else "")


def _new_dirs(dirs: Iterable[Path]) -> list[Path]:
    """The folders (and missing parents) that creating `dirs` will make, parents first."""
    out: list[Path] = []
    for d in sorted(set(dirs)):
        missing = []
        p = d
        while not p.exists() and p not in out and p not in missing:
            missing.append(p)
            p = p.parent
        out.extend(reversed(missing))
    return out


def execute(
    catalog: Catalog, plan: MovePlan, progress: Callable[[int, int], None] | None = None
) -> MoveResult:
    """Move the planned frames (see the module docstring); the catalog follows."""
    result = MoveResult()
    with moves_lock(catalog):
        result.notes += _recover_locked(catalog, plan.folder)
        if not plan.frames:
            return result
        made = _new_dirs(fr.files[0].dst.parent for fr in plan.frames)
        kept: list[Frame] = []

        def still(i: int, decisions: Mapping[int, Decision]) -> bool:
            why = _changed(plan.frames[i], decisions)
            if why is None:
                kept.append(plan.frames[i])
            else:
                result.held.append(why)
            return why is None

        batch = record_batch(
            catalog,
            plan.folder,
            plan.target,
            [[(f.photo_id, f.src, f.dst) for f in fr.files] for fr in plan.frames],
            made_dirs=made,
            keep=still,
        )
        moved: list[JournalFile] = []
        stayed: list[JournalFile] = []
        touched: set[Path] = set()
        for n, (frame, jfiles) in enumerate(zip(kept, batch.frames(), strict=True)):
            done: list[JournalFile] = []
            try:
                os.makedirs(jfiles[0].dst.parent, exist_ok=True)
                for jf in jfiles:
                    move_file(jf.src, jf.dst)
                    done.append(jf)
            except OSError as exc:
                stuck = _put_back(done)
                result.failed.append(f"{frame.name}: {_why(exc)}; " + _stayed(frame, stuck))
                moved += stuck
                stayed += [jf for jf in jfiles if jf not in stuck]
            else:
                moved += done
                result.moved.append(frame)
            touched |= {jf.src.parent for jf in jfiles} | {jf.dst.parent for jf in jfiles}
            if progress is not None:
                progress(n + 1, len(kept))
        _fsync_dirs(touched)
        result.notes += finish_move(catalog, batch.id, moved, stayed)
        if not moved:
            _remove_empty(made)
    return result


def _changed(frame: Frame, decisions: Mapping[int, Decision]) -> str | None:
    """Why a planned frame no longer moves, by the decisions read in the journal's transaction: no
    member is rejected any more, or one is picked or has stars. None: it still moves."""
    members = [
        (f.src.name, decisions.get(f.photo_id, Decision())) for f in frame.files if f.photo_id is not None
    ]
    rejected = [name for name, d in members if d.rejected]
    if not rejected:
        return f"{frame.name} is no longer rejected: left in place"
    for name, d in members:
        if d.picked:
            return f"{rejected[0]} is rejected but {name} is picked: left in place"
        if d.rating > 0:
            return f"{rejected[0]} is rejected but {name} has {d.rating} star{_s(d.rating)}: left in place"
    return None


def _put_back(done: Sequence[JournalFile]) -> list[JournalFile]:
    """Undo a frame's moves (last first); returns the files that could not go back (left at dst)."""
    stuck = []
    for jf in reversed(done):
        try:
            move_file(jf.dst, jf.src)
        except OSError:
            stuck.append(jf)
    return stuck


def _stayed(frame: Frame, stuck: Sequence[JournalFile]) -> str:
    if not stuck:
        return "the frame stays where it was"
    names = ", ".join(str(jf.dst) for jf in stuck)
    return f"the frame stays where it was, except {names}, which could not be put back"


def _remove_empty(dirs: Sequence[Path]) -> None:
    """Remove these folders where empty, deepest first (never one that holds anything)."""
    for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            d.rmdir()


# --- undo and repair -----------------------------------------------------------------------------------
def _state(jf: JournalFile) -> str:
    """Where a journalled file is: "new" (at dst only), "old" (at src only), "twin" (one file under
    both names, or a complete copy with the same bytes: a kill between placing the new name and
    removing the old one), "both" (two different files), "lost" (neither)."""
    at_src, at_dst = os.path.lexists(jf.src), os.path.lexists(jf.dst)
    if at_src and at_dst:
        try:
            if os.path.samestat(os.lstat(jf.src), os.lstat(jf.dst)):
                return "twin"
            return "twin" if filecmp.cmp(jf.src, jf.dst, shallow=False) else "both"
        except OSError:
            return "both"
    if at_dst:
        return "new"
    return "old" if at_src else "lost"


def _unreachable(batch: MoveBatch, states: Iterable[str]) -> str | None:
    """Why a batch must not be settled now: its folder, or its target while some file is not at its
    old place, is not there (a drive not mounted: every file would look lost). None: go ahead."""
    if not batch.folder.is_dir():
        return f"{batch.folder} is not there (is its drive mounted?)"
    if not batch.target.is_dir() and any(st != "old" for st in states):
        return f"{batch.target} is not there (is its drive mounted?)"
    return None


def _lost_line(jf: JournalFile) -> str:
    return f"{jf.dst.name} is neither in {jf.dst.parent} nor in {jf.src.parent}"


def recover(catalog: Catalog, folder: Path | str) -> list[str]:
    """Settle batches of `folder` interrupted while moving (see the module docstring); returns notes."""
    with moves_lock(catalog):
        return _recover_locked(catalog, Path(folder).expanduser().resolve())


def _recover_locked(catalog: Catalog, folder: Path) -> list[str]:
    notes: list[str] = []
    for batch in pending_batches(catalog, folder):
        moved: list[JournalFile] = []
        stayed: list[JournalFile] = []
        lost: list[JournalFile] = []
        completed = rolled_back = 0
        _remove_partials({jf.dst.parent for jf in batch.files} | {jf.src.parent for jf in batch.files})
        frames = [(frame, {jf.seq: _state(jf) for jf in frame}) for frame in batch.frames()]
        why = _unreachable(batch, (st for _f, states in frames for st in states.values()))
        if why:
            raise MoveError(f"an interrupted move of {folder}'s rejects cannot be repaired now: {why}")
        for frame, states in frames:
            if all(st == "lost" for st in states.values()):
                lost += frame  # at neither place, both folders there: gone, not completed
                continue
            if all(st in ("new", "twin", "lost") for st in states.values()):
                for jf in frame:  # all of it moved: complete it
                    if states[jf.seq] == "lost":
                        lost.append(jf)
                        continue
                    if states[jf.seq] == "twin":
                        _remove_quietly(jf.src)
                    moved.append(jf)
                completed += 1
                continue
            stuck = []
            for jf in frame:
                if states[jf.seq] == "twin":
                    _remove_quietly(jf.dst)
                elif states[jf.seq] == "new":
                    stuck += _put_back([jf])
            moved += stuck
            for jf in frame:
                if jf not in stuck:
                    (lost if states[jf.seq] == "lost" else stayed).append(jf)
            rolled_back += 1
        notes += finish_move(catalog, batch.id, moved, stayed, lost)
        notes += [_lost_line(jf) for jf in lost]
        _remove_empty(batch.made_dirs)  # those a frame that went back left empty
        notes.append(
            f"an interrupted move of {folder}'s rejects was repaired: {completed} frame(s) completed, "
            f"{rolled_back} put back"
        )
    return notes


def undo_last(catalog: Catalog, folder: Path | str) -> UndoResult:
    """Put back every file of `folder`'s last batch that is not undone yet; the catalog follows."""
    root = Path(folder).expanduser().resolve()
    result = UndoResult()
    with moves_lock(catalog):
        result.notes += _recover_locked(catalog, root)
        batch = last_batch(catalog, root)
        if batch is None:
            raise MoveError(f"no move of rejects to undo for {root}")
        result.batch = batch
        if not batch.target.is_dir() or not batch.folder.is_dir():  # a drive not mounted
            missing = batch.folder if not batch.folder.is_dir() else batch.target
            raise MoveError(f"{missing} is not there (is its drive mounted?); nothing was put back")
        _remove_partials({jf.dst.parent for jf in batch.files} | {jf.src.parent for jf in batch.files})
        restored: list[tuple[JournalFile, Path]] = []
        touched: set[Path] = set()
        for frame in batch.frames():
            states = {jf.seq: _state(jf) for jf in frame}
            back = [jf for jf in frame if states[jf.seq] in ("new", "both")]
            for jf in frame:
                if states[jf.seq] == "lost":
                    result.lost.append(_lost_line(jf))
                elif states[jf.seq] == "twin":
                    _remove_quietly(jf.dst)
                    restored.append((jf, jf.src))
                elif states[jf.seq] == "old":
                    restored.append((jf, jf.src))  # already back (an earlier, partial undo)
            if not back:
                continue
            src_dir = back[0].src.parent
            names = _free_names([jf.src.name for jf in back], _taken(catalog, src_dir))
            done: list[tuple[JournalFile, Path]] = []
            try:
                os.makedirs(src_dir, exist_ok=True)
                for jf, name in zip(back, names, strict=True):
                    move_file(jf.dst, src_dir / name)
                    done.append((jf, src_dir / name))
            except OSError as exc:
                for jf, where in reversed(done):
                    try:
                        move_file(where, jf.dst)
                    except OSError:
                        restored.append((jf, where))
                result.failed.append(f"{back[0].dst.name}: {_why(exc)}; it stays in {back[0].dst.parent}")
                continue
            restored += done
            result.restored += len(done)
            if names[0] != back[0].src.name:
                result.notes.append(
                    f"{back[0].src.name} came back as {names[0]} ({back[0].src.name} is taken)"
                )
            touched |= {src_dir, back[0].dst.parent}
        _fsync_dirs(touched)
        result.notes += finish_undo(catalog, batch.id, restored, complete=not result.failed)
        if not result.failed:
            _remove_empty(batch.made_dirs)
    return result
