"""Decisions made elsewhere appear in the window without a restart: another window, another machine
on a shared (PostgreSQL) catalog, `rate` in a terminal, an XMP import by an indexer.

Every POLL_INTERVAL_MS a QTimer on the GUI thread starts ONE poll, `CullingSession.poll_task()`,
in a one-thread QThreadPool: the catalog reads (`Catalog.decision_changes` since the session's
counter; on the seq index, so cheap) never run on the GUI thread. The result comes back through a
queued signal and `session.apply_poll` shows it: rows update in place (selection, scroll and sort
kept, the filters applied again), a photo with a local write queued or in flight keeps the local
value, and the window's own writes, which come back too, change nothing. The status line says how
many decisions changed elsewhere. A poll that fails (the catalog busy, a server gone) says nothing:
the next one tries again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal, Slot

from ...catalog import CatalogError
from ...culling.session import CullingSession, DecisionPoll
from .base import Controller

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..main_window import MainWindow

log = logging.getLogger(__name__)

POLL_INTERVAL_MS = 2000  # read when a folder opens (tests shorten it)


class _Signals(QObject):
    done = Signal(object, object)  # the session polled, its DecisionPoll (None: the poll failed)


class _Poll(QRunnable):
    def __init__(self, session: CullingSession, task: Callable[[], DecisionPoll], signals: _Signals) -> None:
        super().__init__()
        self.session, self.task, self.signals = session, task, signals

    def run(self) -> None:
        result: DecisionPoll | None = None
        try:
            result = self.task()
        except CatalogError as exc:  # busy, unreachable: the next poll tries again
            log.debug("polling for decisions changed elsewhere: %s", exc)
        except Exception:  # a bug: logged, never the end of the pool thread
            log.exception("polling for decisions changed elsewhere failed")
        self.signals.done.emit(self.session, result)


class LiveDecisionsController(Controller):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._signals = _Signals(self)
        self._signals.done.connect(self._done)  # emitted on the pool thread: queued to this one
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.poll)
        self._in_flight = False
        self.polls = 0  # polls that came back (tests)
        self.changed = 0  # decisions changed elsewhere shown so far (tests)
        self.ctx.session_changed.connect(self._session_changed)

    def _session_changed(self, session: CullingSession | None) -> None:
        if session is None:
            self.timer.stop()
        else:
            self.timer.start(POLL_INTERVAL_MS)

    @property
    def busy(self) -> bool:
        """A poll is running or its result is on its way."""
        return self._in_flight

    def poll(self) -> None:
        """Start a poll unless one is running (the timer's tick; tests call it too)."""
        session = self.session
        if session is None or self._in_flight:
            return
        self._in_flight = True
        self.pool.start(_Poll(session, session.poll_task(), self._signals))

    @Slot(object, object)
    def _done(self, session: CullingSession, result: DecisionPoll | None) -> None:
        self._in_flight = False
        self.polls += 1
        if result is None or session is not self.session:  # failed, or another folder opened since
            return
        changed = session.apply_poll(result)
        if changed:
            n = len(changed)
            self.changed += n
            self.window.say(f"{n} decision{'s' if n != 1 else ''} changed elsewhere")

    def shutdown(self) -> None:
        self.timer.stop()
        self.pool.waitForDone(30_000)
