"""Without the CLIP weights the window still measures focus, exposure and faces (--model none)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QPushButton

from clipiqa_desktop.measures.registry import PIXEL_KEYS


def test_missing_weights_offer_to_measure_without_clip(qtbot, settings, shoot, monkeypatch, tmp_path):
    from clipiqa_desktop.catalog import Catalog
    from clipiqa_desktop.gui.main_window import MainWindow

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the real RN50 weights cannot be had here
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    settings = replace(settings, model="RN50", pretrained="openai")
    catalog = Catalog(settings.catalog_location)
    window = MainWindow(settings, catalog, persist=False)
    qtbot.addWidget(window)
    window.show()
    clicked: list[str] = []

    def click_without_clip() -> None:  # what the photographer does in the modal dialog
        dialog = QApplication.activeModalWidget()
        if dialog is None:
            QTimer.singleShot(50, click_without_clip)
            return
        for button in dialog.findChildren(QPushButton):
            if button.text() == "Without CLIP":
                clicked.append(dialog.windowTitle())
                button.click()

    QTimer.singleShot(50, click_without_clip)
    try:
        assert window.open_folder(shoot)
        qtbot.waitUntil(lambda: bool(clicked), timeout=120_000)
        qtbot.waitUntil(lambda: window.model.rowCount() == 13 and not window.indexing, timeout=120_000)
        qtbot.waitUntil(lambda: "focus" in window.session.table.attributes, timeout=30_000)
        assert clicked == ["CLIP weights needed"]
        table = window.session.table
        assert "quality" not in table.attributes
        assert not np.isnan(table.score_column("focus")[np.array(table.status) == "ok"]).any()
        assert set(table.attributes) <= set(PIXEL_KEYS)
        assert window.ctx.stored.model == "RN50", "only this session measures without CLIP"
    finally:
        window.close()
        catalog.close()
