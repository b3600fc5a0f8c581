"""File ▸ Export XMP sidecars… in the window (offscreen), and the three XMP settings."""

from __future__ import annotations

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

from clipiqa_desktop.catalog import Decision
from clipiqa_desktop.gui.controllers import HandoffController
from clipiqa_desktop.gui.dialogs import SettingsDialog
from clipiqa_desktop.gui.settings import AppSettings


def test_export_xmp_sidecars_from_the_menu_off_the_gui_thread(qtbot, window, shoot, catalog, monkeypatch):
    handoff = window.controller(HandoffController)
    assert not handoff.export_action.isEnabled(), "no folder open: nothing to export"
    assert handoff.export_action in window.file_menu.actions()
    assert window.open_folder(shoot)
    qtbot.waitUntil(lambda: not window.indexing and window.index_thread is None, timeout=60_000)
    qtbot.waitUntil(lambda: window.model.rowCount() == 13, timeout=10_000)
    ids = catalog.photo_ids_for_paths([shoot / "IMG_0001.jpg", shoot / "IMG_0002.jpg"])
    catalog.set_decisions(
        {ids[shoot / "IMG_0001.jpg"]: Decision(-1), ids[shoot / "IMG_0002.jpg"]: Decision(5)}
    )
    window.ctx.update_settings(run_only=True, sidecar_naming="adobe", reject_as="label")
    told: list[str] = []
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: told.append(a[2]))
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: told.append(a[2]))
    handoff.export_action.trigger()
    qtbot.waitUntil(lambda: bool(told), timeout=20_000)
    assert told == ["Wrote 13 sidecars, 0 unchanged."]
    assert handoff.worker_thread is None and handoff.export_action.isEnabled()
    assert "XMP: wrote 13 sidecars" in window.status_label.text()
    rejected = (shoot / "IMG_0001.xmp").read_bytes()
    assert b"<xmp:Label>Purple</xmp:Label>" in rejected and b"Label=Purple" in rejected
    assert b"<xmp:Rating>5</xmp:Rating>" in (shoot / "IMG_0002.xmp").read_bytes()
    assert b"<clipiqa:quality>" in rejected, "the scores of the folder's analysis"
    (shoot / "IMG_0003.xmp").unlink()
    (shoot / "IMG_0004.xmp").unlink()
    (shoot / "IMG_0004.xmp").mkdir()  # in the way: reported, the others still written
    handoff.export()
    qtbot.waitUntil(lambda: len(told) == 2, timeout=20_000)
    assert told[1].startswith("Wrote 1 sidecar, 11 unchanged, 1 failed.\n\nfailed ")
    assert "IMG_0004.xmp: is not a regular file" in told[1]


def test_the_three_xmp_settings_are_edited_and_persisted(qtbot):
    d = AppSettings()
    assert (d.sidecar_naming, d.reject_as, d.write_sidecars) == ("darktable", "rating", False)
    dialog = SettingsDialog(d)
    qtbot.addWidget(dialog)
    dialog.sidecar_naming.setCurrentIndex(dialog.sidecar_naming.findData("adobe"))
    dialog.reject_as.setCurrentIndex(dialog.reject_as.findData("one-star"))
    dialog.write_sidecars.setChecked(True)
    dialog._accept()
    changes = dialog.edited(d)
    assert changes == {"sidecar_naming": "adobe", "reject_as": "one-star", "write_sidecars": True}
    store = QSettings()
    AppSettings(**changes).save(store)  # type: ignore[arg-type]
    loaded = AppSettings.load(QSettings())
    assert (loaded.sidecar_naming, loaded.reject_as, loaded.write_sidecars) == ("adobe", "one-star", True)
    store.setValue("reject_as", "bogus")
    assert AppSettings.load(store).reject_as == "rating", "an unknown stored value falls back to the default"
