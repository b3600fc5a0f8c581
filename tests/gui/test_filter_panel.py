"""The filter panel in the window: grouped range sliders with readable names, presets that combine
attributes and explain themselves, presets and rows without values disabled with the reason, and the
sort box's readable names. A catalog written directly (pixel measures + CLIP-IQA scores) is opened
as a session, so no model and no decode are needed (the window's indexer is kept from starting: it
would find no files there and mark the photos missing)."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from clipiqa_desktop.catalog import PhotoRecord
from clipiqa_desktop.culling.session import CullingSession
from clipiqa_desktop.imaging import PhotoMeta

FOCUS = [0.9, 0.1, 0.5, 0.25, 0.7, math.nan, 0.8, 0.6, 0.2, 0.4]  # NaN: not measured
HIGHLIGHTS = [0.0, 0.0, 0.05, 0.0, 0.0, 0.0, 0.0, 0.30, 0.0, 0.01]
SHARPNESS = [0.9, 0.1, 0.5, 0.3, 0.7, 0.05, 0.8, 0.6, 0.2, 0.4]


def _records(faces: bool) -> list[PhotoRecord]:
    out = []
    for i in range(10):
        scores = {
            "sharpness": SHARPNESS[i],
            "brightness": 0.5,
            "focus": FOCUS[i],
            "motion_blur": 0.2,
            "highlights_clipped": HIGHLIGHTS[i],
            "shadows_clipped": 0.0,
        }
        if faces:  # photos 0..3 have faces (3, 1, 2, 1); photo 1 and 2 have closed eyes
            n = [3, 1, 2, 1][i] if i < 4 else 0
            scores["faces"] = n
            scores["face_focus"] = [0.8, 0.2, 0.6, 0.7][i] if i < 4 else math.nan
            scores["eyes_closed"] = [0, 1, 1, 0][i] if i < 4 else math.nan
        out.append(
            PhotoRecord(
                f"IMG_{i}.jpg",
                1,
                1,
                fingerprint=f"{faces}{i}",
                scores={k: v for k, v in scores.items() if not math.isnan(v)},
                embedding=np.ones(4, np.float32) / 2,
                meta=PhotoMeta(),
            )
        )
    return out


def _open(window, catalog, folder, faces: bool = False) -> CullingSession:
    folder.mkdir()
    fid = catalog.folder_id(folder)
    aid = catalog.analysis_id("m", "512", 4, 100.0)
    catalog.write_batch(fid, aid, _records(faces))
    catalog.set_last_analysis(fid, aid)
    session = CullingSession(catalog, folder)
    window.ctx.set_session(session)
    return session


@pytest.fixture
def opened(qtbot, window, catalog, tmp_path, monkeypatch):
    monkeypatch.setattr(window.indexer, "start", lambda: None)
    session = _open(window, catalog, tmp_path / "measured")
    assert window.model.rowCount() == 10
    yield session
    session.close()


def _shown(window) -> list[str]:
    return sorted(window.session.table.names[r] for r in window.session.view)


def test_the_range_sliders_come_after_the_first_paint(qtbot):
    from clipiqa_desktop.gui.filter_panel import FilterPanel

    panel = FilterPanel()
    qtbot.addWidget(panel)
    assert not panel.built and panel.state().ranges == {}, "nothing of superqt before the window shows"
    panel.set_columns(["sharpness"], {"focus": "index the folder again to measure focus"}, {})
    assert not panel.preset_buttons["Out of focus"].isEnabled(), "presets follow the folder at once"
    panel.show()
    qtbot.waitUntil(lambda: panel.built, timeout=5000)
    assert not panel.ranges["focus"].isEnabled(), "the columns known before apply when it is built"
    assert panel.ranges["sharpness"].isEnabled()


def test_groups_readable_names_and_sort_box(window, opened):
    panel = window.filters
    titles = [panel.groups[g].text() for g in ("technical", "people", "look", "feel")]
    assert titles == ["Technical", "People", "Look (CLIP-IQA)", "Feel (CLIP-IQA)"]
    assert panel.ranges["focus"].name.text() == "Focus"
    assert panel.ranges["highlights_clipped"].name.text() == "Blown highlights (%)"
    assert panel.ranges["sharpness"].name.text() == "Sharpness"
    assert "native resolution" in panel.ranges["focus"].toolTip()
    assert panel.ranges["highlights_clipped"].slider.maximum() == 100.0, "fractions shown in %"
    assert not panel.groups["custom"].isVisible(), "no prompt pair in this folder yet"
    box = window.sort_box
    names = [box.itemText(i) for i in range(box.count())]
    assert {"Focus", "Blown highlights", "Sharpness (CLIP-IQA)", "Name", "Capture time"} <= set(names)
    assert "focus" not in names and "highlights_clipped" not in names
    box.set_current_key("focus")
    assert opened.sort_key == "focus" and box.currentText() == "Focus"
    assert [opened.table.names[r] for r in opened.view[:2]] == ["IMG_1.jpg", "IMG_8.jpg"]


def test_range_slider_filters_the_grid(qtbot, window, opened):
    row = window.filters.ranges["focus"]
    row.slider.setValue((0.0, 0.3))  # as a drag would
    qtbot.waitUntil(lambda: window.model.rowCount() == 3, timeout=2000)
    assert _shown(window) == ["IMG_1.jpg", "IMG_3.jpg", "IMG_8.jpg"], "the unmeasured photo never matches"
    assert opened.why(int(opened.view[0]))[0].startswith("Focus ")
    blown = window.filters.ranges["highlights_clipped"]
    row.reset()
    blown.slider.setValue((4.0, 100.0))  # percent on the slider, a fraction in the filter
    qtbot.waitUntil(lambda: window.model.rowCount() == 2, timeout=2000)
    assert opened.filters.ranges == {"highlights_clipped": (0.04, 1.0)}
    assert _shown(window) == ["IMG_2.jpg", "IMG_7.jpg"]
    window.filters.relative.setChecked(True)  # the handles stay put; the units become percentiles
    assert blown.range() == (4.0, 100.0) and blown.name.text() == "Blown highlights (percentile)"
    window.filters.clear()
    assert window.model.rowCount() == 10


def test_preset_click_filters_and_explains_itself(window, opened):
    buttons = window.filters.preset_buttons
    assert "Focus ≤ 0.30" in buttons["Out of focus"].toolTip()
    reject = buttons["Reject candidates"]
    assert "Focus ≤ 0.30 OR Eyes closed ≥ 1 OR Blown highlights ≥ 2.0 %" in reject.toolTip()
    buttons["Out of focus"].click()
    assert _shown(window) == ["IMG_1.jpg", "IMG_3.jpg", "IMG_8.jpg"]
    buttons["Out of focus"].click()
    reject.click()  # out of focus OR blown highlights (eyes are not measured here)
    assert _shown(window) == ["IMG_1.jpg", "IMG_2.jpg", "IMG_3.jpg", "IMG_7.jpg", "IMG_8.jpg"]
    row = opened.row_of(int(opened.table.ids[opened.table.names.index("IMG_7.jpg")]))
    assert opened.why(row) == ["Blown highlights 30.0 % (Blown highlights ≥ 2.0 %)"]
    buttons["Blurry (CLIP-IQA)"].click()  # and blurry: presets combine with AND
    assert _shown(window) == ["IMG_1.jpg", "IMG_3.jpg", "IMG_8.jpg"]
    assert "<b>3</b> of 10" in window.filters.count_label.text()


def test_missing_attribute_disables_its_preset_with_the_reason(window, catalog, opened, tmp_path):
    reason = opened.unavailable(["eyes_closed"])["eyes_closed"]
    if importlib.util.find_spec("mediapipe") is None:
        assert reason == "needs the [faces] extra: pip install 'clipiqa-desktop[faces]'"
    else:
        assert reason == "index the folder again to measure eyes closed"
    eyes = window.filters.preset_buttons["Eyes closed"]
    assert not eyes.isEnabled() and reason in eyes.toolTip()
    assert not window.filters.ranges["faces"].isEnabled() and reason.split(":")[0] in (
        window.filters.ranges["eyes_closed"].toolTip()
    )
    reject = window.filters.preset_buttons["Reject candidates"]
    assert reject.isEnabled() and "Without" in reject.toolTip(), "its other conditions still work"

    opened.close()
    faces = _open(window, catalog, tmp_path / "portraits", faces=True)  # another folder, with faces
    assert eyes.isEnabled() and "Not available" not in eyes.toolTip()
    count = window.filters.ranges["faces"]
    assert count.slider.maximum() == 3.0, "a count's track ends at the shoot's maximum"
    eyes.click()
    assert _shown(window) == ["IMG_1.jpg", "IMG_2.jpg"]
    eyes.click()
    count.slider.setValue((1.6, 3.0))  # counts are whole: 2..3 faces
    window.filters.emit_state()
    assert faces.filters.ranges == {"faces": (2.0, 3.0)} and _shown(window) == ["IMG_0.jpg", "IMG_2.jpg"]
    faces.close()


def test_relative_tooltips_say_what_the_percentiles_are_of(qtbot):
    from clipiqa_desktop.gui.filter_panel import FilterPanel

    panel = FilterPanel()
    qtbot.addWidget(panel)
    panel.set_columns(["sharpness", "focus"], {}, {})
    panel.show()
    qtbot.waitUntil(lambda: panel.built, timeout=5000)
    panel.relative.setChecked(True)
    assert "percentiles of this shoot" in panel.ranges["focus"].toolTip()
    panel.relative_to.setCurrentIndex(panel.relative_to.findData("burst"))
    assert "percentiles of its burst" in panel.ranges["focus"].toolTip()
    panel.set_columns(["sharpness", "focus", "quality"], {}, {})  # a row added later says it too
    assert "percentiles of its burst" in panel.ranges["quality"].toolTip()
