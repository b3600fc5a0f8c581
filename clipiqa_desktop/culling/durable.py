"""Making renames durable: an fsync of the folder that holds them (shared by the XMP hand-off and
move-rejects, which both tell the catalog about a file only once its new name is on disk)."""

from __future__ import annotations

import os
from pathlib import Path


def sync_folder(folder: Path) -> None:
    """fsync a folder (its entries: renames, new files); a no-op where the file system cannot."""
    try:
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass  # some file systems (network, FAT on some kernels) cannot fsync a folder
    finally:
        os.close(dfd)
