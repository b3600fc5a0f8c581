"""The main window: the shell (grid, loupe, toolbar, menus, status bar) and the controllers that
fill it. The window wires; the controllers (gui/controllers/) do the work over a CullingSession
whose events keep the grid, the loupe, the filter panel and the status bar up to date.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtCore import Qt, QThread
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QListView,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QSlider,
    QStackedWidget,
    QWidget,
)

from ..catalog import Catalog
from ..culling.decisions import DecisionChange
from ..culling.session import CullingSession, FilterState
from .compare import CompareView
from .controllers import (
    CONTROLLERS,
    Controller,
    DecisionController,
    FolderController,
    IndexingController,
    LoupeController,
    PromptController,
    ViewController,
    WindowContext,
)
from .controllers.view import SortBox
from .delegate import PhotoDelegate
from .dialogs import SettingsDialog
from .filter_panel import FilterPanel
from .loupe import LoupeView
from .photo_model import PhotoGridModel
from .settings import AppSettings
from .thumbnails import ThumbnailCache

log = logging.getLogger(__name__)
C = TypeVar("C", bound=Controller)


class MainWindow(QMainWindow):
    def __init__(
        self, settings: AppSettings, catalog: Catalog, persist: bool = True, stored: AppSettings | None = None
    ) -> None:
        """`settings` are in effect for this run (stored settings + command-line options); `stored`
        are what is saved (command-line options are not: they hold for one run only)."""
        super().__init__()
        self.ctx = WindowContext(catalog, settings, stored or settings, persist, self)
        self.catalog = catalog
        self.setWindowTitle("clipiqa-desktop")
        self.resize(1400, 900)
        self.setAcceptDrops(True)
        self._build_shell()
        self.controllers: list[Controller] = []
        for cls in CONTROLLERS:  # in order: a controller may use the ones built before it
            self.controllers.append(cls(self))
        self.file_menu.addAction(self.add_action("Settings…", self.edit_settings, "Ctrl+,"))
        self.file_menu.addSeparator()
        self.file_menu.addAction(self.add_action("Quit", self.close, QKeySequence.StandardKey.Quit))
        self.say("Open a folder (Ctrl+O), drop one on the window, or pick a recent one.")

    # --- the shell the controllers fill ---------------------------------------------------------------
    def _build_shell(self) -> None:
        self.thumbs = ThumbnailCache(self.catalog, self, budget_bytes=self.settings.thumb_cache_mb << 20)
        self.model = PhotoGridModel(None, self.thumbs, self)
        self.grid = QListView()
        self.grid.setObjectName("grid")
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setUniformItemSizes(True)  # layout of 20,000 cells without asking each one
        self.grid.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.grid.setSpacing(4)
        self.grid.setWordWrap(False)
        self.grid.setStyleSheet("QListView { background: #151515; }")
        self.delegate = PhotoDelegate(self.grid)
        self.grid.setItemDelegate(self.delegate)
        self.grid.setModel(self.model)
        self.loupe = LoupeView()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.grid)
        self.stack.addWidget(self.loupe)
        self.compare = CompareView()  # 2–4 photos side by side (controllers/compare.py)
        self.stack.addWidget(self.compare)
        self.setCentralWidget(self.stack)
        self.toolbar = self.addToolBar("Main")
        self.toolbar.setObjectName("main toolbar")
        self.toolbar.setMovable(False)
        menu = self.menuBar()
        self.file_menu = menu.addMenu("&File")
        self.edit_menu = menu.addMenu("&Edit")
        self.view_menu = menu.addMenu("&View")
        self.status_label = QLabel("")
        self.status_label.setObjectName("status")
        self.statusBar().addWidget(self.status_label, 1)

    def add_action(
        self,
        text: str,
        slot: Any,
        shortcut: str | QKeySequence | QKeySequence.StandardKey | None = None,
        widget: QWidget | None = None,
    ) -> QAction:
        """An action with a shortcut, on the window (or only while `widget` has the focus)."""
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        (widget or self).addAction(action)
        if widget is not None:
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        return action

    def add_status_widget(self, widget: QWidget) -> None:
        widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.statusBar().addPermanentWidget(widget)

    def say(self, text: str) -> None:
        """A message in the status bar."""
        self.status_label.setText(text)

    def controller(self, kind: type[C]) -> C:
        """The controller of this kind (each kind is built once)."""
        for c in self.controllers:
            if isinstance(c, kind):
                return c
        raise LookupError(f"no {kind.__name__} in this window")

    # --- shared state ------------------------------------------------------------------------------------
    @property
    def session(self) -> CullingSession | None:
        return self.ctx.session

    @property
    def settings(self) -> AppSettings:
        return self.ctx.settings

    @settings.setter
    def settings(self, value: AppSettings) -> None:
        self.ctx.settings = value

    @property
    def stored(self) -> AppSettings:
        return self.ctx.stored

    @property
    def holder(self) -> Any:
        return self.ctx.holder

    # --- the controllers by name (scripts, benchmarks and tests use these) ---------------------------------
    @property
    def folder(self) -> FolderController:
        return self.controller(FolderController)

    @property
    def view(self) -> ViewController:
        return self.controller(ViewController)

    @property
    def decisions(self) -> DecisionController:
        return self.controller(DecisionController)

    @property
    def loupe_control(self) -> LoupeController:
        return self.controller(LoupeController)

    @property
    def prompts(self) -> PromptController:
        return self.controller(PromptController)

    @property
    def indexer(self) -> IndexingController:
        return self.controller(IndexingController)

    def open_folder(self, folder: str | Path) -> bool:
        return self.folder.open_folder(folder)

    def start_indexing(self) -> None:
        self.indexer.start()

    def cancel_indexing(self, wait: bool = False) -> None:
        self.indexer.cancel(wait)

    @property
    def indexing(self) -> bool:
        return self.indexer.indexing

    @property
    def index_thread(self) -> QThread | None:
        return self.indexer.worker_thread

    @property
    def index_worker(self) -> Any:
        return self.indexer.worker

    @property
    def failed_button(self) -> QPushButton:
        return self.indexer.failed_button

    @property
    def last_failures(self) -> list[tuple[str, str]]:
        return self.indexer.last_failures

    @property
    def prompt_thread(self) -> QThread | None:
        return self.prompts.worker_thread

    @property
    def filters(self) -> FilterPanel:
        return self.view.filters

    @property
    def sort_box(self) -> SortBox:
        return self.view.sort_box

    @property
    def desc_action(self) -> QAction:
        return self.view.desc_action

    @property
    def size_slider(self) -> QSlider:
        return self.view.size_slider

    @property
    def auto_advance(self) -> QAction:
        return self.decisions.auto_advance

    def _sort_changed(self, key: str) -> None:
        self.view.sort_changed(key)

    def apply_filters(self, state: FilterState) -> None:
        self.view.apply_filters(state)

    def decide(self, change: DecisionChange) -> None:
        self.decisions.decide(change)

    def target_rows(self) -> list[int]:
        return self.decisions.target_rows()

    def reject_all_shown(self) -> None:
        self.decisions.reject_all_shown()

    def toggle_loupe(self) -> None:
        self.loupe_control.toggle_loupe()

    # --- settings, drag and drop, closing ----------------------------------------------------------------
    def edit_settings(self) -> None:
        """Settings… shows the settings in effect; OK applies them to this run and saves only the
        fields the user changed, so one-run command-line options (--model, --size …) stay unsaved."""
        shown = self.ctx.settings
        dialog = SettingsDialog(shown, self)
        if not dialog.exec():
            return
        changes = dialog.edited(shown)
        if not changes:
            return
        self.ctx.update_settings(False, **changes)  # the indexer restarts when a model option changed
        if "thumb_cache_mb" in changes:
            self.thumbs.set_budget(self.settings.thumb_cache_mb << 20)
        if "catalog" in changes:
            QMessageBox.information(self, "Catalog", "The new catalog is used from the next start.")

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile() and Path(urls[0].toLocalFile()).is_dir():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        urls = event.mimeData().urls()
        if urls:
            self.open_folder(urls[0].toLocalFile())

    def closeEvent(self, event: QCloseEvent) -> None:
        for c in reversed(self.controllers):
            c.shutdown()
        self.thumbs.wait()
        self.ctx.save_settings()
        super().closeEvent(event)
