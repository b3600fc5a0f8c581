"""Incremental, crash-safe indexing of a folder into the catalog.

scan → skip unchanged (size + mtime) → decode in a thread pool (analysis image, thumbnail, EXIF,
XMP and fingerprint from ONE decode) → batch by shape → score on the device → write ONE transaction
per batch. Decoding batch n+1 overlaps inference of batch n. A kill at any moment loses at most the
batches not yet committed; the next run picks up every photo that has no scores yet.

Plain Python: the CLI drives it with a terminal progress bar, the GUI from a QThread worker, both
through the same `on_progress` / `on_batch` callbacks and a `threading.Event` for cancel.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
from PIL import Image

from ..catalog import Catalog, PhotoRecord, PhotoState
from ..catalog.catalog import file_fingerprint
from ..catalog.moves import MovesBusy, moves_lock
from ..culling.prompts import prompt_scores
from ..culling.sidecars import sidecar_to_read, stem_owner
from ..culling.xmp import PhotoXmp, read_photo_xmp
from ..culling.xmp_import import import_changed_sidecars
from ..imaging import DecodedPhoto, DecodeError, decode_photo, size_label
from ..imaging.decode import describe_os_error, model_long_side
from ..imaging.metadata import read_file_meta
from ..measures.photo import faces_unavailable, measurable_keys, measure_photo
from ..measures.registry import PIXEL_KEYS
from ..scoring.attributes import BUILTIN_ATTRIBUTES, AttributePair
from ..text import counted
from .batching import AUTO, MIN_COMMIT, BatchTuner, inference_threads
from .scan import ScannedFile, find_photos, root_vanished
from .stream import PhotoResult, is_scoring_failure, measure_only, score_photos

if TYPE_CHECKING:  # torch is imported only when a photo needs scoring
    from ..scoring import ClipIqaScorer, LazyScorer

log = logging.getLogger(__name__)

THUMB_LONG_SIDE = 320
THUMB_QUALITY = 82


class Scoring(Protocol):
    """Where an index run decodes and scores its photos when not in this process's threads: a
    cluster (clipiqa_desktop/cluster/ray_scoring.RayScoring). Everything else of the run (scan,
    plan, sidecars, the catalog's batches, fill-in) stays in `index_folder`."""

    @property
    def device_type(self) -> str:
        """The device its encoders run on ("cuda", "cpu"): what the analysis size "auto" means."""
        ...

    @property
    def commit_size(self) -> int:
        """Photos per catalog transaction."""
        ...

    def __call__(
        self,
        photos: Sequence[tuple[Path, tuple[str, ...]]],
        pairs: Sequence[AttributePair],
        options: IndexOptions,
        multiple: int,
        cancel: threading.Event | None,
    ) -> Iterator[PhotoResult]:
        """One PhotoResult per (path, sidecar siblings) in any order; `prepared` is what
        prepare_photo(path, options, multiple, siblings) made (its analysis image may be dropped)."""
        ...


class IndexingError(RuntimeError):
    """The folder cannot be indexed at all (does not exist, is not a folder, cannot be read)."""


@dataclass(frozen=True)
class IndexOptions:
    long_side: int | str | None = 512  # analysis size; None = full resolution; "auto" = by device
    # images per model call, or "auto": measured on the run's first calls (indexing/batching.py)
    batch_size: int | str = AUTO
    workers: int | None = None  # decode threads; None: by the CPU count (batching.thread_defaults)
    recursive: bool = False
    thumb_long_side: int = THUMB_LONG_SIDE
    # the pixel measures to compute (measures/registry.py); None = every one this installation can
    measures: tuple[str, ...] | None = None


@dataclass(frozen=True)
class IndexProgress:
    done: int  # photos processed in this run (scored or failed)
    total: int  # photos that need processing in this run
    photos_per_s: float
    eta_s: float | None
    unchanged: int


@dataclass
class IndexSummary:
    folder_id: int
    analysis_id: int | None  # None when nothing was ever scored for this model and size
    found: int = 0
    indexed: int = 0
    unchanged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason), this run
    failed_before: int = 0  # unchanged files that failed in an earlier run
    missing: int = 0  # marked missing in this run
    returned: int = 0  # missing before, present again
    renamed: int = 0  # moved or renamed files that kept their record (counted out of `missing`)
    skipped: int = 0  # non-photo / hidden files
    # links not followed (a loop back into the shoot) or counted once (a second name of a photo)
    passed_over: list[tuple[str, str]] = field(default_factory=list)
    # files that now hold a different photo (another capture time): the old decision was dropped
    replaced: list[str] = field(default_factory=list)
    cancelled: bool = False
    seconds: float = 0.0
    filled_in: list[str] = field(default_factory=list)  # attributes scored from stored embeddings
    filled_in_scores: int = 0  # how many scores that added
    learned_rescored: int = 0  # quality_plus values added or changed (another learned-prompts file)
    # XMP sidecars changed by another tool since the catalog last saw them (culling/xmp_import.py)
    sidecars_imported: int = 0  # photos whose decision a changed sidecar changed
    sidecars_kept: int = 0  # changed sidecars older than the decision made here (not imported)
    sidecars_removed: int = 0  # sidecars deleted (decisions kept)
    sidecar_problems: list[tuple[str, str]] = field(default_factory=list)  # (sidecar, reason) not read
    remeasured: int = 0  # photos indexed before a pixel measure existed, decoded again for it
    # unchanged photos indexed before the catalog kept some camera facts (exposure bias, subject
    # distance, sub-second): those read from their files' headers, no decode (_refresh_meta)
    facts_read: int = 0
    faces_skipped: str | None = None  # why faces and eyes were not measured (no [faces] extra)
    # (relative path, why): photos indexed with their CLIP-IQA scores but without pixel measures
    not_measured: list[tuple[str, str]] = field(default_factory=list)
    # what --batch-size auto chose and the speeds that chose it (BatchTuner.describe), for `index`
    batch_size: str | None = None

    def notes(self) -> list[str]:
        """What else this run did, for the summary line of `index` and of the window."""
        notes = []
        if self.faces_skipped:
            notes.append(self.faces_skipped)
        if self.not_measured:
            notes.append(
                f"{counted(len(self.not_measured), 'photo')} indexed without focus, exposure and faces "
                f"({_first(self.not_measured)}); the next index tries again"
            )
        if self.remeasured:
            notes.append(
                f"{counted(self.remeasured, 'photo')} indexed before focus, exposure or faces were measured: "
                "decoded again to measure them"
            )
        if self.facts_read:
            notes.append(
                f"exposure bias, subject distance and sub-second time of {counted(self.facts_read, 'photo')} "
                "indexed before they were kept: read from the files"
            )
        if self.renamed:
            notes.append(f"{self.renamed} renamed or moved (kept their decisions)")
        if self.missing:
            notes.append(f"{self.missing} now missing (decisions kept)")
        if self.returned:
            notes.append(f"{self.returned} back after being missing")
        if self.skipped:
            notes.append(f"{self.skipped} non-photo files skipped")
        if self.replaced:
            notes.append(f"{len(self.replaced)} files now hold a different photo (old decisions dropped)")
        if self.passed_over:
            notes.append(f"{len(self.passed_over)} links passed over")
        if self.filled_in:
            notes.append(
                f"{self.filled_in_scores} scores of {', '.join(self.filled_in)} filled in from the "
                "stored embeddings"
            )
        if self.learned_rescored:
            notes.append(
                f"quality_plus of {counted(self.learned_rescored, 'photo')} scored with the learned "
                "prompts from the stored embeddings"
            )
        if self.sidecars_imported:
            n = self.sidecars_imported
            notes.append(f"{counted(n, 'decision')} imported from sidecars changed in another tool")
        if self.sidecars_kept:
            notes.append(
                f"{counted(self.sidecars_kept, 'sidecar')} changed in another tool before the decision "
                "made here (kept ours)"
            )
        if self.sidecars_removed:
            notes.append(f"{counted(self.sidecars_removed, 'sidecar')} removed (decisions kept)")
        if self.sidecar_problems:
            notes.append(
                f"{counted(len(self.sidecar_problems), 'sidecar')} not read, decisions unchanged "
                f"({_first(self.sidecar_problems)})"
            )
        return notes


