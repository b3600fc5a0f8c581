"""`clipiqa-desktop score PATH...`: CLIP-IQA scores of photos, printed as a table, CSV or JSON lines."""

from __future__ import annotations

import argparse
import csv
import functools
import json
import math
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..cluster import ClusterError
from ..cluster.connect import leaves_the_cluster
from ..imaging import decode_photo
from ..imaging.decode import model_long_side, size_label
from ..indexing.batching import decode_workers, inference_threads
from ..indexing.scan import find_photos
from ..measures.photo import faces_unavailable, measurable_keys, measure_photo
from ..measures.registry import FACE_KEYS, PIXEL_KEYS, PIXEL_MEASURES
from ..scoring import (
    DEFAULT_ATTRIBUTES,
    AttributePair,
    PromptError,
    parse_attribute_list,
    parse_prompt_pair,
)
from ..scoring.constants import NO_MODEL
from ..scoring.learned import ALIASES as LEARNED_ALIASES
from ..text import counted
from .common import (
    CommandError,
    Progress,
    add_learned_prompts_option,
    batch_size,
    engine_of,
    load_scorer,
    positive,
    resolve_long_side,
)
from .index import add_ray_option

if TYPE_CHECKING:
    from PIL import Image

    from ..cluster.connect import Cluster
    from ..cluster.ray_scoring import ModelArgs
    from ..indexing.stream import PhotoResult

# Attributes that count (faces, faces with eyes closed): printed as whole numbers.
COUNTS = frozenset(m.key for m in PIXEL_MEASURES if m.kind == "count")
# Without a model, clipping is counted on an image of the indexer's default analysis size.
MEASURE_ANALYSIS_SIDE = 512

EPILOG = """examples:
  clipiqa-desktop score shoot/                          every attribute, a table
  clipiqa-desktop score --attributes quality,sharpness --format json IMG_0001.JPG
  clipiqa-desktop score --attributes focus,eyes_closed,highlights_clipped shoot/   no CLIP model
  clipiqa-desktop score --prompt "Eyes closed.:Eyes open." --format csv shoot/ > eyes.csv
  clipiqa-desktop score --weights ~/models/RN50.pt --size full tid2013/I01.BMP
  clipiqa-desktop score --learned-prompts CLIP-IQA+_learned_prompts.pth --attributes quality+ shoot/
  clipiqa-desktop score -r /datasets/frames --ray head:6379 --output scores.parquet
                                                        on a Ray cluster ([cluster] extra), to Parquet

exit status: 0 all scored, 1 some photos failed (reported per photo), 2 nothing could run"""


# The keys of a `--format json` line, each on every line: `scores` (every attribute asked for) is
# null for a photo that failed, `error` null for one that was scored; `model` and `size` are null
# only when no photo could be read, so no model was loaded.
JSON_KEYS = ("path", "scores", "model", "size", "error")


def _json_number(value: float | None) -> float | None:
    """A score for JSON: rounded; null when missing or not finite (JSON has no NaN)."""
    return round(value, 6) if value is not None and math.isfinite(value) else None


