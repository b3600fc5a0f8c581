"""Which model and weights to use, and a scorer that loads them only when first needed.

Neither imports torch or open_clip: the window and the catalog commands can name a model, and the
indexer can tell that nothing needs scoring, without paying the seconds those imports cost.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .constants import DEFAULT_MODEL, DEFAULT_PRETRAINED, NO_MODEL, WEIGHTS_ENV
from .errors import UnknownModel

if TYPE_CHECKING:
    from .attributes import AttributePair
    from .engine import ClipIqaScorer


@dataclass(frozen=True)
class ModelSpec:
    """Which network and which weights. `pretrained="none"` builds random weights (tests, benchmarks)."""

    arch: str = DEFAULT_MODEL
    pretrained: str = DEFAULT_PRETRAINED
    weights: Path | None = None
    # CLIP-IQA+ context file (scoring/learned.py): adds `quality_plus`; not part of model_id
    learned_prompts: Path | None = None

    @cached_property
    def learned_pair(self) -> AttributePair | None:
        """The `quality_plus` pair of `learned_prompts` (hashes the file, no torch), or None.
        LearnedPromptError when the file cannot be read."""
        if self.learned_prompts is None:
            return None
        from .learned import learned_pair

        return learned_pair(self.learned_prompts)

    @property
    def pixels_only(self) -> bool:
        """`--model none`: no CLIP at all, only the pixel measures (focus, exposure, faces)."""
        return self.arch == NO_MODEL

    @cached_property
    def model_id(self) -> str:
        """A stable name for this model's scores, stored with them: 'RN50/openai', or for a weights
        file 'RN50/file:RN50.pt#1a2b3c4d' (name and a content hash, so two files of the same name,
        such as every open_clip_pytorch_model.bin, never share scores); 'none' without a model."""
        if self.pixels_only:
            return NO_MODEL
        source = f"file:{self.weights.name}#{_file_hash(self.weights)}" if self.weights else self.pretrained
        arch = Path(self.arch).stem if self.arch.endswith(".json") else self.arch
        return f"{arch}/{source}"

    def for_model_id(self, model_id: str) -> ModelSpec:
        """The spec that rebuilds the model `model_id` was made with (to encode new prompts for its
        stored embeddings); this spec itself when it is that model (without learned prompts: plain
        texts are encoded, and a broken context file must not stop that)."""
        if model_id == NO_MODEL:
            raise UnknownModel(
                "this folder was indexed without a CLIP model (--model none): prompt pairs need one; "
                "index it again with a model (e.g. the default RN50) first"
            )
        if self.model_id == model_id:
            return replace(self, learned_prompts=None) if self.learned_prompts else self
        arch, _, source = model_id.partition("/")
        if source.startswith("file:"):
            name = source[5:].split("#", 1)[0]
            raise UnknownModel(
                f"these scores were made with the weights file {name}; choose that file "
                "(--weights, or Settings in the window) to score new prompts for them"
            )
        if self.arch.endswith(".json") and Path(self.arch).stem == arch:
            arch = self.arch
        return ModelSpec(arch, source)

    @classmethod
    def from_options(
        cls,
        arch: str | None,
        pretrained: str | None,
        weights: str | None,
        learned_prompts: str | None = None,
    ) -> ModelSpec:
        """Apply defaults and the CLIPIQA_WEIGHTS environment variable."""
        weights = weights or os.environ.get(WEIGHTS_ENV) or None
        return cls(
            arch=arch or DEFAULT_MODEL,
            pretrained=pretrained or DEFAULT_PRETRAINED,
            weights=Path(weights).expanduser() if weights else None,
            learned_prompts=Path(learned_prompts).expanduser() if learned_prompts else None,
        )


class LazyScorer:
    """A scorer that loads its model on first use, so work that needs none (an unchanged folder,
    reading the catalog) starts instantly and never imports torch. `get()` is thread-safe and loads
    once; the device is resolved then too."""

    def __init__(
        self, spec: ModelSpec, device: str = "auto", precision: str = "auto", engine: str = "auto"
    ) -> None:
        self.spec = spec
        self.model_id = spec.model_id
        self._device, self._precision, self._engine = device, precision, engine
        self._scorer: ClipIqaScorer | None = None
        self._lock = threading.Lock()

    @property
    def learned_pair(self) -> AttributePair | None:
        """The CLIP-IQA+ `quality_plus` pair of the spec's learned prompts, without loading."""
        return self.spec.learned_pair

    @property
    def loaded(self) -> bool:
        return self._scorer is not None

    @property
    def device(self) -> Any:
        """The torch device (resolving it imports torch)."""
        return self.get().device if self._scorer is not None else _resolve(self._device)

    @property
    def pixels_only(self) -> bool:
        return self.spec.pixels_only

    def get(self) -> ClipIqaScorer:
        if self.spec.pixels_only:
            raise UnknownModel("no CLIP model was chosen (--model none): only the pixel measures are made")
        with self._lock:
            if self._scorer is None:
                from .engine import ClipIqaScorer

                self._scorer = ClipIqaScorer.load(self.spec, self._device, self._precision, self._engine)
            return self._scorer


def _file_hash(path: Path) -> str:
    """8 hex digits of BLAKE2b over the size and the first and last MiB; '' if unreadable."""
    try:
        size = path.stat().st_size
        h = hashlib.blake2b(size.to_bytes(8, "little"), digest_size=4)
        with path.open("rb") as f:
            h.update(f.read(1 << 20))
            if size > 2 << 20:
                f.seek(-(1 << 20), 2)
                h.update(f.read(1 << 20))
        return h.hexdigest()
    except OSError:
        return ""


def _resolve(device: str) -> Any:
    from .device import resolve_device

    return resolve_device(device)
