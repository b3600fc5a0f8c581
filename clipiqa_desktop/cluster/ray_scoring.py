"""The Ray Data pipeline: photo list → decode in CPU tasks → map_batches over a pool of scoring
actors (one model each; GPU actors when the cluster has GPUs) → results streamed back to the driver.

The driver plans (indexing.pipeline: unchanged photos skipped) and writes (Catalog.write_batch, one
transaction per batch, or the rows of `score`); the cluster only decodes and scores. Decode tasks
run the local path's own prepare function (pipeline.prepare_photo for `index`), and the actors the
local path's own streaming scorer (indexing.stream.score_photos: equal shapes batched, a failing
batch retried photo by photo), so the numbers and error records are those of a local run. Rows
travel as pickled objects in one binary column; the analysis image is dropped by the actor, so what
comes back per photo is its scores, embedding, thumbnail and facts (a few tens of KB).
"""

from __future__ import annotations

import functools
import pickle
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, is_dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import ClusterError
from .connect import Cluster, connect

if TYPE_CHECKING:
    from ..indexing.pipeline import IndexOptions
    from ..indexing.stream import PhotoResult
    from ..scoring.attributes import AttributePair
    from ..scoring.spec import ModelSpec

# Photos per map_batches call of an actor: enough for the batch sizes batching.candidates tries
# (up to 8 on a CPU, 32 on a GPU) after grouping by shape.
ACTOR_BATCH = {"cpu": 16, "gpu": 64}
# Photos per catalog transaction for `index --ray` with --batch-size auto (a kill loses at most
# this many photos' work; the results arrive from several actors, so the local path's "every batch"
# has no meaning here).
COMMIT_SIZE = 32
# Photos per input block: each decode task works through one block, so small blocks keep every
# CPU busy and results flowing from the first seconds.
MAX_BLOCK = 8
# Bytes a decode task reserves: a 24 MP frame (72 MB as RGB), its reduced copy and the measures'
# float planes, with room for larger files.
DECODE_MEMORY = 512 * 1024 * 1024


@dataclass(frozen=True)
class ModelArgs:
    """How every actor builds its scorer (ClipIqaScorer.load)."""

    spec: ModelSpec
    device: str = "auto"
    precision: str = "auto"
    engine: str = "auto"
    batch_size: int | str = "auto"