def _first(problems: list[tuple[str, str]]) -> str:
    """'IMG_1.JPG: why' of the first of some (path, reason) pairs, with '; …' when there are more."""
    rel, reason = problems[0]
    return f"{rel}: {reason}{'; …' if len(problems) > 1 else ''}"


@dataclass(frozen=True)
class IndexedPhoto:
    """What one decoding thread prepares for one photo."""

    image: Image.Image  # the analysis image, consumed by the scorer
    decoded: DecodedPhoto
    thumbnail_jpeg: tuple[int, int, bytes] | None
    fingerprint: str
    xmp: PhotoXmp
    measures: dict[str, float] = field(default_factory=dict)  # focus, clipping, faces ...
    measure_problem: str | None = None  # why the pixel measures could not be made (the photo is kept)


def prepare_photo(
    path: Path, options: IndexOptions, multiple: int, siblings: Collection[str]
) -> IndexedPhoto:
    """One photo's decode for the index: analysis image, thumbnail, pixel measures, fingerprint and
    XMP (`siblings`: the names of its folder that decide which sidecar is its own, `_Names`). Runs
    in a decode thread here, or in a cluster's decode task (clipiqa_desktop/cluster)."""
    assert options.long_side is None or isinstance(options.long_side, int)
    keys = options.measures if options.measures is not None else measurable_keys()
    decoded = decode_photo(
        path, options.long_side, options.thumb_long_side, multiple=multiple, full=bool(keys)
    )
    measures: dict[str, float] = {}
    problem = None
    if decoded.full is not None:
        # A measure that fails (not enough memory for a 200 MP panorama, a face-model error) never
        # costs the photo its CLIP-IQA scores, embedding and thumbnail: it is indexed without the
        # measures, reported, and measured again on the next index.
        pixels = np.asarray(decoded.full)  # then the image goes: one full-size copy at a time
        reduced = decoded.reduced  # the face detector's input is made from it (3 MB at 24 MP)
        decoded = replace(decoded, full=None, reduced=None)  # 72 MB at 24 MP: never kept past this thread
        try:
            measures = measure_photo(pixels, decoded.image, keys, reduced)
        except MemoryError:
            problem = "not enough memory for the full-resolution pixels"
        except Exception as exc:
            log.debug("measuring %s failed", path, exc_info=True)
            problem = f"{type(exc).__name__}: {exc}"[:200]
        finally:
            del pixels
    thumb = None
    if decoded.thumbnail is not None:
        buf = io.BytesIO()
        decoded.thumbnail.save(buf, "JPEG", quality=THUMB_QUALITY, optimize=False)
        thumb = (decoded.thumbnail.width, decoded.thumbnail.height, buf.getvalue())
    try:
        fingerprint = file_fingerprint(path)
    except OSError as exc:
        raise DecodeError(describe_os_error(exc)) from exc  # "file no longer exists ..." when gone
    return IndexedPhoto(
        decoded.image,
        decoded,
        thumb,
        fingerprint,
        read_photo_xmp(path, decoded.xmp, siblings),
        measures,
        problem,
    )


