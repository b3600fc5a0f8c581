"""Loading weights from files in the formats users have, and clear messages when they are wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from clipiqa_desktop.scoring import (
    BUILTIN_ATTRIBUTES,
    ClipIqaScorer,
    ModelSpec,
    UnknownModel,
    WeightsMismatch,
    WeightsUnavailable,
    load_clip,
)
from clipiqa_desktop.scoring.model import WEIGHTS_ENV

from ..conftest import TINY_RN, TINY_VIT

PIXELS = torch.randint(0, 256, (2, 3, 96, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(9))


def _reference_model(seed: int = 11):
    torch.manual_seed(seed)
    model, _ = load_clip(ModelSpec(str(TINY_RN), "none"))
    return model


def _scores(spec: ModelSpec) -> list[dict[str, float]]:
    scorer = ClipIqaScorer.load(spec, "cpu", "fp32", "torch")
    return [r.scores for r in scorer.score_batch(PIXELS, BUILTIN_ATTRIBUTES)]


@pytest.fixture(scope="module")
def reference_scores(tmp_path_factory):
    model = _reference_model()
    path = tmp_path_factory.mktemp("w") / "tiny.pt"
    torch.save(model.state_dict(), path)
    return _scores(ModelSpec(str(TINY_RN), weights=path))


def test_open_clip_checkpoint_with_module_prefix(tmp_path, reference_scores):
    model = _reference_model()
    path = tmp_path / "epoch_3.pt"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, path)
    assert _scores(ModelSpec(str(TINY_RN), weights=path)) == reference_scores


def test_safetensors_checkpoint(tmp_path, reference_scores):
    from safetensors.torch import save_file

    model = _reference_model()
    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    assert _scores(ModelSpec(str(TINY_RN), weights=path)) == reference_scores


def _openai_style(model):
    """Add architecture keys of the kind OpenAI checkpoints carry beside the tensors."""
    model.register_buffer("input_resolution", torch.tensor(224))
    return model


def test_openai_plain_state_dict_forces_quick_gelu(tmp_path, monkeypatch):
    path = tmp_path / "RN-openai.pt"
    state = dict(_reference_model().state_dict())
    state.update(input_resolution=torch.tensor(224), context_length=torch.tensor(77))
    torch.save(state, path)
    import open_clip

    seen = []
    real = open_clip.create_model
    monkeypatch.setattr(
        open_clip, "create_model", lambda *a, **kw: seen.append(kw.get("force_quick_gelu")) or real(*a, **kw)
    )
    load_clip(ModelSpec(str(TINY_RN), weights=path))
    assert seen == [True]


def test_openai_torchscript_archive(tmp_path, reference_scores):
    """openai/CLIP distributes RN50.pt as a TorchScript archive; its tensors are what we load."""
    model = _openai_style(_reference_model()).eval()
    path = tmp_path / "RN50-like.pt"
    with pytest.warns(FutureWarning):  # torch.jit.script is deprecated, but that is how OpenAI shipped
        torch.jit.save(torch.jit.script(model), str(path))
    assert _scores(ModelSpec(str(TINY_RN), weights=path)) == reference_scores


def test_weights_of_another_architecture_are_explained(tmp_path):
    torch.manual_seed(0)
    vit, _ = load_clip(ModelSpec(str(TINY_VIT), "none"))
    path = tmp_path / "vit.pt"
    torch.save(vit.state_dict(), path)
    with pytest.raises(WeightsMismatch, match=r"does not fit model tiny-rn.*--model"):
        load_clip(ModelSpec(str(TINY_RN), weights=path))


@pytest.mark.parametrize("content", [b"", b"hello world", b"PK\x03\x04 not really a zip"])
def test_a_file_that_is_not_a_checkpoint(tmp_path, content):
    path = tmp_path / "weights.pt"
    path.write_bytes(content)
    with pytest.raises(WeightsMismatch, match="is not a CLIP checkpoint") as err:
        load_clip(ModelSpec(str(TINY_RN), weights=path))
    assert str(path) in str(err.value) and "weights_only" not in str(err.value)


def test_missing_weights_file():
    with pytest.raises(WeightsUnavailable, match="does not exist"):
        load_clip(ModelSpec(str(TINY_RN), weights=Path("/nonexistent/RN50.pt")))


def test_unknown_model_and_tag():
    with pytest.raises(UnknownModel, match="unknown model 'RN5O'") as err:
        load_clip(ModelSpec("RN5O"))
    assert "a model config file needs that file again: --model PATH/RN5O.json" in str(err.value)
    with pytest.raises(UnknownModel, match=r"no pretrained weights tagged 'laion9b'.*openai"):
        load_clip(ModelSpec("RN50", "laion9b"))


def test_environment_variable_names_the_weights(monkeypatch, tmp_path):
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "RN50.pt"))
    spec = ModelSpec.from_options(None, None, None)
    assert spec.weights == tmp_path / "RN50.pt" and spec.arch == "RN50"
    assert ModelSpec.from_options(None, None, "other.pt").weights == Path("other.pt")


def test_missing_weights_offline_gives_a_short_message_and_no_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != WEIGHTS_ENV}
    env.update(HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1", XDG_CACHE_HOME=str(tmp_path / "cache"))
    photo = tmp_path / "a.png"
    from ..conftest import photo as make_photo

    make_photo(64, 48).save(photo)
    proc = subprocess.run(
        [sys.executable, "-m", "clipiqa_desktop", "score", str(photo)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "--weights FILE" in proc.stderr and WEIGHTS_ENV in proc.stderr and "connect" in proc.stderr
    assert len(proc.stderr.splitlines()) <= 6
    assert proc.stdout == ""


def test_model_id_of_a_weights_file_includes_its_content(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "open_clip_pytorch_model.bin").write_bytes(b"one model")
    (b / "open_clip_pytorch_model.bin").write_bytes(b"another model")
    id_a = ModelSpec("RN50", weights=a / "open_clip_pytorch_model.bin").model_id
    id_b = ModelSpec("RN50", weights=b / "open_clip_pytorch_model.bin").model_id
    assert id_a.startswith("RN50/file:open_clip_pytorch_model.bin#") and id_a != id_b


def test_for_model_id_rebuilds_the_model_of_stored_scores():
    current = ModelSpec("RN50", "openai")
    assert current.for_model_id("RN50/openai") is current
    assert current.for_model_id("ViT-B-32/laion2b_s34b_b79k") == ModelSpec("ViT-B-32", "laion2b_s34b_b79k")
    with pytest.raises(UnknownModel, match=r"weights file RN50\.pt"):
        current.for_model_id("RN50/file:RN50.pt#12345678")


@pytest.mark.parametrize(("tag", "quick"), [("openai", True), ("yfcc15m", True), ("cc12m", True)])
def test_quick_gelu_follows_the_pretrained_config(monkeypatch, tag, quick):
    import open_clip

    from clipiqa_desktop.scoring import model as model_mod

    seen = []

    def fake_create(arch, pretrained=None, force_quick_gelu=False, **kw):
        seen.append(force_quick_gelu)
        raise RuntimeError("stop")

    monkeypatch.setattr(model_mod, "_weights_cached", lambda a, t: True)
    monkeypatch.setattr(open_clip, "create_model", fake_create)
    with pytest.raises(RuntimeError, match="stop"):
        load_clip(ModelSpec("RN50", tag))
    assert seen == [quick]
