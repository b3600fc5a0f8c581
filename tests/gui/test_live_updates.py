"""The grid follows a running index row by row: inserted, rescored, reordered and removed rows keep
the selection and the scroll position (no model reset); custom prompt columns survive a merge; the
thumbnail cache is bounded by bytes and never caches a decode that is older than its photo."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from PySide6.QtWidgets import QAbstractItemView, QListView

from clipiqa_desktop.catalog import Catalog, PhotoRecord
from clipiqa_desktop.culling.session import CullingSession, FilterState
from clipiqa_desktop.gui.photo_model import PhotoGridModel, PhotoIdRole
from clipiqa_desktop.gui.thumbnails import ThumbnailCache
from clipiqa_desktop.scoring.attributes import custom_pair


def _jpeg(w: int, h: int, shade: int) -> tuple[int, int, bytes]:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (shade, 255 - shade, 128)).save(buf, "JPEG")
    return w, h, buf.getvalue()


def _rec(name: str, sharp: float, thumb: tuple[int, int, bytes] | None = None) -> PhotoRecord:
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    emb = rng.normal(size=8).astype(np.float32)
    return PhotoRecord(
        name,
        1,
        1,
        fingerprint=name,
        scores={"sharpness": sharp},
        embedding=emb / np.linalg.norm(emb),
        thumbnail=thumb or _jpeg(64, 48, 10),
    )


@pytest.fixture
def shoot(tmp_path):
    cat = Catalog(tmp_path / "c.sqlite")
    folder = tmp_path / "shoot"
    folder.mkdir()
    fid = cat.folder_id(folder)
    aid = cat.analysis_id("m", "512", 8, 100.0)
    cat.write_batch(fid, aid, [_rec(f"IMG_{i:03d}.jpg", i / 200) for i in range(0, 200, 2)])
    cat.set_last_analysis(fid, aid)
    yield cat, folder, fid, aid
    cat.close()


def _grid(qtbot, model):
    view = QListView()
    view.setViewMode(QListView.ViewMode.ListMode)
    view.setUniformItemSizes(True)
    view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    view.setModel(model)
    view.resize(300, 200)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    return view


def _select(view, model, rows):
    sel = view.selectionModel()
    view.setCurrentIndex(model.index(rows[0]))
    for r in rows:
        sel.select(model.index(r), sel.SelectionFlag.Select)


def _selected_ids(view):
    return sorted(i.data(PhotoIdRole) for i in view.selectionModel().selectedIndexes())


def test_new_and_rescored_rows_are_applied_without_a_reset(qtbot, qtmodeltester, shoot):
    cat, folder, fid, aid = shoot
    session = CullingSession(cat, folder)
    model = PhotoGridModel(session, None)
    qtmodeltester.check(model)  # the tester stays attached and checks every change below
    view = _grid(qtbot, model)
    _select(view, model, [40, 41, 60])
    view.scrollTo(model.index(60), QAbstractItemView.ScrollHint.PositionAtTop)
    scroll = view.verticalScrollBar().value()
    assert scroll > 0
    current, selected, resets = view.currentIndex().data(PhotoIdRole), _selected_ids(view), model.resets
    names_before = [model.index(r).data() for r in range(model.rowCount())]

    # an indexer commits a batch: odd-numbered photos (sorted in between) and a rescored one
    written = cat.write_batch(
        fid, aid, [_rec(f"IMG_{i:03d}.jpg", i / 200) for i in (1, 3, 5, 7, 199)] + [_rec("IMG_010.jpg", 0.9)]
    )
    session.merge(list(written.values()))

    assert model.resets == resets, "a merge is applied row by row, not by a model reset"
    assert model.rowCount() == 105
    names = [model.index(r).data() for r in range(model.rowCount())]
    assert names == sorted(names) and set(names_before) < set(names)
    assert view.currentIndex().data(PhotoIdRole) == current
    assert _selected_ids(view) == selected
    assert view.verticalScrollBar().value() >= scroll, "rows inserted above push the view, never reset it"
    rescored = model.index(model.row_of(written["IMG_010.jpg"]))
    assert session.table.score_column("sharpness")[rescored.data(0x0100 + 5)] == pytest.approx(0.9)


def test_rows_that_change_order_or_leave_the_view_keep_the_selection(qtbot, qtmodeltester, shoot):
    cat, folder, fid, aid = shoot
    session = CullingSession(cat, folder)
    session.set_sort("sharpness", False)
    model = PhotoGridModel(session, None)
    qtmodeltester.check(model)
    view = _grid(qtbot, model)
    _select(view, model, [5, 6])
    selected, resets = _selected_ids(view), model.resets
    first_id = model.index(0).data(PhotoIdRole)

    # the first photo is rescored to the top of the scale: it moves to the end (a layout change)
    written = cat.write_batch(fid, aid, [_rec(model.index(0).data(), 0.999)])
    session.merge(list(written.values()))
    assert model.resets == resets
    assert model.index(model.rowCount() - 1).data(PhotoIdRole) == first_id
    assert _selected_ids(view) == selected

    # a photo whose file went missing leaves the view (missing photos are hidden by default)
    gone = model.index(10).data(PhotoIdRole)
    cat.mark_missing([gone])
    session.reload()
    assert model.resets == resets
    assert model.rowCount() == 99 and model.row_of(gone) is None
    assert _selected_ids(view) == selected

    # a new filter is one reset; the view keeps what it can
    session.set_filters(FilterState(ranges={"sharpness": (0.0, 0.5)}))
    assert model.resets == resets + 1
    assert model.rowCount() == len(session.view)


def test_custom_prompt_column_survives_a_merge(shoot):
    cat, folder, fid, aid = shoot
    session = CullingSession(cat, folder)
    pair = custom_pair("Eyes closed.", "Eyes open.")
    ids = session.table.ids.copy()
    values = np.linspace(0, 1, len(ids)).astype(np.float32)
    session.add_prompt_scores(pair, ids, values)
    written = cat.write_batch(fid, aid, [_rec("IMG_000.jpg", 0.5), _rec("IMG_NEW.jpg", 0.5)])
    session.merge(list(written.values()))
    assert pair.key in session.table.attributes
    col = session.table.score_column(pair.key)
    row = session.row_of(int(ids[7]))
    assert col[row] == pytest.approx(values[7]), "an untouched photo keeps its prompt score"
    assert np.isnan(col[session.row_of(written["IMG_NEW.jpg"])]), "a new photo has none until rescored"
    session.set_sort(pair.key, True)
    assert int(session.table.ids[session.view[0]]) == int(ids[-1])


def test_thumbnail_cache_is_bounded_by_bytes(qtbot, shoot):
    cat, folder, fid, aid = shoot
    session = CullingSession(cat, folder)
    one = 64 * 48 * 4  # a 64×48 thumbnail as a 32-bit pixmap
    thumbs = ThumbnailCache(cat, budget_bytes=5 * one + one // 2)
    ids = [int(i) for i in session.table.ids[:12]]
    for pid in ids:
        thumbs.pixmap(pid)
    thumbs.wait()
    qtbot.waitUntil(lambda: not thumbs._pending, timeout=5000)
    assert 0 < thumbs.cached_bytes <= thumbs.budget_bytes
    assert len(thumbs) == 5, "five 12 KB pixmaps fit in 5.5 × 12 KB"
    assert thumbs.cached_bytes == sum(
        thumbs.cached(p).width() * thumbs.cached(p).height() * 4 for p in ids if thumbs.cached(p)
    )
    # larger thumbnails cost more: one 256×192 pixmap needs the room of sixteen small ones
    big = cat.write_batch(fid, aid, [_rec("IMG_BIG.jpg", 0.5, _jpeg(256, 192, 200))])["IMG_BIG.jpg"]
    thumbs.set_budget(20 * one)
    thumbs.pixmap(big)
    thumbs.wait()
    qtbot.waitUntil(lambda: thumbs.cached(big) is not None, timeout=5000)
    assert thumbs.cached_bytes <= 20 * one and len(thumbs) <= 5


def test_a_thumbnail_decoded_before_its_photo_was_reindexed_is_not_cached(qtbot, shoot):
    cat, folder, fid, aid = shoot
    session = CullingSession(cat, folder)
    pid = int(session.table.ids[0])
    name = session.table.names[0]
    thumbs = ThumbnailCache(cat)
    assert thumbs.pixmap(pid) is None  # starts decoding the old 64×48 thumbnail
    thumbs.wait()  # the old decode has finished; its result is queued for the GUI thread
    cat.write_batch(fid, aid, [_rec(name, 0.5, _jpeg(100, 80, 250))])  # re-indexed meanwhile
    thumbs.invalidate([pid])
    qtbot.wait(50)  # the stale result arrives now
    assert thumbs.cached(pid) is None, "the old decode belonged to the photo before re-indexing"
    thumbs.pixmap(pid)
    thumbs.wait()
    qtbot.waitUntil(lambda: thumbs.cached(pid) is not None, timeout=5000)
    assert thumbs.cached(pid).width() == 100