def index_folder(
    catalog: Catalog,
    scorer: ClipIqaScorer | LazyScorer,
    folder: Path,
    options: IndexOptions | None = None,
    pairs: Sequence[AttributePair] = BUILTIN_ATTRIBUTES,
    on_progress: Callable[[IndexProgress], None] | None = None,
    on_batch: Callable[[list[int]], None] | None = None,
    cancel: threading.Event | None = None,
    scoring: Scoring | None = None,
) -> IndexSummary:
    """Index `folder` into `catalog` with `scorer`; see the module docstring.

    Every photo is stored under the folder row of the directory that really contains it, so a
    photo has one record whether its folder, a parent or a child was indexed. `scorer` may be a
    LazyScorer: the model is then loaded only if some photo needs scoring (or a score needs
    filling in from the stored embeddings). `on_batch` receives the catalog ids written by each
    committed batch (the GUI refreshes those rows). The folder's last analysis (what `list` and
    the window show) moves to this run's analysis only when the run completes, or when the folder
    had none. Raises IndexingError when the folder cannot be read at all or vanishes during the
    run, CatalogError when the catalog cannot be written (nothing committed is lost).
    Refused (IndexingError) while rejects are being moved on this catalog (catalog/moves.py).
    `scoring` decodes and scores the photos elsewhere (a Ray cluster); `scorer` then only gives the
    model's facts (id, embedding size) and encodes texts for the fill-in.
    """
    try:
        with moves_lock(catalog, shared=True):
            return _index_folder(
                catalog, scorer, folder, options, pairs, on_progress, on_batch, cancel, scoring
            )
    except MovesBusy as exc:
        raise IndexingError(str(exc)) from None


