"""View ▸ How well do the flags match my culling…: the numbers of `evaluate` for the open folder,
from the session's table, following the culling as it happens (tests/culling/test_evaluate.py's
shoot: counts known exactly)."""

from __future__ import annotations

import pytest

from clipiqa_desktop.culling.decisions import DecisionChange
from clipiqa_desktop.culling.session import CullingSession
from clipiqa_desktop.gui.controllers import EvaluateController

from ..culling.test_evaluate import culled_shoot


@pytest.fixture
def opened(window, catalog, tmp_path, monkeypatch):
    monkeypatch.setattr(window.indexer, "start", lambda: None)  # the photos are not real files
    ids = culled_shoot(catalog, tmp_path / "culled")
    session = CullingSession(catalog, tmp_path / "culled")
    window.ctx.set_session(session)
    yield session, ids
    session.close()


def _cells(table, row: int) -> list[str]:
    return [table.item(row, c).text() for c in range(table.columnCount())]


def _row(table, name: str) -> list[str]:
    rows = [_cells(table, r) for r in range(table.rowCount())]
    return next(r for r in rows if r[0] == name)


def test_the_panel_shows_the_numbers_and_follows_the_culling(qtbot, window, opened):
    session, ids = opened
    control = window.controller(EvaluateController)
    assert control.action.isEnabled() and control.action in window.view_menu.actions()
    control.action.trigger()
    dialog = control.dialog
    assert dialog is not None and dialog.isVisible()
    assert (
        "10 rejected, 20 kept (picked or at least 1 star); 5 unrated photos left out" in dialog.summary.text()
    )
    assert _row(dialog.presets, "Out of focus") == [
        "Out of focus",
        "5 of 9",
        "56 %",
        "1 of 20",
        "5 %",
        "83 %",
        "1",
        "Focus ≤ 0.30",
    ]
    assert "Even the sharpest region" in dialog.presets.item(1, 0).toolTip()  # the preset explains itself
    assert _row(dialog.thresholds, "Focus")[:8] == [
        "Focus",
        "≤ 0.30",
        "56 %",
        "83 %",
        "≤ 0.35",
        "67 %",
        "86 %",
        "0.75",
    ]

    # the photographer rejects the undecided u0 (focus 0.05): caught at once, no refresh pressed
    row = session.row_of(ids["u0.jpg"])
    assert row is not None
    session.decide([row], DecisionChange(reject=True))
    assert _row(dialog.presets, "Out of focus")[1] == "6 of 10"

    # counting the unrated photos as keepers: u1–u4 (focus 0.05) become false alarms
    dialog.unrated.setChecked(True)
    assert control.last is not None and control.last.unrated_keepers
    assert _row(dialog.presets, "Out of focus")[3] == "5 of 24"
    session.flush(10)


def test_too_few_decisions_say_so_instead_of_numbers(qtbot, window, opened):
    session, ids = opened
    keepers = [session.row_of(pid) for name, pid in ids.items() if name.startswith("k")]
    rows = [r for r in keepers if r is not None]
    session.decide(rows, DecisionChange(unflag=True))
    session.decide(rows, DecisionChange(stars=0))
    control = window.controller(EvaluateController)
    control.show()
    dialog = control.dialog
    assert dialog is not None
    text = dialog.summary.text()
    assert "Too few decisions to measure anything: 10 rejected and 0 kept" in text
    assert "count the unrated photos as keepers" in text
    assert dialog.presets.rowCount() == 0 and dialog.thresholds.rowCount() == 0
    dialog.unrated.setChecked(True)
    assert dialog.presets.rowCount() > 0
    session.flush(10)
