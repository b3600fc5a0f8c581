"""`clipiqa-desktop groups FOLDER` in-process on a folder indexed with the tiny model: small JPEGs
whose EXIF capture times make two scenes, two bursts (one frame of each sharp, the others blurred),
a single frame and an exposure bracket (EXIF bias 0/−2/+2); `--keep-best N` reads back from the
catalog."""

from __future__ import annotations

import datetime
import io
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clipiqa_desktop.catalog import Catalog, Decision
from clipiqa_desktop.cli import main
from clipiqa_desktop.culling.groups import keeper_scores

from .conftest import TINY_ARGS as MODEL
from .imaging.camera_exif import save_frame

START = datetime.datetime(2025, 9, 6, 15, 0, 0)

# name: (seconds after START, EXIF exposure bias, scene photograph, sharp)
FRAMES = {
    "A1.JPG": (0.0, 0.0, 1, False),
    "A2.JPG": (0.3, 0.0, 1, True),
    "A3.JPG": (0.7, 0.0, 1, False),
    "S1.JPG": (30.0, 0.0, 1, True),  # a single frame of scene A
    "K1.JPG": (60.0, 0.0, 1, True),  # the bracket, shot as cameras do: 0, −2, +2 EV
    "K2.JPG": (60.3, -2.0, 1, True),
    "K3.JPG": (60.6, 2.0, 1, True),
    "B1.JPG": (2000.0, 0.0, 2, True),  # scene B, half an hour later
    "B2.JPG": (2000.4, 0.0, 2, False),
}
BURST_A, BURST_B, BRACKET = (
    ["A1.JPG", "A2.JPG", "A3.JPG"],
    ["B1.JPG", "B2.JPG"],
    ["K1.JPG", "K2.JPG", "K3.JPG"],
)


def _scene(seed: int) -> np.ndarray:
    """A real photograph (detail to be sharp or blurred), 3:2."""
    import skimage.data

    image = skimage.data.coffee() if seed == 1 else skimage.data.chelsea()
    return np.asarray(Image.fromarray(image).resize((432, 288), box=(0, 0, 450, 300)))


def _save(path: Path, seconds: float, bias: float, seed: int, sharp: bool, k: int) -> None:
    rgb = np.roll(_scene(seed), 2 * k, axis=1)  # a burst: the frame moves a little
    save_frame(path, rgb, START + datetime.timedelta(seconds=seconds), bias, sharp, quality=92)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """(folder, catalog file) indexed once; tests that write copy the catalog first."""
    root = tmp_path_factory.mktemp("groups")
    folder = root / "shoot"
    folder.mkdir()
    for k, (name, (seconds, bias, seed, sharp)) in enumerate(FRAMES.items()):
        _save(folder / name, seconds, bias, seed, sharp, k)
    db = root / "c.sqlite"
    assert main(["index", str(folder), "--catalog", str(db), *MODEL, "--size", "128"]) == 0
    return folder, db


@pytest.fixture
def shoot(indexed, tmp_path):
    """(folder, --catalog args, catalog file) on a copy of the indexed catalog."""
    folder, db = indexed
    copy = tmp_path / "c.sqlite"
    with sqlite3.connect(db) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    return folder, ["--catalog", str(copy)], copy


def _lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def _names(paths: list[str]) -> list[str]:
    return [Path(p).name for p in paths]


def _decisions(db: Path, folder: Path) -> dict[str, Decision]:
    catalog = Catalog(db, create=False)
    try:
        ids = catalog.photo_ids_for_paths([folder / n for n in FRAMES])
        by_id = catalog.decisions([i for i in ids.values() if i is not None])
        return {p.name: by_id[i] for p, i in ids.items() if i is not None}
    finally:
        catalog.close()


def _keeper(db: Path, folder: Path, capsys) -> dict[str, float]:
    """The keeper score of every photo, from the scores `list --format json` prints."""
    assert main(["list", str(folder), "--catalog", str(db), "--format", "json"]) == 0
    rows = _lines(capsys.readouterr().out)
    attributes = sorted({k for r in rows for k in (r["scores"] or {})})
    matrix = np.array(
        [[np.nan if r["scores"][a] is None else r["scores"][a] for a in attributes] for r in rows]
    )
    return dict(zip(_names([r["path"] for r in rows]), keeper_scores(attributes, matrix), strict=True))