def _index_folder(
    catalog: Catalog,
    scorer: ClipIqaScorer | LazyScorer,
    folder: Path,
    options: IndexOptions | None,
    pairs: Sequence[AttributePair],
    on_progress: Callable[[IndexProgress], None] | None,
    on_batch: Callable[[list[int]], None] | None,
    cancel: threading.Event | None,
    scoring: Scoring | None = None,
) -> IndexSummary:
    options = options or IndexOptions()
    learned = scorer.learned_pair  # CLIP-IQA+ quality_plus; a missing file stops the run here
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise IndexingError(f"folder {folder} does not exist")
    if not folder.is_dir():
        raise IndexingError(f"{folder} is not a folder")
    folder = folder.resolve()
    started = time.perf_counter()
    selection = find_photos([folder], recursive=options.recursive)
    for path, reason in selection.unreadable:
        if path == folder:
            raise IndexingError(f"cannot read folder {folder}: {reason}")
    if root_vanished(folder):  # pulled while we listed it: an empty listing must not mark all missing
        raise IndexingError(vanished_message(folder))
    key_of = _Keys(folder)
    scanned: dict[str, ScannedFile] = {}
    for f in selection.photos:  # two paths to one file (a linked folder) are one photo
        scanned.setdefault(key_of(f.path), f)
    # a studio's shared folder this machine has not mapped (catalog/roots.py): refused before
    # anything is decoded, never indexed again as new folders
    catalog.check_mounted([folder, *{f.path.parent for f in selection.photos}])
    folder_id = catalog.folder_id(folder)
    assert folder_id is not None

    recursive = options.recursive

    def tree_ids() -> list[int]:
        ids = catalog.folder_ids(folder, recursive)
        for directory in key_of.outside:  # folders linked from inside the tree
            fid = catalog.folder_id(directory, create=False)
            if fid is not None and fid not in ids:
                ids.append(fid)
        return ids

    tree = tree_ids()
    had_analysis = catalog.last_analysis(tree) is not None
    # With size "auto" the size depends on the device, which only loading torch tells; until a
    # photo needs scoring, assume the size this folder was last indexed with by the same model.
    label = _expected_label(catalog, tree, scorer.model_id, options.long_side)
    # `--model none`: no CLIP, the pixel measures only, stored as the analysis ("none", size)
    pixels_only = bool(getattr(scorer, "pixels_only", False))
    if pixels_only:
        long_side = model_long_side(options.long_side, "cpu")
        label = size_label(long_side)
    analysis_id = catalog.analysis_id(scorer.model_id, label) if label is not None else None
    summary = IndexSummary(
        folder_id, analysis_id, found=len(selection.photos), skipped=len(selection.skipped)
    )
    summary.passed_over = [
        (path.relative_to(folder).as_posix() if path.is_relative_to(folder) else str(path), reason)
        for path, reason in selection.passed_over
    ]
    for path, reason in selection.unreadable:  # sub-folders or files we could not stat
        summary.failed.append((path.relative_to(folder).as_posix(), f"cannot read: {reason}"))
    # Only a folder whose listing was read can tell that a photo is gone: not a sub-folder of a run
    # without -r, a hidden or unreadable folder, or a file that could not be looked at.
    looked = {key_of.prefix(d) for d in selection.listed}
    protected = {key_of(path) for path, _ in selection.unreadable}

    measures = options.measures if options.measures is not None else measurable_keys()
    states = catalog.photo_states(tree, analysis_id, root=folder, measures=PIXEL_KEYS)
    plan = _plan(scanned, states, looked, protected, measures)
    summary.missing = catalog.mark_missing(plan.gone)
    if plan.returned:
        catalog.mark_present(plan.returned)
    names_in = _Names(selection.names)
    known = [(st.id, f.path) for key, f in scanned.items() if (st := states.get(key)) is not None]
    _import_sidecars(catalog, known, names_in, folder, summary, on_batch)

    model = None
    if plan.todo and not pixels_only:
        with inference_threads():  # an ONNX Runtime tower sizes its thread pool when it loads
            model = scorer.get()
    if model is not None:
        long_side = model_long_side(
            options.long_side, scoring.device_type if scoring is not None else model.device.type
        )
        if size_label(long_side) != label:  # the guess was wrong: plan again for the real analysis
            label = size_label(long_side)
            analysis_id = catalog.analysis_id(model.model_id, label)
            states = catalog.photo_states(tree, analysis_id, root=folder, measures=PIXEL_KEYS)
            plan = _plan(scanned, states, looked, protected, measures)
    summary.remeasured = plan.remeasure
    if plan.todo and options.measures is None and "faces" not in measures:
        summary.faces_skipped = faces_unavailable()
    summary.unchanged, summary.failed_before, summary.returned = (
        plan.unchanged,
        plan.failed_before,
        len(plan.returned),
    )
    todo = plan.todo
    summary.facts_read = _refresh_meta(catalog, tree, states, scanned, todo, cancel)
    if (model is None and not pixels_only) or not todo:
        if analysis_id is not None:  # every photo has this analysis: complete
            if not pixels_only:
                _fill_in(catalog, scorer, tree, analysis_id, pairs, summary, on_batch)
            catalog.set_last_analysis(tree, analysis_id)
        summary.seconds = time.perf_counter() - started
        return summary
    assert label is not None
    if analysis_id is None:
        if model is None:  # pixel measures only: no embedding, no logit scale
            analysis_id = catalog.analysis_id(scorer.model_id, label, 0, 0.0)
        else:
            analysis_id = catalog.analysis_id(model.model_id, label, model.embed_dim, model.logit_scale)
        assert analysis_id is not None
    summary.analysis_id = analysis_id
    if not had_analysis:
        # Readers (the window, `list` in another terminal) see a first run's scores as they are
        # committed; a folder that has complete scores keeps showing them until this run is done.
        catalog.set_last_analysis(tree, analysis_id)
    options = replace(options, long_side=long_side, measures=tuple(measures))  # resolved once
    gone = set(plan.gone)
    todo_keys = {f.path: key for key, f in todo}
    by_path = {f.path: f for _key, f in todo}
    done = 0
    run_start = time.perf_counter()

    def report() -> None:
        if on_progress is None:
            return
        elapsed = time.perf_counter() - run_start
        rate = done / elapsed if elapsed > 0 and done else 0.0
        eta = (len(todo) - done) / rate if rate > 0 else None
        on_progress(IndexProgress(done, len(todo), rate, eta, summary.unchanged))

    report()
    pending: list[PhotoResult] = []

    def flush() -> None:
        nonlocal done
        if not pending:
            return
        records = [
            _record(r, by_path[r.path], todo_keys[r.path], todo_keys[r.path] not in states) for r in pending
        ]
        assert analysis_id is not None
        ids = catalog.write_batch(folder_id, analysis_id, records, replaced=summary.replaced)
        for r, rec in zip(pending, records, strict=True):
            if ids.get(rec.rel_path) in gone:  # the record of a vanished path followed its file
                summary.renamed += 1
                summary.missing -= 1
            if r.ok:
                summary.indexed += 1
                if states.get(rec.rel_path) is not None and states[rec.rel_path].status == "missing":
                    summary.returned += 1
            else:
                summary.failed.append((rec.rel_path, r.error or "unknown error"))
            if r.ok and r.prepared.measure_problem is not None:
                summary.not_measured.append((rec.rel_path, r.prepared.measure_problem))
            xmp: PhotoXmp | None = r.prepared.xmp if r.ok else None
            if xmp is not None and xmp.problem and xmp.path is not None and rec.rel_path not in states:
                head = rec.rel_path[: rec.rel_path.rfind("/") + 1]  # existing photos: _import_sidecars
                summary.sidecar_problems.append((head + xmp.path.name, xmp.problem))
        done += len(pending)
        pending.clear()
        if on_batch is not None:
            on_batch(list(ids.values()))
        report()

    stream: Iterator[PhotoResult]
    tuner = BatchTuner() if options.batch_size == AUTO and scoring is None else None

    def commit_size() -> int:
        """Photos per transaction: --batch-size N commits every N; auto every batch, at least MIN_COMMIT."""
        if scoring is not None:
            return scoring.commit_size
        if tuner is None:
            return max(1, int(options.batch_size))
        return max(MIN_COMMIT, tuner.size)

    if model is None:
        stream = measure_only(
            list(by_path), lambda p: prepare_photo(p, options, 1, names_in(p)), options.workers, cancel
        )
    elif scoring is not None:
        with_learned = [*pairs, learned] if learned is not None else list(pairs)
        siblings = [(p, tuple(names_in(p))) for p in by_path]
        stream = scoring(siblings, with_learned, options, model.input_multiple, cancel)
    else:
        multiple = model.input_multiple
        stream = score_photos(
            list(by_path),
            model,
            [*pairs, learned] if learned is not None else pairs,
            long_side,
            batch_size=tuner if tuner is not None else options.batch_size,
            workers=options.workers,
            prepare=lambda p: prepare_photo(p, options, multiple, names_in(p)),
            cancel=cancel,
        )
    vanished: Path | None = None
    for result in stream:
        if not result.ok:
            vanished = _vanished(folder, result.path)
            if vanished is not None:  # the card was pulled: its files fail, but they are not bad
                break
        pending.append(result)
        if len(pending) >= commit_size():
            flush()
        if cancel is not None and cancel.is_set():
            break
    if vanished is not None:
        pending[:] = [r for r in pending if r.ok]  # decoded before the folder went: keep them
        flush()
        raise IndexingError(vanished_message(vanished))
    if cancel is not None and cancel.is_set():
        summary.cancelled = True
        pending.clear()  # the batch in flight is dropped; the next run redoes it
    else:
        flush()
        if tuner is not None and tuner.begun:
            summary.batch_size = tuner.describe()
        tree = tree_ids()  # with the folder rows of sub-folders this run added
        if model is not None:
            _fill_in(catalog, scorer, tree, analysis_id, pairs, summary, on_batch)
        catalog.set_last_analysis(tree, analysis_id)
    summary.seconds = time.perf_counter() - started
    return summary


