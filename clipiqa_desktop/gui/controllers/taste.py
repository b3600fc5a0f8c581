"""The photographer's taste in the window: the "My taste" column (keep-probability of each undecided
photo, culling/taste.py) and a status-bar line with its cross-validated accuracy, kept up to date as
the photographer culls, without ever stalling the window.

When: a session opens, decisions change, the indexer adds rows, or a reload drops the column. The
triggers are debounced (`DEBOUNCE_MS` of quiet after the last decision; a keypress restarts it) and
coalesced: at most one fit runs; a trigger during a fit asks for one more fit after it. A snapshot
of the session's labels and attributes (numpy copies, a millisecond even for 20,000 photos) is
taken on the GUI thread; the worker thread reads the embeddings and other shoots' decisions from
the catalog (its own pooled connection) and fits (scikit-learn is imported there, never by the
window's first paint). A result whose session was replaced is dropped; a result older than the
latest decisions is still shown, with the photos decided since left empty, and the pending fit
brings it up to date.

Decided photos get no value (NaN): their decision is the answer, and an empty value sorts last in
either direction, so "sort by My taste" lists the undecided photos from the likeliest keep down and
a filter range on it selects only undecided photos.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot
from PySide6.QtWidgets import QLabel

from ...catalog import Catalog, CatalogError
from ...culling.session import CullingSession
from ...culling.taste import MIN_DECISIONS, MIN_PER_CLASS, TASTE_KEY, UNDECIDED, ShootLabels, labels_of
from ..workers import start_in_thread
from .base import Controller

if TYPE_CHECKING:
    from pathlib import Path

    from ...culling.taste import TasteResult
    from ..main_window import MainWindow

log = logging.getLogger(__name__)

DEBOUNCE_MS = 2000  # quiet after the last decision before a refit
FIRST_MS = 500  # after a folder opens (its first paint and the indexer's start go first)

EXPLAINED = (
    "Learnt from your own decisions (kept = picked or at least 1 star, rejected = X), in this shoot "
    "and in earlier shoots indexed with the same model, on each photo's CLIP embedding and "
    f"attributes. It needs {MIN_DECISIONS} decisions, {MIN_PER_CLASS} of each kind. Sort by "
    "My taste to see the undecided photos you would most likely keep. Nothing leaves this machine."
)


class _Fit(QObject):
    """Runs one fit on its thread: `finished(result)` or `failed(message)` on the GUI thread."""

    finished = Signal(object)
    failed = Signal(str)

    def __init__(
        self, catalog: Catalog, folder: Path, recursive: bool, analysis_id: int, shoot: ShootLabels
    ) -> None:
        super().__init__()
        self.catalog, self.folder, self.recursive = catalog, folder, recursive
        self.analysis_id, self.shoot = analysis_id, shoot

    @Slot()
    def run(self) -> None:
        from ...culling.taste import learn_taste

        try:
            folder_ids = self.catalog.folder_ids(self.folder, self.recursive)
            result = learn_taste(self.catalog, folder_ids, self.analysis_id, self.shoot)
        except CatalogError as exc:  # explained (a catalog server gone, a busy catalog): no traceback
            log.warning("the taste model could not be fitted: %s", exc)
            self.failed.emit(str(exc))
            return
        except Exception as exc:  # a background column: a failure is a status line, never a crash
            log.warning("the taste model could not be fitted", exc_info=True)
            self.failed.emit(str(exc) or type(exc).__name__)
            return
        self.finished.emit(result)


class TasteController(Controller):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.label = QLabel("")
        self.label.setObjectName("taste")
        self.label.setToolTip(EXPLAINED)
        window.add_status_widget(self.label)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.refit)
        self.worker_thread: QThread | None = None
        self._worker: _Fit | None = None
        self._again = False  # a trigger came while a fit ran: fit once more after it
        self._followed: CullingSession | None = None
        self._fitted_for: CullingSession | None = None  # the session the running fit belongs to
        self.fits = 0  # fits started (tests, benchmarks)
        self.last: TasteResult | None = None
        self.ctx.session_changed.connect(self._session_changed)

    @property
    def _shown(self) -> bool:
        """The column was set by the last fit."""
        return self.last is not None and self.last.problem is None

    @property
    def busy(self) -> bool:
        return self.worker_thread is not None and self.worker_thread.isRunning()

    # --- triggers ---------------------------------------------------------------------------------
    def _session_changed(self, session: CullingSession | None) -> None:
        if self._followed is not None:
            self._followed.events.decisions_changed.disconnect(self._decided)
            self._followed.events.rows_changed.disconnect(self._rows_changed)
        self._followed = session
        self.last = None
        self.label.setText("")
        self.timer.stop()
        if session is not None:
            session.events.decisions_changed.connect(self._decided)
            session.events.rows_changed.connect(self._rows_changed)
            self.timer.start(FIRST_MS)

    def _decided(self, *_: object) -> None:
        self.timer.start(DEBOUNCE_MS)  # restarts: a fit comes after the photographer pauses

    def _rows_changed(self, ids: Any = None) -> None:
        session = self.session
        if session is None:
            return
        if ids is not None:  # the indexer added or rescored photos: they need predictions
            self.timer.start(DEBOUNCE_MS)
        elif self._shown and TASTE_KEY not in session.table.attributes:
            self.timer.start(FIRST_MS)  # a reload (another analysis, moved photos) dropped the column

    # --- the fit ----------------------------------------------------------------------------------
    @Slot()
    def refit(self) -> None:
        """Fit now from a snapshot of the session (or once the running fit ends)."""
        session = self.session
        if session is None:
            return
        if self.busy:
            self._again = True
            return
        if session.analysis_id is None:
            self.label.setText("")
            return
        shoot = ShootLabels.of(session.table)  # on the GUI thread: copies of the columns
        worker = _Fit(self.ctx.catalog, session.folder, session.recursive, session.analysis_id, shoot)
        worker.finished.connect(self._fitted)
        worker.failed.connect(self._failed)
        self._worker, self._fitted_for, self._again = worker, session, False
        self.fits += 1
        if not self.label.text():
            self.label.setText("My taste: learning …")
        self.worker_thread = start_in_thread(worker, self.window)

    def _ended(self) -> CullingSession | None:
        """The fit's thread is done: the session it was for, if still open."""
        if self.worker_thread is not None:
            self.worker_thread.quit()
            self.worker_thread.wait()
        self.worker_thread, self._worker = None, None
        session, self._fitted_for = self._fitted_for, None
        if self._again:
            self._again = False
            self.timer.start(0)
        return session if session is self.session else None

    @Slot(object)
    def _fitted(self, result: TasteResult) -> None:
        session = self._ended()
        if session is None:
            return  # another folder opened meanwhile
        self.last = result
        self.label.setText(result.summary())
        self.label.setToolTip(self._tooltip(result))
        if result.problem is not None:
            if TASTE_KEY in session.table.attributes:
                session.drop_column(TASTE_KEY)
            return
        values = result.probabilities.astype(np.float32, copy=True)
        rows = [session.row_of(int(i)) for i in result.ids]
        known = np.array([r is not None for r in rows], dtype=bool)
        at = np.array([r for r in rows if r is not None], dtype=np.int64)
        now = labels_of(session.table.rating[at], session.table.picked[at])
        decided_since = np.zeros(len(values), dtype=bool)
        decided_since[np.flatnonzero(known)[now != UNDECIDED]] = True
        values[decided_since] = np.nan  # decided while the fit ran: the decision is the answer
        session.set_column(TASTE_KEY, result.ids, values)

    @Slot(str)
    def _failed(self, message: str) -> None:
        if self._ended() is None:
            return
        self.label.setText("My taste: could not be learnt")
        self.label.setToolTip(f"{message}\n\n{EXPLAINED}")

    @staticmethod
    def _tooltip(result: TasteResult) -> str:
        (sk, sr), (ok, orj) = result.shoot_counts, result.other_counts
        used = (
            f"{result.keeps} kept and {result.rejects} rejected: this shoot {sk} + {sr}, "
            f"other shoots {ok} + {orj}."
        )
        if result.problem is not None:
            return f"{result.problem[0].upper()}{result.problem[1:]}.\n\n{EXPLAINED}"
        figures = (
            f"Cross-validated accuracy {result.accuracy:.0%} ± {result.accuracy_spread:.0%} over "
            f"{result.folds} folds (held-out decisions); {result.baseline_name} {result.baseline:.0%}; "
            f"ROC AUC {result.auc:.2f}."
        ).replace("%", " %")
        return f"Learnt from {used}\n{figures}\n\n{EXPLAINED}"

    def shutdown(self) -> None:
        """Closing waits for a running fit (a few seconds at most); nothing is written."""
        self.timer.stop()
        self._again = False
        if self.worker_thread is not None:
            self.worker_thread.quit()  # its loop ends as soon as the fit returns
            self.worker_thread.wait()
