"""How right are the flags? Pixel measures and CLIP-IQA scores on a labelled set at camera resolution.

    .venv/bin/python benchmarks/flag_accuracy.py                       # 24 MP, 2 scenes: a few minutes
    .venv/bin/python benchmarks/flag_accuracy.py --size 1500x1000      # a quick run
    .venv/bin/python benchmarks/flag_accuracy.py --weights RN50.pt     # CLIP-IQA with real weights
    .venv/bin/python benchmarks/flag_accuracy.py --out /tmp/flags      # keep the JPEGs to look at

The set (benchmarks/defects.py): mosaics of scikit-image's sample photographs at their native
scale filling a camera frame, each with controlled defects (defocus σ, motion blur length and
angle, noise, ±EV, JPEG quality 10, a shallow depth of field that is a keeper), plus the astronaut's
portrait with open and with painted-shut eyes. Every photo is saved as a JPEG and measured through
the product's own path: `decode_photo(full=True)` (one decode: full resolution + the 512-px
analysis image), `measures.photo.measure_photo` for the pixel measures (timed one measure at a time
with its `keys`), and the CLIP-IQA scorer on the analysis image. Without `--weights` the CLIP model
is the tests' tiny random network: its rows are printed "random weights: meaningless here".

Printed (Markdown, pasted into the README): the machine; per attribute, Spearman's ρ between the
attribute and the strength of the defect it should track (pooled over the scenes, each scene's
clean original at strength 0), with the sign it should have; the issue's focus checks; per preset,
precision and recall against the labels (stated in the output) and which rejects it caught; the
time per photo of each measure.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the app does, before torch loads

import argparse
import datetime
import math
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.measures (the closed-eyes builder), tests/data (the tiny model)

from defects import (  # noqa: E402  (benchmarks/defects.py)
    CAMERA_SIZE,
    FACE_DEFECTS,
    LABELLING,
    Defect,
    LabelledPhoto,
    face_frame,
    labelled_set,
)
from machine import cpu_description  # noqa: E402  (benchmarks/machine.py)

from clipiqa_desktop.culling.presets import PRESETS, preset_mask  # noqa: E402
from clipiqa_desktop.imaging.decode import decode_photo  # noqa: E402
from clipiqa_desktop.measures.photo import faces_unavailable, measure_photo  # noqa: E402
from clipiqa_desktop.measures.registry import FACE_KEYS, PIXEL_KEYS, AttributeInfo, attribute_info  # noqa: E402

if TYPE_CHECKING:
    from clipiqa_desktop.scoring import ClipIqaScorer

TINY_RN = REPO / "tests" / "data" / "tiny-rn.json"
RANDOM_NOTE = "random weights: meaningless here"
MEASURE_GROUPS: dict[str, tuple[str, ...]] = {
    "focus": ("focus", "motion_blur", "noise"),  # noise: the level the focus pass discounts
    "exposure": ("highlights_clipped", "shadows_clipped"),
    "faces": FACE_KEYS,
}
_GROUPED = {k for keys in MEASURE_GROUPS.values() for k in keys}
if any(k not in _GROUPED for k in PIXEL_KEYS):  # a measure added since: timed on its own
    MEASURE_GROUPS["other pixel measures"] = tuple(k for k in PIXEL_KEYS if k not in _GROUPED)


@dataclass
class Row:
    """One measured photo."""

    photo: str
    scene: str
    defect: Defect
    values: dict[str, float] = field(default_factory=dict)

    def get(self, key: str) -> float:
        return self.values.get(key, math.nan)


@dataclass(frozen=True)
class Track:
    """An attribute that should follow a defect's strength: ρ(attribute, strength) has `sign`."""

    key: str
    kinds: tuple[str, ...]  # defect kinds in the series (with each scene's clean original at 0)
    sign: int  # +1: grows with the defect, -1: falls
    strength: Callable[[Defect], float] = lambda d: d.strength
    keep: Callable[[Defect], bool] = lambda d: True
    what: str = ""


