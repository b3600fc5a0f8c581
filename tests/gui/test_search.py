"""The window's search box: Ctrl+F, Enter sorts by the match, Esc clears; typing never culls."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QCoreApplication, QEvent, Qt, QThread

from clipiqa_desktop.culling.search import SEARCH_KEY
from clipiqa_desktop.gui.controllers.search import PLACEHOLDER, SearchController
from clipiqa_desktop.gui.photo_model import PhotoIdRole


def _open_and_index(qtbot, window, folder):
    assert window.open_folder(folder)
    qtbot.waitUntil(lambda: not window.indexing and window.index_thread is None, timeout=60_000)
    qtbot.waitUntil(lambda: window.model.rowCount() == 13, timeout=10_000)


def _searched(search: SearchController) -> bool:
    return search.worker_thread is not None and not search.worker_thread.isRunning()


def test_ctrl_f_enter_sorts_by_the_match_and_esc_clears(qtbot, window, shoot, catalog):
    _open_and_index(qtbot, window, shoot)
    search = window.controller(SearchController)
    assert search.field.placeholderText() == PLACEHOLDER == "Search photos (e.g. bride laughing)"
    session = window.session
    window.view.sort_by("captured", descending=True)  # the sort Esc must bring back
    # a cached text feature pointing at one photo (the tiny random model's embeddings are nearly
    # parallel: its difference from their mean); the best match is known from the stored embeddings
    ids, emb = catalog.embeddings(session.folder_ids(), session.analysis_id)
    feature = emb[5] - emb.mean(axis=0)
    catalog.store_text_features(catalog.analysis(session.analysis_id)[0], {"bride laughing": feature})
    cosines = (emb / np.linalg.norm(emb, axis=1, keepdims=True)) @ (feature / np.linalg.norm(feature))
    target = int(ids[np.argmax(cosines)])

    window.grid.setFocus()
    qtbot.keyClick(window.grid, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert search.field.hasFocus()
    qtbot.keyClicks(search.field, "bride laughing")
    qtbot.keyClick(search.field, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: session.sort_key == SEARCH_KEY, timeout=30_000)
    qtbot.waitUntil(lambda: _searched(search), timeout=10_000)
    assert window.sort_box.current_key() == SEARCH_KEY and window.desc_action.isChecked()
    assert window.model.index(0).data(PhotoIdRole) == target, "the photo the text equals ranks first"
    col = session.table.score_column(SEARCH_KEY)
    shown = [col[r] for r in session.view if np.isfinite(col[r])]
    assert len(shown) == 12 and shown == sorted(shown, reverse=True)
    np.testing.assert_allclose(shown, sorted(cosines, reverse=True), atol=1e-5)
    assert window.status_label.text().startswith("Sorted by match with “bride laughing”")
    assert window.grid.hasFocus(), "the results can be culled at once"

    # rows the indexer writes while a search is shown are searched too, the current photo kept
    stale = np.zeros(len(ids), np.float32)
    session.set_column(SEARCH_KEY, ids, stale)  # as if computed before those rows changed
    window.grid.setCurrentIndex(window.model.index(3))
    current = window.model.index(3).data(PhotoIdRole)
    session.apply_indexed([int(ids[0])])  # what the indexing controller does with a batch
    qtbot.waitUntil(lambda: np.nanmax(np.abs(session.table.score_column(SEARCH_KEY))) > 0, timeout=30_000)
    qtbot.waitUntil(lambda: _searched(search), timeout=10_000)
    col = session.table.score_column(SEARCH_KEY)
    np.testing.assert_allclose(sorted(col[np.isfinite(col)], reverse=True), shown, atol=1e-6)
    assert window.grid.currentIndex().data(PhotoIdRole) == current
    assert window.status_label.text().startswith("Sorted by match with “bride laughing”")

    search.field.setFocus()
    qtbot.keyClick(search.field, Qt.Key.Key_Escape)
    assert search.field.text() == "" and SEARCH_KEY not in session.table.attributes
    assert (session.sort_key, session.descending) == ("captured", True), "the sort before the search"
    assert window.sort_box.current_key() == "captured"


def test_keys_typed_in_the_box_do_not_cull_and_a_new_text_is_encoded(qtbot, window, shoot, catalog):
    _open_and_index(qtbot, window, shoot)
    search = window.controller(SearchController)
    session = window.session
    window.grid.setFocus()
    window.grid.setCurrentIndex(window.model.index(0))
    window.grid.selectAll()
    search.focus()
    qtbot.keyClicks(search.field, "px u 5 8 dog")  # P, X, U, stars and a label are culling keys
    assert search.field.text() == "px u 5 8 dog"
    assert window.decisions.flush(10)
    ids = [int(i) for i in session.table.ids]
    decisions = catalog.decisions(ids).values()
    assert all(d.rating == 0 and not d.picked and d.label is None for d in decisions)
    assert not session.can_undo

    # a text never searched: encoded in a child process by the folder's model, then cached
    model_id = catalog.analysis(session.analysis_id)[0]
    assert catalog.text_features(model_id, ["px u 5 8 dog"]) == {}
    qtbot.keyClick(search.field, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: SEARCH_KEY in session.table.attributes, timeout=120_000)
    qtbot.waitUntil(lambda: _searched(search), timeout=10_000)
    assert set(catalog.text_features(model_id, ["px u 5 8 dog"])) == {"px u 5 8 dog"}
    col = session.table.score_column(SEARCH_KEY)
    assert np.isfinite(col).sum() == 12 and session.sort_key == SEARCH_KEY


def test_an_empty_search_or_no_folder_says_why(qtbot, window):
    search = window.controller(SearchController)
    search.run_search("   ")
    assert "type what to look for" in window.status_label.text()
    search.run_search("dog")
    assert "open and index a folder first" in window.status_label.text()


def _threads(window) -> int:
    """The window's QThread children, once the threads deleted later are gone."""
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    return len(window.findChildren(QThread))