# Photos per transaction when camera facts are read again (_refresh_meta)
META_BATCH = 500


def _refresh_meta(
    catalog: Catalog,
    tree: list[int],
    states: dict[str, PhotoState],
    scanned: dict[str, ScannedFile],
    todo: list[tuple[str, ScannedFile]],
    cancel: threading.Event | None,
) -> int:
    """Camera facts of unchanged photos that an older release indexed before the catalog kept them
    (`Catalog.stale_meta`: meta_version NULL or older), read from the files' headers (EXIF only,
    no pixels decoded) and stored, one transaction per META_BATCH photos. A photo this run decodes
    anyway gets them from its decode; a file that cannot be read is left as it is (its status and
    everything else unchanged, tried again next run). An unchanged folder costs one query once its
    photos are refreshed. Returns how many photos got their facts."""
    stale = catalog.stale_meta(tree)
    if not stale:
        return 0
    redo = {key for key, _f in todo}
    key_of = {st.id: key for key, st in states.items()}
    files: list[tuple[int, Path]] = []
    for pid in stale:
        key = key_of.get(pid)
        f = scanned.get(key) if key is not None and key not in redo else None
        if key is None or f is None:
            continue
        st = states[key]
        if st.size_bytes == f.size_bytes and st.mtime_ns == f.mtime_ns:
            files.append((pid, f.path))
    stored = 0
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:  # overlaps slow media
        for start in range(0, len(files), META_BATCH):
            if cancel is not None and cancel.is_set():
                break
            chunk = files[start : start + META_BATCH]
            read = pool.map(lambda item: (item[0], read_file_meta(item[1])), chunk)
            stored += catalog.update_meta([(pid, meta) for pid, meta in read if meta is not None])
    return stored


