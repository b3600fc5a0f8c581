"""View ▸ How well do the flags match my culling…: `evaluate` (culling/evaluate.py) for the open
folder, in a window of its own. It reads the session's table (no query: the decisions on screen,
including those not yet written), follows the filter panel's "relative" switch for the CLIP-IQA
presets, and refreshes itself as the photographer culls while it is open."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...culling.evaluate import MIN_DECISIONS, Evaluation, evaluate, match_cells, threshold_cells
from ...culling.session import CullingSession
from ...measures.registry import FACE_KEYS, attribute_info
from .base import Controller

if TYPE_CHECKING:
    from ..main_window import MainWindow

PRESET_COLUMNS = (
    "Preset",
    "Your rejects caught",
    "Recall",
    "Your keepers flagged",
    "False alarms",
    "Precision",
    "Not measured",
    "Rule",
)
THRESHOLD_COLUMNS = (
    "Attribute",
    "Presets now",
    "Recall",
    "Precision",
    "Best (F1)",
    "Recall",
    "Precision",
    "F1",
    "Not measured",
    "Note",
)

EXPLAINED = (
    "Your culling is the truth here: rejects are photos rated −1 (X), keepers are picked or have at "
    "least one star. Recall: share of your rejects a flag catches; precision: share of its flags "
    "that are your rejects. A photo without the attribute (not measured, no face) is left out of "
    "that flag's counts, never counted as a miss. The best threshold maximises F1. Nothing leaves "
    "this machine."
)


def _table(columns: Sequence[str]) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(list(columns))
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    return table


def _fill(table: QTableWidget, rows: Sequence[Sequence[str]], tips: Sequence[str] = ()) -> None:
    table.setRowCount(len(rows))
    for r, cells in enumerate(rows):
        for c, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if 0 < c < len(cells) - 1:  # numbers right-aligned, names and the rule or note left
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if r < len(tips) and tips[r]:
                item.setToolTip(tips[r])
            table.setItem(r, c, item)


class EvaluationDialog(QDialog):
    """The numbers of one evaluation: a summary, the presets' table, the thresholds' table."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setWindowTitle("How well do the flags match my culling?")
        self.setObjectName("evaluation")
        self.resize(1100, 640)
        self.summary = QLabel("")
        self.summary.setObjectName("evaluation summary")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.unrated = QCheckBox("Count unrated photos as keepers (I marked only my rejects)")
        self.refresh_button = QPushButton("Refresh")
        self.presets = _table(PRESET_COLUMNS)
        self.thresholds = _table(THRESHOLD_COLUMNS)
        explained = QLabel(EXPLAINED)
        explained.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.hide)
        top = QHBoxLayout()
        top.addWidget(self.unrated, 1)
        top.addWidget(self.refresh_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addLayout(top)
        layout.addWidget(QLabel("Presets"))
        layout.addWidget(self.presets, 3)
        layout.addWidget(QLabel("Thresholds that would have matched your rejects best"))
        layout.addWidget(self.thresholds, 2)
        layout.addWidget(explained)
        layout.addWidget(buttons)

    def show_evaluation(self, ev: Evaluation | None, folder: str = "") -> None:
        if ev is None:
            self.summary.setText("Open a folder first.")
            _fill(self.presets, [])
            _fill(self.thresholds, [])
            return
        lines = [f"{folder}: {ev.summary()}."]
        if ev.problem is not None:
            lines.append(ev.problem[0].upper() + ev.problem[1:] + ".")
            if ev.unrated_would_help:
                lines.append("If you marked only your rejects, count the unrated photos as keepers.")
            elif ev.rejects < MIN_DECISIONS:
                lines.append("Reject photos with X as you cull; the numbers appear here.")
        if ev.missing:
            names = ", ".join(attribute_info(a).label for a in ev.missing)
            faces = " (faces and eyes need the [faces] extra)" if set(ev.missing) & set(FACE_KEYS) else ""
            lines.append(f"Not in this catalog: {names}; index the folder again to measure them{faces}.")
        if ev.relative:
            lines.append(
                "CLIP-IQA presets use their ranges relative to this shoot (the filter panel's switch)."
            )
        self.summary.setText("\n".join(lines))
        rows, tips = [], []
        for p in ev.presets:
            if p.match.rejects + p.match.keepers == 0:
                labels = ", ".join(attribute_info(a).label for a in p.missing) or "its attributes"
                rows.append([p.name, "not measured", "", "", "", "", "", f"no {labels} in this catalog"])
            else:
                note = "" if p.match.enough else " (too few measured)"
                rows.append([p.name, *match_cells(p.match), p.rule + note])
            tips.append(p.preset.explain())
        _fill(self.presets, rows, tips)
        _fill(
            self.thresholds,
            [threshold_cells(t) for t in ev.thresholds],
            [attribute_info(t.attribute).help for t in ev.thresholds],
        )


class EvaluateController(Controller):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.action = window.add_action("How well do the flags match my culling…", self.show)
        self.action.setToolTip(
            "For a shoot you already culled: how many of your rejects each preset catches, how many "
            "of your keepers it flags, and the thresholds that would have matched you best"
        )
        self.action.setEnabled(False)
        window.view_menu.addAction(self.action)
        self.dialog: EvaluationDialog | None = None
        self.last: Evaluation | None = None
        self._followed: CullingSession | None = None
        self.ctx.session_changed.connect(self._session_changed)

    def _ensure_dialog(self) -> EvaluationDialog:
        if self.dialog is None:
            self.dialog = EvaluationDialog(self.window)
            self.dialog.refresh_button.clicked.connect(self.refresh)
            self.dialog.unrated.toggled.connect(self.refresh)
        return self.dialog

    def show(self) -> None:
        dialog = self._ensure_dialog()
        if dialog.isVisible():  # behind the main window: bring it forward
            dialog.raise_()
            dialog.activateWindow()
        else:
            dialog.show()
        self.refresh()

    @Slot()
    def refresh(self) -> None:
        """Evaluate the open folder's table again (cheap: numpy over the session's columns)."""
        if self.dialog is None:
            return
        session = self.session
        if session is None:
            self.last = None
            self.dialog.show_evaluation(None)
            return
        self.last = evaluate(
            session.table,
            unrated_keepers=self.dialog.unrated.isChecked(),
            relative=session.filters.relative,
        )
        self.dialog.show_evaluation(self.last, str(session.folder))

    def _session_changed(self, session: CullingSession | None) -> None:
        self.action.setEnabled(session is not None)
        if self._followed is not None:
            for event in self._events(self._followed):
                event.disconnect(self._changed)
        self._followed = session
        if session is not None:
            for event in self._events(session):
                event.connect(self._changed)
        self._changed()

    @staticmethod
    def _events(session: CullingSession) -> list:
        e = session.events
        return [e.decisions_changed, e.rows_changed, e.columns_changed, e.view_changed]

    def _changed(self, *_: object) -> None:
        if self.dialog is not None and self.dialog.isVisible():
            self.refresh()

    def shutdown(self) -> None:
        if self.dialog is not None:
            self.dialog.hide()
