"""`clipiqa-desktop learn FOLDER`: learn the photographer's taste from their own keeps and rejects
(culling/taste.py) and rank the folder's undecided photos by keep-probability, with the model's
cross-validated accuracy against always answering the more frequent decision. Reads the catalog
only (writes it with --save); no CLIP model is loaded, nothing leaves the machine."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..catalog import CatalogError, build_table
from ..culling.session import column_order
from ..culling.taste import MIN_DECISIONS, MIN_PER_CLASS, TASTE_KEY, ShootLabels, TasteResult, learn_taste
from .common import CommandError, folder_analysis, open_catalog, top_count

EPILOG = f"""examples:
  clipiqa-desktop learn ~/shoots/wedding                  the 20 undecided photos most like your keeps
  clipiqa-desktop learn ~/shoots/wedding --top 0 --save   rank them all and store the ranking, then:
  clipiqa-desktop list ~/shoots/wedding --sort taste --desc --where 'taste>=0'   (undecided only)
  clipiqa-desktop learn -r /media/card/DCIM --this-shoot-only --json > taste.json

what it learns from: your decisions, kept = picked or at least 1 star, rejected = X (rating -1),
whether made in the window, with `rate`, or read from XMP sidecars when indexing; of this folder
and, unless --this-shoot-only, of every other folder of the catalog indexed with the same model and
analysis size. It needs at least {MIN_DECISIONS} decisions, {MIN_PER_CLASS} keeps and {MIN_PER_CLASS} rejects.
The model is a logistic regression on each photo's stored CLIP embedding and attributes (focus,
clipping, noise, faces, the CLIP-IQA scores). The accuracy is cross-validated (measured on decisions
held out of each fit) and printed beside the accuracy of always answering your more frequent
decision: a model that does not beat it has learnt nothing yet.

--save stores the keep-probability as the attribute `taste` of the undecided photos (decided photos
get none), so `list --sort taste` and the window show it; it is a snapshot: run learn --save again
after culling more (the window keeps its own column up to date as you cull).

