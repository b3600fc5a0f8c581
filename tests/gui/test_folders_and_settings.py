"""Camera folders in the window (Include sub-folders, remembered per folder, on by default for a
folder without photos of its own), an empty folder explained, the grid updated row by row while a
folder indexes, and Settings' OK keeping one-run command-line options unsaved."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QDialog

from clipiqa_desktop.gui.settings import AppSettings, remember_subfolders, subfolders_choice

from ..conftest import photo


def _card(tmp_path):
    dcim = tmp_path / "card" / "DCIM"
    for sub, n in (("100CANON", 3), ("101CANON", 2)):
        (dcim / sub).mkdir(parents=True)
        for i in range(n):
            photo(200, 150, seed=i + len(sub) * n).save(dcim / sub / f"IMG_{i:04d}.JPG")
    (dcim / "MISC").mkdir()
    (dcim / "MISC" / "notes.txt").write_text("not a photo")
    return dcim


def _wait_done(qtbot, window):
    qtbot.waitUntil(lambda: not window.indexing and window.index_thread is None, timeout=60_000)


def test_a_cards_dcim_opens_with_its_sub_folders(qtbot, window, tmp_path):
    dcim = _card(tmp_path)
    assert window.open_folder(dcim)
    assert window.folder.subfolders.isChecked(), "on by default: DCIM/ holds no photos of its own"
    assert window.settings.recursive and window.session.recursive
    _wait_done(qtbot, window)
    qtbot.waitUntil(lambda: window.model.rowCount() == 5, timeout=10_000)
    names = sorted(window.model.index(r).data() for r in range(5))
    assert names[0].startswith("100CANON/") and names[-1].startswith("101CANON/")
    assert "Done" in window.status_label.text()


def test_a_card_indexed_with_sub_folders_opens_as_one_shoot(qtbot, window, catalog, tmp_path):
    from clipiqa_desktop.indexing.pipeline import IndexOptions, index_folder
    from clipiqa_desktop.scoring import ClipIqaScorer, ModelSpec

    from ..conftest import TINY_RN

    dcim = _card(tmp_path)
    scorer = ClipIqaScorer.load(ModelSpec(str(TINY_RN), "none"), "cpu", "fp32", "torch")
    index_folder(catalog, scorer, dcim, IndexOptions(long_side=128, recursive=True))  # as `index -r`
    assert window.open_folder(dcim)
    assert window.folder.subfolders.isChecked()
    assert window.model.rowCount() == 5, "the session loads the whole tree at once"
    names = [window.model.index(r).data() for r in range(5)]
    assert sorted(names) == names and names[0] == "100CANON/IMG_0000.JPG" and names[-1].startswith("101")
    _wait_done(qtbot, window)
    assert window.model.rowCount() == 5
    window.filters.positive.setText("Eyes closed.")
    window.filters.negative.setText("Eyes open.")
    window.filters.score_button.click()
    qtbot.waitUntil(lambda: window.sort_box.current_key() == "custom_eyes_closed", timeout=60_000)
    column = window.session.table.score_column("custom_eyes_closed")
    assert not np.isnan(column).any(), "a prompt pair scores the photos of every sub-folder"
    assert window.open_folder(dcim / "101CANON"), "a folder inside an indexed tree opens with its photos"
    assert not window.folder.subfolders.isChecked() and window.model.rowCount() == 2
    _wait_done(qtbot, window)


def test_the_sub_folder_choice_is_remembered_per_folder(qtbot, window, tmp_path, shoot):
    dcim = _card(tmp_path)
    assert window.open_folder(shoot)
    assert not window.folder.subfolders.isChecked(), "a folder with photos of its own: off by default"
    _wait_done(qtbot, window)
    assert window.open_folder(dcim)
    _wait_done(qtbot, window)
    window.folder.subfolders.setChecked(False)  # the user unticks it: the folder reopens without them
    _wait_done(qtbot, window)
    assert subfolders_choice(dcim.resolve()) is False and subfolders_choice(shoot.resolve()) is None
    assert not window.session.recursive and window.model.rowCount() == 0
    text = window.status_label.text()
    assert "Done in" not in text and "sub-folders" in text, text
    assert window.open_folder(shoot) and window.open_folder(dcim)
    assert not window.folder.subfolders.isChecked(), "the choice for DCIM/ was remembered"
    _wait_done(qtbot, window)
    remember_subfolders(dcim.resolve(), True)
    assert window.open_folder(dcim) and window.folder.subfolders.isChecked()
    _wait_done(qtbot, window)


def test_a_folder_without_photos_says_so(qtbot, window, tmp_path):
    empty = tmp_path / "Empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "readme.txt").write_text("no photos here")
    assert window.open_folder(empty)
    _wait_done(qtbot, window)
    text = window.status_label.text()
    assert "No photos in Empty" in text and "JPEG" in text, text
    assert "Done in" not in text


def test_indexing_updates_the_grid_without_resetting_it(qtbot, window, tmp_path):
    folder = tmp_path / "shoot"
    folder.mkdir()
    for i in range(20):
        photo(200, 150, seed=i).save(folder / f"IMG_{i:04d}.jpg")
    resets = []
    window.model.modelReset.connect(lambda: resets.append(1))
    assert window.open_folder(folder)
    opened = len(resets)  # showing the new folder is one reset
    _wait_done(qtbot, window)
    qtbot.waitUntil(lambda: window.model.rowCount() == 20, timeout=10_000)
    assert len(resets) == opened, "batches and the final reload change rows, never reset the grid"
    current = window.grid.currentIndex()
    assert current.isValid() and window.grid.selectionModel().isSelected(current)


def _accept_settings(window, edit):
    """Open Settings…, let `edit` change the dialog, press OK."""

    def act():
        from clipiqa_desktop.gui.dialogs import SettingsDialog

        dialog = next(
            w for w in window.findChildren(QDialog) if isinstance(w, SettingsDialog) and w.isVisible()
        )
        edit(dialog)
        dialog._accept()

    QTimer.singleShot(0, act)
    window.edit_settings()


def test_settings_ok_does_not_save_one_run_command_line_options(qtbot, catalog, settings, tmp_path):
    from clipiqa_desktop.gui.main_window import MainWindow

    stored = replace(settings, size="512", model=settings.model, thumb_cache_mb=256)
    stored.save()
    effective = replace(stored, size="128", precision="fp32")  # as if --size 128 was given
    w = MainWindow(effective, catalog, persist=True, stored=stored)
    qtbot.addWidget(w)
    _accept_settings(w, lambda d: d.cache_mb.setValue(64))  # the user changes one field only
    saved = AppSettings.load()
    assert saved.size == "512", "the command line's --size held for this run only"
    assert saved.thumb_cache_mb == 64
    assert w.settings.size == "128" and w.settings.thumb_cache_mb == 64
    assert w.thumbs.budget_bytes == 64 << 20

    _accept_settings(w, lambda d: d.size_box.setCurrentText("1024"))  # now the user sets the size
    assert AppSettings.load().size == "1024" and w.settings.size == "1024"
    w.close()
