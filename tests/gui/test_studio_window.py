"""The window on a studio's shared PostgreSQL catalog: Settings takes the address (kept as typed, never
turned into a file path), and a window opens a folder, indexes it in its child process and culls
with keys on either backend (both_backends: an SQLite file, then a database on the test server)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from clipiqa_desktop.catalog import Catalog, Decision
from clipiqa_desktop.gui.photo_model import PhotoIdRole
from clipiqa_desktop.gui.settings import AppSettings

from .test_folders_and_settings import _accept_settings

ADDRESS = "postgresql://editor@nas.local:5433/weddings"


def test_the_catalog_setting_is_a_file_or_a_postgresql_address(tmp_path):
    assert AppSettings(catalog=ADDRESS).catalog_location == ADDRESS
    assert AppSettings(catalog="postgres://u@h/db").catalog_location == "postgres://u@h/db"
    assert AppSettings(catalog=str(tmp_path / "c.sqlite")).catalog_location == tmp_path / "c.sqlite"
    assert isinstance(AppSettings(catalog="~/c.sqlite").catalog_location, Path)


def test_settings_saves_a_typed_postgresql_address_as_it_is(qtbot, window, monkeypatch):
    told: list[str] = []
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: told.append(a[2]))
    _accept_settings(window, lambda d: d.catalog.setText(ADDRESS))
    assert told == ["The new catalog is used from the next start."]
    assert window.settings.catalog == ADDRESS  # (this window does not persist its settings)
    assert window.settings.catalog_location == ADDRESS


@pytest.mark.both_backends
def test_the_window_indexes_and_culls_on_either_backend(qtbot, window, shoot, catalog):
    (shoot / "IMG_9999.jpg").unlink()
    assert window.open_folder(shoot)
    qtbot.waitUntil(lambda: not window.indexing and window.index_thread is None, timeout=90_000)
    qtbot.waitUntil(lambda: window.model.rowCount() == 12, timeout=10_000)
    window.grid.setCurrentIndex(window.model.index(0))
    window.grid.clearSelection()
    qtbot.keyClick(window.grid, Qt.Key.Key_4)
    pid = int(window.model.index(0).data(PhotoIdRole))
    assert window.decisions.flush(10)
    other = Catalog(catalog.address)  # as another machine's window would read it
    try:
        assert other.decisions([pid])[pid] == Decision(rating=4)
        folder = other.folder_id(shoot, create=False)
        assert folder is not None and other.photo_count([folder]) == 12
    finally:
        other.close()
