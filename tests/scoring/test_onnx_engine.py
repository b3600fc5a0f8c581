"""The ONNX Runtime engine for the image tower: same numbers as torch fp32, cached, chosen by speed."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from clipiqa_desktop.cli import main
from clipiqa_desktop.scoring import (
    BUILTIN_ATTRIBUTES,
    ClipIqaScorer,
    DeviceUnavailable,
    ModelSpec,
    ScoringError,
)
from clipiqa_desktop.scoring.constants import CACHE_ENV
from clipiqa_desktop.scoring.device import resolve_engine

from ..conftest import TINY_RN, TINY_VIT, photo

# Shapes a run meets: native, landscape and portrait analysis images, batches, a side below native.
SHAPES = [(1, 3, 64, 64), (2, 3, 80, 112), (3, 3, 160, 96), (1, 3, 48, 48)]


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A cache folder of this test alone (exports and remembered choices start empty)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(folder))
    return folder


def _load(config: Path, engine: str, precision: str = "fp32") -> ClipIqaScorer:
    return ClipIqaScorer.load(ModelSpec(str(config), "none"), "cpu", precision, engine)


@pytest.mark.parametrize("config", [TINY_RN, TINY_VIT], ids=["resnet", "vit"])
def test_onnx_equals_torch_fp32_at_every_shape(config, cache):
    """One exported graph takes every batch and size (dynamic axes), with torch's numbers."""
    torch_scorer, onnx_scorer = _load(config, "torch"), _load(config, "onnx")
    assert (torch_scorer.engine, onnx_scorer.engine) == ("torch", "onnx")
    assert onnx_scorer.precision == "fp32"
    assert len(list((cache / "onnx").glob("*.onnx"))) == 1
    pairs = list(BUILTIN_ATTRIBUTES)[:4]
    gen = torch.Generator().manual_seed(1)
    for shape in SHAPES:
        batch = torch.randint(0, 256, shape, dtype=torch.uint8, generator=gen)
        ref, got = torch_scorer.score_batch(batch, pairs), onnx_scorer.score_batch(batch, pairs)
        for r, g in zip(ref, got, strict=True):
            np.testing.assert_allclose(g.embedding, r.embedding, atol=1e-4)
            assert g.scores.keys() == r.scores.keys()
            assert max(abs(g.scores[k] - r.scores[k]) for k in r.scores) < 1e-4, shape


def test_the_export_is_cached_and_a_damaged_one_is_made_again(cache):
    first = _load(TINY_RN, "onnx")
    (path,) = (cache / "onnx").glob("*.onnx")
    made = path.stat().st_ino  # an export is written aside and renamed in: a new inode
    _load(TINY_RN, "onnx")
    assert path.stat().st_ino == made, "an unchanged model must not be exported again"
    path.write_bytes(b"not an onnx file")  # a half-written or foreign file
    again = _load(TINY_RN, "onnx")
    assert path.stat().st_size > 1000 and again.engine == "onnx"
    batch = torch.randint(0, 256, (1, 3, 64, 96), dtype=torch.uint8)
    torch.testing.assert_close(again.encode_images(batch), first.encode_images(batch), atol=1e-6, rtol=0)


def test_other_weights_get_their_own_export(cache):
    _load(TINY_RN, "onnx")
    torch.manual_seed(123)  # a differently initialised network under the same model name
    spec = ModelSpec(str(TINY_RN), "none")
    from clipiqa_desktop.scoring.model import load_clip

    model, tokenizer = load_clip(spec)
    with torch.no_grad():
        next(model.visual.parameters()).add_(1.0)
    ClipIqaScorer(model, tokenizer, torch.device("cpu"), "fp32", spec.model_id, engine="onnx")
    assert len(list((cache / "onnx").glob("*.onnx"))) == 2


def test_auto_measures_once_and_remembers(cache):
    first = _load(TINY_RN, "auto")
    assert first.engine_choice is not None and not first.engine_choice.remembered
    assert first.engine == first.engine_choice.engine
    choices = json.loads((cache / "engine-choice.json").read_text())
    (key,) = choices
    assert choices[key]["engine"] == first.engine and choices[key]["torch_s"] > 0
    second = _load(TINY_RN, "auto")
    assert second.engine_choice is not None and second.engine_choice.remembered
    # What is remembered decides: flip it, and the next run follows it without measuring.
    flipped = "torch" if first.engine == "onnx" else "onnx"
    choices[key]["engine"] = flipped
    (cache / "engine-choice.json").write_text(json.dumps(choices))
    third = _load(TINY_RN, "auto")
    assert third.engine == flipped and third.engine_choice is not None and third.engine_choice.remembered


