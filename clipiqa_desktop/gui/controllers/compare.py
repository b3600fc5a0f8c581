"""Compare: C opens the selection side by side (2–4 photos; one selected: it and the next photo of
the view), C or Escape returns to the grid with the selection kept and the active pane's photo
current.

Keys while comparing: Tab / Shift+Tab (or a click) choose the active pane, outlined; ←/→ step it to
the previous/next photo of the grid's order, passing over photos the other panes show, with the zoom
and the position kept; R pins the active pane as the reference. A pinned pane never steps: with the
active pane pinned, ←/→ step the next unpinned pane and make it the active one, so the outline
always marks the photo that just changed and that the culling keys act on. Z fit ↔ 100 % at the
pointer, the wheel zooms, a drag pans, all panes together (gui/compare.py).

The culling keys (P X U 0–5 6–9, Ctrl+Z) are the DecisionController's: while comparing, this
controller is its `focus_view`, so they act on the active pane's photo (one undo step) and
auto-advance steps the active pane.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QItemSelectionModel

from ...culling.session import CullingSession
from ..compare import MAX_PANES, PaneInfo
from ..delegate import decision_html
from .base import Controller

if TYPE_CHECKING:
    from ..main_window import MainWindow


class CompareController(Controller):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        w = window
        self.view = w.compare
        self.compare_action = w.add_action("Compare selected (2–4)", self.toggle_compare, "C")
        w.view_menu.addAction(self.compare_action)
        v = self.view
        w.add_action("Compare: zoom fit ↔ 100 %", v.toggle_zoom, "Z", widget=v)
        w.add_action("Compare: next photo", lambda: self.step(1), "Right", widget=v)
        w.add_action("Compare: previous photo", lambda: self.step(-1), "Left", widget=v)
        w.add_action("Compare: next pane", lambda: self.activate(v.active + 1), "Tab", widget=v)
        w.add_action("Compare: previous pane", lambda: self.activate(v.active - 1), "Shift+Tab", widget=v)
        w.add_action("Compare: pin as the reference", self.toggle_pin, "R", widget=v)
        v.activated.connect(self._clicked)
        w.stack.currentChanged.connect(self._stack_changed)
        self.ctx.session_changed.connect(self._session_changed)
        self._session: CullingSession | None = None
        # per pane: its photo's place in the stepping order (used when the photo leaves the view)
        self._rows: list[int] = []
        self._order_cache: np.ndarray | None = None  # photo ids in stepping order (step_order)

    @property
    def showing(self) -> bool:
        return self.window.stack.currentWidget() is self.view

    # --- opening and closing ---------------------------------------------------------------------------
    def toggle_compare(self) -> None:
        if self.showing:
            self.back_to_grid()
        else:
            self.open_compare()

    def open_compare(self) -> bool:
        """Compare the selection (its first MAX_PANES in the grid's order), or the current photo and
        the next one. Returns False, with the reason in the status bar, when there is nothing to."""
        grid, model = self.window.grid, self.window.model
        if self.session is None or model.rowCount() == 0:
            self.window.say("Compare: open a folder first.")
            return False
        self._order_cache = None
        order = self._order()
        rows = sorted({i.row() for i in grid.selectionModel().selectedIndexes()})
        current = grid.currentIndex().row() if grid.currentIndex().isValid() else -1
        ids = [model.photo_id(r) for r in rows]
        if len(ids) <= 1:  # it and the next photo (the next frame of a collapsed stack)
            first = ids[0] if ids else (model.photo_id(current) if current >= 0 else None)
            here = self._position(order, first)
            if here is None or len(order) < 2:
                self.window.say("Compare: select two to four photos (C), or one and the next is added.")
                return False
            ids = [
                int(x)
                for x in (order[here : here + 2] if here + 1 < len(order) else order[here - 1 : here + 1])
            ]
        note = ""
        if len(ids) > MAX_PANES:
            note = f"Comparing the first {MAX_PANES} of the {len(ids)} selected photos."
            ids = ids[:MAX_PANES]
        infos = [self._info(pid) for pid in ids]
        current_id = model.photo_id(current) if current >= 0 else None
        active = ids.index(current_id) if current_id in ids else 0
        self._rows = [p if (p := self._position(order, pid)) is not None else 0 for pid in ids]
        self.view.set_photos(infos, active)
        self._decode_ahead(order, self._rows[active], 1, {i.photo_id for i in infos})
        self.window.decisions.focus_view = self
        self.window.stack.setCurrentWidget(self.view)
        self.view.setFocus()
        self.window.say(note or "Compare: ←/→ step the active pane, Tab another, R pin, Z 100 %, C/Esc grid")
        return True

    def back_to_grid(self) -> None:
        self.window.stack.setCurrentWidget(self.window.grid)  # _stack_changed does the rest
        self.window.grid.setFocus()

    def _stack_changed(self, _index: int) -> None:
        """Leaving compare by any way (C, Escape, Space for the loupe): the selection as it was, the
        active pane's photo current (a frame hidden in a collapsed stack: the stack's cell), the
        keys back on the grid."""
        if self.showing or self.window.decisions.focus_view is not self:
            return
        self.window.decisions.focus_view = None
        pid = self.active_photo()
        self.view.release()
        row = self.window.model.row_of(pid) if pid is not None else None
        if row is None and pid is not None and self.session is not None:
            row = self.session.shown_row_of(pid)
        if row is not None:
            grid = self.window.grid
            grid.selectionModel().setCurrentIndex(
                self.window.model.index(row), QItemSelectionModel.SelectionFlag.NoUpdate
            )
            grid.scrollTo(self.window.model.index(row))

    # --- what the keys act on (DecisionController.focus_view) ------------------------------------------
    def active_photo(self) -> int | None:
        panes = self.view.panes
        if not panes or panes[self.view.active].info is None:
            return None
        info = panes[self.view.active].info
        return info.photo_id if info is not None else None

    def target_rows(self) -> list[int]:
        """The active pane's photo as a table row (the culling keys act on it alone)."""
        pid = self.active_photo()
        session = self.session
        row = session.row_of(pid) if session is not None and pid is not None else None
        return [row] if row is not None else []

    def activate(self, i: int) -> None:
        if self.view.panes:
            self.view.set_active(i)

    def _clicked(self, i: int) -> None:
        self.activate(i)

    def toggle_pin(self) -> None:
        panes = self.view.panes
        if not panes:
            return
        pane = panes[self.view.active]
        self.view.set_pinned(pane.index, not pane.pinned)
        if pane.pinned:
            name = pane.info.name if pane.info else "This pane"
            self.window.say(f"{name} is the reference: ←/→ step the other panes")

    def step(self, delta: int) -> None:
        """←/→ (and auto-advance): the active pane to the previous/next photo of the grid's order that
        no other pane shows; a pinned active pane hands the step to the next unpinned pane. A
        collapsed stack is stepped through frame by frame (`CullingSession.step_order`)."""
        panes = self.view.panes
        if not panes or self.session is None:
            return
        n = len(panes)
        target = next((p for k in range(n) if not (p := panes[(self.view.active + k) % n]).pinned), None)
        if target is None:
            self.window.say("Every pane is pinned: R unpins the active one.")
            return
        if target.index != self.view.active:
            self.view.set_active(target.index)
        others = {p.info.photo_id for p in panes if p is not target and p.info is not None}
        order = self._order()
        pid = target.info.photo_id if target.info is not None else None
        here = self._position(order, pid)
        if here is None:  # its photo left the view (a filter): step from where it was
            here = self._rows[target.index] - (1 if delta > 0 else 0)
        pos = self._next(order, here, delta, others)
        if pos is None:
            self.window.say(f"Compare: no photo {'after' if delta > 0 else 'before'} this one in the view.")
            return
        self._rows[target.index] = pos
        self.view.set_pane(target.index, self._info(int(order[pos])))
        self._decode_ahead(order, pos, delta, others)

    def _order(self) -> np.ndarray:
        """Photo ids in stepping order, kept until the view or its rows change."""
        if self._order_cache is None and self.session is not None:
            self._order_cache = self.session.step_order()
        return self._order_cache if self._order_cache is not None else np.zeros(0, np.int64)

    @staticmethod
    def _position(order: np.ndarray, pid: int | None) -> int | None:
        if pid is None:
            return None
        hits = np.flatnonzero(order == pid)
        return int(hits[0]) if len(hits) else None

    @staticmethod
    def _next(order: np.ndarray, here: int, delta: int, others: set[int]) -> int | None:
        """The position `delta` from `here` (±1) in `order`, passing over photos other panes show."""
        pos = here + delta
        while 0 <= pos < len(order) and int(order[pos]) in others:
            pos += delta
        return pos if 0 <= pos < len(order) else None

    def _decode_ahead(self, order: np.ndarray, here: int, delta: int, others: set[int]) -> None:
        """The photo the next step in this direction shows, decoded while this one is looked at."""
        pos = self._next(order, here, delta, others)
        if pos is not None:
            info = self._info(int(order[pos]))
            if info.status != "missing":
                self.view.decode_ahead(info.path)

    # --- following the session ---------------------------------------------------------------------------
    def _info(self, photo_id: int) -> PaneInfo:
        session = self.session
        assert session is not None
        row = session.row_of(photo_id)
        assert row is not None
        t = session.table
        return PaneInfo(
            photo_id,
            t.paths[row],
            t.status[row],
            t.errors[row],
            decision_html(int(t.rating[row]), bool(t.picked[row]), t.labels[row]),
            t.scores_of(row),
        )

    def _session_changed(self, session: CullingSession | None) -> None:
        old, self._session = self._session, session
        if old is not None and old is not session:
            old.events.decisions_changed.disconnect(self._photos_changed)
            old.events.rows_changed.disconnect(self._photos_changed)
            old.events.rows_changed.disconnect(self._view_changed)
            old.events.view_changed.disconnect(self._view_changed)
        if session is not None and session is not old:
            session.events.decisions_changed.connect(self._photos_changed)
            session.events.rows_changed.connect(self._photos_changed)
            session.events.rows_changed.connect(self._view_changed)
            session.events.view_changed.connect(self._view_changed)
        self._order_cache = None
        if self.showing and session is not old:
            self.back_to_grid()  # another folder: its photos are not these

    def _view_changed(self, *_: object) -> None:
        self._order_cache = None  # the stepping order follows the grid's

    def _photos_changed(self, ids: Sequence[int] | None = None) -> None:
        """Decisions (or scores) of these photos changed: redraw the headers that show them."""
        if not self.showing or self.session is None:
            return
        session = self.session
        changed = None if ids is None else {int(i) for i in ids}
        for pane in self.view.panes:
            pid = pane.info.photo_id if pane.info is not None else None
            if pid is not None and (changed is None or pid in changed) and session.row_of(pid) is not None:
                self.view.update_info(pane.index, self._info(pid))

    def shutdown(self) -> None:
        self.view.shutdown()