def vanished_message(folder: Path) -> str:
    return (
        f"the folder {folder} is no longer there — was the card removed? "
        "Nothing indexed so far is lost; run index again"
    )


def _vanished(root: Path, path: Path) -> Path | None:
    """The folder (root, or a sub-folder of it) that disappeared under `path`, if one did."""
    directory = path.parent
    if not root_vanished(directory):
        return None
    while directory != root and directory.parent != directory and root_vanished(directory.parent):
        directory = directory.parent
    return directory


def _fill_in(
    catalog: Catalog,
    scorer: ClipIqaScorer | LazyScorer,
    tree: list[int],
    analysis_id: int,
    pairs: Sequence[AttributePair],
    summary: IndexSummary,
    on_batch: Callable[[list[int]], None] | None,
) -> None:
    """Score attributes that photos indexed earlier lack (e.g. one added to the program since)
    from their stored embeddings: one matrix product, no image decoded. The model is loaded only
    when the attribute's text features are not cached in the catalog yet."""
    _fill_in_learned(catalog, scorer, tree, analysis_id, summary, on_batch)
    missing = catalog.unscored_attributes(tree, analysis_id, [p.key for p in pairs])
    if not missing:
        return
    todo = [p for p in pairs if p.key in missing]

    def encode(texts: list[str]) -> np.ndarray:
        return scorer.get().text_features(texts).float().cpu().numpy()

    ids, values = prompt_scores(catalog, tree, analysis_id, todo, encode)
    added = catalog.add_scores(analysis_id, ids, [p.key for p in todo], values)
    if added:
        summary.filled_in = missing
        summary.filled_in_scores = added
        if on_batch is not None:
            on_batch([int(i) for i in ids])


# A stored quality_plus further than this from the run's learned prompts' value was made with
# another file and is replaced; closer ones are the same file (the stream's values come from the
# fp32 embedding, the stored ones from its float16 copy: they differ by ~1e-4).
LEARNED_TOLERANCE = 0.005


def _fill_in_learned(
    catalog: Catalog,
    scorer: ClipIqaScorer | LazyScorer,
    tree: list[int],
    analysis_id: int,
    summary: IndexSummary,
    on_batch: Callable[[list[int]], None] | None,
) -> None:
    """CLIP-IQA+ `quality_plus` (scoring/learned.py) of every photo of the tree, from the stored
    embeddings and the run's learned-prompts file: photos indexed before get it, and a file that
    changed since replaces the old values. One matrix product; the two text features are cached in
    the catalog under the file's hash, so the model loads only for a file never seen before."""
    pair = scorer.learned_pair
    if pair is None:
        return

    def encode(texts: list[str]) -> np.ndarray:
        return scorer.get().text_features(texts).float().cpu().numpy()

    ids, values = prompt_scores(catalog, tree, analysis_id, [pair], encode)
    changed = catalog.add_scores(analysis_id, ids, [pair.key], values, replace_beyond=LEARNED_TOLERANCE)
    if changed:
        summary.learned_rescored = changed
        if on_batch is not None:
            on_batch([int(i) for i in ids])


