"""Dialogs: settings, missing CLIP weights, and the list of photos that failed."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..scoring.constants import DEVICE_CHOICES, ENGINE_CHOICES, PRECISION_CHOICES
from .settings import AppSettings


def _file_row(edit: QLineEdit, title: str, filters: str, save: bool = False) -> QWidget:
    row = QWidget()
    lay = QHBoxLayout(row)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.addWidget(edit, 1)
    browse = QPushButton("Choose…")

    def pick() -> None:
        fn = QFileDialog.getSaveFileName if save else QFileDialog.getOpenFileName
        path, _ = fn(row, title, edit.text(), filters)
        if path:
            edit.setText(path)

    browse.clicked.connect(pick)
    lay.addWidget(browse)
    return row


class SettingsDialog(QDialog):
    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.settings = settings
        form = QFormLayout()
        self.model = QLineEdit(settings.model)
        self.pretrained = QLineEdit(settings.pretrained)
        self.weights = QLineEdit(settings.weights)
        self.weights.setPlaceholderText("download through open_clip (needs the internet once)")
        self.learned_prompts = QLineEdit(settings.learned_prompts)
        self.learned_prompts.setPlaceholderText("none (CLIP-IQA+ files are non-commercial: you supply one)")
        self.learned_prompts.setToolTip(
            "A CLIP-IQA+ learned-prompts file (.pth): indexing then also scores Quality+ (CLIP-IQA+), "
            "for photos indexed before too, from their stored embeddings."
        )
        self.device = QComboBox()
        self.device.addItems(list(DEVICE_CHOICES))
        self.device.setCurrentText(settings.device)
        self.precision = QComboBox()
        self.precision.addItems(list(PRECISION_CHOICES))
        self.precision.setCurrentText(settings.precision)
        self.engine = QComboBox()
        self.engine.addItems(list(ENGINE_CHOICES))
        self.engine.setCurrentText(settings.engine)
        self.engine.setToolTip(
            "What runs the image encoder on the CPU: onnx = ONNX Runtime (fp32), torch = PyTorch; "
            "auto = the faster of the two, timed once on this machine and remembered. GPUs use torch."
        )
        self.size_box = QComboBox()
        self.size_box.setEditable(True)
        self.size_box.addItems(["auto", "224", "512", "1024", "full"])
        self.size_box.setCurrentText(settings.size)
        self.catalog = QLineEdit(str(settings.catalog_location))
        self.catalog.setToolTip(
            "A catalog file, or a studio's shared PostgreSQL catalog: postgresql://USER@HOST/DATABASE "
            "(the [studio] extra). Takes effect at the next start."
        )
        self.cache_mb = QSpinBox()
        self.cache_mb.setRange(16, 65536)
        self.cache_mb.setSuffix(" MB")
        self.cache_mb.setValue(settings.thumb_cache_mb)
        self.sidecar_naming = QComboBox()
        self.sidecar_naming.addItem("IMG_0001.CR3.xmp (darktable, digiKam)", "darktable")
        self.sidecar_naming.addItem("IMG_0001.xmp (Lightroom, Capture One)", "adobe")
        self.sidecar_naming.setCurrentIndex(max(0, self.sidecar_naming.findData(settings.sidecar_naming)))
        self.reject_as = QComboBox()
        self.reject_as.addItem("Rating −1 (the XMP standard; darktable, Bridge)", "rating")
        self.reject_as.addItem("1 star (for Lightroom)", "one-star")
        self.reject_as.addItem("Purple label (for Lightroom)", "label")
        self.reject_as.setCurrentIndex(max(0, self.reject_as.findData(settings.reject_as)))
        self.write_sidecars = QCheckBox("Write XMP sidecars as I cull")
        self.write_sidecars.setChecked(settings.write_sidecars)
        form.addRow("Model (open_clip)", self.model)
        form.addRow("Pretrained tag", self.pretrained)
        form.addRow(
            "Weights file", _file_row(self.weights, "CLIP weights", "Checkpoints (*.pt *.bin *.safetensors)")
        )
        form.addRow(
            "Learned prompts",
            _file_row(self.learned_prompts, "CLIP-IQA+ learned prompts", "PyTorch files (*.pth *.pt)"),
        )
        form.addRow("Device", self.device)
        form.addRow("Precision", self.precision)
        form.addRow("CPU engine", self.engine)
        form.addRow("Analysis size", self.size_box)
        form.addRow("Catalog", _file_row(self.catalog, "Catalog file", "SQLite (*.sqlite)", save=True))
        form.addRow("Thumbnail memory", self.cache_mb)
        form.addRow("XMP sidecar names", self.sidecar_naming)
        form.addRow("A reject in XMP is", self.reject_as)
        form.addRow("", self.write_sidecars)
        note = QLabel(
            "Scores are stored per model and analysis size; changing either rescores on the next index."
        )
        note.setWordWrap(True)
        self.error = QLabel("")
        self.error.setStyleSheet("color: #e5484d")
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(note)
        lay.addWidget(self.error)
        lay.addWidget(buttons)

    def _accept(self) -> None:
        size = self.size_box.currentText().strip().lower()
        if size not in ("auto", "full") and not (size.isdigit() and 32 <= int(size) <= 16384):
            self.error.setText("Analysis size must be auto, full or a pixel count between 32 and 16384.")
            return
        engine, precision, device = (
            self.engine.currentText(),
            self.precision.currentText(),
            self.device.currentText(),
        )
        if engine == "onnx" and precision in ("bf16", "fp16"):
            self.error.setText(
                "The ONNX engine runs in fp32: choose precision auto or fp32, "
                f"or the torch engine for {precision}."
            )
            return
        if engine == "onnx" and device in ("cuda", "mps"):
            self.error.setText(
                "The ONNX engine runs on the CPU: choose device cpu or auto, or the torch engine for the GPU."
            )
            return
        learned = self.learned_prompts.text().strip()
        if learned and not Path(learned).expanduser().is_file():
            self.error.setText(f"The learned-prompts file {learned} does not exist.")
            return
        self.settings = replace(
            self.settings,
            model=self.model.text().strip() or "RN50",
            pretrained=self.pretrained.text().strip() or "openai",
            weights=self.weights.text().strip(),
            learned_prompts=learned,
            device=self.device.currentText(),
            precision=self.precision.currentText(),
            engine=self.engine.currentText(),
            size=size,
            catalog=self.catalog.text().strip(),
            thumb_cache_mb=self.cache_mb.value(),
            sidecar_naming=str(self.sidecar_naming.currentData()),
            reject_as=str(self.reject_as.currentData()),
            write_sidecars=self.write_sidecars.isChecked(),
        )
        self.accept()

    def edited(self, shown: AppSettings) -> dict[str, object]:
        """The fields the user changed from what the dialog showed (`shown`), as replace() keywords.
        Only these are saved: a value that came from the command line and was left alone holds for
        this run only."""
        out: dict[str, object] = {}
        for f in fields(AppSettings):
            new, old = getattr(self.settings, f.name), getattr(shown, f.name)
            if (
                f.name == "catalog"
                and replace(shown, catalog=str(new)).catalog_location == shown.catalog_location
            ):
                continue
            if new != old:
                out[f.name] = new
        return out

    @staticmethod
    def _same_catalog(typed: str, shown: AppSettings) -> bool:
        """The catalog field names the catalog shown (the default written out, ~ expanded)."""
        return replace(shown, catalog=typed).catalog_location == shown.catalog_location


class WeightsDialog(QDialog):
    """Missing CLIP weights: pick a file, download now (when online), measure without CLIP for
    this session (focus, exposure, faces need no weights), or cancel."""

    PICK, DOWNLOAD, WITHOUT_CLIP = 10, 11, 12

    def __init__(self, message: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("CLIP weights needed")
        self.weights_file = ""
        text = QLabel(
            "<p>Scoring needs the CLIP model's weights, and they are not on this computer.</p>"
            "<ul><li><b>Choose a file</b> you already have "
            "(OpenAI's RN50.pt, or an open_clip checkpoint).</li>"
            "<li><b>Download now</b>: about 400 MB, once; needs the internet.</li>"
            "<li><b>Without CLIP</b>: measure focus, exposure and faces now (no weights needed); "
            "the CLIP-IQA scores come when you index again with the weights.</li>"
            "<li><b>Cancel</b>: browse the catalog without scoring.</li></ul>"
        )
        text.setWordWrap(True)
        detail = QLabel(message)
        detail.setWordWrap(True)
        detail.setStyleSheet("color: #888")
        pick = QPushButton("Choose a file…")
        pick.clicked.connect(self._pick)
        download = QPushButton("Download now")
        download.clicked.connect(lambda: self.done(self.DOWNLOAD))
        without = QPushButton("Without CLIP")
        without.setToolTip("This session only: focus, exposure and faces, measured from the pixels")
        without.clicked.connect(lambda: self.done(self.WITHOUT_CLIP))
        cancel = QPushButton("Cancel")
        cancel.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        for b in (pick, download, without, cancel):
            buttons.addWidget(b)
        lay = QVBoxLayout(self)
        lay.addWidget(text)
        lay.addWidget(detail)
        lay.addLayout(buttons)

    def _pick(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "CLIP weights", "", "Checkpoints (*.pt *.bin *.safetensors)"
        )
        if path:
            self.weights_file = path
            self.done(self.PICK)


class FailedDialog(QDialog):
    """Every photo that could not be scored, and why."""

    def __init__(self, failures: list[tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"{len(failures)} photos could not be scored")
        table = QTableWidget(len(failures), 2)
        table.setHorizontalHeaderLabels(["Photo", "Reason"])
        for i, (path, reason) in enumerate(failures):
            table.setItem(i, 0, QTableWidgetItem(path))
            table.setItem(i, 1, QTableWidgetItem(reason))
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(table)
        lay.addWidget(buttons)
        self.resize(800, 400)
