"""`clipiqa-desktop groups FOLDER`: bursts, exposure brackets, focus stacks and scenes of an indexed
folder (culling/groups.py) with the best frame of each, as text or JSON Lines; `--keep-best N`
rejects all but the best N of each burst (or scene). Reads the catalog only (no model, no image is
decoded); `--keep-best` writes the rejects in one transaction."""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..catalog import CatalogError, Decision, PhotoTable, build_table
from ..culling.groups import (
    BRACKET,
    FOCUS_STACK,
    KEEPER_KEY,
    KEPT_WHOLE,
    SCENE,
    SINGLE,
    Group,
    Grouping,
    GroupParams,
    KeepBestPlan,
    best_rows,
    group_photos,
    keep_best_plan,
    keeper_scores,
    ranking,
)
from ..culling.session import column_order
from ..measures.registry import attribute_info
from .common import CommandError, catalog_option, folder_analysis, open_catalog, whole_number

DEFAULTS = GroupParams()

EPILOG = f"""examples:
  clipiqa-desktop groups ~/shoots/wedding                       scenes, and the bursts in them
  clipiqa-desktop groups shoot/ --level burst --format json     one JSON object per burst, for scripts
  clipiqa-desktop groups shoot/ --best-by focus                 the sharpest frame is the best
  clipiqa-desktop groups shoot/ --burst-gap 1 --burst-similarity 0.95     tighter bursts
  clipiqa-desktop groups shoot/ --keep-best 1 --dry-run         what keeping the best of each burst
                                                                would reject
  clipiqa-desktop groups shoot/ --keep-best 2 --yes             reject all but the best 2 of each burst

bursts: frames of one camera taken at most --burst-gap seconds apart whose CLIP embeddings are at
least --burst-similarity alike (cosine, neighbouring frames). Exposure brackets (evenly stepped EXIF
exposure bias) and focus stacks (EXIF subject distance growing near to far) are groups of their own,
kept whole: no best frame, never rejected by --keep-best. Scenes: bursts at most --scene-gap seconds
after the scene's last frame whose embeddings are at least --scene-similarity alike.
Defaults: burst {DEFAULTS.burst_similarity:g} / {DEFAULTS.burst_gap:g} s, scene
{DEFAULTS.scene_similarity:g} / {DEFAULTS.scene_gap:g} s.

best: the highest value of --best-by (default keeper: focus, the sharpest face's where a face was
found, 0.45 + CLIP-IQA quality 0.35 + eyes open 0.20, over the parts measured); the lowest for
the attributes where less is better (noise, motion_blur, highlights_clipped, shadows_clipped,
eyes_closed, noisiness).

--keep-best N: in each group, your picks, starred and colour-labelled photos are kept first (your
choice counts toward N, even a soft frame), then the best undecided frames up to N; the other
undecided frames are rejected (RAW + JPEG of one exposure together). Rejected photos stay rejected;
photos without a --best-by value, brackets and focus stacks are left alone. The plan is printed and
asked about first (--yes: don't ask; without a terminal --yes is required). The rejected paths are
printed on stdout: `xargs -d '\\n' clipiqa-desktop rate --unflag` with them undoes it (the window's
Ctrl+Z does not undo command-line changes).

JSON: one object per line and group: id (1, 2, ... within its level, as the text numbers them;
frames alone take numbers too, so ids skip where --singles is not given), level, kind (burst,
bracket, focus_stack, scene; single with --singles), scene (of a burst-level group), count, members
(paths in capture order), best (path, null for a bracket or focus stack), best_by and best_value.

exit status: 0 listed (or rejected as planned); 2 nothing done (bad arguments, no catalog, folder
not indexed, --keep-best refused or declined)"""


