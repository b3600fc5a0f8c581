"""Helpers the headless commands share: loading the scorer, finding photos, progress on a terminal."""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from ..imaging import is_photo
from ..scoring import ClipIqaScorer, ModelSpec, ScoringError

DEFAULT_SIZE_GPU, DEFAULT_SIZE_CPU = 1024, 512


class CommandError(Exception):
    """Stops a command with a message for the user and exit status 2."""


def load_scorer(args: argparse.Namespace) -> ClipIqaScorer:
    """Build the scorer from the shared model options; ScoringError becomes CommandError."""
    spec = ModelSpec.from_options(args.model, args.pretrained, args.weights)
    try:
        return ClipIqaScorer.load(spec, device=args.device, precision=args.precision)
    except ScoringError as exc:
        raise CommandError(str(exc)) from exc


def resolve_long_side(size: int | str | None, scorer: ClipIqaScorer) -> int | None:
    """'auto' -> 1024 on a GPU, 512 on the CPU; None = full resolution."""
    if size == "auto":
        return DEFAULT_SIZE_CPU if scorer.device.type == "cpu" else DEFAULT_SIZE_GPU
    assert size is None or isinstance(size, int)
    return size


def size_label(long_side: int | None) -> str:
    return "full" if long_side is None else str(long_side)


@dataclass
class PhotoSelection:
    """Photos found under the paths given, and what was passed over (reported, never silent)."""

    photos: list[Path] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # non-photo files inside folders
    unreadable: list[tuple[Path, str]] = field(default_factory=list)  # folders we could not list


def find_photos(paths: list[str], recursive: bool = False) -> PhotoSelection:
    """Files are taken as given; folders contribute their photo files, sorted by name.

    Hidden files (including macOS '._' resource forks) and non-photo files in folders are counted
    as skipped; a path that does not exist is reported as missing.
    """
    sel = PhotoSelection()
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            _walk(path, recursive, sel, seen)
        elif path.exists():
            if path not in seen:
                seen.add(path)
                sel.photos.append(path)
        else:
            sel.missing.append(path)
    return sel


def _walk(folder: Path, recursive: bool, sel: PhotoSelection, seen: set[Path]) -> None:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        sel.unreadable.append((folder, exc.strerror or str(exc)))
        return
    for entry in entries:
        path = Path(entry.path)
        if entry.name.startswith("."):
            if entry.is_file():
                sel.skipped.append(path)
            continue
        try:
            if entry.is_dir():
                if recursive:
                    _walk(path, recursive, sel, seen)
                continue
        except OSError:
            continue
        if is_photo(entry.name):
            if path not in seen:
                seen.add(path)
                sel.photos.append(path)
        else:
            sel.skipped.append(path)


class Progress:
    """One self-overwriting line on a terminal (stderr); silent when stderr is not a terminal."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        self.total, self.label = total, label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.start = time.perf_counter()
        self._last = 0.0

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < 0.2 and done < self.total:
            return
        self._last = now
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        width = 30
        filled = int(width * done / max(self.total, 1))
        bar = "█" * filled + "·" * (width - filled)
        eta_text = f"{eta:4.0f}s" if eta != float("inf") else "  --"
        self.stream.write(f"\r{self.label} {bar} {done}/{self.total}  {rate:5.1f} photos/s  ETA {eta_text}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