class _Names:
    """Which sidecar is a photo's own, from the scan's listing of its folder (else listed once
    here). A re-index of 50,000 photos asks this for every photo, so it works on strings: the
    darktable name (`IMG_1.CR3.xmp`) is a set lookup, a folder without sidecars costs nothing,
    and only a photo with some other candidate goes through `sidecar_to_read` with the few names
    that concern it."""

    def __init__(self, listed: dict[Path, frozenset[str]]) -> None:
        self._listed: dict[str, frozenset[str]] = {str(folder): names for folder, names in listed.items()}
        # per folder: casefolded stem -> names with that stem, for stems that some sidecar has
        self._groups: dict[str, dict[str, list[str]]] = {}
        self.second_sidecars: list[tuple[Path, str]] = []  # (sidecar never read, why)

    def __call__(self, photo: Path) -> list[str]:
        """The names that decide which sidecar belongs to `photo` (none when no sidecar is among
        them): those sharing its stem (`IMG_1.CR2`, `IMG_1.xmp`) or named after it (`IMG_1.JPG.xmp`)."""
        folder, name = os.path.split(str(photo))  # os.sep: "\\" on Windows too
        groups = self._groups.get(folder)
        if groups is None:
            groups = self._groups[folder] = self._group(folder)
        if not groups:
            return []
        stem = (name.rpartition(".")[0] or name).casefold()
        return groups.get(stem, []) + groups.get(name.casefold(), [])

    def sidecar(self, photo: Path) -> str | None:
        """The path of `sidecar_to_read(photo, names of its folder)`, fast."""
        folder, name = os.path.split(str(photo))  # os.sep: "\\" on Windows too
        names = self._names(folder)
        for candidate in (name + ".xmp", name + ".XMP"):  # sidecars.full_name, tried first there too
            if candidate in names:
                self._note_second(photo, names, candidate)
                return os.path.join(folder, candidate)
        siblings = self(photo)
        found = sidecar_to_read(photo, siblings) if siblings else None
        return None if found is None else str(found)

    def _note_second(self, photo: Path, names: frozenset[str], read: str) -> None:
        """A photo with both `IMG_1.JPG.xmp` (read) and its own `IMG_1.xmp`: edits another tool
        makes in the second are never imported, so say so on every run until one is removed."""
        stem = photo.name.rpartition(".")[0]
        for second in (stem + ".xmp", stem + ".XMP"):
            if second in names and stem_owner(photo, self(photo))[0]:
                self.second_sidecars.append(
                    (
                        photo.with_name(second),
                        f"not read: {photo.name}'s decisions come from {read}; "
                        "remove one of its two sidecars",
                    )
                )
                return

    def _names(self, folder: str) -> frozenset[str]:
        names = self._listed.get(folder)
        if names is None:
            try:
                names = frozenset(os.listdir(folder or os.sep))
            except OSError:
                names = frozenset()
            self._listed[folder] = names
        return names

    def _group(self, folder: str) -> dict[str, list[str]]:
        names = self._names(folder)
        stems = {n[:-4].casefold() for n in names if n[-4:].lower() == ".xmp"}  # IMG_1, IMG_1.cr2
        if not stems:
            return {}
        groups: dict[str, list[str]] = {}
        for n in names:
            stem = (n.rpartition(".")[0] or n).casefold()
            if stem in stems or n.casefold() in stems:
                groups.setdefault(stem, []).append(n)
        return groups


def _import_sidecars(
    catalog: Catalog,
    known: list[tuple[int, Path]],
    names_in: _Names,
    folder: Path,
    summary: IndexSummary,
    on_batch: Callable[[list[int]], None] | None,
) -> None:
    """Import decisions from the sidecars of known photos that another tool changed since the
    catalog last read or wrote them (culling/xmp_import.py): a stat per photo, a parse per change."""
    result = import_changed_sidecars(catalog, known, names_in.sidecar)
    result.problems.extend(names_in.second_sidecars)
    summary.sidecars_imported = len(result.imported)
    summary.sidecars_kept = len(result.kept)
    summary.sidecars_removed = result.removed
    for path, reason in result.problems:
        rel = path.relative_to(folder).as_posix() if path.is_relative_to(folder) else str(path)
        summary.sidecar_problems.append((rel, reason))
    if result.imported and on_batch is not None:
        on_batch(result.imported)


