"""`clipiqa-desktop move-rejects FOLDER`: move the rejected photos aside (never delete them); `--undo`."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from ..catalog import CatalogError
from ..catalog.moves import MovesBusy, pending_batches
from ..culling.move_rejects import DEFAULT_TARGET, MoveError, execute, plan_moves, recover, undo_last
from ..text import counted
from .common import CommandError, catalog_option, open_catalog

EPILOG = f"""examples:
  clipiqa-desktop move-rejects shoot --dry-run      what would move where
  clipiqa-desktop move-rejects shoot                into shoot/{DEFAULT_TARGET}
  clipiqa-desktop move-rejects -r card/DCIM         DCIM/{DEFAULT_TARGET}/100CANON/…, one per sub-folder
  clipiqa-desktop move-rejects shoot --undo         put the last move back

A RAW+JPEG pair (IMG_1.CR2 + IMG_1.JPG) moves together, with its XMP sidecars (IMG_1.CR2.xmp,
IMG_1.xmp); a pair where one file is picked or has stars stays (reported). Nothing is overwritten: a
name taken in the target becomes "IMG_1 (2).CR2" for the whole pair. The catalog follows the files
(decisions and scores kept).

exit status: 0 everything moved (or put back); 1 some photos could not move (each reported, they
stay where they were); 2 nothing was done (bad arguments, no catalog, nothing to undo)"""


def add_parser(sub: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "move-rejects",
        parents=[parents["verbose"], parents["catalog"]],
        help="move rejected photos (with sidecars and RAW+JPEG partners) into a folder aside; --undo",
        description="Move a folder's rejected photos aside, never deleting anything; --undo puts them back.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("folder", metavar="FOLDER", help="an indexed folder")
    p.add_argument(
        "--to",
        default=DEFAULT_TARGET,
        metavar="DIR",
        help=f"where they go; relative to FOLDER (default: {DEFAULT_TARGET})",
    )
    p.add_argument("-r", "--recursive", action="store_true", help="also its sub-folders, mirrored under DIR")
    p.add_argument("--dry-run", action="store_true", help="only say what would move where")
    p.add_argument("--undo", action="store_true", help="put back the last move of FOLDER's rejects")
    p.set_defaults(run=run)


def _say(text: str) -> None:
    print(f"clipiqa-desktop: {text}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    try:
        catalog = open_catalog(args)
        try:
            return _undo(catalog, args) if args.undo else _move(catalog, args)
        finally:
            catalog.close()
    except (CommandError, CatalogError, MoveError, MovesBusy) as exc:
        _say(str(exc))
        return 2


def _move(catalog: Any, args: argparse.Namespace) -> int:
    folder = Path(args.folder).expanduser()
    if folder.is_dir() and args.dry_run and pending_batches(catalog, folder.resolve()):
        _say("an interrupted move of this folder's rejects will be repaired first")
    elif folder.is_dir():
        for line in recover(catalog, folder):  # a run killed part-way is settled before planning
            _say(line)
    plan = plan_moves(catalog, folder, args.to, args.recursive)
    for line in plan.held:
        _say(line)
    if plan.absent:
        n = len(plan.absent)
        _say(
            f"{counted(n, 'rejected photo')} {'is' if n == 1 else 'are'} not on disk any more: "
            "nothing to move"
        )
    if not plan.frames:
        _say(f"no rejected photos to move in {plan.folder}" + _sub_folder_hint(catalog, folder, args))
        return 0
    verb = "would move" if args.dry_run else "moving"
    _say(f"{verb} {plan.headline()}")
    for line in plan.lines():
        print(line)
    if args.dry_run:
        return 0
    result = execute(catalog, plan)
    for line in [*result.notes, *result.held]:
        _say(line)
    for line in result.failed:
        _say(line)
    moved = f"moved {counted(result.photos, 'rejected photo')}, {counted(result.files, 'file')} in all"
    if result.files:
        undo = f"clipiqa-desktop move-rejects {shlex.quote(str(args.folder))} --undo{catalog_option(args)}"
        _say(f"{moved}, to {plan.target} (undo: {undo})")
    else:
        _say(moved)
    if result.failed:
        return 1 if result.moved else 2
    return 0


def _sub_folder_hint(catalog: Any, folder: Path, args: argparse.Namespace) -> str:
    """For a folder with no rejects of its own: how to reach the photos of its sub-folders (a card's
    DCIM). Files are moved only with -r asked for, never by a guess."""
    if not folder.is_dir() or args.recursive:
        return ""
    below = catalog.photo_count(catalog.folder_ids(folder.resolve(), recursive=True))
    here = catalog.photo_count(catalog.folder_ids(folder.resolve(), recursive=False))
    if below > here:
        cmd = f"clipiqa-desktop move-rejects -r {shlex.quote(str(args.folder))}{catalog_option(args)}"
        return f"; its sub-folders hold {below - here:,} more photos: `{cmd}` (add --dry-run to see first)"
    return ""


def _undo(catalog: Any, args: argparse.Namespace) -> int:
    if args.dry_run:
        raise CommandError("--undo and --dry-run cannot be combined")
    result = undo_last(catalog, Path(args.folder))
    for line in [*result.notes, *result.lost, *result.failed]:
        _say(line)
    assert result.batch is not None
    _say(f"put back {counted(result.restored, 'file')} from {result.batch.target}")
    if result.failed:
        return 1 if result.restored else 2
    return 1 if result.lost else 0