def add_parser(sub: Any, parents: dict[str, argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "score",
        parents=[parents["verbose"], parents["model"]],
        help="score photos (files or folders) without a catalog",
        description="Print CLIP-IQA scores of photos. Folders contribute their photo files.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="photo files or folders")
    p.add_argument(
        "--attributes",
        default="all",
        metavar="KEYS",
        help=(
            f"comma-separated, from the pixel measures {', '.join(PIXEL_KEYS)} (no CLIP model needed; "
            f"faces, face_focus and eyes_closed need the [faces] extra) and the CLIP-IQA pairs "
            f"{', '.join(DEFAULT_ATTRIBUTES)}; or 'all' (default: all of them); --learned-prompts adds "
            "quality_plus (alias quality+)"
        ),
    )
    p.add_argument(
        "--prompt",
        action="append",
        default=[],
        metavar="POSITIVE:NEGATIVE",
        help='a custom pair, e.g. "Eyes closed.:Eyes open." (repeatable; key=POS:NEG names it)',
    )
    p.add_argument(
        "--batch-size",
        type=batch_size,
        default="auto",
        metavar="N|auto",
        help="images per model call; auto (default) times the first batches, keeps the fastest (-v says)",
    )
    p.add_argument(
        "--workers",
        type=positive,
        metavar="N",
        help=f"decoding threads (default: from the CPU count; {decode_workers()} here with the CPU encoding)",
    )
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    p.add_argument(
        "--output",
        metavar="FILE.parquet",
        help="write the rows to a Parquet file instead of printing them (one row per photo: path, "
        "status, error, model, size, one column per attribute; pyarrow, in the [cluster] extra); "
        "with or without --ray",
    )
    add_ray_option(p)
    p.add_argument("-r", "--recursive", action="store_true", help="also look inside sub-folders")
    add_learned_prompts_option(p)
    p.set_defaults(run=run)


def without_quality_plus(attributes: str) -> tuple[str, bool]:
    """The attribute list without quality_plus / quality+ (the learned-prompts file gives that
    pair, scoring/learned.py), and whether it was asked for."""
    keys = [k.strip() for k in attributes.split(",")]
    rest = [k for k in keys if k.lower() not in LEARNED_ALIASES]
    return ",".join(rest), len(rest) < len(keys)


def parse_attributes(
    attributes: str, prompts: list[str], learned: AttributePair | None = None
) -> tuple[list[AttributePair], list[str]]:
    """The CLIP-IQA pairs asked for (attribute keys, custom prompt pairs and the learned
    quality_plus pair, last) and the pixel measures asked for; 'all' = every built-in pair and
    every pixel measure this installation can compute. Keys must be unique."""
    attributes, wants_learned = without_quality_plus(attributes)
    keys = [k.strip() for k in attributes.split(",") if k.strip()]
    everything = attributes.strip().lower() == "all"
    if everything:
        measures = list(measurable_keys())
    else:
        measures = [k for k in dict.fromkeys(keys) if k in PIXEL_KEYS]
        why = faces_unavailable() if set(measures) & set(FACE_KEYS) else None
        if why is not None:
            raise CommandError(why)
        attributes = ",".join(k for k in keys if k not in PIXEL_KEYS)
    if wants_learned and learned is None:
        raise CommandError(
            "quality_plus (CLIP-IQA+) needs its learned prompts: add --learned-prompts FILE "
            "(you supply the file; see the README)"
        )
    try:
        pairs = parse_attribute_list(attributes) if attributes.strip() else []
        pairs += [parse_prompt_pair(p) for p in prompts]
    except PromptError as exc:
        message = str(exc)
        if message.startswith("unknown attribute"):
            message += f"; or a pixel measure: {', '.join(PIXEL_KEYS)}"
        raise CommandError(message) from exc
    if learned is not None:
        pairs.append(learned)
    names = [p.key for p in pairs] + measures
    dupes = sorted({k for k in names if names.count(k) > 1})
    if dupes:
        raise CommandError(f"attribute key used twice: {', '.join(dupes)} (name a prompt with key=POS:NEG)")
    if not names:
        raise CommandError("nothing to score: give --attributes or --prompt")
    return pairs, measures


def _learned_pair(path: str) -> AttributePair:
    from ..scoring.learned import LearnedPromptError, learned_pair

    try:
        return learned_pair(Path(path).expanduser())
    except LearnedPromptError as exc:
        raise CommandError(str(exc)) from exc


def _cell(key: str, value: float | None, digits: int) -> str:
    """A score for the table or CSV (a count as a whole number); empty when it does not apply (a
    face measure without a face)."""
    if value is None or not math.isfinite(value):
        return ""
    return str(round(value)) if key in COUNTS else f"{value:.{digits}f}"


class _Writer:
    def __init__(self, fmt: str, keys: list[str], out: TextIO, meta: dict[str, Any]) -> None:
        self.fmt, self.keys, self.out, self.meta = fmt, keys, out, meta
        self.csv = csv.writer(out) if fmt == "csv" else None
        self.widths = [max(len(k), 6) for k in keys]

    def header(self) -> None:
        if self.csv is not None:
            self.csv.writerow(["path", *self.keys, "error"])
        elif self.fmt == "table":
            cols = "  ".join(k.rjust(w) for k, w in zip(self.keys, self.widths, strict=True))
            self.out.write(f"{cols}  path\n")

    def row(self, r: PhotoResult) -> None:
        path = str(r.path)
        if self.fmt == "json":  # every key of JSON_KEYS on every line, null when unknown
            obj: dict[str, Any] = dict.fromkeys(JSON_KEYS)
            obj["path"] = path
            if r.scores is not None:  # a measure that does not apply (no face) is null
                obj["scores"] = {k: _json_number(r.scores.get(k)) for k in self.keys}
            obj.update(self.meta)
            obj["error"] = r.error if r.scores is None else None
            self.out.write(json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n")
        elif self.csv is not None:
            values = [_cell(k, r.scores.get(k), 6) for k in self.keys] if r.scores else [""] * len(self.keys)
            self.csv.writerow([path, *values, r.error or ""])
        elif r.scores is not None:
            cells = [_cell(k, r.scores.get(k), 4) or "-" for k in self.keys]
            cols = "  ".join(c.rjust(w) for c, w in zip(cells, self.widths, strict=True))
            self.out.write(f"{cols}  {path}\n")
        else:
            cols = "  ".join("-".rjust(w) for w in self.widths)
            self.out.write(f"{cols}  {path}  (error: {r.error})\n")
        self.out.flush()


@leaves_the_cluster
def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        learned_file = getattr(args, "learned_prompts", None)
        learned = _learned_pair(learned_file) if learned_file else None  # a missing file: stop here
        pairs, measures = parse_attributes(args.attributes, args.prompt, learned)
        if args.model == NO_MODEL:  # no CLIP: the pixel measures only
            asked = args.attributes.strip().lower() != "all" or args.prompt or learned is not None
            if pairs and asked:
                raise CommandError(
                    f"{', '.join(p.key for p in pairs)} need a CLIP model; --model none measures only "
                    f"{', '.join(measurable_keys())}"
                )
            pairs = []
        sel = find_photos(args.paths, recursive=args.recursive)
        # Missing and unreadable files get a row where they were given; folders a line here.
        errors = {p: "file not found" for p in sel.missing}
        in_order = set(sel.order)
        for unread, reason in sel.unreadable:
            if unread in in_order:
                errors[unread] = f"cannot read: {reason}"
            else:
                print(f"clipiqa-desktop: cannot read {unread}: {reason}", file=sys.stderr)
        for passed, reason in sel.passed_over:
            print(f"clipiqa-desktop: {passed}: {reason}", file=sys.stderr)
        if not sel.order:
            raise CommandError(
                "no photos found in "
                + ", ".join(args.paths)
                + (f" ({len(sel.skipped)} other files skipped)" if sel.skipped else "")
            )
        keys = [*measures, *(p.key for p in pairs)]
        parquet = _ParquetWriter.open(args.output, keys) if args.output else None
        cluster = _connect(args) if args.ray is not None else None
        # no model when only pixel measures are asked for; load_scorer checks the learned prompts
        scorer = None
        if sel.photos and pairs:
            with inference_threads():  # an ONNX Runtime tower sizes its thread pool when it loads
                # with --ray the actors score; here the model gives its facts (id, input multiple)
                scorer = load_scorer(_on_this_cpu(args) if cluster is not None else args)
    except (CommandError, ClusterError) as exc:
        print(f"clipiqa-desktop: {exc}", file=sys.stderr)
        return 2

    if cluster is not None:
        long_side = model_long_side(args.size, cluster.device_type) if scorer else None
    else:
        long_side = resolve_long_side(args.size, scorer) if scorer else None
    meta = {"model": scorer.model_id, "size": size_label(long_side)} if scorer else {}
    writer: _Writer | _ParquetWriter = parquet or _Writer(args.format, keys, out, meta)
    if parquet is not None:
        parquet.meta = meta
    writer.header()
    complete = False
    try:
        failed = _score_in_order(args, scorer, pairs, measures, long_side, sel.order, errors, writer, cluster)
        complete = True
    except ClusterError as exc:
        print(f"clipiqa-desktop: {exc}", file=sys.stderr)
        return 2
    finally:
        if parquet is not None:
            parquet.close(complete)
    ok = len(sel.order) - failed
    summary = f"scored {ok} photo(s)" if pairs else f"measured {ok} photo(s) (no CLIP model needed)"
    if meta:
        summary += f" with {meta['model']} at size {meta['size']}"
    if failed:
        summary += f"; {failed} failed"
    if sel.skipped:
        summary += f"; skipped {len(sel.skipped)} non-photo file(s)"
    if parquet is not None:
        summary += f"; {counted(parquet.rows, 'row')} written to {args.output}"
    print(f"clipiqa-desktop: {summary}", file=sys.stderr)
    if cluster is not None:
        print(f"  {cluster.describe()}", file=sys.stderr)
    elif scorer is not None:
        print(f"  image encoder: {scorer.describe()}", file=sys.stderr)
    return 1 if failed or sel.unreadable else 0


# what a row of _score_in_order holds once it is written (its result dropped)
_WRITTEN: Any = object()


def _score_in_order(
    args: argparse.Namespace,
    scorer: Any,
    pairs: list[AttributePair],
    measures: list[str],
    long_side: int | None,
    order: list[Path],
    errors: dict[Path, str],
    writer: _Writer | _ParquetWriter,
    cluster: _RayRun | None = None,
) -> int:
    """Run the streaming scorer, printing rows in input order (with a row for each path of `errors`,
    e.g. a missing file) as soon as each is final; returns the number of failed rows."""
    from ..indexing.stream import PhotoResult, score_photos

    photos = [p for p in order if p not in errors]
    rows: list[PhotoResult | None] = [None] * len(order)  # filled as results come, printed in order
    slot: dict[int, int] = {}  # index in `photos` -> row
    for n, path in enumerate(order):
        if path in errors:
            rows[n] = PhotoResult(-1, path, error=errors[path])
        else:
            slot[len(slot)] = n
    progress = _RowProgress(len(photos), "scoring")
    next_row, done, failed = 0, 0, 0

    def print_ready() -> None:
        nonlocal next_row, failed
        if next_row < len(rows) and rows[next_row] is not None:
            progress.clear()  # never leave the progress line inside the table
            while next_row < len(rows) and (row := rows[next_row]) is not None:
                writer.row(row)
                failed += 0 if row.ok else 1
                rows[next_row] = _WRITTEN  # a million results never sit in memory
                next_row += 1
            progress.redraw(done)

    print_ready()
    if photos:
        stream: Iterator[PhotoResult]
        if cluster is not None:
            stream = cluster.results(photos, scorer, pairs, measures, long_side)
        elif scorer is None:  # pixel measures only: no model, no torch
            stream = measure_photos(photos, measures, args.workers)
        else:
            multiple = scorer.input_multiple

            def prepare(p: Path) -> _Measured:
                return measured_photo(p, long_side, multiple, measures)

            stream = (
                replace(r, scores={**r.scores, **r.prepared.measures})
                if measures and r.scores is not None
                else r
                for r in score_photos(
                    photos,
                    scorer,
                    pairs,
                    long_side,
                    batch_size=args.batch_size,
                    workers=args.workers,
                    prepare=prepare if measures else None,
                    cancel=threading.Event(),
                )
            )
        try:
            for result in stream:
                # score keeps no embedding (index stores it): 4 kB a photo at RN50's 1024-d
                rows[slot[result.index]] = replace(result, embedding=None, prepared=None)
                done += 1
                progress.update(done)
                print_ready()
        finally:
            progress.close()
    return failed


@dataclass(frozen=True)
class _Measured:
    image: Image.Image  # the analysis image the scorer takes
    measures: dict[str, float]


def measured_photo(path: Path, long_side: int | None, multiple: int, measures: Sequence[str]) -> _Measured:
    """One photo's decode for `score`: the analysis image and the pixel measures asked for (here in
    a decode thread, or in a Ray decode task)."""
    decoded = decode_photo(path, long_side, multiple=multiple, full=True)
    assert decoded.full is not None
    return _Measured(decoded.image, measure_photo(decoded.full, decoded.image, measures, decoded.reduced))


def _decoded_for_ray(path: Path, _extra: object, long_side: int | None, multiple: int) -> Any:
    return decode_photo(path, long_side, multiple=multiple)


def _measured_for_ray(
    path: Path, _extra: object, long_side: int | None, multiple: int, measures: Sequence[str]
) -> _Measured:
    return measured_photo(path, long_side, multiple, measures)


@dataclass
class _RayRun:
    """`score --ray`: the cluster and how its actors build the scorer."""

    cluster: Cluster
    model: ModelArgs | None
    device_type: str

    def describe(self) -> str:
        return f"ran on {self.cluster.describe()}"

    def results(
        self,
        photos: list[Path],
        scorer: Any,
        pairs: list[AttributePair],
        measures: list[str],
        long_side: int | None,
    ) -> Iterator[PhotoResult]:
        from ..cluster.ray_scoring import ray_results

        multiple = scorer.input_multiple if scorer is not None else 1
        side = long_side if scorer is not None else MEASURE_ANALYSIS_SIDE
        prepare: Callable[[Path, object], Any] = (
            functools.partial(_measured_for_ray, long_side=side, multiple=multiple, measures=measures)
            if measures
            # no pixel measure: the local path's decode (score_photos' default_prepare: JPEG draft
            # scaling, no full-resolution pixels), so the analysis image and the scores are the same
            else functools.partial(_decoded_for_ray, long_side=side, multiple=multiple)
        )
        for r in ray_results(
            self.cluster, [(p, None) for p in photos], prepare, self.model if pairs else None, pairs, side
        ):
            if measures and r.ok and r.prepared is not None:
                r = replace(r, scores={**(r.scores or {}), **r.prepared.measures})
            yield r


def _on_this_cpu(args: argparse.Namespace) -> argparse.Namespace:
    """The model options for this process when a cluster scores: CPU, fp32, torch (facts only)."""
    return argparse.Namespace(**{**vars(args), "device": "cpu", "precision": "fp32", "engine": "torch"})


def _connect(args: argparse.Namespace) -> _RayRun:
    from ..cluster.connect import connect
    from ..cluster.ray_scoring import ModelArgs, Plan
    from ..scoring import ModelSpec

    if args.model == NO_MODEL:
        model = None
    else:
        spec = ModelSpec.from_options(args.model, args.pretrained, args.weights, args.learned_prompts)
        model = ModelArgs(spec, args.device, args.precision, engine_of(args), args.batch_size)
    cluster = connect(args.ray or None)
    return _RayRun(cluster, model, Plan.for_cluster(cluster, args.device).device_type)


class _ParquetWriter:
    """`--output FILE.parquet`: one row per photo (path, status, error, model, size, a float64
    column per attribute; null where it does not apply), written in row groups of ROWS rows, so a
    million photos never sit in memory. pyarrow comes with the [cluster] extra."""

    ROWS = 1000

    def __init__(self, path: Path, keys: list[str], pa: Any, pq: Any) -> None:
        self.path, self.keys, self.pa, self.pq = path, keys, pa, pq
        self.meta: dict[str, Any] = {}
        self.rows = 0
        self._buffer: list[dict[str, Any]] = []
        fields = [("path", pa.string()), ("status", pa.string()), ("error", pa.string())]
        fields += [("model", pa.string()), ("size", pa.string())]
        self.schema = pa.schema(fields + [(k, pa.float64()) for k in keys])
        self._writer: Any = None

    @classmethod
    def open(cls, output: str, keys: list[str]) -> _ParquetWriter:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise CommandError(
                "--output writes Parquet with pyarrow: pip install 'clipiqa-desktop[cluster]'"
            ) from None
        path = Path(output).expanduser()
        if path.is_dir():
            raise CommandError(f"--output {output} is a folder; give a file name (scores.parquet)")
        if not path.parent.is_dir():
            raise CommandError(f"--output {output}: the folder {path.parent} does not exist")
        return cls(path, keys, pa, pq)

    @property
    def partial(self) -> Path:
        """Where the rows go until the run completes: a killed run leaves the previous file whole."""
        return self.path.with_name(self.path.name + ".partial")

    def header(self) -> None:
        try:
            self._writer = self.pq.ParquetWriter(str(self.partial), self.schema)
        except OSError as exc:
            raise CommandError(f"cannot write {self.partial}: {exc}") from exc

    def row(self, r: PhotoResult) -> None:
        scores = r.scores or {}
        values = {k: v if (v := scores.get(k)) is not None and math.isfinite(v) else None for k in self.keys}
        self._buffer.append(
            {
                "path": str(r.path),
                "status": "ok" if r.scores is not None else "error",
                "error": None if r.scores is not None else r.error,
                "model": self.meta.get("model"),
                "size": self.meta.get("size"),
                **values,
            }
        )
        self.rows += 1
        if len(self._buffer) >= self.ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._buffer and self._writer is not None:
            self._writer.write_table(self.pa.Table.from_pylist(self._buffer, schema=self.schema))
        self._buffer.clear()

    def close(self, complete: bool = True) -> None:
        """Finish the file; a complete run's takes the place of --output (an earlier file is replaced
        only then), an incomplete one stays FILE.partial."""
        if self._writer is not None:
            self._flush()
            self._writer.close()
            self._writer = None
            if complete:
                os.replace(self.partial, self.path)


def measure_photos(photos: list[Path], measures: list[str], workers: int | None) -> Iterator[PhotoResult]:
    """The pixel measures of each photo, decoded in `workers` threads; no CLIP model."""
    from ..indexing.stream import measure_only

    def measure(p: Path) -> _Measured:
        return measured_photo(p, MEASURE_ANALYSIS_SIDE, 1, measures)

    return measure_only(photos, measure, workers)


class _RowProgress(Progress):
    """The progress line, cleared while rows are printed (stdout and stderr share the terminal)."""

    def clear(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")  # carriage return, erase to the end of the line
            self.stream.flush()

    def redraw(self, done: int) -> None:
        self._last = 0.0  # bypass the 5-per-second limit: the line was just erased
        self.update(done)

    def close(self) -> None:
        self.clear()  # the summary line follows; a finished progress bar adds nothing