def test_a_column_set_keeps_the_embeddings_and_finished_threads_go(qtbot, window, shoot, monkeypatch):
    _open_and_index(qtbot, window, shoot)
    search = window.controller(SearchController)
    session = window.session
    cat = window.ctx.catalog
    ids, emb = cat.embeddings(session.folder_ids(), session.analysis_id)
    cat.store_text_features(cat.analysis(session.analysis_id)[0], {"dog": emb[2] - emb.mean(axis=0)})
    reads = []
    real = cat.embeddings
    monkeypatch.setattr(cat, "embeddings", lambda *a, **k: reads.append(1) or real(*a, **k))
    threads = _threads(window)

    def searched(n: int) -> None:
        qtbot.waitUntil(lambda: _searched(search) and search.worker_thread is not None, timeout=30_000)
        qtbot.waitUntil(lambda: len(reads) == n and SEARCH_KEY in session.table.attributes, timeout=30_000)

    search.run_search("dog")
    qtbot.waitUntil(lambda: SEARCH_KEY in session.table.attributes, timeout=30_000)
    qtbot.waitUntil(lambda: _searched(search), timeout=10_000)
    assert len(reads) == 1
    # the taste model's refit sets its column: every row "changed", the photos did not
    session.set_column("taste", ids, np.linspace(0, 1, len(ids), dtype=np.float32))
    for _ in range(3):
        search.run_search("dog")
        qtbot.waitUntil(lambda: _searched(search), timeout=30_000)
        qtbot.wait(50)
    assert len(reads) == 1, "the embeddings read for the first search were used again"
    assert _threads(window) <= threads, "every finished search's thread was deleted"
    # a real rows change (the indexer rescored a photo): the search shown is redone over fresh ones
    session.apply_indexed([int(ids[0])])
    qtbot.waitUntil(lambda: len(reads) == 2, timeout=30_000)
    qtbot.waitUntil(lambda: _searched(search), timeout=30_000)


def test_a_search_running_when_the_folder_is_opened_again_is_dropped(qtbot, window, shoot):
    _open_and_index(qtbot, window, shoot)
    search = window.controller(SearchController)
    for pending in (None, "another text"):
        search.run_search(f"a text never encoded {pending}")  # encoded in a child process: seconds
        thread = search.worker_thread
        assert thread is not None and thread.isRunning()
        if pending:
            search.run_search(pending)  # waits for the running one
        _open_and_index(qtbot, window, shoot)  # the same folder again: same folder and analysis ids
        session = window.session
        qtbot.waitUntil(lambda: not thread.isRunning(), timeout=30_000)  # noqa: B023 (waited here)
        qtbot.wait(300)
        assert SEARCH_KEY not in session.table.attributes and session.sort_key != SEARCH_KEY
        assert search.worker_thread is thread, "the text typed in the old session was not searched"
        assert search.field.text() == ""