def test_json_lines_give_the_bursts_the_bracket_and_the_scenes(shoot, capsys):
    folder, cat, db = shoot
    assert main(["groups", str(folder), *cat, "--format", "json", "--best-by", "focus"]) == 0
    captured = capsys.readouterr()
    groups = _lines(captured.out)
    by_kind: dict[str, list[dict]] = {}
    for g in groups:
        by_kind.setdefault(g["kind"], []).append(g)
    assert [_names(g["members"]) for g in by_kind["burst"]] == [BURST_A, BURST_B]
    assert [_names(g["members"]) for g in by_kind["bracket"]] == [BRACKET]
    assert by_kind["bracket"][0]["best"] is None, "a bracket has no best frame"
    assert [Path(g["best"]).name for g in by_kind["burst"]] == ["A2.JPG", "B1.JPG"], "the sharp frames"
    scenes = by_kind["scene"]
    assert [_names(g["members"]) for g in scenes] == [[*BURST_A, "S1.JPG", *BRACKET], BURST_B]
    assert "single" not in by_kind, "singles only with --singles"
    # a scene, then its groups; burst-level groups name their scene; members are the files
    assert [g["level"] for g in groups] == ["scene", "burst", "burst", "scene", "burst"]
    assert [g["scene"] for g in by_kind["burst"]] == [g["id"] for g in scenes]
    assert all(Path(p).is_file() and Path(p).is_absolute() for g in groups for p in g["members"])
    burst = by_kind["burst"][0]
    assert (burst["count"], burst["best_by"]) == (3, "focus") and burst["best_value"] > 0.5
    assert captured.err.startswith("clipiqa-desktop: 9 photos: 2 bursts, 1 exposure bracket, 1 single")

    assert main(["groups", str(folder), *cat, "--format", "json", "--level", "burst", "--singles"]) == 0
    bursts = _lines(capsys.readouterr().out)
    assert {g["level"] for g in bursts} == {"burst"}
    assert [_names(g["members"]) for g in bursts] == [BURST_A, ["S1.JPG"], BRACKET, BURST_B]
    keeper = _keeper(db, folder, capsys)
    for g in bursts:
        if g["kind"] == "burst":  # the default: the keeper score's best
            best = max(_names(g["members"]), key=lambda n: keeper[n])
            assert Path(g["best"]).name == best and g["best_value"] == pytest.approx(keeper[best], abs=1e-5)


def test_best_by_an_attribute_where_less_is_better_takes_the_lowest(shoot, capsys):
    folder, cat, _db = shoot
    assert main(["groups", str(folder), *cat, "--format", "json", "--best-by", "motion_blur"]) == 0
    bursts = [g for g in _lines(capsys.readouterr().out) if g["kind"] == "burst"]
    assert main(["list", str(folder), *cat, "--format", "json"]) == 0
    blur = {Path(r["path"]).name: r["scores"]["motion_blur"] for r in _lines(capsys.readouterr().out)}
    for g in bursts:
        names = _names(g["members"])
        assert Path(g["best"]).name == min(names, key=lambda n: blur[n]), "the steadiest frame"


