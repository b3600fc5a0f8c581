"""Helpers the headless commands share: loading the scorer, finding photos, progress on a terminal."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ..catalog import Catalog, CatalogError, default_catalog_path
from ..catalog.connection import is_server_address, server_url
from ..imaging.decode import model_long_side, size_label
from ..scoring.errors import ScoringError

if TYPE_CHECKING:  # torch and open_clip are imported only when a model is actually needed
    from ..scoring import ClipIqaScorer, LazyScorer


def whole_number(minimum: int, too_small: str) -> Callable[[str], int]:
    """argparse type: a whole number ≥ `minimum`; `too_small` says why a smaller one is refused."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(too_small)
        return value

    return parse


positive = whole_number(1, "must be at least 1")  # argparse type: a whole number ≥ 1
top_count = whole_number(0, "must be 0 (every photo) or more")  # --top of search and learn


def batch_size(text: str) -> int | str:
    """argparse type of --batch-size: "auto" (measured on the run's first batches) or a whole number ≥ 1."""
    return "auto" if text.strip().lower() == "auto" else positive(text)


class CommandError(Exception):
    """Stops a command with a message for the user and exit status 2."""


def load_scorer(args: argparse.Namespace) -> ClipIqaScorer:
    """Build the scorer from the shared model options; ScoringError becomes CommandError."""
    from ..scoring import ClipIqaScorer, ModelSpec

    spec = ModelSpec.from_options(
        args.model, args.pretrained, args.weights, getattr(args, "learned_prompts", None)
    )
    try:
        return ClipIqaScorer.load(spec, device=args.device, precision=args.precision, engine=engine_of(args))
    except ScoringError as exc:
        raise CommandError(str(exc)) from exc


def engine_of(args: argparse.Namespace) -> str:
    """--engine (list and export default to torch: they encode texts only, no image tower runs)."""
    return str(getattr(args, "engine", "torch"))


def lazy_scorer(args: argparse.Namespace) -> LazyScorer:
    """The scorer of the shared model options, loaded on first use (an unchanged folder needs none)."""
    from ..scoring import LazyScorer, ModelSpec

    spec = ModelSpec.from_options(
        args.model, args.pretrained, args.weights, getattr(args, "learned_prompts", None)
    )
    try:
        _ = spec.learned_pair  # a missing or unreadable learned-prompts file stops here, before any work
        return LazyScorer(spec, device=args.device, precision=args.precision, engine=engine_of(args))
    except ScoringError as exc:
        raise CommandError(str(exc)) from exc


def add_learned_prompts_option(parser: argparse.ArgumentParser) -> None:
    """`--learned-prompts FILE` (score, index): CLIP-IQA+ context vectors that add quality_plus."""
    parser.add_argument(
        "--learned-prompts",
        metavar="FILE",
        help="CLIP-IQA+ learned prompt vectors (a .pth you supply; the released files are "
        "non-commercial, S-Lab License 1.0): adds the attribute quality_plus",
    )


def resolve_long_side(size: int | str | None, scorer: ClipIqaScorer) -> int | None:
    """'auto' -> 1024 on a GPU, 512 on the CPU; None = full resolution."""
    return model_long_side(size, scorer.device.type)


