"""`clipiqa-desktop index FOLDER`: score, embed and thumbnail a folder into the catalog."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..catalog import Catalog, CatalogError
from ..cluster import ClusterError
from ..cluster.connect import leaves_the_cluster
from ..indexing.batching import decode_workers
from ..scoring.errors import ScoringError
from .common import (
    CommandError,
    Progress,
    add_learned_prompts_option,
    batch_size,
    discard_new_catalog,
    engine_of,
    index_command,
    lazy_scorer,
    open_catalog,
    positive,
)

if TYPE_CHECKING:
    from ..cluster.ray_scoring import RayScoring
    from ..indexing.pipeline import IndexSummary

MAX_LISTED_FAILURES = 20


EPILOG = """examples:
  clipiqa-desktop index ~/shoots/wedding              new and changed photos of the folder
  clipiqa-desktop index -r ~/cards/EOS_DIGITAL        with every sub-folder (DCIM/100CANON, ...)
  clipiqa-desktop index shoot/ --weights ~/models/RN50.pt --size 1024
  clipiqa-desktop index shoot/ --learned-prompts ~/models/CLIP-IQA+_learned_prompts.pth
  clipiqa-desktop index -r /archive --ray head:6379 --catalog postgresql://me@db/archive
                                                      decode and score on a Ray cluster ([cluster] extra)

exit status: 0 every photo indexed; 1 some photos cannot be read (each listed, also those that
failed in an earlier run); 2 nothing could run (bad arguments, catalog, weights, model or device);
130 interrupted (every finished batch is kept: run it again to resume)"""


def add_parser(sub: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "index",
        parents=[parents["verbose"], parents["catalog"], parents["model"]],
        help="score, embed and thumbnail a folder into the catalog (incremental)",
        description=(
            "Index a folder: every new or changed photo is decoded once, scored, embedded and "
            "thumbnailed; unchanged photos are skipped; photos that disappeared are marked missing "
            "(their decisions are kept). Safe to interrupt: run it again to resume."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("folder", metavar="FOLDER", help="the folder of photos to index")
    p.add_argument("-r", "--recursive", action="store_true", help="also index sub-folders")
    p.add_argument(
        "--batch-size",
        type=batch_size,
        default="auto",
        metavar="N|auto",
        help="images per model call; auto (default) times the first batches and keeps the fastest",
    )
    p.add_argument(
        "--workers",
        type=positive,
        metavar="N",
        help=f"decoding threads (default: from the CPU count; {decode_workers()} here with the CPU encoding)",
    )
    add_ray_option(p)
    add_learned_prompts_option(p)
    p.set_defaults(run=run)


def add_ray_option(parser: argparse.ArgumentParser) -> None:
    """`--ray [ADDRESS]` (index, score): decode and score on a Ray cluster (docs/scale-out.md)."""
    parser.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="decode and score on a Ray cluster ([cluster] extra): HOST:PORT of its head, "
        "ray://HOST:PORT, or auto; without ADDRESS $RAY_ADDRESS, else a local Ray instance",
    )


def ray_scoring(args: argparse.Namespace) -> RayScoring:
    """The cluster's Scoring for --ray, connected now (a bad address fails before any work)."""
    from ..cluster.ray_scoring import ModelArgs, RayScoring
    from ..scoring import ModelSpec

    spec = ModelSpec.from_options(
        args.model, args.pretrained, args.weights, getattr(args, "learned_prompts", None)
    )
    if spec.pixels_only:
        raise CommandError("--ray scores with a CLIP model; --model none measures here: leave out --ray")
    model = ModelArgs(spec, args.device, args.precision, engine_of(args), args.batch_size)
    return RayScoring.start(args.ray or None, model)


