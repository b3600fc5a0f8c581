"""The photographer's taste: a small model of their own keeps and rejects that predicts the
keep-probability of the photos they have not decided yet. Nothing leaves the machine.

Labels (as `evaluate` reads a culling): a reject (rating −1) is 0, a keep (picked, or at least one
star) is 1, anything else is undecided and gets a prediction. The training set is this shoot's
decided photos and, unless `this_shoot_only`, the decided photos of every other folder of the
catalog that have an embedding of the SAME analysis (model and analysis size): an embedding depends
on the size it was computed at and the stored attributes are scored at that size, so two analyses
are two feature spaces. Decisions imported from XMP are decisions like any other.

Features: the stored CLIP image embedding, reduced by PCA to at most `COMPONENTS` dimensions (CLIP's
embeddings hold most of their variance in a few dozen directions, and fewer dimensions than
decisions keep a linear model from memorising 50 examples; it also makes the fit 5-10x cheaper),
plus the stored attributes of `FEATURE_KEYS` (pixel measures, CLIP-IQA scores), a missing value
imputed with the median and flagged; everything standardised. Model: logistic regression, its
regularisation C chosen by an inner stratified cross-validation on the log-loss (the column is a
probability, so C is chosen for calibrated probabilities, not only for accuracy); no class weights,
so the probabilities follow the photographer's own keep rate.

Honest accuracy: the whole pipeline (PCA, imputation, scaling, the choice of C) is cross-validated
in stratified folds (k = min(5, the smaller class)) that keep each burst whole (photos within
`BURST_GAP` seconds of each other: a frame's near-twin in the training folds would flatter the
accuracy; folds by photo only when there are too few bursts of a class); the accuracy is reported
with its spread over the folds, the ROC AUC, and the majority-class baseline ("always keep 62 %"): a
model that does not beat the baseline has learnt nothing. Below `MIN_DECISIONS` in all or
`MIN_PER_CLASS` of either class nothing is fitted, and the reason says how many there are. Seeded:
the same decisions give the same model.

scikit-learn is imported inside the functions that fit, so importing this module costs nothing (the
window imports it; the fit runs on a worker thread).
"""

from __future__ import annotations

import contextlib
import inspect
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..catalog import Catalog, PhotoTable
from ..measures.registry import PIXEL_KEYS
from ..scoring.attributes import DEFAULT_ATTRIBUTES

TASTE_KEY = "taste"  # the column: keep-probability of an undecided photo (registry: "My taste")
MIN_DECISIONS = 50  # decisions (keeps + rejects) before anything is fitted
MIN_PER_CLASS = 10  # keeps and rejects each
FOLDS = 5  # outer, stratified: the reported accuracy
INNER_FOLDS = 3  # inside, for the choice of C
COMPONENTS = 64  # PCA dimensions of the embedding at most
CS = tuple(float(c) for c in np.logspace(-4, 2, 7))  # regularisation strengths tried
SEED = 0
BURST_GAP = 2.0  # seconds: decided photos closer in time than this stay in one fold
# The stored attributes the model reads besides the embedding. Never derived columns (search,
# keeper, taste itself, ranks within a group) nor a user's prompt pairs (a function of the
# embedding, and absent from other shoots).
FEATURE_KEYS: tuple[str, ...] = (*PIXEL_KEYS, *DEFAULT_ATTRIBUTES, "quality_plus")

KEEP, REJECT, UNDECIDED = 1, 0, -1
NO_EMBEDDINGS = "no embeddings to learn from: this folder was indexed without a CLIP model (--model none)"


def labels_of(rating: np.ndarray, picked: np.ndarray) -> np.ndarray:
    """1 keep (picked or ≥ 1 star), 0 reject (rating −1, whatever else), −1 undecided."""
    rating = np.asarray(rating)
    out = np.full(rating.shape, UNDECIDED, dtype=np.int8)
    out[(rating >= 1) | np.asarray(picked, dtype=bool)] = KEEP
    out[rating == -1] = REJECT
    return out


def capture_seconds(captured_at: Sequence[str | None]) -> np.ndarray:
    """ISO capture times ("2024-05-01T10:00:00") as float seconds, NaN where unknown or unreadable."""
    out = np.full(len(captured_at), math.nan)
    for i, text in enumerate(captured_at):
        if text:
            with contextlib.suppress(ValueError):
                out[i] = float(np.datetime64(text[:19], "s").astype(np.int64))
    return out