def test_engine_choices_that_cannot_run_say_why():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert resolve_engine("auto", cpu) == "auto"
    assert resolve_engine("auto", gpu) == "torch", "GPUs run torch"
    assert resolve_engine("auto", cpu, "bf16") == "torch", "an explicit bf16 is torch's"
    with pytest.raises(DeviceUnavailable, match="runs in fp32"):
        resolve_engine("onnx", cpu, "bf16")
    with pytest.raises(DeviceUnavailable, match="runs on the CPU"):
        resolve_engine("onnx", gpu)
    with pytest.raises(DeviceUnavailable, match="unknown engine 'tensorrt'"):
        resolve_engine("tensorrt", cpu)


def test_an_unwritable_cache_stops_onnx_with_a_message_and_auto_falls_back(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(CACHE_ENV, str(blocker))  # the cache folder cannot be made under a file
    with pytest.raises(ScoringError, match="cannot write the ONNX export"):
        _load(TINY_RN, "onnx")
    assert _load(TINY_RN, "auto").engine == "torch"


def _score(folder: Path, engine: str, capsys) -> dict[str, dict[str, float]]:
    args = ["--model", str(TINY_RN), "--pretrained", "none", "--device", "cpu", "--engine", engine]
    attributes = ["--attributes", "quality,sharpness,noisiness"]
    assert main(["score", *args, *attributes, "--size", "96", "--format", "json", str(folder)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return {os.path.basename(r["path"]): r["scores"] for r in rows}


def test_score_command_gives_the_same_scores_with_either_engine(tmp_path, cache, capsys):
    folder = tmp_path / "shoot"
    folder.mkdir()
    for i in range(3):
        photo(300 if i % 2 else 200, 200 if i % 2 else 300, seed=i).save(folder / f"IMG_{i}.jpg")
    by_torch, by_onnx = _score(folder, "torch", capsys), _score(folder, "onnx", capsys)
    assert by_torch.keys() == by_onnx.keys() and len(by_torch) == 3
    for name, scores in by_torch.items():
        assert scores.keys() == {"quality", "sharpness", "noisiness"} == by_onnx[name].keys()
        assert max(abs(scores[k] - by_onnx[name][k]) for k in scores) < 1e-4


def test_bad_engine_combinations_are_one_line_errors(tmp_path, capsys):
    photo().save(tmp_path / "a.jpg")
    args = ["--model", str(TINY_RN), "--pretrained", "none", "--device", "cpu"]
    code = main(["score", *args, "--engine", "onnx", "--precision", "bf16", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "--engine onnx runs in fp32" in err and "Traceback" not in err


def test_index_says_which_engine_ran_and_why(tmp_path, cache, capsys):
    folder = tmp_path / "shoot"
    folder.mkdir()
    photo().save(folder / "a.jpg")
    args = ["--model", str(TINY_RN), "--pretrained", "none", "--device", "cpu", "--size", "96"]
    catalog = ["--catalog", str(tmp_path / "c.sqlite")]
    assert main(["index", *catalog, *args, "--engine", "onnx", str(folder)]) == 0
    assert "image encoder: onnx, fp32, cpu\n" in capsys.readouterr().err
    (folder / "b.jpg").write_bytes((folder / "a.jpg").read_bytes())
    assert main(["index", *catalog, *args, str(folder)]) == 0
    err = capsys.readouterr().err
    assert "image encoder: " in err and "(auto, the faster here; measured now: torch " in err


def test_the_full_size_rn50_tower_exports_with_torchs_numbers(cache):
    """The architecture users run (random weights: the real ones cannot be downloaded here)."""
    from clipiqa_desktop.scoring.model import load_clip

    spec = ModelSpec("RN50", "none")
    model, tokenizer = load_clip(spec)  # built once (seconds), copied for the second engine
    twin = copy.deepcopy(model)
    cpu = torch.device("cpu")
    torch_rn50 = ClipIqaScorer(model, tokenizer, cpu, "fp32", spec.model_id, engine="torch")
    onnx_rn50 = ClipIqaScorer(twin, tokenizer, cpu, "fp32", spec.model_id, engine="onnx")
    assert onnx_rn50.engine == "onnx"
    batch = torch.randint(
        0, 256, (2, 3, 160, 224), dtype=torch.uint8, generator=torch.Generator().manual_seed(2)
    )
    pairs = list(BUILTIN_ATTRIBUTES)
    ref, got = torch_rn50.score_batch(batch, pairs), onnx_rn50.score_batch(batch, pairs)
    for r, g in zip(ref, got, strict=True):
        assert max(abs(g.scores[k] - r.scores[k]) for k in r.scores) < 1e-4


def test_two_configs_of_one_name_never_share_an_export(tmp_path, cache):
    """A .json config is known by its file name; one edited in place (or another of the same name)
    builds another network, which must get its own export, not the first one's."""
    config = json.loads(TINY_RN.read_text())
    scorers = []
    for i, quick_gelu in enumerate((True, False)):  # no weight changes: only the activation differs
        folder = tmp_path / f"v{i}"
        folder.mkdir()
        (folder / "my-rn.json").write_text(json.dumps({**config, "quick_gelu": quick_gelu}))
        spec = ModelSpec(str(folder / "my-rn.json"), "none")
        scorers.append((_load_spec(spec, "torch"), _load_spec(spec, "onnx")))
    assert len(list((cache / "onnx").glob("*.onnx"))) == 2
    batch = torch.randint(0, 256, (1, 3, 64, 80), dtype=torch.uint8)
    for by_torch, by_onnx in scorers:
        torch.testing.assert_close(
            by_onnx.encode_images(batch), by_torch.encode_images(batch), atol=1e-5, rtol=0
        )


def _load_spec(spec: ModelSpec, engine: str) -> ClipIqaScorer:
    torch.manual_seed(0)
    return ClipIqaScorer.load(spec, "cpu", "fp32", engine)


class _FrozenSide(torch.nn.Module):
    """A tower whose trace freezes the input's height into the graph (as int() on a shape does)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3)) * int(x.shape[2])


def test_an_export_that_froze_a_shape_is_refused_and_not_cached(tmp_path):
    from clipiqa_desktop.scoring.onnx_engine import ExportUnsupported, NormalisedTower, export_tower

    tower = NormalisedTower(_FrozenSide(), torch.zeros(3), torch.ones(3)).eval()
    with pytest.raises(ExportUnsupported, match="does not give torch's numbers at another size"):
        export_tower(tower, tmp_path / "frozen.onnx")
    assert list(tmp_path.iterdir()) == [], "neither the export nor its temporary file is left"


def test_auto_remembers_a_tower_onnx_cannot_run_and_torch_runs(cache, monkeypatch):
    from clipiqa_desktop.scoring import onnx_engine

    def refuse(*_args, **_kwargs):
        raise onnx_engine.ExportUnsupported("the exported graph does not run at another size (Fail)")

    working = onnx_engine.export_tower
    monkeypatch.setattr(onnx_engine, "export_tower", refuse)
    first = _load(TINY_RN, "auto")
    assert first.engine == "torch" and first.engine_choice is not None
    assert "cannot run it: the exported graph does not run" in first.describe()
    monkeypatch.setattr(onnx_engine, "export_tower", working)  # it would work now, but the verdict stands
    second = _load(TINY_RN, "auto")
    assert second.engine == "torch" and second.engine_choice is not None and second.engine_choice.remembered
    assert not (cache / "onnx").exists() or not list((cache / "onnx").glob("*.onnx"))


def test_onnx_runtime_leaves_no_telemetry_behind(tmp_path):
    """ONNX Runtime's wheels write a device id and queue a ProcessInfo event under ~/.cache/Microsoft
    on import; the app switches that off before onnxruntime can be imported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORT_")}
    env["HOME"] = str(tmp_path)
    code = "import clipiqa_desktop, onnxruntime; print(onnxruntime.__version__)"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, timeout=120)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()], "nothing written under HOME"
