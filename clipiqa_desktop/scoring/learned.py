"""CLIP-IQA+ learned prompts: the `quality_plus` attribute from a context file the user supplies.

CLIP-IQA+ (Wang, Chan, Loy, AAAI 2023) keeps CLIP frozen and learns, CoOp-style, the word
embeddings around the quality prompt pair instead of writing them: 16 context vectors of the text
transformer's width (512 for RN50). Files come in two layouts:

* a tensor `(n_ctx, width)` — one context shared by both prompts (the released RN50 file, 16 × 512);
* `(2, n_ctx, width)` — one context per prompt, "good" then "bad" (later retrained files), saved as
  a tensor or inside a state dict (`params` / `state_dict` → `…prompt_learner.ctx`).

The token sequence fed to the text transformer, per prompt, is
    [start] ctx[:n_ctx // 2] <tokens of "Good photo.."> ctx[n_ctx // 2:] [end] padding
("Bad photo.." for the second prompt; ".." is one token of CLIP's vocabulary): the context vectors
take the place of word embeddings, split around the class words, which is where the released
contexts were trained. The positional embedding, the transformer, the final layer norm, the pooling
at the end token and the projection are the model's own (its `encode_text`, with the word
embeddings swapped through a forward hook), so the two features are exactly comparable with the
image embeddings. The score is the paper's: softmax(scale · [cos_good, cos_bad])[0].

The features depend on the file and the model only, so they are cached like any prompt's (in the
scorer and in the catalog's text_features table) under the texts `learned:<sha256>:good|bad`: a
different file never reuses them, and stored embeddings are scored with a matrix product.

The released files carry a non-commercial licence (S-Lab License 1.0): we ship none; the user
supplies one with `--learned-prompts FILE` or in Settings.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from .attributes import AttributePair
from .errors import ScoringError

log = logging.getLogger(__name__)

KEY = "quality_plus"
ALIASES = ("quality_plus", "quality+")  # what `--attributes` accepts for it
PREFIX = "learned:"
# The class words of the pair, in the reference layout (with its double full stop).
CLASS_TEXTS = ("Good photo..", "Bad photo..")
ACCEPTED_SHAPES = "(n_ctx, width) or (2, n_ctx, width)"


class LearnedPromptError(ScoringError):
    """A learned-prompt file that cannot be used (missing, not a tensor, wrong shape or model)."""


def file_sha256(path: Path) -> str:
    """The file's SHA-256 (hex); LearnedPromptError when it cannot be read."""
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise LearnedPromptError(f"learned-prompts file {path} {what}")
    h = hashlib.sha256()
    try:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except OSError as exc:
        raise LearnedPromptError(f"cannot read learned-prompts file {path}: {exc.strerror or exc}") from exc
    return h.hexdigest()


def learned_pair(path: Path) -> AttributePair:
    """The `quality_plus` pair of this file: its two "prompts" are the cache keys of the learned
    features (no torch needed; the features themselves are built by `learned_text_features`)."""
    digest = file_sha256(path)
    return AttributePair(KEY, f"{PREFIX}{digest}:good", f"{PREFIX}{digest}:bad", "look")


def is_learned(text: str) -> bool:
    """Whether a prompt text is the cache key of a learned prompt (never to be tokenized as text)."""
    return text.startswith(PREFIX)


def load_context(path: Path) -> tuple[Any, int | None]:
    """The file's context as a float32 tensor (2, n_ctx, width), and the token-sequence length the
    file was made for when it records one (a state dict with `token_suffix`), else None."""
    import torch

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise LearnedPromptError(f"learned-prompts file {path} does not exist") from None
    except OSError as exc:
        raise LearnedPromptError(f"cannot read learned-prompts file {path}: {exc.strerror or exc}") from exc
    except Exception as exc:  # pickle/zip errors of many kinds from a file that is no torch file
        log.info("reading %s failed: %r", path, exc)
        raise LearnedPromptError(
            f"{path} is not a learned-prompts file: torch cannot read it as a tensor or state dict"
        ) from None
    sequence: int | None = None
    if isinstance(obj, dict):
        tensors = _tensors(obj)
        found = [(k, v) for k, v in tensors if k == "ctx" or k.endswith(".ctx")]
        suffix = [v for k, v in tensors if k.endswith("token_suffix")]
        if len(found) != 1:
            names = ", ".join(k for k, _ in tensors[:6]) or "no tensors"
            problem = "no" if not found else "more than one"
            raise LearnedPromptError(
                f"{path} is a state dict with {problem} context tensor ('ctx' or '….prompt_learner.ctx'); "
                f"it holds: {names}"
            )
        obj = found[0][1]
        if suffix and suffix[0].ndim == 3:
            sequence = 1 + int(obj.shape[-2]) + int(suffix[0].shape[1])
    if not isinstance(obj, torch.Tensor):
        raise LearnedPromptError(
            f"{path} holds a {type(obj).__name__}, not a tensor or state dict of learned prompts"
        )
    shape = tuple(obj.shape)
    if obj.ndim == 2:
        obj = obj.unsqueeze(0).expand(2, -1, -1)
    if obj.ndim != 3 or obj.shape[0] != 2 or obj.shape[1] < 1 or obj.shape[2] < 1:
        raise LearnedPromptError(
            f"{path} holds a tensor of shape {_shape(shape)}; learned prompts are {ACCEPTED_SHAPES} "
            "(16 × 512 for the released RN50 file)"
        )
    if not obj.is_floating_point():
        raise LearnedPromptError(f"{path} holds a {obj.dtype} tensor, not learned prompt vectors")
    ctx = obj.detach().float().contiguous()
    if not torch.isfinite(ctx).all():
        raise LearnedPromptError(f"{path} holds non-finite values (NaN or infinity)")
    return ctx, sequence


