"""Item model conformance and the worker's signals, order and cancel."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QObject, Qt

from clipiqa_desktop.culling.session import CullingSession, FilterState
from clipiqa_desktop.gui.photo_model import BadgeRole, DecisionRole, PhotoGridModel
from clipiqa_desktop.gui.thumbnails import ThumbnailCache
from clipiqa_desktop.gui.workers import IndexWorker, ScorerHolder, start_in_thread
from clipiqa_desktop.indexing.pipeline import IndexOptions, index_folder
from clipiqa_desktop.scoring import ClipIqaScorer, ModelSpec

from ..conftest import TINY_RN, photo
from .conftest import Recorder


def _indexed(catalog, folder):
    scorer = ClipIqaScorer.load(ModelSpec(str(TINY_RN), "none"), "cpu", "fp32", "torch")
    index_folder(catalog, scorer, folder, IndexOptions(long_side=128, batch_size=4))
    return CullingSession(catalog, folder)


def test_photo_model_passes_qtmodeltester(qtmodeltester, catalog, shoot, qtbot):
    session = _indexed(catalog, shoot)
    thumbs = ThumbnailCache(catalog)
    model = PhotoGridModel(session, thumbs)
    qtmodeltester.check(model)
    session.set_sort("sharpness", True)
    model.view_changed()
    qtmodeltester.check(model)
    assert model.rowCount() == 13
    first = model.index(0)
    assert isinstance(model.data(first, BadgeRole), float)
    assert model.data(first, DecisionRole) == (0, False, None)
    model.data(first, 1)  # DecorationRole asks for the thumbnail; it arrives from a pool thread
    qtbot.waitUntil(lambda: model.data(first, 1) is not None, timeout=5000)
    assert model.data(first, 1).width() == 240  # the stored thumbnail (never upscaled)
    session.set_filters(FilterState(ranges={"sharpness": (0.0, 0.0)}))
    model.view_changed()
    qtmodeltester.check(model)
    assert model.rowCount() == 0
    thumbs.wait()


def test_empty_model_passes_qtmodeltester(qtmodeltester):
    qtmodeltester.check(PhotoGridModel(None, None))


def _run(qtbot, worker):
    recorder = Recorder(worker)
    parent = QObject()
    thread = start_in_thread(worker, parent)
    qtbot.waitUntil(lambda: recorder.ended, timeout=120_000)  # the child process imports torch
    thread.quit()  # as the window does: the thread's own quit may still be queued on this thread
    assert thread.wait(10_000)
    return recorder


def test_index_worker_signals_in_order(qtbot, catalog, settings, shoot):
    rec = _run(qtbot, IndexWorker(catalog, ScorerHolder(), settings, shoot))
    names = rec.names
    assert names[0] == "started" and names[-1] == "finished"
    assert names[1] == "progress" and rec.events[1][1:] == (0, 13)
    # every committed batch is followed by its progress report
    for i, n in enumerate(names):
        if n == "batch":
            assert names[i + 1] == "progress"
    summary = rec.events[-1][1]
    assert summary.indexed == 12 and len(summary.failed) == 1
    assert sum(len(e[1]) for e in rec.events if e[0] == "batch") == 13


def test_index_worker_cancel_stops_batches(qtbot, catalog, settings, tmp_path):
    folder = tmp_path / "big"
    folder.mkdir()
    for i in range(40):
        photo(640, 480, seed=i).save(folder / f"P{i:03d}.jpg")
    worker = IndexWorker(catalog, ScorerHolder(), settings, folder)
    worker.batch.connect(worker.cancel, Qt.ConnectionType.DirectConnection)  # cancel at the first batch
    rec = _run(qtbot, worker)
    batches = [e for e in rec.events if e[0] == "batch"]
    summary = rec.events[-1][1]
    assert rec.names[-1] == "finished" and summary.cancelled
    # the child runs on while the cancel travels to it: the batches it committed meanwhile are
    # relayed (the window shows them), and the summary counts exactly those
    assert batches
    assert summary.indexed == sum(len(b[1]) for b in batches) < 40


def test_missing_weights_are_reported_as_a_signal(qtbot, catalog, settings, shoot, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    worker = IndexWorker(catalog, ScorerHolder(), replace(settings, model="RN50", pretrained="openai"), shoot)
    rec = _run(qtbot, worker)
    assert rec.names[-1] == "weights_missing"
    assert "--weights FILE" in rec.events[-1][1]
