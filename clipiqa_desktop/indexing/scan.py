"""Finding the photos under the paths a user gives, and reporting what was passed over."""

from __future__ import annotations

import os
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
    skipped: list[Path] = field(default_factory=list)  # non-photo and hidden files inside folders
    unreadable: list[tuple[Path, str]] = field(default_factory=list)  # folders/files we could not stat

    @property
    def paths(self) -> list[Path]:
        return [f.path for f in self.photos]


def find_photos(paths: list[str] | list[Path], recursive: bool = False) -> PhotoSelection:
    """Files are taken as given; folders contribute their photo files, sorted by name.

    Hidden files (including macOS '._' resource forks) and non-photo files in folders are counted as
    skipped; a path that does not exist is reported as missing.
    """
    sel = PhotoSelection()
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            _walk(path, recursive, sel, seen)
        elif path.exists():
            _add(path, sel, seen)
        else:
            sel.missing.append(path)
    return sel


def _add(path: Path, sel: PhotoSelection, seen: set[Path]) -> None:
    if path in seen:
        return
    seen.add(path)
    try:
        st = path.stat()
    except OSError as exc:
        sel.unreadable.append((path, exc.strerror or str(exc)))
        return
    sel.photos.append(ScannedFile(path, st.st_size, st.st_mtime_ns))


def _walk(folder: Path, recursive: bool, sel: PhotoSelection, seen: set[Path]) -> None:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        sel.unreadable.append((folder, exc.strerror or str(exc)))
        return
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
            if recursive:
                _walk(path, recursive, sel, seen)
        elif is_photo(entry.name):
            _add(path, sel, seen)
        else:
            sel.skipped.append(path)
