"""`clipiqa-desktop evaluate FOLDER`: how well the flags match a shoot the photographer has already
culled (culling/evaluate.py), as a table or as JSON. Reads the catalog only; no model, no network."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..catalog import Catalog, CatalogError, PhotoTable, build_table
from ..culling.evaluate import MIN_DECISIONS, Evaluation, evaluate, match_cells, threshold_cells
from ..culling.prompts import prompt_scores
from ..culling.session import column_order
from ..measures.registry import FACE_KEYS, attribute_info
from ..scoring.attributes import custom_pair
from .common import CommandError, folder_analysis, open_catalog

EPILOG = f"""examples:
  clipiqa-desktop evaluate ~/shoots/wedding                  after culling it (here, or in an editor
                                                             whose XMP sidecars were read on index)
  clipiqa-desktop evaluate shoot/ --unrated-keepers          you marked only the rejects
  clipiqa-desktop evaluate -r /media/card/DCIM --json > accuracy.json

your culling: rejects = rating -1 (X); keepers = picked or at least 1 star. Unrated photos are left
out (perhaps not looked at yet) unless --unrated-keepers counts them as keepers. Colour labels decide
nothing. A photo without an attribute (not measured, no face) is left out of that flag's counts,
never counted as a miss. The best threshold of an attribute maximises F1 (catches against false
alarms). At least {MIN_DECISIONS} rejects and {MIN_DECISIONS} keepers are needed.

exit status: 0 evaluated; 2 nothing could be evaluated (bad arguments, no catalog, folder not
indexed, fewer than {MIN_DECISIONS} rejects or keepers)"""


def add_parser(sub: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "evaluate",
        parents=[parents["verbose"], parents["catalog"], parents["tree"]],
        help="how well the flags match a shoot you already culled",
        description="For a shoot you already culled: how many of your rejects each preset would have "
        "flagged, how many of your keepers it would have flagged too, and the threshold of each "
        "attribute that would have matched your rejects best. Reads the catalog only: nothing is "
        "written, no model is loaded, nothing leaves this machine.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--unrated-keepers",
        action="store_true",
        help="count every photo that is not rejected as a keeper (for a culling that marked only rejects)",
    )
    p.add_argument(
        "--relative",
        action="store_true",
        help="CLIP-IQA presets use their ranges in percentiles of this shoot, as the window's 'relative'",
    )
    p.add_argument("--json", action="store_true", help="one JSON document for scripts")
    # the scores the folder was last indexed with, as `list` shows by default
    p.set_defaults(run=run, model=None, pretrained=None, weights=None, size="auto")


def _cached_prompts(
    catalog: Catalog, table: PhotoTable, folder_ids: list[int], analysis_id: int
) -> list[str]:
    """Add the stored prompt pairs whose texts are already encoded (no model is loaded); returns
    the keys of those left out."""
    left_out = []

    def cached_only(texts: list[str]) -> np.ndarray:
        raise LookupError(texts)

    for key, positive, negative in catalog.prompts():
        pair = custom_pair(positive, negative, key)
        try:
            ids, values = prompt_scores(catalog, folder_ids, analysis_id, [pair], cached_only)
        except LookupError:
            left_out.append(key)
            continue
        table.add_scores(pair.key, ids, values[:, 0])
    return left_out


def _grid(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """Fixed-width columns (as `list` prints them): the first `left` columns and the last one
    left-aligned, the others right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    last = len(headers) - 1

    def line(cells: Sequence[str]) -> str:
        out = [
            c.ljust(w) if i < left or i == last else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)]) + "\n"


def write_report(ev: Evaluation, out: TextIO, notes: Sequence[str] = ()) -> None:
    """The summary and notes, the presets' table, then the thresholds' table."""
    for note in notes:
        out.write(note + "\n")
    out.write("\n")
    rows = []
    for p in ev.presets:
        if p.match.rejects + p.match.keepers == 0:
            labels = ", ".join(attribute_info(a).label for a in p.missing) or "its attributes"
            rows.append([p.name, "not measured", "", "", "", "", "", f"no {labels} in this catalog"])
            continue
        note = "" if p.match.enough else " (too few measured)"
        rows.append([p.name, *match_cells(p.match), p.rule + note])
    out.write(
        _grid(
            [
                "preset",
                "your rejects",
                "caught",
                "your keepers",
                "flagged",
                "precision",
                "not measured",
                "rule",
            ],
            rows,
        )
    )
    out.write("\n")
    out.write(
        _grid(
            [
                "attribute",
                "presets now",
                "recall",
                "precision",
                "best (F1)",
                "recall",
                "precision",
                "F1",
                "not measured",
                "",
            ],
            [threshold_cells(t) for t in ev.thresholds],
        )
    )


def _notes(ev: Evaluation, left_out: list[str]) -> list[str]:
    notes = [ev.summary()]
    if ev.undecided and not ev.unrated_keepers:
        notes.append("--unrated-keepers counts the unrated photos as keepers")
    if ev.missing:
        names = ", ".join(attribute_info(a).label for a in ev.missing)
        faces = " (faces and eyes need the [faces] extra)" if set(ev.missing) & set(FACE_KEYS) else ""
        notes.append(f"not in this catalog: {names}; index the folder again to measure them{faces}")
    if left_out:
        notes.append(
            f"prompt pairs {', '.join(left_out)} left out: their texts were never encoded "
            "(`clipiqa-desktop list FOLDER --prompt …` encodes them)"
        )
    return notes


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    folder = Path(args.folder).expanduser().resolve()
    try:
        catalog = open_catalog(args, readonly=True)
        folder_ids, analysis_id = folder_analysis(args, catalog, folder, args.recursive)
        rows, scores = catalog.rows(folder_ids, analysis_id, root=folder)
        table = build_table(rows, scores, column_order(scores.attributes))
        left_out = _cached_prompts(catalog, table, folder_ids, analysis_id)
    except (CommandError, CatalogError) as exc:
        print(f"clipiqa-desktop: {exc}", file=sys.stderr)
        return 2
    ev = evaluate(table, unrated_keepers=args.unrated_keepers, relative=args.relative)
    if ev.problem is not None:
        hint = ""
        if ev.unrated_would_help:
            hint = f"; {ev.undecided:,} photos are unrated: --unrated-keepers counts them as keepers"
        elif ev.rejects < MIN_DECISIONS:
            hint = "; reject photos with X in the window or `clipiqa-desktop rate --reject`"
        print(f"clipiqa-desktop: {folder}: {ev.problem}{hint}", file=sys.stderr)
        return 2
    notes = _notes(ev, left_out)
    if args.json:
        data = {"folder": str(folder), **ev.as_dict(), "prompts_left_out": left_out}
        out.write(json.dumps(data, ensure_ascii=False, allow_nan=False, indent=1) + "\n")
        for note in notes[1:]:
            print(f"clipiqa-desktop: {note}", file=sys.stderr)
    else:
        write_report(ev, out, [f"{folder}: {notes[0]}", *notes[1:]])
    return 0
