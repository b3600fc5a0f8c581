"""PySide6 6.12.0 on CPython 3.11 takes a reference from None on every void Qt call and from True on
every emit(); a few thousand killed the process with "Fatal Python error: none_dealloc". pyproject.toml
keeps that release off 3.11; this test fails on any PySide6 that leaks so: a hundred thousand void
calls and emissions must leave the process alive."""

from __future__ import annotations

import subprocess
import sys


def test_void_calls_and_emits_cannot_free_none_or_true():
    code = (
        "import sys\n"
        "import clipiqa_desktop.gui\n"
        "from PySide6.QtCore import QObject, Signal\n"
        "class O(QObject):\n"
        "    s = Signal()\n"
        "o = O()\n"
        "o.s.connect(lambda: None)\n"
        "for _ in range(100_000):\n"
        "    o.setObjectName('')\n"
        "    o.s.emit()\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
