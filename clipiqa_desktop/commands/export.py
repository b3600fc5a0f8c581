"""`clipiqa-desktop export FOLDER --csv FILE`: scores and decisions of a folder as CSV."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..catalog import CatalogError, select_rows
from .common import CommandError, folder_analysis, open_catalog
from .listing import write_csv
from .views import load_table

EPILOG = """examples:
  clipiqa-desktop export ~/shoots/wedding --csv wedding.csv
  clipiqa-desktop export shoot/ --csv - --prompt "eyes=Eyes closed.:Eyes open." | less

exit status: 0 exported; 2 nothing was written (bad arguments, no catalog, folder not indexed, no
such scores, the CSV cannot be written)"""


def add_parser(sub: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "export",
        parents=[parents["verbose"], parents["catalog"], parents["scores"], parents["tree"]],
        help="export a folder's scores and decisions as CSV",
        description="Write one CSV row per photo: path, status, decision, capture time, every score.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--csv", required=True, metavar="FILE", help="where to write the CSV ('-' = stdout)")
    p.add_argument(
        "--prompt",
        action="append",
        default=[],
        metavar="POSITIVE:NEGATIVE",
        help="also export a custom pair scored from the stored embeddings (repeatable; key=POS:NEG names it)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    folder = Path(args.folder).expanduser().resolve()
    try:
        catalog = open_catalog(args, readonly=True)
        folder_ids, analysis_id = folder_analysis(args, catalog, folder, args.recursive)
        table = load_table(args, catalog, folder_ids, analysis_id, folder)
        rows = select_rows(table, sort="path")
        if args.csv == "-":
            write_csv(table, rows, sys.stdout)
        else:
            _write_atomically(Path(args.csv).expanduser(), lambda f: write_csv(table, rows, f))
    except (CommandError, CatalogError) as exc:
        print(f"clipiqa-desktop: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"clipiqa-desktop: cannot write {args.csv}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"clipiqa-desktop: exported {len(rows):,} photos to {args.csv}", file=sys.stderr)
    return 0


def _write_atomically(path: Path, write: Any) -> None:
    """Write to a temporary file beside `path`, then rename: a full disk never leaves half a CSV."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
