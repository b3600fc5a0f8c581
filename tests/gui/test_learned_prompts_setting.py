"""Settings ▸ Learned prompts: the CLIP-IQA+ file the window's indexer scores quality_plus with."""

from __future__ import annotations

from pathlib import Path

from clipiqa_desktop.gui.dialogs import SettingsDialog
from clipiqa_desktop.gui.settings import AppSettings
from clipiqa_desktop.gui.workers import ScorerHolder


def test_learned_prompts_setting_reaches_the_indexer_spec(qtbot, settings, tmp_path):
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    dialog.learned_prompts.setText(str(tmp_path / "gone.pth"))
    dialog._accept()
    assert "gone.pth does not exist" in dialog.error.text()
    assert dialog.settings.learned_prompts == "", "a missing file is not accepted"

    ctx = tmp_path / "ctx.pth"
    ctx.write_bytes(b"checked when the indexer loads it")
    dialog.learned_prompts.setText(str(ctx))
    dialog._accept()
    assert dialog.settings.learned_prompts == str(ctx)
    assert dialog.edited(settings) == {"learned_prompts": str(ctx)}

    dialog.settings.save()
    assert AppSettings.load().learned_prompts == str(ctx)
    spec = ScorerHolder.spec_of(dialog.settings)  # what the indexing child process gets (picklable)
    assert spec.learned_prompts == str(ctx) and spec.model_spec().learned_prompts == Path(ctx)
    assert ScorerHolder.spec_of(settings).model_spec().learned_prompts is None
