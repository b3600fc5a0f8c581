"""The flags against a photographer's own culling (culling/evaluate.py), on a real catalog file.

The shoot is written with the catalog's own APIs: values as the pixel measures store them (focus
0..1, clipped fractions, face and closed-eye counts, NaN where nothing was measured) and decisions
as `rate`/the window/XMP import store them, so every count below is known exactly:

rejects (rating −1), 10:  r0–r4 focus 0.10–0.28 (out of focus), r5 focus 0.35 with a face, eyes
                          open; r6, r7 sharp but 5 % blown; r8 sharp, one face with eyes closed;
                          r9 failed to decode (nothing measured)
keepers (picked or ★), 20: k0 focus 0.29 (the presets' one false alarm for focus), k1 3 % blown,
                          k1–k19 focus 0.42–0.78, k2–k7 one face each, eyes open
undecided, 5:             focus 0.05 (flagged, but never judged by the photographer)
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from clipiqa_desktop.catalog import Catalog, Decision, PhotoRecord, build_table
from clipiqa_desktop.culling.evaluate import MIN_DECISIONS, evaluate
from clipiqa_desktop.culling.session import column_order


def _shot(name: str, **scores: float) -> PhotoRecord:
    return PhotoRecord(name, 100, 1, fingerprint=f"fp-{name}", scores=scores, embedding=np.ones(4))


def culled_shoot(catalog: Catalog, folder: Path, rejects: int = 10) -> dict[str, int]:
    """The shoot of the module docstring, indexed into `catalog` under `folder` (files on disk).
    `rejects` < 10 keeps only the first ones (r0, r1, …) as rejects; the rest are left undecided."""
    folder.mkdir(exist_ok=True)
    shots: list[tuple[PhotoRecord, Decision | None]] = []
    for i, f in enumerate((0.10, 0.15, 0.20, 0.25, 0.28)):
        shots.append((_shot(f"r{i}.jpg", focus=f, highlights_clipped=0.0, colorfulness=0.9), Decision(-1)))
    shots.append(
        (
            _shot("r5.jpg", focus=0.35, highlights_clipped=0.0, faces=1, eyes_closed=0, colorfulness=0.9),
            Decision(-1),
        )
    )
    for i in (6, 7):
        shots.append((_shot(f"r{i}.jpg", focus=0.8, highlights_clipped=0.05, colorfulness=0.9), Decision(-1)))
    shots.append(
        (
            _shot("r8.jpg", focus=0.9, highlights_clipped=0.0, faces=1, eyes_closed=1, colorfulness=0.9),
            Decision(-1),
        )
    )
    shots.append(
        (PhotoRecord("r9.jpg", 100, 1, fingerprint="fp-r9", error="cannot identify image"), Decision(-1))
    )
    for i in range(20):
        values = {"focus": 0.29 if i == 0 else 0.4 + 0.02 * i, "highlights_clipped": 0.03 if i == 1 else 0.0}
        values["colorfulness"] = 0.1 + 0.01 * i
        if 2 <= i <= 7:
            values |= {"faces": 1, "eyes_closed": 0}
        decision = Decision(0, picked=True) if i % 2 else Decision(1 + i % 5)
        shots.append((_shot(f"k{i}.jpg", **values), decision))
    for i in range(5):
        shots.append((_shot(f"u{i}.jpg", focus=0.05, highlights_clipped=0.0, colorfulness=0.5), None))
    for record, _ in shots:
        (folder / record.rel_path).write_bytes(b"photo")
    fid = catalog.folder_id(folder)
    aid = catalog.analysis_id("tiny-model", "128", 4, 100.0)
    assert fid is not None and aid is not None
    ids = catalog.write_batch(fid, aid, [r for r, _ in shots])
    catalog.set_last_analysis(fid, aid)
    decided = {ids[r.rel_path]: d for r, d in shots if d is not None}
    for name in [f"r{i}.jpg" for i in range(rejects, 10)]:
        decided.pop(ids[name])
    catalog.set_decisions(decided)
    return ids


def _table(catalog: Catalog, folder: Path):
    folder_ids = catalog.folder_ids(folder, recursive=False)
    rows, scores = catalog.rows(folder_ids, catalog.last_analysis(folder_ids), root=folder)
    return build_table(rows, scores, column_order(scores.attributes))


@pytest.fixture
def table(catalog, tmp_path):
    culled_shoot(catalog, tmp_path / "shoot")
    return _table(catalog, tmp_path / "shoot")


def _counts(m):
    return (m.caught, m.rejects, m.false_alarms, m.keepers, m.unmeasured_rejects, m.unmeasured_keepers)


def test_each_preset_counts_caught_rejects_and_flagged_keepers_leaving_unmeasured_photos_out(table):
    ev = evaluate(table)
    assert (ev.photos, ev.rejects, ev.keepers, ev.undecided) == (35, 10, 20, 5)
    assert ev.problem is None
    assert ev.summary() == "10 rejected, 20 kept (picked or at least 1 star); 5 unrated photos left out"
    by = {p.name: p for p in ev.presets}

    focus = by["Out of focus"].match
    # r9 (not decoded) is not measured: left out, not a miss; the undecided u0–u4 are not false alarms
    assert _counts(focus) == (5, 9, 1, 20, 1, 0)
    assert focus.recall == pytest.approx(5 / 9) and focus.precision == pytest.approx(5 / 6)
    assert focus.false_alarm_rate == pytest.approx(1 / 20) and focus.enough

    # OR of focus, eyes closed and blown highlights: r0–r4, r6, r7, r8 caught; k0 and k1 flagged
    assert _counts(by["Reject candidates"].match) == (8, 9, 2, 20, 1, 0)
    assert _counts(by["Blown highlights"].match) == (2, 9, 1, 20, 1, 0)

    # eyes: only photos with a face are judged (r5, r8 and k2–k7), too few for rates
    eyes = by["Eyes closed"].match
    assert _counts(eyes) == (1, 2, 0, 6, 8, 14) and not eyes.enough

    # attributes this catalog has no column for: nothing judged, and said
    assert by["Face out of focus"].missing == ("face_focus",)
    assert _counts(by["Face out of focus"].match) == (0, 0, 0, 0, 10, 20)
    assert by["Face out of focus"].match.recall is None
    assert {"face_focus", "shadows_clipped", "sharpness", "quality"} <= set(ev.missing)


def test_best_thresholds_maximise_f1_beside_the_presets_thresholds(table):
    ev = evaluate(table)
    by = {(t.attribute, t.side): t for t in ev.thresholds}

    focus = by[("focus", "≤")]
    assert focus.current == pytest.approx(0.30)
    assert _counts(focus.current_match) == (5, 9, 1, 20, 1, 0)
    # ≤ 0.35 catches r5 too at the cost of k0 alone: F1 12/16 beats 10/14 (≤ 0.28) and 16/37 (≤ 0.8)
    assert focus.best == pytest.approx(0.35)
    assert _counts(focus.best_match) == (6, 9, 1, 20, 1, 0)
    assert focus.best_match.f1 == pytest.approx(12 / 16)
    assert focus.rule(focus.best) == "≤ 0.35" and not focus.flags_all

    # clipping does not tell these rejects apart: the best F1 is to flag everything, and it says so
    high = by[("highlights_clipped", "≥")]
    assert high.best == 0.0 and high.flags_all
    assert high.rule(high.current) == "≥ 2.0 %"

    # eyes closed: too few measured rejects for a threshold
    eyes = by[("eyes_closed", "≥")]
    assert (eyes.best, eyes.best_match, eyes.measured_rejects) == (None, None, 2)

    # an attribute no preset uses is tried on both sides: here the rejects are the colourful ones
    colour = by[("colorfulness", "≥")]
    assert colour.current is None and colour.best == pytest.approx(0.9)
    assert _counts(colour.best_match) == (9, 9, 0, 20, 1, 0)
    assert ("colorfulness", "≤") not in by
    assert {t.attribute for t in ev.thresholds} == set(table.attributes)


def test_unrated_photos_count_as_keepers_only_when_asked(table):
    ev = evaluate(table, unrated_keepers=True)
    assert (ev.keepers, ev.undecided) == (25, 0)
    assert ev.summary() == "10 rejected, 25 kept (every photo not rejected)"
    focus = next(p for p in ev.presets if p.name == "Out of focus").match
    assert _counts(focus) == (5, 9, 6, 25, 1, 0)  # u0–u4 (focus 0.05) are false alarms now


def test_too_few_decisions_give_a_message_instead_of_numbers(catalog, tmp_path):
    culled_shoot(catalog, tmp_path / "shoot", rejects=MIN_DECISIONS - 1)
    ev = evaluate(_table(catalog, tmp_path / "shoot"))
    assert (ev.rejects, ev.keepers) == (4, 20)
    assert ev.presets == () and ev.thresholds == ()
    assert ev.problem == (
        "too few decisions to measure anything: 4 rejected and 20 kept (picked or at least 1 star); "
        "at least 5 of each are needed"
    )
    assert not ev.unrated_would_help  # the keepers are not what is missing
    data = ev.as_dict()
    assert data["problem"] == ev.problem and data["presets"] == []


def test_only_rejects_marked_suggests_counting_the_rest_as_keepers(catalog, tmp_path):
    folder = tmp_path / "shoot"
    ids = culled_shoot(catalog, folder)
    keepers = [pid for name, pid in ids.items() if name.startswith("k")]
    catalog.set_decisions({pid: Decision() for pid in keepers})
    ev = evaluate(_table(catalog, folder))
    assert ev.keepers == 0 and ev.undecided == 25 and ev.unrated_would_help
    assert evaluate(_table(catalog, folder), unrated_keepers=True).problem is None


def test_the_json_form_has_every_number_and_no_nan(table):
    import json

    data = json.loads(json.dumps(evaluate(table).as_dict(), allow_nan=False))
    focus = next(p for p in data["presets"] if p["preset"] == "Out of focus")
    assert focus["rule"] == "Focus ≤ 0.30"
    assert (focus["caught"], focus["rejects"], focus["false_alarms"], focus["keepers"]) == (5, 9, 1, 20)
    assert focus["not_measured_rejects"] == 1 and math.isclose(focus["precision"], 0.8333)
    t = next(t for t in data["thresholds"] if t["attribute"] == "focus")
    assert t["side"] == "<=" and math.isclose(t["best_threshold"], 0.35, rel_tol=1e-6)
    assert data["threshold_criterion"] == "F1"
