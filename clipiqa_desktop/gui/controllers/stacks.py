"""Bursts and scenes in the window: View ▸ Stack bursts (Ctrl+G), S opens or closes the current
stack, the "Bursts and scenes" dock (the sliders of each level, "best by", what the grouping found)
and Edit ▸ Keep best N of each burst, reject the rest… (asks first; one undo step).

The grouping itself is the session's (culling/session.py, culling/groups.py). The window groups
in a worker thread (GroupWorker: 20,000 photos take one to two seconds of CPU, too long for the
GUI thread), never on the GUI thread: when the session asks (`grouping_needed`: stacks turned on,
a range relative to the burst or scene; on a new folder, once the panel's sliders and "best by"
are the session's), when the sliders rest (150 ms), after a reload made the grouping stale (an
index run that changed photos ends with one), and before Keep best N opens its dialog. The catalog
is read on the GUI thread (one query), the grouping result is shown there (`set_grouping`). Until
it arrives the grid keeps the previous grouping (photos it does not know are shown alone), or,
with none yet, a flat view in which ranges relative to the burst wait.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal, Slot
from PySide6.QtWidgets import QDockWidget, QScrollArea

from ...catalog.records import GroupInputs
from ...culling.groups import GroupParams, KeepBestPlan, group_photos
from ...culling.session import CullingSession
from ...measures.registry import attribute_info
from ..group_panel import GroupPanel, KeepBestDialog
from ..photo_model import PhotoIdRole
from ..workers import start_in_thread
from .base import Controller

if TYPE_CHECKING:
    from ..main_window import MainWindow


class GroupWorker(QObject):
    """groups.group_photos in a worker thread (numpy and plain Python: no catalog, no Qt objects)."""

    finished = Signal(object, int, float)  # Grouping, generation, seconds
    failed = Signal(str)

    def __init__(self, inputs: GroupInputs, params: GroupParams, generation: int) -> None:
        super().__init__()
        self.inputs, self.params, self.generation = inputs, params, generation

    @Slot()
    def run(self) -> None:
        try:
            start = time.perf_counter()
            grouping = group_photos(self.inputs, self.params)
            self.finished.emit(grouping, self.generation, time.perf_counter() - start)
        except Exception as exc:  # a bug must not leave the panel waiting forever
            self.failed.emit(f"grouping failed: {exc}")


class StacksController(Controller):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        w = window
        self.panel = GroupPanel()
        self.panel.params_changed.connect(self.set_params)
        self.panel.best_by_changed.connect(self.set_best_by)
        self.panel.keep_best_requested.connect(self.keep_best)
        scroll = QScrollArea()
        scroll.setWidget(self.panel)
        scroll.setWidgetResizable(True)
        self.dock = QDockWidget("Bursts and scenes", w)
        self.dock.setObjectName("bursts and scenes")
        self.dock.setWidget(scroll)
        self.dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        w.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.dock)

        self.stack_action = w.add_action("Stack bursts", lambda: None, "Ctrl+G")
        self.stack_action.setCheckable(True)
        self.stack_action.toggled.connect(self.set_stacked)
        self.panel.stacked.toggled.connect(self.stack_action.setChecked)
        self.expand_action = w.add_action("Open or close the current stack", self.toggle_current, "S")
        w.view_menu.addActions([self.stack_action, self.expand_action])
        self.keep_action = w.add_action("Keep best N of each burst, reject the rest…", self.keep_best)
        w.edit_menu.addAction(self.keep_action)
        self.dialog: KeepBestDialog | None = None
        self.last_regroup_ms = 0.0
        self.worker_thread: QThread | None = None
        self._worker: GroupWorker | None = None
        self._again = False  # the sliders moved (or the photos changed) while a grouping ran
        self._target: CullingSession | None = None  # the session the running grouping is for
        self._session: CullingSession | None = None
        self._keep_when_grouped = False  # Keep best N asked before the grouping was there
        self.ctx.session_changed.connect(self._session_changed)

    # --- following the session ---------------------------------------------------------------------
    def _session_changed(self, session: CullingSession | None) -> None:
        old, self._session = self._session, session
        if old is not None and old is not session:
            old.events.columns_changed.disconnect(self._columns_changed)
            old.events.view_changed.disconnect(self._summarise)
            old.events.rows_changed.disconnect(self._rows_changed)
            old.events.grouping_needed.disconnect(self._grouping_needed)
        if session is None or session is old:
            return
        self._keep_when_grouped = False
        session.events.columns_changed.connect(self._columns_changed)
        session.events.view_changed.connect(self._summarise)
        session.events.rows_changed.connect(self._rows_changed)
        session.events.grouping_needed.connect(self._grouping_needed)
        # the panel's values before any grouping of this folder (the view controller, which hears
        # the new session first, may already have asked for one: a range relative to the burst)
        session.group_params = self.panel.params()
        session.best_by = self.panel.best_key()
        self._columns_changed()
        if self.stack_action.isChecked() or session.needs_grouping:
            self.group()
        self._summarise()

    def _columns_changed(self) -> None:
        if self.session is not None:
            self.panel.set_attributes(list(self.session.table.attributes))

    def _grouping_needed(self) -> None:
        """The session asks for bursts (stacks on, a range relative to the burst) and has none."""
        if self.worker_thread is None or self._target is not self.session:
            self.group()  # (a grouping of this session already running will do)

    def _rows_changed(self, _ids: object) -> None:
        session = self.session
        if session is not None and session.grouping_stale:
            self.group()  # a reload brought other photos or embeddings
        self._summarise()

    # --- grouping in a worker thread -----------------------------------------------------------------
    @property
    def grouping(self) -> bool:
        """A grouping is being computed."""
        return self.worker_thread is not None

    def group(self, params: GroupParams | None = None) -> None:
        """Group the session's photos (again) in the worker thread; the result is shown when it
        arrives (and stacks turned on when the switch is on)."""
        session = self.session
        if session is None:
            return
        if params is not None:
            session.group_params = params
        if self.worker_thread is not None:
            self._again = True  # once this one is done, with the newest params
            return
        inputs, used, generation = session.grouping_task()
        worker = GroupWorker(inputs, used, generation)
        worker.finished.connect(self._grouped)
        worker.failed.connect(self._failed)
        self._worker = worker
        self._target = session
        self.panel.summary.setText(f"Grouping {len(inputs):,} photos …")
        self.worker_thread = start_in_thread(worker, self.window)

    @Slot(object, int, float)
    def _grouped(self, grouping: object, generation: int, seconds: float) -> None:
        self._ended()
        session = self.session
        if session is None or session is not self._target:  # another folder opened meanwhile
            if session is not None and self._again:
                self._again = False
                self.group()  # the new folder's
            return
        self.last_regroup_ms = seconds * 1000
        session.set_grouping(grouping, generation)  # type: ignore[arg-type]
        if self.stack_action.isChecked() and not session.stacked:
            session.set_stacked(True)
        self._summarise()
        if self._again or session.grouping_stale:
            self._again = False
            self.group()
        elif self._keep_when_grouped:
            self._keep_when_grouped = False
            self._open_keep_best(session)

    @Slot(str)
    def _failed(self, message: str) -> None:
        self._ended()
        self._again = self._keep_when_grouped = False
        self.window.say(message)
        self._summarise()

    def _ended(self) -> None:
        if self.worker_thread is not None:
            self.worker_thread.quit()
            self.worker_thread.wait(10_000)
        self.worker_thread = None
        self._worker = None

    def wait(self, timeout_ms: int = 30_000) -> None:
        """Until no grouping runs (tests, scripts)."""
        deadline = time.monotonic() + timeout_ms / 1000
        while self.worker_thread is not None and time.monotonic() < deadline:
            self.worker_thread.wait(50)
            QCoreApplication.processEvents()

    def shutdown(self) -> None:
        if self.worker_thread is not None:
            self.worker_thread.quit()
            self.worker_thread.wait(30_000)

    def _summarise(self) -> None:
        session = self.session
        g = session.grouping if session is not None else None
        if self.worker_thread is not None:
            return  # "Grouping … photos" stays until the result
        if session is None or g is None:
            self.panel.summary.setText("Not grouped yet: stack bursts (Ctrl+G) to group this folder.")
            return
        kinds = [b.kind for b in g.bursts]
        scenes = sum(1 for s in g.scenes if len(s) > 1)
        parts = [_count(kinds.count("burst"), "burst")]
        if kinds.count("bracket"):
            parts.append(_count(kinds.count("bracket"), "exposure bracket"))
        if kinds.count("focus_stack"):
            parts.append(_count(kinds.count("focus_stack"), "focus stack"))
        parts.append(_count(kinds.count("single"), "frame") + " alone")
        text = ", ".join(parts) + f"; {_count(scenes, 'scene')} of several bursts"
        if self.last_regroup_ms:
            text += f" (grouped in {self.last_regroup_ms:.0f} ms)"
        self.panel.summary.setText(text)

    # --- actions ---------------------------------------------------------------------------------------
    def set_stacked(self, stacked: bool) -> None:
        self.panel.stacked.blockSignals(True)
        self.panel.stacked.setChecked(stacked)
        self.panel.stacked.blockSignals(False)
        session = self.session
        if session is None:
            return
        if stacked and (session.grouping is None or session.grouping_stale):
            self.group()  # stacks when the grouping arrives
        elif session.stacked != stacked:
            session.set_stacked(stacked)

    def set_params(self, params: GroupParams) -> None:
        self.group(params)

    def set_best_by(self, key: str) -> None:
        if self.session is not None:
            self.session.set_best_by(key)

    def toggle_current(self) -> None:
        """S: open the current photo's stack, or close the open stack it belongs to."""
        session, grid = self.session, self.window.grid
        if session is None or not grid.currentIndex().isValid():
            return
        if self.window.stack.currentWidget() is self.window.compare:  # the grid is hidden
            self.window.say("S opens or closes stacks in the grid: C or Esc returns to it.")
            return
        if not session.stacked:
            self.window.say("Stacks are off: View ▸ Stack bursts (Ctrl+G) groups the bursts.")
            return
        pid = grid.currentIndex().data(PhotoIdRole)
        if not session.toggle_stack(int(pid)):
            self.window.say("This photo is not part of a burst, bracket or focus stack.")

    def keep_best(self) -> None:
        """Edit ▸ Keep best N…: the dialog says what it would reject; nothing changes before Reject."""
        session = self.session
        if session is None or not len(session.table):
            self.window.say("Open a folder first.")
            return
        if session.grouping is None or session.grouping_stale or self.worker_thread is not None:
            self._keep_when_grouped = True  # the dialog opens when the worker thread is done
            self.group()
            self.window.say("Grouping the folder into bursts first …")
            return
        self._open_keep_best(session)

    def _open_keep_best(self, session: CullingSession) -> None:
        if self.dialog is not None:
            return
        label = attribute_info(session.best_by).label
        self.dialog = KeepBestDialog(session.keep_best_plan, label, self.window)
        self.dialog.finished.connect(self._dialog_closed)
        self.dialog.open()

    def _dialog_closed(self, result: int) -> None:
        dialog, session, self.dialog = self.dialog, self.session, None
        if dialog is None:
            return
        dialog.deleteLater()
        plan: KeepBestPlan | None = dialog.plan
        if result != KeepBestDialog.DialogCode.Accepted or session is None or plan is None:
            return
        n = session.keep_best(plan)
        self.window.say(f"Rejected {n:,} photo{'s' if n != 1 else ''} (Ctrl+Z undoes it).")


def _count(n: int, noun: str) -> str:
    """'1 burst', '12 bursts'."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
