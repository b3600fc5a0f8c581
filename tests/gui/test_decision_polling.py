"""Decisions made elsewhere appear in an open window within seconds, without a restart: a separate
PROCESS (the `rate` CLI) changes decisions of the shoot the window shows; the window polls the
catalog off the GUI thread (gui/controllers/live.py) and updates those rows in place, with the
selection, the current photo and the sort kept and the filters applied again. A photo whose local
change is still queued keeps it; undo after another machine decided the photo again leaves it."""

from __future__ import annotations

import subprocess
import threading

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt

from clipiqa_desktop.catalog import Decision
from clipiqa_desktop.culling.session import FilterState
from clipiqa_desktop.gui.controllers import live
from clipiqa_desktop.gui.controllers.live import LiveDecisionsController
from clipiqa_desktop.gui.photo_model import DecisionRole, PhotoIdRole

from ..conftest import app_command

pytestmark = pytest.mark.both_backends

POLL_MS = 200  # the window's 2 s, shortened


@pytest.fixture
def opened(qtbot, window, shoot, catalog, monkeypatch):
    """The window open on the indexed shoot (12 photos), polling every POLL_MS; the photos' paths
    in name order and their ids."""
    monkeypatch.setattr(live, "POLL_INTERVAL_MS", POLL_MS)
    (shoot / "IMG_9999.jpg").unlink()  # the broken file would make `rate` of the whole shoot noisy
    assert window.open_folder(shoot)
    qtbot.waitUntil(lambda: not window.indexing and window.index_thread is None, timeout=60_000)
    qtbot.waitUntil(lambda: window.model.rowCount() == 12, timeout=10_000)
    photos = sorted(shoot.glob("*.jpg"))
    ids = {p: int(i) for p, i in catalog.photo_ids_for_paths(photos).items() if i is not None}
    assert len(ids) == 12
    return photos, ids


def _rate(settings, paths, *option):
    """`rate` in another process, as a second terminal (or machine) would run it."""
    cmd = app_command("rate", *map(str, paths), *option, catalog=settings.catalog)
    cmd = cmd[: cmd.index("--model")]  # rate takes no model options
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def _shown(window, pid) -> Decision:
    s = window.session
    row = s.row_of(pid)
    return Decision(int(s.table.rating[row]), bool(s.table.picked[row]), s.table.labels[row])


def _select(window, pids, current):
    grid, model = window.grid, window.model
    grid.selectionModel().setCurrentIndex(
        model.index(model.row_of(current)), QItemSelectionModel.SelectionFlag.ClearAndSelect
    )
    for pid in pids:
        grid.selectionModel().select(model.index(model.row_of(pid)), QItemSelectionModel.SelectionFlag.Select)


def _selected(window):
    return sorted(i.data(PhotoIdRole) for i in window.grid.selectionModel().selectedIndexes())


def _quiet(qtbot, window) -> LiveDecisionsController:
    """The poller with its timer stopped and no poll running: the test polls by hand."""
    poller = window.controller(LiveDecisionsController)
    poller.timer.stop()
    qtbot.waitUntil(lambda: not poller.busy, timeout=10_000)
    return poller


def _poll(qtbot, poller):
    n = poller.polls
    poller.poll()
    qtbot.waitUntil(lambda: poller.polls > n, timeout=10_000)


def test_rate_in_another_process_shows_up_with_selection_and_sort_kept(qtbot, window, opened, settings):
    photos, ids = opened
    model = window.model
    pid = [ids[p] for p in photos]
    _select(window, pid[1:4], current=pid[2])
    selected, resets = _selected(window), model.resets

    _rate(settings, [photos[2], photos[6]], "--stars", "4")
    qtbot.waitUntil(
        lambda: _shown(window, pid[6]).rating == 4 and _shown(window, pid[2]).rating == 4, timeout=10_000
    )
    assert model.index(model.row_of(pid[6])).data(DecisionRole) == (4, False, None), "the grid repaints it"
    assert _selected(window) == selected and window.grid.currentIndex().data(PhotoIdRole) == pid[2]
    assert model.resets == resets, "rows updated in place, no reset"
    assert [model.photo_id(r) for r in range(12)] == pid, "still sorted by name"
    assert window.status_label.text() == "2 decisions changed elsewhere"

    # the filters are applied again: with "unflagged" shown, a reject made elsewhere leaves the grid
    window.session.set_filters(FilterState(flags=frozenset({"unflagged"})))
    _select(window, pid[1:4], current=pid[2])
    selected, resets = _selected(window), model.resets
    _rate(settings, [photos[8]], "--reject")
    qtbot.waitUntil(lambda: model.rowCount() == 11, timeout=10_000)
    assert model.row_of(pid[8]) is None
    assert _selected(window) == selected and window.grid.currentIndex().data(PhotoIdRole) == pid[2]
    assert model.resets == resets
    assert window.status_label.text() == "1 decision changed elsewhere"


def test_a_local_change_still_queued_is_not_overwritten(qtbot, window, opened, settings, catalog):
    photos, ids = opened
    p, q = ids[photos[3]], ids[photos[4]]
    poller = _quiet(qtbot, window)
    _rate(settings, [photos[3], photos[4]], "--stars", "2")  # committed elsewhere, not yet polled

    # the window's own write of 5 stars waits behind another writer's lock
    release, held = threading.Event(), threading.Event()

    def hold_the_write_lock():
        with catalog.transaction():
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold_the_write_lock)
    holder.start()
    try:
        assert held.wait(10)
        window.grid.setCurrentIndex(window.model.index(window.model.row_of(p)))
        window.grid.clearSelection()
        window.grid.setFocus()
        qtbot.keyClick(window.grid, Qt.Key.Key_5)
        assert window.session.saving, "the write is queued"
        _poll(qtbot, poller)
        assert _shown(window, q).rating == 2, "the other photo takes the change made elsewhere"
        assert _shown(window, p).rating == 5, "the queued local change is kept"
        _poll(qtbot, poller)  # read again (passed over), still queued: still kept
        assert _shown(window, p).rating == 5
    finally:
        release.set()
        holder.join(30)
    assert window.decisions.flush(30)
    assert catalog.decisions([p])[p].rating == 5, "the local write is the later change"
    changed = poller.changed
    _poll(qtbot, poller)
    _poll(qtbot, poller)
    assert _shown(window, p).rating == 5 and poller.changed == changed, (
        "our own write comes back as no change"
    )


def test_undo_after_another_process_decided_the_photo_again(qtbot, window, opened, settings, catalog):
    photos, ids = opened
    p, q = ids[photos[0]], ids[photos[1]]
    _select(window, [p, q], current=p)
    window.grid.setFocus()
    qtbot.keyClick(window.grid, Qt.Key.Key_X)
    assert window.decisions.flush(30)
    assert _shown(window, p).rejected and _shown(window, q).rejected

    _rate(settings, [photos[0]], "--stars", "4")  # after the reject, elsewhere
    qtbot.waitUntil(lambda: _shown(window, p).rating == 4, timeout=10_000)
    window.decisions.undo()
    assert window.decisions.flush(30)
    assert catalog.decisions([p, q]) == {p: Decision(rating=4), q: Decision()}, (
        "the undo leaves the photo decided again elsewhere and undoes the other"
    )
    assert _shown(window, p) == Decision(rating=4) and _shown(window, q) == Decision()
