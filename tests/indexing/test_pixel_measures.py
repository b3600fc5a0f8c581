"""Pixel measures through the real indexer, catalog, `list` and `score` (tiny random CLIP).

The photographs are scikit-image's real samples; the defects are applied here, so the expected
order is known: a Gaussian blur lowers `focus`, pushing the exposure up clips highlights."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from clipiqa_desktop.indexing.pipeline import IndexOptions, index_folder
from clipiqa_desktop.measures.photo import measurable_keys
from clipiqa_desktop.measures.registry import PIXEL_KEYS

from ..conftest import TINY_ARGS

data = pytest.importorskip("skimage.data", reason="scikit-image provides the real test photographs")

# face_focus and eyes_closed exist only for a photo with a face
ALWAYS = [k for k in measurable_keys() if k not in ("face_focus", "eyes_closed")]


@pytest.fixture(scope="module")
def shoot(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("shoot")
    sharp = Image.fromarray(data.astronaut())
    sharp.save(folder / "sharp.jpg", quality=95)
    sharp.filter(ImageFilter.GaussianBlur(4)).save(folder / "blurred.jpg", quality=95)
    bright = np.clip(np.asarray(sharp, dtype=np.float32) * 2.5, 0, 255).astype(np.uint8)
    Image.fromarray(bright).save(folder / "blown.jpg", quality=95)
    return folder


def _measures(catalog, folder: Path) -> dict[str, dict[str, float]]:
    from clipiqa_desktop.culling.session import CullingSession

    session = CullingSession(catalog, folder)
    session.reload()
    t = session.table
    return {
        Path(t.paths[i]).name: {a: float(t.score_column(a)[i]) for a in t.attributes if a in PIXEL_KEYS}
        for i in range(len(t))
    }


def test_index_stores_pixel_measures_beside_clip_scores(catalog, tiny_scorer, shoot):
    summary = index_folder(catalog, tiny_scorer, shoot, IndexOptions(long_side=224))
    assert summary.indexed == 3 and not summary.failed
    values = _measures(catalog, shoot)
    for name in ("sharp.jpg", "blurred.jpg", "blown.jpg"):
        assert set(ALWAYS) <= set(values[name]), name
    assert values["sharp.jpg"]["focus"] > values["blurred.jpg"]["focus"]
    assert values["blown.jpg"]["highlights_clipped"] >= 0.02 > values["sharp.jpg"]["highlights_clipped"]


def test_photos_indexed_before_the_measures_are_measured_on_the_next_index(catalog, tiny_scorer, shoot):
    options = IndexOptions(long_side=224)
    index_folder(catalog, tiny_scorer, shoot, options)
    before = _measures(catalog, shoot)
    # What a catalog indexed by an earlier release looks like: CLIP-IQA scores, no pixel measures.
    with catalog.engine.begin() as conn:
        conn.exec_driver_sql(
            f"DELETE FROM scores WHERE attribute IN ({','.join('?' * len(PIXEL_KEYS))})", PIXEL_KEYS
        )
    assert all(not v for v in _measures(catalog, shoot).values())
    again = index_folder(catalog, tiny_scorer, shoot, options)
    assert again.remeasured == 3 and again.indexed == 3
    assert any("decoded again to measure them" in n for n in again.notes())
    after = _measures(catalog, shoot)
    assert after.keys() == before.keys()
    for name, values in before.items():
        assert after[name] == pytest.approx(values, abs=1e-6, nan_ok=True), name
    settled = index_folder(catalog, tiny_scorer, shoot, options)
    assert settled.remeasured == 0 and settled.indexed == 0 and settled.unchanged == 3


def test_list_shows_and_filters_pixel_measures(tmp_path, shoot):
    db = tmp_path / "c.sqlite"
    cli = [sys.executable, "-m", "clipiqa_desktop"]
    run = subprocess.run(
        [*cli, "index", str(shoot), "--catalog", str(db), "--size", "224", *TINY_ARGS],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    out = subprocess.run(
        [*cli, "list", str(shoot), "--catalog", str(db), "--where", "highlights_clipped>=0.02"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    header, *rows = out.stdout.splitlines()
    assert "focus" in header.split() and "highlights_clipped" in header.split()
    assert [r.split()[-1] for r in rows] == ["blown.jpg"]


def test_score_measures_pixels_without_loading_a_model(shoot):
    code = (
        "import sys\n"
        "from clipiqa_desktop.cli import main\n"
        "status = main(['score', '--attributes', 'focus,highlights_clipped', '--format', 'csv', "
        f"{str(shoot)!r}])\n"
        "print('torch', 'torch' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "path,focus,highlights_clipped,error"
    rows = {Path(line.split(",")[0]).name: line.split(",") for line in lines[1:4]}
    assert float(rows["sharp.jpg"][1]) > float(rows["blurred.jpg"][1])
    assert float(rows["blown.jpg"][2]) >= 0.02
    assert lines[-1] == "torch False"
    assert "measured 3 photo(s) (no CLIP model needed)" in run.stderr


def test_without_clip_weights_index_measures_pixels_only_and_a_model_adds_clip_later(tmp_path, shoot):
    """`--model none`: no weights, no torch; the measures are listed and filtered; a later index
    with a model adds the CLIP-IQA scores (its own analysis) and the measures again."""
    db = tmp_path / "c.sqlite"
    code = (
        "import sys\n"
        "from clipiqa_desktop.cli import main\n"
        f"status = main(['index', {str(shoot)!r}, '--model', 'none', '--catalog', {str(db)!r}])\n"
        "print('exit', status, 'torch' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.stdout.splitlines()[-1] == "exit 0 False", run.stderr
    cli = [sys.executable, "-m", "clipiqa_desktop"]
    out = subprocess.run(
        [*cli, "list", str(shoot), "--catalog", str(db), "--where", "focus<=0.3"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    header, *rows = out.stdout.splitlines()
    assert "quality" not in header.split() and [r.split()[-1] for r in rows] == ["blurred.jpg"]
    assert "pixel measures only (indexed with --model none)" in out.stderr
    refused = subprocess.run(
        [*cli, "list", str(shoot), "--catalog", str(db), "--prompt", "Smiling.:Serious."],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2 and "indexed without a CLIP model" in refused.stderr
    again = subprocess.run(
        [*cli, "index", str(shoot), "--model", "none", "--catalog", str(db)], capture_output=True, text=True
    )
    assert again.returncode == 0 and "unchanged 3" in again.stderr, again.stderr
    clip = subprocess.run(
        [*cli, "index", str(shoot), "--catalog", str(db), "--size", "224", *TINY_ARGS],
        capture_output=True,
        text=True,
    )
    assert clip.returncode == 0, clip.stderr
    out = subprocess.run([*cli, "list", str(shoot), "--catalog", str(db)], capture_output=True, text=True)
    assert {"focus", "quality"} <= set(out.stdout.splitlines()[0].split())


def test_a_failing_measure_keeps_the_photo_and_its_scores_and_is_tried_again(
    catalog, tiny_scorer, shoot, monkeypatch
):
    """Fault injection: measuring one photo raises (a face-model error, a panorama too large for
    memory). The photo keeps its CLIP-IQA scores, embedding and thumbnail, the run says why, and the
    next index measures it."""
    from clipiqa_desktop.indexing import pipeline

    real = pipeline.measure_photo
    with Image.open(shoot / "blurred.jpg") as im:
        blurred = np.asarray(im.convert("RGB"))

    def failing(full, analysis, keys, reduced=None):
        if np.array_equal(np.asarray(full), blurred):  # the full-resolution pixels of blurred.jpg
            raise RuntimeError("the face model broke")
        return real(full, analysis, keys, reduced)

    monkeypatch.setattr(pipeline, "measure_photo", failing)
    options = IndexOptions(long_side=224)
    first = index_folder(catalog, tiny_scorer, shoot, options)
    assert first.indexed == 3 and not first.failed
    assert [rel for rel, _ in first.not_measured] == ["blurred.jpg"]
    assert any("the next index tries again" in n and "the face model broke" in n for n in first.notes())
    values = _measures(catalog, shoot)
    assert np.isnan(list(values["blurred.jpg"].values())).all()
    assert not np.isnan(values["sharp.jpg"]["focus"])
    from clipiqa_desktop.culling.session import CullingSession

    session = CullingSession(catalog, shoot)
    session.reload()
    row = next(i for i, p in enumerate(session.table.paths) if p.endswith("blurred.jpg"))
    assert session.table.status[row] == "ok"
    assert not np.isnan(session.table.score_column("quality")[row]), "CLIP-IQA scores kept"
    assert catalog.thumbnail(int(session.table.ids[row])) is not None

    monkeypatch.setattr(pipeline, "measure_photo", real)
    again = index_folder(catalog, tiny_scorer, shoot, options)
    assert again.remeasured == 1 and not again.not_measured
    assert _measures(catalog, shoot)["blurred.jpg"]["focus"] < values["sharp.jpg"]["focus"]


def test_score_without_clip_weights_measures_pixels_and_refuses_clip_attributes(shoot, capsys):
    from clipiqa_desktop.cli import main

    assert main(["score", "--model", "none", "--format", "json", str(shoot / "sharp.jpg")]) == 0
    out, err = capsys.readouterr()
    row = json.loads(out)
    assert set(row["scores"]) == set(measurable_keys()) and row["scores"]["focus"] > 0.3
    assert "no CLIP model needed" in err
    assert main(["score", "--model", "none", "--format", "csv", str(shoot / "sharp.jpg")]) == 0
    header, line = capsys.readouterr().out.splitlines()
    cells = dict(zip(header.split(","), line.split(","), strict=True))
    assert cells["faces"] in ("", "0", "1") and "." in cells["focus"], "counts are whole numbers"
    assert main(["score", "--model", "none", "--attributes", "focus,quality", str(shoot / "sharp.jpg")]) == 2
    assert "quality need a CLIP model; --model none measures only focus" in capsys.readouterr().err


def test_a_frame_without_detail_is_not_called_out_of_focus(tmp_path, catalog, tiny_scorer):
    """A plain overcast sky with sensor noise: no edge to judge. It gets no focus value (so no focus
    filter or preset flags it), its reason says so, and it is not decoded again on the next index."""
    from clipiqa_desktop.culling.presets import get_preset, preset_mask
    from clipiqa_desktop.measures.photo import measure_photo
    from clipiqa_desktop.measures.registry import reasons

    rng = np.random.default_rng(3)
    y = np.linspace(170, 200, 2000, dtype=np.float32)[:, None, None]
    sky = np.clip(y + np.array([0, 6, 18]) + rng.normal(0, 2, (2000, 3000, 3)), 0, 255).astype(np.uint8)
    values = measure_photo(Image.fromarray(sky))
    assert "focus" not in values and "motion_blur" not in values and "noise" in values
    assert reasons(values)[0] == "no detail to judge focus on (a plain sky, fog, a flat wall)"
    columns = {k: np.array([v]) for k, v in values.items()}
    assert not preset_mask(get_preset("Reject candidates"), columns, 1).any()

    folder = tmp_path / "sky"
    folder.mkdir()
    Image.fromarray(sky).save(folder / "sky.jpg", quality=95)
    first = index_folder(catalog, tiny_scorer, folder, IndexOptions(long_side=224))
    again = index_folder(catalog, tiny_scorer, folder, IndexOptions(long_side=224))
    assert first.indexed == 1 and again.unchanged == 1 and again.remeasured == 0


def test_list_explains_a_measure_the_folder_has_no_values_for(tmp_path, catalog, tiny_scorer, capsys):
    """Not 'unknown field': why there is no value (no face here; indexed before the measure)."""
    from clipiqa_desktop.cli import main

    folder = tmp_path / "coffee"
    folder.mkdir()
    Image.fromarray(data.coffee()).save(folder / "cup.jpg")
    index_folder(catalog, tiny_scorer, folder, IndexOptions(long_side=224))
    db = ["--catalog", str(catalog.path)]
    if "faces" in measurable_keys():
        assert main(["list", str(folder), *db, "--where", "eyes_closed>=1"]) == 2
        assert "eyes_closed: no face was found in this folder's photos" in capsys.readouterr().err
    with catalog.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM scores WHERE attribute = 'focus'")
    assert main(["list", str(folder), *db, "--sort", "focus"]) == 2
    assert "focus has not been measured in this folder yet: index it again" in capsys.readouterr().err
