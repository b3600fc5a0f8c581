"""The loupe's flags, offscreen: F paints focus peaking where the photo is sharp (at fit and at
100 %), a histogram with clipping marks, and the pixel measures' reasons under readable names."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
from PIL import Image, ImageFilter
from PySide6.QtCore import QObject, QRectF, Slot
from PySide6.QtGui import QCursor, QImage
from PySide6.QtWidgets import QLabel

from clipiqa_desktop.gui.histogram import MARK_RED
from clipiqa_desktop.gui.loupe import LoupeView
from clipiqa_desktop.measures.registry import HIGHLIGHTS_BLOWN, SHADOWS_CRUSHED


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Real photographs: scikit-image's camera man (a gray photo, so every coloured pixel on screen is
    the overlay) twice side by side, then twice blurred with σ 4 px: 2048 × 512, sharp on the
    left half only. The camera man 8 × 6 times (12 MP). A flat gray frame of another size; the
    coffee cup pushed +2 EV (blown highlights, no black) and the astronaut as it is (under 2 % clipped
    white, over 5 % black)."""
    from skimage import data

    folder = tmp_path_factory.mktemp("loupe")
    cam = Image.fromarray(data.camera()).convert("RGB")
    blurred = cam.filter(ImageFilter.GaussianBlur(4))
    half = Image.new("RGB", (2048, 512))
    for i, tile in enumerate((cam, cam, blurred, blurred)):
        half.paste(tile, (512 * i, 0))
    half.save(folder / "half.png")
    Image.new("RGB", (640, 480), (120, 120, 120)).save(folder / "flat.png")
    big = Image.new("RGB", (4096, 3072))  # 12 MP of the camera man: a map that takes a while
    for i in range(8 * 6):
        big.paste(cam, (512 * (i % 8), 512 * (i // 8)))
    big.save(folder / "big.jpg", quality=90)
    bright = np.clip(data.coffee().astype(np.float32) * 4, 0, 255).astype(np.uint8)
    Image.fromarray(bright).save(folder / "bright.jpg", quality=92)
    Image.fromarray(data.astronaut()).save(folder / "astronaut.jpg", quality=92)
    return folder


@pytest.fixture
def loupe(qtbot):
    view = LoupeView()
    qtbot.addWidget(view)
    view.resize(1100, 700)
    view.show()
    qtbot.waitExposed(view)
    yield view
    view.wait()


def _show(qtbot, loupe, path, scores=None):
    loupe.show_photo(str(path), scores or {}, [], "ok", None)
    qtbot.waitUntil(lambda: not loupe.view.item.pixmap().isNull(), timeout=20_000)


def _array(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w = image.height(), image.width()
    data = np.frombuffer(image.constBits(), np.uint8, count=image.bytesPerLine() * h)
    return data.reshape(h, image.bytesPerLine())[:, : 3 * w].reshape(h, w, 3).copy()  # image is freed


def _marked(pixels: np.ndarray) -> int:
    """Pixels of the peaking colour, magenta (the photos under it are gray)."""
    r, g, b = (pixels[..., c].astype(int) for c in range(3))
    return int(np.count_nonzero((r - g > 120) & (b - g > 120)))


def _marked_in(loupe, screen: np.ndarray, scene_rect: QRectF) -> tuple[int, int]:
    """Marked pixels inside the part of `scene_rect` on screen, and that part's area."""
    rect = loupe.view.mapFromScene(scene_rect).boundingRect().intersected(loupe.view.viewport().rect())
    if rect.isEmpty():
        return 0, 0
    part = screen[rect.top() : rect.bottom() + 1, rect.left() : rect.right() + 1]
    return _marked(part), part.shape[0] * part.shape[1]


def _peaking_drawn(qtbot, loupe) -> np.ndarray:
    qtbot.waitUntil(lambda: loupe.view.overlay.isVisible(), timeout=30_000)
    qtbot.wait(50)
    return _array(loupe.view.viewport().grab().toImage())


def test_f_paints_peaking_on_the_sharp_half_only_at_fit_and_at_100(qtbot, loupe, photos):
    _show(qtbot, loupe, photos / "half.png")
    assert "F: focus peaking" in loupe.message.text()
    before = _array(loupe.view.viewport().grab().toImage())
    assert _marked(before) == 0, "no overlay before F"
    sharp, soft = QRectF(0, 0, 1024, 512), QRectF(1024 + 64, 0, 1024 - 64, 512)

    loupe.toggle_peaking()  # F, the window's action (tests/gui/test_window.py presses the key)
    assert loupe.peaking
    screen = _peaking_drawn(qtbot, loupe)
    assert "Focus peaking on — F" in loupe.message.text()
    assert loupe.view.fit and loupe.view.overlay_level >= 1, "at fit a pooled level of the map is drawn"
    marked_sharp, area_sharp = _marked_in(loupe, screen, sharp)
    marked_soft, _ = _marked_in(loupe, screen, soft)
    assert marked_sharp > 0.01 * area_sharp, (marked_sharp, area_sharp)
    assert marked_soft < 0.05 * marked_sharp, (marked_soft, marked_sharp)

    # Z zooms at the pointer: put it on the seam (another test may have left it anywhere)
    QCursor.setPos(loupe.view.viewport().mapToGlobal(loupe.view.viewport().rect().center()))
    loupe.toggle_zoom()  # 100 %
    assert not loupe.view.fit and loupe.view.overlay_level == 0
    screen = _peaking_drawn(qtbot, loupe)
    marked_sharp, area_sharp = _marked_in(loupe, screen, sharp)
    marked_soft, area_soft = _marked_in(loupe, screen, soft)
    assert area_sharp > 0 and area_soft > 0, "100 % centred on the seam shows both halves"
    assert marked_sharp > 0.01 * area_sharp and marked_soft < 0.05 * marked_sharp, (marked_sharp, marked_soft)

    loupe.toggle_peaking()  # off again: nothing drawn, the state says so
    assert not loupe.view.overlay.isVisible() and "F: focus peaking" in loupe.message.text()
    qtbot.wait(50)
    assert _marked(_array(loupe.view.viewport().grab().toImage())) == 0


class _Events(QObject):
    """The loupe's job results in the order the GUI thread receives them, each with what the view
    holds just after the loupe's own slot saw it (connected after it, so called after it)."""

    def __init__(self, loupe) -> None:
        super().__init__()
        self.loupe, self.events, self.pixels = loupe, [], []
        loupe._signals.loaded.connect(self.on_loaded)
        loupe._signals.peaked.connect(self.on_peaked)

    @Slot(int, str, object, str)
    def on_loaded(self, generation, path, decoded, error):
        self.events.append(("loaded", generation))
        if decoded is not None:
            self.pixels.append(weakref.ref(decoded.rgb))

    @Slot(int, object, str)
    def on_peaked(self, generation, levels, error):
        shown = self.loupe.view.peaking_levels
        self.events.append(
            (
                "peaked",
                generation,
                None if levels is None else levels[0].shape,
                shown[0].shape if shown else None,
            )
        )


def test_a_stale_map_is_dropped(qtbot, loupe, photos):
    events = _Events(loupe)
    _show(qtbot, loupe, photos / "half.png")
    half = loupe._generation
    loupe.toggle_peaking()  # F after the decode: the peaking thread decodes the photo again
    # the map is finished while the GUI thread is held here, so its result is still queued when
    # the user steps on: the drop is exercised every time, not only when the map is slow
    assert loupe.peak_pool.waitForDone(30_000)
    _show(qtbot, loupe, photos / "flat.png")
    screen = _peaking_drawn(qtbot, loupe)
    assert ("peaked", half, (512, 2048), None) in events.events, "the stale map arrived and was not shown"
    assert loupe.view.peaking_levels[0].shape == (480, 640), "the map is the flat photo's"
    assert _marked(screen) == 0, "a flat photo has nothing in focus"
    assert "Focus peaking on — F" in loupe.message.text()


def test_a_slow_stale_map_does_not_delay_the_next_photo(qtbot, loupe, photos):
    events = _Events(loupe)
    loupe.toggle_peaking()
    _show(qtbot, loupe, photos / "big.jpg")  # 12 MP: its map takes about a second
    big = loupe._generation
    assert loupe._peaking_state == "measuring" and loupe.peak_pool.activeThreadCount() == 1
    _show(qtbot, loupe, photos / "flat.png")  # stepped on while the big map runs
    flat = loupe._generation
    _peaking_drawn(qtbot, loupe)
    loupe.wait(30_000)
    qtbot.wait(20)
    names = [e[:2] for e in events.events]
    assert ("peaked", big) in names, "the big photo's map was started and ended"
    assert ("loaded", flat) in names, "the next photo appears"
    # The map of the photo left behind never delays the next one: decodes and maps have pools of
    # their own, and the stale job ends at its next check (between steps) without making the
    # pyramid. Which of "next photo loaded" and "stale job ended" comes first is a race either
    # way (a quiet machine reaches the check before the small PNG is shown); both are fine.
    stale = events.events[names.index(("peaked", big))]
    assert stale[2] is None, "the stale job ended at its next check instead of making the pyramid"
    assert loupe.view.peaking_levels[0].shape == (480, 640)


def test_pixels_are_not_kept_and_only_the_part_on_screen_is_coloured(qtbot, loupe, photos):
    events = _Events(loupe)
    _show(qtbot, loupe, photos / "half.png")  # F off: the decoded pixels are let go
    loupe.toggle_peaking()
    _peaking_drawn(qtbot, loupe)
    loupe.toggle_zoom()  # 100 %
    _peaking_drawn(qtbot, loupe)
    loupe.wait()
    qtbot.wait(20)
    gc.collect()
    assert events.pixels and all(ref() is None for ref in events.pixels), "no full-size RGB array is held"
    levels = loupe.view.peaking_levels
    assert all(level.dtype == bool for level in levels) and levels[0].shape == (512, 2048)
    viewport = loupe.view.viewport().size()
    painted = loupe.view.overlay.painted
    assert 0 < painted[0] <= viewport.width() + 2 and 0 < painted[1] <= viewport.height() + 2, painted


def _corners(loupe) -> tuple[bool, bool]:
    """Whether the histogram's top-left / top-right corner holds the red mark colour."""
    loupe.histogram.repaint()
    hist = _array(loupe.histogram.grab().toImage())
    red = MARK_RED.getRgb()[:3]
    is_red = (hist[:12] == red).all(axis=2)
    return bool(is_red[:, :12].any()), bool(is_red[:, -12:].any())


def test_histogram_marks_clipping_in_red_above_the_preset_threshold(qtbot, loupe, photos):
    _show(qtbot, loupe, photos / "bright.jpg")
    h = loupe.histogram
    assert h.counts is not None and h.counts.sum(axis=1).tolist() == [400 * 600] * 4
    high, low = h.mark("highlights"), h.mark("shadows")
    assert high is not None and high.alarming and high.fraction > 0.3
    assert low is not None and not low.alarming
    assert _corners(loupe) == (False, True), "red at the highlights' end only"
    assert "Clipped white" in h.toolTip() and f"{high.fraction * 100:.1f} %" in h.toolTip()

    _show(qtbot, loupe, photos / "astronaut.jpg")
    high, low = h.mark("highlights"), h.mark("shadows")
    assert high is not None and low is not None
    assert not high.alarming and 0 < high.fraction < HIGHLIGHTS_BLOWN
    assert low.alarming and low.fraction >= SHADOWS_CRUSHED
    assert _corners(loupe) == (True, False), "red at the shadows' end only"


def test_the_marks_report_the_stored_shares_the_presets_use(qtbot, loupe, photos):
    """The index counts clipping on the analysis image; the marks must say what the presets and
    the reasons say, not a second, slightly different count of the full-size image."""
    loupe.show_photo(
        str(photos / "bright.jpg"), {"highlights_clipped": 0.015, "shadows_clipped": 0.07}, [], "ok", None
    )
    h = loupe.histogram
    ready = lambda: h.mark("highlights") is not None  # noqa: E731
    qtbot.waitUntil(ready, timeout=10_000)
    high, low = h.mark("highlights"), h.mark("shadows")
    assert high is not None and low is not None
    assert high.fraction == 0.015 and not high.alarming
    assert low.fraction == 0.07 and low.alarming
    assert "1.5 % of pixels clipped white" in loupe.pixels.text()


def test_reasons_and_readable_names_in_groups(qtbot, loupe, photos):
    scores = {
        "sharpness": 0.42,
        "focus": 0.21,
        "motion_blur": 0.7,
        "highlights_clipped": 0.048,
        "shadows_clipped": 0.0,
        "faces": 2.0,
        "eyes_closed": 1.0,
        "face_focus": 0.8,
    }
    loupe.show_photo(str(photos / "astronaut.jpg"), scores, [], "ok", None)
    text = loupe.pixels.text()
    assert "sharpest region 0.21: out of focus (motion blur)" in text
    assert "2 faces, 1 with eyes closed" in text
    assert "4.8 % of pixels clipped white" in text
    rows = []  # ("group", title) or (label, value text), top to bottom
    for i in range(loupe.bars.rowCount()):
        span = loupe.bars.itemAt(i, loupe.bars.ItemRole.SpanningRole)
        if span is not None:
            rows.append(("group", span.widget().text().replace("<b>", "").replace("</b>", "")))
            continue
        label = loupe.bars.itemAt(i, loupe.bars.ItemRole.LabelRole).widget()
        field = loupe.bars.itemAt(i, loupe.bars.ItemRole.FieldRole).widget()
        rows.append((label.text(), field.findChildren(QLabel)[0].text()))
    assert [t for kind, t in rows if kind == "group"] == ["Technical", "People", "Look (CLIP-IQA)"]
    values = dict(r for r in rows if r[0] != "group")
    assert values["Focus"] == "0.21" and values["Motion blur"] == "0.70"
    assert values["Blown highlights"] == "4.8 %" and values["Crushed shadows"] == "0.0 %"
    assert values["Faces"] == "2" and values["Eyes closed"] == "1"
    assert values["Sharpness"] == "0.42", "the group's title says (CLIP-IQA) once"
    assert not set(values) & set(scores), "no raw keys"
    # each group's rows under its header, the groups in the registry's order
    order = [t if kind == "group" else kind for kind, t in rows]
    assert order.index("Technical") < order.index("Focus") < order.index("People") < order.index("Faces")
    assert order.index("Faces") < order.index("Look (CLIP-IQA)") < order.index("Sharpness")
    loupe.wait()

    loupe.wait()
    loupe.show_photo(str(photos / "astronaut.jpg"), {"sharpness": 0.5}, [], "ok", None)
    assert "not measured yet" in loupe.pixels.text()