def burst_groups(times: np.ndarray, gap: float = BURST_GAP) -> np.ndarray:
    """A group per burst for cross-validation: photos taken within `gap` seconds of the previous
    one share a group (near-duplicates split across folds would let the model recognise a frame
    it was trained on a twin of, and flatter its accuracy); a photo without a time is its own."""
    times = np.asarray(times, dtype=np.float64)
    groups = np.arange(len(times), dtype=np.int64)
    timed = np.flatnonzero(~np.isnan(times))
    if len(timed) > 1:
        order = timed[np.argsort(times[timed], kind="stable")]
        new = np.r_[True, np.diff(times[order]) > gap]
        groups[order] = len(times) + np.cumsum(new)
    return groups


@dataclass(frozen=True)
class ShootLabels:
    """This shoot's photos as the taste model reads them: ids, labels and the attributes of
    `FEATURE_KEYS` the table has, all copies (the window takes it on the GUI thread from its
    session's table, which shows decisions not yet written: numpy copies, a millisecond)."""

    ids: np.ndarray  # int64
    labels: np.ndarray  # int8: KEEP, REJECT, UNDECIDED
    keys: tuple[str, ...]
    attributes: np.ndarray  # (N, len(keys)) float32, NaN = not measured
    times: np.ndarray | None = None  # (N,) float64 capture seconds, NaN unknown (bursts for the folds)

    @classmethod
    def of(cls, table: PhotoTable) -> ShootLabels:
        keys = tuple(k for k in FEATURE_KEYS if k in table.attributes)
        cols = [table.attributes.index(k) for k in keys]
        attrs = (
            table.scores[:, cols] if len(table) and cols else np.zeros((len(table), len(keys)), np.float32)
        )
        return cls(
            np.array(table.ids, dtype=np.int64),
            labels_of(table.rating, table.picked),
            keys,
            np.array(attrs, dtype=np.float32),
            capture_seconds(table.captured_at),
        )

    @property
    def decided(self) -> int:
        return int(np.count_nonzero(self.labels != UNDECIDED))


@dataclass(frozen=True)
class TasteData:
    """The numbers a fit needs: training rows (embedding, attributes, label) and the rows to
    predict (this shoot's undecided photos with an embedding)."""

    embeddings: np.ndarray  # (N, D) float32
    attributes: np.ndarray  # (N, K) float32
    labels: np.ndarray  # (N,) int8, KEEP/REJECT
    predict_ids: np.ndarray  # int64
    predict_embeddings: np.ndarray
    predict_attributes: np.ndarray
    keys: tuple[str, ...] = ()
    shoot_counts: tuple[int, int] = (0, 0)  # (keeps, rejects) from this shoot
    other_counts: tuple[int, int] = (0, 0)  # from other shoots of the catalog
    photos_without_embedding: int = 0  # this shoot's photos that cannot be judged (failed, --model none)
    groups: np.ndarray | None = None  # (N,) the training rows' bursts (burst_groups), None = unknown


@dataclass(frozen=True)
class Fit:
    """A fitted pipeline and its cross-validated figures (numbers only; see TasteResult)."""

    probabilities: np.ndarray  # keep-probability of each row to predict
    accuracy: float
    accuracy_spread: float  # standard deviation over the folds
    auc: float
    folds: int
    c: float  # the regularisation chosen on all the decisions
    components: int
    seconds: float
    grouped: bool = False  # folds kept each burst whole (StratifiedGroupKFold)


