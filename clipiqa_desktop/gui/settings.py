"""Application settings: model, weights, device, analysis size, catalog; persisted with QSettings.

Command-line options override the stored values for this run only.
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

from ..catalog.catalog import default_catalog_path
from ..catalog.connection import is_server_address
from ..culling.sidecars import DEFAULT_NAMING, NAMINGS
from ..culling.xmp_write import DEFAULT_REJECT_AS, REJECT_AS
from ..scoring.constants import DEFAULT_MODEL, DEFAULT_PRETRAINED, WEIGHTS_ENV

MAX_RECENT = 10
DEFAULT_THUMB_CACHE_MB = 256
PERSISTED = (
    "model",
    "pretrained",
    "weights",
    "learned_prompts",
    "device",
    "precision",
    "engine",
    "size",
    "catalog",
    "thumb_cache_mb",
    "sidecar_naming",
    "reject_as",
    "write_sidecars",
)


@dataclass(frozen=True)
class AppSettings:
    model: str = DEFAULT_MODEL
    pretrained: str = DEFAULT_PRETRAINED
    weights: str = ""
    # CLIP-IQA+ learned prompts (a context file the user supplies): adds quality_plus when indexing
    learned_prompts: str = ""
    device: str = "auto"
    precision: str = "auto"
    engine: str = "auto"  # what runs the image tower on the CPU: auto, torch, onnx
    size: str = "auto"  # "auto", "full" or a pixel count
    catalog: str = ""
    recent: tuple[str, ...] = field(default_factory=tuple)
    thumb_cache_mb: int = DEFAULT_THUMB_CACHE_MB  # the thumbnail cache's budget in MB
    # XMP hand-off (culling/handoff.py): sidecar naming ("darktable" IMG.CR3.xmp, "adobe" IMG.xmp),
    # how a reject is written ("rating" -1, "one-star", "label"), and whether each decision is
    # written to its sidecar as the photographer culls (off: see README "Handing the cull to your
    # editor"; File > Export XMP sidecars… writes them in one step).
    sidecar_naming: str = DEFAULT_NAMING
    reject_as: str = DEFAULT_REJECT_AS
    write_sidecars: bool = False
    # Index the sub-folders of the open folder too. Not saved here: the window remembers the
    # choice per folder (`subfolders_choice`) and sets it for the folder it opens.
    recursive: bool = False

    @property
    def catalog_location(self) -> Path | str:
        """The catalog's file, or a studio's PostgreSQL address (postgresql://USER@HOST/DB) as typed."""
        if not self.catalog:
            return default_catalog_path()
        return self.catalog if is_server_address(self.catalog) else Path(self.catalog).expanduser()

    def size_option(self) -> int | str | None:
        """The analysis size for IndexOptions: a pixel count, None (full) or "auto" (by device)."""
        if self.size in ("full", "auto"):
            return None if self.size == "full" else "auto"
        return int(self.size)

    def with_recent(self, folder: Path) -> AppSettings:
        text = str(folder)
        return replace(self, recent=(text, *[r for r in self.recent if r != text])[:MAX_RECENT])

    # --- persistence ---------------------------------------------------------------------------------
    @classmethod
    def load(cls, store: QSettings | None = None) -> AppSettings:
        store = store or QSettings()
        d = cls()

        def get(key: str, default: str) -> str:
            value = store.value(key, default)
            return str(value) if value is not None else default

        try:
            cache_mb = max(16, int(get("thumb_cache_mb", str(d.thumb_cache_mb))))
        except ValueError:
            cache_mb = d.thumb_cache_mb
        naming = get("sidecar_naming", d.sidecar_naming)
        reject_as = get("reject_as", d.reject_as)
        raw: Any = store.value("recent", [])
        recent: list[Any] = [raw] if isinstance(raw, str) else list(raw or [])
        return cls(
            model=get("model", d.model),
            pretrained=get("pretrained", d.pretrained),
            weights=get("weights", d.weights),
            learned_prompts=get("learned_prompts", d.learned_prompts),
            device=get("device", d.device),
            precision=get("precision", d.precision),
            engine=get("engine", d.engine),
            size=get("size", d.size),
            catalog=get("catalog", d.catalog),
            recent=tuple(str(r) for r in recent)[:MAX_RECENT],
            thumb_cache_mb=cache_mb,
            sidecar_naming=naming if naming in NAMINGS else d.sidecar_naming,
            reject_as=reject_as if reject_as in REJECT_AS else d.reject_as,
            write_sidecars=get("write_sidecars", "false").lower() in ("1", "true"),
        )

    def save(self, store: QSettings | None = None) -> None:
        store = store or QSettings()
        for key in PERSISTED:
            store.setValue(key, getattr(self, key))
        store.setValue("recent", list(self.recent))
        store.sync()

    def with_cli(self, args: argparse.Namespace) -> AppSettings:
        """Apply command-line options (those given) on top of the stored settings."""
        import os

        changes: dict[str, Any] = {}
        for key in ("model", "pretrained", "weights", "catalog", "device", "precision", "engine"):
            value = getattr(args, key, None)
            if value is not None and not (key in ("device", "precision", "engine") and value == "auto"):
                changes[key] = str(value)
        size = getattr(args, "size", "auto")
        if size != "auto":
            changes["size"] = "full" if size is None else str(size)
        if "weights" not in changes and os.environ.get(WEIGHTS_ENV):
            changes["weights"] = os.environ[WEIGHTS_ENV]
        return replace(self, **changes)


def _folder_key(folder: Path) -> str:
    return "subfolders/" + hashlib.sha1(str(folder).encode("utf-8", "surrogateescape")).hexdigest()


def subfolders_choice(folder: Path, store: QSettings | None = None) -> bool | None:
    """Whether the user chose to include the sub-folders of `folder` (None: never chose)."""
    value = (store or QSettings()).value(_folder_key(folder))
    if value is None:
        return None
    return str(value).lower() in ("1", "true")


def remember_subfolders(folder: Path, include: bool, store: QSettings | None = None) -> None:
    store = store or QSettings()
    store.setValue(_folder_key(folder), include)
    store.sync()