TRACKS: tuple[Track, ...] = (
    Track("focus", ("defocus",), -1, what="defocus σ"),
    Track("focus", ("motion",), -1, what="motion length"),
    Track("focus", ("noise",), -1, what="noise σ (no higher than clean)"),
    Track("motion_blur", ("motion",), +1, what="motion length"),
    Track("noise", ("noise",), +1, what="noise σ"),
    Track("noise", ("defocus",), -1, what="defocus σ (blur is not noise: no higher than clean)"),
    Track("face_focus", ("defocus",), -1, what="defocus σ (faces found in the mosaic)"),
    Track("highlights_clipped", ("exposure",), +1, keep=lambda d: d.strength >= 0, what="+EV"),
    Track(
        "shadows_clipped",
        ("exposure",),
        +1,
        strength=lambda d: -d.strength,
        keep=lambda d: d.strength <= 0,
        what="−EV",
    ),
    Track("sharpness", ("defocus",), -1, what="defocus σ"),
    Track("sharpness", ("motion",), -1, what="motion length"),
    Track("noisiness", ("noise",), +1, what="noise σ"),
    Track("brightness", ("exposure",), +1, what="EV (−3 … +3)"),
    Track("quality", ("defocus",), -1, what="defocus σ"),
)


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's ρ with average ranks for ties; NaN when either side is constant or < 2 points."""
    from scipy.stats import rankdata

    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ok = ~(np.isnan(a) | np.isnan(b))
    a, b = a[ok], b[ok]
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    ra, rb = rankdata(a), rankdata(b)
    return float(np.corrcoef(ra, rb)[0, 1])


def track_series(rows: Sequence[Row], track: Track) -> tuple[list[float], list[float]]:
    """(strengths, values) of the track's defect pooled over the scenes, clean originals at 0."""
    xs, ys = [], []
    for r in rows:
        if r.defect.kind == "clean" or (r.defect.kind in track.kinds and track.keep(r.defect)):
            xs.append(0.0 if r.defect.kind == "clean" else track.strength(r.defect))
            ys.append(r.get(track.key))
    return xs, ys


# --- measuring ------------------------------------------------------------------------------------
class ClipScores:
    """The CLIP-IQA scorer on the analysis image (the indexer's path, one photo at a time)."""

    def __init__(self, scorer: ClipIqaScorer, random: bool) -> None:
        from clipiqa_desktop.scoring import BUILTIN_ATTRIBUTES

        self.scorer = scorer
        self.pairs = BUILTIN_ATTRIBUTES
        self.random = random
        self.description = f"{scorer.model_id} on {scorer.device} ({scorer.precision})" + (
            f" — {RANDOM_NOTE}" if random else ""
        )

    @classmethod
    def load(cls, weights: str | None, model: str | None, device: str, precision: str) -> ClipScores:
        """Real weights from `weights`, else the tests' tiny random network (seeded)."""
        import torch

        from clipiqa_desktop.scoring import ClipIqaScorer, ModelSpec

        if weights:
            spec = ModelSpec.from_options(model, None, weights)
        else:
            torch.manual_seed(0)
            spec = ModelSpec(model or str(TINY_RN), "none")
        return cls(ClipIqaScorer.load(spec, device=device, precision=precision), random=not weights)

    def __call__(self, image: object) -> dict[str, float]:
        from clipiqa_desktop.scoring.engine import image_to_tensor, pad_to_min_side

        tensor = pad_to_min_side(image_to_tensor(image), self.scorer.min_side)
        return self.scorer.score_batch(tensor[None], self.pairs)[0].scores


