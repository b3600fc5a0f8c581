"""Stacks in the window, offscreen, on small JPEGs whose EXIF (capture time with sub-seconds,
exposure bias) makes two bursts, an exposure bracket and a frame alone, indexed with the tiny model:
Ctrl+G stacks (one cell per group, its best frame, the count), S opens and closes a stack, the best
mark, the keeper tooltip, ranges relative to the burst, and Edit ▸ Keep best N (Cancel changes
nothing; Reject rejects exactly the plan; one Ctrl+Z restores it all, read back from the catalog)."""

from __future__ import annotations

import datetime
import threading

import numpy as np
import pytest
from PySide6.QtCore import Qt

from clipiqa_desktop.culling.groups import GroupParams
from clipiqa_desktop.gui.controllers.stacks import StacksController
from clipiqa_desktop.gui.photo_model import PhotoIdRole, StackRole, TableRowRole

from ..conftest import photo_array
from ..imaging.camera_exif import save_frame

START = datetime.datetime(2025, 9, 6, 15, 0, 0)
# name: (seconds after START, EXIF exposure bias, scene seed, sharp)
FRAMES = {
    "A1.JPG": (0.0, 0.0, 1, False),
    "A2.JPG": (0.3, 0.0, 1, True),
    "A3.JPG": (0.7, 0.0, 1, False),
    "S1.JPG": (30.0, 0.0, 3, True),  # alone
    "K1.JPG": (60.0, 0.0, 4, True),  # an exposure bracket 0, −2, +2 EV
    "K2.JPG": (60.3, -2.0, 4, True),
    "K3.JPG": (60.6, 2.0, 4, True),
    "B1.JPG": (2000.0, 0.0, 2, True),
    "B2.JPG": (2000.4, 0.0, 2, False),
}
GROUPS = {"A": ["A1.JPG", "A2.JPG", "A3.JPG"], "B": ["B1.JPG", "B2.JPG"], "K": ["K1.JPG", "K2.JPG", "K3.JPG"]}


def _save(path, seconds: float, bias: float, seed: int, sharp: bool, k: int) -> None:
    rgb = np.roll(photo_array(240, 160, seed), 2 * k, axis=1)  # a burst: the frame moves a little
    save_frame(path, rgb, START + datetime.timedelta(seconds=seconds), bias, sharp)


@pytest.fixture
def bursts(tmp_path):
    folder = tmp_path / "bursts"
    folder.mkdir()
    for k, (name, facts) in enumerate(FRAMES.items()):
        _save(folder / name, *facts, k)
    return folder


def _open(qtbot, window, folder):
    assert window.open_folder(folder)
    qtbot.waitUntil(lambda: not window.indexing and window.index_thread is None, timeout=60_000)
    qtbot.waitUntil(lambda: window.model.rowCount() == len(FRAMES), timeout=10_000)
    stacks = window.controller(StacksController)
    # by time alone: the tiny random network's embeddings say nothing about the pictures
    window.session.group_params = GroupParams(burst_similarity=-1.0, scene_similarity=-1.0)
    return stacks


def _shown(window) -> list[str]:
    t = window.session.table
    return [t.names[window.model.index(r).data(TableRowRole)] for r in range(window.model.rowCount())]


def _best(session, group: list[str]) -> str:
    t = session.table
    keeper = t.score_column("keeper")
    return max(group, key=lambda n: (keeper[t.names.index(n)], -group.index(n)))


