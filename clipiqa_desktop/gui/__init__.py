"""The desktop window (PySide6). Talks to the core through its Python APIs; imports no torch or
SQLAlchemy itself, and loads the model only inside worker threads."""

from .qt_refcounts import guard as _guard_refcounts

_guard_refcounts()  # PySide6 6.12.0 on CPython 3.11 leaks references to None/True (qt_refcounts.py)
