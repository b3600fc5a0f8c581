"""Edit ▸ Move rejects aside… and Undo move of rejects, in the window (offscreen)."""

from __future__ import annotations

import os
import threading

from PySide6.QtWidgets import QMessageBox

from clipiqa_desktop.catalog import Decision
from clipiqa_desktop.culling.move_rejects import MoveResult
from clipiqa_desktop.gui.controllers import HandoffController, MovesController
from tests.conftest import photo


def test_move_rejects_aside_after_a_confirmation_then_undo(qtbot, window, shoot, catalog, monkeypatch):
    assert window.open_folder(shoot)
    qtbot.waitUntil(lambda: not window.indexing and window.index_thread is None, timeout=60_000)
    qtbot.waitUntil(lambda: window.model.rowCount() == 13, timeout=10_000)
    ids = catalog.photo_ids_for_paths(
        [shoot / "IMG_0001.jpg", shoot / "IMG_0002.jpg", shoot / "IMG_0003.jpg"]
    )
    one, two, three = (ids[shoot / f"IMG_000{i}.jpg"] for i in (1, 2, 3))
    assert None not in (one, two, three)
    catalog.set_decisions({one: Decision(-1), two: Decision(-1), three: Decision(0, True)})
    (shoot / "IMG_0001.CR2").write_bytes(b"raw")  # a RAW partner the catalog does not know
    (shoot / "IMG_0001.jpg.xmp").write_bytes(b"<x/>")
    (shoot / "IMG_0002.xmp").write_bytes(b"<x/>")
    before = {p.name: p.read_bytes() for p in shoot.iterdir()}

    asked: list[str] = []

    def yes(_parent, _title, text, *args, **kwargs):
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", yes)
    moves = window.controller(MovesController)
    moves.move_action.trigger()
    target = shoot.resolve() / "_rejected"
    assert asked[0].startswith(
        f"Move 2 rejected photos (5 files with 1 RAW+JPEG partner and 2 sidecars) to {target}?"
    )
    qtbot.waitUntil(lambda: moves.worker_thread is None, timeout=10_000)
    assert sorted(os.listdir(target)) == [
        "IMG_0001.CR2",
        "IMG_0001.jpg",
        "IMG_0001.jpg.xmp",
        "IMG_0002.jpg",
        "IMG_0002.xmp",
    ]
    assert "Moved 2 rejected photos (5 files) aside" in window.status_label.text()
    assert window.model.rowCount() == 11  # they left the (non-recursive) view
    assert not {one, two} & {int(i) for i in window.session.table.ids}
    assert catalog.photo_ids_for_paths([target / "IMG_0001.jpg"])[target / "IMG_0001.jpg"] == one
    assert catalog.decisions([one])[one] == Decision(-1)

    moves.undo_action.trigger()
    qtbot.waitUntil(lambda: moves.worker_thread is None, timeout=10_000)
    assert "Put back 5 files" in window.status_label.text()
    assert {p.name: p.read_bytes() for p in shoot.iterdir()} == before
    assert window.model.rowCount() == 13
    assert catalog.photo_ids_for_paths([shoot / "IMG_0002.jpg"])[shoot / "IMG_0002.jpg"] == two


def test_no_rejects_says_so_and_moves_nothing(qtbot, window, shoot, monkeypatch):
    assert window.open_folder(shoot)
    qtbot.waitUntil(lambda: not window.indexing and window.index_thread is None, timeout=60_000)
    told: list[str] = []
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: told.append(a[2]))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: pytest_fail())
    window.controller(MovesController).move_rejects()
    assert told == ["No rejected photos to move."]
    assert not (shoot / "_rejected").exists()


def pytest_fail() -> None:
    raise AssertionError("no confirmation is asked when nothing would move")


def test_while_rejects_move_no_index_export_or_folder_switch_starts(qtbot, window, shoot, tmp_path):
    """The window's one "files busy" guard: a move in flight (held open here) refuses the other work
    on the folder's files, each with a status line; once it is done they run again."""
    assert window.open_folder(shoot)
    qtbot.waitUntil(lambda: not window.indexing and window.index_thread is None, timeout=60_000)
    moves = window.controller(MovesController)
    release = threading.Event()
    moves._start(lambda: release.wait(30) and MoveResult(), moves._moved)
    other = tmp_path / "other"
    other.mkdir()
    photo(240, 160).save(other / "x.jpg")
    try:
        assert not window.open_folder(other)
        assert "Rejects are being moved: open another folder" in window.status_label.text()
        assert window.session.folder == shoot.resolve()
        window.start_indexing()
        assert not window.indexing and "index again" in window.status_label.text()
        handoff = window.controller(HandoffController)
        handoff.export()
        assert handoff.worker_thread is None and "export XMP" in window.status_label.text()
    finally:
        release.set()
    qtbot.waitUntil(lambda: moves.worker_thread is None, timeout=10_000)
    assert window.open_folder(other)
    qtbot.waitUntil(lambda: not window.indexing and window.index_thread is None, timeout=60_000)
