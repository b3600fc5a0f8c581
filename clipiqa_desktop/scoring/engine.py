"""The CLIP-IQA scorer: image tensors in, per-attribute scores and image embeddings out.

Score of a pair (positive, negative) for an image with unit embedding e (scoring/scores.py):
    s = softmax(scale · [e·t₊, e·t₋])[0] = sigmoid(scale · (cos₊ − cos₋)),
with t± the unit text features and scale = logit_scale.exp() (100 for OpenAI weights). Because s
depends on e only, the embedding is returned with the scores: a new prompt pair can later be
scored over a whole catalog from stored embeddings (`score_embeddings`) without any image.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from torch import nn

from .attributes import AttributePair
from .device import Precision, resolve_device, resolve_engine, resolve_precision, torch_dtype
from .errors import ScoringError
from .learned import is_learned
from .model import ModelSpec, load_clip
from .pooling import make_size_agnostic, min_input_side
from .scores import pair_scores

if TYPE_CHECKING:
    from .onnx_engine import EngineChoice, OnnxTower

log = logging.getLogger(__name__)

# CLIP's own normalisation constants (not ImageNet's).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class ImageScores:
    """Scores of one image (attribute key -> probability of the positive prompt) and its embedding."""

    scores: dict[str, float]
    embedding: np.ndarray = field(repr=False)  # unit-length float32 vector


class ClipIqaScorer:
    """Holds one CLIP model on one device; thread-safe for use from a single worker thread at a time.

    The text tower stays in fp32 (text features are computed once per prompt and cached); only the
    image tower runs in the chosen precision (fp16 on GPUs, bf16 + channels-last on capable CPUs).
    On the CPU the image tower can run in ONNX Runtime instead (`engine`, scoring/onnx_engine.py):
    "onnx" always, "auto" where it measures faster than torch on this machine (remembered).
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: object,
        device: torch.device,
        precision: Precision = "fp32",
        model_id: str = "custom",
        engine: str = "torch",
        threads: int | None = None,
    ) -> None:
        self.model_id = model_id
        self.device = device
        self.precision: Precision = precision
        self._dtype = torch_dtype(precision)
        self._tokenizer = tokenizer
        model.eval()
        # open_clip's CLIP classes are not typed precisely enough for mypy; these two are.
        self._text_model: Any = model  # the text tower stays fp32
        self._visual: nn.Module = cast(nn.Module, model.visual)
        self.input_multiple = make_size_agnostic(self._visual)
        # Smaller images are padded up to this side (pad_to_min_side) rather than rejected.
        self.min_side = min_input_side(self._visual)
        self._mean = torch.tensor(CLIP_MEAN, device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(CLIP_STD, device=device).view(1, 3, 1, 1)
        # What runs the image tower: "torch", or "onnx" (an OnnxTower); see engine_choice for auto.
        self.engine = "torch"
        self.engine_choice: EngineChoice | None = None
        self.engine_note: str | None = None  # why auto runs torch without having measured
        self._onnx: OnnxTower | None = None
        candidate = self._onnx_candidate(engine, threads) if device.type == "cpu" else None
        self._channels_last = device.type == "cpu" and precision == "bf16"
        model.to(device)
        if self._dtype != torch.float32:
            self._visual.to(self._dtype)
        if self._channels_last:
            self._visual.to(memory_format=torch.channels_last)
        self.logit_scale = float(model.state_dict()["logit_scale"].float().exp().item())
        if candidate is not None:
            self._choose(engine, *candidate)
        self._text_cache: dict[str, torch.Tensor] = {}
        self._lock = threading.Lock()
        self.learned_pair: AttributePair | None = None  # CLIP-IQA+ quality_plus, once loaded

    def get(self) -> ClipIqaScorer:
        """A loaded scorer is its own provider (see LazyScorer)."""
        return self

    @classmethod
    def load(
        cls,
        spec: ModelSpec,
        device: str = "auto",
        precision: str = "auto",
        engine: str = "auto",
        threads: int | None = None,
    ) -> ClipIqaScorer:
        """Load weights (see scoring.model) and place the model on the resolved device; `engine`
        auto|torch|onnx runs the image tower (DeviceUnavailable for a combination that cannot run)."""
        dev = resolve_device(device)
        eng = resolve_engine(engine, dev, precision)
        prec = "fp32" if eng == "onnx" else resolve_precision(precision, dev)
        model, tokenizer = load_clip(spec)
        scorer = cls(model, tokenizer, dev, prec, model_id=spec.model_id, engine=eng, threads=threads)
        if spec.learned_prompts is not None:
            scorer.add_learned_prompts(spec.learned_prompts)
        return scorer

    def _onnx_candidate(self, engine: str, threads: int | None) -> tuple[OnnxTower, str | None] | None:
        """For engine onnx/auto on the CPU: the ONNX tower (exported from the fp32 tower, before any
        cast) and, for auto, the key its choice is remembered under; None where torch runs without
        asking (auto with torch remembered, ONNX Runtime missing or unable). For "onnx" every failure
        is the user's error; for "auto" it is logged, and remembered when it is the tower's own."""
        if engine == "torch":
            return None
        from .onnx_engine import (
            EngineChoice,
            ExportUnsupported,
            NormalisedTower,
            choice_key,
            export_path,
            load_onnx_tower,
            onnx_unavailable,
            remember_choice,
            remembered_choice,
            tower_fingerprint,
        )

        reason = onnx_unavailable()
        if reason is not None:
            if engine == "onnx":
                raise ScoringError(f"--engine onnx: {reason}")
            log.info("engine auto: %s; the image tower runs in torch", reason)
            self.engine_note = reason
            return None
        tower = NormalisedTower(self._visual, self._mean, self._std).eval()
        fingerprint = tower_fingerprint(tower, self.model_id)
        threads = max(1, threads or torch.get_num_threads())
        key = None
        if engine == "auto":
            key = choice_key(fingerprint, self.precision, threads)
            self.engine_choice = remembered_choice(key)
            if self.engine_choice is not None and self.engine_choice.engine == "torch":
                return None  # no session built, no export loaded
        try:
            return load_onnx_tower(tower, export_path(self.model_id, fingerprint), threads), key
        except ScoringError as exc:
            if engine == "onnx":
                raise
            log.warning("engine auto: %s; the image tower runs in torch", exc)
            self.engine_note = str(exc)
            if isinstance(exc, ExportUnsupported) and key is not None:
                self.engine_choice = EngineChoice("torch", reason=str(exc))
                remember_choice(key, self.engine_choice)
            return None

    def _choose(self, engine: str, tower: OnnxTower, key: str | None) -> None:
        """Run the tower in ONNX Runtime: always for "onnx"; for "auto" where it is the remembered
        choice, or measures faster now (then remembered)."""
        if engine == "auto" and key is not None:
            from .onnx_engine import measure_choice

            if self.engine_choice is None:
                log.warning(
                    "timing the image encoder in torch and in ONNX Runtime, once for this model on "
                    "this machine (a few seconds; the faster is remembered)"
                )
                self.engine_choice = measure_choice(key, self._encode_torch, tower)
            log.info("engine auto: %s (%s)", self.engine_choice.engine, self.engine_choice.describe())
            if self.engine_choice.engine != "onnx":
                return
        self._onnx, self.engine, self.precision = tower, "onnx", "fp32"
        self._dtype, self._channels_last = torch.float32, False
        # The torch copy of the image tower is no longer used: let its weights go (~150 MB for RN50).
        self._text_model.visual = nn.Identity()
        self._visual = nn.Identity()

    def describe(self) -> str:
        """What runs the image tower, for the photographer: 'onnx, fp32, cpu (auto: measured ...)'."""
        text = f"{self.engine}, {self.precision}, {self.device.type}"
        if self.engine_choice is not None:
            why = "" if self.engine_choice.reason else ", the faster here"
            text += f" (auto{why}; {self.engine_choice.describe()})"
        elif self.engine_note is not None:
            text += f" (auto: {self.engine_note})"
        return text

    def add_learned_prompts(self, path: Path) -> AttributePair:
        """Load a CLIP-IQA+ context file (scoring/learned.py) and cache its two text features; the
        returned `quality_plus` pair scores with them like any pair. LearnedPromptError when the
        file does not fit this model."""
        from .learned import learned_pair, learned_text_features

        pair = learned_pair(path)
        with self._lock:
            feats = learned_text_features(self._text_model, self._tokenizer, path, self.model_id)
            self._text_cache[pair.positive], self._text_cache[pair.negative] = feats[0], feats[1]
        self.learned_pair = pair
        return pair

    @property
    def embed_dim(self) -> int:
        """Length of the image embedding (1024 for RN50)."""
        return int(self.text_features(["photo."]).shape[-1])

    # --- text ---------------------------------------------------------------------------------
    def tokenize(self, prompts: Sequence[str]) -> torch.Tensor:
        return self._tokenizer(list(prompts))  # type: ignore[operator]

    def text_features(self, prompts: Sequence[str]) -> torch.Tensor:
        """Unit text features (len(prompts), D) in fp32, cached per prompt string."""
        with self._lock:
            missing = [p for p in dict.fromkeys(prompts) if p not in self._text_cache]
            learned = [p for p in missing if is_learned(p)]
            if learned:  # never tokenize a cache key as text: that would score random prompts
                raise ScoringError(
                    "quality_plus needs its learned-prompts file (--learned-prompts FILE, or Settings)"
                )
            if missing:
                with torch.inference_mode():
                    tokens = self.tokenize(missing).to(self.device)
                    feats = self._text_model.encode_text(tokens).float()
                    feats = nn.functional.normalize(feats, dim=-1)
                for prompt, feat in zip(missing, feats, strict=True):
                    self._text_cache[prompt] = feat
            return torch.stack([self._text_cache[p] for p in prompts])

    # --- images --------------------------------------------------------------------------------
    def encode_images(self, batch: torch.Tensor) -> torch.Tensor:
        """Unit image embeddings (N, D) in fp32 for a uint8 batch (N, 3, H, W) of RGB pixels."""
        if batch.dtype != torch.uint8 or batch.ndim != 4 or batch.shape[1] != 3:
            raise ValueError(f"expected a uint8 (N, 3, H, W) batch, got {tuple(batch.shape)} {batch.dtype}")
        with torch.inference_mode():
            if self._onnx is not None:
                feats = torch.from_numpy(self._onnx(batch.numpy()))
            else:
                feats = self._encode_torch(batch)
            if not torch.isfinite(feats).all():
                raise ScoringError("the image encoder produced non-finite values (try --precision fp32)")
            return nn.functional.normalize(feats, dim=-1)

    def _encode_torch(self, batch: torch.Tensor) -> torch.Tensor:
        """The torch image tower's raw features (N, D), fp32, for a uint8 batch."""
        with torch.inference_mode():
            x = batch.to(self.device, non_blocking=True).float().div_(255.0)
            x = ((x - self._mean) / self._std).to(self._dtype)
            if self._channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            return self._visual(x).float()

    def score_embeddings(
        self, embeddings: torch.Tensor | np.ndarray, pairs: Sequence[AttributePair]
    ) -> np.ndarray:
        """Scores (N, K) for stored embeddings: one matrix product, no image needed."""
        emb = embeddings.float().cpu().numpy() if isinstance(embeddings, torch.Tensor) else embeddings
        text = self.text_features([p.positive for p in pairs] + [p.negative for p in pairs]).cpu().numpy()
        k = len(pairs)
        return pair_scores(emb, text[:k], text[k:], self.logit_scale)

    def score_batch(self, batch: torch.Tensor, pairs: Sequence[AttributePair]) -> list[ImageScores]:
        """Encode a batch of equally sized images and score every pair for each."""
        emb = self.encode_images(batch).cpu()
        table = self.score_embeddings(emb, pairs)
        keys = [p.key for p in pairs]
        return [
            ImageScores({k: float(v) for k, v in zip(keys, row, strict=True)}, e.numpy().copy())
            for row, e in zip(table, emb, strict=True)
        ]


# CLIP's mean colour in 8 bits: padding of this colour normalises to (almost exactly) zero.
PAD_RGB = tuple(round(255 * m) for m in CLIP_MEAN)


def pad_to_min_side(tensor: torch.Tensor, min_side: int) -> torch.Tensor:
    """Pad a uint8 (3, H, W) image, centred, up to `min_side` on each short side (never resized).

    The smallest honest fix for thin or tiny photos (a 284 × 25 web banner, a 1 × 1 pixel): a
    ResNet tower needs 31 px per side, and stretching would invent detail and change the aspect.
    The padding is CLIP's mean colour, i.e. zero once normalised. Larger images are returned as is.
    """
    _, h, w = tensor.shape
    if h >= min_side and w >= min_side:
        return tensor
    ph, pw = max(0, min_side - h), max(0, min_side - w)
    out = torch.empty((3, h + ph, w + pw), dtype=tensor.dtype)
    out[:] = torch.tensor(PAD_RGB, dtype=tensor.dtype).view(3, 1, 1)
    out[:, ph // 2 : ph // 2 + h, pw // 2 : pw // 2 + w] = tensor
    return out


def image_to_tensor(img: object) -> torch.Tensor:
    """An 8-bit RGB PIL image -> uint8 tensor (3, H, W); normalisation happens on the device."""
    arr = np.array(img, dtype=np.uint8)  # a private, writable copy for torch
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an RGB image, got array of shape {arr.shape}")
    return torch.from_numpy(arr).permute(2, 0, 1)
