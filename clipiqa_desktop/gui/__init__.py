"""The desktop window (PySide6). Talks to the core through its Python APIs; imports no torch or
SQLAlchemy itself, and loads the model only inside worker threads."""
