"""Run every reliability case of issue 7 against the real CLI and write docs/reliability.md.

    .venv/bin/python benchmarks/reliability.py                    # ~5-10 minutes on 2 CPU cores
    .venv/bin/python benchmarks/reliability.py --only hostile,kills --out /tmp/r.md
    .venv/bin/python benchmarks/reliability.py --memory           # also (re)run memory_50k.py first

Every case runs `python -m clipiqa_desktop …` as a user would, on real files written for the run
(tests/hostile.py, tests/kills.py), with the tiny random test model on the CPU (scores are
meaningless; what is checked is what happens to files, runs and the catalog). Each section of the
report says the case, what happened and the figures, and whether it passed its stated criterion;
a case that fails is written down as FAIL, not left out. Any "Traceback" in any command's output is
a failure of its case. The 50,000-photo memory figures are read from benchmarks/memory_50k.py's
JSON (benchmarks/.cache/memory_50k.json) when it exists. Mounting a small or read-only file system
needs root; without it those cases say "not run" and why.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))  # tests.hostile, tests.kills: the same files and harness as the tests

from memory_50k import RESULT as MEMORY_RESULT  # noqa: E402
from memory_50k import machine, machine_line  # noqa: E402

from tests.conftest import TINY_ARGS, photo  # noqa: E402
from tests.hostile import (  # noqa: E402
    make_symlink_loop,
    pull_card,
    replace_file,
    write_hostile_shoot,
)
from tests.kills import (  # noqa: E402
    NO_CATALOG,
    committed,
    integrity,
    kill_in_migration,
    kill_loop,
    make_card,
    query,
)

DOC = REPO / "docs" / "reliability.md"
MODEL = TINY_ARGS[:-2]  # the tiny model on the CPU, precision left to the program ("auto")
CASES = ("hostile", "symlink", "changing", "pulled", "kills", "concurrency", "full", "readonly", "memory")


@dataclass
class Section:
    key: str
    title: str
    case: str  # what is done, in a sentence or two
    criterion: str  # what counts as passing
    ok: bool | None = None  # None: not run
    headline: str = ""  # one line for the summary table
    lines: list[str] = field(default_factory=list)  # markdown: what happened, figures

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)


@dataclass
class Run:
    """One CLI call and what came back."""

    args: list[str]
    rc: int
    out: str
    err: str
    seconds: float


SPECS: dict[str, tuple[str, str, str]] = {  # key: (title, the case, what counts as passing)
    "hostile": (
        "Hostile files through `score` and `index`",
        (
            "The hostile shoot of tests/hostile.py (real files: broken, tiny, extreme shapes, odd colour "
            "modes and bit depths, animations, HEIC, MPO, awkward names) is given to `score` file by file and"
            " indexed with `index`; `list --format json` shows what the catalog recorded."
        ),
        (
            "every file expected to score is scored by both commands; every broken file is recorded as failed"
            " with its reason; `score` rows come in input order; no traceback; neither run stops."
        ),
    ),
    "symlink": (
        "A symlink loop under `--recursive`",
        (
            "A shoot of 20 JPEGs with `nested/loop` → the shoot folder itself (the case that turned 20 files "
            "into more than 700 catalog rows over ten minutes), indexed with `index -r`."
        ),
        "the run ends, each photo is recorded exactly once, no traceback (whether the output names the "
        "loop is shown, not judged).",
    ),
    "changing": (
        "A file deleted and a file replaced while indexing",
        (
            "40 photos (1200 × 900) are indexed one per batch; once the first batch is committed, the last "
            "photo is deleted and the one before it is replaced by a different 200 × 300 photo "
            "(tests/hostile.py's `delete_file`/`replace_file` moments). Then `index` runs again."
        ),
        (
            "the run completes; the replaced photo is scored as it is now (200 × 300); the deleted one is "
            "reported with a clear reason or marked missing, never a raw errno text; the other 38 are scored;"
            " the second run marks the deleted one missing; no traceback."
        ),
    ),
    "pulled": (
        "The card is pulled out while indexing",
        (
            "A card `DCIM/100CANON` of 40 photos (1200 × 900) is indexed with `index -r`, one photo per "
            "batch; once the first batch is committed the whole card folder disappears (tests/hostile.py's "
            "`pull_card`)."
        ),
        (
            "the run stops with a clear message and a non-zero exit, no traceback; every committed photo is "
            "kept; photos are not marked failed or missing en masse (at most the batch in flight)."
        ),
    ),
    "kills": (
        "SIGKILL at random moments, and during a catalog migration",
        (
            "tests/kills.py: `index` of 40 photos is killed with SIGKILL again and again at moments drawn "
            "from a seeded RNG — during start-up, while torch and the model load, while batches are committed"
            " — with `rate` decisions made between the kills; then a final run. Separately, a "
            "schema-version-1 catalog holding an archive of decided photos is opened by `index` and killed "
            "while it migrates."
        ),
        (
            "≥ 5 kills including one during the model load; integrity_check ok after every kill; the final "
            "run completes and resumes (nothing committed is redone); every decision is there; the kill "
            "inside the migration leaves the old catalog intact at version 1, and the next run migrates it "
            "with every row and decision."
        ),
    ),
    "concurrency": (
        "Concurrent writers on one catalog",
        (
            "Three `index` processes start at once on a new catalog — two on the same folder A, one on "
            "folder B (40 photos each, one photo per transaction) — while one thread calls `rate` on "
            "photos as soon as they are catalogued and another runs `list` on folder A again and again. "
            "(The window indexing alongside the CLI is tested in tests/gui.)"
        ),
        (
            "every process exits 0; no “database is locked” (or busy) message anywhere; every photo scored "
            "once; every decision there; integrity_check ok."
        ),
    ),
    "full": (
        "A full disk while writing the catalog",
        (
            "The catalog lives on a real 3 MB tmpfs. Two photos are indexed and one is rated; the disk is "
            "then filled but for 64 KiB and a folder of 40 photos is indexed. Then the space is freed and "
            "`index` runs again."
        ),
        (
            "exit 2 with a message saying the disk is full, no traceback, no “locked”; integrity_check ok and"
            " the earlier decision there; after freeing space the run resumes and completes."
        ),
    ),
    "readonly": (
        "A read-only catalog location",
        (
            "A catalog with 3 indexed photos (one rated) is seen through a read-only bind mount; `index` of "
            "another folder, `rate` and `list` are run against it."
        ),
        (
            "`index` and `rate` fail with a clear read-only message (exit 2) before any work — the model is "
            "not loaded; `list` still reads the catalog; no traceback."
        ),
    ),
    "memory": (
        "Memory at 50,000 photos",
        (
            "benchmarks/memory_50k.py: a generated card of 50,000 small JPEGs (64 × 48 px) in 20 camera "
            "folders is indexed with `index -r` by the real CLI (tiny random model, --size 64), and so is a "
            "card of its first 5,000 photos in the same run; peak RSS is the indexer's own VmHWM."
        ),
        (
            "both runs complete; peak RSS at 50,000 photos is within 1.25× of the peak at 5,000 (memory does "
            "not grow with the folder)."
        ),
    ),
}


def new_section(key: str) -> Section:
    title, case, criterion = SPECS[key]
    return Section(key, title, case, criterion)


class Cli:
    """Runs `python -m clipiqa_desktop`; counts calls and collects every traceback seen."""

    def __init__(self) -> None:
        self.calls = 0
        self.tracebacks: list[str] = []

    def __call__(self, *args: str, catalog: Path | None, model: bool = False, timeout: float = 600) -> Run:
        cmd = [sys.executable, "-m", "clipiqa_desktop", *args]
        if catalog is not None:  # (`score` keeps no catalog)
            cmd += ["--catalog", str(catalog)]
        if model:
            cmd += MODEL
        start = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
        self.calls += 1
        run = Run(list(args), p.returncode, p.stdout, p.stderr, time.perf_counter() - start)
        self.check(run.err, " ".join(args[:2]))
        return run

    def popen(self, *args: str, catalog: Path) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "clipiqa_desktop", *args, "--catalog", str(catalog), *MODEL]
        self.calls += 1
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)

    def check(self, err: str, what: str) -> None:
        if "Traceback" in err:
            self.tracebacks.append(f"{what}: {err[err.find('Traceback') :][:1500]}")


cli = Cli()
FIGURES: dict[str, str] = {}  # the headline figures, filled in by the cases for the summary


def fence(text: str, limit: int = 1800) -> list[str]:
    text = text.strip() or "(nothing)"
    if len(text) > limit:
        text = text[:limit] + " …"
    return ["```", text, "```"]


def md_cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def listed(folder: Path, db: Path, recursive: bool = False) -> dict[str, dict]:
    """`list FOLDER --format json` as {path: row}."""
    run = cli("list", str(folder), *(["-r"] if recursive else []), "--format", "json", catalog=db)
    if run.rc != 0:
        raise RuntimeError(f"list {folder} failed ({run.rc}): {run.err.strip()}")
    rows = [json.loads(line) for line in run.out.splitlines() if line.strip()]
    return {r["path"]: r for r in rows}


def wait_until(cond: Callable[[], bool], proc: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def finish(proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str]:
    try:
        _out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _out, err = proc.communicate()
        err += f"\n[killed by the report after {timeout:.0f} s: the run hung]"
    cli.check(err, "index")
    return proc.returncode, err


def summary_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if "RANDOM weights" not in ln]
    return "\n".join(lines).strip()


def status_counts(db: Path) -> dict[str, int]:
    return {str(s): int(n) for s, n in query(db, "SELECT status, COUNT(*) FROM photos GROUP BY status")}


# --- mounts (root only) ---------------------------------------------------------------------------


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True, timeout=30)


def _umount(target: Path) -> None:
    for _ in range(10):
        if subprocess.run(["umount", str(target)], capture_output=True, timeout=30).returncode == 0:
            return
        time.sleep(0.3)
    subprocess.run(["umount", "-l", str(target)], capture_output=True, timeout=30)


class NotRun(Exception):
    """The case cannot run on this machine (said in the report, with the reason)."""


@contextmanager
def small_disk(where: Path, megabytes: int) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        raise NotRun("mounting a small file system needs root")
    where.mkdir(parents=True)
    try:
        _mount("-t", "tmpfs", "-o", f"size={megabytes}m,mode=0755", "tmpfs", str(where))
    except (subprocess.CalledProcessError, OSError) as exc:
        raise NotRun(f"this machine refuses to mount a tmpfs: {exc}") from exc
    try:
        yield where
    finally:
        _umount(where)


@contextmanager
def read_only_view(folder: Path, view: Path) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        raise NotRun("a read-only bind mount needs root (and root ignores file modes)")
    view.mkdir(parents=True)
    try:
        _mount("--bind", str(folder), str(view))
    except (subprocess.CalledProcessError, OSError) as exc:
        raise NotRun(f"this machine refuses a bind mount: {exc}") from exc
    try:
        _mount("-o", "remount,bind,ro", str(view))
        yield view
    finally:
        _umount(view)


# --- the cases ------------------------------------------------------------------------------------


def case_hostile(tmp: Path) -> Section:
    sec = new_section("hostile")
    folder = tmp / "hostile"
    cases = write_hostile_shoot(folder)
    paths = [str(folder / c.rel_path) for c in cases]
    db = tmp / "hostile.sqlite"
    score = cli(
        "score",
        *paths,
        "--format",
        "json",
        "--attributes",
        "quality",
        "--size",
        "96",
        catalog=None,
        model=True,
    )
    rows = [json.loads(line) for line in score.out.splitlines() if line.strip()]
    by_path = {r["path"]: r for r in rows}
    in_order = [r["path"] for r in rows] == paths
    index = cli("index", str(folder), "--size", "96", catalog=db, model=True)
    catalog = listed(folder, db)
    by_name = {Path(p).name: r for p, r in catalog.items()}

    def outcome_score(path: str) -> tuple[str, str]:
        r = by_path.get(path)
        if r is None:
            return "absent", "no row"
        if r.get("error"):
            return "failed", r["error"]
        return ("scored", "") if r.get("scores") else ("failed", "no scores")

    def outcome_index(name: str) -> tuple[str, str]:
        r = by_name.get(name)
        if r is None:
            return "absent", "not in the catalog"
        if r["status"] == "ok" and r.get("scores"):
            return "scored", ""
        return "failed", r.get("error") or r["status"]

    table = ["| file | kind | expected | `score` | `index` | |", "|---|---|---|---|---|---|"]
    bad = 0
    for c, path in zip(cases, paths, strict=True):
        s, s_why = outcome_score(path)
        i, i_why = outcome_index(Path(c.rel_path).name)
        if c.expect == "scored":
            good = s == "scored" and i == "scored"
        else:
            want = (c.reason or "").lower()
            good = s == "failed" and i == "failed" and want in s_why.lower() and want in i_why.lower()
        bad += not good
        shown = c.rel_path if len(c.rel_path) <= 40 else c.rel_path[:24] + "…" + c.rel_path[-8:]
        exp = "scored" if c.expect == "scored" else f"failed: “{c.reason}”"
        table.append(
            f"| {md_cell(shown)} | {c.kind} | {md_cell(exp)} "
            f"| {md_cell(s if s == 'scored' else f'{s}: {s_why}')} "
            f"| {md_cell(i if i == 'scored' else f'{i}: {i_why}')} | {'✓' if good else '✗'} |"
        )
    n_scored = sum(c.expect == "scored" for c in cases)
    tb = sum("Traceback" in r.err for r in (score, index))
    sec.ok = bad == 0 and in_order and tb == 0 and score.rc in (0, 1) and index.rc in (0, 1)
    FIGURES["files tried"] = f"{len(cases)} ({len({c.kind for c in cases})} kinds)"
    sec.headline = (
        f"{len(cases)} files of {len({c.kind for c in cases})} kinds: {n_scored} to score, "
        f"{len(cases) - n_scored} broken; {len(cases) - bad} as expected; tracebacks {tb}"
    )
    sec.add(
        f"- files tried: **{len(cases)}**, kinds: **{len({c.kind for c in cases})}** "
        f"({', '.join(sorted({c.kind for c in cases}))})",
        f"- `score`: exit {score.rc} in {score.seconds:.1f} s, {len(rows)} rows, "
        f"in input order: **{'yes' if in_order else 'NO'}**; "
        f"`index`: exit {index.rc} in {index.seconds:.1f} s; tracebacks: **{tb}**",
        f"- files with the expected outcome in both commands: **{len(cases) - bad} of {len(cases)}**",
        "",
        *table,
        "",
        "`index` said:",
        *fence(summary_line(index.err)),
    )
    return sec


def case_symlink(tmp: Path) -> Section:
    sec = new_section("symlink")
    folder = tmp / "loop-shoot"
    make_card(folder, 20, 320, 240)
    make_symlink_loop(folder)
    db = tmp / "loop.sqlite"
    run = cli("index", str(folder), "-r", "--size", "96", catalog=db, model=True, timeout=900)
    rows = int(query(db, "SELECT COUNT(*) FROM photos")[0][0]) if db.exists() else 0
    said = run.err.replace(str(folder), "FOLDER").lower()  # (the folder's own name says "loop")
    mentioned = "loop" in said or "link" in said
    sec.ok = run.rc in (0, 1) and rows == 20 and "Traceback" not in run.err
    sec.headline = f"20 files → {rows} catalog rows in {run.seconds:.1f} s (exit {run.rc})"
    sec.add(
        f"- exit {run.rc} after **{run.seconds:.1f} s**; catalog rows: **{rows}** for 20 files; "
        f"the loop is mentioned in the output: {'yes' if mentioned else 'no'}",
        *fence(summary_line(run.err)),
    )
    return sec


def case_changing(tmp: Path) -> Section:
    sec = new_section("changing")
    folder = tmp / "changing"
    paths = make_card(folder, 40, 1200, 900)
    db = tmp / "changing.sqlite"
    proc = cli.popen("index", str(folder), "--size", "256", "--batch-size", "1", "--workers", "1", catalog=db)
    started = wait_until(lambda: committed(db) > 0, proc, 600)
    gone, swapped = paths[-1], paths[-2]
    acted = proc.poll() is None
    if acted:
        gone.unlink()
        replace_file(swapped)
    rc, err = finish(proc)
    rows = {
        Path(r[0]).name: r[1:] for r in query(db, "SELECT name, status, error, width, height FROM photos")
    }
    g, s = rows.get(gone.name), rows.get(swapped.name)
    others = sum(1 for n, r in rows.items() if n not in (gone.name, swapped.name) and r[0] == "ok")
    again = cli("index", str(folder), "--size", "256", catalog=db, model=True)
    g2 = query(db, f"SELECT status, error FROM photos WHERE name = '{gone.name}'")
    raw_errno = bool(g and g[1] and re.search(r"\[Errno \d+\]", g[1]))
    swapped_ok = bool(s and s[0] == "ok" and (s[2], s[3]) == (200, 300))
    gone_ok = (g is None or g[0] in ("missing", "error")) and not raw_errno
    sec.ok = (
        acted
        and started
        and rc in (0, 1)
        and swapped_ok
        and gone_ok
        and others == 38
        and bool(g2)
        and g2[0][0] == "missing"
        and "Traceback" not in err + again.err
    )
    replaced = "scored as it is now (200 × 300)" if swapped_ok else (f"{s[0]}: {s[1]}" if s else "no record")
    deleted = (f"{g[0]}: {g[1]}" if g[1] else g[0]) if g else "no record"
    sec.headline = f"replaced: {replaced}; deleted: {deleted}; the other 38: {others} scored"
    if not acted:
        sec.add("- the run ended before the files could be changed: the case did not happen")
    sec.add(
        f"- first run: exit {rc}; replaced `{swapped.name}`: status {s[0] if s else '—'}, recorded size "
        f"{s[2] if s else '—'} × {s[3] if s else '—'}; deleted `{gone.name}`: "
        f"{'status ' + str(g[0]) + (', reason “' + str(g[1]) + '”' if g[1] else '') if g else 'no record'}",
        f"- the other photos scored: **{others} of 38**",
        *fence(summary_line(err)),
        f"- second run: exit {again.rc}; the deleted photo is now: {g2[0][0] if g2 else 'no record'}",
        *fence(summary_line(again.err)),
    )
    return sec


def case_pulled(tmp: Path) -> Section:
    sec = new_section("pulled")
    card = tmp / "EOS_DIGITAL"
    make_card(card / "DCIM" / "100CANON", 40, 1200, 900)
    db = tmp / "pulled.sqlite"
    proc = cli.popen(
        "index", str(card), "-r", "--size", "256", "--batch-size", "1", "--workers", "1", catalog=db
    )
    wait_until(lambda: committed(db) > 0, proc, 600)
    acted = proc.poll() is None
    before = committed(db)
    t_pull = time.monotonic()
    if acted:
        pull_card(card)
    rc, err = finish(proc)
    stop_s = time.monotonic() - t_pull
    counts = status_counts(db)
    kept = counts.get("ok", 0)
    damaged = counts.get("error", 0) + counts.get("missing", 0)
    sec.ok = acted and rc not in (0, None) and "Traceback" not in err and kept >= before and damaged <= 2
    sec.headline = (
        f"exit {rc} {stop_s:.1f} s after the pull; {kept} committed photos kept; "
        f"{damaged} marked failed/missing"
    )
    sec.add(
        f"- committed when the card was pulled: {before}; exit **{rc}** {stop_s:.1f} s later; photos in "
        f"the catalog afterwards by status: {counts}",
        *fence(summary_line(err)),
    )
    return sec


def case_kills(tmp: Path, seed: int) -> Section:
    sec = new_section("kills")
    card = tmp / "kill-card"
    make_card(card, 40)
    loop = kill_loop(card, tmp / "kills.sqlite", seed)
    phases: dict[str, int] = {}
    for k in loop.kills:
        phases[k.phase] = phases.get(k.phase, 0) + 1
    n_listed = len(loop.listed)
    all_scored = n_listed == 40 and all(r["status"] == "ok" and r["scores"] for r in loop.listed)
    loop_ok = (
        len(loop.kills) >= 5
        and "model load" in phases
        and all(k.integrity in ("ok", NO_CATALOG) for k in loop.kills)
        and loop.final_rc == 0
        and loop.final_unchanged == loop.final_committed_for_size
        and loop.final_integrity == "ok"
        and all_scored
        and not loop.decision_mismatches
        and "Traceback" not in loop.final_stderr
    )
    sec.add(
        f"- seed **{seed}** (repeat with `CLIPIQA_KILL_SEED={seed}`); kills survived: **{len(loop.kills)}** "
        f"({', '.join(f'{n} during {p}' for p, n in phases.items())}); runs that finished before their "
        f"kill: {loop.completed_early}",
        f"- decisions made with `rate` between kills: **{len(loop.expected)}** photos in {loop.rate_calls} "
        f"calls; decisions checked after the final run: **{len(loop.expected)}**, lost or changed: "
        f"**{len(loop.decision_mismatches)}**",
        f"- final run: exit {loop.final_rc}, resumed with unchanged {loop.final_unchanged} "
        f"(committed before it: {loop.final_committed_for_size}); integrity_check: {loop.final_integrity}; "
        f"photos listed with scores: {n_listed}",
        "",
        "| # | aimed at | landed in | at | analysis size | photos committed before → after | integrity |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {i} | {k.target} | {k.phase} | {k.at_s:.2f} s | {k.size} | {k.committed_before} → "
            f"{k.committed_after} | {k.integrity} |"
            for i, k in enumerate(loop.kills, 1)
        ),
        "",
        *(
            ["Lost decisions:", *fence("\n".join(loop.decision_mismatches))]
            if loop.decision_mismatches
            else []
        ),
    )
    mig_dir = tmp / "migration"
    mig_dir.mkdir()
    mcard = mig_dir / "card"
    make_card(mcard, 8)
    mig = kill_in_migration(mcard, mig_dir, seed)
    mig_ok = (
        mig.landed
        and mig.integrity_after_kill == "ok"
        and mig.version_after_kill == 1
        and mig.final_rc == 0
        and mig.final_version == mig.schema_to
        and mig.final_integrity == "ok"
        and mig.archive_after == mig.archive_before
        and not mig.decision_mismatches
    )
    sec.add(
        f"- migration {mig.schema_from} → {mig.schema_to} of a catalog with {mig.filler:,} archive photos "
        f"(it takes {mig.migration_s:.2f} s here): kill landed inside it: "
        f"**{'yes' if mig.landed else 'NO'}**; after the kill: schema version {mig.version_after_kill}, "
        f"integrity_check {mig.integrity_after_kill or '—'}",
        f"- next run: exit {mig.final_rc}, schema version {mig.final_version}, integrity_check "
        f"{mig.final_integrity or '—'}; archive (photos, scores, decisions) before {mig.archive_before}, "
        f"after {mig.archive_after}; the card's {len(mig.expected)} decisions lost: "
        f"{len(mig.decision_mismatches)}",
        *fence("\n".join(mig.attempts)),
    )
    sec.ok = loop_ok and mig_ok
    kills = len(loop.kills)
    FIGURES["kills survived"] = (
        f"{kills + mig.landed} ({kills} at random moments, {int(mig.landed)} in a migration)"
    )
    lost = len(loop.decision_mismatches) + len(mig.decision_mismatches)
    FIGURES["decisions checked"] = f"{len(loop.expected) + len(mig.expected)}, lost {lost}"
    sec.headline = (
        f"{len(loop.kills)} kills + 1 in a migration survived; {len(loop.expected) + len(mig.expected)} "
        f"decisions checked, {len(loop.decision_mismatches) + len(mig.decision_mismatches)} lost"
    )
    return sec


def case_concurrency(tmp: Path, seed: int) -> Section:
    import random

    sec = new_section("concurrency")
    rng = random.Random(seed)
    a, b = tmp / "A", tmp / "B"
    for folder, prefix, first in ((a, "A", 0), (b, "B", 100)):
        folder.mkdir()
        for i in range(40):
            photo(1024, 768, seed=first + i).save(folder / f"{prefix}_{i:04d}.JPG", quality=88)
    db = tmp / "shared.sqlite"
    procs = [
        cli.popen("index", str(f), "--size", "128", "--batch-size", "1", "--workers", "1", catalog=db)
        for f in (a, a, b)
    ]
    expected: dict[str, int] = {}
    rates: list[Run] = []
    reads: list[Run] = []
    running = threading.Event()
    running.set()

    def rater() -> None:  # `rate` calls, one after another, on photos as soon as they are catalogued
        while running.is_set():
            names = [] if not db.exists() else [str(r[0]) for r in _safe_names(db)]
            fresh = [n for n in names if n not in expected]
            if fresh:
                chosen = rng.sample(fresh, min(2, len(fresh)))
                stars = rng.randint(1, 5)
                paths = [str((a if n.startswith("A_") else b) / n) for n in chosen]
                run = cli("rate", *paths, "--stars", str(stars), catalog=db)
                rates.append(run)
                if run.rc == 0:
                    expected.update(dict.fromkeys(chosen, stars))
            time.sleep(0.05)

    def reader() -> None:  # `list` of folder A, again and again, once it has photos
        while running.is_set():
            if db.exists() and any(str(r[0]).startswith("A_") for r in _safe_names(db)):
                reads.append(cli("list", str(a), "--format", "json", catalog=db))
            time.sleep(0.2)

    threads = [threading.Thread(target=rater), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    try:
        while any(p.poll() is None for p in procs):
            time.sleep(0.1)
    finally:
        running.clear()
        for t in threads:
            t.join()
    results = [finish(p) for p in procs]
    every_err = [e for _rc, e in results] + [r.err for r in rates + reads]
    locked = sum(len(re.findall(r"locked|busy", e, re.I)) for e in every_err)
    writers_ok = all(rc == 0 for rc, _e in results) and all(r.rc == 0 for r in rates)
    rows_a, rows_b = listed(a, db), listed(b, db)
    got = {Path(p).name: r for p, r in {**rows_a, **rows_b}.items()}
    lost = [n for n, stars in expected.items() if got.get(n, {}).get("rating") != stars]
    scored = sum(1 for r in got.values() if r["status"] == "ok" and len(r["scores"]) == 12)
    photos = int(query(db, "SELECT COUNT(*) FROM photos")[0][0])
    ok_integrity = integrity(db)
    sec.ok = (
        writers_ok and locked == 0 and not lost and scored == 80 and photos == 80 and ok_integrity == "ok"
    )
    FIGURES["concurrent writers"] = f"{len(procs)} indexers + {len(rates)} `rate` calls"
    FIGURES["“database is locked” seen"] = str(locked)
    sec.headline = (
        f"{len(procs)} indexers + {len(rates)} `rate` calls + {len(reads)} readers; "
        f"“database is locked” seen: {locked}; decisions lost: {len(lost)}"
    )
    sec.add(
        f"- concurrent writers: **{len(procs)} indexers** (exit "
        f"{', '.join(str(rc) for rc, _ in results)}) and **{len(rates)} `rate` calls** "
        f"(failed: {sum(r.rc != 0 for r in rates)}); readers: {len(reads)} `list` "
        f"calls (failed: {sum(r.rc != 0 for r in reads)})",
        f"- “database is locked” / busy messages seen: **{locked}**",
        *(
            ["failed reads said:", *fence("\n".join(summary_line(r.err) for r in reads if r.rc), 800)]
            if any(r.rc for r in reads)
            else []
        ),
        f"- photos in the catalog: {photos} (80 files), scored with all 12 attributes: {scored}; "
        f"decisions made: {len(expected)}, lost: **{len(lost)}**; integrity_check: {ok_integrity}",
    )
    for i, (rc, err) in enumerate(results, 1):
        sec.add(f"indexer {i} (exit {rc}):", *fence(summary_line(err), 600))
    return sec


def _safe_names(db: Path) -> list[tuple]:
    try:
        return query(db, "SELECT name FROM photos")
    except sqlite3.Error:
        return []


def case_full(tmp: Path) -> Section:
    sec = new_section("full")
    first, second = tmp / "full-first", tmp / "full-second"
    make_card(first, 2, 480, 360)
    for i in range(40):
        second.mkdir(exist_ok=True)
        photo(480, 360, seed=200 + i).save(second / f"IMG_{i:04d}.JPG", quality=88)
    with small_disk(tmp / "disk", 3) as disk:
        db = disk / "catalog.sqlite"
        done = cli("index", str(first), "--size", "96", catalog=db, model=True)
        rate = cli("rate", str(first / "DSC_0000.JPG"), "--stars", "4", catalog=db)
        ballast = disk / "ballast"
        ballast.write_bytes(b"\0" * max(0, shutil.disk_usage(disk).free - 64 * 1024))
        full = cli("index", str(second), "--size", "96", "--batch-size", "4", catalog=db, model=True)
        committed_full = committed(db)
        ok_after_full = integrity(db) if full.rc else "(not full)"
        kept = listed(first, db)
        decision = any(r["rating"] == 4 for r in kept.values())
        ballast.unlink()
        again = cli("index", str(second), "--size", "96", "--batch-size", "4", catalog=db, model=True)
        final = listed(second, db)
        ok_final = integrity(db)
    says_full = "full" in full.err.lower()
    sec.ok = (
        done.rc == 0
        and rate.rc == 0
        and full.rc == 2
        and says_full
        and "Traceback" not in full.err
        and "locked" not in full.err.lower()
        and ok_after_full == "ok"
        and decision
        and again.rc == 0
        and len(final) == 40
        and ok_final == "ok"
    )
    sec.headline = (
        f"exit {full.rc}, says the disk is full: {'yes' if says_full else 'NO'}; integrity_check "
        f"{ok_after_full}; earlier decision kept: {'yes' if decision else 'NO'}; after freeing space: "
        f"exit {again.rc}, {len(final)}/40 photos"
    )
    sec.add(
        f"- on the full disk: exit **{full.rc}**; photos (of both folders) committed: {committed_full}; "
        f"integrity_check: **{ok_after_full}**; the earlier 4-star decision is there: "
        f"**{'yes' if decision else 'NO'}**",
        *fence(summary_line(full.err)),
        f"- after freeing space: exit **{again.rc}**, {len(final)} of 40 photos listed; "
        f"integrity_check {ok_final}",
        *fence(summary_line(again.err), 600),
    )
    return sec


def case_readonly(tmp: Path) -> Section:
    sec = new_section("readonly")
    shoot = tmp / "ro-shoot"
    make_card(shoot, 3, 320, 240)
    more = tmp / "ro-more"
    make_card(more, 2, 320, 240)
    store = tmp / "store"
    store.mkdir()
    db = store / "catalog.sqlite"
    cli("index", str(shoot), "--size", "96", catalog=db, model=True)
    cli("rate", str(shoot / "DSC_0001.JPG"), "--pick", catalog=db)
    with read_only_view(store, tmp / "ro") as ro:
        rodb = ro / db.name
        index = cli("index", str(more), "--size", "96", catalog=rodb, model=True)
        rate = cli("rate", str(shoot / "DSC_0000.JPG"), "--reject", catalog=rodb)
        lst = cli("list", str(shoot), "--format", "json", catalog=rodb)
    rows = [json.loads(x) for x in lst.out.splitlines() if x.strip()]
    model_loaded = "RANDOM weights" in index.err
    clear = "read-only" in index.err.lower() and "read-only" in rate.err.lower()
    sec.ok = (
        index.rc == 2
        and rate.rc == 2
        and clear
        and not model_loaded
        and lst.rc == 0
        and len(rows) == 3
        and not any("Traceback" in r.err for r in (index, rate, lst))
    )
    sec.headline = (
        f"index exit {index.rc} in {index.seconds:.1f} s (model loaded: {'yes' if model_loaded else 'no'}); "
        f"rate exit {rate.rc}; list exit {lst.rc} with {len(rows)} rows"
    )
    sec.add(
        f"- `index`: exit **{index.rc}** after {index.seconds:.1f} s, model loaded: "
        f"**{'yes' if model_loaded else 'no'}**",
        *fence(summary_line(index.err), 600),
        f"- `rate`: exit **{rate.rc}**",
        *fence(summary_line(rate.err), 600),
        f"- `list`: exit **{lst.rc}**, {len(rows)} rows (the pick is shown: "
        f"{'yes' if any(r['picked'] for r in rows) else 'no'})",
    )
    return sec


def case_memory(_tmp: Path) -> Section:
    sec = new_section("memory")
    if not MEMORY_RESULT.exists():
        raise NotRun(f"no {MEMORY_RESULT.relative_to(REPO)}: run `.venv/bin/python benchmarks/memory_50k.py`")
    data = json.loads(MEMORY_RESULT.read_text())
    base, full = data["runs"]["baseline"], data["runs"]["full"]
    ratio = data.get("peak_ratio_full_over_baseline")
    imports = data["machine"].get("import_rss_mb")
    sec.ok = base["exit"] == 0 and full["exit"] == 0 and ratio is not None and ratio <= 1.25
    FIGURES["peak memory at 50,000 photos"] = (
        f"{full['peak_rss_mb']:.0f} MB (at 5,000: {base['peak_rss_mb']:.0f} MB; tiny model)"
    )
    sec.headline = (
        f"peak RSS {full['peak_rss_mb']:.0f} MB at {full['photos']:,} photos vs {base['peak_rss_mb']:.0f} MB "
        f"at {base['photos']:,} (×{ratio})"
    )
    sec.add(
        f"- measured {data['date']} with `{data['command'].strip()}`; model: {data['model']}, "
        f"--size {data['size']}, "
        f"precision {data['precision']}, batch {data['batch_size']}",
        f"- importing torch and open_clip alone takes {imports} MB of RSS on this machine",
        "",
        "| photos | exit | time | photos/s | peak RSS | catalog |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r['photos']:,} | {r['exit']} | {r['seconds']:.0f} s | {r['photos_per_s']} | "
            f"{r['peak_rss_mb']} MB | {r['catalog_mb']} MB |"
            for r in (base, full)
        ),
        "",
        f"- peak RSS ratio 50,000 / 5,000: **{ratio}**",
        f"- above the imports: {base['peak_rss_mb'] - imports:.0f} MB at {base['photos']:,} photos, "
        f"{full['peak_rss_mb'] - imports:.0f} MB at {full['photos']:,}"
        if imports
        else "",
        "- RSS while indexing the 50,000: "
        + "; ".join(
            f"{t:.0f} s: {n:,} photos committed, {mb:,} MB"
            for t, n, mb in full["rss_curve"][:: max(1, len(full["rss_curve"]) // 8)]
        ),
        f"- times were taken while other work shared the machine (load average at the end: "
        f"{data.get('load_average_at_end', '?')}); RN50's own peak at --size 512 is in the README",
        f"- `index` said: `{full['summary']}`",
    )
    return sec


# --- the report -----------------------------------------------------------------------------------


def run_case(key: str, fn: Callable[[], Section]) -> Section:
    start = time.perf_counter()
    print(f"[{time.strftime('%H:%M:%S')}] {key} ...", flush=True)
    try:
        sec = fn()
    except NotRun as exc:
        sec = new_section(key)
        sec.ok, sec.headline, sec.lines = None, f"not run: {exc}", [f"Not run on this machine: {exc}."]
    except Exception as exc:
        sec = new_section(key)
        sec.ok, sec.headline = False, f"the case could not run: {type(exc).__name__}: {exc}"[:200]
        sec.add("The case itself failed to run:", *fence("".join(traceback.format_exception(exc)), 4000))
    sec.add("", f"_{time.perf_counter() - start:.0f} s_")
    print(
        f"    {'PASS' if sec.ok else ('not run' if sec.ok is None else 'FAIL')}: {sec.headline}", flush=True
    )
    return sec


def verdict(ok: bool | None) -> str:
    return "pass" if ok else ("not run" if ok is None else "**FAIL**")


def git_state() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "clipiqa_desktop"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    state = head.stdout.strip() or "unknown"
    return state + (" + uncommitted changes in clipiqa_desktop/" if dirty.stdout.strip() else "")


def write_doc(path: Path, sections: list[Section], m: dict, command: str, seconds: float, seed: int) -> None:
    n_ok = sum(s.ok is True for s in sections)
    out = [
        "# Reliability: what happens to photos, runs and the catalog when things go wrong",
        "",
        "<!-- Generated by benchmarks/reliability.py; do not edit by hand: run it again. -->",
        "",
        f"- produced {time.strftime('%Y-%m-%d %H:%M %Z')} by `{command}` in {seconds / 60:.1f} minutes, "
        f"at commit {git_state()}",
        f"- machine: {machine_line(m)}",
        f"- every case runs the real command line (`python -m clipiqa_desktop …`) on files written for "
        f"the run, with the tiny random test model (tests/data/tiny-rn.json) on the CPU: scores are "
        f"meaningless, what happens to files, runs and the catalog is the point; random moments use "
        f"seed {seed}",
        f"- commands run: {cli.calls}; tracebacks seen in their output: **{len(cli.tracebacks)}**",
        f"- cases passed: **{n_ok} of {len(sections)}**",
        *(["- figures: " + "; ".join(f"{k}: **{v}**" for k, v in FIGURES.items())] if FIGURES else []),
        "",
        "| case | result | figures |",
        "|---|---|---|",
        *(
            f"| [{s.title}](#{_anchor(s.title)}) | {verdict(s.ok)} | {md_cell(s.headline)} |"
            for s in sections
        ),
        "",
    ]
    for s in sections:
        out += [f"## {s.title}", ""]
        if s.case:
            out += [f"**Case.** {s.case}", "", f"**Passes when** {s.criterion}", ""]
        out += [f"**Result: {verdict(s.ok)}.**", "", *s.lines, ""]
    if cli.tracebacks:
        out += ["## Tracebacks seen", "", *fence("\n\n".join(cli.tracebacks), 8000), ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out).rstrip() + "\n")


def _anchor(title: str) -> str:
    slug = re.sub(r"[^\w\- ]", "", title.lower()).strip().replace(" ", "-")
    return slug


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DOC, help=f"the report (default: {DOC.relative_to(REPO)})")
    ap.add_argument("--only", help=f"comma-separated cases: {','.join(CASES)}")
    ap.add_argument("--seed", type=int, help="seed of the random moments (default: a new one)")
    ap.add_argument("--memory", action="store_true", help="run benchmarks/memory_50k.py first (long)")
    args = ap.parse_args()
    only = set(args.only.split(",")) if args.only else set(CASES)
    unknown = only - set(CASES)
    if unknown:
        ap.error(f"unknown cases: {', '.join(sorted(unknown))}")
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(3), "little")
    command = "benchmarks/reliability.py " + " ".join(sys.argv[1:])
    start = time.perf_counter()
    if args.memory and "memory" in only:
        subprocess.run([sys.executable, str(HERE / "memory_50k.py")], check=False, cwd=REPO)
    m = machine()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # cleanup (mounts) on a polite stop
    sections: list[Section] = []
    with tempfile.TemporaryDirectory(prefix="clipiqa-reliability-") as tmp_name:
        tmp = Path(tmp_name)
        cases: dict[str, Callable[[], Section]] = {
            "hostile": lambda: case_hostile(tmp / "hostile-case"),
            "symlink": lambda: case_symlink(tmp / "symlink-case"),
            "changing": lambda: case_changing(tmp / "changing-case"),
            "pulled": lambda: case_pulled(tmp / "pulled-case"),
            "kills": lambda: case_kills(tmp / "kills-case", seed),
            "concurrency": lambda: case_concurrency(tmp / "concurrency-case", seed),
            "full": lambda: case_full(tmp / "full-case"),
            "readonly": lambda: case_readonly(tmp / "readonly-case"),
            "memory": lambda: case_memory(tmp),
        }
        for key in CASES:
            if key in only:
                (tmp / f"{key}-case").mkdir()
                sections.append(run_case(key, cases[key]))
    seconds = time.perf_counter() - start
    write_doc(args.out, sections, m, command, seconds, seed)
    print(f"wrote {args.out} ({sum(s.ok is True for s in sections)} of {len(sections)} cases passed)")
    return 0 if all(s.ok is not False for s in sections) else 1


if __name__ == "__main__":
    sys.exit(main())
