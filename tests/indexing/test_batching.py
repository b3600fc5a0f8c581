"""--batch-size auto: the tuner's choice (fake clock), the stream feeding it, the CLI reporting it, and
scores that do not depend on it."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from clipiqa_desktop.catalog import Catalog
from clipiqa_desktop.cli import main
from clipiqa_desktop.indexing.batching import MIN_COMMIT, BatchTuner, candidates, thread_defaults
from clipiqa_desktop.indexing.pipeline import IndexOptions, index_folder
from clipiqa_desktop.indexing.stream import score_photos
from clipiqa_desktop.scoring import BUILTIN_ATTRIBUTES

from ..conftest import TINY_ARGS, photo

PAIRS = BUILTIN_ATTRIBUTES[:3]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def drive(
    tuner: BatchTuner, clock: Clock, seconds_per_image, pixels: int = 100, limit: int = 100
) -> list[int]:
    """Make calls of the size the tuner asks for until it chooses; `seconds_per_image(n, call)`
    is what a call of n images costs per image. Returns the sizes called."""
    called = []
    for call in range(limit):
        if tuner.chosen is not None:
            break
        n = tuner.size
        called.append(n)
        with tuner.timing(n, pixels):
            clock.now += n * seconds_per_image(n, call)
    return called


COST = {1: 0.50, 2: 0.40, 4: 0.45, 8: 0.60}  # seconds per image: 2 is the fastest


def test_the_tuner_keeps_the_fastest_size_and_does_not_time_the_warm_up_call():
    clock = Clock()
    tuner = BatchTuner(clock=clock)
    tuner.begin((1, 2, 4, 8))
    # the warm-up call is free: if it were timed, batch 1 would look fastest
    called = drive(tuner, clock, lambda n, call: 0.0 if call == 0 else COST[n])
    assert called == [1, 1, 2, 4, 8, 8, 4, 2, 1]  # warm-up, then ascending and descending
    assert tuner.chosen == 2 and tuner.complete
    rates = tuner.images_per_s()
    assert rates == pytest.approx({n: 1 / c for n, c in COST.items()})
    assert tuner.describe() == "batch size 2 (measured: 1 → 2.00/s, 2 → 2.50/s, 4 → 2.22/s, 8 → 1.67/s)"
    assert tuner.size == 2  # the rest of the run


def test_a_load_that_grows_during_the_measurement_costs_every_size_alike():
    """ABBA order: with the machine slowing down steadily, an ascending-only order would favour 1."""
    clock = Clock()
    tuner = BatchTuner(clock=clock)
    tuner.begin((1, 2, 4, 8))
    base = {1: 1.00, 2: 1.00, 4: 0.97, 8: 1.00}  # 4 is 3 % faster
    drive(tuner, clock, lambda n, call: base[n] * (1 + 0.05 * call))
    assert tuner.chosen == 4


def test_speed_is_per_pixel_so_portraits_and_squares_compare():
    clock = Clock()
    tuner = BatchTuner(clock=clock, warmup=0)
    tuner.begin((1, 2))
    # size 1 is timed on 2x larger images: same per-pixel speed as size 2, which is 10 % faster
    for n, pixels, seconds in ((1, 200, 2.0), (2, 100, 1.8), (2, 100, 1.8), (1, 200, 2.0)):
        assert tuner.size == n
        with tuner.timing(n, pixels):
            clock.now += seconds
    assert tuner.chosen == 2


def test_a_batch_out_of_memory_takes_its_size_and_larger_ones_out_and_is_not_timed():
    clock = Clock()
    tuner = BatchTuner(clock=clock)
    tuner.begin((1, 2, 4, 8))
    called = []
    while tuner.chosen is None:
        n = tuner.size
        called.append(n)
        try:
            with tuner.timing(n, 100):
                clock.now += n * 0.1  # larger batches look cheap until they fail
                if n >= 4:
                    raise RuntimeError("CUDA out of memory")
        except RuntimeError:
            pass
    assert called == [1, 1, 2, 4, 2, 1]
    assert tuner.failed == {4, 8} and tuner.chosen in (1, 2)
    assert tuner.timings[4].calls == tuner.timings[8].calls == 0
    assert "4 failed, 8 not tried" in tuner.describe()


def test_a_batch_that_fails_for_another_reason_is_only_not_timed():
    clock = Clock()
    tuner = BatchTuner(clock=clock)
    tuner.begin((1, 2, 4, 8))
    called, raised = [], False
    while tuner.chosen is None:
        n = tuner.size
        called.append(n)
        try:
            with tuner.timing(n, 100):
                clock.now += n * (0.01 if n == 4 else 1.0)
                if n == 4 and not raised:  # a photo the tower rejects, in the first batch of 4
                    raised = True
                    raise ValueError("the image encoder produced non-finite values")
        except ValueError:
            pass
    assert called == [1, 1, 2, 4, 8, 8, 4, 2, 1] and not tuner.failed
    assert tuner.timings[4].calls == 1 and tuner.chosen == 4


def test_partial_batches_and_single_photo_failures_are_not_counted():
    clock = Clock()
    tuner = BatchTuner(clock=clock, warmup=0)
    tuner.begin((1, 2))
    with tuner.timing(1, 100):  # the asked size: counted
        clock.now += 1.0
    assert tuner.size == 2
    with tuner.timing(1, 100):  # a shape group's last photo, while 2 is being timed: not counted
        clock.now += 0.01
    with pytest.raises(ValueError), tuner.timing(1, 100):  # one photo at fault: says nothing
        raise ValueError("too small")
    assert tuner.timings[1].calls == 1 and not tuner.failed and tuner.size == 2


def test_a_short_run_chooses_from_what_it_measured():
    clock = Clock()
    tuner = BatchTuner(clock=clock)
    tuner.begin((1, 2, 4, 8))
    drive(tuner, clock, lambda n, call: COST[n], limit=3)  # warm-up, 1, 2: then the photos ran out
    assert tuner.finish() == 2 and not tuner.complete
    assert tuner.describe().endswith("; the run ended before each size was timed twice)")
    empty = BatchTuner()
    empty.begin((1, 2))
    assert empty.finish() == 1 and "too few photos" in empty.describe()


def test_candidates_fit_the_device_and_the_image_size():
    assert candidates("cpu", 512 * 341) == (1, 2, 4, 8)
    assert candidates("cpu", 6000 * 4000) == (1,)  # full resolution on the CPU: one at a time
    assert candidates("cuda", 1024 * 683) == (1, 2, 4, 8, 16, 32)
    assert candidates("cuda", 6000 * 4000) == (1,)
    one = BatchTuner()
    one.begin((1,))
    assert one.chosen == 1 and "only size" in one.describe()


# --- the stream and the pipeline, with the tiny model ---------------------------------------------


def _shoot(folder, n: int, portrait_every: int = 3):
    folder.mkdir()
    paths = []
    for i in range(n):
        w, h = (48, 64) if i % portrait_every == 0 else (64, 48)
        path = folder / f"IMG_{i:03d}.png"
        photo(w, h, seed=i).save(path)
        paths.append(path)
    return paths


class Timed:
    """The real tiny scorer, made to cost a known (fake) time per image, and to fail like a GPU out of
    memory from `fail_from` images on. Remembers the size of every call."""

    def __init__(self, scorer, clock: Clock, cost, fail_from: int = 10**9) -> None:
        self.scorer, self.clock, self.cost, self.fail_from = scorer, clock, cost, fail_from
        self.calls: list[int] = []
        self.failed_images: set[bytes] = set()

    def __getattr__(self, name):
        return getattr(self.scorer, name)

    def score_batch(self, batch, pairs):
        n = len(batch)
        self.calls.append(n)
        keys = {b.numpy().tobytes() for b in batch}
        # an image scored again alone after its batch failed costs 100 s: timing it would show
        retried = n == 1 and keys <= self.failed_images
        self.clock.now += 100.0 if retried else n * self.cost[n]
        if n >= self.fail_from:
            self.failed_images |= keys
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.scorer.score_batch(batch, pairs)


def test_the_stream_runs_the_rest_at_the_chosen_size_with_both_shapes_feeding_the_tuner(
    tmp_path, tiny_scorer
):
    clock = Clock()
    scorer = Timed(tiny_scorer, clock, COST)
    tuner = BatchTuner(clock=clock)
    paths = _shoot(tmp_path / "s", 60)
    results = list(score_photos(paths, scorer, PAIRS, 64, batch_size=tuner, workers=2))
    assert sorted(r.index for r in results if r.ok) == list(range(60))
    assert tuner.chosen == 2 and tuner.complete
    tuning = 1 + 2 * (1 + 2 + 4 + 8)
    assert sum(scorer.calls[:9]) == tuning and scorer.calls[:9] == [1, 1, 2, 4, 8, 8, 4, 2, 1]
    assert set(scorer.calls[9:-2]) == {2}  # then 2 per call (the two shapes' remainders last)


@pytest.mark.parametrize("fail_from", [2, 4])
def test_a_batch_out_of_memory_is_scored_photo_by_photo_untimed(tmp_path, tiny_scorer, fail_from):
    clock = Clock()
    scorer = Timed(tiny_scorer, clock, {1: 0.5, 2: 0.45, 4: 0.1, 8: 0.1}, fail_from=fail_from)
    tuner = BatchTuner(clock=clock)
    paths = _shoot(tmp_path / "s", 24, portrait_every=10**6)  # one shape
    results = list(score_photos(paths, scorer, PAIRS, 64, batch_size=tuner, workers=2))
    assert sorted(r.index for r in results if r.ok) == list(range(24))
    # the failed batch's photos one by one, then (2 failed) the schedule's last 1, or (4) 2, 1
    after = [1, 1, 1] if fail_from == 2 else [1, 1, 1, 1, 2, 1]
    assert scorer.calls[: 3 + fail_from // 2 + len(after) - 1] == [1, 1, *[2, 4][: fail_from // 2], *after]
    assert tuner.failed == {n for n in (2, 4, 8) if n >= fail_from}
    assert tuner.chosen == (1 if fail_from == 2 else 2)
    assert tuner.timings[1].seconds == pytest.approx(1.0)  # a retry costs 100 s: never timed


def test_an_explicit_batch_size_is_used_as_given(tmp_path, tiny_scorer):
    clock = Clock()
    scorer = Timed(tiny_scorer, clock, dict.fromkeys(range(1, 9), 0.1))
    paths = _shoot(tmp_path / "s", 10, portrait_every=10**6)
    results = list(score_photos(paths, scorer, PAIRS, 64, batch_size=3, workers=2))
    assert len(results) == 10 and scorer.calls == [3, 3, 3, 1]


def test_auto_scores_every_photo_as_batch_1_does_and_commits_at_least_8_photos(tmp_path, tiny_scorer):
    folder = tmp_path / "s"
    paths = _shoot(folder, 36)
    scores, commits, summaries = {}, {}, {}
    for batch in ("auto", 1):
        catalog = Catalog(tmp_path / f"{batch}.sqlite")
        commits[batch] = []
        options = IndexOptions(long_side=64, batch_size=batch, workers=2, thumb_long_side=32, measures=())
        summary = index_folder(catalog, tiny_scorer, folder, options, on_batch=commits[batch].append)
        assert summary.indexed == 36 and not summary.failed
        ids = catalog.photo_ids_for_paths(paths)
        rows = catalog.photo_scores([ids[p] for p in paths], summary.analysis_id)
        scores[batch] = np.array([[r.scores[p.key] for p in BUILTIN_ATTRIBUTES] for r in rows])
        summaries[batch] = summary
        catalog.close()
    assert scores["auto"].shape == (36, len(BUILTIN_ATTRIBUTES))
    np.testing.assert_allclose(scores["auto"], scores[1], rtol=0, atol=1e-5)
    assert summaries["auto"].batch_size is not None and summaries["auto"].batch_size.startswith("batch size ")
    assert summaries[1].batch_size is None
    assert [len(ids) for ids in commits[1]] == [1] * 36  # an explicit --batch-size N commits every N
    assert min(len(ids) for ids in commits["auto"][:-1]) >= MIN_COMMIT  # auto: never photo by photo


def test_index_reports_the_choice_once_and_an_explicit_size_turns_the_tuner_off(tmp_path, capsys):
    folder = tmp_path / "s"
    _shoot(folder, 12)
    cat = ["--catalog", str(tmp_path / "c.sqlite")]
    assert main(["index", str(folder), *cat, *TINY_ARGS, "--size", "64"]) == 0
    err = capsys.readouterr().err
    assert err.count("batch size ") == 1 and "  batch size " in err and "(measured: 1 → " in err
    assert (
        main(
            [
                "index",
                str(folder),
                "--catalog",
                str(tmp_path / "d.sqlite"),
                *TINY_ARGS,
                "--size",
                "64",
                "--batch-size",
                "3",
            ]
        )
        == 0
    )
    assert "batch size" not in capsys.readouterr().err
    assert main(["score", str(folder), *TINY_ARGS, "--size", "64", "--attributes", "quality", "-v"]) == 0
    assert "clipiqa-desktop: batch size " in capsys.readouterr().err  # score: a -v log line
    with pytest.raises(SystemExit):
        main(["index", str(folder), *cat, *TINY_ARGS, "--batch-size", "0"])
    assert "--batch-size: must be at least 1" in capsys.readouterr().err


def test_thread_defaults_give_inference_half_the_cores_and_decoding_the_rest():
    assert thread_defaults(2) == (2, 1)  # the least CPU per photo on 2 cores (benchmarks/threads.py)
    assert thread_defaults(1) == (2, 1)
    assert thread_defaults(4) == (2, 2)
    assert thread_defaults(8) == (4, 4)
    assert thread_defaults(16, "cuda") == (16, 8)  # the GPU encodes: every core decodes
    assert thread_defaults(2, "none")[0] == 2


class ThreadsSeen:
    """The real tiny scorer, noting torch's intra-op thread count during each model call."""

    def __init__(self, scorer) -> None:
        self.scorer, self.seen = scorer, set()

    def __getattr__(self, name):
        return getattr(self.scorer, name)

    def score_batch(self, batch, pairs):
        self.seen.add(torch.get_num_threads())
        return self.scorer.score_batch(batch, pairs)


