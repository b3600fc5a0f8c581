"""Compare, offscreen: one zoom and one position for every pane (photos of different pixel sizes
stay aligned in normalised coordinates), stepping keeps them, a pinned reference stays while the
other pane steps, the culling keys act on the active pane only, C/Esc round trip, > 4 selected."""

from __future__ import annotations

import shutil
import threading

import pytest
from PySide6.QtCore import QPoint, QPointF, QRunnable, Qt
from PySide6.QtGui import QCursor

from clipiqa_desktop.gui.compare import CompareView, PaneInfo, decodes_run, grid_shape, header_html
from clipiqa_desktop.gui.photo_model import PhotoIdRole

from ..conftest import photo


def _close(a: tuple[float, float], b: tuple[float, float], tol: float = 0.003) -> bool:
    return abs(a[0] - b[0]) <= tol and abs(a[1] - b[1]) <= tol


@pytest.fixture(scope="module")
def sizes(tmp_path_factory):
    """Two frames of one scene at different pixel sizes (a crop-sensor and a full-frame body)."""
    folder = tmp_path_factory.mktemp("sizes")
    photo(2000, 1500, seed=1).save(folder / "big.jpg", quality=90)
    photo(1400, 1050, seed=1).save(folder / "small.jpg", quality=90)
    return folder


@pytest.fixture
def compare(qtbot, sizes):
    view = CompareView()
    qtbot.addWidget(view)
    view.resize(1000, 600)
    view.show()
    qtbot.waitExposed(view)
    view.set_photos([PaneInfo(1, str(sizes / "big.jpg")), PaneInfo(2, str(sizes / "small.jpg"))])
    qtbot.waitUntil(lambda: view.loaded, timeout=20_000)
    yield view
    view.shutdown()


def test_z_at_the_pointer_zooms_every_pane_to_true_pixels_at_the_same_normalised_point(qtbot, compare):
    big, small = (p.view for p in compare.panes)
    assert compare.shape == (1, 2) and compare.fit
    assert big.zoom() < 0.5 and small.zoom() > big.zoom(), "each pane fits its own photo"
    # the pointer over the big frame at 40 % across, 45 % down
    at = big.mapFromScene(QPointF(0.4 * 2000, 0.45 * 1500))
    QCursor.setPos(big.viewport().mapToGlobal(at))
    compare.toggle_zoom()
    assert not compare.fit
    for view in (big, small):
        assert view.zoom() == pytest.approx(1.0), "100 % = one photo pixel on one device pixel"
        assert _close(view.center(), (0.4, 0.45)), view.center()
    assert big.transform().m11() == pytest.approx(1.0 / big.devicePixelRatioF())
    compare.toggle_zoom()
    assert compare.fit and big.zoom() == pytest.approx(big.fit_zoom())


def test_drag_and_wheel_in_one_pane_move_the_others(qtbot, compare):
    big, small = (p.view for p in compare.panes)
    compare.zoom_to(1.0, (0.5, 0.5))
    compare.pan_by(1, 120, -80)  # scrolling pane 1 is what a drag does
    moved = small.center()
    assert not _close(moved, (0.5, 0.5))
    assert _close(big.center(), moved), (big.center(), moved)
    compare.wheel_zoom(0, QPointF(big.viewport().rect().center()), 2)  # two notches in
    assert big.zoom() == pytest.approx(1.25**2) and small.zoom() == pytest.approx(1.25**2)
    assert _close(big.center(), small.center())
    compare.wheel_zoom(0, QPointF(100, 100), -30)  # out past the fit: every pane fits again
    assert compare.fit and small.zoom() == pytest.approx(small.fit_zoom())


def test_another_photo_in_a_pane_keeps_the_zoom_and_position(qtbot, compare, sizes):
    compare.zoom_to(2.0, (0.35, 0.6))
    compare.set_pane(1, PaneInfo(3, str(sizes / "big.jpg")))
    assert not compare.panes[1].view.has_photo, "the old frame is not shown under the new name"
    qtbot.waitUntil(lambda: compare.loaded, timeout=20_000)
    view = compare.panes[1].view
    assert view.zoom() == pytest.approx(2.0) and _close(view.center(), (0.35, 0.6))