def measure(
    path: Path, clip: ClipScores | None, groups: dict[str, tuple[str, ...]], analysis_size: int
) -> tuple[dict[str, float], dict[str, float]]:
    """(values, seconds per step) of one saved photo, through the product's path."""
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    decoded = decode_photo(path, analysis_size, full=True)
    seconds["decode (full + analysis)"] = time.perf_counter() - t
    full = decoded.full if decoded.full is not None else decoded.image
    # measure_photo copies the image into numpy once per call; the indexer calls it once per photo,
    # here once per measure: that copy is timed on its own and taken out of each measure's time.
    t = time.perf_counter()
    measure_photo(full, decoded.image, keys=())
    copy = time.perf_counter() - t
    seconds["image → numpy (once per photo)"] = copy
    values: dict[str, float] = {}
    for name, keys in groups.items():
        t = time.perf_counter()
        values.update(measure_photo(full, decoded.image, keys=keys))
        seconds[name] = max(0.0, time.perf_counter() - t - copy)
    if clip is not None:
        t = time.perf_counter()
        values.update(clip(decoded.image))
        seconds[f"CLIP-IQA at {analysis_size} px"] = time.perf_counter() - t
    return values, seconds


def run_set(
    photos: Iterable[LabelledPhoto],
    folder: Path,
    clip: ClipScores | None,
    groups: dict[str, tuple[str, ...]],
    analysis_size: int,
    progress: Callable[[str], None] = lambda s: None,
) -> tuple[list[Row], dict[str, list[float]]]:
    from PIL import Image

    rows: list[Row] = []
    times: dict[str, list[float]] = {}
    for item in photos:
        path = folder / f"{item.name}.jpg"
        Image.fromarray(item.rgb).save(path, quality=item.defect.quality)
        values, seconds = measure(path, clip, groups, analysis_size)
        rows.append(Row(item.name, item.scene, item.defect, values))
        for k, s in seconds.items():
            times.setdefault(k, []).append(s)
        progress(item.name)
    return rows, times


# --- the report -----------------------------------------------------------------------------------
def _fmt(v: float, digits: int = 2) -> str:
    return "–" if math.isnan(v) else f"{v:+.{digits}f}"


def track_table(rows: Sequence[Row], clip_random: bool | None) -> list[str]:
    out = [
        "| attribute | defect strength | n | Spearman ρ | should be | |",
        "|---|---|---:|---:|---|---|",
    ]
    for t in TRACKS:
        info = attribute_info(t.key)
        xs, ys = track_series(rows, t)
        n = sum(1 for y in ys if not math.isnan(y))
        rho = spearman(xs, ys)
        if n == 0:
            note = "not measured"
        elif not info.pixel and clip_random:
            note = RANDOM_NOTE
        elif math.isnan(rho):
            note = "constant"
        else:
            note = "ok" if rho * t.sign > 0 else "WRONG SIGN"
        sign = "> 0" if t.sign > 0 else "< 0"
        out.append(f"| {info.label} | {t.what} | {n} | {_fmt(rho)} | {sign} | {note} |")
    return out


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """P(a positive's value > a negative's), ties counting half; NaN without both."""
    p = np.array([v for v in positives if not math.isnan(v)])
    n = np.array([v for v in negatives if not math.isnan(v)])
    if p.size == 0 or n.size == 0:
        return math.nan
    return float(
        ((p[:, None] > n[None, :]).sum() + 0.5 * (p[:, None] == n[None, :]).sum()) / (p.size * n.size)
    )


