"""The "My taste" column in the window (gui/controllers/taste.py): fitted on a worker thread from the
decisions on screen, shown with its cross-validated accuracy in the status bar, refitted (debounced,
one fit at a time) as the photographer culls. Shoots from tests/culling/test_taste.py (a hidden rule
decides keep/reject)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from clipiqa_desktop.culling.decisions import DecisionChange
from clipiqa_desktop.culling.session import CullingSession
from clipiqa_desktop.culling.taste import TASTE_KEY
from clipiqa_desktop.gui.controllers import TasteController
from clipiqa_desktop.gui.controllers import taste as taste_controller

from ..culling.test_taste import taste_shoot


@pytest.fixture
def open_shoot(window, catalog, tmp_path, monkeypatch):
    monkeypatch.setattr(window.indexer, "start", lambda: None)  # the photos are not real files
    monkeypatch.setattr(taste_controller, "DEBOUNCE_MS", 150)
    sessions = []

    def open_(decided: int, n: int = 100) -> tuple[CullingSession, dict[str, int]]:
        ids, _ = taste_shoot(catalog, tmp_path / "shoot", n=n, decided=decided)
        session = CullingSession(catalog, tmp_path / "shoot")
        sessions.append(session)
        window.ctx.set_session(session)
        return session, ids

    yield open_
    for s in sessions:
        s.close()


def test_the_column_and_its_accuracy_appear_without_blocking_the_window(qtbot, window, open_shoot):
    control = window.controller(TasteController)
    session, _ = open_shoot(decided=70)
    qtbot.waitUntil(lambda: control.busy or TASTE_KEY in session.table.attributes, timeout=5000)
    # a fit asked for now returns at once: the work is on the worker thread
    qtbot.waitUntil(lambda: not control.busy, timeout=20000)
    start = time.perf_counter()
    control.refit()
    assert time.perf_counter() - start < 0.25 and control.busy
    qtbot.waitUntil(lambda: not control.busy, timeout=20000)

    assert TASTE_KEY in session.table.attributes
    text = control.label.text()
    assert text.startswith("My taste: ") and "% cross-validated (70 decisions; always-" in text
    assert "ROC AUC" in control.label.toolTip()
    col = session.table.score_column(TASTE_KEY)
    decided = session.table.rating != 0
    decided |= session.table.picked
    assert np.isnan(col[decided]).all()  # decided photos: their decision is the answer
    assert np.isfinite(col[~decided]).all() and ((col[~decided] >= 0) & (col[~decided] <= 1)).all()
    assert int((~decided).sum()) == 30

    # sorting by it lists the undecided photos, likeliest keep first
    session.set_sort(TASTE_KEY, descending=True)
    shown = session.table.score_column(TASTE_KEY)[session.view[:30]]
    assert np.all(np.diff(shown) <= 0) and np.isfinite(shown).all()


def test_culling_refits_it_debounced_one_fit_at_a_time(qtbot, window, open_shoot):
    control = window.controller(TasteController)
    session, ids = open_shoot(decided=45)
    qtbot.waitUntil(lambda: control.label.text() == "My taste: 45 of 50 decisions", timeout=10000)
    assert TASTE_KEY not in session.table.attributes
    assert "at least 50 in all" in control.label.toolTip()
    fits = control.fits

    # the photographer rejects six photos, one keypress after another: one or two fits, not six
    for name in ("p045.jpg", "p046.jpg", "p047.jpg", "p048.jpg", "p049.jpg", "p050.jpg"):
        row = session.row_of(ids[name])
        assert row is not None
        session.decide([row], DecisionChange(reject=True))
        qtbot.wait(30)
    qtbot.waitUntil(lambda: TASTE_KEY in session.table.attributes, timeout=20000)
    qtbot.waitUntil(lambda: not control.busy, timeout=20000)
    assert "cross-validated (51 decisions;" in control.label.text()
    assert 1 <= control.fits - fits <= 2
    col = session.table.score_column(TASTE_KEY)
    assert np.isnan(col[session.row_of(ids["p050.jpg"])])  # just rejected: no prediction
    assert np.isfinite(col[session.row_of(ids["p099.jpg"])])
    session.flush()


def test_a_fit_on_a_catalog_server_that_went_away_fails_in_one_line(qtbot, postgres, tmp_path, caplog):
    """The window's taste fit on a PostgreSQL catalog whose server session ends (a stopped server,
    the network): the status line gets the catalog's explanation, the log no traceback."""
    import logging

    from clipiqa_desktop.catalog import Catalog
    from clipiqa_desktop.culling.taste import ShootLabels
    from clipiqa_desktop.gui.controllers.taste import _Fit

    from ..catalog import raw

    address = postgres.database()
    catalog = Catalog(address)
    try:
        catalog.folder_id(tmp_path)
        name = address.rsplit("/", 1)[1]
        raw.execute(postgres.admin_url, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        raw.execute(
            postgres.admin_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :db",
            db=name,
        )
        empty = ShootLabels(np.zeros(0, np.int64), np.zeros(0, np.int8), (), np.zeros((0, 0), np.float32))
        fit = _Fit(catalog, tmp_path, False, 1, empty)
        failed: list[str] = []
        fit.failed.connect(failed.append)
        with caplog.at_level(logging.WARNING):
            fit.run()
        assert failed and "cannot reach the catalog" in failed[0]
        records = [r for r in caplog.records if "taste model could not be fitted" in r.getMessage()]
        assert records and all(r.exc_info is None for r in records)
    finally:
        raw.execute(postgres.admin_url, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        catalog.close()
