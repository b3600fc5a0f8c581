"""`clipiqa-desktop rate PATH...`: record decisions (reject, pick, unflag, stars, colour label)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..catalog import LABELS, CatalogError
from ..culling.decisions import DecisionChange, change_fn
from .common import CommandError, open_catalog

EPILOG = """examples:
  clipiqa-desktop rate shoot/IMG_0042.CR3 --reject
  clipiqa-desktop rate shoot/IMG_0042.CR3 shoot/IMG_0043.CR3 --stars 4
  clipiqa-desktop rate shoot/IMG_0050.JPG --label red

exit status: 0 every photo rated; 1 some paths are not indexed photos (each reported, the others
are rated); 2 nothing was rated (bad arguments, no catalog, none of the photos indexed)"""


def add_parser(sub: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "rate",
        parents=[parents["verbose"], parents["catalog"]],
        help="reject, pick, unflag, rate or label photos in the catalog",
        description="Record a decision for indexed photos. Rejected = rating -1, as in XMP.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="indexed photo files")
    action = p.add_mutually_exclusive_group(required=True)
    action.add_argument("--reject", action="store_true", help="reject (rating -1; clears the pick)")
    action.add_argument("--pick", action="store_true", help="pick (clears a reject)")
    action.add_argument("--unflag", action="store_true", help="clear pick and reject")
    action.add_argument("--stars", type=_stars, metavar="N", help="0 clears, 1..5 stars (clears a reject)")
    action.add_argument("--label", type=_label, metavar="NAME", help=f"{', '.join(LABELS)} or none")
    p.set_defaults(run=run)


def _stars(text: str) -> int:
    if text not in {"0", "1", "2", "3", "4", "5"}:
        raise argparse.ArgumentTypeError("stars must be 0..5")
    return int(text)


def _label(text: str) -> str:
    if text.lower() == "none":
        return ""
    name = text.capitalize()
    if name not in LABELS:
        raise argparse.ArgumentTypeError(f"label must be one of {', '.join(LABELS)} or none")
    return name


def change_from_args(args: argparse.Namespace) -> DecisionChange:
    if args.reject:
        return DecisionChange(reject=True)
    if args.pick:
        return DecisionChange(pick=True)
    if args.unflag:
        return DecisionChange(unflag=True)
    if args.stars is not None:
        return DecisionChange(stars=args.stars)
    return DecisionChange(label=args.label)


def run(args: argparse.Namespace) -> int:
    try:
        catalog = open_catalog(args)
        ids = catalog.photo_ids_for_paths([Path(p) for p in args.paths])
        known = {p: i for p, i in ids.items() if i is not None}
        for path, pid in ids.items():
            if pid is not None:
                continue
            if path.is_dir():
                reason = (
                    "is a folder; rate takes photo files (the window's “Reject all shown” takes a folder)"
                )
            elif not path.exists():
                reason = "no such file"
            elif (unmounted := catalog.unmounted_root(path.parent)) is not None:
                reason = str(unmounted)  # a studio's shared folder not mapped on this machine
            else:
                reason = "not in the catalog (index its folder first)"
            print(f"clipiqa-desktop: {path}: {reason}", file=sys.stderr)
        if not known:
            raise CommandError("none of the photos given is in the catalog")
        change = change_from_args(args)
        # Read, change and write in ONE transaction: only the field this command touches changes,
        # whatever another window or process did to the others a moment ago.
        catalog.update_decisions(known.values(), change_fn(change))
    except (CommandError, CatalogError) as exc:
        print(f"clipiqa-desktop: {exc}", file=sys.stderr)
        return 2
    print(f"clipiqa-desktop: {change.describe()} {len(known)} photo(s)", file=sys.stderr)
    return 1 if len(known) < len(ids) else 0
