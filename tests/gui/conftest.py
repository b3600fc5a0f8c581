"""pytest-qt fixtures: an isolated QSettings store, a shoot on disk, a window, and a thread-leak check."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QCoreApplication, QObject, QSettings, Slot

from clipiqa_desktop.catalog import Catalog
from clipiqa_desktop.gui import workers
from clipiqa_desktop.gui.settings import AppSettings

from ..conftest import TINY_RN, photo


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, qapp):
    QCoreApplication.setOrganizationName("clipiqa-desktop-tests")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    yield


@pytest.fixture(autouse=True)
def no_thread_left_running(qapp):
    """Fail a test that leaves one of our worker QThreads running (napari's habit)."""
    yield
    running = [t for t in list(workers.live_threads) if t.isRunning()]
    for t in running:
        t.quit()
        t.wait(10_000)
    assert not running, f"{len(running)} worker thread(s) still running after the test"


@pytest.fixture
def shoot(tmp_path):
    folder = tmp_path / "shoot"
    folder.mkdir()
    for i in range(12):
        photo(240, 160, seed=i).save(folder / f"IMG_{i:04d}.jpg", quality=90)
    (folder / "IMG_9999.jpg").write_bytes(b"\xff\xd8\xff not really")
    return folder


@pytest.fixture
def settings(catalog_address):
    """The window's settings: the tiny model on the CPU, and the test's catalog (a file, or for
    modules marked both_backends also a PostgreSQL database)."""
    return AppSettings(
        model=str(TINY_RN),
        pretrained="none",
        device="cpu",
        precision="fp32",
        engine="torch",
        size="128",
        catalog=str(catalog_address),
    )


@pytest.fixture
def catalog(settings):
    cat = Catalog(settings.catalog_location)
    yield cat
    cat.close()


@pytest.fixture
def window(qtbot, settings, catalog):
    from clipiqa_desktop.gui.main_window import MainWindow

    w = MainWindow(settings, catalog, persist=False)
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()


class Recorder(QObject):
    """Records a worker's signals on the GUI thread (its slots are QObject slots, so cross-thread
    emissions are queued here, as they are for the window)."""

    def __init__(self, worker) -> None:
        super().__init__()
        self.events: list[tuple] = []
        for name in ("started", "progress", "batch", "finished", "failed", "weights_missing"):
            signal = getattr(worker, name, None)
            if signal is not None:
                signal.connect(getattr(self, f"on_{name}"))

    @property
    def names(self) -> list[str]:
        return [e[0] for e in self.events]

    @property
    def ended(self) -> bool:
        return any(n in ("finished", "failed", "weights_missing") for n in self.names)

    @Slot()
    def on_started(self):
        self.events.append(("started",))

    @Slot(int, int, float, float)
    def on_progress(self, done, total, rate, eta):
        self.events.append(("progress", done, total))

    @Slot(list)
    def on_batch(self, ids):
        self.events.append(("batch", list(ids)))

    @Slot(object)
    def on_finished(self, summary):
        self.events.append(("finished", summary))

    @Slot(str)
    def on_failed(self, message):
        self.events.append(("failed", message))

    @Slot(str)
    def on_weights_missing(self, message):
        self.events.append(("weights_missing", message))