def print_summary(summary: IndexSummary, folder: Path, out: Any = None) -> None:
    out = out or sys.stderr
    unchanged = f"unchanged {summary.unchanged}"
    if summary.failed_before:
        unchanged += f" ({summary.failed_before} of them still failing, see `list --where status=error`)"
    parts = [f"indexed {summary.indexed}", unchanged, f"failed {len(summary.failed)}", *summary.notes()]
    state = "cancelled" if summary.cancelled else "done"
    print(f"clipiqa-desktop: {folder}: {state} in {summary.seconds:.1f}s: " + ", ".join(parts), file=out)
    if summary.batch_size:  # what --batch-size auto chose, and the speeds it chose by
        print(f"  {summary.batch_size}", file=out)
    for rel in summary.replaced[:MAX_LISTED_FAILURES]:
        print(
            f"  {rel}: a different photo than before (another capture time): decision and scores reset",
            file=out,
        )
    for rel, reason in summary.passed_over[:MAX_LISTED_FAILURES]:
        print(f"  link {rel}: {reason}", file=out)
    for rel, reason in summary.sidecar_problems[:MAX_LISTED_FAILURES]:
        print(f"  sidecar not read (decision unchanged): {rel}: {reason}", file=out)
    for rel, reason in summary.failed[:MAX_LISTED_FAILURES]:
        print(f"  failed: {rel}: {reason}", file=out)
    if len(summary.failed) > MAX_LISTED_FAILURES:
        print(
            f"  ... and {len(summary.failed) - MAX_LISTED_FAILURES} more "
            "(`clipiqa-desktop list FOLDER --where status=error` lists them)",
            file=out,
        )


def photos_only_in_sub_folders(folder: Path, command: str) -> str | None:
    """The message for a folder whose photos are all in sub-folders (a card's DCIM), else None.

    Such a folder is not indexed without -r: a whole tree is a long run (every photo decoded), so
    the photographer starts it knowingly; and `index ~` by mistake must not decode a home folder."""
    from ..indexing.scan import find_photos

    if find_photos([folder]).photos:
        return None
    below = find_photos([folder], recursive=True).photos
    if not below:
        return None
    subs = sorted({f.path.relative_to(folder).parts[0] for f in below})
    shown = ", ".join(subs[:3]) + (f" and {len(subs) - 3} more" if len(subs) > 3 else "")
    return (
        f"{folder} has no photos of its own; its sub-folders ({shown}) hold {len(below):,}. "
        f"Index them with -r: {command}"
    )


@leaves_the_cluster
def run(args: argparse.Namespace) -> int:
    from ..indexing.pipeline import IndexingError, IndexOptions, IndexProgress, index_folder

    folder = Path(args.folder).expanduser()
    cancel = threading.Event()
    catalog: Catalog | None = None
    try:
        if not folder.is_dir():
            raise CommandError(
                f"{folder} does not exist" if not folder.exists() else f"{folder} is not a folder"
            )
        if not args.recursive:
            only_below = photos_only_in_sub_folders(folder, index_command(folder, args, recursive=True))
            if only_below:
                raise CommandError(only_below)
        scoring = ray_scoring(args) if args.ray is not None else None
        catalog = open_catalog(args, create=True)
        # With --ray the actors score; this process loads the model (on its CPU) only for its facts
        # (id, embedding size) and to encode the texts of attributes filled in from stored embeddings.
        driver = {"device": "cpu", "precision": "fp32", "engine": "torch"} if scoring is not None else {}
        scorer = lazy_scorer(argparse.Namespace(**{**vars(args), **driver}))
        options = IndexOptions(
            long_side=args.size,  # "auto" is resolved by the pipeline once the device is known
            batch_size=args.batch_size,
            workers=args.workers,
            recursive=args.recursive,
        )
        progress: Progress | None = None

        def on_progress(p: IndexProgress) -> None:
            nonlocal progress
            if progress is None:
                progress = Progress(p.total, "indexing")
            progress.update(p.done)

        try:
            summary = index_folder(
                catalog, scorer, folder, options, on_progress=on_progress, cancel=cancel, scoring=scoring
            )
        except KeyboardInterrupt:
            cancel.set()
            print(
                "\nclipiqa-desktop: interrupted; every finished batch is saved, run again to resume",
                file=sys.stderr,
            )
            return 130
        finally:
            if progress is not None:
                progress.close()
    except (CommandError, IndexingError, CatalogError, ScoringError, ClusterError) as exc:
        print(f"clipiqa-desktop: {exc}", file=sys.stderr)
        discard_new_catalog(catalog)  # a failed first run leaves no empty catalog behind
        return 2
    print_summary(summary, folder)
    if scoring is not None:
        print(f"  {scoring.describe()}", file=sys.stderr)
    elif scorer.loaded:
        print(f"  image encoder: {scorer.get().describe()}", file=sys.stderr)
    return 1 if summary.failed or summary.failed_before else 0  # 1 while any photo cannot be read
