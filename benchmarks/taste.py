"""The photographer's taste (culling/taste.py): how well it predicts keep/reject against the number of
decisions given, on a generated shoot where a hidden rule decides.

    .venv/bin/python benchmarks/taste.py            # 400 photos, 5 draws per n (a few minutes)
    .venv/bin/python benchmarks/taste.py --quick    # 160 photos, 2 draws per n (~1 minute)

The shoot: crops of scikit-image's sample photographs (six subjects), each with a random Gaussian
blur (sharp, or σ 1.5–4 px at 384 px), a random exposure (−2.5 to +0.7 EV, gain in linear light)
and mild noise, saved as JPEGs and indexed through the product (`index_folder`: the CLIP embedding
and scores of the tests' tiny model, and the pixel measures but faces) into a fresh catalog. The
hidden rule: KEEP iff sharp AND not underexposed (≥ −1 EV) AND the subject is one of four of the six
(the photographer does not like the other two). The model never sees the rule, only decisions.

For n in 20, 50, 100, 200 (more than the shoot has are skipped): n photos drawn at random are the
decisions given (redrawn while a class has fewer than 2, which a stratified split needs), the rest
are held out. Printed per n, over the draws: the accuracy on the held-out photos of the model's
keep-probability ≥ 0.5, of always answering the decisions' more frequent class (the baseline), the
model's own cross-validated accuracy (what `learn` and the window report: it should agree with the
held-out figure, being honest), the ROC AUC on the held-out photos, and the time of one `fit`
(cross-validation included). Then the fit time at the app's real sizes: n = 200 and 1000 decisions
of 1024-dimensional embeddings (random unit vectors, a random rule) plus the 8 attributes.

The embeddings are those of the tests' tiny randomly initialised CLIP (tests/data/tiny-rn.json,
seeded; 32 dimensions): real weights cannot be downloaded here. Real CLIP embeddings separate
subjects far better than a random network, so the subject part of the rule, and with it the
accuracy, would change (most likely up); the sharpness and exposure parts rest on the pixel measures,
which do not depend on the network. The figures are this network's, not real CLIP's.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the app does, before torch loads

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from machine import cpu_description  # noqa: E402  (benchmarks/machine.py)

from clipiqa_desktop.catalog import Catalog, build_table  # noqa: E402
from clipiqa_desktop.culling.session import column_order  # noqa: E402
from clipiqa_desktop.culling.taste import FEATURE_KEYS, ShootLabels, fit  # noqa: E402

FRAME = (384, 256)
SUBJECTS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "coins")
LIKED = frozenset(SUBJECTS[:4])
SHARP_SHARE = 0.7
SIGMAS = (1.5, 2.5, 4.0)  # the blurred frames' Gaussian σ in pixels
EV_RANGE = (-2.5, 0.7)
UNDEREXPOSED_EV = -1.0
SIZES = (20, 50, 100, 200)
MEASURES = ("focus", "motion_blur", "highlights_clipped", "shadows_clipped", "noise")


def source(name: str) -> np.ndarray:
    import skimage.data

    image = np.asarray(getattr(skimage.data, name)())
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.ascontiguousarray(image[..., :3]).astype(np.uint8)


def make_shoot(folder: Path, n: int, seed: int) -> dict[str, int]:
    """`n` JPEGs in `folder`; returns file name → hidden label (1 keep, 0 reject)."""
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(seed)
    photos = {name: source(name) for name in SUBJECTS}
    truth = {}
    for i in range(n):
        subject = SUBJECTS[int(rng.integers(len(SUBJECTS)))]
        img = photos[subject]
        h, w = img.shape[:2]
        ch = int(h * rng.uniform(0.55, 0.9))
        cw = min(w, int(ch * 1.5))
        y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        frame = Image.fromarray(img[y0 : y0 + ch, x0 : x0 + cw]).resize(FRAME, Image.Resampling.LANCZOS)
        sharp = bool(rng.random() < SHARP_SHARE)
        if not sharp:
            frame = frame.filter(ImageFilter.GaussianBlur(float(rng.choice(SIGMAS))))
        ev = float(rng.uniform(*EV_RANGE))
        linear = (np.asarray(frame, np.float32) / 255.0) ** 2.2 * 2.0**ev
        pixels = np.clip(linear, 0, 1) ** (1 / 2.2) * 255 + rng.normal(0, 2.0, linear.shape)
        name = f"IMG_{i:04d}.jpg"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / name, quality=90)
        truth[name] = int(sharp and ev >= UNDEREXPOSED_EV and subject in LIKED)
    return truth


def tiny_scorer() -> object:
    import torch

    from clipiqa_desktop.scoring import ClipIqaScorer, ModelSpec

    torch.manual_seed(0)
    config = REPO / "tests" / "data" / "tiny-rn.json"
    return ClipIqaScorer.load(ModelSpec(str(config), "none"), device="cpu", precision="fp32", engine="torch")


def index_shoot(catalog: Catalog, folder: Path) -> tuple[np.ndarray, np.ndarray, ShootLabels, list[str]]:
    """Index through the product; (ids, embeddings, the shoot as the model reads it, names)."""
    from clipiqa_desktop.indexing.pipeline import IndexOptions, index_folder

    summary = index_folder(catalog, tiny_scorer(), folder, IndexOptions(long_side=256, measures=MEASURES))  # type: ignore[arg-type]
    if summary.failed:
        raise SystemExit(f"indexing failed for {summary.failed[:3]}")
    folder_ids = catalog.folder_ids(folder, recursive=False)
    analysis_id = catalog.last_analysis(folder_ids)
    assert analysis_id is not None
    rows, scores = catalog.rows(folder_ids, analysis_id, root=folder)
    table = build_table(rows, scores, column_order(scores.attributes))
    emb_ids, emb = catalog.embeddings(folder_ids, analysis_id)
    assert np.array_equal(emb_ids, table.ids)
    return table.ids, emb, ShootLabels.of(table), list(table.names)


def auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if len(set(y.tolist())) == 2 else float("nan")


def measure(
    emb: np.ndarray, shoot: ShootLabels, y: np.ndarray, sizes: Sequence[int], draws: int
) -> list[str]:
    lines = [
        "| decisions given | held-out photos | accuracy (held out) | always-majority | "
        "cross-validated (as reported) | ROC AUC (held out) | fit time |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    print("\n".join(lines), flush=True)
    for n in sizes:
        if n >= len(y) - 10:
            lines.append(f"| {n} | – | (the shoot has {len(y)} photos) | | | | |")
            continue
        acc, base, cv, aucs, secs = [], [], [], [], []
        rng = np.random.default_rng(1000 + n)
        for _ in range(draws):
            while True:
                given = rng.choice(len(y), size=n, replace=False)
                if min(np.sum(y[given] == 1), np.sum(y[given] == 0)) >= 2:
                    break
            held = np.setdiff1d(np.arange(len(y)), given)
            result = fit(emb[given], shoot.attributes[given], y[given], emb[held], shoot.attributes[held])
            majority = int(np.mean(y[given]) >= 0.5)
            acc.append(np.mean((result.probabilities >= 0.5).astype(int) == y[held]))
            base.append(np.mean(y[held] == majority))
            cv.append(result.accuracy)
            aucs.append(auc(y[held], result.probabilities))
            secs.append(result.seconds)

        def pm(values: list[float], pct: bool = True) -> str:
            m, s = float(np.nanmean(values)), float(np.nanstd(values))
            return f"{m * 100:.0f} % ± {s * 100:.0f}" if pct else f"{m:.2f} ± {s:.2f}"

        lines.append(
            f"| {n} | {len(y) - n} | {pm(acc)} | {pm(base)} | {pm(cv)} | {pm(aucs, pct=False)} | "
            f"{np.median(secs):.2f} s |"
        )
        print(lines[-1], flush=True)
    return lines


def timing(sizes: Sequence[int]) -> list[str]:
    """The fit (cross-validation included) at the app's sizes: D = 1024, 8 attributes."""
    lines = ["| decisions | embedding | undecided predicted | fit + 5-fold CV |", "|---:|---:|---:|---:|"]
    print("\n".join(lines), flush=True)
    rng = np.random.default_rng(7)
    for n in sizes:
        emb = rng.normal(size=(n + 1000, 1024)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        attrs = rng.uniform(0, 1, size=(n + 1000, 8)).astype(np.float32)
        y = ((emb[:, :8].sum(axis=1) + attrs[:, 0] - 0.5) > 0).astype(np.int8)
        start = time.perf_counter()
        fit(emb[:n], attrs[:n], y[:n], emb[n:], attrs[n:])
        lines.append(f"| {n} | 1024 | 1000 | {time.perf_counter() - start:.2f} s |")
        print(lines[-1], flush=True)
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="160 photos, 2 draws per n (a smoke run)")
    ap.add_argument("--photos", type=int, default=None, help="photos in the shoot (default 400; --quick 160)")
    ap.add_argument("--draws", type=int, default=None, help="random draws per n (default 5; --quick 2)")
    ap.add_argument("--out", type=Path, default=None, help="keep the shoot and its catalog here")
    args = ap.parse_args(argv)
    photos = args.photos or (160 if args.quick else 400)
    draws = args.draws or (2 if args.quick else 5)
    print(f"machine: {cpu_description()}; {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        base = args.out or Path(tmp)
        folder = base / "shoot"
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        truth = make_shoot(folder, photos, seed=0)
        made = time.perf_counter() - start
        catalog = Catalog(base / "catalog.sqlite")
        try:
            start = time.perf_counter()
            _, emb, shoot, names = index_shoot(catalog, folder)
            indexed = time.perf_counter() - start
        finally:
            catalog.close()
        y = np.array([truth[name] for name in names], dtype=np.int8)
        warm = np.arange(40) % 2  # the first fit imports scikit-learn: not timed
        fit(emb[:40], shoot.attributes[:40], warm, emb[40:41], shoot.attributes[40:41], cross_validate=False)
        rule = f"sharp AND ≥ {UNDEREXPOSED_EV:+.0f} EV AND subject in {sorted(LIKED)}"
        print(
            f"shoot: {photos} photos {FRAME[0]}x{FRAME[1]} (made in {made:.0f} s, indexed in "
            f"{indexed:.0f} s, tiny-rn, analysis 256 px); hidden rule keeps {y.mean():.0%} ({rule}); "
            f"features: {emb.shape[1]}-d embedding + {len(shoot.keys)} attributes "
            f"({', '.join(shoot.keys)}; of {len(FEATURE_KEYS)} possible)"
        )
        print()
        measure(emb, shoot, y, SIZES, draws)
    print()
    print("fit time at the app's sizes (random 1024-d unit embeddings, 8 attributes):")
    timing((200, 1000) if not args.quick else (200,))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
