"""Loading a CLIP model through open_clip: by name and pretrained tag, or from a local weights file.

Weights come from (first match wins):
1. `--weights FILE` (or the CLIPIQA_WEIGHTS environment variable): an OpenAI CLIP checkpoint as
   openai/CLIP distributes it (TorchScript archive such as RN50.pt, or a plain state dict) or an
   open_clip checkpoint (state dict, optionally under "state_dict", optionally .safetensors);
2. open_clip's normal download/cache for the pretrained tag (e.g. RN50 + openai).
Every failure becomes a ScoringError whose message says what to do.
"""

from __future__ import annotations

import logging
import os
import socket
import warnings
import zipfile
from pathlib import Path
from typing import Any

import open_clip
import torch
from torch import nn

from .constants import WEIGHTS_ENV
from .errors import UnknownModel, WeightsMismatch, WeightsUnavailable
from .spec import ModelSpec

log = logging.getLogger(__name__)

# Architecture-only keys that OpenAI's checkpoints carry beside the tensors.
# Random-weight models (tests, benchmarks) are seeded so that two runs build the same network.
RANDOM_INIT_SEED = 0
_OPENAI_EXTRA_KEYS = ("input_resolution", "context_length", "vocab_size")


def register_model_config(path: Path) -> str:
    """Register an open_clip model config JSON file; its file stem becomes the architecture name."""
    if not path.is_file():
        raise UnknownModel(f"model config {path} does not exist")
    open_clip.add_model_config(path)
    return path.stem


def resolve_arch(arch: str) -> str:
    """Accept an open_clip architecture name or the path of a config JSON."""
    if arch.endswith(".json"):
        return register_model_config(Path(arch).expanduser())
    if arch not in open_clip.list_models():
        close = [m for m in open_clip.list_models() if m.lower().startswith(arch.lower()[:3])][:8]
        hint = f" (similar: {', '.join(close)})" if close else ""
        raise UnknownModel(
            f"unknown model {arch!r}{hint}; open_clip knows e.g. RN50, RN101, ViT-B-32, ViT-B-16, ViT-L-14 "
            "(its full list: python -c 'import open_clip; print(open_clip.list_models())'); "
            f"a folder indexed with a model config file needs that file again: --model PATH/{arch}.json"
        )
    return arch


def _read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], bool]:
    """Read a weights file into a state dict. Returns (state_dict, is_openai_format)."""
    if not path.is_file():
        raise WeightsUnavailable(f"weights file {path} does not exist")
    openai_format = False
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: Any = load_file(str(path))
        elif zipfile.is_zipfile(path) and _is_torchscript(path):
            # openai/CLIP ships TorchScript archives (RN50.pt); only their tensors are used.
            with warnings.catch_warnings():  # jit.load is deprecated, but that is the format shipped
                warnings.simplefilter("ignore", FutureWarning)
                obj = torch.jit.load(str(path), map_location="cpu").state_dict()
            openai_format = True
        else:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except OSError as exc:
        raise WeightsMismatch(f"cannot read weights file {path}: {exc.strerror or exc}") from exc
    except Exception as exc:  # torch/pickle/zip errors of many kinds from a file that is no checkpoint
        log.info("reading %s failed: %r", path, exc)
        raise WeightsMismatch(_NOT_A_CHECKPOINT.format(path=path)) from exc
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsMismatch(_NOT_A_CHECKPOINT.format(path=path))
    state = {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in obj.items()}
    if any(k in state for k in _OPENAI_EXTRA_KEYS):
        openai_format = True
    for key in _OPENAI_EXTRA_KEYS:
        state.pop(key, None)
    return state, openai_format


_NOT_A_CHECKPOINT = (
    "{path} is not a CLIP checkpoint this program can read (expected an OpenAI .pt, an open_clip "
    ".pt/.bin state dict, or .safetensors)"
)


def _is_torchscript(path: Path) -> bool:
    with zipfile.ZipFile(path) as zf:
        return any(name.endswith("constants.pkl") or "/code/" in name for name in zf.namelist())


def _missing_weights_message(spec: ModelSpec, cause: BaseException) -> str:
    return (
        f"The CLIP weights for {spec.arch} ({spec.pretrained}) are not on this machine and could not be "
        f"downloaded ({type(cause).__name__}).\n"
        "Fix it with one of:\n"
        "  --weights FILE          use a checkpoint you already have (e.g. OpenAI's RN50.pt)\n"
        f"  {WEIGHTS_ENV}=FILE    the same, as an environment variable\n"
        "  connect to the internet once: the weights are downloaded and cached for offline use\n"
        "Or, without CLIP: --model none measures focus, exposure and faces from the pixels alone"
    )


