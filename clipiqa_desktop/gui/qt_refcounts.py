"""A guard against a reference-count bug of PySide6 6.12.0 on CPython 3.11.

Measured here (PySide6-Essentials 6.12.0, CPython 3.11.7): every call of a Qt method that returns
nothing (`setText`, `processEvents`, `QTimer.start`, a painter's `drawText` …) takes one reference
from `None` that it never gave, and every `Signal.emit()` takes one from `True`. CPython 3.12+
makes these objects immortal, so nothing happens there; on 3.11 their counts run down with use
(a few thousand references at start) and the process dies with "Fatal Python error: none_dealloc"
(or bool_dealloc) after enough painting, keypresses or signals: minutes of culling.

`guard()` probes for the bug with a few void calls and, only when the count really drops, gives
None, True and False 2**40 extra references, which is what CPython 3.12 does for them (they are
never freed in a correct program anyway). Drop this module when PySide6 is fixed or the project
requires Python 3.12.
"""

from __future__ import annotations

import ctypes
import sys

EXTRA = 1 << 40
_done = False


def leaks_none() -> bool:
    """Do void Qt calls take references from None? (False on CPython 3.12+: immortal objects)."""
    from PySide6.QtCore import QObject

    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(16):
        probe.setObjectName("")
    return sys.getrefcount(None) <= before - 16


def guard() -> bool:
    """Make None, True and False safe from the leak; True when the leak was found and guarded."""
    global _done
    if _done or sys.version_info >= (3, 12) or not leaks_none():
        return False
    for obj in (None, True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += EXTRA
    _done = True
    return True
