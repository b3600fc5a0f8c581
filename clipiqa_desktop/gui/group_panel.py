"""The "Bursts and scenes" panel and the "Keep the best N" dialog.

The panel holds the two sliders of each level (similarity and time gap, as the paid tools offer
them), the "best by" attribute, the "Stack bursts" switch and a line saying what the grouping
found. It emits plain values; the StacksController regroups the session (debounced: a drag is one
regroup when it rests). Its superqt sliders are built after the window's first paint, like the
filter panel's (superqt's import costs about half a second of CPU).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QPaintEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..culling.groups import KEEPER_KEY, GroupParams, KeepBestPlan
from ..measures.registry import attribute_info

if TYPE_CHECKING:
    from superqt import QLabeledDoubleSlider

# slider: (GroupParams field, label, minimum, maximum, decimals, slider units per field unit, tooltip)
SLIDERS: tuple[tuple[str, str, float, float, int, float, str], ...] = (
    (
        "burst_similarity",
        "Burst: similarity",
        0.50,
        1.00,
        2,
        1.0,
        "How alike neighbouring frames must look (cosine of their CLIP embeddings) to be one burst. "
        "Higher: only near-identical frames stack.",
    ),
    (
        "burst_gap",
        "Burst: time gap (s)",
        0.0,
        30.0,
        1,
        1.0,
        "The longest pause, in seconds, between two frames of one burst.",
    ),
    (
        "scene_similarity",
        "Scene: similarity",
        0.30,
        1.00,
        2,
        1.0,
        "How alike a burst must look to the scene so far (cosine of mean embeddings) to join it.",
    ),
    (
        "scene_gap",
        "Scene: time gap (min)",
        0.0,
        60.0,
        1,
        1 / 60,
        "The longest pause, in minutes, after a scene's last frame for the next burst to join it.",
    ),
)


class GroupPanel(QWidget):
    params_changed = Signal(object)  # GroupParams
    best_by_changed = Signal(str)
    stacked_toggled = Signal(bool)
    keep_best_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._params = GroupParams()
        self._sliders: dict[str, QLabeledDoubleSlider] = {}
        self._build_scheduled = False
        outer = QVBoxLayout(self)
        self.stacked = QCheckBox("Stack bursts (Ctrl+G)")
        self.stacked.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.stacked.setToolTip(
            "Show each burst as one cell: its best frame, with the number of frames. S opens or "
            "closes the current stack. Exposure brackets and focus stacks are stacked too, and "
            "never proposed for rejection."
        )
        self.stacked.toggled.connect(self.stacked_toggled)
        outer.addWidget(self.stacked)
        self.form = QFormLayout()
        self.form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapAllRows)
        self.form.setVerticalSpacing(2)
        self._loading = QLabel("Sliders …")
        self.form.addRow(self._loading)
        self.best_by = QComboBox()
        self.best_by.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.best_by.setToolTip("The attribute that chooses the best frame of each burst (crowned).")
        self.set_attributes([])
        self.best_by.currentIndexChanged.connect(lambda _i: self.best_by_changed.emit(self.best_key()))
        outer.addLayout(self.form)
        best_row = QFormLayout()
        best_row.addRow("Best by", self.best_by)
        outer.addLayout(best_row)
        self.keep_button = QPushButton("Keep best N of each burst…")
        self.keep_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.keep_button.clicked.connect(self.keep_best_requested)
        outer.addWidget(self.keep_button)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setObjectName("groupSummary")
        outer.addWidget(self.summary)
        outer.addStretch(1)
        self._timer = QTimer(self)  # a drag regroups once it rests
        self._timer.setSingleShot(True)
        self._timer.setInterval(150)
        self._timer.timeout.connect(self._emit_params)

    # --- the sliders, built after the first paint ------------------------------------------------------
    @property
    def built(self) -> bool:
        return bool(self._sliders)

    @property
    def sliders(self) -> dict[str, QLabeledDoubleSlider]:
        self.build()
        return self._sliders

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if not self.built and not self._build_scheduled:
            self._build_scheduled = True
            QTimer.singleShot(0, self, self.build)

    def build(self) -> None:
        if self.built:
            return
        from superqt import QLabeledDoubleSlider

        self._loading.hide()
        for key, label, lo, hi, decimals, scale, tip in SLIDERS:
            slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
            slider.setRange(lo, hi)
            slider.setDecimals(decimals)
            slider.setSingleStep(10.0**-decimals)  # type: ignore[arg-type]
            slider.setValue(getattr(self._params, key) * scale)
            slider.setToolTip(tip)
            slider.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # keep the culling keys for the grid
            for child in slider.findChildren(QWidget):
                child.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
            slider.valueChanged.connect(lambda _v: self._timer.start())
            name = QLabel(label)
            name.setToolTip(tip)
            self.form.addRow(name, slider)
            self._sliders[key] = slider

    # --- values ------------------------------------------------------------------------------------------
    def params(self) -> GroupParams:
        if not self.built:
            return self._params
        values = {key: self._sliders[key].value() / scale for key, *_r, scale, _tip in SLIDERS}
        return GroupParams(**{**self._params.__dict__, **values})

    def set_params(self, params: GroupParams) -> None:
        """Show `params` without announcing them."""
        self._params = params
        for key, *_r, scale, _tip in SLIDERS:
            if key in self._sliders:
                slider = self._sliders[key]
                slider.blockSignals(True)
                slider.setValue(getattr(params, key) * scale)
                slider.blockSignals(False)

    def _emit_params(self) -> None:
        self._params = self.params()
        self.params_changed.emit(self._params)

    def set_attributes(self, attributes: list[str]) -> None:
        """The folder's attributes in the "best by" box (keeper first), keeping the choice."""
        current = self.best_key() if self.best_by.count() else KEEPER_KEY
        keys = [KEEPER_KEY, *[a for a in attributes if a != KEEPER_KEY]]
        self.best_by.blockSignals(True)
        self.best_by.clear()
        for key in keys:
            self.best_by.addItem(attribute_info(key).label, key)
        self.best_by.setCurrentIndex(max(0, self.best_by.findData(current)))
        self.best_by.blockSignals(False)

    def best_key(self) -> str:
        key = self.best_by.currentData()
        return key if isinstance(key, str) else KEEPER_KEY