def test_stack_expand_best_mark_and_relative_to_burst(qtbot, window, bursts):
    stacks = _open(qtbot, window, bursts)
    window.view.sort_by("captured", False)
    window.grid.setFocus()
    qtbot.keyClick(window.grid, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
    assert stacks.stack_action.isChecked()
    qtbot.waitUntil(lambda: window.session.stacked, timeout=10_000)  # grouped in the worker thread
    assert stacks.worker_thread is None
    session = window.session
    best_a, best_b = _best(session, GROUPS["A"]), _best(session, GROUPS["B"])
    assert _shown(window) == [best_a, "S1.JPG", "K1.JPG", best_b]  # one cell per group
    cell = window.model.index(0)
    info = cell.data(StackRole)
    assert info.count == 3 and info.collapsed and info.best and info.kind == "burst"
    bracket = window.model.index(2).data(StackRole)
    assert bracket.kind == "bracket" and bracket.count == 3 and not bracket.best
    assert window.model.index(1).data(StackRole) is None  # a frame alone: nothing to draw
    tip = cell.data(Qt.ItemDataRole.ToolTipRole)
    assert "burst of 3 frames" in tip and "Keeper 0." in tip and "1st of 3 in this burst by Keeper" in tip
    assert "exposure bracket of 3 frames: kept together" in window.model.index(2).data(
        Qt.ItemDataRole.ToolTipRole
    )
    assert "bursts" in stacks.panel.summary.text() and "1 exposure bracket," in stacks.panel.summary.text()
    assert not window.grid.grab().isNull()  # the stacked look paints

    window.grid.setCurrentIndex(cell)
    current = cell.data(PhotoIdRole)
    qtbot.keyClick(window.grid, Qt.Key.Key_S)  # open the stack: its frames in capture order, in place
    assert _shown(window) == [*GROUPS["A"], "S1.JPG", "K1.JPG", best_b]
    assert window.grid.currentIndex().data(PhotoIdRole) == current  # the same photo stays current
    infos = [window.model.index(r).data(StackRole) for r in range(3)]
    assert all(i.expanded and not i.collapsed for i in infos)
    assert infos[0].first and infos[2].last and [i.best for i in infos].count(True) == 1
    assert _shown(window)[[i.best for i in infos].index(True)] == best_a  # crowned when open too
    assert not window.grid.grab().isNull()
    window.grid.setCurrentIndex(window.model.index(2))
    qtbot.keyClick(window.grid, Qt.Key.Key_S)  # S on any open frame closes its stack
    assert len(_shown(window)) == 4

    # the sliders regroup (in the worker thread, once the drag rests): no pause allowed, no burst
    stacks.panel.sliders["burst_gap"].setValue(0.0)
    qtbot.waitUntil(lambda: window.session.group_params.burst_gap == 0.0, timeout=5_000)
    stacks.wait()
    assert len(_shown(window)) == len(FRAMES) - 2  # only the bracket stays stacked
    assert "grouped in" in stacks.panel.summary.text()

    # relative to the burst: the worst of each group (a frame alone is its group's 50th percentile)
    stacks.panel.sliders["burst_gap"].setValue(2.0)
    qtbot.waitUntil(lambda: window.session.group_params.burst_gap == 2.0, timeout=5_000)
    stacks.wait()
    window.session.regroup(GroupParams(burst_similarity=-1.0, scene_similarity=-1.0))
    qtbot.keyClick(window.grid, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
    assert not window.session.stacked and len(_shown(window)) == len(FRAMES)
    panel = window.filters
    panel.relative_to.setCurrentIndex(panel.relative_to.findData("burst"))
    panel.relative.setChecked(True)
    panel.ranges["quality"].set_range(0.0, 0.0)
    panel.emit_state()
    t = session.table
    quality = t.score_column("quality")
    worst = {min(g, key=lambda n: quality[t.names.index(n)]) for g in GROUPS.values()}
    assert set(_shown(window)) == worst
    why = session.why(t.names.index(sorted(worst)[0]))
    assert why and "percentile 0 of its burst" in why[0]


def test_keep_best_asks_first_rejects_the_plan_and_one_undo_restores(qtbot, window, bursts, catalog):
    stacks = _open(qtbot, window, bursts)
    session = window.session
    ids = {n: int(session.table.ids[session.table.names.index(n)]) for n in FRAMES}

    def ratings():
        by_id = catalog.decisions(list(ids.values()))
        return {n: by_id[i].rating for n, i in ids.items()}

    stacks.keep_action.trigger()  # not grouped yet: the worker thread groups, then the dialog opens
    assert stacks.dialog is None and stacks.grouping and session.grouping is None
    qtbot.waitUntil(lambda: stacks.dialog is not None, timeout=10_000)
    dialog = stacks.dialog
    assert dialog is not None and dialog.isVisible()
    assert "3 photos in 2 bursts will be rejected" in dialog.text.text()
    assert "3 frames of exposure brackets and focus stacks are left whole" in dialog.text.text()
    dialog.reject()  # Cancel
    assert stacks.dialog is None and session.flush(10)
    assert set(ratings().values()) == {0}

    stacks.keep_action.trigger()
    dialog = stacks.dialog
    dialog.n.setValue(2)
    assert "1 photo in 1 burst will be rejected" in dialog.text.text()
    dialog.n.setValue(1)
    plan = dialog.plan
    dialog.apply.click()
    assert session.flush(10)
    expected = {n for g in ("A", "B") for n in GROUPS[g] if n != _best(session, GROUPS[g])}
    assert (
        {n for n, r in ratings().items() if r == -1}
        == expected
        == {n for n, i in ids.items() if i in plan.reject}
    )
    assert all(ratings()[n] == 0 for n in GROUPS["K"])  # the bracket is never proposed
    window.activateWindow()  # the dialog, opened when the grouping arrived, had it
    qtbot.waitUntil(window.isActiveWindow, timeout=5_000)
    window.grid.setFocus()
    qtbot.keyClick(window.grid, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # one step
    assert session.flush(10)
    assert set(ratings().values()) == {0}


def test_compare_steps_through_a_collapsed_stack_frame_by_frame(qtbot, window, bursts):
    from clipiqa_desktop.gui.controllers.compare import CompareController

    _open(qtbot, window, bursts)
    window.view.sort_by("captured", False)
    window.grid.setFocus()
    qtbot.keyClick(window.grid, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.session.stacked, timeout=10_000)
    session, t = window.session, window.session.table
    order = [t.names[session.row_of(int(i))] for i in session.step_order()]
    # the view with each collapsed stack's frames in capture order in its place
    assert order == [*GROUPS["A"], "S1.JPG", *GROUPS["K"], *GROUPS["B"]]
    compare = window.controller(CompareController)
    first = window.model.index(0)  # the A stack, shown by its best frame
    window.grid.clearSelection()
    window.grid.setCurrentIndex(first)
    window.grid.selectionModel().select(first, window.grid.selectionModel().SelectionFlag.Select)
    qtbot.keyClick(window.grid, Qt.Key.Key_C)
    assert compare.showing

    def shown() -> list[str]:
        return [t.names[session.row_of(p.info.photo_id)] for p in compare.view.panes]

    best_a = _best(session, GROUPS["A"])
    after = GROUPS["A"][GROUPS["A"].index(best_a) + 1] if best_a != "A3.JPG" else "S1.JPG"
    assert shown() == [best_a, after]  # "it and the next": the next frame of its burst
    compare.toggle_pin()  # pin the best, step the other side through the rest of the shoot
    seen = [shown()[1]]
    for _ in range(len(order)):
        compare.step(1)
        seen.append(shown()[1])
    assert shown()[0] == best_a
    rest = [n for n in order[order.index(after) :] if n != best_a]
    assert seen[: len(rest)] == rest  # every frame, the burst's hidden ones too, none skipped
    expanded = set(session.expanded)
    qtbot.keyClick(compare.view, Qt.Key.Key_S)  # the grid is hidden: S leaves its stacks alone
    assert session.expanded == expanded and "C or Esc" in window.status_label.text()
    last = seen[-1]  # the burst B's last frame, which the B cell may not show
    qtbot.keyClick(compare.view, Qt.Key.Key_Escape)
    assert not compare.showing
    # back in the grid, the photo the active pane showed is current, or the cell of its stack
    current = window.grid.currentIndex().data(PhotoIdRole)
    assert current == int(t.ids[t.names.index(_best(session, GROUPS["B"]) if last in GROUPS["B"] else last)])


def _non_best(session, group: list[str]) -> str:
    return next(n for n in group if n != _best(session, group))


def test_closing_a_stack_over_the_current_frame_makes_the_stack_current(qtbot, window, bursts):
    stacks = _open(qtbot, window, bursts)
    window.view.sort_by("captured", False)
    window.grid.setFocus()
    qtbot.keyClick(window.grid, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.session.stacked, timeout=10_000)
    session, t = window.session, window.session.table
    best_a, best_b = _best(session, GROUPS["A"]), _best(session, GROUPS["B"])
    ids = {n: int(t.ids[t.names.index(n)]) for n in FRAMES}
    window.grid.setCurrentIndex(window.model.index(3))  # the B stack
    qtbot.keyClick(window.grid, Qt.Key.Key_S)
    assert _shown(window) == [best_a, "S1.JPG", "K1.JPG", *GROUPS["B"]]
    other = _non_best(session, GROUPS["B"])
    window.grid.setCurrentIndex(window.model.index(window.model.row_of(ids[other])))
    qtbot.keyClick(window.grid, Qt.Key.Key_S)  # closed over the current frame: the B cell is current
    assert _shown(window) == [best_a, "S1.JPG", "K1.JPG", best_b]
    assert window.grid.currentIndex().data(PhotoIdRole) == ids[best_b]
    assert window.grid.selectionModel().isSelected(window.grid.currentIndex())
    qtbot.keyClick(window.grid, Qt.Key.Key_X)  # so X rejects the B cell's frame, not the shoot's first
    assert session.flush(10)
    assert t.rating[t.names.index(best_b)] == -1 and t.rating[t.names.index(best_a)] == 0
    qtbot.keyClick(window.grid, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)

    qtbot.keyClick(window.grid, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)  # flat
    assert not session.stacked and len(_shown(window)) == len(FRAMES)
    other = _non_best(session, GROUPS["A"])
    window.grid.setCurrentIndex(window.model.index(window.model.row_of(ids[other])))
    qtbot.keyClick(window.grid, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)  # stacked again
    assert session.stacked and stacks.worker_thread is None  # grouped already: at once
    assert window.grid.currentIndex().data(PhotoIdRole) == ids[best_a]


def test_a_new_folder_relative_to_its_burst_is_grouped_in_the_worker_with_the_panels_sliders(
    qtbot, window, bursts, monkeypatch
):
    import clipiqa_desktop.culling.session as session_module
    import clipiqa_desktop.gui.controllers.stacks as stacks_module

    stacks = _open(qtbot, window, bursts)  # indexed once; opened again below, nothing to index
    on_gui_thread: list[bool] = []
    real = stacks_module.group_photos

    def recorded(*args, **kwargs):  # the real grouping, noting the thread it runs on
        on_gui_thread.append(threading.current_thread() is threading.main_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(stacks_module, "group_photos", recorded)
    monkeypatch.setattr(session_module, "group_photos", recorded)
    stacks.panel.sliders["burst_gap"].setValue(0.0)  # no pause allowed: no burst
    qtbot.waitUntil(lambda: stacks.panel.params().burst_gap == 0.0 and not stacks.panel._timer.isActive())
    stacks.wait()
    panel = window.filters
    panel.relative_to.setCurrentIndex(panel.relative_to.findData("burst"))
    panel.relative.setChecked(True)
    panel.emit_state()
    stacks.wait()
    on_gui_thread.clear()

    assert window.open_folder(bursts)
    session = window.session
    assert session.filters.relative_to == "burst" and session.grouping is None  # not on the GUI thread
    assert stacks.grouping  # the worker runs
    stacks.wait()
    qtbot.waitUntil(lambda: session.grouping is not None, timeout=10_000)
    assert on_gui_thread and not any(on_gui_thread)
    assert session.grouping.params == stacks.panel.params()  # the sliders', not the defaults
    assert session.grouping.params.burst_gap == 0.0
    assert not [b for b in session.grouping.bursts if b.kind == "burst"]
    qtbot.waitUntil(lambda: not window.indexing and window.index_thread is None, timeout=60_000)
