"""What every controller shares: the window's context (catalog, settings, the open session) and the
shell it adds its widgets, actions and menus to.

A controller is a QObject built with the window (`Controller(window)`); it adds its own toolbar
widgets, actions, docks and status-bar widgets through the shell, and follows the session through
`context.session_changed` and the session's own events. Adding a panel is adding a controller to
`controllers.CONTROLLERS`; the window class does not change.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from ...catalog import Catalog
from ...culling.session import CullingSession
from ..settings import AppSettings
from ..workers import ScorerHolder

if TYPE_CHECKING:
    from ..main_window import MainWindow


class WindowContext(QObject):
    """The state the controllers share. `settings` are in effect for this run (stored settings +
    command-line options); `stored` are what is saved (command-line options hold for one run)."""

    session_changed = Signal(object)  # CullingSession | None
    settings_changed = Signal(object, object)  # old AppSettings, new AppSettings

    def __init__(
        self, catalog: Catalog, settings: AppSettings, stored: AppSettings, persist: bool, parent: QObject
    ) -> None:
        super().__init__(parent)
        self.catalog, self.settings, self.stored, self.persist = catalog, settings, stored, persist
        self.session: CullingSession | None = None
        self.holder = ScorerHolder()

    def set_session(self, session: CullingSession | None) -> None:
        self.session = session
        self.session_changed.emit(session)

    def update_settings(self, run_only: bool = False, **changes: Any) -> None:
        """Change settings for this run, and (unless `run_only`) remember them."""
        old = self.settings
        self.settings = replace(self.settings, **changes)
        if not run_only:
            self.stored = replace(self.stored, **changes)
            self.save_settings()
        self.settings_changed.emit(old, self.settings)

    def save_settings(self) -> None:
        if self.persist:
            self.stored.save()


class Controller(QObject):
    """Base of the window's controllers: `self.window`, `self.ctx`, and hooks the window calls."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.ctx: WindowContext = window.ctx

    @property
    def session(self) -> CullingSession | None:
        return self.ctx.session

    def shutdown(self) -> None:
        """The window is closing: stop and wait for any work this controller started."""
