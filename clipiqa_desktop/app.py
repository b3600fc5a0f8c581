"""The composition root: settings, catalog and window, wired together. Only the GUI path comes here."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def run_app(args: argparse.Namespace) -> int:
    """Open the window (and the folder given on the command line); returns the exit status."""
    import os

    if (
        sys.platform.startswith("linux")
        and not os.environ.get("QT_QPA_PLATFORM")
        and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    ):
        # Qt would abort with a core dump; explain instead.
        print(
            "clipiqa-desktop: no display found (DISPLAY/WAYLAND_DISPLAY unset), so the window cannot open.\n"
            "  On a server use the headless commands (clipiqa-desktop index|list|rate|export|score --help),\n"
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
        catalog = Catalog(settings.catalog_path)
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