def test_text_marks_the_best_under_scene_headers(shoot, capsys):
    folder, cat, _db = shoot
    assert main(["groups", str(folder), *cat, "--best-by", "focus"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("scene 1: 7 photos · best ")
    assert "  + 1 single frame (--singles lists them)" in lines
    assert any(line.startswith("  burst ") and "3 frames · best A2.JPG (Focus " in line for line in lines)
    assert any(line.startswith("    ★ A2.JPG") for line in lines)
    assert any(line.startswith("  exposure bracket ") and "kept whole" in line for line in lines)
    assert not any("★ K" in line for line in lines), "no frame of a bracket is marked best"


def test_keep_best_rejects_exactly_the_plan(shoot, capsys):
    folder, cat, db = shoot
    assert main(["rate", str(folder / "A3.JPG"), *cat, "--pick"]) == 0
    capsys.readouterr()
    assert main(["groups", str(folder), *cat, "--keep-best", "1", "--yes", "--best-by", "focus"]) == 0
    captured = capsys.readouterr()
    # burst A: the pick takes the one place, so even the sharp A2 goes; burst B: the blurred B2
    expected = ["A1.JPG", "A2.JPG", "B2.JPG"]
    assert sorted(_names(captured.out.splitlines())) == expected
    assert "Keep the best 1 of each burst by Focus" in captured.err
    assert "rate --unflag" in captured.err and "Ctrl+Z" in captured.err
    after = _decisions(db, folder)
    assert sorted(n for n, d in after.items() if d.rejected) == expected
    assert after["A3.JPG"].picked and not after["A3.JPG"].rejected, "a pick is never rejected"
    assert all(after[n] == Decision() for n in [*BRACKET, "S1.JPG", "B1.JPG"])
    # undo as the message says
    assert main(["rate", *captured.out.splitlines(), *cat, "--unflag"]) == 0
    assert all(d == Decision() for n, d in _decisions(db, folder).items() if n != "A3.JPG")


def test_keep_best_of_each_scene_leaves_the_bracket_whole(shoot, capsys):
    folder, cat, db = shoot
    args = ["groups", str(folder), *cat, "--keep-best", "1", "--level", "scene", "--best-by", "focus"]
    assert main([*args, "--dry-run"]) == 0
    planned = sorted(_names(capsys.readouterr().out.splitlines()))
    assert all(d == Decision() for d in _decisions(db, folder).values()), "--dry-run changes nothing"
    assert main([*args, "--yes"]) == 0
    rejected = sorted(n for n, d in _decisions(db, folder).items() if d.rejected)
    assert rejected == planned
    assert not set(rejected) & set(BRACKET), "bracket frames are never rejected"
    assert "B2.JPG" in rejected and "B1.JPG" not in rejected
    assert len(set(rejected) & {*BURST_A, "S1.JPG"}) == 3, "one of scene A's 4 other frames is kept"


def test_keep_best_without_a_terminal_or_yes_refuses(shoot, capsys):
    folder, cat, db = shoot
    assert main(["groups", str(folder), *cat, "--keep-best", "1"]) == 2
    captured = capsys.readouterr()
    assert "will be rejected" in captured.err and "--yes" in captured.err.splitlines()[-1]
    assert captured.out == "", "stdout carries only photos really rejected (a pipe never acts on a refusal)"
    assert sum(line.endswith(".JPG") for line in captured.err.splitlines()) == 3, "the plan, on stderr"
    assert all(d == Decision() for d in _decisions(db, folder).values())


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("answer", "status"), [("n\n", 2), ("\n", 2), ("y\n", 0)])
def test_keep_best_asks_on_a_terminal(shoot, capsys, monkeypatch, answer, status):
    folder, cat, db = shoot
    monkeypatch.setattr("sys.stdin", _Terminal(answer))
    assert main(["groups", str(folder), *cat, "--keep-best", "1"]) == status
    err = capsys.readouterr().err
    assert "Reject 3 photos? [y/N]" in err
    assert err.count("  reject ") == 3, "which frames go is said before the question"
    rejected = [n for n, d in _decisions(db, folder).items() if d.rejected]
    assert len(rejected) == (3 if status == 0 else 0)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--best-by", "sharpnes"], "--best-by sharpnes: not an attribute of this folder; known: "),
        (["--yes"], "--yes goes with --keep-best N"),
    ],
)
def test_bad_arguments_are_one_line(shoot, capsys, extra, message):
    folder, cat, _db = shoot
    assert main(["groups", str(folder), *cat, *extra]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and message in captured.err
    if extra[0] == "--best-by":
        assert "keeper" in captured.err and "focus" in captured.err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--burst-gap", "-1"], "a gap is a number of seconds ≥ 0, not -1"),
        (["--scene-similarity", "1.5"], "a cosine similarity is between -1 and 1, not 1.5"),
        (["--keep-best", "0"], "keep at least 1 photo of each group"),
    ],
)
def test_bad_values_exit_2(shoot, capsys, extra, message):
    folder, cat, _db = shoot
    with pytest.raises(SystemExit) as exit_:
        main(["groups", str(folder), *cat, *extra])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_a_folder_not_indexed(shoot, tmp_path, capsys):
    _folder, cat, _db = shoot
    other = tmp_path / "other"
    other.mkdir()
    assert main(["groups", str(other), *cat]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not in the catalog" in err and "index" in err
