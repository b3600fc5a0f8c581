"""The search box: "bride laughing" ranks the open photos by their stored CLIP embeddings
(culling/search.py) in a worker thread, shows the similarity as the "Search match" column and
sorts by it. Ctrl+F focuses the box, Enter searches, Esc clears it (the column goes and the sort
chosen before the search comes back).

Typing in the box never culls: the box takes the ShortcutOverride of every key without Ctrl, Alt
or Meta, so the window's one-key shortcuts (P, X, U, 0-9, Enter, Space) reach it as keys. The embeddings read
for one search are kept for the next while the photos and their analysis stay the same (reading
them is most of a search's cost: benchmarks/search.py); rows the indexer adds while a search is
shown are searched too once its batches pause (REFRESH_MS), without moving the current photo.
A column set by something else (the taste model's refit, a search's own) reports "possibly every
row changed" but keeps the photos: the cache stays while the table's photo ids are the ones it was
read for. A search belongs to the session it started in: opening a folder (the same one again too)
drops its result and the text typed meanwhile.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QEvent, Qt, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import QLineEdit, QSizePolicy, QWidget

from ...culling.search import SEARCH_KEY, SearchError, clean_text
from ...culling.session import CullingSession
from ..workers import SearchWorker, start_in_thread
from .base import Controller

if TYPE_CHECKING:
    from ..main_window import MainWindow

PLACEHOLDER = "Search photos (e.g. bride laughing)"
REFRESH_MS = 1500  # after the last indexed batch, the search shown is redone over the new rows


COMMAND_MODIFIERS = (
    Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier | Qt.KeyboardModifier.MetaModifier
)


class SearchField(QLineEdit):
    """A line edit that keeps every key without Ctrl/Alt/Meta for itself: QLineEdit already takes
    the keys that type text, but Enter (the loupe's), Esc, Backspace or an arrow would otherwise
    reach the window's shortcuts. Esc emits `escaped`."""

    escaped = Signal()

    def event(self, event: QEvent) -> bool:
        if (
            event.type() == QEvent.Type.ShortcutOverride
            and isinstance(event, QKeyEvent)
            and not event.modifiers() & COMMAND_MODIFIERS
        ):
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.matches(QKeySequence.StandardKey.Cancel):
            self.escaped.emit()
            return
        super().keyPressEvent(event)


class SearchController(Controller):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        w = window
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        w.toolbar.addWidget(spacer)  # the box sits at the toolbar's right end
        self.field = SearchField()
        self.field.setObjectName("search")
        self.field.setPlaceholderText(PLACEHOLDER)
        self.field.setClearButtonEnabled(True)
        self.field.setMinimumWidth(260)
        self.field.setToolTip(
            "Find photos by what they show, from the CLIP embeddings stored when the folder was "
            "indexed (Ctrl+F). Enter sorts by the match; Esc clears the search."
        )
        self.field.returnPressed.connect(self.run_search)
        self.field.escaped.connect(self.clear)
        self.field.textChanged.connect(self._text_changed)
        w.toolbar.addWidget(self.field)
        self.focus_action = w.add_action("Search…", self.focus, QKeySequence.StandardKey.Find)
        w.edit_menu.addAction(self.focus_action)

        self.worker_thread: QThread | None = None
        self._worker: SearchWorker | None = None
        self._embeddings: Any = None  # culling.search.ShootEmbeddings of the last search
        self._rows_key: tuple[Any, ...] | None = None  # the photos the running search started on
        self._embeddings_key: tuple[Any, ...] | None = None  # ... and those _embeddings were read for
        self._pending: str | None = None  # a text entered while another search ran
        # the session and analysis the running search belongs to
        self._target: tuple[CullingSession | None, int | None] = (None, None)
        self._generation = 0  # bumped by a clear: a search that was running is then dropped
        self._running = 0  # the generation the running search started in
        self._previous_sort: tuple[str, bool] | None = None  # the sort before the search took over
        self._applying = False
        self._refreshing = False  # the running search redoes the shown one for newly indexed rows
        # rows indexed while a search is shown: search again once the batches pause (a text shown
        # is cached, so no model; the embeddings are read again)
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(REFRESH_MS)
        self._refresh_timer.timeout.connect(self._refresh)
        self._session: CullingSession | None = None
        self.text = ""  # the text of the search shown, "" for none
        self.ctx.session_changed.connect(self._session_changed)

    # --- the box ----------------------------------------------------------------------------------
    def focus(self) -> None:
        self.field.setFocus()
        self.field.selectAll()

    def _text_changed(self, text: str) -> None:
        if not text.strip() and self.text:  # the box's clear button, or everything deleted
            self.clear(keep_focus=True)

    def run_search(self, text: str | None = None, refresh: bool = False) -> None:
        """Search for `text` (default: the box's), in a worker thread. `refresh`: the shown
        search again over rows indexed since, leaving the current photo, focus and status alone."""
        session = self.session
        raw = self.field.text() if text is None else text
        if text is not None and not refresh:
            self.field.setText(text)
        try:
            cleaned = clean_text(raw)
        except SearchError as exc:
            self.window.say(f"Search: {exc}.")
            return
        if session is None or session.analysis_id is None or session.folder_id is None:
            self.window.say("Search: open and index a folder first.")
            return
        if self.worker_thread is not None and self.worker_thread.isRunning():
            if refresh:
                self._refresh_timer.start()  # after the running search
            else:
                self._pending = cleaned  # the latest text wins once the running search ends
            return
        self._pending = None
        self._refreshing = refresh
        worker = SearchWorker(
            self.ctx.catalog,
            self.ctx.holder,
            self.ctx.settings,
            session.folder_ids(),
            session.analysis_id,
            cleaned,
            self._embeddings,
        )
        worker.finished.connect(self._found)  # slots of this QObject: queued to the GUI thread
        worker.failed.connect(self._failed)
        self._worker = worker
        self._running = self._generation
        self._target = (session, session.analysis_id)
        self._rows_key = _rows_key(session)
        if not refresh:
            self.window.say(f"Searching for “{cleaned}” …")
        self.worker_thread = start_in_thread(worker, self.window)

    def _next(self) -> bool:
        """After a search ended: start the text entered meanwhile, if any (True)."""
        if self._pending is None:
            return False
        text, self._pending = self._pending, None
        if self.worker_thread is not None:
            self.worker_thread.quit()  # its worker has returned: the thread ends at once
            self.worker_thread.wait()
        self.run_search(text)
        return True

    @Slot(str)
    def _failed(self, message: str) -> None:
        if self._next() or self._running != self._generation or self._refreshing:
            return  # a newer text is searched, the search was cleared, or only refreshed
        self.window.say(f"Could not search: {message}")

    @Slot(object, object)
    def _found(self, result: Any, used: Any) -> None:
        session = self.session
        if session is None or session is not self._target[0] or session.analysis_id != self._target[1]:
            self._next()  # a text typed in the session opened meanwhile, if any
            return  # another session (a folder opened, the same one again too) or analysis
        if self._rows_key is not None and self._rows_key == _rows_key(session):
            self._embeddings, self._embeddings_key = used, self._rows_key
        else:  # the rows changed while searching: what was read may miss some
            self._embeddings, self._embeddings_key = None, None
        if self._next() or self._running != self._generation:
            return  # a newer text is searched, or the search was cleared meanwhile
        if self._refreshing:
            if self.text == result.text:  # the rows keep their places unless the sort moves them
                self._set_column(session, result)
            return
        if session.sort_key != SEARCH_KEY:
            self._previous_sort = (session.sort_key, session.descending)
        self._set_column(session, result)
        self.text = result.text
        self.window.view.sort_by(SEARCH_KEY, descending=True)
        grid = self.window.grid
        if self.window.model.rowCount():
            grid.setCurrentIndex(self.window.model.index(0))  # the best match
            grid.scrollToTop()
        grid.setFocus()  # the keys cull the results at once
        self.window.say(f"Sorted by match with “{result.text}” — Esc in the search box clears it")

    def _set_column(self, session: CullingSession, result: Any) -> None:
        self._applying = True
        try:
            session.set_column(SEARCH_KEY, result.ids, result.similarity)
        finally:
            self._applying = False

    def clear(self, keep_focus: bool = False) -> None:
        """Esc: empty the box, drop the search column and go back to the sort chosen before."""
        self._generation += 1
        self._pending = None
        self._refresh_timer.stop()
        self.field.blockSignals(True)
        self.field.clear()
        self.field.blockSignals(False)
        session = self.session
        had = self.text
        self.text = ""
        if session is not None and SEARCH_KEY in session.table.attributes:
            previous = self._previous_sort
            session.drop_column(SEARCH_KEY)
            if previous is not None and previous[0] in session.sort_keys:
                self.window.view.sort_by(*previous)
            else:
                self.window.view.sort_by(session.sort_key, session.descending)
        self._previous_sort = None
        if had:
            self.window.say("Search cleared.")
        if not keep_focus:
            self.window.grid.setFocus()

    # --- following the session --------------------------------------------------------------------
    def _session_changed(self, session: CullingSession | None) -> None:
        old, self._session = self._session, session
        if old is not None and old is not session:
            old.events.rows_changed.disconnect(self._rows_changed)
        if session is not None and session is not old:
            session.events.rows_changed.connect(self._rows_changed)
        # a search still running belongs to the old session: its result and a text typed
        # meanwhile are dropped (the generation), and an encoder child it waits for ends
        self._generation += 1
        self._pending = None
        if self.worker_thread is not None and self.worker_thread.isRunning() and self._worker is not None:
            self._worker.cancel()
        self._embeddings, self._embeddings_key = None, None
        self._previous_sort = None
        self._refresh_timer.stop()
        self.text = ""
        self.field.blockSignals(True)
        self.field.clear()
        self.field.blockSignals(False)

    def _rows_changed(self, ids: object) -> None:
        if self._applying:
            return
        session = self.session
        if ids is not None:  # indexed or rescored rows: read the embeddings again
            self._embeddings, self._embeddings_key = None, None
            self._rows_key = None  # a search running now read them before this change
        elif self._embeddings_key is not None and (
            session is None or self._embeddings_key != _rows_key(session)
        ):
            # other photos (reloaded, moved): read again; a column set, as the taste model's
            # refit does, keeps the photos and the cache
            self._embeddings, self._embeddings_key = None, None
        if ids is not None and self.text:  # the indexer's rows: the search shown covers them soon
            self._refresh_timer.start()

    def _refresh(self) -> None:
        session = self.session
        if self.text and session is not None and SEARCH_KEY in session.table.attributes:
            self.run_search(self.text, refresh=True)

    def shutdown(self) -> None:
        self._pending = None
        self._refresh_timer.stop()
        if self.worker_thread is not None and self.worker_thread.isRunning():
            if self._worker is not None:
                self._worker.cancel()  # ends an encoder child at once
            self.worker_thread.quit()
            self.worker_thread.wait()
        self.worker_thread = None


def _rows_key(session: CullingSession) -> tuple[Any, ...]:
    """What the embeddings read for a search depend on: the folder rows, the analysis and the
    table's photo ids (compared by count and a hash of their bytes: ~0.1 ms for 50 000 photos)."""
    ids = np.ascontiguousarray(session.table.ids, dtype=np.int64)
    return (tuple(session.folder_ids()), session.analysis_id, len(ids), hash(ids.tobytes()))