@pytest.mark.parametrize("user_set", [False, True])
def test_inference_threads_are_sized_while_scoring_then_restored(
    tmp_path, tiny_scorer, monkeypatch, user_set
):
    paths = _shoot(tmp_path / "s", 4)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    if user_set:
        monkeypatch.setenv("OMP_NUM_THREADS", "3")
    else:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        scorer = ThreadsSeen(tiny_scorer)
        assert len(list(score_photos(paths, scorer, PAIRS, 64, batch_size=2))) == 4
        assert scorer.seen == ({3} if user_set else {4})  # 8 cores: 4 threads, unless the user said
        assert torch.get_num_threads() == 3  # as it was
    finally:
        torch.set_num_threads(before)


def test_index_loads_an_onnx_tower_with_the_inference_threads(tmp_path, monkeypatch):
    """The ONNX Runtime pool is sized once, when the tower loads: index loads it inside inference_threads."""
    from clipiqa_desktop.scoring import LazyScorer, ModelSpec

    from ..conftest import TINY_RN

    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    folder = tmp_path / "s"
    _shoot(folder, 2)
    lazy = LazyScorer(ModelSpec(str(TINY_RN), "none"), "cpu", "fp32", engine="onnx")
    catalog = Catalog(tmp_path / "c.sqlite")
    before = torch.get_num_threads()
    try:
        options = IndexOptions(long_side=64, workers=1, thumb_long_side=32, measures=())
        assert index_folder(catalog, lazy, folder, options).indexed == 2
    finally:
        catalog.close()
    model = lazy.get()
    assert model.engine == "onnx" and model._onnx is not None
    assert model._onnx.threads == thread_defaults(6)[1] == 3
    assert torch.get_num_threads() == before