@dataclass(frozen=True)
class TasteResult:
    """What `learn` and the window show: the predictions for the undecided photos and how far to
    trust them; or, with `problem`, why nothing was fitted."""

    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    probabilities: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    keeps: int = 0
    rejects: int = 0
    shoot_counts: tuple[int, int] = (0, 0)
    other_counts: tuple[int, int] = (0, 0)
    accuracy: float = math.nan
    accuracy_spread: float = math.nan
    auc: float = math.nan
    folds: int = 0
    c: float = math.nan
    components: int = 0
    seconds: float = 0.0
    problem: str | None = None
    without_embedding: int = 0
    by_burst: bool = False  # the folds kept each burst whole (see burst_groups)

    @property
    def decisions(self) -> int:
        return self.keeps + self.rejects

    @property
    def baseline(self) -> float:
        """Accuracy of always answering the more frequent decision."""
        return max(self.keeps, self.rejects) / self.decisions if self.decisions else math.nan

    @property
    def baseline_name(self) -> str:
        return "always-keep" if self.keeps >= self.rejects else "always-reject"

    def summary(self) -> str:
        """One line: 'My taste: 84 % cross-validated (120 decisions; always-keep 62 %)', or below
        the minimum 'My taste: 23 of 50 decisions'."""
        if self.problem == NO_EMBEDDINGS:
            return "My taste: needs CLIP embeddings (indexed with --model none)"
        if self.problem is not None:
            if self.decisions < MIN_DECISIONS:
                return f"My taste: {self.decisions} of {MIN_DECISIONS} decisions"
            few = "keeps" if self.keeps < self.rejects else "rejects"
            return f"My taste: {min(self.keeps, self.rejects)} of {MIN_PER_CLASS} {few}"
        return (
            f"My taste: {self.accuracy:.0%} cross-validated ({self.decisions} decisions; "
            f"{self.baseline_name} {self.baseline:.0%})"
        ).replace("%", " %")

    def as_dict(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return None if math.isnan(x) else round(float(x), 4)

        return {
            "decisions": {
                "keeps": self.keeps,
                "rejects": self.rejects,
                "this_shoot": {"keeps": self.shoot_counts[0], "rejects": self.shoot_counts[1]},
                "other_shoots": {"keeps": self.other_counts[0], "rejects": self.other_counts[1]},
            },
            "accuracy": num(self.accuracy),
            "accuracy_spread": num(self.accuracy_spread),
            "baseline": num(self.baseline),
            "baseline_is": self.baseline_name,
            "roc_auc": num(self.auc),
            "folds": self.folds,
            "folds_by_burst": self.by_burst,
            "C": num(self.c),
            "embedding_components": self.components,
            "fit_seconds": round(self.seconds, 3),
            "problem": self.problem,
        }


def _per_photo(ids: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows of `wanted` found in the sorted `ids`, their positions in `ids`)."""
    if len(ids) == 0 or len(wanted) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pos = np.clip(np.searchsorted(ids, wanted), 0, len(ids) - 1)
    found = np.flatnonzero(ids[pos] == wanted)
    return found, pos[found]


def gather(
    catalog: Catalog,
    folder_ids: Sequence[int],
    analysis_id: int,
    shoot: ShootLabels,
    this_shoot_only: bool = False,
    others: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> TasteData:
    """Read the embeddings (this shoot's, and other shoots' decided photos of the same analysis,
    with their stored attributes) and put the training and prediction rows together. Reads only
    the catalog; safe on a worker thread (each read takes a pooled connection of its own).
    `others`: `Catalog.decided_photos` already read."""
    emb_ids, emb = catalog.embeddings(folder_ids, analysis_id)
    rows, at = _per_photo(emb_ids, shoot.ids)
    labels = shoot.labels[rows]
    attrs = shoot.attributes[rows]
    vectors = emb[at] if len(at) else np.zeros((0, emb.shape[1] if emb.ndim == 2 else 0), np.float32)
    decided = labels != UNDECIDED
    shoot_counts = (int(np.sum(labels == KEEP)), int(np.sum(labels == REJECT)))
    train_emb, train_attr, train_y = [vectors[decided]], [attrs[decided]], [labels[decided]]
    times = shoot.times[rows] if shoot.times is not None else np.full(len(rows), math.nan)
    train_t = [times[decided]]
    other_counts = (0, 0)
    if not this_shoot_only:
        if others is None:
            others = catalog.decided_photos(analysis_id, exclude_folder_ids=folder_ids)
        ids, rating, picked, o_times = others
        if len(ids):
            o_ids, o_emb = catalog.embeddings_of(ids.tolist(), analysis_id)
            found, at_o = _per_photo(ids, o_ids)  # decided_photos joins embeddings: all found
            o_labels = labels_of(rating[at_o], picked[at_o])
            scores = {p.id: p.scores for p in catalog.photo_scores(o_ids.tolist(), analysis_id)}
            o_attr = np.array(
                [[scores.get(int(pid), {}).get(k, math.nan) for k in shoot.keys] for pid in o_ids],
                dtype=np.float32,
            ).reshape(len(o_ids), len(shoot.keys))
            if len(vectors) == 0 or o_emb.shape[1] == vectors.shape[1]:
                train_emb.append(o_emb[found])
                train_attr.append(o_attr[found])
                train_y.append(o_labels)
                train_t.append(o_times[at_o])
                other_counts = (int(np.sum(o_labels == KEEP)), int(np.sum(o_labels == REJECT)))
    width = max((e.shape[1] for e in train_emb if e.ndim == 2 and e.size), default=vectors.shape[1])
    train_emb = [e if e.size else np.zeros((0, width), np.float32) for e in train_emb]
    return TasteData(
        embeddings=np.concatenate(train_emb).astype(np.float32, copy=False),
        attributes=np.concatenate(train_attr).astype(np.float32, copy=False),
        labels=np.concatenate(train_y).astype(np.int8, copy=False),
        predict_ids=shoot.ids[rows][~decided],
        predict_embeddings=vectors[~decided],
        predict_attributes=attrs[~decided],
        keys=shoot.keys,
        shoot_counts=shoot_counts,
        other_counts=other_counts,
        photos_without_embedding=len(shoot.ids) - len(rows),
        groups=burst_groups(np.concatenate(train_t)),
    )


def too_few(keeps: int, rejects: int) -> str | None:
    """Why `keeps` and `rejects` are not enough to learn from (None: they are)."""
    if keeps + rejects >= MIN_DECISIONS and min(keeps, rejects) >= MIN_PER_CLASS:
        return None
    return (
        f"too few decisions to learn your taste from: {keeps} kept and {rejects} rejected "
        f"(kept = picked or at least 1 star, rejected = X); at least {MIN_DECISIONS} in all and "
        f"{MIN_PER_CLASS} of each are needed"
    )


def _logistic_cv(inner: int, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    # scikit-learn 1.8+ warns unless these are explicit; older versions do not know them
    extra = {"l1_ratios": (0.0,), "use_legacy_attributes": False}
    known = inspect.signature(LogisticRegressionCV).parameters
    return LogisticRegressionCV(
        Cs=list(CS),
        cv=StratifiedKFold(inner, shuffle=True, random_state=seed),
        scoring="neg_log_loss",
        max_iter=2000,
        **{k: v for k, v in extra.items() if k in known},
    )


def _pipeline(dim: int, n_attributes: int, components: int, inner: int, seed: int) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.decomposition import PCA
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    parts: list[tuple[str, Any, Any]] = [
        ("embedding", PCA(components, svd_solver="randomized", random_state=seed), slice(0, dim))
    ]
    if n_attributes:
        imputer = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
        parts.append(("attributes", imputer, slice(dim, dim + n_attributes)))
    return make_pipeline(ColumnTransformer(parts), StandardScaler(), _logistic_cv(inner, seed))


def fit(
    embeddings: np.ndarray,
    attributes: np.ndarray,
    labels: np.ndarray,
    predict_embeddings: np.ndarray,
    predict_attributes: np.ndarray,
    seed: int = SEED,
    cross_validate: bool = True,
    groups: np.ndarray | None = None,
) -> Fit:
    """Cross-validate the pipeline on (embeddings, attributes) → labels (1 keep, 0 reject), then
    fit it on all of them and predict the keep-probability of the other rows. No minimum is
    enforced here (`learn_taste` does; the benchmark measures below it) beyond what a stratified
    split needs: 2 of each class. Raises ValueError when there are fewer.

    BLAS runs on one thread: these matrices are small, and OpenBLAS's threads spinning for work
    made the same fit 4-6x slower on 2 busy cores (and in the window they would take the core the
    GUI thread needs)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _fit(
            embeddings,
            attributes,
            labels,
            predict_embeddings,
            predict_attributes,
            seed,
            cross_validate,
            groups,
        )


def _fit(
    embeddings: np.ndarray,
    attributes: np.ndarray,
    labels: np.ndarray,
    predict_embeddings: np.ndarray,
    predict_attributes: np.ndarray,
    seed: int,
    cross_validate: bool,
    groups: np.ndarray | None = None,
) -> Fit:
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
    from sklearn.model_selection import cross_validate as sk_cross_validate

    start = time.perf_counter()
    y = np.asarray(labels, dtype=np.int64)
    minority = int(min(np.sum(y == KEEP), np.sum(y == REJECT)))
    if minority < 2:
        raise ValueError("at least 2 keeps and 2 rejects are needed to fit anything")
    folds = min(FOLDS, minority)
    # the smallest outer training fold: the PCA and the inner folds must fit into it
    train_n = len(y) - math.ceil(len(y) / folds)
    train_minority = minority - math.ceil(minority / folds)
    inner = max(2, min(INNER_FOLDS, train_minority))
    attrs = np.asarray(attributes, dtype=np.float32).reshape(len(y), -1)
    keep_cols = np.flatnonzero(~np.all(np.isnan(attrs), axis=0)) if len(attrs) else np.zeros(0, np.int64)
    dim = embeddings.shape[1]
    components = max(1, min(COMPONENTS, dim, train_n - 1))
    x = np.hstack([embeddings, attrs[:, keep_cols]]).astype(np.float64)
    pipe = _pipeline(dim, len(keep_cols), components, inner, seed)
    accuracy = spread = auc = math.nan
    grouped = False
    if cross_validate:
        cv: Any = StratifiedKFold(folds, shuffle=True, random_state=seed)
        if groups is not None and _groups_allow(y, np.asarray(groups), folds):
            cv, grouped = StratifiedGroupKFold(folds, shuffle=True, random_state=seed), True
        scores = sk_cross_validate(
            pipe, x, y, cv=cv, groups=groups if grouped else None, scoring=("accuracy", "roc_auc")
        )
        accuracy = float(np.mean(scores["test_accuracy"]))
        spread = float(np.std(scores["test_accuracy"]))
        auc = float(np.mean(scores["test_roc_auc"]))
    pipe.fit(x, y)
    n_pred = len(predict_embeddings)
    probabilities = np.zeros(0, np.float32)
    if n_pred:
        p_attrs = np.asarray(predict_attributes, dtype=np.float32).reshape(n_pred, -1)[:, keep_cols]
        px = np.hstack([predict_embeddings, p_attrs]).astype(np.float64)
        probabilities = pipe.predict_proba(px)[:, list(pipe.classes_).index(KEEP)].astype(np.float32)
    c = float(np.ravel(pipe[-1].C_)[0])
    return Fit(
        probabilities, accuracy, spread, auc, folds, c, components, time.perf_counter() - start, grouped
    )


def _groups_allow(y: np.ndarray, groups: np.ndarray, folds: int) -> bool:
    """Folds by burst are possible: every fold can hold a burst of each class (else a fold
    without rejects has no AUC); otherwise the folds are by photo (the bursts are too few)."""
    return all(len(np.unique(groups[y == label])) >= 2 * folds for label in (KEEP, REJECT))


def learn_taste(
    catalog: Catalog,
    folder_ids: Sequence[int],
    analysis_id: int,
    shoot: ShootLabels,
    this_shoot_only: bool = False,
    seed: int = SEED,
) -> TasteResult:
    """Gather the decisions (see `gather`), refuse below the minimum with the reason, otherwise
    fit and cross-validate, and predict this shoot's undecided photos.

    The decisions are counted before any embedding is read: below the minimum (the usual case
    while a shoot is being culled) a refusal costs one query, not reading every embedding."""
    others = None if this_shoot_only else catalog.decided_photos(analysis_id, exclude_folder_ids=folder_ids)
    other_labels = labels_of(others[1], others[2]) if others is not None else np.zeros(0, np.int8)
    shoot_counts = (int(np.sum(shoot.labels == KEEP)), int(np.sum(shoot.labels == REJECT)))
    other_counts = (int(np.sum(other_labels == KEEP)), int(np.sum(other_labels == REJECT)))
    keeps, rejects = shoot_counts[0] + other_counts[0], shoot_counts[1] + other_counts[1]
    problem = too_few(keeps, rejects)
    if problem is not None:  # photos without an embedding only lower these counts
        return TasteResult(
            keeps=keeps,
            rejects=rejects,
            shoot_counts=shoot_counts,
            other_counts=other_counts,
            problem=problem,
        )
    data = gather(catalog, folder_ids, analysis_id, shoot, this_shoot_only, others)
    counted = TasteResult(
        keeps=int(np.sum(data.labels == KEEP)),
        rejects=int(np.sum(data.labels == REJECT)),
        shoot_counts=data.shoot_counts,
        other_counts=data.other_counts,
        without_embedding=data.photos_without_embedding,
    )
    if data.embeddings.size == 0 and data.predict_embeddings.size == 0:
        return replace(counted, problem=NO_EMBEDDINGS)
    problem = too_few(counted.keeps, counted.rejects)
    if problem is not None:
        return replace(counted, problem=problem)
    result = fit(
        data.embeddings,
        data.attributes,
        data.labels,
        data.predict_embeddings,
        data.predict_attributes,
        seed=seed,
        groups=data.groups,
    )
    return replace(
        counted,
        by_burst=result.grouped,
        ids=data.predict_ids,
        probabilities=result.probabilities,
        accuracy=result.accuracy,
        accuracy_spread=result.accuracy_spread,
        auc=result.auc,
        folds=result.folds,
        c=result.c,
        components=result.components,
        seconds=result.seconds,
    )