class KeepBestDialog(QDialog):
    """Keep the best N of each burst (or scene), reject the rest: N, the level, and what it would do
    (KeepBestPlan.describe), recomputed as they change. Nothing happens until "Reject"."""

    def __init__(self, plan_for: object, label: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keep the best of each group")
        self.plan_for = plan_for  # (n, level) -> KeepBestPlan
        self.label = label
        self.plan: KeepBestPlan | None = None
        form = QFormLayout(self)
        self.n = QSpinBox()
        self.n.setRange(1, 99)
        self.n.setValue(1)
        self.level = QComboBox()
        self.level.addItem("burst (near-duplicates)", "burst")
        self.level.addItem("scene (same setting)", "scene")
        form.addRow("Keep the best", self.n)
        form.addRow("of each", self.level)
        self.text = QLabel("")
        self.text.setWordWrap(True)
        self.text.setMinimumWidth(420)
        form.addRow(self.text)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.apply = self.buttons.addButton("Reject", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)
        self.n.valueChanged.connect(self.update_plan)
        self.level.currentIndexChanged.connect(self.update_plan)
        self.update_plan()

    def update_plan(self) -> None:
        n, level = self.n.value(), str(self.level.currentData())
        self.plan = self.plan_for(n, level)  # type: ignore[operator]
        assert self.plan is not None
        self.text.setText(self.plan.describe(n, level, self.label) + "\n\nCtrl+Z undoes it in one step.")
        count = len(self.plan.reject)
        self.apply.setText(f"Reject {count} photo{'s' if count != 1 else ''}")
        self.apply.setEnabled(count > 0)
