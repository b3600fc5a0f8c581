"""How fast natural-language search answers on a 20,000-photo catalog (culling/search.py).

    .venv/bin/python benchmarks/search.py              # 20,000 photos, D = 1024 and 512, 7 runs each
    .venv/bin/python benchmarks/search.py --quick      # 2,000 photos, 3 runs: a smoke run

A real SQLite catalog is built per embedding width in a temporary folder: N photos written through
`Catalog.write_batch` (as indexing writes them) with random unit float16 embeddings of D = 1024
(RN50, ViT-L-14) and 512 (ViT-B-32/16), and one cached text feature. Then, median of the runs:

  cold  what the first search of a shoot costs: `ShootEmbeddings.load` (Catalog.embeddings reads
        and converts every row, then unit-normalises) + the text feature from the catalog's cache +
        the product + the full argsort;
  warm  a further search of the same photos, the embeddings kept (the window keeps them): the
        text feature from the cache + the product + the argsort;
  cli   (once, not with --quick) the whole `clipiqa-desktop search FOLDER TEXT` command in a new
        process: interpreter start, imports, catalog open, the cold path and the paths of the top 20.

A text never searched needs the text tower: the encode time of the TINY random test network is
printed, labelled as such; a real model's text tower (RN50: a 12-layer transformer) costs more and
its load costs seconds, which is why features are cached. CPU and load are printed: on a shared
machine compare figures within one run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from machine import cpu_description  # noqa: E402

from clipiqa_desktop.catalog import Catalog  # noqa: E402
from clipiqa_desktop.catalog.records import PhotoRecord  # noqa: E402
from clipiqa_desktop.culling.search import ShootEmbeddings, rank, text_feature  # noqa: E402

TINY = REPO / "tests" / "data" / "tiny-rn.json"
MODEL_ID = "bench/none"
TEXT = "bride laughing"


def build(path: Path, folder: Path, n: int, dim: int, seed: int = 0) -> tuple[int, int, float]:
    """A catalog of n photos with random unit float16 embeddings; (folder id, analysis id, seconds)."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    catalog = Catalog(path)
    try:
        folder_id = catalog.folder_id(folder)
        assert folder_id is not None
        analysis_id = catalog.analysis_id(MODEL_ID, "512", embed_dim=dim, logit_scale=100.0)
        assert analysis_id is not None
        for start in range(0, n, 2000):
            count = min(2000, n - start)
            emb = rng.normal(size=(count, dim)).astype(np.float32)
            emb /= np.linalg.norm(emb, axis=1, keepdims=True)
            records = [
                PhotoRecord(
                    f"DSC_{start + i:05d}.JPG",
                    8_000_000,
                    1,
                    scores={"quality": 0.5, "sharpness": 0.5},
                    embedding=emb[i],
                )
                for i in range(count)
            ]
            catalog.write_batch(folder_id, analysis_id, records)
        catalog.set_last_analysis(folder_id, analysis_id)
        catalog.store_text_features(MODEL_ID, {TEXT: rng.normal(size=dim).astype(np.float32)})
    finally:
        catalog.close()
    return folder_id, analysis_id, time.perf_counter() - started


def median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def no_model(texts: list[str]) -> np.ndarray:
    raise AssertionError("the benchmark's text is cached")


def measure(n: int, dim: int, runs: int, cli: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="clipiqa-search-") as tmp:
        db, folder = Path(tmp) / "catalog.sqlite", Path(tmp) / "shoot"
        folder.mkdir()
        folder_id, analysis_id, built = build(db, folder, n, dim)
        catalog = Catalog(db, create=False)
        try:
            kept = ShootEmbeddings.load(catalog, [folder_id], analysis_id)
            assert len(kept) == n

            def load() -> object:
                return ShootEmbeddings.load(catalog, [folder_id], analysis_id)

            def feature() -> np.ndarray:
                return text_feature(catalog, MODEL_ID, TEXT, no_model)

            f = feature()

            def product() -> object:
                return rank(kept, f, TEXT)

            result = rank(kept, f, TEXT)

            def order() -> object:
                return result.ranking()

            def cold() -> object:
                embeddings = ShootEmbeddings.load(catalog, [folder_id], analysis_id)
                return rank(embeddings, feature(), TEXT).ranking()

            def warm() -> object:
                return rank(kept, feature(), TEXT).ranking()

            out = {
                "build_s": built,
                "load_ms": median_ms(load, runs),
                "feature_ms": median_ms(feature, runs),
                "product_ms": median_ms(product, runs),
                "argsort_ms": median_ms(order, runs),
                "cold_ms": median_ms(cold, runs),
                "warm_ms": median_ms(warm, runs),
                "kept_mb": kept.unit.nbytes / 2**20,
            }
        finally:
            catalog.close()
        if cli:
            t = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "clipiqa_desktop", "search", str(folder), TEXT, "--catalog", str(db)],
                capture_output=True,
                text=True,
                cwd=REPO,
            )
            out["cli_s"] = time.perf_counter() - t
            assert proc.returncode == 0, proc.stderr
        return out


def tiny_encode_ms(runs: int) -> tuple[float, float]:
    """(load seconds, median text-encode ms) of the tiny random test network, on the CPU."""
    from clipiqa_desktop.scoring import ClipIqaScorer, ModelSpec

    t = time.perf_counter()
    scorer = ClipIqaScorer.load(ModelSpec(str(TINY), "none"), device="cpu", precision="fp32", engine="torch")
    loaded = time.perf_counter() - t
    texts = [f"{TEXT} {i}" for i in range(runs)]  # a new text each run: the tower's text cache is per text
    times = []
    for text in texts:
        t = time.perf_counter()
        scorer.text_features([text])
        times.append(time.perf_counter() - t)
    return loaded, 1000 * statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=20_000)
    ap.add_argument("--dims", default="1024,512", help="embedding widths, comma-separated")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="2,000 photos, 3 runs, no CLI run")
    args = ap.parse_args()
    n, runs = (2_000, 3) if args.quick else (args.photos, args.runs)
    print(f"CPU: {cpu_description()}")
    print(f"{n:,} photos, median of {runs} runs, float32 numpy on the CPU\n")
    header = (
        f"{'D':>5}  {'build':>7}  {'load':>8}  {'text':>7}  {'product':>8}  {'argsort':>8}  "
        f"{'COLD':>8}  {'WARM':>8}  {'kept':>7}  {'cli':>6}"
    )
    print(header)
    for dim in (int(d) for d in args.dims.split(",")):
        r = measure(n, dim, runs, cli=not args.quick)
        cli = f"{r['cli_s']:5.2f}s" if "cli_s" in r else "     -"
        print(
            f"{dim:>5}  {r['build_s']:6.1f}s  {r['load_ms']:6.1f}ms  {r['feature_ms']:5.2f}ms  "
            f"{r['product_ms']:6.2f}ms  {r['argsort_ms']:6.2f}ms  {r['cold_ms']:6.1f}ms  "
            f"{r['warm_ms']:6.2f}ms  {r['kept_mb']:5.1f}MB  {cli}",
            flush=True,
        )
    print("\nbuild: writing the catalog (not part of a search); load: Catalog.embeddings + normalising;")
    print("text: the cached text feature; COLD = load + text + product + argsort; WARM = without load;")
    print("kept: the float32 unit embeddings the window keeps between searches; cli: the whole command")
    loaded, encode = tiny_encode_ms(runs)
    print(
        f"\nnew text (TINY random test network, not a real model): load {loaded:.2f} s, "
        f"text encode {encode:.1f} ms (median of {runs})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
