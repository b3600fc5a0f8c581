"""Finding the photos under the paths a user gives, and reporting what was passed over.

Folders are walked by their real identity (device + inode), so a symbolic link that leads back to a
folder being walked (`shoot/nested/loop` → `shoot`) or to a folder already walked is reported and
not followed: a recursive scan always ends, and each photo is found once. Linked folders are walked
after the real ones, so a photo is found under its real folder's name when it has one. A photo reached through
two names (a symlinked file next to its target, a hard link) is also counted once, under its own
name rather than a link's.
"""

from __future__ import annotations

import os
import stat as stat_mod
from dataclasses import dataclass, field
from pathlib import Path

from ..imaging import is_photo


@dataclass(frozen=True)
class ScannedFile:
    path: Path
    size_bytes: int
    mtime_ns: int


@dataclass
class PhotoSelection:
    """Photos found, and what was passed over (always reported, never silent)."""

    photos: list[ScannedFile] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)  # paths given that do not exist
    skipped: list[Path] = field(default_factory=list)  # non-photo and hidden files (not XMP sidecars)
    unreadable: list[tuple[Path, str]] = field(default_factory=list)  # folders/files we could not stat
    # Folders not walked (a symlink loop, a folder reached twice) and second names of a photo already
    # found (a symlinked or hard-linked file), each with the reason.
    passed_over: list[tuple[Path, str]] = field(default_factory=list)
    # Folders whose listing was read: only there can a photo the catalog knows be "gone".
    listed: list[Path] = field(default_factory=list)
    # Every file name in each listed folder (photos, sidecars, the rest), from that one listing:
    # which XMP sidecar belongs to which photo depends on its neighbours (culling/sidecars.py).
    names: dict[Path, frozenset[str]] = field(default_factory=dict)
    # Every photo, missing path and unreadable file in the order the user gave them (a folder's
    # files by name), so that a command can report each where it was asked for.
    order: list[Path] = field(default_factory=list)

    @property
    def paths(self) -> list[Path]:
        return [f.path for f in self.photos]


def find_photos(paths: list[str] | list[Path], recursive: bool = False) -> PhotoSelection:
    """Files are taken as given; folders contribute their photo files, sorted by name.

    Hidden files (including macOS '._' resource forks) and non-photo files in folders are counted as
    skipped; a path that does not exist is reported as missing; see the module docstring for links.
    """
    walker = _Walker(recursive)
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            walker.walk_all(path)
        elif path.exists():
            walker.add(path, is_link=False)  # a file the user named is taken even if it is a link
        else:
            walker.sel.missing.append(path)
            walker.events.append(path)
    return walker.finish()


def root_vanished(folder: str | Path) -> bool:
    """True when `folder` is no longer there: deleted, renamed, or on a card that was pulled out.

    The indexer asks this when photos fail with "file no longer exists", to stop with one clear
    message instead of recording every remaining photo as failed.
    """
    try:
        return not stat_mod.S_ISDIR(os.stat(folder).st_mode)
    except PermissionError:
        return False  # still there, only unreadable
    except OSError:  # not found, or the device is gone (EIO, ENODEV, ESTALE...)
        return True


@dataclass(frozen=True)
class _Candidate:
    path: Path
    size_bytes: int
    mtime_ns: int
    key: tuple[int, int]  # (device, inode) of the file itself (a link's target)
    is_link: bool


class _Walker:
    def __init__(self, recursive: bool) -> None:
        self.recursive = recursive
        self.sel = PhotoSelection()
        self.folders: dict[tuple[int, int], Path] = {}  # real identity -> first path it was walked as
        self.candidates: list[_Candidate] = []
        self.events: list[_Candidate | Path] = []  # candidates, missing and unreadable files, in order
        self.linked: list[tuple[Path, tuple[tuple[int, int], ...]]] = []  # linked folders still to walk

    def walk_all(self, folder: Path) -> None:
        """Walk `folder`, then the linked folders found in it: real folders keep their own names."""
        self.walk(folder, ())
        while self.linked:
            link, ancestors = self.linked.pop(0)
            self.walk(link, ancestors, is_link=True)

    def walk(self, folder: Path, ancestors: tuple[tuple[int, int], ...], is_link: bool = False) -> None:
        sel = self.sel
        try:
            st = os.stat(folder)
        except OSError as exc:
            sel.unreadable.append((folder, exc.strerror or str(exc)))
            return
        key = (st.st_dev, st.st_ino)
        first = self.folders.get(key)
        if first is not None:
            if key in ancestors:
                reason = f"not followed: a link back to {first}, which contains it (a loop)"
            elif is_link:
                reason = f"not followed: a link to {first}, already scanned"
            else:
                reason = f"not followed: the same folder as {first}, already scanned"
            sel.passed_over.append((folder, reason))
            return
        self.folders[key] = folder
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            sel.unreadable.append((folder, exc.strerror or str(exc)))
            return
        sel.listed.append(folder)
        sel.names[folder] = frozenset(e.name for e in entries)
        for entry in entries:
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if entry.name.startswith("."):
                if not is_dir:
                    sel.skipped.append(path)
                continue
            if is_dir:
                if not self.recursive:
                    continue
                if entry.is_symlink():  # after the real folders, so that they keep their own names
                    self.linked.append((path, (*ancestors, key)))
                else:
                    self.walk(path, (*ancestors, key))
            elif is_photo(entry.name):
                self.add(path, is_link=entry.is_symlink())
            elif not entry.name.lower().endswith(".xmp"):  # sidecars are read with their photos
                sel.skipped.append(path)

    def add(self, path: Path, is_link: bool) -> None:
        try:
            st = path.stat()
        except FileNotFoundError:
            reason = "broken link: the file it points to does not exist" if is_link else "file not found"
            self._unreadable(path, reason)
            return
        except OSError as exc:
            self._unreadable(path, exc.strerror or str(exc))
            return
        if not stat_mod.S_ISREG(st.st_mode):  # a named pipe would block the decoder for ever
            self._unreadable(path, "not a regular file (a named pipe, socket or device)")
            return
        candidate = _Candidate(path, st.st_size, st.st_mtime_ns, (st.st_dev, st.st_ino), is_link)
        self.candidates.append(candidate)
        self.events.append(candidate)

    def _unreadable(self, path: Path, reason: str) -> None:
        self.sel.unreadable.append((path, reason))
        self.events.append(path)

    def finish(self) -> PhotoSelection:
        """Keep one name per photo: the first that is not a link, else the first link."""
        winner: dict[tuple[int, int], _Candidate] = {}
        for c in self.candidates:
            w = winner.get(c.key)
            if w is None or (w.is_link and not c.is_link):
                winner[c.key] = c
        for c in self.candidates:
            w = winner[c.key]
            if w is c:
                self.sel.photos.append(ScannedFile(c.path, c.size_bytes, c.mtime_ns))
            elif c.path != w.path:  # the same path given twice is simply taken once
                how = "a link to" if c.is_link else "the same file (a hard link) as"
                self.sel.passed_over.append((c.path, f"counted once: {how} {w.path}"))
        listed: set[Path] = set()
        for event in self.events:
            path = event if isinstance(event, Path) else event.path
            if path not in listed and (isinstance(event, Path) or winner[event.key] is event):
                self.sel.order.append(path)
                listed.add(path)
        return self.sel
