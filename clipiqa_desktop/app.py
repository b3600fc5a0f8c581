"""The composition root: settings, catalog and window, wired together. Only the GUI path comes here."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def display_problem() -> str | None:
    """Why no window can open on this Linux session (None when one can, or we cannot tell)."""
    import os
    import socket

    if not sys.platform.startswith("linux"):
        return None
    platform = os.environ.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0]
    if platform not in ("", "xcb", "wayland"):
        return None  # offscreen, vnc, eglfs ...: Qt's own business
    wayland = os.environ.get("WAYLAND_DISPLAY")
    if platform in ("", "wayland") and wayland:
        runtime = os.environ.get("XDG_RUNTIME_DIR", "")
        if Path(wayland).is_absolute() or (Path(runtime) / wayland).exists():
            return None
    display = os.environ.get("DISPLAY")
    if not display:
        return "no display found (DISPLAY/WAYLAND_DISPLAY unset)"
    host, _, rest = display.rpartition(":")
    number = rest.split(".")[0]
    if not number.isdigit():
        return None
    try:
        if host in ("", "unix"):
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(f"/tmp/.X11-unix/X{number}")
        else:
            socket.create_connection((host, 6000 + int(number)), timeout=2).close()
    except OSError:
        return f"cannot connect to the X display {display}"
    return None


def run_app(args: argparse.Namespace) -> int:
    """Open the window (and the folder given on the command line); returns the exit status."""
    problem = display_problem()
    if problem:  # Qt would abort with a core dump and advise reinstalling; explain instead
        print(
            f"clipiqa-desktop: {problem}, so the window cannot open.\n"
            "  On a server use the headless commands (index, list, groups, search, learn, ...:\n"
            "  clipiqa-desktop --help lists them),\n"
            "  or a virtual display: xvfb-run clipiqa-desktop FOLDER",
            file=sys.stderr,
        )
        return 2
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication, QMessageBox

    from .catalog import Catalog, CatalogError
    from .gui.main_window import MainWindow
    from .gui.settings import AppSettings

    QCoreApplication.setOrganizationName("clipiqa-desktop")
    QCoreApplication.setApplicationName("clipiqa-desktop")
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    stored = AppSettings.load()
    settings = stored.with_cli(args)
    try:
        catalog = Catalog(settings.catalog_location)
    except CatalogError as exc:
        QMessageBox.critical(None, "clipiqa-desktop: catalog problem", str(exc))
        print(f"clipiqa-desktop: {exc}", file=sys.stderr)
        return 2
    icon = Path(__file__).resolve().parent.parent / "resources" / "clipiqa-desktop.svg"
    if icon.is_file():
        from PySide6.QtGui import QIcon

        app.setWindowIcon(QIcon(str(icon)))
    window = MainWindow(settings, catalog, stored=stored)
    window.show()
    if args.folder:
        window.open_folder(args.folder)
    code = int(app.exec())
    catalog.close()
    return code