exit status: 0 learnt; 2 nothing learnt (bad arguments, no catalog, folder not indexed or indexed
without a CLIP model, too few decisions: the message says how many there are)"""


def add_parser(sub: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "learn",
        parents=[parents["verbose"], parents["catalog"], parents["tree"]],
        help="learn your taste from your keeps and rejects; rank the undecided photos by it",
        description="Fit a small model of your own culling (keeps and rejects, here and in earlier "
        "shoots) on the stored CLIP embeddings and attributes, report its cross-validated accuracy, "
        "and rank the folder's undecided photos by the probability you would keep them. No model "
        "is loaded and nothing leaves this machine.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--this-shoot-only",
        action="store_true",
        help="learn only from this folder's decisions (default: also every other folder's, same model)",
    )
    p.add_argument(
        "--top",
        type=top_count,
        default=20,
        metavar="N",
        help="how many undecided photos to print, most likely keeps first (default: %(default)s; 0 = all)",
    )
    p.add_argument(
        "--save",
        action="store_true",
        help="store the keep-probabilities as the attribute 'taste' (for list --sort taste, the window)",
    )
    p.add_argument("--json", action="store_true", help="one JSON document for scripts")
    # the analysis the folder was last indexed with, as `list` shows by default
    p.set_defaults(run=run, model=None, pretrained=None, weights=None, size="auto")


def _pct(x: float) -> str:
    return "–" if math.isnan(x) else f"{x * 100:.0f} %"


def describe(result: TasteResult) -> list[str]:
    """The decisions used and the accuracy, as `learn` prints them."""
    (sk, sr), (ok, orj) = result.shoot_counts, result.other_counts
    lines = [
        f"learnt from {result.decisions:,} decisions: {result.keeps:,} kept, {result.rejects:,} rejected "
        f"(this shoot {sk:,} kept + {sr:,} rejected, other shoots {ok:,} + {orj:,})",
        f"cross-validated accuracy {_pct(result.accuracy)} ± {_pct(result.accuracy_spread)} over "
        f"{result.folds} folds{' (bursts kept whole)' if result.by_burst else ''}; "
        f"{result.baseline_name} {_pct(result.baseline)}; "
        f"ROC AUC {result.auc:.2f}; fitted in {result.seconds:.1f} s",
    ]
    if result.accuracy <= result.baseline:
        lines.append(
            f"the model does not beat {result.baseline_name}: it has not learnt your taste (yet); "
            "its ranking means little"
        )
    return lines


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    folder = Path(args.folder).expanduser().resolve()
    try:
        catalog = open_catalog(args, readonly=not args.save)
    except (CommandError, CatalogError) as exc:
        print(f"clipiqa-desktop: {exc}", file=sys.stderr)
        return 2
    try:
        return _learn(args, catalog, folder, out)
    except (CommandError, CatalogError) as exc:
        print(f"clipiqa-desktop: {exc}", file=sys.stderr)
        return 2
    finally:
        catalog.close()


def _learn(args: argparse.Namespace, catalog: Any, folder: Path, out: TextIO) -> int:
    folder_ids, analysis_id = folder_analysis(args, catalog, folder, args.recursive)
    rows, scores = catalog.rows(folder_ids, analysis_id, root=folder)
    table = build_table(rows, scores, column_order(scores.attributes))
    result = learn_taste(catalog, folder_ids, analysis_id, ShootLabels.of(table), args.this_shoot_only)
    if result.problem is not None:
        hint = ""
        if result.decisions < MIN_DECISIONS or min(result.keeps, result.rejects) < MIN_PER_CLASS:
            hint = "; keep with P or stars and reject with X in the window, or `clipiqa-desktop rate`"
            if args.this_shoot_only and sum(result.other_counts) == 0:
                hint += " (without --this-shoot-only, other shoots' decisions count too)"
        print(f"clipiqa-desktop: {folder}: {result.problem}{hint}", file=sys.stderr)
        if args.save and TASTE_KEY in scores.attributes:
            print(
                f"clipiqa-desktop: nothing saved: the '{TASTE_KEY}' values a former `learn --save` "
                "stored are left as they are (a snapshot of the decisions of then)",
                file=sys.stderr,
            )
        return 2
    saved = None
    if args.save:
        saved = catalog.replace_scores(
            analysis_id, TASTE_KEY, folder_ids, result.ids.tolist(), result.probabilities
        )
    path_of = {int(r[0]): os.path.join(r[1], r[2]) for r in rows if r[3] != "missing"}
    order = [
        int(i) for i in np.argsort(-result.probabilities, kind="stable") if int(result.ids[i]) in path_of
    ]
    missing = len(result.ids) - len(order)
    shown = order[: args.top] if args.top > 0 else order
    ranked = [
        (rank, float(result.probabilities[i]), path_of[int(result.ids[i])]) for rank, i in enumerate(shown, 1)
    ]
    notes = describe(result)
    if missing:
        notes.append(f"{missing:,} undecided photos whose files are missing are left out")
    if result.without_embedding:
        notes.append(
            f"{result.without_embedding:,} photo{'s have' if result.without_embedding != 1 else ' has'} no "
            "embedding of this analysis (not readable, or "
            "indexed with another model or size) and no prediction"
        )
    if saved is not None:
        notes.append(
            f"stored as the attribute '{TASTE_KEY}' of {saved:,} undecided photos: "
            f"`clipiqa-desktop list {folder} --sort taste --desc`"
        )
    if args.json:
        data = {
            "folder": str(folder),
            **result.as_dict(),
            "undecided": len(result.ids),
            "saved": saved,
            "photos": [{"rank": r, "path": path, "keep_probability": round(p, 4)} for r, p, path in ranked],
        }
        out.write(json.dumps(data, ensure_ascii=False, allow_nan=False, indent=1) + "\n")
        for note in notes:
            print(f"clipiqa-desktop: {note}", file=sys.stderr)
        return 0
    out.write(f"{folder}: " + "\n".join(notes) + "\n\n")
    if not ranked:
        out.write("no undecided photos to rank\n")
        return 0
    out.write(f"{len(ranked):,} of {len(order):,} undecided photos, most likely keeps first:\n")
    out.write(f"{'rank':>5}  {'keep':>5}  path\n")
    for rank, p, path in ranked:
        out.write(f"{rank:>5}  {p:>5.2f}  {path}\n")
    return 0