def _load_state(model: nn.Module, state: dict[str, torch.Tensor], arch: str, path: Path) -> None:
    scale = model.state_dict()["logit_scale"]
    if "logit_scale" in state and state["logit_scale"].ndim != scale.ndim:
        state["logit_scale"] = state["logit_scale"].reshape(scale.shape)
    result = model.load_state_dict(state, strict=False)
    # Tolerate only the causal attention mask: a buffer open_clip builds itself, which TorchScript
    # archives nevertheless save.
    missing = [k for k in result.missing_keys if not k.endswith("attn_mask")]
    unexpected = [k for k in result.unexpected_keys if not k.endswith("attn_mask")]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing tensors (first: {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensors (first: {unexpected[0]})")
        raise WeightsMismatch(
            f"weights file {path} does not fit model {arch}: {'; '.join(parts)}. Pick the matching --model."
        )


def _model_from_file(arch: str, spec: ModelSpec) -> nn.Module:
    assert spec.weights is not None
    state, openai_format = _read_checkpoint(spec.weights)
    model = open_clip.create_model(arch, pretrained=None, force_quick_gelu=openai_format)
    try:
        _load_state(model, state, arch, spec.weights)
    except WeightsMismatch:
        raise
    except RuntimeError as exc:  # tensor shape mismatches
        raise WeightsMismatch(
            f"weights file {spec.weights} does not fit model {arch}: {str(exc).splitlines()[-1].strip()} "
            "Pick the matching --model."
        ) from exc
    return model


def load_clip(spec: ModelSpec) -> tuple[nn.Module, Any]:
    """Build the model in eval mode on the CPU, with its weights, and its tokenizer.

    QuickGELU is forced whenever OpenAI weights are used: open_clip would otherwise only warn and
    build plain GELU, which silently changes every score.
    """
    arch = resolve_arch(spec.arch)
    if spec.weights is not None:
        model = _model_from_file(arch, spec)
    elif spec.pretrained.lower() in ("none", "random", ""):
        log.warning("building %s with RANDOM weights: scores are meaningless", arch)
        with torch.random.fork_rng(devices=[]):  # same random net every run, global RNG untouched
            torch.manual_seed(RANDOM_INIT_SEED)
            model = open_clip.create_model(arch, pretrained=None)
    else:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        if spec.pretrained not in tags:
            raise UnknownModel(
                f"{arch} has no pretrained weights tagged {spec.pretrained!r}; "
                f"known tags: {', '.join(tags) or 'none (use --weights FILE)'}"
            )
        if not _weights_cached(arch, spec.pretrained) and not _hub_reachable():
            raise WeightsUnavailable(_missing_weights_message(spec, ConnectionError("no network")))
        try:
            model = open_clip.create_model(
                arch, pretrained=spec.pretrained, force_quick_gelu=_needs_quick_gelu(arch, spec.pretrained)
            )
        except Exception as exc:  # open_clip wraps hub/urllib errors of many kinds
            if _looks_like_network_error(exc):
                raise WeightsUnavailable(_missing_weights_message(spec, exc)) from exc
            raise
    model.eval()
    tokenizer = open_clip.get_tokenizer(arch)
    return model, tokenizer


def _needs_quick_gelu(arch: str, tag: str) -> bool:
    """Weights trained with QuickGELU (OpenAI's, and e.g. RN50 yfcc15m/cc12m) must run with it.

    open_clip records this in the pretrained config but only warns when the model disagrees, which
    silently changes every score; so it is forced from the config here.
    """
    cfg = open_clip.get_pretrained_cfg(arch, tag) or {}
    return tag == "openai" or bool(cfg.get("quick_gelu"))


def _weights_cached(arch: str, tag: str) -> bool:
    """True when open_clip's Hugging Face cache already holds the weights for (arch, tag)."""
    cfg = open_clip.get_pretrained_cfg(arch, tag) or {}
    repo = str(cfg.get("hf_hub") or "").strip("/")
    if not repo:
        return True  # not a hub download (URL or file): let open_clip try its own way
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return True
    files = (cfg.get("hf_hub_filename") or "open_clip_pytorch_model.bin", "open_clip_model.safetensors")
    return any(isinstance(try_to_load_from_cache(repo, f), str) for f in files)


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick connection test, so an offline user gets the explanation at once, not after ~1 min of
    retries. Behind a proxy (HTTPS_PROXY/ALL_PROXY) we cannot test this way and let the download try."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = endpoint.split("://", 1)[-1].split("/", 1)[0]
    name, _, port = host.partition(":")
    try:
        with socket.create_connection((name, int(port or 443)), timeout=timeout):
            return True
    except OSError:
        return False


def _looks_like_network_error(exc: BaseException) -> bool:
    names = {type(e).__name__ for e in _chain(exc)}
    hints = ("Connect", "Timeout", "HTTP", "Offline", "LocalEntryNotFound", "URLError", "gaierror")
    return any(h in n for n in names for h in hints) or "Failed to download" in str(exc)


def _chain(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen
