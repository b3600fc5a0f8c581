"""The composition root: settings, catalog and window, wired together. Only the GUI path comes here."""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger(__name__)


def run_app(args: argparse.Namespace) -> int:
    """Open the window (and the folder given on the command line); returns the exit status."""
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication, QMessageBox

    from .catalog import Catalog, CatalogError
    from .gui.main_window import MainWindow
    from .gui.settings import AppSettings

    QCoreApplication.setOrganizationName("clipiqa-desktop")
    QCoreApplication.setApplicationName("clipiqa-desktop")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    settings = AppSettings.load().with_cli(args)
    try:
        catalog = Catalog(settings.catalog_path)
    except CatalogError as exc:
        QMessageBox.critical(None, "clipiqa-desktop: catalog problem", str(exc))
        print(f"clipiqa-desktop: {exc}", file=sys.stderr)
        return 2
    window = MainWindow(settings, catalog)
    window.show()
    if args.folder:
        window.open_folder(args.folder)
    code = int(app.exec())
    catalog.close()
    return code
