"""The core packages must work without Qt: import each with PySide6 made unimportable."""

from __future__ import annotations

import subprocess
import sys

CORE = [
    "clipiqa_desktop.scoring",
    "clipiqa_desktop.imaging",
    "clipiqa_desktop.indexing.stream",
    "clipiqa_desktop.commands.score",
    "clipiqa_desktop.cli",
]


def test_core_modules_import_with_qt_blocked():
    code = (
        "import sys\n"
        "sys.modules['PySide6'] = None\n"
        "sys.modules['shiboken6'] = None\n" + "".join(f"import {m}\n" for m in CORE) + "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_catalog_commands_do_not_import_torch(tmp_path):
    """`rate` and `list` must start instantly: torch/open_clip take seconds to import."""
    code = (
        "import sys\n"
        "from clipiqa_desktop.cli import main\n"
        f"main(['rate', 'x.jpg', '--reject', '--catalog', {str(tmp_path / 'c.sqlite')!r}])\n"
        f"main(['list', '.', '--catalog', {str(tmp_path / 'c.sqlite')!r}])\n"
        "heavy = sorted(m for m in ('torch', 'open_clip', 'PySide6') if m in sys.modules)\n"
        "print('heavy:', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "heavy: []" in proc.stdout


def test_reindexing_an_unchanged_folder_does_not_import_torch(tmp_path):
    """Opening a shoot that is already indexed must not pay for torch (seconds, and the GIL)."""
    from .conftest import TINY_RN, photo

    folder = tmp_path / "shoot"
    folder.mkdir()
    for i in range(3):
        photo(64, 48, seed=i).save(folder / f"{i}.jpg")
    args = [
        "index",
        str(folder),
        "--catalog",
        str(tmp_path / "c.sqlite"),
        "--model",
        str(TINY_RN),
        "--pretrained",
        "none",
        "--device",
        "cpu",
    ]
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
