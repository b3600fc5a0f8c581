"""`--learned-prompts FILE` (CLIP-IQA+ quality_plus) on `score` and `index`, in-process."""

from __future__ import annotations

import json

import pytest
import torch

from clipiqa_desktop.cli import main

from .conftest import TINY_ARGS as TINY
from .conftest import photo

WIDTH = 32  # text width of tests/data/tiny-rn.json


@pytest.fixture
def shoot(tmp_path):
    folder = tmp_path / "shoot"
    folder.mkdir()
    for i in range(3):
        photo(120, 90, seed=i).save(folder / f"IMG_{i}.jpg", quality=90)
    return folder


def _context(path, shape, seed=0):
    torch.save(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 0.02, path)
    return str(path)


def _json(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def _one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip() and "RANDOM weights" not in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_score_quality_plus_with_a_learned_prompts_file(shoot, tmp_path, capsys):
    ctx = _context(tmp_path / "ctx.pth", (16, WIDTH))
    args = ["score", *TINY, "--size", "96", "--format", "json", str(shoot)]
    assert main([*args, "--attributes", "sharpness,quality+", "--learned-prompts", ctx]) == 0
    rows = _json(capsys.readouterr().out)
    assert len(rows) == 3
    for row in rows:
        assert set(row["scores"]) == {"sharpness", "quality_plus"}
        assert 0.0 < row["scores"]["quality_plus"] < 1.0
    # Another file gives other values.
    other = _context(tmp_path / "other.pth", (2, 16, WIDTH), seed=5)
    assert main([*args, "--attributes", "quality_plus", "--learned-prompts", other]) == 0
    again = _json(capsys.readouterr().out)
    assert all(
        abs(a["scores"]["quality_plus"] - b["scores"]["quality_plus"]) > 1e-4
        for a, b in zip(rows, again, strict=True)
    )


@pytest.mark.parametrize(
    ("shape", "given", "expected"),
    [
        (None, False, "quality_plus (CLIP-IQA+) needs its learned prompts: add --learned-prompts FILE"),
        (None, True, "does not exist"),
        ((4, 16, WIDTH), True, "shape (4, 16, 32); learned prompts are (n_ctx, width) or (2, n_ctx, width)"),
        ((16, 512), True, "width 512, but the text encoder of tiny-rn/none is 32 wide"),
    ],
    ids=["no-file", "missing", "shape", "width"],
)
def test_score_refuses_with_one_line_and_exit_2(shoot, tmp_path, capsys, shape, given, expected):
    path = tmp_path / "prompts.pth"
    if shape is not None:
        _context(path, shape)
    extra = ["--learned-prompts", str(path)] if given else []
    assert main(["score", *TINY, "--attributes", "quality+", *extra, str(shoot)]) == 2
    out, err = capsys.readouterr()
    assert expected in _one_line_error(err) and out == ""


def test_index_fills_in_lists_and_filters_quality_plus(shoot, tmp_path, capsys):
    cat = ["--catalog", str(tmp_path / "c.sqlite")]
    index = ["index", str(shoot), *cat, *TINY, "--size", "96"]
    assert main(index) == 0
    capsys.readouterr()
    ctx = _context(tmp_path / "ctx.pth", (16, WIDTH))
    assert main([*index, "--learned-prompts", ctx]) == 0
    err = capsys.readouterr().err
    assert "indexed 0" in err and "quality_plus of 3 photos scored with the learned prompts" in err

    assert main(["list", str(shoot), *cat, "--format", "json", "--sort", "quality_plus"]) == 0
    rows = _json(capsys.readouterr().out)
    values = [r["scores"]["quality_plus"] for r in rows]
    assert len(values) == 3 and values == sorted(values) and all(0 < v < 1 for v in values)
    assert main(["list", str(shoot), *cat, "--format", "json", "--where", f"quality_plus>{values[0]}"]) == 0
    assert len(_json(capsys.readouterr().out)) == 2

    wide = _context(tmp_path / "wide.pth", (16, 512))
    photo(120, 90, seed=7).save(shoot / "IMG_7.jpg", quality=90)  # something to score: the model loads
    assert main([*index, "--learned-prompts", wide]) == 2
    assert "width 512" in _one_line_error(capsys.readouterr().err)
    assert main([*index, "--learned-prompts", str(tmp_path / "gone.pth")]) == 2
    assert "gone.pth does not exist" in _one_line_error(capsys.readouterr().err)
