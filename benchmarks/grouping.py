"""Grouping defaults: bursts and scenes found by culling/groups.py against a generated shoot whose
true groups are known.

    .venv/bin/python benchmarks/grouping.py            # 3 shoots of 12 scenes (~600 photos; about a minute)
    .venv/bin/python benchmarks/grouping.py --quick    # 1 shoot of 4 scenes (~60 photos; ~20 s)
    .venv/bin/python benchmarks/grouping.py --out /tmp/shoot   # keep the JPEGs to look at

The shoot: scikit-image's sample photographs (astronaut, coffee, chelsea, rocket, camera, ...), one
per scene. A scene is 3–6 bursts, each of its own crop of the scene's photograph (another part,
another framing: "related crops"); a burst is 1–7 frames of that crop with small random shifts,
zooms, brightness and noise jitters, 0.1–0.5 s apart (one gap in five 0.5–1.5 s: a series fired
one by one). Bursts of a scene follow each other after
0.3–3 s (a third: recomposed at once, only the content tells them apart), 5–150 s, or 200–500 s (one
in ten: a long pause that only the content bridges); scenes are 20 s–20 minutes apart (a turn to
another subject is quick: only the content splits those). Neither the time nor the content alone
can find every group, so a sweep shows what each slider adds. One scene in three has an exposure bracket:
one frame at 0/−2/+2 EV (pixel gain in linear light) 0.3 s apart, with EXIF ExposureBiasValue.
Every JPEG carries EXIF DateTimeOriginal, SubSecTimeOriginal, ExposureBiasValue, exposure time,
f-number and ISO, written by Pillow in the EXIF sub-IFD (0x8769), and is indexed through the
product (`index_folder`, pixel measures included) into a fresh catalog; `Catalog.group_inputs`
then reads what `clipiqa-desktop groups` and the window read.

The embeddings are those of the tests' tiny randomly initialised CLIP (tests/data/tiny-rn.json,
seeded): real weights cannot be downloaded here. A random network still maps a shifted crop close to
its original and another photograph further away, but its cosine scale is its own: the similarity
thresholds measured here say where the *plateau* is for this network, not the numbers real CLIP
would want. The time gaps do not depend on the network.

Printed (Markdown, for the README): the machine; per level the adjusted Rand index (ARI,
scikit-learn's `adjusted_rand_score`) and pairwise F1 (pairs of photos put together, against the
truth) over a grid of similarity × gap, pooled over the shoots (the other level's sliders at
GroupParams' defaults); the best settings and the plateau around them; brackets found whole; the
figures at the defaults.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the app does, before torch loads

import argparse
import datetime
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from machine import cpu_description  # noqa: E402  (benchmarks/machine.py)

from clipiqa_desktop.catalog import Catalog  # noqa: E402
from clipiqa_desktop.catalog.records import GroupInputs  # noqa: E402
from clipiqa_desktop.culling.groups import BRACKET, GroupParams, group_photos  # noqa: E402

FRAME = (360, 240)  # width, height of every JPEG: small, the grouping reads embeddings and EXIF
PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "camera",
    "immunohistochemistry",
    "hubble_deep_field",
    "coins",
    "retina",
    "stereo_motorcycle",
    "clock",
    "moon",
)
START = datetime.datetime(2026, 6, 20, 14, 0, 0)
BRACKET_EV = (0.0, -2.0, 2.0)  # the order cameras shoot an AEB set in

MODELS = {
    "tiny-rn": REPO / "tests" / "data" / "tiny-rn.json",
    "tiny-vit": REPO / "tests" / "data" / "tiny-vit.json",
}
# −1 = time alone (every cosine passes)
BURST_SIMILARITY = (-1.0, 0.0, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999)
BURST_GAP = (0.5, 1.0, 2.0, 3.0, 5.0, 10.0)
SCENE_SIMILARITY = (-1.0, 0.0, 0.3, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99)
SCENE_GAP = (30.0, 60.0, 120.0, 300.0, 600.0, 1200.0)


@dataclass(frozen=True)
class Truth:
    """One generated frame and the groups it truly belongs to."""

    name: str
    burst: int  # the burst-level group (a bracket is one; a single frame is its own)
    scene: int
    kind: str  # burst | single | bracket
    time: float  # seconds after START


def source(name: str) -> np.ndarray:
    """A scikit-image sample photograph as RGB uint8."""
    import skimage.data

    image = getattr(skimage.data, name)()
    if isinstance(image, tuple):  # stereo pairs
        image = image[0]
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.ascontiguousarray(image[..., :3]).astype(np.uint8)


def _crop(photo: np.ndarray, box: tuple[float, float, float]) -> np.ndarray:
    """The 3:2 crop of `photo` centred at (cx, cy) (fractions) with height `h` (fraction of the
    photo's height, widened to 3:2 within the photo), resized to FRAME."""
    from PIL import Image

    height, width = photo.shape[:2]
    cx, cy, h = box
    ch = h * height
    cw = min(1.5 * ch, width)
    ch = cw / 1.5
    x0 = float(np.clip(cx * width - cw / 2, 0, width - cw))
    y0 = float(np.clip(cy * height - ch / 2, 0, height - ch))
    image = Image.fromarray(photo).resize(FRAME, Image.Resampling.BICUBIC, box=(x0, y0, x0 + cw, y0 + ch))
    return np.asarray(image)


def _jitter(box: tuple[float, float, float], rng: np.random.Generator) -> tuple[float, float, float]:
    """A burst frame's framing: the burst's crop moved by up to 3 % and zoomed by up to 4 %."""
    cx, cy, h = box
    return (cx + rng.uniform(-0.03, 0.03), cy + rng.uniform(-0.03, 0.03), h * rng.uniform(0.96, 1.04))


def _gain(rgb: np.ndarray, ev: float, noise: float, rng: np.random.Generator) -> np.ndarray:
    """`ev` stops of exposure in linear light (clipped as a sensor clips), plus sensor noise."""
    linear = (rgb.astype(np.float32) / 255.0) ** 2.2 * (2.0**ev)
    out = np.clip(linear, 0, 1) ** (1 / 2.2) * 255.0 + rng.normal(0, noise, rgb.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def _save(path: Path, rgb: np.ndarray, seconds: float, bias: float, exposure: Fraction) -> None:
    """A JPEG with the EXIF a camera writes: DateTimeOriginal + SubSecTimeOriginal, bias, exposure."""
    from PIL import Image
    from PIL.TiffImagePlugin import IFDRational

    when = START + datetime.timedelta(seconds=seconds)
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "Canon EOS R5"
    exif[0x0132] = when.strftime("%Y:%m:%d %H:%M:%S")
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = when.strftime("%Y:%m:%d %H:%M:%S")  # DateTimeOriginal
    sub[0x9291] = f"{when.microsecond // 10_000:02d}"  # SubSecTimeOriginal, hundredths
    sub[0x9204] = IFDRational(Fraction(bias).limit_denominator(3))  # ExposureBiasValue
    sub[0x829A] = IFDRational(exposure)  # ExposureTime
    sub[0x829D] = IFDRational(Fraction(28, 10))  # FNumber
    sub[0x8827] = 400  # ISO
    Image.fromarray(rgb).save(path, quality=92, exif=exif.tobytes())


def _within_burst(rng: np.random.Generator) -> float:
    """Seconds between frames of a burst: 0.1–0.5 s (continuous drive), one in five 0.5–1.5 s (a
    series fired one by one at the same moment)."""
    return float(rng.uniform(0.5, 1.5) if rng.random() < 0.2 else rng.uniform(0.1, 0.5))


def _between_bursts(rng: np.random.Generator) -> float:
    """Seconds from one burst of a scene to the next: a third recomposed at once (0.3–3 s: only
    the content tells them apart), most seconds to minutes later, one in ten after a long pause
    (200–500 s: only the content keeps them in their scene)."""
    draw = rng.random()
    if draw < 1 / 3:
        return float(rng.uniform(0.3, 3.0))
    if draw < 0.9:
        return float(rng.uniform(5.0, 150.0))
    return float(rng.uniform(200.0, 500.0))


def make_shoot(folder: Path, scenes: int = 12, seed: int = 0) -> list[Truth]:
    """Write the shoot's JPEGs into `folder` (IMG_0001.JPG, ... in capture order); return the truth."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    truth: list[Truth] = []
    t = 0.0
    burst = 0
    order = rng.permutation(len(PHOTOS))
    for s in range(scenes):
        photo = source(PHOTOS[int(order[s % len(PHOTOS)])])
        if s:
            t += rng.uniform(20.0, 1200.0)  # to the next scene: from a turn of the head to 20 minutes
        n_bursts = int(rng.integers(3, 7))
        bracket_at = int(rng.integers(0, n_bursts)) if s % 3 == 1 else -1
        for b in range(n_bursts):
            if b:
                t += _between_bursts(rng)
            box = (rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.45, 0.8))
            if b == bracket_at:
                frame = _crop(photo, box)
                base = Fraction(1, 250)
                for k, ev in enumerate(BRACKET_EV):
                    if k:
                        t += 0.3
                    exposure = base * Fraction(2) ** int(ev)
                    name = f"IMG_{len(truth) + 1:04d}.JPG"
                    _save(folder / name, _gain(frame, ev, 1.5, rng), t, ev, exposure)
                    truth.append(Truth(name, burst, s, BRACKET, t))
                burst += 1
                continue
            frames = int(rng.choice([1, 1, 2, 3, 3, 4, 5, 6, 7]))
            for k in range(frames):
                if k:
                    t += _within_burst(rng)
                rgb = _crop(photo, _jitter(box, rng))
                rgb = _gain(rgb, rng.uniform(-0.15, 0.15), rng.uniform(1.0, 3.0), rng)
                name = f"IMG_{len(truth) + 1:04d}.JPG"
                _save(folder / name, rgb, t, 0.0, Fraction(1, 250))
                truth.append(Truth(name, burst, s, "burst" if frames > 1 else "single", t))
            burst += 1
    return truth


def index_shoot(catalog: Catalog, folder: Path, scorer: object) -> GroupInputs:
    """Index `folder` through the product (no pixel measures: grouping reads embeddings and EXIF);
    what grouping reads of it."""
    from clipiqa_desktop.indexing.pipeline import IndexOptions, index_folder

    summary = index_folder(catalog, scorer, folder, IndexOptions(long_side=512, measures=()))  # type: ignore[arg-type]
    if summary.failed:
        raise SystemExit(f"indexing failed for {summary.failed[:3]}")
    folder_ids = catalog.folder_ids(folder, recursive=False)
    return catalog.group_inputs(folder_ids, catalog.last_analysis(folder_ids), root=folder)


def tiny_scorer(config: Path) -> object:
    """A tests' tiny randomly initialised CLIP (seeded, as the tests build it), fp32 on the CPU."""
    import torch

    from clipiqa_desktop.scoring import ClipIqaScorer, ModelSpec

    torch.manual_seed(0)
    return ClipIqaScorer.load(ModelSpec(str(config), "none"), device="cpu", precision="fp32", engine="torch")


def centred(inputs: GroupInputs) -> GroupInputs:
    """The shoot's mean embedding taken off and the rows made unit again. A random network's
    outputs share one dominant direction (every cosine near 1); what is left is the part that
    depends on the image: a stand-in for an embedding whose cosine carries the content."""
    emb = inputs.embeddings.astype(np.float64)
    has = inputs.has_embedding
    out = emb - emb[has].mean(axis=0)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    out = np.where(has[:, None], out / np.where(norms > 0, norms, 1.0), 0.0)
    return replace(inputs, embeddings=out.astype(np.float32))


@dataclass(frozen=True)
class Score:
    ari: float
    f1: float
    precision: float  # of the pairs put together, the share truly together
    recall: float  # of the pairs truly together, the share put together


def score(truth: np.ndarray, found: np.ndarray) -> Score:
    """ARI and pairwise precision / recall / F1 of one labelling against the truth."""
    from sklearn.metrics import adjusted_rand_score
    from sklearn.metrics.cluster import pair_confusion_matrix

    (_tn, fp), (fn, tp) = pair_confusion_matrix(truth, found)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Score(float(adjusted_rand_score(truth, found)), float(f1), float(precision), float(recall))


@dataclass
class Shoot:
    inputs: GroupInputs
    burst: np.ndarray  # true burst label per row of `inputs`
    scene: np.ndarray
    brackets: list[frozenset[int]]  # the true brackets, as sets of photo ids


def prepare(truth: Sequence[Truth], inputs: GroupInputs, offset: int) -> Shoot:
    """Truth labels aligned with the rows of `inputs` (labels offset so shoots can be pooled)."""
    by_name = {t.name: t for t in truth}
    if sorted(inputs.names) != sorted(by_name):
        raise SystemExit("the catalog does not hold the generated shoot")
    rows = [by_name[n] for n in inputs.names]
    burst = np.array([r.burst + offset for r in rows])
    scene = np.array([r.scene + offset for r in rows])
    brackets: dict[int, set[int]] = {}
    for pid, r in zip(inputs.ids, rows, strict=True):
        if r.kind == BRACKET:
            brackets.setdefault(r.burst, set()).add(int(pid))
    return Shoot(inputs, burst, scene, [frozenset(b) for b in brackets.values()])


def evaluate(shoots: Sequence[Shoot], params: GroupParams) -> tuple[Score, Score, int, int]:
    """(burst-level score, scene-level score, brackets found whole, true brackets) pooled over the
    shoots: each shoot grouped alone, labels made distinct across shoots."""
    truth_b, truth_s, found_b, found_s = [], [], [], []
    found_brackets = total_brackets = 0
    base = 0
    for shoot in shoots:
        grouping = group_photos(shoot.inputs, params)
        truth_b.append(shoot.burst)
        truth_s.append(shoot.scene)
        found_b.append(grouping.burst + base)
        found_s.append(grouping.scene + base)
        base += len(shoot.inputs) + 1
        whole = {frozenset(g.members) for g in grouping.bursts if g.kind == BRACKET}
        found_brackets += sum(b in whole for b in shoot.brackets)
        total_brackets += len(shoot.brackets)
    bursts = score(np.concatenate(truth_b), np.concatenate(found_b))
    scenes = score(np.concatenate(truth_s), np.concatenate(found_s))
    return bursts, scenes, found_brackets, total_brackets


def _table(rows: Sequence[float], cols: Sequence[float], cells: dict) -> str:
    head = "| gap \\ similarity | " + " | ".join("time only" if c == -1 else f"{c:g}" for c in cols) + " |"
    rule = "|---" * (len(cols) + 1) + "|"
    body = [f"| {r:g} s | " + " | ".join(f"{cells[(c, r)]:.3f}" for c in cols) + " |" for r in rows]
    return "\n".join([head, rule, *body])


def sweep(
    shoots: Sequence[Shoot], level: str, sims: Sequence[float], gaps: Sequence[float], base: GroupParams
) -> dict[tuple[float, float], Score]:
    out = {}
    for sim in sims:
        for gap in gaps:
            if level == "burst":
                params = replace(base, burst_similarity=sim, burst_gap=gap)
            else:
                params = replace(base, scene_similarity=sim, scene_gap=gap)
            bursts, scenes, _f, _t = evaluate(shoots, params)
            out[(sim, gap)] = bursts if level == "burst" else scenes
    return out


def best_of(results: dict[tuple[float, float], Score]) -> tuple[float, float]:
    """The setting of the highest ARI; among equals the middle of the plateau is not guessed:
    the first in grid order (lowest similarity, then shortest gap)."""
    return max(results, key=lambda k: (round(results[k].ari, 4), -k[0], -k[1]))


def report(level: str, results: dict[tuple[float, float], Score], default: tuple[float, float]) -> None:
    sims = sorted({k[0] for k in results})
    gaps = sorted({k[1] for k in results})
    best = best_of(results)
    plateau = [k for k, v in results.items() if v.ari >= results[best].ari - 0.01]
    print(f"\n{level}s, adjusted Rand index (rows: gap; columns: similarity):\n")
    print(_table(gaps, sims, {k: v.ari for k, v in results.items()}))
    b = results[best]
    print(
        f"\nbest: similarity {best[0]:g}, gap {best[1]:g} s: ARI {b.ari:.3f}, pairwise F1 {b.f1:.3f} "
        f"(precision {b.precision:.3f}, recall {b.recall:.3f})"
    )
    psims = sorted({k[0] for k in plateau})
    pgaps = sorted({k[1] for k in plateau})
    print(
        f"within 0.01 of it: {len(plateau)} of {len(results)} settings, similarity "
        f"{psims[0]:g}–{psims[-1]:g}, gap {pgaps[0]:g}–{pgaps[-1]:g} s"
    )
    time_only = max((v.ari, k[1]) for k, v in results.items() if k[0] == -1)
    print(f"time alone (any similarity): best ARI {time_only[0]:.3f} at gap {time_only[1]:g} s")
    if default in results:
        d = results[default]
        print(
            f"GroupParams default (similarity {default[0]:g}, gap {default[1]:g} s): ARI {d.ari:.3f}, "
            f"pairwise F1 {d.f1:.3f} (precision {d.precision:.3f}, recall {d.recall:.3f})"
        )


def cosines(shoots: Sequence[Shoot]) -> str:
    """Median (5th–95th percentile) cosine of frames of one burst, of one scene's other bursts,
    and of other scenes: how far apart the embedding puts them."""
    parts: dict[str, list[np.ndarray]] = {"same burst": [], "same scene, other burst": [], "other scenes": []}
    for shoot in shoots:
        has = shoot.inputs.has_embedding
        emb = shoot.inputs.embeddings[has].astype(np.float64)
        sims = emb @ emb.T
        b, s = shoot.burst[has], shoot.scene[has]
        same_b, same_s = b[:, None] == b[None, :], s[:, None] == s[None, :]
        upper = np.triu(np.ones_like(same_b), 1).astype(bool)
        parts["same burst"].append(sims[same_b & upper])
        parts["same scene, other burst"].append(sims[same_s & ~same_b & upper])
        parts["other scenes"].append(sims[~same_s & upper])
    out = []
    for name, chunks in parts.items():
        v = np.concatenate(chunks)
        p5, p50, p95 = np.percentile(v, [5, 50, 95])
        out.append(f"{name} {p50:.4f} ({p5:.4f}–{p95:.4f})")
    return "; ".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one shoot of 4 scenes (a smoke run)")
    ap.add_argument("--shoots", type=int, default=None, help="shoots (seeds) pooled (default 3; --quick 1)")
    ap.add_argument("--scenes", type=int, default=None, help="scenes per shoot (default 12; --quick 4)")
    ap.add_argument(
        "--models", default=",".join(MODELS), help=f"tiny models to embed with (default: {','.join(MODELS)})"
    )
    ap.add_argument("--out", type=Path, default=None, help="keep the shoots' JPEGs and catalogs here")
    args = ap.parse_args(argv)
    n_shoots = args.shoots or (1 if args.quick else 3)
    n_scenes = args.scenes or (4 if args.quick else 12)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        ap.error(f"unknown model {', '.join(unknown)}; choose from {', '.join(MODELS)}")

    print(f"machine: {cpu_description()}")
    default = GroupParams()
    print(f"GroupParams defaults: {default}")
    with tempfile.TemporaryDirectory(prefix="grouping-") as tmp:
        root = args.out or Path(tmp)
        truths = []
        for seed in range(n_shoots):
            started = time.perf_counter()
            truth = make_shoot(root / f"shoot-{seed}", n_scenes, seed)
            truths.append(truth)
            kinds = {k: sum(t.kind == k for t in truth) for k in ("burst", "single", BRACKET)}
            print(
                f"shoot {seed}: {len(truth)} photos ({kinds['burst']} in bursts, {kinds['single']} "
                f"singles, {kinds[BRACKET]} bracket frames), {len({t.burst for t in truth})} "
                f"burst-level groups, {n_scenes} scenes; made in {time.perf_counter() - started:.1f} s"
            )
        for model in models:
            scorer = tiny_scorer(MODELS[model])
            stored: list[Shoot] = []
            offset = 0
            started = time.perf_counter()
            for seed, truth in enumerate(truths):
                catalog = Catalog(root / f"catalog-{model}-{seed}.sqlite")
                try:
                    inputs = index_shoot(catalog, root / f"shoot-{seed}", scorer)
                finally:
                    catalog.close()
                stored.append(prepare(truth, inputs, offset))
                offset += len(truth) + 1
            indexed = time.perf_counter() - started
            print(f"\n## {model} (random weights, seeded; fp32 CPU): indexed in {indexed:.1f} s")
            for variant in ("stored", "centred"):
                shoots = (
                    stored
                    if variant == "stored"
                    else [replace(sh, inputs=centred(sh.inputs)) for sh in stored]
                )
                what = (
                    "the stored embeddings, as the product groups them"
                    if variant == "stored"
                    else "centred (the shoot's mean embedding taken off): a stand-in, not the product"
                )
                print(f"\n### {model}, {what}\n")
                print(f"cosines: {cosines(shoots)}")
                started = time.perf_counter()
                bursts = sweep(shoots, "burst", BURST_SIMILARITY, BURST_GAP, default)
                report("burst", bursts, (default.burst_similarity, default.burst_gap))
                sim, gap = best_of(bursts)
                at_best = replace(default, burst_similarity=sim, burst_gap=gap)
                print(
                    f"\n(scenes below are built on the bursts of the best burst setting, {sim:g} / {gap:g} s)"
                )
                scenes = sweep(shoots, "scene", SCENE_SIMILARITY, SCENE_GAP, at_best)
                report("scene", scenes, (default.scene_similarity, default.scene_gap))
                elapsed = time.perf_counter() - started
                b, sc, found, total = evaluate(shoots, default)
                print(
                    f"\nat the defaults: bursts ARI {b.ari:.3f}, scenes ARI {sc.ari:.3f}; "
                    f"brackets found whole: {found} of {total}"
                )
                runs = len(bursts) + len(scenes)
                photos = sum(len(sh.inputs) for sh in shoots)
                print(f"{runs} groupings of {photos} photos: {1000 * elapsed / runs:.1f} ms each")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