def learned_text_features(model: Any, tokenizer: Any, path: Path, model_id: str) -> Any:
    """Unit text features (2, D) float32 of the file's learned prompts through `model`'s text
    tower. Raises LearnedPromptError when the file does not fit this model."""
    import torch
    from torch import nn

    ctx, sequence = load_context(path)
    embedding = _token_embedding(model, model_id)
    width = int(embedding.embedding_dim)
    n_ctx = int(ctx.shape[1])
    if int(ctx.shape[2]) != width:
        raise LearnedPromptError(
            f"{path} holds context vectors of width {ctx.shape[2]}, but the text encoder of "
            f"{model_id} is {width} wide; use a file trained for {model_id} (or choose its model)"
        )
    tokens = tokenizer(list(CLASS_TEXTS))
    length = int(tokens.shape[1])
    if sequence is not None and sequence != length:
        raise LearnedPromptError(
            f"{path} was made for a tokenizer of {sequence} tokens, but {model_id}'s takes {length}"
        )
    ids = torch.zeros_like(tokens)
    half = n_ctx // 2
    positions = list(range(1, 1 + half))
    for row, seq in enumerate(tokens):
        used = int((seq != 0).sum())  # start, class words, end (pad id is 0)
        words = seq[1 : used - 1]
        need = 2 + n_ctx + len(words)
        if need > length:
            raise LearnedPromptError(
                f"{path} has {n_ctx} context vectors: with {CLASS_TEXTS[row]!r} that makes {need} "
                f"tokens, but {model_id}'s tokenizer takes {length}"
            )
        placeholder = int(words[0])  # any word id below the end token: its embedding is replaced
        ids[row, 0] = seq[0]
        ids[row, 1 : 1 + half] = placeholder
        ids[row, 1 + half : 1 + half + len(words)] = words
        ids[row, 1 + half + len(words) : 1 + n_ctx + len(words)] = placeholder
        ids[row, 1 + n_ctx + len(words)] = seq[used - 1]
        if row == 0:
            positions += list(range(1 + half + len(words), 1 + n_ctx + len(words)))
    if len({int((seq != 0).sum()) for seq in tokens}) != 1:  # both prompts the same length
        raise LearnedPromptError(f"the class words {CLASS_TEXTS} tokenize to different lengths")
    where = torch.tensor(positions)

    def swap(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> torch.Tensor:
        out = output.clone()
        out[:, where] = ctx.to(device=out.device, dtype=out.dtype)
        return out

    device = embedding.weight.device
    handle = embedding.register_forward_hook(swap)
    try:
        with torch.inference_mode():
            feats = model.encode_text(ids.to(device)).float()
    finally:
        handle.remove()
    if not torch.isfinite(feats).all():
        raise LearnedPromptError(f"the learned prompts of {path} give non-finite text features")
    return nn.functional.normalize(feats, dim=-1)


def _token_embedding(model: Any, model_id: str) -> Any:
    from torch import nn

    for owner in (model, getattr(model, "text", None)):
        embedding = getattr(owner, "token_embedding", None)
        if isinstance(embedding, nn.Embedding):
            return embedding
    raise LearnedPromptError(
        f"the text encoder of {model_id} has no word-embedding table to put learned prompts in; "
        "CLIP-IQA+ files fit CLIP text transformers (e.g. RN50)"
    )


def _tensors(obj: dict[Any, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Every tensor of a (nested) state dict, with its dotted name."""
    import torch

    out: list[tuple[str, Any]] = []
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, torch.Tensor):
            out.append((name, value))
        elif isinstance(value, dict):
            out += _tensors(value, name + "." if key not in ("params", "state_dict") else prefix)
    return out


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")" if shape else "() (a single number)"
