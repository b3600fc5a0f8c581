"""`clipiqa-desktop export FOLDER --csv FILE --xmp`: scores and decisions of a folder as CSV, and
into each photo's XMP sidecar for the photographer's editor (culling/handoff.py)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..catalog import CatalogError, select_rows
from ..culling.handoff import XmpOptions, write_sidecars
from ..culling.sidecars import DEFAULT_NAMING, NAMINGS
from ..culling.xmp_write import DEFAULT_REJECT_AS, REJECT_AS
from .common import CommandError, folder_analysis, open_catalog
from .listing import write_csv
from .views import load_table

EPILOG = """examples:
  clipiqa-desktop export ~/shoots/wedding --csv wedding.csv
  clipiqa-desktop export shoot/ --csv - --prompt "eyes=Eyes closed.:Eyes open." | less
  clipiqa-desktop export -r /media/card/DCIM --xmp                  # IMG_0001.CR3.xmp (darktable, digiKam)
  clipiqa-desktop export shoot/ --xmp --sidecar-naming adobe --reject-as label   # Lightroom, Capture One

--xmp merges each photo's decision (xmp:Rating, xmp:Label, digiKam:PickLabel) and its scores (the
clipiqa namespace) into its sidecar, keeping everything else in it; a sidecar already up to date is
not touched, so a second run changes nothing. Photo files are never written.

A sidecar left alone on purpose is listed as skipped and does not change the exit status: one
another program changed since the folder was indexed (index it, then export again), the JPEG of a
RAW+JPEG pair under Adobe naming.

exit status: 0 exported; 1 some sidecars could not be written (each is listed); 2 nothing was written
(bad arguments, no catalog, folder not indexed, no such scores, the CSV cannot be written, no sidecar
could be written)"""


def add_parser(sub: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "export",
        parents=[parents["verbose"], parents["catalog"], parents["scores"], parents["tree"]],
        help="export a folder's scores and decisions as CSV and/or into XMP sidecars",
        description="Write one CSV row per photo (path, status, decision, capture time, every score), "
        "and/or each photo's decision and scores into its XMP sidecar for Lightroom, darktable, digiKam "
        "or Capture One.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--csv", metavar="FILE", help="where to write the CSV ('-' = stdout)")
    p.add_argument("--xmp", action="store_true", help="write (merge) each photo's XMP sidecar")
    p.add_argument(
        "--sidecar-naming",
        choices=NAMINGS,
        default=DEFAULT_NAMING,
        help="darktable: IMG_0001.CR3.xmp (darktable, digiKam; the default); "
        "adobe: IMG_0001.xmp (Lightroom, Capture One)",
    )
    p.add_argument(
        "--reject-as",
        choices=REJECT_AS,
        default=DEFAULT_REJECT_AS,
        help="how a reject is written: rating = xmp:Rating -1 (the standard; the default), one-star = "
        "1 star, label = a Purple label (for Lightroom, which keeps its own reject flags)",
    )
    p.add_argument(
        "--prompt",
        action="append",
        default=[],
        metavar="POSITIVE:NEGATIVE",
        help="also export a custom pair scored from the stored embeddings (repeatable; key=POS:NEG names it)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.csv and not args.xmp:
        print("clipiqa-desktop: say what to export: --csv FILE, --xmp, or both", file=sys.stderr)
        return 2
    folder = Path(args.folder).expanduser().resolve()
    try:
        # --xmp records each sidecar it writes in the catalog (so a later index does not take our
        # own write for another program's edit): it needs a writable catalog.
        catalog = open_catalog(args, readonly=not args.xmp)
        folder_ids, analysis_id = folder_analysis(args, catalog, folder, args.recursive)
        if args.csv:
            table = load_table(args, catalog, folder_ids, analysis_id, folder)
            rows = select_rows(table, sort="path")
            if args.csv == "-":
                write_csv(table, rows, sys.stdout)
            else:
                _write_atomically(Path(args.csv).expanduser(), lambda f: write_csv(table, rows, f))
            print(f"clipiqa-desktop: exported {len(rows):,} photos to {args.csv}", file=sys.stderr)
        if not args.xmp:
            return 0
        photo_ids = [int(r[0]) for r in catalog.rows(folder_ids, None, root=folder)[0]]
        options = XmpOptions(naming=args.sidecar_naming, reject_as=args.reject_as)
        report = write_sidecars(catalog, photo_ids, options, analysis_id)
    except (CommandError, CatalogError) as exc:
        print(f"clipiqa-desktop: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"clipiqa-desktop: cannot write {args.csv}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"clipiqa-desktop: {report.summary()}", file=sys.stderr)
    for line in report.problems():
        print(f"  {line}", file=sys.stderr)
    if report.failed:
        return 1 if report.written or report.unchanged or args.csv else 2
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