class _Keys:
    """A scanned file's key: its path relative to the indexed folder, through its REAL directory
    ("100CANON/IMG_1.JPG"), or its absolute path when a link leads outside the folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._prefix: dict[Path, str] = {}
        self.outside: list[Path] = []  # real directories outside root that photos were found in

    def __call__(self, path: Path) -> str:
        return self.prefix(path.parent) + path.name

    def prefix(self, directory: Path) -> str:
        """The key prefix of the photos in `directory`: "" for root, "100CANON/", or "/abs/dir/"."""
        prefix = self._prefix.get(directory)
        if prefix is None:
            real = directory.resolve()
            if real == self.root:
                prefix = ""
            elif real.is_relative_to(self.root):
                prefix = real.relative_to(self.root).as_posix() + "/"
            else:
                prefix = real.as_posix().rstrip("/") + "/"
                self.outside.append(real)
            self._prefix[directory] = prefix
        return prefix


@dataclass
class _Plan:
    todo: list[tuple[str, ScannedFile]] = field(default_factory=list)  # (key, file)
    unchanged: int = 0
    failed_before: int = 0
    returned: list[int] = field(default_factory=list)  # ids of missing photos that are back, unchanged
    gone: list[int] = field(default_factory=list)  # ids of photos no longer on disk
    remeasure: int = 0  # unchanged photos decoded again for pixel measures they lack


def _plan(
    scanned: dict[str, ScannedFile],
    states: dict[str, PhotoState],
    looked: set[str],
    protected: set[str],
    measures: Sequence[str] = (),
) -> _Plan:
    """What to (re)index: new or changed files (size + mtime), files without scores yet, files
    whose scoring (not decoding) failed last time (a device error is not the photo's fault), and
    files indexed before a pixel measure of `measures` existed (or before the [faces] extra was
    installed): those need their pixels once more (`_Plan.remeasure`).

    Only photos of the folders this run listed (`looked`, as key prefixes) can be "gone": without
    -r, photos of sub-folders (indexed earlier with -r) are left alone, and so are those of hidden
    or unreadable folders and unreadable files (`protected`)."""
    plan = _Plan()
    # face_focus and eyes_closed exist only for photos with a face; `faces` says faces were looked for
    # (and focus / motion_blur only for a frame with an edge to judge: `noise` says it was measured)
    required = set(measures) - {"face_focus", "eyes_closed", "focus", "motion_blur"}
    for key, f in scanned.items():
        st = states.get(key)
        unchanged = st is not None and st.size_bytes == f.size_bytes and st.mtime_ns == f.mtime_ns
        settled_error = st is not None and st.status == "error" and not is_scoring_failure(st.error)
        lacking = st is not None and st.scored and not required <= st.measured
        if st is not None and unchanged and (st.scored or settled_error) and not lacking:
            plan.unchanged += 1
            if st.status == "missing":
                plan.returned.append(st.id)
            elif st.status == "error":
                plan.failed_before += 1
        else:
            plan.todo.append((key, f))
            plan.remeasure += bool(unchanged and lacking)
    plan.gone = [
        st.id
        for key, st in states.items()
        if key not in scanned
        and st.status != "missing"
        and key[: key.rfind("/") + 1] in looked
        and key not in protected
    ]
    return plan


def _expected_label(catalog: Catalog, tree: list[int], model_id: str, size: int | str | None) -> str | None:
    if size != "auto":
        assert size is None or isinstance(size, int)
        return size_label(size)
    last = catalog.last_analysis(tree)
    if last is not None:
        last_model, last_size, _ = catalog.analysis(last)
        if last_model == model_id:
            return last_size
    return None


def _record(result: PhotoResult, scanned: ScannedFile, rel: str, new: bool) -> PhotoRecord:
    """The record to write; `new`: the catalog has no photo at this path yet. Only a new photo takes
    its sidecar's decision (if the catalog has none, e.g. a moved record's) and records the sidecar;
    a known photo's sidecar is compared and imported by _import_sidecars, whose "later change wins"
    a re-decoded file must not bypass. Embedded XMP (a photo without a sidecar) is adopted while the
    catalog holds no decision, as before."""
    if not result.ok:
        return PhotoRecord(rel, scanned.size_bytes, scanned.mtime_ns, error=result.error)
    prep: IndexedPhoto = result.prepared
    d = prep.decoded
    return PhotoRecord(
        rel_path=rel,
        size_bytes=scanned.size_bytes,
        mtime_ns=scanned.mtime_ns,
        fingerprint=prep.fingerprint,
        width=d.source_size[0],
        height=d.source_size[1],
        orientation=d.orientation,
        meta=d.meta,
        scores=None if result.scores is None else {**result.scores, **prep.measures},
        embedding=result.embedding,
        thumbnail=prep.thumbnail_jpeg,
        xmp_decision=prep.xmp.decision if new or prep.xmp.path is None else None,
        sidecar=prep.xmp.sidecar if new else None,
    )
