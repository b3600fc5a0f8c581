"""Shared fixtures. Qt must be told to render offscreen before anything imports it."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

DATA = Path(__file__).parent / "data"
TINY_RN = DATA / "tiny-rn.json"
TINY_VIT = DATA / "tiny-vit.json"
# Model options for the tiny random test network on the CPU, as the CLI takes them.
# --engine torch: the tests written before the ONNX engine compare against torch's own numbers;
# tests/scoring/test_onnx_engine.py runs onnx and auto.
TINY_ARGS = [
    *("--model", str(TINY_RN), "--pretrained", "none"),
    *("--device", "cpu", "--precision", "fp32", "--engine", "torch"),
]
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _onnx_cache(tmp_path_factory):
    """Exported ONNX towers and remembered engine choices go to a folder of this test session
    (inherited by the CLI and index child processes the tests start), never to the user's cache."""
    from clipiqa_desktop.scoring.constants import CACHE_ENV

    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def tiny_scorer():
    """A tiny randomly initialised ResNet CLIP (fp32, CPU); seeded so every run builds the same net."""
    import torch

    from clipiqa_desktop.scoring import ClipIqaScorer, ModelSpec

    torch.manual_seed(0)
    return ClipIqaScorer.load(ModelSpec(str(TINY_RN), "none"), device="cpu", precision="fp32", engine="torch")


@pytest.fixture
def catalog(tmp_path):
    """A real catalog file in the test's folder (tests/gui has its own, at the window's settings)."""
    from clipiqa_desktop.catalog import Catalog

    cat = Catalog(tmp_path / "catalog.sqlite")
    yield cat
    cat.close()


def photo_array(width: int = 320, height: int = 240, seed: int = 0) -> np.ndarray:
    """A deterministic, photo-like RGB array: smooth gradients, a few shapes, mild noise.

    It is asymmetric on purpose, so that a wrong rotation or flip changes the pixels.
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 255 * x / max(width - 1, 1)
    g = 255 * y / max(height - 1, 1)
    b = 128 + 100 * np.sin(x / 17.0 + seed) * np.cos(y / 23.0)
    img = np.stack([r, g, b], axis=-1)
    cy, cx = height // 3, width // 4
    img[cy : cy + height // 5, cx : cx + width // 6] = (250, 30, 30)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def photo(width: int = 320, height: int = 240, seed: int = 0) -> Image.Image:
    return Image.fromarray(photo_array(width, height, seed), "RGB")


@pytest.fixture
def make_jpeg(tmp_path):
    """Write a photo-like JPEG (optionally with an EXIF orientation) and return its path."""

    def make(name: str = "photo.jpg", width: int = 320, height: int = 240, seed: int = 0, **save) -> Path:
        path = tmp_path / name
        photo(width, height, seed).save(path, quality=save.pop("quality", 92), **save)
        return path

    return make


def app_command(*args: str, catalog: Path) -> list[str]:
    """`python -m clipiqa_desktop ARGS` with the tiny random model on the CPU and the given catalog."""
    import sys

    return [sys.executable, "-m", "clipiqa_desktop", *args, "--catalog", str(catalog), *TINY_ARGS[:-2]]


def query_readonly(db: Path, sql: str) -> list[tuple]:
    """Rows of `sql` from a catalog another process may be writing; [] while it does not exist yet."""
    import sqlite3

    if not db.exists():
        return []
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()
    except sqlite3.OperationalError:
        return []