def _similarity(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not -1.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a cosine similarity is between -1 and 1, not {text}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (value >= 0.0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"a gap is a number of seconds ≥ 0, not {text}")
    return value


def add_parser(sub: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "groups",
        parents=[parents["verbose"], parents["catalog"], parents["tree"]],
        help="bursts, brackets and scenes with the best frame of each; --keep-best N",
        description="Group an indexed folder's photos into bursts (near-duplicates), exposure "
        "brackets, focus stacks and scenes, from the stored CLIP embeddings and capture times, and "
        "name the best frame of each. Reads the catalog only: no model is loaded, nothing leaves "
        "this machine.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="the listing as text (default) or JSON Lines",
    )
    p.add_argument(
        "--level",
        choices=("burst", "scene", "both"),
        default="both",
        help="which groups: bursts (with brackets and stacks), scenes, or both (default); "
        "--keep-best keeps the best of each burst unless --level scene",
    )
    g = p.add_argument_group("the sliders")
    g.add_argument(
        "--burst-similarity",
        type=_similarity,
        default=DEFAULTS.burst_similarity,
        metavar="X",
        help="cosine similarity of neighbouring frames of a burst (default: %(default)s)",
    )
    g.add_argument(
        "--burst-gap",
        type=_seconds,
        default=DEFAULTS.burst_gap,
        metavar="S",
        help="seconds between neighbouring frames of a burst (default: %(default)s)",
    )
    g.add_argument(
        "--scene-similarity",
        type=_similarity,
        default=DEFAULTS.scene_similarity,
        metavar="X",
        help="cosine similarity of a burst to its scene (default: %(default)s)",
    )
    g.add_argument(
        "--scene-gap",
        type=_seconds,
        default=DEFAULTS.scene_gap,
        metavar="S",
        help="seconds from a scene's last frame to the next burst of it (default: %(default)s)",
    )
    p.add_argument(
        "--best-by",
        default=KEEPER_KEY,
        metavar="ATTR",
        help="the attribute whose best value (the highest; the lowest where less is better) is the "
        "best frame: keeper (default) or any attribute of the folder (quality, focus, face_focus, ...)",
    )
    p.add_argument("--singles", action="store_true", help="list frames that belong to no burst too")
    k = p.add_argument_group("keep the best N")
    k.add_argument(
        "--keep-best",
        type=whole_number(1, "keep at least 1 photo of each group"),
        metavar="N",
        help="reject all but the best N unrated frames of each burst (of each scene with --level scene)",
    )
    k.add_argument("--yes", action="store_true", help="reject without asking")
    k.add_argument(
        "--dry-run", action="store_true", help="print what --keep-best would reject; change nothing"
    )
    # the scores the folder was last indexed with, as `list` shows by default
    p.set_defaults(run=run, model=None, pretrained=None, weights=None, size="auto")


@dataclass
class Shoot:
    """A folder's table (decisions, scores and the keeper column) and its grouping."""

    table: PhotoTable
    grouping: Grouping
    column: np.ndarray  # the --best-by values per table row
    ranks: np.ndarray  # the same as "best by" ranks them (groups.ranking: higher = better)
    row_of: dict[int, int]  # photo id -> table row


def _load(args: argparse.Namespace, folder: Path, params: GroupParams, readonly: bool) -> tuple[Any, Shoot]:
    catalog = open_catalog(args, readonly=readonly)
    try:
        folder_ids, analysis_id = folder_analysis(args, catalog, folder, args.recursive)
        rows, scores = catalog.rows(folder_ids, analysis_id, root=folder)
        inputs = catalog.group_inputs(folder_ids, analysis_id, root=folder)
    except BaseException:
        catalog.close()
        raise
    table = build_table(rows, scores, column_order(scores.attributes))
    table.add_scores(KEEPER_KEY, table.ids, keeper_scores(table.attributes, table.scores))
    if args.best_by not in table.attributes:
        known = ", ".join(table.attributes)
        catalog.close()
        raise CommandError(f"--best-by {args.best_by}: not an attribute of this folder; known: {known}")
    column = table.score_column(args.best_by).astype(np.float64)
    row_of = {int(pid): i for i, pid in enumerate(table.ids)}
    return catalog, Shoot(table, group_photos(inputs, params), column, ranking(args.best_by, column), row_of)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    folder = Path(args.folder).expanduser().resolve()
    writes = args.keep_best is not None and not args.dry_run
    if (args.yes or args.dry_run) and args.keep_best is None:
        print(
            f"clipiqa-desktop: {'--yes' if args.yes else '--dry-run'} goes with --keep-best N",
            file=sys.stderr,
        )
        return 2
    try:
        params = GroupParams(args.burst_similarity, args.burst_gap, args.scene_similarity, args.scene_gap)
        catalog, shoot = _load(args, folder, params, readonly=not writes)
    except ValueError as exc:  # GroupParams: argparse's types check the same, this is the backstop
        print(f"clipiqa-desktop: {exc}", file=sys.stderr)
        return 2
    except (CommandError, CatalogError) as exc:
        print(f"clipiqa-desktop: {exc}", file=sys.stderr)
        return 2
    try:
        if args.keep_best is not None:
            return _keep_best(args, catalog, shoot, out)
        _summary(shoot, args.best_by)
        if args.format == "json":
            write_json(shoot, args, out)
        else:
            write_text(shoot, args, out)
        return 0
    finally:
        catalog.close()


# --- listing ----------------------------------------------------------------------------------------


def _label(key: str) -> str:
    return "keeper score" if key == KEEPER_KEY else attribute_info(key).label


def _value(shoot: Shoot, row: int | None) -> float | None:
    if row is None:
        return None
    v = float(shoot.column[row])
    return None if math.isnan(v) else round(v, 6)


def _listed(groups: list[Group], singles: bool) -> list[Group]:
    return [g for g in groups if singles or g.kind != SINGLE]


def _summary(shoot: Shoot, best_by: str) -> None:
    bursts = shoot.grouping.bursts
    count = {kind: sum(g.kind == kind for g in bursts) for kind in ("burst", BRACKET, FOCUS_STACK, SINGLE)}
    scenes = sum(g.kind == SCENE for g in shoot.grouping.scenes)
    parts = [_n(count["burst"], "burst")]
    parts += [_n(count[BRACKET], "exposure bracket")] if count[BRACKET] else []
    parts += [_n(count[FOCUS_STACK], "focus stack")] if count[FOCUS_STACK] else []
    print(
        f"clipiqa-desktop: {_n(len(shoot.grouping.ids), 'photo')}: {', '.join(parts)}, "
        f"{_n(count[SINGLE], 'single frame')}; {_n(scenes, 'scene')}; best by {_label(best_by)}",
        file=sys.stderr,
    )


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class Listed:
    """A group as listed: its level, the group, the table row of its best frame (None: none)."""

    level: str
    group: Group
    best: int | None


def listed(shoot: Shoot, args: argparse.Namespace) -> list[Listed]:
    """The groups to list, in capture order: with --level both each scene is followed by its
    burst-level groups. Singles (a frame alone; a scene of one photo) only with --singles."""
    grouping = shoot.grouping
    levels = ("scene", "burst") if args.level == "both" else (args.level,)
    best = {level: best_rows(grouping.level(level)[0], shoot.row_of, shoot.ranks) for level in levels}

    def item(level: str, g: Group) -> Listed:
        return Listed(level, g, best[level][g.id])

    if args.level != "both":
        return [item(args.level, g) for g in _listed(grouping.level(args.level)[0], args.singles)]
    by_scene: dict[int, list[Group]] = {}
    for g in grouping.bursts:
        by_scene.setdefault(g.scene, []).append(g)
    out = []
    for scene in grouping.scenes:
        if scene.kind != SINGLE or args.singles:
            out.append(item("scene", scene))
            out.extend(item("burst", g) for g in _listed(by_scene.get(scene.id, []), args.singles))
    return out


def as_dict(shoot: Shoot, entry: Listed, best_by: str) -> dict[str, Any]:
    """The JSON object of one group."""
    g, paths = entry.group, shoot.table.paths
    data: dict[str, Any] = {"id": g.id + 1, "level": entry.level, "kind": g.kind}
    if entry.level == "burst":
        data["scene"] = g.scene + 1
    data["count"] = len(g)
    data["members"] = [paths[shoot.row_of[pid]] for pid in g.members]
    data["best"] = None if entry.best is None else paths[entry.best]
    data["best_by"] = best_by
    data["best_value"] = _value(shoot, entry.best)
    return data


def write_json(shoot: Shoot, args: argparse.Namespace, out: TextIO) -> None:
    for entry in listed(shoot, args):
        out.write(json.dumps(as_dict(shoot, entry, args.best_by), ensure_ascii=False, allow_nan=False) + "\n")


_KIND_TEXT = {"burst": "burst", BRACKET: "exposure bracket", FOCUS_STACK: "focus stack", SINGLE: "single"}


def write_text(shoot: Shoot, args: argparse.Namespace, out: TextIO) -> None:
    """Scenes as headers, their bursts under them; every member by its name in the folder, the best
    marked ★, with its --best-by value."""
    table = shoot.table
    label = _label(args.best_by)

    def members(entry: Listed, indent: str) -> None:
        for pid in entry.group.members:
            row = shoot.row_of[pid]
            value = "" if math.isnan(shoot.column[row]) else f"  {shoot.column[row]:.2f}"
            out.write(f"{indent}{'★' if row == entry.best else ' '} {table.names[row]}{value}\n")

    def best(entry: Listed) -> str:
        if entry.group.kind in KEPT_WHOLE:
            return "kept whole"
        if entry.best is None:
            return f"no {label} value"
        return f"best {table.names[entry.best]} ({label} {shoot.column[entry.best]:.2f})"

    entries = listed(shoot, args)
    if not entries:
        out.write("no bursts or scenes" + ("" if args.singles else " (--singles lists single frames)") + "\n")
        return
    hidden: dict[int, int] = {}
    if not args.singles:
        for g in shoot.grouping.bursts:
            if g.kind == SINGLE:
                hidden[g.scene] = hidden.get(g.scene, 0) + 1
    for entry in entries:
        g = entry.group
        if entry.level == "scene":
            out.write(f"scene {g.id + 1}: {len(g)} photos · {best(entry)}\n")
            if args.level == "scene":
                members(entry, "  ")
            elif hidden.get(g.id):
                n = hidden[g.id]
                out.write(f"  + {n} single frame{'s' if n != 1 else ''} (--singles lists them)\n")
            continue
        indent = "  " if args.level == "both" else ""
        where = "" if args.level == "both" else f" (scene {g.scene + 1})"
        frames = f"{len(g)} frames · " if len(g) > 1 else ""
        out.write(f"{indent}{_KIND_TEXT.get(g.kind, g.kind)} {g.id + 1}{where}: {frames}{best(entry)}\n")
        members(entry, indent + "  ")


# --- keep the best N --------------------------------------------------------------------------------


def _still_open(current: Decision) -> bool:
    """Undecided: what the plan may reject (no reject, pick, stars or colour label)."""
    return current.rating == 0 and not current.picked and not current.label


def _keep_best(args: argparse.Namespace, catalog: Any, shoot: Shoot, out: TextIO) -> int:
    level = "scene" if args.level == "scene" else "burst"
    table = shoot.table
    labelled = np.array([bool(label) for label in table.labels], dtype=bool)
    groups = shoot.grouping.level(level)[0]  # a scene's brackets and stacks are left whole too
    plan: KeepBestPlan = keep_best_plan(
        groups, shoot.row_of, shoot.ranks, table.rating, table.picked, args.keep_best, labelled
    )
    print(plan.describe(args.keep_best, level, _label(args.best_by)), file=sys.stderr)
    paths = [table.paths[shoot.row_of[pid]] for pid in plan.reject]
    if not plan.reject:
        print("clipiqa-desktop: nothing to reject", file=sys.stderr)
        return 0
    if args.dry_run:
        out.writelines(p + "\n" for p in paths)
        print(f"clipiqa-desktop: --dry-run: nothing changed ({len(paths)} photos listed)", file=sys.stderr)
        return 0
    if not args.yes:
        if not sys.stdin.isatty():  # a script, a pipe: never reject on a guess
            # the plan's paths on stderr: stdout carries only photos really rejected, so that
            # `groups --keep-best 1 | xargs …` never acts on a refused plan
            sys.stderr.writelines(p + "\n" for p in paths)
            print(
                "clipiqa-desktop: nothing rejected: confirm with --yes (no terminal to ask on), or "
                "see the plan with --dry-run",
                file=sys.stderr,
            )
            return 2
        sys.stderr.writelines(f"  reject {p}\n" for p in paths)  # which frames go, before asking
        sys.stderr.write(f"Reject {len(paths)} photo{'s' if len(paths) != 1 else ''}? [y/N] ")
        sys.stderr.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            print("clipiqa-desktop: nothing rejected", file=sys.stderr)
            return 2
    wanted = set(plan.reject)

    def reject_if_open(pid: int, current: Decision) -> Decision:
        # read again inside the transaction: a photo picked, starred or rejected since the plan
        # was made (in the window, by another command) is left as it is now
        if pid in wanted and _still_open(current):
            return Decision(-1, False, current.label)
        return current

    try:
        deltas = catalog.update_decisions(plan.reject, reject_if_open, source="user")
    except CatalogError as exc:
        print(f"clipiqa-desktop: {exc}", file=sys.stderr)
        return 2
    done = {d.photo_id for d in deltas}
    rejected = [table.paths[shoot.row_of[pid]] for pid in plan.reject if pid in done]
    out.writelines(p + "\n" for p in rejected)
    skipped = len(plan.reject) - len(done)
    note = f"; {skipped} left as they are (decided since the plan was made)" if skipped else ""
    undo = f"xargs -d '\\n' clipiqa-desktop rate --unflag{catalog_option(args)}"
    print(
        f"clipiqa-desktop: rejected {_n(len(rejected), 'photo')}{note}; their paths are on standard "
        f"output: pipe them to `{undo}` to undo (the window's Ctrl+Z does not undo changes made "
        "from the command line)",
        file=sys.stderr,
    )
    return 0