@dataclass(frozen=True)
class Plan:
    """How many actors and what each one holds, from the cluster's resources and --device."""

    actors: int
    gpu: bool
    actor_cpus: int

    @property
    def device_type(self) -> str:
        return "cuda" if self.gpu else "cpu"

    @classmethod
    def for_cluster(cls, cluster: Cluster, device: str) -> Plan:
        """One actor per GPU when the cluster has GPUs (and --device is auto or cuda); on CPUs
        one single-threaded actor per 4 CPUs (at least one): decoding a photo costs more CPU than
        encoding it, so the decode tasks keep the rest."""
        if (cluster.gpus and device in ("auto", "cuda")) or device.startswith("cuda"):
            if not cluster.gpus:
                raise ClusterError(f"--device {device}: the Ray cluster has no GPU")
            return cls(actors=cluster.gpus, gpu=True, actor_cpus=1)
        if device not in ("auto", "cpu"):
            raise ClusterError(f"--device {device} is not available on a Ray cluster (auto, cpu or cuda)")
        return cls(actors=max(1, cluster.cpus // 4), gpu=False, actor_cpus=1)


def _decode_row(row: dict[str, Any], prepare: Callable[[Path, Any], Any]) -> dict[str, Any]:
    """A decode task's work on one photo: (index, path, prepared or None, error or None), pickled."""
    from ..imaging import DecodeError
    from ..indexing.stream import decode_or_error

    index, path, extra = pickle.loads(row["item"])
    got = decode_or_error(functools.partial(_call, prepare, extra=extra), Path(path))
    if isinstance(got, DecodeError):
        return {"item": pickle.dumps((index, path, None, str(got)))}
    return {"item": pickle.dumps((index, path, got, None))}


def _call(prepare: Callable[[Path, Any], Any], path: Path, extra: Any) -> Any:
    return prepare(path, extra)


def _without_pixels(prepared: Any) -> Any:
    """What the driver needs of a prepared photo: everything but its images (pipeline.IndexedPhoto
    keeps its thumbnail as JPEG bytes; score's _Measured only its measures)."""
    if not is_dataclass(prepared) or isinstance(prepared, type):
        return prepared
    changes: dict[str, Any] = {"image": None}
    decoded = getattr(prepared, "decoded", None)
    if decoded is not None and is_dataclass(decoded) and not isinstance(decoded, type):
        changes["decoded"] = replace(decoded, image=None, thumbnail=None)
    return replace(prepared, **changes)


class ScoreActor:
    """One scoring actor: builds the scorer ONCE, then scores batch after batch with the local
    path's streaming scorer (score_photos), keeping one batch-size tuner for its whole life."""

    def __init__(self, model: ModelArgs, pairs: Sequence[AttributePair], long_side: int | None) -> None:
        from ..indexing.batching import AUTO, BatchTuner
        from ..scoring.engine import ClipIqaScorer

        self.scorer = ClipIqaScorer.load(model.spec, model.device, model.precision, model.engine)
        self.pairs, self.long_side = list(pairs), long_side
        self.batch: BatchTuner | int | str = BatchTuner() if model.batch_size == AUTO else model.batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from ..indexing.stream import PhotoResult, score_photos

        out: list[PhotoResult] = []
        todo: list[tuple[int, Path, Any]] = []
        for blob in batch["item"]:
            index, path, prepared, error = pickle.loads(blob)
            if error is not None:
                out.append(PhotoResult(index, Path(path), error=error))
            else:
                todo.append((index, Path(path), prepared))
        if todo:
            prepared_of = {n: prep for n, (_i, _p, prep) in enumerate(todo)}
            paths = [p for _i, p, _prep in todo]
            position = {p: n for n, p in enumerate(paths)}
            for r in score_photos(
                paths,
                self.scorer,
                self.pairs,
                self.long_side,
                batch_size=self.batch,
                workers=1,
                prepare=lambda p: prepared_of[position[p]],
            ):
                index = todo[r.index][0]
                out.append(replace(r, index=index, prepared=_without_pixels(r.prepared)))
        return {"item": np.array([pickle.dumps(r) for r in out], dtype=object)}

    def describe(self) -> str:
        return self.scorer.describe()


def ray_results(
    cluster: Cluster,
    photos: Sequence[tuple[Path, Any]],
    prepare: Callable[[Path, Any], Any],
    model: ModelArgs | None,
    pairs: Sequence[AttributePair],
    long_side: int | None,
    cancel: threading.Event | None = None,
) -> Iterator[PhotoResult]:
    """Decode and score `photos` ((path, extra): `prepare(path, extra)` runs in a decode task) on
    the cluster; one PhotoResult per photo, its `index` the photo's position, in completion order.
    A job that fails on the cluster (an actor that cannot load the model, a lost node) raises
    ClusterError; what the caller committed before stays. Without a `model` (pixel measures only)
    there are no actors: each result's scores are its prepared photo's `measures`."""
    import ray
    from ray.data import ActorPoolStrategy

    if not photos:
        return
    plan = Plan.for_cluster(cluster, model.device if model is not None else "cpu")
    items = [{"item": pickle.dumps((n, str(p), extra))} for n, (p, extra) in enumerate(photos)]
    blocks = max(1, min(len(items), -(-len(items) // MAX_BLOCK)))
    ds: Any = ray.data.from_items(items, override_num_blocks=blocks)
    # A decode task asks for the memory of a 24 MP decode and its measures: that schedules it, and
    # (its resources differ from the actors') keeps Ray Data from fusing the decode into the
    # scoring actors, where it would run one photo at a time per actor instead of on every CPU.
    ds = ds.map(_decode_row, fn_kwargs={"prepare": prepare}, num_cpus=1, memory=DECODE_MEMORY)
    if model is None:
        yield from _measured_only(ds, cancel)
        return
    actor_resources: dict[str, Any] = {"num_gpus": 1} if plan.gpu else {"num_cpus": plan.actor_cpus}
    device = "cuda" if plan.gpu else "cpu"
    ds = ds.map_batches(
        ScoreActor,
        fn_constructor_kwargs={
            "model": replace(model, device=device),
            "pairs": list(pairs),
            "long_side": long_side,
        },
        batch_size=ACTOR_BATCH["gpu" if plan.gpu else "cpu"],
        batch_format="numpy",
        compute=ActorPoolStrategy(size=plan.actors),
        **actor_resources,
    )
    try:
        for row in ds.iter_rows():
            yield pickle.loads(row["item"])
            if cancel is not None and cancel.is_set():
                return
    except ray.exceptions.RayError as exc:
        raise ClusterError(f"the Ray job failed: {_cause(exc)}") from None


def _measured_only(ds: Any, cancel: threading.Event | None) -> Iterator[PhotoResult]:
    """The decode tasks' rows as results, without a model (indexing.stream.measure_only's)."""
    import ray

    from ..indexing.stream import PhotoResult

    try:
        for row in ds.iter_rows():
            index, path, prepared, error = pickle.loads(row["item"])
            if error is not None:
                yield PhotoResult(index, Path(path), error=error)
            else:
                kept = _without_pixels(prepared)
                yield PhotoResult(index, Path(path), scores=dict(prepared.measures), prepared=kept)
            if cancel is not None and cancel.is_set():
                return
    except ray.exceptions.RayError as exc:
        raise ClusterError(f"the Ray job failed: {_cause(exc)}") from None


def _cause(exc: BaseException) -> str:
    """What went wrong on the cluster, in one line: the last "module.Error: message" line of the
    remote tracebacks the Ray exception and its causes carry (an actor that could not build its
    scorer: "DeviceUnavailable: fp16 is for GPUs ..."), else the innermost exception's name."""
    found = None
    chain: BaseException | None = exc
    while chain is not None:
        for line in str(chain).splitlines():
            match = _ERROR_LINE.match(line)
            if match:
                found = f"{match.group(1).rpartition('.')[2]}: {match.group(2)}"
        if chain.__cause__ is None:
            break
        chain = chain.__cause__
    if found is None:
        first = (str(chain).strip().splitlines() or [""])[0] if chain is not None else ""
        found = first or type(chain).__name__
    return found[:300]


_ERROR_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Unavailable|Mismatch|Model)): (.+)$")


def _index_prepare(path: Path, siblings: tuple[str, ...], options: IndexOptions, multiple: int) -> Any:
    from ..indexing.pipeline import prepare_photo

    return prepare_photo(path, options, multiple, siblings)


class RayScoring:
    """`index --ray`: the indexing pipeline's Scoring (indexing.pipeline.Scoring) on a Ray cluster."""

    def __init__(self, cluster: Cluster, model: ModelArgs) -> None:
        self.cluster, self.model = cluster, model
        self.plan = Plan.for_cluster(cluster, model.device)

    @classmethod
    def start(cls, address: str | None, model: ModelArgs) -> RayScoring:
        return cls(connect(address), model)

    @property
    def device_type(self) -> str:
        return self.plan.device_type

    @property
    def commit_size(self) -> int:
        """Photos per catalog transaction: --batch-size N, as on the local path; else COMMIT_SIZE."""
        size = self.model.batch_size
        return size if isinstance(size, int) else COMMIT_SIZE

    def describe(self) -> str:
        kind = "GPU" if self.plan.gpu else "CPU"
        actors = f"{self.plan.actors} {kind} scoring actor" + ("s" if self.plan.actors != 1 else "")
        return f"scored on {self.cluster.describe()}: {actors}"

    def __call__(
        self,
        photos: Sequence[tuple[Path, tuple[str, ...]]],
        pairs: Sequence[AttributePair],
        options: IndexOptions,
        multiple: int,
        cancel: threading.Event | None,
    ) -> Iterator[PhotoResult]:
        from ..imaging.decode import model_long_side

        assert options.long_side is None or isinstance(options.long_side, int)
        long_side = model_long_side(options.long_side, self.device_type)
        prepare = functools.partial(_index_prepare, options=options, multiple=multiple)
        return ray_results(self.cluster, photos, prepare, self.model, pairs, long_side, cancel)
