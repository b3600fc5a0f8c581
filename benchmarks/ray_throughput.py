"""The Ray path against the local path: `index` of the same 24 MP photos on the same cores.

    .venv/bin/python benchmarks/ray_throughput.py            # 4 and 8 photos (~4 min on 2 busy cores)
    .venv/bin/python benchmarks/ray_throughput.py --quick    # 2 and 4 photos (a smoke run)

Needs the [cluster] extra. A Ray head is started on loopback (`ray start --head`, as many CPUs as
this machine has, its own temp dir and token) and timed apart: "cluster start" is `ray start` until
`ray status` sees the node, "connect" is this process's ray.init. Then, on the first N/2 and N
photos of benchmarks/index_throughput.py's cached shoot, in ABBA order (local N/2, Ray N/2, Ray N,
local N), into a fresh catalog each time, every pixel measure on, RN50 with random weights (speed
does not depend on their values) at 512 px, a commit every 2 photos:

- local: `index_folder` with the model already loaded (the window's and `index`'s path);
- ray: `index_folder` with `RayScoring` (`index --ray`): decode tasks and one scoring actor per 4
  CPUs (at least one), the driver writing the catalog. Each run builds its actors and loads the
  model in them, which is part of what a run on Ray costs.

A first Ray job on the fresh cluster (its worker processes start) is timed apart, as the local
path gets a warm-up run. Printed: the CPU (model, SIMD flags, load), the precision, each run's wall
time, and from the two sizes of each path its seconds per photo (the slope) and fixed seconds per
run (the intercept):
what Ray adds per photo (the hand-over between processes, the object store) and per run (the job's
start). Only ratios within one run mean something on a shared machine.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the app does, before torch loads
# Before ray is first imported (it reads them then): every Ray process of this run on 127.0.0.1
os.environ.update(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_USAGE_STATS_ENABLED="0")

import argparse
import contextlib
import importlib.util
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from index_throughput import make_shoot  # benchmarks/ (this script's folder is on sys.path)
from machine import cpu_description

from clipiqa_desktop.catalog import Catalog
from clipiqa_desktop.indexing.pipeline import IndexOptions, index_folder
from clipiqa_desktop.scoring import LazyScorer, ModelSpec

SPEC = ModelSpec("RN50", "none")


@dataclass
class Run:
    photos: int
    wall: float  # the whole index_folder call

    @property
    def rate(self) -> float:
        return self.photos / self.wall


def index_once(folder: Path, scorer: LazyScorer, scoring: object | None) -> Run:
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Catalog(Path(tmp) / "c.sqlite")
        start = time.perf_counter()
        summary = index_folder(
            catalog,
            scorer,
            folder,
            IndexOptions(long_side=512, batch_size=2),
            scoring=scoring,  # type: ignore[arg-type]
        )
        wall = time.perf_counter() - start
        catalog.close()
    if summary.failed or summary.indexed == 0:
        sys.exit(f"indexing failed: {summary.failed[:3]}")
    return Run(summary.indexed, wall)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def ray_head(cpus: int):
    """(address, seconds to start) of a Ray head on loopback, its process group ended afterwards."""
    temp = tempfile.mkdtemp(prefix="raybench", dir="/tmp")
    token = Path(temp) / "auth_token"
    token.write_text(secrets.token_hex(32))
    # the head's and this process's (set before this process first imports ray, in connect)
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
    ray_bin = str(Path(sys.executable).with_name("ray"))
    port = _free_port()
    address = f"127.0.0.1:{port}"
    start = time.perf_counter()
    proc = subprocess.Popen(
        [
            *(ray_bin, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}"),
            *(f"--num-cpus={cpus}", "--num-gpus=0", f"--temp-dir={temp}", "--include-dashboard=false"),
        ],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            status = subprocess.run(
                [ray_bin, "status", f"--address={address}"], capture_output=True, text=True, timeout=60
            )
            if status.returncode == 0 and "CPU" in status.stdout:
                break
            if proc.poll() is not None or time.perf_counter() - start > 180:
                sys.exit(f"the Ray head did not start: {status.stderr[-300:]}")
            time.sleep(0.5)
        yield address, time.perf_counter() - start
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            time.sleep(1)
            os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=8, help="24 MP JPEGs of the larger run (default 8)")
    ap.add_argument("--quick", action="store_true", help="2 and 4 photos (a smoke run)")
    args = ap.parse_args()
    if args.quick:
        args.photos = 4
    small, large = max(1, args.photos // 2), args.photos
    if importlib.util.find_spec("ray") is None:  # not imported here: Ray reads its settings then
        sys.exit("needs the [cluster] extra: pip install -e '.[cluster]'")
    from clipiqa_desktop.cluster.connect import connect, disconnect
    from clipiqa_desktop.cluster.ray_scoring import ModelArgs, RayScoring

    cores = os.cpu_count() or 1
    source = sorted(make_shoot(12).glob("*.JPG"))
    walls: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        shoots = {}
        for n in (small, large):
            shoots[n] = Path(tmp) / f"shoot-{n}"
            shoots[n].mkdir()
            for p in source[:n]:
                (shoots[n] / p.name).symlink_to(p)
        local = LazyScorer(SPEC, "cpu", "auto", "torch")
        local.get()  # loaded once, before the clock: the local path keeps its model between runs
        index_once(shoots[small], local, None)  # warm-up: first calls, the face models, caches
        facts = LazyScorer(SPEC, "cpu", "fp32", "torch")  # the Ray driver's: id and sizes only
        facts.get()
        with ray_head(cores) as (address, started):
            t = time.perf_counter()
            cluster = connect(address)
            connected = time.perf_counter() - t
            scoring = RayScoring(cluster, ModelArgs(SPEC, "cpu", "auto", "torch", batch_size=2))
            # the first job on a fresh cluster also starts its worker processes (imports torch ...)
            first_job = index_once(shoots[small], facts, scoring).wall
            # ABBA: local small, ray small, ray large, local large
            for path, n in (("local", small), ("ray", small), ("ray", large), ("local", large)):
                run = (
                    index_once(shoots[n], local, None)
                    if path == "local"
                    else index_once(shoots[n], facts, scoring)
                )
                walls[(path, n)] = run.wall
                print(f"  {path}, {n} photos: {run.wall:.1f} s ({run.rate:.2f} photos/s)", file=sys.stderr)
            disconnect()

    # wall = fixed + n × per photo, from the two sizes of each path
    per_photo = {p: (walls[(p, large)] - walls[(p, small)]) / (large - small) for p in ("local", "ray")}
    fixed = {p: walls[(p, large)] - large * per_photo[p] for p in ("local", "ray")}
    print("\n## Ray path against the local path (24 MP JPEGs, 512 px, every pixel measure, RN50 random)\n")
    print(f"- {cpu_description()}; {cores} CPUs")
    print(f"- local: {local.get().describe()}; Ray actors: the same model, precision and engine")
    print(f"- {scoring.describe()}; a commit every 2 photos on both paths")
    print(
        f"- cluster start (`ray start --head` until `ray status` sees it): {started:.1f} s; "
        f"connect (ray.init): {connected:.1f} s; the first job on the fresh cluster ({small} photos, "
        f"its worker processes started): {first_job:.1f} s, not counted below\n"
    )
    print(
        f"| path | {small} photos: wall s | {large} photos: wall s | photos/s at {large} | "
        "s per photo | fixed s |"
    )
    print("|---|---|---|---|---|---|")
    for p in ("local", "ray"):
        print(
            f"| {p} | {walls[(p, small)]:.1f} | {walls[(p, large)]:.1f} | {large / walls[(p, large)]:.2f} | "
            f"{per_photo[p]:.2f} | {fixed[p]:.1f} |"
        )
    overall = (walls[("ray", large)] - walls[("local", large)]) / large * 1000
    print(
        f"\nRay adds {(per_photo['ray'] - per_photo['local']) * 1000:.0f} ms per photo (the slope) and "
        f"{fixed['ray'] - fixed['local']:.1f} s per run (the job's start: actors, the model loaded in them); "
        f"over the {large}-photo run, {overall:.0f} ms per photo in all."
    )


if __name__ == "__main__":
    main()