def focus_checks(rows: Sequence[Row]) -> list[str]:
    """The issue's checks: ρ(−σ, focus) ≥ 0.9; noise (and JPEG q10) no higher than clean; shallow DoF
    above σ 2; and whether `motion_blur` tells motion blur from defocus."""
    xs, ys = track_series(rows, TRACKS[0])
    rho = -spearman(xs, ys)
    verdict = "ok" if rho >= 0.9 else "NOT MET"
    lines = [f"- ρ(−σ, focus) over defocus σ 0…5 = {_fmt(rho)} (wanted ≥ 0.90): {verdict}"]
    for scene in sorted({r.scene for r in rows if r.scene.startswith("scene")}):
        by = {r.defect.name: r.get("focus") for r in rows if r.scene == scene}
        clean = by.get("clean", math.nan)
        parts = [f"focus clean {clean:.3f}"]
        noisy = [v for k, v in by.items() if k.startswith("noise")]
        if noisy:
            higher = any(not v <= clean for v in noisy)
            verdict = "HIGHER than clean" if higher else "no higher: ok"
            parts.append(f"noisy {' / '.join(f'{v:.3f}' for v in noisy)} ({verdict})")
        if "jpeg-10" in by:
            verdict = "no higher: ok" if by["jpeg-10"] <= clean else "HIGHER than clean"
            parts.append(f"JPEG q10 {by['jpeg-10']:.3f} ({verdict})")
        if "shallow-dof" in by and "defocus-2" in by:
            dof, soft = by["shallow-dof"], by["defocus-2"]
            verdict = "ok" if dof > soft else "NOT ranked above"
            parts.append(f"shallow DoF {dof:.3f} vs σ 2 {soft:.3f} ({verdict})")
        lines.append(f"- {scene}: {'; '.join(parts)}")
    motion = [r.get("motion_blur") for r in rows if r.defect.kind == "motion" and r.defect.reject]
    defocused = [r.get("motion_blur") for r in rows if r.defect.kind == "defocus" and r.defect.reject]
    a = auc(motion, defocused)
    lines.append(
        f"- motion blur told from defocus (rejects of each): AUC of `motion_blur` = {_fmt(a)} "
        "(1 = always higher on motion blur, 0.5 = chance)"
    )
    return lines


def attribute_table(rows: Sequence[Row], keys: Sequence[str], clip_random: bool | None) -> list[str]:
    """Every attribute: how many photos have it, its mean on the keepers and on the rejects."""
    out = ["| attribute | measured | mean on keepers | mean on rejects | |", "|---|---:|---:|---:|---|"]
    for key in keys:
        info = attribute_info(key)
        keep = [r.get(key) for r in rows if not r.defect.reject]
        rej = [r.get(key) for r in rows if r.defect.reject]
        n = sum(1 for v in keep + rej if not math.isnan(v))

        def mean(vs: list[float], info: AttributeInfo = info) -> str:
            vs = [v for v in vs if not math.isnan(v)]
            return info.format(float(np.mean(vs))) if vs else "–"

        note = RANDOM_NOTE if not info.pixel and clip_random else ("not measured" if n == 0 else "")
        out.append(f"| {info.label} | {n}/{len(rows)} | {mean(keep)} | {mean(rej)} | {note} |")
    return out


def _blurred(d: Defect) -> bool:
    return d.reject and d.kind in ("defocus", "motion")


def _bright(d: Defect) -> bool:
    return d.reject and d.kind == "exposure" and d.strength > 0


def _dark(d: Defect) -> bool:
    return d.reject and d.kind == "exposure" and d.strength < 0


def _any_reject(d: Defect) -> bool:
    return d.reject


# The defect each preset is named for (its own truth, beside the reject labels).
PRESET_DEFECTS: dict[str, tuple[str, Callable[[Defect], bool]]] = {
    "Out of focus": ("defocus σ ≥ 2, motion ≥ 15", _blurred),
    "Face out of focus": ("defocus σ ≥ 2, motion ≥ 15", _blurred),
    "Blurry (CLIP-IQA)": ("defocus σ ≥ 2, motion ≥ 15", _blurred),
    "Eyes closed": ("eyes closed", lambda d: d.kind == "face" and d.reject),
    "Blown highlights": ("+2/+3 EV", _bright),
    "Too bright (CLIP-IQA)": ("+2/+3 EV", _bright),
    "Crushed shadows": ("−3 EV", _dark),
    "Too dark (CLIP-IQA)": ("−3 EV", _dark),
    "Noisy": ("noise σ ≥ 8 (keepers)", lambda d: d.kind == "noise" and d.strength >= 8),
    "Noisy (CLIP-IQA)": ("noise, any level (keepers)", lambda d: d.kind == "noise"),
}


def _share(k: int, n: int) -> str:
    return "–" if n == 0 else f"{k / n:.2f}"