def test_a_photo_decoded_ahead_shows_at_once_and_is_decoded_once(qtbot, compare, sizes):
    small, big = str(sizes / "small.jpg"), str(sizes / "big.jpg")
    compare.decode_ahead(small)
    qtbot.waitUntil(lambda: compare._ahead is not None, timeout=20_000)
    compare.set_pane(0, PaneInfo(5, small))
    assert compare.panes[0].view.image_size() == (1400, 1050), "shown without waiting for a decode"
    assert compare._ahead is None, "handed over, not kept twice"
    compare.decode_ahead(big)
    compare.set_pane(1, PaneInfo(6, big))  # asked for while it is still being decoded ahead
    assert compare._waiting and compare.pool.activeThreadCount() <= 1, "no second decode of it"
    qtbot.waitUntil(lambda: compare.loaded, timeout=20_000)
    assert compare.panes[1].view.image_size() == (2000, 1500) and not compare._pending


def test_holding_the_arrow_decodes_only_the_photos_shown_and_the_one_ahead(qtbot, compare, sizes):
    """Twenty steps while every pool thread is busy (as on two cores, with a 24 MP frame taking
    ~0.4 s): the queued decodes of frames stepped past end without decoding."""
    frames = []
    for k in range(21):
        frames.append(sizes / f"frame{k}.jpg")
        if not frames[-1].exists():
            shutil.copy(sizes / "small.jpg", frames[-1])
    gate = threading.Event()

    class Busy(QRunnable):
        def run(self) -> None:
            gate.wait(20)

    threads = compare.pool.maxThreadCount()
    for _ in range(threads):
        compare.pool.start(Busy())
    assert compare.pool.activeThreadCount() == threads
    before = decodes_run.value
    try:
        for k in range(20):  # what the controller does on each step: this frame, the next ahead
            compare.set_pane(1, PaneInfo(100 + k, str(frames[k])))
            compare.decode_ahead(str(frames[k + 1]))
    finally:
        gate.set()
    assert compare.wait(20_000)
    qtbot.waitUntil(lambda: compare.loaded, timeout=20_000)
    assert decodes_run.value - before <= len(compare.panes), "frame 19 (asked for ahead) and frame 20"
    assert compare.panes[1].info.photo_id == 119 and compare.panes[1].view.image_size() == (1400, 1050)
    qtbot.waitUntil(lambda: compare._ahead is not None, timeout=20_000)
    assert compare._ahead[0] == str(frames[20]), "the next frame is still decoded ahead"


def test_layout_and_header():
    assert grid_shape(2, 1200, 800) == (1, 2)
    assert grid_shape(4, 2400, 600) == (1, 4), "a wide window: one row"
    assert grid_shape(4, 1200, 900) == (2, 2)
    assert grid_shape(3, 1200, 1000) == (2, 2)
    html = header_html(
        PaneInfo(
            1, "/x/IMG_1.JPG", decision="✕ rejected", scores={"focus": 0.812, "quality": 0.5, "noise": 1}
        ),
        pinned=True,
    )
    assert "IMG_1.JPG" in html and "rejected" in html and "Focus 0.81" in html and "Quality 0.50" in html
    assert "reference" in html and "Noise" not in html


@pytest.fixture
def burst(tmp_path):
    folder = tmp_path / "burst"
    folder.mkdir()
    for i in range(6):
        photo(1200, 800, seed=i).save(folder / f"IMG_{i:04d}.jpg", quality=90)
    return folder


def _open(qtbot, window, folder, n):
    assert window.open_folder(folder)
    qtbot.waitUntil(lambda: not window.indexing and window.index_thread is None, timeout=60_000)
    qtbot.waitUntil(lambda: window.model.rowCount() == n, timeout=10_000)
    window.grid.setFocus()


def _select(window, rows, current):
    window.grid.clearSelection()
    window.grid.setCurrentIndex(window.model.index(current))
    for r in rows:
        window.grid.selectionModel().select(
            window.model.index(r), window.grid.selectionModel().SelectionFlag.Select
        )


def _ids(window):
    return [window.model.index(r).data(PhotoIdRole) for r in range(window.model.rowCount())]


