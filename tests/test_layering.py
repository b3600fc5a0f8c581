"""The core packages must work without Qt: import each with PySide6 made unimportable."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "clipiqa_desktop"
CORE_PACKAGES = ("scoring", "imaging", "catalog", "indexing", "culling", "commands", "measures", "cluster")


def _modules(package: str) -> list[str]:
    return [
        "clipiqa_desktop." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
        for p in sorted((PACKAGE / package).rglob("*.py"))
    ]


def test_every_core_module_imports_with_qt_blocked():
    modules = [m for pkg in CORE_PACKAGES for m in _modules(pkg)] + ["clipiqa_desktop.cli"]
    code = (
        "import importlib, sys\n"
        "sys.modules['PySide6'] = None\n"
        "sys.modules['shiboken6'] = None\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "print('ok', len(sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok")
    assert len(modules) > 25


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_gui_imports_no_torch_open_clip_or_sqlalchemy_and_core_no_qt():
    for path in (PACKAGE / "gui").rglob("*.py"):
        # mediapipe pulls OpenCV, whose import points Qt at its own Qt 5 plugins (measures/faces.py)
        forbidden = {"torch", "open_clip", "sqlalchemy", "mediapipe", "cv2", "onnx", "onnxruntime"}
        assert not _imports(path) & forbidden, path
    for pkg in CORE_PACKAGES:
        for path in (PACKAGE / pkg).rglob("*.py"):
            assert not _imports(path) & {"PySide6", "shiboken6"}, path


def test_the_window_modules_load_no_model_and_no_face_detector():
    """The window's process never loads torch, mediapipe or OpenCV (they run in the indexer's child)."""
    modules = _modules("gui")
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "from clipiqa_desktop.culling.session import CullingSession\n"
        "heavy = ('torch', 'open_clip', 'mediapipe', 'cv2', 'onnx', 'onnxruntime')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_catalog_commands_do_not_import_torch(tmp_path):
    """`rate` and `list` (also with --model) must start instantly: torch/open_clip take seconds."""
    from .conftest import TINY_ARGS, photo

    folder = tmp_path / "shoot"
    folder.mkdir()
    photo(64, 48).save(folder / "a.jpg")
    cat = str(tmp_path / "c.sqlite")
    model = [*TINY_ARGS, "--size", "128"]
    indexed = subprocess.run(
        [sys.executable, "-m", "clipiqa_desktop", "index", str(folder), "--catalog", cat, *model],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert indexed.returncode == 0, indexed.stderr
    code = (
        "import sys\n"
        "from clipiqa_desktop.cli import main\n"
        f"codes = [main(['rate', {str(folder / 'a.jpg')!r}, '--reject', '--catalog', {cat!r}]),\n"
        f"         main(['list', {str(folder)!r}, '--catalog', {cat!r}, '--sort', 'quality']),\n"
        f"         main(['list', {str(folder)!r}, '--catalog', {cat!r}, *{model!r}]),\n"
        f"         main(['export', {str(folder)!r}, '--catalog', {cat!r}, '--csv', '-'])]\n"
        "heavy = sorted(m for m in ('torch', 'open_clip', 'PySide6') if m in sys.modules)\n"
        "print('codes', codes, 'heavy:', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "codes [0, 0, 0, 0] heavy: []" in proc.stdout, proc.stdout + proc.stderr


def test_reindexing_an_unchanged_folder_does_not_import_torch(tmp_path):
    """Opening a shoot that is already indexed must not pay for torch (seconds, and the GIL)."""
    from .conftest import TINY_ARGS, photo

    folder = tmp_path / "shoot"
    folder.mkdir()
    for i in range(3):
        photo(64, 48, seed=i).save(folder / f"{i}.jpg")
    args = ["index", str(folder), "--catalog", str(tmp_path / "c.sqlite"), *TINY_ARGS]
    first = subprocess.run([sys.executable, "-m", "clipiqa_desktop", *args], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    code = (
        "import sys\n"
        "from clipiqa_desktop.cli import main\n"
        f"code = main({args!r})\n"
        "print('exit', code, 'torch' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "unchanged 3" in proc.stderr, proc.stderr
    assert proc.stdout.strip() == "exit 0 False"
