"""The taste model (culling/taste.py) on a real catalog file: shoots written with the catalog's own
APIs, whose decisions follow a hidden rule the model can learn, or are random (it must not claim to
have learnt anything). Embeddings are 48-dimensional unit vectors lying near an 8-dimensional
subspace (as CLIP's hold most of their variance in a few directions); the rule mixes one latent
direction of the embedding with the stored focus attribute."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from clipiqa_desktop.catalog import Catalog, Decision, PhotoRecord, build_table
from clipiqa_desktop.culling.session import column_order
from clipiqa_desktop.culling.taste import (
    KEEP,
    MIN_DECISIONS,
    REJECT,
    TASTE_KEY,
    UNDECIDED,
    ShootLabels,
    labels_of,
    learn_taste,
)
from clipiqa_desktop.measures.registry import attribute_info

DIM = 48


def taste_shoot(
    catalog: Catalog,
    folder: Path,
    n: int = 120,
    decided: int = 100,
    seed: int = 0,
    random_labels: bool = False,
    model: str = "tiny-model",
    broken: int = 0,
) -> tuple[dict[str, int], dict[str, int]]:
    """`n` photos of `folder` (files on disk) with embeddings and stored attributes; the first
    `decided` are kept or rejected by the hidden rule (or at random), the rest left undecided;
    `broken` more photos failed to decode (no embedding). Returns (name → id, name → true label)."""
    rng = np.random.default_rng(seed)
    basis = np.random.default_rng(1234).normal(size=(8, DIM))  # the same subspace for every shoot
    latent = rng.normal(size=(n, 8))
    emb = latent @ basis + 0.3 * rng.normal(size=(n, DIM))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    focus = rng.uniform(0, 1, n)
    keep = latent[:, 0] + 3.0 * (focus - 0.5) > 0
    if random_labels:
        keep = rng.random(n) < 0.5
    folder.mkdir(exist_ok=True)
    records = []
    for i in range(n):
        scores = {
            "focus": float(focus[i]),
            "quality": float(rng.uniform(0, 1)),
            "noise": float(rng.uniform(0, 1)),
        }
        if i % 3 == 0:
            scores["face_focus"] = float(rng.uniform(0, 1))  # measured only where a face was found
        name = f"p{i:03d}.jpg"
        records.append(
            PhotoRecord(name, 100, 1, fingerprint=f"fp-{folder.name}-{name}", scores=scores, embedding=emb[i])
        )
    for i in range(broken):
        name = f"broken{i}.jpg"
        records.append(
            PhotoRecord(name, 100, 1, fingerprint=f"fp-{folder.name}-{name}", error="cannot identify image")
        )
    for r in records:
        (folder / r.rel_path).write_bytes(b"photo")
    fid = catalog.folder_id(folder)
    aid = catalog.analysis_id(model, "128", DIM, 100.0)
    assert fid is not None and aid is not None
    ids = catalog.write_batch(fid, aid, records)
    catalog.set_last_analysis(fid, aid)
    truth = {f"p{i:03d}.jpg": int(keep[i]) for i in range(n)}
    decisions = {}
    for i in range(decided):
        name = f"p{i:03d}.jpg"
        # keeps as picks or stars, rejects as X: both ways the photographer marks them
        decisions[ids[name]] = (
            (Decision(0, picked=True) if i % 2 else Decision(3)) if keep[i] else Decision(-1)
        )
    catalog.set_decisions(decisions)
    return ids, truth


def shoot_labels(catalog: Catalog, folder: Path) -> tuple[list[int], int, ShootLabels]:
    folder_ids = catalog.folder_ids(folder, recursive=False)
    analysis_id = catalog.last_analysis(folder_ids)
    assert analysis_id is not None
    rows, scores = catalog.rows(folder_ids, analysis_id, root=folder)
    table = build_table(rows, scores, column_order(scores.attributes))
    return folder_ids, analysis_id, ShootLabels.of(table)


def learn(catalog: Catalog, folder: Path, **options):
    folder_ids, analysis_id, shoot = shoot_labels(catalog, folder)
    return learn_taste(catalog, folder_ids, analysis_id, shoot, **options)


def test_labels_follow_evaluate_reject_keep_undecided():
    rating = np.array([-1, 0, 0, 1, 5, -1])
    picked = np.array([False, False, True, False, False, True])
    assert labels_of(rating, picked).tolist() == [REJECT, UNDECIDED, KEEP, KEEP, KEEP, REJECT]


def test_a_learnable_rule_is_learnt_and_only_the_undecided_are_predicted(catalog, tmp_path):
    ids, truth = taste_shoot(catalog, tmp_path / "shoot", n=160, decided=120, broken=2)
    result = learn(catalog, tmp_path / "shoot")
    assert result.problem is None
    assert result.decisions == 120 and result.shoot_counts == (result.keeps, result.rejects)
    assert result.other_counts == (0, 0) and result.folds == 5
    # cross-validated accuracy clearly above always answering the more frequent decision
    assert result.baseline < 0.7
    assert result.accuracy >= result.baseline + 0.2, result.as_dict()
    assert result.auc > 0.8
    # predictions only for the 40 undecided photos with an embedding (the broken ones have none)
    undecided = {ids[f"p{i:03d}.jpg"] for i in range(120, 160)}
    assert set(result.ids.tolist()) == undecided and result.without_embedding == 2
    assert np.all((result.probabilities >= 0) & (result.probabilities <= 1))
    by_id = dict(zip(result.ids.tolist(), result.probabilities.tolist(), strict=True))
    name_of = {v: k for k, v in ids.items()}
    right = [(by_id[pid] >= 0.5) == bool(truth[name_of[pid]]) for pid in undecided]
    assert np.mean(right) >= 0.8  # the held-out photos are ranked by the rule too
    # deterministic: the same decisions give the same model
    again = learn(catalog, tmp_path / "shoot")
    assert np.array_equal(again.probabilities, result.probabilities) and again.accuracy == result.accuracy
    line = result.summary()
    assert line.startswith("My taste: ") and "cross-validated (120 decisions; always-" in line


def test_random_decisions_do_not_beat_the_baseline(catalog, tmp_path):
    taste_shoot(catalog, tmp_path / "shoot", n=110, decided=100, random_labels=True)
    result = learn(catalog, tmp_path / "shoot")
    assert result.problem is None
    assert result.accuracy < result.baseline + 0.08, result.as_dict()
    assert result.auc < 0.65


def test_below_the_minimum_nothing_is_fitted_and_the_reason_says_how_many(catalog, tmp_path):
    taste_shoot(catalog, tmp_path / "shoot", n=60, decided=MIN_DECISIONS - 1)
    result = learn(catalog, tmp_path / "shoot")
    assert result.problem is not None and len(result.ids) == 0
    assert f"{result.keeps} kept and {result.rejects} rejected" in result.problem
    assert "at least 50 in all and 10 of each" in result.problem
    assert result.summary() == "My taste: 49 of 50 decisions"

    # enough in all, but too few rejects
    folder_ids, analysis_id, shoot = shoot_labels(catalog, tmp_path / "shoot")
    labels = shoot.labels.copy()
    labels[labels == REJECT] = UNDECIDED
    labels[np.flatnonzero(labels == UNDECIDED)[:5]] = REJECT
    labels[labels == UNDECIDED] = KEEP
    few = ShootLabels(shoot.ids, labels, shoot.keys, shoot.attributes)
    result = learn_taste(catalog, folder_ids, analysis_id, few)
    assert result.rejects == 5 and result.problem is not None
    assert result.summary() == "My taste: 5 of 10 rejects"


def test_other_shoots_of_the_same_analysis_count_unless_this_shoot_only(catalog, tmp_path):
    taste_shoot(catalog, tmp_path / "earlier", n=80, decided=80, seed=1)
    taste_shoot(catalog, tmp_path / "other-model", n=40, decided=40, seed=2, model="another-model")
    taste_shoot(catalog, tmp_path / "shoot", n=50, decided=30, seed=3)
    result = learn(catalog, tmp_path / "shoot")
    assert result.problem is None
    assert sum(result.other_counts) == 80 and sum(result.shoot_counts) == 30  # not the other model's
    assert result.decisions == 110 and len(result.ids) == 20
    alone = learn(catalog, tmp_path / "shoot", this_shoot_only=True)
    assert alone.other_counts == (0, 0) and alone.decisions == 30
    assert alone.problem is not None and alone.summary() == "My taste: 30 of 50 decisions"


def test_the_attribute_reads_as_my_taste():
    info = attribute_info(TASTE_KEY)
    assert info.label == "My taste" and info.group == "custom" and info.kind == "score"
    assert "cross-validated" in info.help and info.maximum == 1.0
    assert math.isclose(float(info.format(0.834)), 0.83)


def test_a_shoot_indexed_without_clip_says_so(catalog, tmp_path):
    folder = tmp_path / "no-clip"
    folder.mkdir()
    records = [
        PhotoRecord(f"n{i:02d}.jpg", 100, 1, fingerprint=f"fp-n{i}", scores={"focus": i / 60})
        for i in range(60)
    ]
    for r in records:
        (folder / r.rel_path).write_bytes(b"photo")
    fid = catalog.folder_id(folder)
    aid = catalog.analysis_id("none", "512", 0, 100.0)
    assert fid is not None and aid is not None
    ids = catalog.write_batch(fid, aid, records)
    catalog.set_last_analysis(fid, aid)
    catalog.set_decisions({pid: Decision(-1) if i % 2 else Decision(2) for i, pid in enumerate(ids.values())})
    result = learn(catalog, folder)
    assert result.problem is not None and "--model none" in result.problem
    assert result.summary() == "My taste: needs CLIP embeddings (indexed with --model none)"


def test_folds_keep_bursts_whole_so_near_twins_do_not_flatter_the_accuracy():
    """40 bursts of 5 near-identical frames, each burst kept or rejected at random: nothing about
    the pictures predicts the label, but a fold holding a frame's twin 'recognises' it. Folds by
    burst report about the baseline; folds by photo would report far more."""
    from clipiqa_desktop.culling.taste import burst_groups, capture_seconds, fit

    rng = np.random.default_rng(5)
    bursts, frames = 40, 5
    centres = rng.normal(size=(bursts, DIM))
    emb = np.repeat(centres, frames, axis=0) + 0.02 * rng.normal(size=(bursts * frames, DIM))
    emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
    y = np.repeat(rng.random(bursts) < 0.5, frames).astype(np.int8)
    times = np.repeat(np.arange(bursts) * 60.0, frames) + np.tile(np.arange(frames) * 0.3, bursts)
    groups = burst_groups(times)
    assert len(np.unique(groups)) == bursts
    attrs = np.zeros((len(y), 0), np.float32)
    none = np.zeros((0, DIM), np.float32)
    by_photo = fit(emb, attrs, y, none, np.zeros((0, 0), np.float32))
    by_burst = fit(emb, attrs, y, none, np.zeros((0, 0), np.float32), groups=groups)
    baseline = max(y.mean(), 1 - y.mean())
    assert by_burst.grouped and not by_photo.grouped
    assert by_photo.accuracy > 0.9  # what folds by photo would have claimed
    assert by_burst.accuracy < baseline + 0.15
    assert capture_seconds(["2024-05-01T10:00:02", None, "garbage"])[0] == 1714557602.0
    assert np.isnan(capture_seconds([None, "garbage"])).all()
