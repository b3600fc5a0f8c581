"""The filter panel: a range per look attribute, presets, decision filters, a custom prompt pair and
the "relative to this shoot" switch. It emits plain FilterState values; the session applies them."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from ..catalog.records import LABELS
from ..culling.session import PRESETS, FilterState, Preset
from ..scoring.attributes import LOOK_ATTRIBUTES, get_attribute

STEPS = 100


class RangeRow(QWidget):
    """Two sliders (low, high) over 0..1 (or 0..100 percentiles) with their values shown."""

    changed = Signal()

    def __init__(self, key: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.key = key
        self.relative = False
        self.low, self.high = QSlider(Qt.Orientation.Horizontal), QSlider(Qt.Orientation.Horizontal)
        for s, v in ((self.low, 0), (self.high, STEPS)):
            s.setRange(0, STEPS)
            s.setValue(v)
            s.valueChanged.connect(self._moved)
            s.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # keep culling keys for the grid
        self.value_label = QLabel()
        self.value_label.setMinimumWidth(78)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.low)
        lay.addWidget(self.high)
        lay.addWidget(self.value_label)
        self._update_label()

    def _moved(self) -> None:
        if self.low.value() > self.high.value():
            sender = self.sender()
            other = self.high if sender is self.low else self.low
            other.blockSignals(True)
            other.setValue(sender.value())  # type: ignore[attr-defined]
            other.blockSignals(False)
        self._update_label()
        self.changed.emit()

    def _update_label(self) -> None:
        lo, hi = self.range()
        self.value_label.setText(f"{lo:.0f}–{hi:.0f} %" if self.relative else f"{lo:.2f}–{hi:.2f}")

    def range(self) -> tuple[float, float]:
        scale = 1.0 if self.relative else 1.0 / STEPS
        return self.low.value() * scale, self.high.value() * scale

    def is_full(self) -> bool:
        return self.low.value() == 0 and self.high.value() == STEPS

    def set_range(self, lo: float, hi: float) -> None:
        scale = 1.0 if self.relative else STEPS
        for s, v in ((self.low, lo), (self.high, hi)):
            s.blockSignals(True)
            s.setValue(round(v * scale))
            s.blockSignals(False)
        self._update_label()

    def set_relative(self, relative: bool) -> None:
        self.relative = relative
        self._update_label()


class FilterPanel(QWidget):
    changed = Signal(object)  # FilterState
    prompt_requested = Signal(str, str)  # positive, negative

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumWidth(300)
        outer = QVBoxLayout(self)
        self.count_label = QLabel("no folder open")
        self.count_label.setWordWrap(True)
        self.count_label.setObjectName("countLabel")
        outer.addWidget(self.count_label)

        presets = QGroupBox("Find")
        grid = QGridLayout(presets)
        self.preset_buttons: dict[str, QPushButton] = {}
        for i, preset in enumerate(PRESETS):
            b = QPushButton(preset.name)
            b.setCheckable(True)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.clicked.connect(lambda checked, p=preset: self._preset(p, checked))
            grid.addWidget(b, i // 3, i % 3)
            self.preset_buttons[preset.name] = b
        clear = QPushButton("Show all")
        clear.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        clear.clicked.connect(self.clear)
        grid.addWidget(clear, 1, 2)
        outer.addWidget(presets)

        looks = QGroupBox("Scores")
        form = QFormLayout(looks)
        self.relative = QCheckBox("relative to this shoot (percentiles)")
        self.relative.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.relative.toggled.connect(self._relative_toggled)
        form.addRow(self.relative)
        self.ranges: dict[str, RangeRow] = {}
        for key in LOOK_ATTRIBUTES:
            row = RangeRow(key)
            row.changed.connect(self._emit_soon)
            pair = get_attribute(key)
            row.setToolTip(
                f"{pair.key}: 0 = “{pair.negative}”, 1 = “{pair.positive}”. "
                "Left slider: lowest score shown; right slider: highest."
            )
            form.addRow(pair.scale, row)
            self.ranges[key] = row
        outer.addWidget(looks)

        decisions = QGroupBox("Decisions")
        dform = QFormLayout(decisions)
        flags = QHBoxLayout()
        self.flags: dict[str, QCheckBox] = {}
        for name in ("picked", "unflagged", "rejected"):
            cb = QCheckBox(name)
            cb.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            cb.toggled.connect(self._emit_soon)
            flags.addWidget(cb)
            self.flags[name] = cb
        dform.addRow(flags)
        self.min_rating = QComboBox()
        self.min_rating.addItems(["any rating", *[f"≥ {'★' * n}" for n in range(1, 6)]])
        self.min_rating.currentIndexChanged.connect(self._emit_soon)
        self.label = QComboBox()
        self.label.addItems(["any label", *LABELS])
        self.label.currentIndexChanged.connect(self._emit_soon)
        for w in (self.min_rating, self.label):
            w.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        dform.addRow("Rating", self.min_rating)
        dform.addRow("Label", self.label)
        outer.addWidget(decisions)

        prompt = QGroupBox("Your own prompt pair")
        pform = QFormLayout(prompt)
        self.positive = QLineEdit()
        self.positive.setPlaceholderText("Eyes closed.")
        self.negative = QLineEdit()
        self.negative.setPlaceholderText("Eyes open.")
        self.score_button = QPushButton("Score and sort")
        self.score_button.clicked.connect(self._prompt)
        self.negative.returnPressed.connect(self._prompt)
        pform.addRow("Looks like", self.positive)
        pform.addRow("rather than", self.negative)
        pform.addRow(self.score_button)
        self.prompt_status = QLabel("")
        self.prompt_status.setWordWrap(True)
        pform.addRow(self.prompt_status)
        outer.addWidget(prompt)
        outer.addStretch(1)

        self._timer = QTimer(self)  # coalesce slider drags into one update per 60 ms
        self._timer.setSingleShot(True)
        self._timer.setInterval(60)
        self._timer.timeout.connect(self.emit_state)

    def state(self) -> FilterState:
        ranges = {k: r.range() for k, r in self.ranges.items() if not r.is_full()}
        flags = frozenset(n for n, cb in self.flags.items() if cb.isChecked())
        label = self.label.currentText() if self.label.currentIndex() > 0 else None
        return FilterState(
            ranges=ranges,
            relative=self.relative.isChecked(),
            flags=flags,
            min_rating=self.min_rating.currentIndex(),
            label=label,
        )

    def emit_state(self) -> None:
        self.changed.emit(self.state())

    def _emit_soon(self) -> None:
        self._timer.start()

    def _relative_toggled(self, relative: bool) -> None:
        for r in self.ranges.values():
            lo, hi = r.range()
            r.set_relative(relative)
            if relative:
                r.set_range(lo * STEPS, hi * STEPS)
            else:
                r.set_range(lo / STEPS, hi / STEPS)
        self.emit_state()

    def _preset(self, preset: Preset, checked: bool) -> None:
        for name, b in self.preset_buttons.items():
            if name != preset.name:
                b.setChecked(False)
        for r in self.ranges.values():
            r.set_range(0, STEPS if r.relative else 1.0)
        if checked:
            lo, hi = preset.percentile if self.relative.isChecked() else preset.absolute
            self.ranges[preset.attribute].set_range(lo, hi)
        self.emit_state()

    def clear(self) -> None:
        for b in self.preset_buttons.values():
            b.setChecked(False)
        for r in self.ranges.values():
            r.set_range(0, STEPS if r.relative else 1.0)
        for cb in self.flags.values():
            cb.blockSignals(True)
            cb.setChecked(False)
            cb.blockSignals(False)
        self.min_rating.setCurrentIndex(0)
        self.label.setCurrentIndex(0)
        self.emit_state()

    def _prompt(self) -> None:
        pos, neg = self.positive.text().strip(), self.negative.text().strip()
        if not pos or not neg or pos == neg:
            self.prompt_status.setText("Type two different descriptions, e.g. “Eyes closed.” / “Eyes open.”")
            return
        self.prompt_status.setText("Scoring from the stored embeddings …")
        self.prompt_requested.emit(pos, neg)
