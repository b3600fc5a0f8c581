"""The filter panel: presets that combine attributes, a labelled range slider per attribute in
collapsible groups (Technical, People, Look, Feel, Your prompts), decision filters, a custom prompt
pair and the "relative to this shoot" switch. It emits plain FilterState values; the session applies
them (numpy over the whole table: nothing here runs per photo).

The range sliders are superqt's `QLabeledDoubleRangeSlider` (both ends on one track, each end's
value shown and editable) and the groups superqt's `QCollapsible`. superqt and the sliders cost
about half a second of CPU (its import pulls qtpy's star imports), so they are built just after the
window's first paint (or at once when something asks for `ranges` or `groups`): the grid shows
first."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QPaintEvent
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
    QVBoxLayout,
    QWidget,
)

from ..catalog.records import LABELS
from ..culling.presets import PRESETS, Preset
from ..culling.session import FilterState
from ..measures.registry import GROUP_TITLES, PIXEL_KEYS, attribute_info
from ..scoring.attributes import DEFAULT_ATTRIBUTES

if TYPE_CHECKING:
    from superqt import QCollapsible

# The rows every panel has, in the order of their groups; other attributes of a folder (CLIP-IQA+
# quality, the user's prompt pairs) get a row when the folder has them.
FIXED_KEYS: tuple[str, ...] = (*PIXEL_KEYS, *DEFAULT_ATTRIBUTES)
GROUPS: tuple[str, ...] = ("technical", "people", "look", "feel", "custom")
COLLAPSED: frozenset[str] = frozenset({"feel"})  # open by default: the flags and the look


def short_label(key: str) -> str:
    """The row's name inside its group: the registry's label without the group's engine
    ('Sharpness (CLIP-IQA)' reads 'Sharpness' under 'Look (CLIP-IQA)')."""
    label = attribute_info(key).label
    return label.removesuffix(" (CLIP-IQA)")


class RangeRow(QWidget):
    """One attribute's range on one labelled range slider, in the units a photographer reads:
    scores 0..1, fractions of pixels in % (0..100), counts as integers 0..the shoot's maximum,
    and in relative mode percentiles of the shoot 0..100. `range()` and `set_range()` speak the
    data's units (fractions 0..1) or percentiles."""

    changed = Signal()

    def __init__(self, key: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from superqt import QLabeledDoubleRangeSlider

        self.key = key
        self.info = attribute_info(key)
        self.relative = False
        self.relative_to = "this shoot"  # what the percentiles are of, as the panel's combo says it
        self.count_max = 1.0
        self.reason: str | None = None  # why the attribute has no value here (row disabled)
        self.slider = QLabeledDoubleRangeSlider(Qt.Orientation.Horizontal)
        self.slider.setHandleLabelPosition(QLabeledDoubleRangeSlider.LabelPosition.NoLabel)
        self.slider.setEdgeLabelMode(QLabeledDoubleRangeSlider.EdgeLabelMode.LabelIsValue)
        self.slider.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # keep culling keys for the grid
        for child in self.slider.findChildren(QWidget):
            child.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.slider.valueChanged.connect(self._moved)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.slider)
        self.name = QLabel()
        self._configure()
        self.slider.setValue((self._low_end, self._high_end))
        self._update_tooltip()

    # --- units ----------------------------------------------------------------------------------
    @property
    def _scale(self) -> float:
        """Slider units per data unit: fractions are shown in %."""
        return 100.0 if self.info.kind == "fraction" and not self.relative else 1.0

    @property
    def _low_end(self) -> float:
        return 0.0

    @property
    def _high_end(self) -> float:
        if self.relative:
            return 100.0
        if self.info.kind == "count":
            return self.count_max
        return 1.0 * self._scale

    def _configure(self) -> None:
        kind = "relative" if self.relative else self.info.kind
        decimals, step = {"relative": (0, 1.0), "count": (0, 1.0), "fraction": (1, 0.1)}.get(kind, (2, 0.01))
        self.slider.blockSignals(True)
        # superqt's stubs say int; the double slider takes floats (its own docs and tests do)
        self.slider.setRange(self._low_end, self._high_end)  # type: ignore[arg-type]
        self.slider.setDecimals(decimals)
        self.slider.setSingleStep(step)  # type: ignore[arg-type]
        self.slider.setPageStep(step * 10)  # type: ignore[arg-type]
        self.slider.blockSignals(False)
        unit = " (%)" if kind == "fraction" else " (percentile)" if kind == "relative" else ""
        self.name.setText(short_label(self.key) + unit)

    def _update_tooltip(self) -> None:
        info = self.info
        scale = f"percentiles of {self.relative_to}, " if self.relative else ""
        text = f"{info.help}\n{scale}{info.scale}"
        if self.reason:
            text += f"\nNot available here: {self.reason}"
        self.setToolTip(text)
        self.name.setToolTip(text)

    # --- values ---------------------------------------------------------------------------------
    def _moved(self, _value: object = None) -> None:
        self.changed.emit()

    def _positions(self) -> tuple[float, float]:
        lo, hi = self.slider.value()
        span = (self._high_end - self._low_end) or 1.0
        return (lo - self._low_end) / span, (hi - self._low_end) / span

    def _set_positions(self, lo: float, hi: float) -> None:
        span = self._high_end - self._low_end
        self._set_slider(self._low_end + lo * span, self._low_end + hi * span)

    def _set_slider(self, lo: float, hi: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue((lo, hi))
        self.slider.blockSignals(False)

    def range(self) -> tuple[float, float]:
        lo, hi = self.slider.value()
        if self.relative:
            return float(lo), float(hi)
        if self.info.kind == "count":
            return float(round(lo)), float(round(hi))
        return lo / self._scale, hi / self._scale

    def is_full(self) -> bool:
        lo, hi = self._positions()
        return lo <= 1e-9 and hi >= 1.0 - 1e-9

    def set_range(self, lo: float, hi: float) -> None:
        """In the data's units (fractions 0..1), or percentiles when relative."""
        self._set_slider(lo * self._scale, hi * self._scale)

    def reset(self) -> None:
        self._set_slider(self._low_end, self._high_end)

    def set_relative(self, relative: bool) -> None:
        """Switch units, keeping the handles where they are on the track."""
        positions = self._positions()
        self.relative = relative
        self._configure()
        self._set_positions(*positions)
        self._update_tooltip()

    def set_count_maximum(self, maximum: float) -> None:
        """A count's track ends at the shoot's maximum (at least 1); a handle at the end stays there."""
        top = float(max(1, math.ceil(maximum))) if math.isfinite(maximum) else 1.0
        if self.info.kind != "count" or top == self.count_max:
            return
        lo, hi = self.slider.value()
        at_end = hi >= self._high_end - 1e-9
        self.count_max = top
        if self.relative:
            return
        self._configure()
        self._set_slider(min(lo, top), top if at_end else min(hi, top))

    def set_reason(self, reason: str | None) -> None:
        """Disable the row (with the reason on hover) when the folder has no value for it."""
        self.reason = reason
        self.setEnabled(reason is None)
        self.name.setEnabled(reason is None)
        self._update_tooltip()


class FilterPanel(QWidget):
    changed = Signal(object)  # FilterState
    prompt_requested = Signal(str, str)  # positive, negative

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumWidth(320)
        outer = QVBoxLayout(self)
        self.count_label = QLabel("no folder open")
        self.count_label.setWordWrap(True)
        self.count_label.setObjectName("countLabel")
        outer.addWidget(self.count_label)

        presets = QGroupBox("Find")
        presets.setToolTip("Each preset matches any of its conditions; several presets: all of them.")
        grid = QGridLayout(presets)
        self.preset_buttons: dict[str, QPushButton] = {}
        self.preset_reasons: dict[str, str] = {}  # preset -> why it is disabled
        for i, preset in enumerate(PRESETS):
            b = QPushButton(preset.name)
            b.setCheckable(True)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.setToolTip(preset.explain())
            b.toggled.connect(lambda _checked: self.emit_state())
            grid.addWidget(b, i // 2, i % 2)
            self.preset_buttons[preset.name] = b
        clear = QPushButton("Show all")
        clear.setToolTip("Clear every preset, range and decision filter.")
        clear.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        clear.clicked.connect(self.clear)
        grid.addWidget(clear, len(PRESETS) // 2, len(PRESETS) % 2)
        outer.addWidget(presets)

        self.relative = QCheckBox("ranges in percentiles of")
        self.relative.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.relative.setToolTip(
            "Ranges and the CLIP-IQA presets in percentiles of this shoot's values, or of each "
            "photo's own burst or scene (pixel-measure presets keep their absolute meaning)."
        )
        self.relative.toggled.connect(self._relative_toggled)
        # of what: the shoot, or the photo's burst (near-duplicates) or scene (culling/groups.py)
        self.relative_to = QComboBox()
        for text, key in (("this shoot", "shoot"), ("its burst", "burst"), ("its scene", "scene")):
            self.relative_to.addItem(text, key)
        self.relative_to.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.relative_to.setToolTip(
            "Relative to the burst: each photo is compared with the other frames of its burst "
            "(0 = the burst's worst, 100 = its best), not with the whole shoot."
        )
        self.relative_to.currentIndexChanged.connect(self._relative_to_changed)
        relative_row = QHBoxLayout()
        relative_row.addWidget(self.relative)
        relative_row.addWidget(self.relative_to, 1)
        outer.addLayout(relative_row)

        self._groups: dict[str, QCollapsible] = {}
        self._forms: dict[str, QFormLayout] = {}
        self._ranges: dict[str, RangeRow] = {}
        self._columns: tuple[list[str], Mapping[str, str], Mapping[str, float]] | None = None
        self._build_scheduled = False
        self._ranges_area = QWidget()
        self._ranges_layout = QVBoxLayout(self._ranges_area)
        self._ranges_layout.setContentsMargins(0, 0, 0, 0)
        self._loading = QLabel("Range sliders …")
        self._ranges_layout.addWidget(self._loading)
        outer.addWidget(self._ranges_area)

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

    # --- the range sliders, built after the first paint ----------------------------------------------
    @property
    def ranges(self) -> dict[str, RangeRow]:
        self.build_ranges()
        return self._ranges

    @property
    def groups(self) -> dict[str, QCollapsible]:
        self.build_ranges()
        return self._groups

    @property
    def built(self) -> bool:
        """Whether the range sliders exist yet (see the module docstring)."""
        return bool(self._groups)

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if not self.built and not self._build_scheduled:  # after this paint pass: the grid is shown
            self._build_scheduled = True
            QTimer.singleShot(0, self, self.build_ranges)  # not after the panel is gone

    def build_ranges(self) -> None:
        """Build the grouped range sliders (once); the folder's columns, if already known, apply."""
        if self.built:
            return
        from superqt import QCollapsible

        container = QWidget()
        column = QVBoxLayout(container)
        column.setContentsMargins(0, 0, 0, 0)
        for group in GROUPS:
            section = QCollapsible(GROUP_TITLES[group])
            section.toggleButton().setFocusPolicy(Qt.FocusPolicy.NoFocus)
            section_layout = section.layout()
            if section_layout is not None:  # folded sections take one line, not a line and a gap
                section_layout.setContentsMargins(0, 0, 0, 0)
                section_layout.setSpacing(2)
            body = QWidget()
            form = QFormLayout(body)
            form.setContentsMargins(0, 0, 0, 6)
            form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapAllRows)  # names above: long tracks
            form.setVerticalSpacing(2)
            section.addWidget(body)
            self._groups[group] = section
            self._forms[group] = form
            column.addWidget(section)
        for key in FIXED_KEYS:
            self._add_row(key)
        self._groups["custom"].setVisible(False)  # until the folder has a prompt pair
        if self._columns is not None:
            self._apply_columns(*self._columns)
        self._loading.hide()
        self._ranges_layout.addWidget(container)
        for group, section in self._groups.items():
            if group in COLLAPSED:
                section.collapse(animate=False)
            else:
                section.expand(animate=False)
        # once more when the new rows are shown and laid out: an open section takes its content's
        # height, which rows not yet shown do not count
        QTimer.singleShot(0, self, self._refit)

    def _refit(self) -> None:
        for section in self._groups.values():
            if section.isExpanded():
                section.expand(animate=False)

    def _add_row(self, key: str) -> RangeRow:
        row = RangeRow(key)
        row.relative_to = self.relative_to.currentText()
        if self.relative.isChecked():
            row.set_relative(True)
        row.changed.connect(self._emit_soon)
        group = attribute_info(key).group
        self._forms[group].addRow(row.name, row)
        self._ranges[key] = row
        return row

    # --- what the folder has ----------------------------------------------------------------------
    def set_columns(
        self, attributes: Iterable[str], unavailable: Mapping[str, str], maxima: Mapping[str, float]
    ) -> None:
        """Follow the open folder: a row for each of its attributes (CLIP-IQA+ and prompt pairs
        appear, another folder's prompt pairs go), rows and presets without values disabled with
        the reason on hover (their filter cleared: a filter on nothing would hide every photo),
        and each count's track up to the shoot's maximum. Emits (soon) when a filter had to be cleared."""
        present = list(attributes)
        self._columns = (present, dict(unavailable), dict(maxima))
        cleared = self._apply_columns(present, unavailable, maxima) if self.built else False
        for preset in PRESETS:
            cleared |= self._set_preset_availability(preset, unavailable)
        if cleared:
            self._emit_soon()  # not from inside the session's event that brought the columns

    def _apply_columns(
        self, present: list[str], unavailable: Mapping[str, str], maxima: Mapping[str, float]
    ) -> bool:
        cleared = False
        for key in present:
            if key not in self._ranges:
                self._add_row(key)
        for key, row in self._ranges.items():
            extra = key not in FIXED_KEYS
            shown = not extra or key in present
            row.setVisible(shown)
            row.name.setVisible(shown)
            reason = unavailable.get(key) if shown else "not in this folder"
            if reason is not None and not row.is_full():
                row.reset()
                cleared = True
            row.set_reason(reason)
            if key in maxima:
                row.set_count_maximum(maxima[key])
        self._groups["custom"].setVisible(any(not r.isHidden() for r in self._rows_of("custom")))
        return cleared

    def _rows_of(self, group: str) -> list[RangeRow]:
        return [r for r in self._ranges.values() if r.info.group == group]

    def _set_preset_availability(self, preset: Preset, unavailable: Mapping[str, str]) -> bool:
        button = self.preset_buttons[preset.name]
        missing = [a for a in preset.attributes if a in unavailable]
        lines = [f"{attribute_info(a).label}: {unavailable[a]}" for a in missing]
        tip = preset.explain()
        cleared = False
        if missing and len(missing) == len(preset.attributes):
            self.preset_reasons[preset.name] = "; ".join(unavailable[a] for a in dict.fromkeys(missing))
            tip += "\nNot available here — " + "; ".join(lines)
            if button.isChecked():
                button.blockSignals(True)
                button.setChecked(False)
                button.blockSignals(False)
                cleared = True
            button.setEnabled(False)
        else:
            self.preset_reasons.pop(preset.name, None)
            if missing:
                tip += "\nWithout (not measured here) — " + "; ".join(lines)
            button.setEnabled(True)
        button.setToolTip(tip)
        return cleared

    # --- the state ----------------------------------------------------------------------------------
    def state(self) -> FilterState:
        ranges = {k: r.range() for k, r in self._ranges.items() if r.isEnabled() and not r.is_full()}
        presets = frozenset(n for n, b in self.preset_buttons.items() if b.isChecked() and b.isEnabled())
        flags = frozenset(n for n, cb in self.flags.items() if cb.isChecked())
        label = self.label.currentText() if self.label.currentIndex() > 0 else None
        return FilterState(
            ranges=ranges,
            relative=self.relative.isChecked(),
            relative_to=str(self.relative_to.currentData()),
            presets=presets,
            flags=flags,
            min_rating=self.min_rating.currentIndex(),
            label=label,
        )

    def emit_state(self) -> None:
        self._timer.stop()
        self.changed.emit(self.state())

    def _emit_soon(self) -> None:
        self._timer.start()

    def _relative_toggled(self, relative: bool) -> None:
        for r in self._ranges.values():
            r.set_relative(relative)
        self.emit_state()

    def _relative_to_changed(self, _index: int) -> None:
        """The tooltips say what the percentiles are of: this shoot, its burst or its scene."""
        for r in self._ranges.values():
            r.relative_to = self.relative_to.currentText()
            r._update_tooltip()
        self._emit_soon()

    def clear(self) -> None:
        for b in self.preset_buttons.values():
            b.blockSignals(True)
            b.setChecked(False)
            b.blockSignals(False)
        for r in self._ranges.values():
            r.reset()
        for cb in self.flags.values():
            cb.blockSignals(True)
            cb.setChecked(False)
            cb.blockSignals(False)
        for box in (self.min_rating, self.label):
            box.blockSignals(True)
            box.setCurrentIndex(0)
            box.blockSignals(False)
        self.emit_state()

    def _prompt(self) -> None:
        pos, neg = self.positive.text().strip(), self.negative.text().strip()
        if not pos or not neg or pos == neg:
            self.prompt_status.setText("Type two different descriptions, e.g. “Eyes closed.” / “Eyes open.”")
            return
        self.prompt_status.setText("Scoring from the stored embeddings …")
        self.prompt_requested.emit(pos, neg)