def test_c_opens_the_selection_and_esc_returns_with_it_kept(qtbot, window, burst):
    _open(qtbot, window, burst, 6)
    ids = _ids(window)
    _select(window, range(6), current=0)
    qtbot.keyClick(window.grid, Qt.Key.Key_C)
    compare = window.compare
    assert window.stack.currentWidget() is compare
    assert compare.photo_ids() == ids[:4], "more than 4 selected: the first 4 in the grid's order"
    assert "first 4 of the 6" in window.status_label.text()
    qtbot.keyClick(compare, Qt.Key.Key_Tab)
    qtbot.keyClick(compare, Qt.Key.Key_Tab)
    assert compare.active == 2 and compare.panes[2].active
    qtbot.keyClick(compare, Qt.Key.Key_Backtab, Qt.KeyboardModifier.ShiftModifier)
    assert compare.active == 1
    qtbot.keyClick(compare, Qt.Key.Key_Escape)
    assert window.stack.currentWidget() is window.grid
    assert len(window.grid.selectionModel().selectedIndexes()) == 6, "the selection is kept"
    assert window.grid.currentIndex().data(PhotoIdRole) == ids[1], "current = the active pane's photo"
    # one selected, the last: it and the photo before it; C goes back too
    _select(window, [5], current=5)
    qtbot.keyClick(window.grid, Qt.Key.Key_C)
    assert compare.photo_ids() == [ids[4], ids[5]] and compare.active == 1
    qtbot.keyClick(compare, Qt.Key.Key_C)
    assert window.stack.currentWidget() is window.grid
    compare.wait()


def test_stepping_pinning_and_culling_the_active_pane(qtbot, window, burst, catalog):
    _open(qtbot, window, burst, 6)
    ids = _ids(window)
    _select(window, [0, 1], current=0)
    qtbot.keyClick(window.grid, Qt.Key.Key_C)
    compare = window.compare
    qtbot.waitUntil(lambda: compare.loaded, timeout=20_000)
    compare.zoom_to(2.0, (0.3, 0.4))
    # → steps the active pane (0) over the photo pane 1 shows; zoom and position kept
    qtbot.keyClick(compare, Qt.Key.Key_Right)
    assert compare.photo_ids() == [ids[2], ids[1]]
    qtbot.waitUntil(lambda: compare.loaded, timeout=20_000)
    left, right = (p.view for p in compare.panes)
    assert left.zoom() == pytest.approx(2.0) and _close(left.center(), (0.3, 0.4))
    assert _close(right.center(), left.center())
    # R pins pane 0: → now steps pane 1, which becomes the active one; the reference stays
    qtbot.keyClick(compare, Qt.Key.Key_R)
    assert compare.panes[0].pinned and "reference" in compare.panes[0].header.text()
    qtbot.keyClick(compare, Qt.Key.Key_Right)
    assert compare.photo_ids() == [ids[2], ids[3]] and compare.active == 1
    qtbot.keyClick(compare, Qt.Key.Key_Left)
    qtbot.keyClick(compare, Qt.Key.Key_Left)
    assert compare.photo_ids() == [ids[2], ids[0]], "← passes over the reference too"
    # X rejects the active pane's photo only, through the window's decision path (undoable)
    qtbot.keyClick(compare, Qt.Key.Key_X)
    assert window.decisions.flush(10)
    ratings = {pid: d.rating for pid, d in catalog.decisions(ids).items()}
    assert ratings[ids[0]] == -1 and sum(r == -1 for r in ratings.values()) == 1
    assert "rejected" in compare.panes[1].header.text() and "rejected" not in compare.panes[0].header.text()
    qtbot.keyClick(compare, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.decisions.flush(10)
    assert catalog.decisions([ids[0]])[ids[0]].rating == 0
    assert "rejected" not in compare.panes[1].header.text()
    # auto-advance steps the active pane after a key
    window.auto_advance.setChecked(True)
    qtbot.keyClick(compare, Qt.Key.Key_P)
    assert window.decisions.flush(10)
    assert catalog.decisions([ids[0]])[ids[0]].picked
    assert compare.photo_ids() == [ids[2], ids[1]]
    # a click makes a pane active
    qtbot.mouseClick(compare.panes[0].view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(20, 20))
    assert compare.active == 0
    qtbot.keyClick(compare, Qt.Key.Key_Escape)
    assert window.grid.currentIndex().data(PhotoIdRole) == ids[2]
    compare.wait()
