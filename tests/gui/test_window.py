"""The window end to end, offscreen: open, index, sort, cull with keys, undo, filters, loupe, prompt."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from clipiqa_desktop.gui.photo_model import PhotoIdRole, TableRowRole


def _open_and_index(qtbot, window, folder):
    assert window.open_folder(folder)
    qtbot.waitUntil(lambda: not window.indexing and window.index_thread is None, timeout=60_000)
    qtbot.waitUntil(lambda: window.model.rowCount() == 13, timeout=10_000)


def test_open_index_sort_reject_undo(qtbot, window, shoot, catalog):
    _open_and_index(qtbot, window, shoot)
    assert "Done" in window.status_label.text()
    assert window.filters.count_label.text() == "<b>13</b> of 13 photos"
    assert window.failed_button.isVisible() and "1 failed" in window.failed_button.text()

    window.sort_box.set_current_key("sharpness")
    session = window.session
    values = [session.table.score_column("sharpness")[r] for r in session.view[:12]]
    assert values == sorted(values)

    window.grid.setFocus()
    first = window.model.index(0)
    window.grid.setCurrentIndex(first)
    pid = first.data(PhotoIdRole)
    qtbot.keyClick(window.grid, Qt.Key.Key_X)
    assert window.decisions.flush(10)  # written by the writer thread
    assert catalog.decisions([pid])[pid].rating == -1
    qtbot.keyClick(window.grid, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.decisions.flush(10)
    assert catalog.decisions([pid])[pid].rating == 0
    qtbot.keyClick(
        window.grid, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    )
    assert window.decisions.flush(10)
    assert catalog.decisions([pid])[pid].rating == -1


def test_keys_stars_labels_pick_multiselect_and_auto_advance(qtbot, window, shoot, catalog):
    _open_and_index(qtbot, window, shoot)
    window.grid.setFocus()
    window.grid.setCurrentIndex(window.model.index(0))
    window.grid.selectAll()
    qtbot.keyClick(window.grid, Qt.Key.Key_3)
    assert window.decisions.flush(10)
    ids = [window.model.index(r).data(PhotoIdRole) for r in range(13)]
    assert {d.rating for d in catalog.decisions(ids).values()} == {3}
    window.grid.clearSelection()
    window.grid.setCurrentIndex(window.model.index(2))
    qtbot.keyClick(window.grid, Qt.Key.Key_8)
    qtbot.keyClick(window.grid, Qt.Key.Key_P)
    assert window.decisions.flush(10)
    d = catalog.decisions([ids[2]])[ids[2]]
    assert (d.label, d.picked, d.rating) == ("Green", True, 3)
    window.auto_advance.setChecked(True)
    window.grid.setCurrentIndex(window.model.index(4))
    window.grid.clearSelection()
    qtbot.keyClick(window.grid, Qt.Key.Key_X)
    assert window.decisions.flush(10)
    assert catalog.decisions([ids[4]])[ids[4]].rating == -1
    assert window.grid.currentIndex().row() == 5, "auto-advance moved to the next photo"
    qtbot.keyClick(window.grid, Qt.Key.Key_U)
    assert window.decisions.flush(10)
    assert catalog.decisions([ids[5]])[ids[5]].rating == 3


def test_filters_presets_decisions_and_reject_all_shown(qtbot, window, shoot, catalog, monkeypatch):
    _open_and_index(qtbot, window, shoot)
    window.filters.relative.setChecked(True)
    window.filters.preset_buttons["Blurry (CLIP-IQA)"].click()
    shown = len(window.session.view)
    assert 0 < shown < 13
    assert f"<b>{shown}</b> of 13" in window.filters.count_label.text()
    row = int(window.session.view[0])
    assert window.session.why(row)[0].startswith("Sharpness (CLIP-IQA) ")
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    window.reject_all_shown()
    assert window.decisions.flush(10)
    rejected = [pid for pid, d in catalog.decisions(list(window.session.table.ids)).items() if d.rating == -1]
    assert len(rejected) == shown
    window.filters.clear()
    window.filters.flags["rejected"].setChecked(True)
    qtbot.waitUntil(lambda: len(window.session.view) == shown, timeout=2000)


def test_loupe_opens_zooms_and_steps(qtbot, window, shoot):
    _open_and_index(qtbot, window, shoot)
    window.grid.setFocus()
    window.grid.setCurrentIndex(window.model.index(0))
    qtbot.keyClick(window.grid, Qt.Key.Key_Space)
    assert window.stack.currentWidget() is window.loupe
    qtbot.waitUntil(lambda: not window.loupe.view.item.pixmap().isNull(), timeout=10_000)
    assert window.loupe.view.fit
    qtbot.keyClick(window.loupe, Qt.Key.Key_Z)
    assert not window.loupe.view.fit and window.loupe.view.transform().m11() == 1.0
    assert "sharpest region" in window.loupe.pixels.text(), "the reasons of the measures the index stored"
    qtbot.keyClick(window.loupe, Qt.Key.Key_F)  # focus peaking (tests/gui/test_loupe_flags.py)
    assert window.loupe.peaking
    qtbot.waitUntil(lambda: window.loupe.message.text().endswith("Focus peaking on — F"), timeout=20_000)
    first_path = window.loupe.path
    qtbot.keyClick(window.loupe, Qt.Key.Key_Right)
    assert window.loupe.path != first_path and window.grid.currentIndex().row() == 1
    assert window.loupe.peaking, "peaking stays on from photo to photo"
    qtbot.keyClick(window.loupe, Qt.Key.Key_F)
    assert not window.loupe.peaking and not window.loupe.view.overlay.isVisible()
    qtbot.keyClick(window.loupe, Qt.Key.Key_Escape)
    assert window.stack.currentWidget() is window.grid
    window.loupe.wait()


def test_custom_prompt_scores_from_embeddings_and_sorts(qtbot, window, shoot):
    _open_and_index(qtbot, window, shoot)
    window.filters.positive.setText("Eyes closed.")
    window.filters.negative.setText("Eyes open.")
    window.filters.score_button.click()
    qtbot.waitUntil(lambda: window.sort_box.current_key() == "custom_eyes_closed", timeout=60_000)
    qtbot.waitUntil(
        lambda: window.prompt_thread is not None and not window.prompt_thread.isRunning(), timeout=10_000
    )
    col = window.session.table.score_column("custom_eyes_closed")
    shown = [col[r] for r in window.session.view[:12]]
    assert shown == sorted(shown, reverse=True)


def test_unreadable_folder_is_explained(qtbot, window, tmp_path, monkeypatch):
    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warnings.append(a[2]))
    assert not window.open_folder(tmp_path / "nope")
    assert "does not exist" in warnings[0] and "does not exist" in window.status_label.text()


def test_headless_cli_reads_the_catalog_while_the_window_indexes(qtbot, window, tmp_path, settings):
    import subprocess
    import sys

    from ..conftest import photo

    big = tmp_path / "card"
    big.mkdir()
    for i in range(30):
        photo(1200, 800, seed=i).save(big / f"C{i:03d}.jpg")
    from dataclasses import replace

    window.settings = replace(window.settings, size="full")  # slow enough to still be indexing
    window.open_folder(big)
    qtbot.waitUntil(lambda: len(window.session.table) > 0 or not window.indexing, timeout=60_000)
    assert window.indexing, "the CLI must read while the window is still writing"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "clipiqa_desktop",
            "list",
            str(big),
            "--catalog",
            str(settings.catalog_location),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert 0 < len(proc.stdout.splitlines()) <= 30
    window.cancel_indexing(wait=True)


def test_opening_another_folder_while_indexing_replaces_the_indexer(qtbot, window, shoot, tmp_path):
    from ..conftest import photo

    big = tmp_path / "card"
    big.mkdir()
    for i in range(30):
        photo(1200, 800, seed=i).save(big / f"C{i:03d}.jpg")
    window.open_folder(big)
    qtbot.waitUntil(lambda: window.indexing, timeout=10_000)
    old_worker = window.index_worker
    assert window.open_folder(shoot)
    assert window.index_worker is not old_worker
    qtbot.waitUntil(lambda: window.index_thread is None, timeout=60_000)
    assert "Done" in window.status_label.text() and window.session.folder == shoot.resolve()
    qtbot.waitUntil(lambda: window.model.rowCount() == 13, timeout=10_000)


def test_label_key_toggles_and_prompt_column_survives_a_reload(qtbot, window, shoot, catalog):
    _open_and_index(qtbot, window, shoot)
    window.grid.setFocus()
    window.grid.setCurrentIndex(window.model.index(0))
    pid = window.model.index(0).data(PhotoIdRole)
    qtbot.keyClick(window.grid, Qt.Key.Key_6)
    assert window.decisions.flush(10)
    assert catalog.decisions([pid])[pid].label == "Red"
    qtbot.keyClick(window.grid, Qt.Key.Key_6)
    assert window.decisions.flush(10)
    assert catalog.decisions([pid])[pid].label is None
    window.filters.positive.setText("Eyes closed.")
    window.filters.negative.setText("Eyes open.")
    window.filters.score_button.click()
    qtbot.waitUntil(lambda: "custom_eyes_closed" in window.session.table.attributes, timeout=60_000)
    window.session.reload()
    assert "custom_eyes_closed" in window.session.table.attributes


def test_command_line_options_are_not_saved(qtbot, catalog, settings, tmp_path, shoot):
    from dataclasses import replace

    from clipiqa_desktop.gui.main_window import MainWindow
    from clipiqa_desktop.gui.settings import AppSettings

    stored = replace(settings, size="512")
    effective = replace(stored, size="128")  # as if --size 128 was given
    w = MainWindow(effective, catalog, persist=True, stored=stored)
    qtbot.addWidget(w)
    w.open_folder(shoot)
    qtbot.waitUntil(lambda: w.index_thread is None, timeout=60_000)
    w.close()
    saved = AppSettings.load()
    assert saved.size == "512" and saved.recent == (str(shoot.resolve()),)


def test_the_photo_keys_act_on_is_always_visibly_selected(qtbot, window, shoot):
    _open_and_index(qtbot, window, shoot)
    current = window.grid.currentIndex()
    assert current.isValid() and window.grid.selectionModel().isSelected(current)
    window.filters.preset_buttons["Blurry (CLIP-IQA)"].click()
    window.filters.clear()
    window.sort_box.set_current_key("sharpness")
    current = window.grid.currentIndex()
    assert current.isValid() and window.grid.selectionModel().isSelected(current)
    assert window.target_rows() == [current.data(TableRowRole)]


def test_a_prompt_sort_does_not_follow_into_another_folder(qtbot, window, shoot, tmp_path):
    from ..conftest import photo

    _open_and_index(qtbot, window, shoot)
    window.filters.positive.setText("Eyes closed.")
    window.filters.negative.setText("Eyes open.")
    window.filters.score_button.click()
    qtbot.waitUntil(lambda: window.sort_box.current_key() == "custom_eyes_closed", timeout=60_000)
    other = tmp_path / "other"
    other.mkdir()
    photo(200, 150, seed=1).save(other / "A.jpg")
    assert window.open_folder(other)  # this folder has no "custom_eyes_closed" column
    assert window.session.sort_key == "name" and window.sort_box.current_key() == "name"
    qtbot.waitUntil(lambda: window.index_thread is None, timeout=60_000)
    assert window.model.rowCount() == 1
