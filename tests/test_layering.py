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
