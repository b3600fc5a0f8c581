"""Settings ▸ CPU engine: reaches the indexer's spec, and a combination that cannot run is refused
in the dialog, where the photographer chose it, not later by the indexer."""

from __future__ import annotations

from clipiqa_desktop.gui.dialogs import SettingsDialog
from clipiqa_desktop.gui.settings import AppSettings
from clipiqa_desktop.gui.workers import ScorerHolder


def test_engine_setting_is_checked_saved_and_reaches_the_indexer(qtbot, settings):
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    dialog.engine.setCurrentText("onnx")
    dialog.precision.setCurrentText("bf16")
    dialog._accept()
    assert "The ONNX engine runs in fp32" in dialog.error.text()
    assert dialog.settings.engine == settings.engine, "not accepted"

    dialog.precision.setCurrentText("fp32")
    dialog.device.setCurrentText("cuda")
    dialog._accept()
    assert "The ONNX engine runs on the CPU" in dialog.error.text()

    dialog.device.setCurrentText("cpu")
    dialog._accept()
    assert dialog.settings.engine == "onnx" and dialog.edited(settings) == {"engine": "onnx"}
    dialog.settings.save()
    assert AppSettings.load().engine == "onnx"
    assert ScorerHolder.spec_of(dialog.settings).engine == "onnx"  # what the indexing child gets
