"""`clipiqa-desktop search FOLDER "TEXT"`: the folder's photos ranked by how well they match a text,
from the stored CLIP embeddings (culling/search.py). No image is decoded; the model is loaded only
for a text never searched with it before (its feature is then cached in the catalog)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..catalog import Catalog, CatalogError
from ..culling.search import SearchError, clean_text, search
from .common import CommandError, folder_analysis, index_command, load_scorer, open_catalog, top_count
from .views import _args_for

EPILOG = """examples:
  clipiqa-desktop search ~/shoots/wedding "bride laughing"          the 20 best matches
  clipiqa-desktop search -r /media/card/DCIM "sunset over water" --top 5
  clipiqa-desktop search shoot/ "a dog" --top 0 --json > dogs.json    every photo, for scripts

The match is the cosine similarity of CLIP's embeddings of the text and of each photo (about
0.1-0.35 with real CLIP weights): compare photos within one search, not values across searches.
The text is encoded as typed. A text searched before with the folder's model needs no model; a new
one loads the model the folder was indexed with (seconds) and is remembered in the catalog.
Missing files are left out.

exit status: 0 searched (also when nothing matched well); 2 nothing could be searched (bad arguments,
no catalog, folder not indexed, indexed without a CLIP model, weights missing)"""


def add_parser(sub: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "search",
        parents=[parents["verbose"], parents["catalog"], parents["scores"], parents["tree"]],
        help='rank a folder\'s photos by how well they match a text (e.g. "bride laughing")',
        description="Rank the photos of an indexed folder by how well they match a text, from the "
        "CLIP embeddings stored when it was indexed (no image is decoded, nothing leaves this machine).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("text", metavar="TEXT", help='what to look for, e.g. "bride laughing" (quote it)')
    p.add_argument(
        "--top",
        type=top_count,
        default=20,
        metavar="N",
        help="how many of the best matches to print (default: %(default)s; 0 = every photo)",
    )
    p.add_argument("--json", action="store_true", help="one JSON list of {path, similarity, rank}")
    for group in p._action_groups:  # the shared group speaks of list's --prompt
        if group.title == "which scores":
            group.description = (
                "Default: the embeddings the folder was last indexed with.\n"
                "The model is loaded only to encode a text never searched with it before."
            )
    p.set_defaults(run=run)


def _open(args: argparse.Namespace) -> Catalog:
    """Writable, so that a new text's feature is remembered; read-only where it cannot be written
    (a catalog on read-only media can still be searched, its texts encoded each time)."""
    try:
        return open_catalog(args)
    except CommandError:
        return open_catalog(args, readonly=True)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    folder = Path(args.folder).expanduser().resolve()
    catalog: Catalog | None = None
    try:
        clean_text(args.text)  # an empty text is said before the catalog is opened
        catalog = _open(args)
        folder_ids, analysis_id = folder_analysis(args, catalog, folder, args.recursive)
        found = catalog  # for the closure (mypy: not None)

        def encode(texts: list[str]) -> np.ndarray:
            model_id = found.analysis(analysis_id)[0]
            scorer = load_scorer(_args_for(args, model_id))
            return scorer.text_features(texts).float().cpu().numpy()

        try:
            result, _ = search(catalog, folder_ids, analysis_id, args.text, encode)
        except SearchError as exc:
            hint = ""
            if "index" in str(exc):
                hint = f" (`{index_command(folder, args, args.recursive)}`)"
            raise CommandError(f"{exc}{hint}") from exc
        rows, _scores = catalog.rows(folder_ids, None, root=folder)
    except (CommandError, CatalogError, SearchError) as exc:
        print(f"clipiqa-desktop: {exc}", file=sys.stderr)
        return 2
    finally:
        if catalog is not None:
            catalog.close()
    path_of = {int(r[0]): os.path.join(r[1], r[2]) for r in rows if r[3] != "missing"}
    order = [i for i in result.ranking() if int(result.ids[i]) in path_of]
    missing = len(result.ids) - len(order)
    shown = order[: args.top] if args.top > 0 else order
    ranked = [
        (rank, float(result.similarity[i]), path_of[int(result.ids[i])]) for rank, i in enumerate(shown, 1)
    ]
    if args.json:
        json.dump(
            [{"path": path, "similarity": round(sim, 6), "rank": rank} for rank, sim, path in ranked],
            out,
            ensure_ascii=False,
        )
        out.write("\n")
    else:
        out.write(f"{'rank':>5}  {'match':>7}  path\n")
        for rank, sim, path in ranked:
            out.write(f"{rank:>5}  {sim:>7.4f}  {path}\n")
    note = f"; {missing:,} missing file(s) left out" if missing else ""
    print(
        f"clipiqa-desktop: the {len(ranked):,} best of {len(order):,} photos for “{result.text}”{note}",
        file=sys.stderr,
    )
    return 0