class Progress:
    """One self-overwriting line on a terminal (stderr); silent when stderr is not a terminal."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        self.total, self.label = total, label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.start = time.perf_counter()
        self._last = 0.0

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < 0.2 and done < self.total:
            return
        self._last = now
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        width = 30
        filled = int(width * done / max(self.total, 1))
        bar = "█" * filled + "·" * (width - filled)
        eta_text = f"{eta:4.0f}s" if eta != float("inf") else "  --"
        self.stream.write(f"\r{self.label} {bar} {done}/{self.total}  {rate:5.1f} photos/s  ETA {eta_text}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def open_catalog(args: argparse.Namespace, create: bool = False, readonly: bool = False) -> Catalog:
    """The catalog named by --catalog, or the per-user default; errors become CommandError.

    Only `index` creates a catalog: a mistyped --catalog for list/rate/export is an error, not a new
    empty file, and only the default catalog's own data folder is ever created. Readers (list,
    export) pass `readonly=True`, so a catalog on a read-only drive can still be read. A writer
    fails here, before any work (before the model loads), when the catalog cannot be written."""
    path: Path | str = default_catalog_path()
    if args.catalog:  # a file, or a PostgreSQL address (postgresql://USER@HOST/DB, the [studio] extra)
        path = args.catalog if is_server_address(args.catalog) else Path(args.catalog).expanduser()
    try:
        return Catalog(path, create=create, readonly=readonly)
    except CatalogError as exc:
        raise CommandError(str(exc)) from exc


def catalog_option(args: argparse.Namespace) -> str:
    """` --catalog FILE` when the user named one, for the commands our messages suggest: pasted as
    shown they must work on the same catalog, not the default one."""
    given = getattr(args, "catalog", None)
    if not given:
        return ""
    if is_server_address(str(given)):  # as typed, but never its password (libpq: ~/.pgpass)
        with suppress(CatalogError):
            given = server_url(str(given))[1]
    return f" --catalog {shlex.quote(str(given))}"


def index_command(folder: Path, args: argparse.Namespace, recursive: bool = False) -> str:
    """The `index` command to suggest for `folder`, on the catalog and with the model options this
    command was given (pasted as shown it must index with the same model, not the default one)."""
    flag = " -r" if recursive else ""
    return f"clipiqa-desktop index{flag} {shlex.quote(str(folder))}{catalog_option(args)}{model_args(args)}"


def model_args(args: argparse.Namespace) -> str:
    """The model options the user gave, as they would be typed again (defaults left out). The image
    tower's own options (precision, engine, batch size) only when `args` are index's."""
    given: list[tuple[str, object]] = [
        ("--model", getattr(args, "model", None)),
        ("--pretrained", getattr(args, "pretrained", None)),
        ("--weights", getattr(args, "weights", None)),
        ("--device", None if getattr(args, "device", "auto") == "auto" else args.device),
    ]
    size = getattr(args, "size", "auto")
    if size != "auto":
        given.append(("--size", "full" if size is None else size))
    if hasattr(args, "batch_size"):  # index or score: the options of the run itself
        for flag, name in (
            ("--precision", "precision"),
            ("--engine", "engine"),
            ("--batch-size", "batch_size"),
        ):
            value = getattr(args, name, "auto")
            given.append((flag, None if value == "auto" else value))
    return "".join(f" {flag} {shlex.quote(str(value))}" for flag, value in given if value is not None)


def discard_new_catalog(catalog: Catalog | None) -> bool:
    """After a failed run: delete the catalog file if this run created it and wrote no photo into
    it, so a failed first `index` (bad weights, no photos, ...) leaves no empty catalog behind."""
    if catalog is None or not catalog.created:
        return False
    from ..catalog.connection import discard_if_unused

    if catalog.path is None:  # a PostgreSQL database is its administrator's: nothing to discard
        return False
    return discard_if_unused(catalog.engine, catalog.path)


def model_was_chosen(args: argparse.Namespace) -> bool:
    """True when the user named a model, weights or size (else: use what the folder was indexed with)."""
    return any(v is not None for v in (args.model, args.pretrained, args.weights)) or args.size != "auto"


def folder_analysis(
    args: argparse.Namespace, catalog: Catalog, folder: Path, recursive: bool = False
) -> tuple[list[int], int]:
    """(folder ids, analysis id) whose scores `list`/`export` show, or CommandError saying why none.

    The folder's own photos, with `recursive` those of every folder under it too, whatever folder
    was indexed (a photo is stored under its real directory). A folder with no photos of its own
    (a card's DCIM) shows the photos of its sub-folders, and says so on stderr."""
    if folder.is_file():
        raise CommandError(
            f"{folder} is a photo, not a folder; list a folder and pick photos with --where, e.g. "
            f"`clipiqa-desktop list {shlex.quote(str(folder.parent))}{catalog_option(args)}`"
        )
    folder_ids = catalog.folder_ids(folder, recursive)
    if not recursive and catalog.photo_count(folder_ids) == 0:
        tree = catalog.folder_ids(folder, recursive=True)
        below = catalog.photo_count(tree)
        if below:
            print(
                f"clipiqa-desktop: {folder} has no photos of its own; showing the {below:,} photos "
                "of its sub-folders (as with -r)",
                file=sys.stderr,
            )
            folder_ids = tree
    if not folder_ids:
        unmounted = catalog.unmounted_root(folder)  # a studio's shared folder: map it, not index it
        if unmounted is not None:
            raise CommandError(str(unmounted))
        if not folder.exists():  # a typo, not a folder to index
            raise CommandError(
                f"{folder} does not exist (and the catalog {catalog.location} has no such folder)"
            )
        raise CommandError(
            f"{folder} is not in the catalog {catalog.location}; run `{index_command(folder, args)}` first"
        )
    last = catalog.last_analysis(folder_ids)
    if not model_was_chosen(args):
        if last is None:
            raise CommandError(f"{folder} has no scores yet; run `{index_command(folder, args)}`")
        return folder_ids, last
    from ..scoring.spec import ModelSpec

    spec = ModelSpec.from_options(args.model, args.pretrained, args.weights)
    model_id = spec.model_id
    candidates = [args.size] if args.size != "auto" else []
    if args.size == "auto" and last is not None and catalog.analysis(last)[0] == model_id:
        return folder_ids, last
    sizes = [size_label(c) for c in candidates] or catalog.analysis_sizes(model_id)
    for size in sizes:
        analysis_id = catalog.analysis_id(model_id, size)
        if analysis_id is not None and catalog.has_scores(folder_ids, analysis_id):
            return folder_ids, analysis_id
    wanted = f"{model_id} at size {sizes[0]}" if sizes else model_id
    raise CommandError(
        f"{folder} has no scores for {wanted}; index it with those options first "
        "(or leave out --model/--size to see the scores it was last indexed with)"
    )
