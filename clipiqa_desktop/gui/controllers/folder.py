"""Opening a folder: the Open action, recent folders, drag and drop, and "Include sub-folders"
(remembered per folder; on by default when the folder holds no photos of its own, as a card's
DCIM/ does)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QCheckBox, QFileDialog, QMessageBox

from ...catalog import CatalogError
from ...culling.session import CullingSession
from ...imaging.formats import is_photo
from ..settings import remember_subfolders, subfolders_choice
from .base import Controller
from .moves import MovesController

if TYPE_CHECKING:
    from ..main_window import MainWindow

SUBFOLDER_PROBE = 2000  # entries looked at per folder by the cheap "are there photos?" checks


def has_own_photos(folder: Path) -> bool:
    """Does `folder` itself hold a photo file? (os.scandir, no catalog, stops at the first one)"""
    try:
        with os.scandir(folder) as entries:
            for n, entry in enumerate(entries):
                if n >= SUBFOLDER_PROBE:
                    return True  # a folder this big is a shoot, not a card's DCIM/
                if not entry.name.startswith(".") and is_photo(entry.name) and _is_file(entry):
                    return True
    except OSError:
        return False
    return False


def has_photos_below(folder: Path, depth: int = 3) -> bool:
    """Does a sub-folder of `folder` (up to `depth` levels down) hold a photo file?"""
    if depth <= 0:
        return False
    try:
        with os.scandir(folder) as entries:
            subdirs = [Path(e.path) for e in entries if not e.name.startswith(".") and _is_dir(e)]
    except OSError:
        return False
    return any(has_own_photos(d) or has_photos_below(d, depth - 1) for d in subdirs[:SUBFOLDER_PROBE])


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


class FolderController(Controller):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        w = window
        self.open_action = w.add_action("Open folder…", self.choose_folder, QKeySequence.StandardKey.Open)
        w.toolbar.addAction(self.open_action)
        self.subfolders = QCheckBox("Include sub-folders")
        self.subfolders.setObjectName("subfolders")
        self.subfolders.setToolTip(
            "Show and index the photos of every folder inside this one (a card's DCIM/100CANON, …).\n"
            "Remembered for each folder."
        )
        self.subfolders.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.subfolders.toggled.connect(self._subfolders_toggled)
        w.toolbar.addWidget(self.subfolders)
        w.toolbar.addSeparator()
        w.file_menu.addAction(self.open_action)
        self.recent_menu = w.file_menu.addMenu("Recent folders")
        self._fill_recent()

    def choose_folder(self) -> None:
        recent = self.ctx.settings.recent
        start = recent[0] if recent else str(Path.home())
        folder = QFileDialog.getExistingDirectory(self.window, "Open a shoot", start)
        if folder:
            self.open_folder(folder)

    def open_folder(self, folder: str | Path) -> bool:
        if self.window.controller(MovesController).files_busy("open another folder"):
            return False
        path = Path(folder).expanduser()
        problem = None
        if not path.exists():
            problem = f"{path} does not exist."
        elif not path.is_dir():
            problem = f"{path} is not a folder."
        else:
            try:
                with os.scandir(path) as entries:
                    next(entries, None)
            except OSError as exc:
                problem = f"{path} cannot be read: {exc.strerror}."
        if problem:
            self.window.say(problem)
            QMessageBox.warning(self.window, "Cannot open folder", problem)
            return False
        resolved = path.resolve()
        choice = subfolders_choice(resolved)
        recursive = choice if choice is not None else not has_own_photos(resolved)
        self.window.decisions.close_session()  # decisions still being written are saved first
        try:
            session = CullingSession(self.ctx.catalog, resolved, recursive=recursive)
        except CatalogError as exc:
            QMessageBox.critical(self.window, "Catalog problem", str(exc))
            return False
        self.subfolders.blockSignals(True)
        self.subfolders.setChecked(recursive)
        self.subfolders.blockSignals(False)
        self.ctx.settings = self.ctx.settings.with_recent(resolved)
        self.ctx.update_settings(run_only=True, recursive=recursive)
        self.ctx.stored = self.ctx.stored.with_recent(resolved)
        self.ctx.save_settings()
        self._fill_recent()
        self.window.setWindowTitle(f"{path.name} — clipiqa-desktop")
        self.ctx.set_session(session)  # the view, the grid and the indexer follow
        return True

    def _subfolders_toggled(self, include: bool) -> None:
        session = self.session
        if session is None:
            return
        remember_subfolders(session.folder, include)
        self.open_folder(session.folder)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for folder in self.ctx.settings.recent:
            action = self.recent_menu.addAction(folder)
            action.triggered.connect(lambda _=False, f=folder: self.open_folder(f))
        self.recent_menu.setEnabled(bool(self.ctx.settings.recent))