def preset_table(rows: Sequence[Row], clip_random: bool | None) -> list[str]:
    """Per preset: precision and recall against the reject labels; how many photos with the defect
    the preset is named for it caught, and which share of its flags have that defect."""
    n = len(rows)
    columns = {k: np.array([r.get(k) for r in rows], dtype=np.float64) for r in rows for k in r.values}
    truth = np.array([r.defect.reject for r in rows])
    out = [
        "| preset | flagged | precision | recall | its defect | caught | of its flags | keepers flagged |",
        "|---|---:|---:|---:|---|---:|---:|---|",
    ]
    for preset in PRESETS:
        missing = [a for a in preset.attributes if a not in columns]
        mask = preset_mask(preset, columns, n)
        flagged = int(mask.sum())
        tp = int((mask & truth).sum())
        what, own_of = PRESET_DEFECTS.get(preset.name, ("any reject", _any_reject))
        own = np.array([own_of(r.defect) for r in rows])
        false = [rows[int(i)].photo for i in np.flatnonzero(mask & ~truth)]
        keepers = ", ".join(false[:3]) + (f" (+{len(false) - 3})" if len(false) > 3 else "")
        name = preset.name
        if missing:
            name += f" (no {', '.join(missing)})"
        elif clip_random and any(not attribute_info(a).pixel for a in preset.attributes):
            name += f" ({RANDOM_NOTE})"
        out.append(
            f"| {name} | {flagged} | {_share(tp, flagged)} | {_share(tp, int(truth.sum()))} | {what} "
            f"| {int((mask & own).sum())}/{int(own.sum())} | {_share(int((mask & own).sum()), flagged)} "
            f"| {keepers or '–'} |"
        )
    return out


def time_table(times: dict[str, list[float]], size: tuple[int, int]) -> list[str]:
    out = [f"| step (per photo, {size[0]}×{size[1]} JPEG) | mean s | max s |", "|---|---:|---:|"]
    for k, v in times.items():
        out.append(f"| {k} | {np.mean(v):.3f} | {np.max(v):.3f} |")
    return out


def values_table(rows: Sequence[Row], keys: Sequence[str]) -> list[str]:
    labels = [attribute_info(k).label for k in keys]
    out = ["| photo | reject | " + " | ".join(labels) + " |", "|---|---|" + "---:|" * len(keys)]
    for r in rows:
        cells = [attribute_info(k).format(r.get(k)) for k in keys]
        out.append(f"| {r.photo} | {'yes' if r.defect.reject else ''} | " + " | ".join(cells) + " |")
    return out


def report(
    rows: Sequence[Row],
    times: dict[str, list[float]],
    size: tuple[int, int],
    clip: ClipScores | None,
    notes: Sequence[str],
    per_photo: bool,
    machine: str,
) -> str:
    import torch

    clip_random = None if clip is None else clip.random
    attribute_keys = [*PIXEL_KEYS, *(() if clip is None else (p.key for p in clip.pairs))]
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    head = [
        f"Flag accuracy — {date}, {platform.python_implementation()} {platform.python_version()}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads)",
        f"Machine: {machine} (at the start); load average at the end "
        + ", ".join(f"{v:.1f}" for v in os.getloadavg()),
        f"Set: {len(rows)} photos at {size[0]}×{size[1]} "
        f"({sum(r.defect.reject for r in rows)} labelled rejects); "
        f"CLIP-IQA: {clip.description if clip else 'not run'}",
        f"Labels: {LABELLING}",
        *notes,
    ]
    lines = [  # Markdown: paste it as it is
        *(f"- {line}" for line in head),
        "",
        "Spearman ρ of each attribute against the strength of the defect it should track "
        "(pooled over the scenes, each scene's clean original at strength 0):",
        "",
        *track_table(rows, clip_random),
        "",
        "Every attribute:",
        "",
        *attribute_table(rows, attribute_keys, clip_random),
        "",
        "Focus checks:",
        "",
        *focus_checks(rows),
        "",
        "Presets against the labels (absolute thresholds, as `list --where` and the panel's default):",
        "",
        *preset_table(rows, clip_random),
        "",
        "Time:",
        "",
        *time_table(times, size),
    ]
    if per_photo:
        keys = [
            k
            for k in (*PIXEL_KEYS, "sharpness", "brightness", "noisiness", "quality")
            if any(k in r.values for r in rows)
        ]
        lines += ["", "Every photo:", "", *values_table(rows, keys)]
    return "\n".join(lines)


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size takes WIDTHxHEIGHT, e.g. 6000x4000, not {text!r}") from None
    if w < 600 or h < 400:
        raise argparse.ArgumentTypeError("--size must be at least 600x400 (two rows of photographs)")
    return w, h


