"""`clipiqa-desktop list FOLDER`: the folder's photos with scores and decisions, sorted and filtered."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..catalog import CatalogError, PhotoTable, QueryError, parse_where, select_rows
from ..measures.photo import faces_unavailable
from ..measures.registry import FACE_KEYS, PIXEL_KEYS, attribute_info
from ..scoring import DEFAULT_ATTRIBUTES, LOOK_ATTRIBUTES
from ..scoring.constants import NO_MODEL
from .common import CommandError, folder_analysis, open_catalog
from .views import load_table

EPILOG = """examples:
  clipiqa-desktop list shoot/ --sort sharpness                        blurriest first
  clipiqa-desktop list shoot/ --where "sharpness<0.3" --where "rating>=0" --format json
  clipiqa-desktop list shoot/ --prompt "Eyes closed.:Eyes open." --sort eyes_closed --desc
  clipiqa-desktop list shoot/ --where status=error                    photos that failed, and why

conditions: ATTRIBUTE<0.3 (any score, also custom prompt keys), rating>=3 (-1 = rejected),
picked=1, label=Red, status=ok|error|missing.  sort keys: any attribute, name, captured, rating, path.

exit status: 0 listed (also when no photo matches); 2 nothing could be listed (bad arguments, no
catalog, folder not indexed, no such scores)"""


def add_parser(sub: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "list",
        parents=[parents["verbose"], parents["catalog"], parents["scores"], parents["tree"]],
        help="list a folder's photos with scores and decisions, sorted and filtered",
        description="List the photos of an indexed folder from the catalog (no image is decoded).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--sort", metavar="KEY", help="sort by an attribute, name, captured, rating or path")
    p.add_argument("--desc", action="store_true", help="sort in descending order")
    p.add_argument(
        "--where", action="append", default=[], metavar="COND", help="filter, e.g. 'sharpness<0.3'"
    )
    p.add_argument(
        "--prompt",
        action="append",
        default=[],
        metavar="POSITIVE:NEGATIVE",
        help="score a custom pair from the stored embeddings (repeatable; key=POS:NEG names it)",
    )
    p.add_argument("--save-prompt", action="store_true", help="store the --prompt pairs in the catalog")
    p.add_argument("--columns", metavar="KEYS", help="attributes shown in the table (default: the look ones)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    p.set_defaults(run=run)


def _decision_text(table: PhotoTable, i: int) -> str:
    rating = int(table.rating[i])
    flag = "X" if rating == -1 else ("P" if table.picked[i] else "-")
    stars = "*" * max(rating, 0)
    return f"{flag} {stars:<5}"


# The keys of a `--format json` line, each on every line, null when unknown or none: `scores` (every
# score column, null where a photo has none) is null for a photo never scored; `label`, `error` and
# `captured_at` are null when the photo has none.
JSON_KEYS = (
    "path",
    "scores",
    "rating",
    "picked",
    "label",
    "status",
    "error",
    "captured_at",
    "model",
    "size",
)


def write_json(table: PhotoTable, rows: Any, out: TextIO, meta: dict[str, str]) -> None:
    for i in rows:
        values = table.scores[i] if table.attributes else np.zeros(0, np.float32)
        scores = None
        if np.isfinite(values).any():
            scores = {
                k: round(float(v), 6) if np.isfinite(v) else None
                for k, v in zip(table.attributes, values, strict=True)
            }
        obj: dict[str, Any] = {
            "path": table.paths[i],
            "scores": scores,
            "rating": int(table.rating[i]),
            "picked": bool(table.picked[i]),
            "label": table.labels[i] or None,
            "status": table.status[i],
            "error": table.errors[i] or None,
            "captured_at": table.captured_at[i] or None,
            "model": meta.get("model"),
            "size": meta.get("size"),
        }
        out.write(json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n")


def write_csv(table: PhotoTable, rows: Any, out: TextIO) -> None:
    import csv

    w = csv.writer(out)
    w.writerow(["path", "status", "error", "rating", "picked", "label", "captured_at", *table.attributes])
    for i in rows:
        scores = table.scores_of(i)
        w.writerow(
            [
                table.paths[i],
                table.status[i],
                table.errors[i] or "",
                int(table.rating[i]),
                int(table.picked[i]),
                table.labels[i] or "",
                table.captured_at[i] or "",
                *[f"{scores[a]:.6f}" if a in scores else "" for a in table.attributes],
            ]
        )


# The pixel measures `list` shows by default (motion_blur and face_focus with --columns).
LIST_MEASURES = ("focus", "faces", "eyes_closed", "highlights_clipped", "shadows_clipped")


def _cell(key: str, value: float) -> str:
    """A count as an integer, anything else with four decimals (fractions too: 0.0480 = 4.8 %)."""
    return attribute_info(key).format(value) if attribute_info(key).kind == "count" else f"{value:.4f}"


def write_table(table: PhotoTable, rows: Any, out: TextIO, columns: list[str]) -> None:
    widths = [max(len(c), 6) for c in columns]
    out.write(
        "decision  label   "
        + "  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True))
        + "  name\n"
    )
    for i in rows:
        scores = table.scores_of(i)
        cells = "  ".join(
            (_cell(c, scores[c]) if c in scores else "-").rjust(w)
            for c, w in zip(columns, widths, strict=True)
        )
        name = table.names[i]  # relative to the folder: sub-folders stay apart
        extra = f"  ({table.status[i]}: {table.errors[i]})" if table.status[i] != "ok" else ""
        if table.status[i] == "missing":
            extra = "  (missing)"
        out.write(f"{_decision_text(table, i)}  {(table.labels[i] or '-'):<6}  {cells}  {name}{extra}\n")


def _explain_unmeasured(keys: list[str], table: PhotoTable) -> None:
    """A pixel measure this folder has no values for gets the reason, not 'unknown field'."""
    for key in keys:
        if key in PIXEL_KEYS and key not in table.attributes:
            why = faces_unavailable() if key in FACE_KEYS else None
            if why is not None:
                raise CommandError(f"{key}: {why}; then index the folder again")
            if key in ("face_focus", "eyes_closed"):
                raise CommandError(f"{key}: no face was found in this folder's photos")
            raise CommandError(
                f"{key} has not been measured in this folder yet: index it again "
                "(photos indexed before it existed are measured then)"
            )


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    folder = Path(args.folder).expanduser().resolve()
    try:
        filters = [parse_where(w) for w in args.where]
        catalog = open_catalog(args, readonly=not args.save_prompt)
        folder_ids, analysis_id = folder_analysis(args, catalog, folder, args.recursive)
        table = load_table(args, catalog, folder_ids, analysis_id, folder)
        asked = [f.key for f in filters] + [args.sort or ""]
        asked += [c.strip() for c in (args.columns or "").split(",")]
        _explain_unmeasured(asked, table)
        rows = select_rows(table, filters, args.sort, args.desc)
        model_id, size, _ = catalog.analysis(analysis_id)
        if args.columns:
            columns = [c.strip() for c in args.columns.split(",") if c.strip()]
            unknown = [c for c in columns if c not in table.attributes]
            if unknown:
                raise CommandError(
                    f"unknown column {', '.join(unknown)}; known: {', '.join(table.attributes)}"
                )
        else:
            measured = [a for a in LIST_MEASURES if a in table.attributes]
            custom = [a for a in table.attributes if a not in DEFAULT_ATTRIBUTES and a not in PIXEL_KEYS]
            columns = measured + [a for a in LOOK_ATTRIBUTES if a in table.attributes] + custom
    except (CommandError, CatalogError, QueryError) as exc:
        print(f"clipiqa-desktop: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        write_json(table, rows, out, {"model": model_id, "size": size})
    elif args.format == "csv":
        write_csv(table, rows, out)
    else:
        write_table(table, rows, out, columns)
    what = (
        "pixel measures only (indexed with --model none)"
        if model_id == NO_MODEL
        else f"scores of {model_id} at size {size}"
    )
    print(f"clipiqa-desktop: {len(rows):,} of {len(table):,} photos; {what}", file=sys.stderr)
    return 0
