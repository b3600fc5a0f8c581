"""What the window's writer thread does around a decision, end to end with keys: "Write XMP sidecars
as I cull" (a sidecar that cannot be written is said in the status line and the decision stands),
a decision the catalog refuses (another process holds the write lock past the retry window: undone
on screen, explained once, dropped from the undo list), and a close that writes what is queued.
"""

from __future__ import annotations

import sqlite3
import threading

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from clipiqa_desktop.catalog import Decision
from clipiqa_desktop.catalog import connection as connection_module
from clipiqa_desktop.culling.xmp import read_decision
from clipiqa_desktop.gui.photo_model import PhotoIdRole


def _open_and_index(qtbot, window, folder, rows):
    assert window.open_folder(folder)
    qtbot.waitUntil(lambda: not window.indexing and window.index_thread is None, timeout=60_000)
    qtbot.waitUntil(lambda: window.model.rowCount() == rows, timeout=10_000)


def _press(qtbot, window, row, key):
    window.grid.setCurrentIndex(window.model.index(row))
    window.grid.clearSelection()
    qtbot.keyClick(window.grid, key)
    return window.model.index(row).data(PhotoIdRole)


@pytest.fixture
def shown(window):
    def at(pid):
        s = window.session
        r = s.row_of(pid)
        return Decision(int(s.table.rating[r]), bool(s.table.picked[r]), s.table.labels[r])

    return at


def test_sidecars_as_i_cull_a_refused_write_and_a_close_that_drains(
    qtbot, window, shoot, catalog, monkeypatch, shown
):
    (shoot / "IMG_9999.jpg").unlink()
    window.ctx.update_settings(run_only=True, write_sidecars=True)  # darktable naming: IMG.jpg.xmp
    _open_and_index(qtbot, window, shoot, 12)
    window.grid.setFocus()
    window.session.set_sort("name", False)

    pid = _press(qtbot, window, 0, Qt.Key.Key_3)
    assert window.decisions.flush(10)
    assert read_decision(shoot / "IMG_0000.jpg") == Decision(rating=3), "the sidecar follows the key"
    qtbot.keyClick(window.grid, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.decisions.flush(10)
    assert read_decision(shoot / "IMG_0000.jpg") in (None, Decision()), "and the undo"
    assert catalog.decisions([pid])[pid] == Decision()

    (shoot / "IMG_0001.jpg.xmp").mkdir()  # the sidecar cannot be written there
    pid = _press(qtbot, window, 1, Qt.Key.Key_X)
    assert window.decisions.flush(10)
    assert catalog.decisions([pid])[pid].rating == -1, "the decision stands"
    assert shown(pid).rating == -1
    status = window.status_label.text()
    assert "sidecar" in status.lower() and "IMG_0001.jpg" in status and "failed" in status

    # The catalog refuses: another program holds the write lock past the (shortened) retry window.
    monkeypatch.setattr(connection_module, "BUSY_TIMEOUT_MS", 50)
    monkeypatch.setattr(connection_module, "WRITE_RETRY_SECONDS", 0.3)
    catalog.close()
    dialogs = []
    monkeypatch.setattr(QMessageBox, "critical", lambda *a, **k: dialogs.append(a[2]))
    other = sqlite3.connect(catalog.path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    try:
        pid = _press(qtbot, window, 2, Qt.Key.Key_P)
        assert shown(pid).picked, "shown at once"
        qtbot.waitUntil(lambda: bool(dialogs), timeout=10_000)  # delivered through the event loop
    finally:
        other.execute("ROLLBACK")
    assert not shown(pid).picked, "undone on screen"
    assert "Not saved (picked" in window.status_label.text()
    assert len(dialogs) == 1 and "busy" in dialogs[0].lower()
    assert catalog.decisions([pid])[pid] == Decision()
    qtbot.keyClick(window.grid, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undoes the X
    assert window.decisions.flush(10)
    rejected = window.model.index(1).data(PhotoIdRole)
    assert catalog.decisions([rejected])[rejected] == Decision(), "the failed pick left the undo list"

    # Closing writes what is queued, waiting for the other program's lock to be released.
    monkeypatch.undo()
    catalog.close()
    other.execute("BEGIN IMMEDIATE")
    ids = [_press(qtbot, window, row, Qt.Key.Key_6) for row in (3, 4, 5)]
    release = threading.Timer(0.5, lambda: other.execute("ROLLBACK"))
    release.start()
    try:
        window.close()
    finally:
        release.join()
        other.close()
    assert {catalog.decisions(ids)[p].label for p in ids} == {"Red"}