def main(argv: Sequence[str] | None = None, scorer: ClipIqaScorer | None = None) -> int:
    """The benchmark; `scorer` (tests: the session's tiny model) replaces the one --weights loads."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--size", type=parse_size, default=CAMERA_SIZE, help="frame WIDTHxHEIGHT (default 6000x4000)"
    )
    ap.add_argument("--scenes", type=int, default=2, help="mosaic scenes, 26 photos each (default 2)")
    ap.add_argument("--out", type=Path, default=None, help="keep the labelled JPEGs in this folder")
    ap.add_argument("--weights", default=None, help="real CLIP weights file (default: tiny random model)")
    ap.add_argument("--model", default=None, help="architecture for --weights (default RN50)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--analysis-size", type=int, default=512)
    ap.add_argument("--no-clip", action="store_true", help="pixel measures only")
    ap.add_argument("--no-faces", action="store_true", help="leave the face frames and face measures out")
    ap.add_argument(
        "--defects",
        default=None,
        help="only these defects, comma-separated names as printed (clean,defocus-3,face-eyes-open)",
    )
    ap.add_argument("--per-photo", action="store_true", help="also print every photo's values")
    args = ap.parse_args(argv)

    try:
        import scipy  # noqa: F401
        import skimage.data  # noqa: F401
    except ImportError as exc:
        print(f"flag_accuracy: {exc.name} is missing: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    notes: list[str] = []
    groups = dict(MEASURE_GROUPS)
    faces = not args.no_faces
    why = faces_unavailable()
    if faces and why is not None:
        notes.append(f"Faces not measured: {why}")
        faces = False
    if not faces:
        groups.pop("faces")
    faces_in_set: tuple[Defect, ...] = FACE_DEFECTS if faces else ()
    if faces:
        try:
            face_frame(eyes_closed=True)
        except RuntimeError as exc:
            notes.append(f"Closed-eyes frame left out: {exc}")
            faces_in_set = FACE_DEFECTS[:1]
        notes.append(
            "Face frames: the astronaut at its native 512 px (no upscaling); closed eyes painted shut"
        )

    if args.no_clip:
        clip = None
    elif scorer is not None:
        clip = ClipScores(scorer, random=not args.weights)
    else:
        from clipiqa_desktop.scoring.errors import ScoringError

        try:
            clip = ClipScores.load(args.weights, args.model, args.device, args.precision)
        except ScoringError as exc:
            print(f"flag_accuracy: {exc}", file=sys.stderr)
            return 2
    wanted = set(args.defects.split(",")) if args.defects else None

    def items() -> Iterator[LabelledPhoto]:
        kept = (lambda d: d.name in wanted) if wanted else None
        yield from labelled_set(args.size, args.scenes, faces=False, keep=kept)
        for d in faces_in_set:
            if wanted is None or d.name in wanted:
                rgb, _ = face_frame(bool(d.strength))
                yield LabelledPhoto(d.name, "face", d, rgb)

    machine = cpu_description()
    started = time.perf_counter()
    count = [0]

    def progress(name: str) -> None:
        count[0] += 1
        print(f"  [{count[0]}] {name} ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="flag-accuracy-") as tmp:
        folder = args.out or Path(tmp)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(f"flag_accuracy: cannot use --out {folder}: {exc.strerror}", file=sys.stderr)
            return 2
        rows, times = run_set(items(), folder, clip, groups, args.analysis_size, progress)
    total = time.perf_counter() - started
    notes.append(f"Whole run: {total:.0f} s (making the set and saving the JPEGs included)")
    print(report(rows, times, args.size, clip, notes, args.per_photo, machine))
    return 0


if __name__ == "__main__":
    sys.exit(main())
