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


@pytest.fixture(scope="session")
def postgres():
    """A throw-away PostgreSQL server on loopback for the whole test session (tests/pg_server.py).

    Where it cannot run (no Debian postgresql, no psycopg) the PostgreSQL cases are skipped saying
    why; in CI (`CI` set, `make test` installs both) that is a failure instead."""
    from tests import pg_server

    reason = pg_server.unavailable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the catalog tests on PostgreSQL too: {reason}")
        pytest.skip(reason)
    with pg_server.running() as server:
        yield server


@pytest.fixture
def catalog_address(request, tmp_path):
    """Where a test's catalog lives: an SQLite file in its folder, or (tests marked both_backends run
    once per backend) a new empty database on the session's PostgreSQL server."""
    backend = getattr(request, "param", "sqlite")
    if backend == "postgresql":
        return request.getfixturevalue("postgres").database()
    return tmp_path / "catalog.sqlite"


def pytest_generate_tests(metafunc):
    """Tests marked both_backends (the catalog, decision and concurrency tests) run on SQLite and on
    PostgreSQL, unless marked sqlite_only (they look at the file itself, its pragmas or its locks)."""
    definition = metafunc.definition
    if (
        "catalog_address" in metafunc.fixturenames
        and definition.get_closest_marker("both_backends")
        and not definition.get_closest_marker("sqlite_only")
    ):
        metafunc.parametrize("catalog_address", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def catalog(catalog_address):
    """A real catalog: a file in the test's folder, or a PostgreSQL database for tests marked
    both_backends (tests/gui has its own, at the window's settings)."""
    from clipiqa_desktop.catalog import Catalog

    cat = Catalog(catalog_address)
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
