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
