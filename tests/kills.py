"""SIGKILL harness: kill the real `clipiqa-desktop index` at chosen moments, rate photos in between.

Shared by tests/indexing/test_crash_safety.py (which asserts) and benchmarks/reliability.py (which
writes the figures into docs/reliability.md). Everything runs the real CLI as a subprocess with the
tiny random test model; the catalog is inspected with plain sqlite3, never through our own code.

The moment of each kill is drawn from a seeded RNG, and what the process was doing at that moment is
*observed*, not assumed:
- "start-up": the Python process before torch is mapped (imports, opening/migrating the catalog, scan);
- "model load": libtorch is mapped into the process (/proc/PID/maps) but no photo of this run is
  committed yet (importing torch and open_clip, building the model);
- "indexing": at least one batch of this run is committed;
- "migration": the catalog's write lock is held while its schema version is still the old one.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from .conftest import app_command, photo

SQLITE_BUSY = 5
# Analysis sizes the loop cycles through: when a run completes before its kill, the next size gives
# the following runs a full folder of work again (a new analysis rescores every photo).
SIZES = ("96", "80", "112", "72", "128", "88")
# Actions `rate` is given, and the decision each leaves on a photo that had none:
# (flags, rating, picked, label).
ACTIONS: tuple[tuple[tuple[str, ...], int, bool, str | None], ...] = (
    (("--stars", "3"), 3, False, None),
    (("--reject",), -1, False, None),
    (("--pick",), 0, True, None),
    (("--label", "Red"), 0, False, "Red"),
    (("--stars", "5"), 5, False, None),
    (("--label", "Blue"), 0, False, "Blue"),
)

Expected = dict[str, tuple[int, bool, str | None]]  # file name -> (rating, picked, label)


def plain_command(*args: str, catalog: Path) -> list[str]:
    """`python -m clipiqa_desktop ARGS --catalog DB` for commands that take no model options."""
    return [sys.executable, "-m", "clipiqa_desktop", *args, "--catalog", str(catalog)]


def make_card(folder: Path, n: int, width: int = 640, height: int = 480) -> list[Path]:
    """n photo-like JPEGs (distinct content) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"DSC_{i:04d}.JPG"
        photo(width, height, seed=i).save(path, quality=88)
        paths.append(path)
    return paths


NO_CATALOG = "no catalog yet"  # killed before the catalog file was created


def _connect(db: Path) -> sqlite3.Connection:
    """A read-write connection that never creates the file (that would be an empty catalog the
    program did not make)."""
    return sqlite3.connect(f"{Path(db).resolve().as_uri()}?mode=rw", uri=True, timeout=30)


def integrity(db: Path) -> str:
    if not db.exists():
        return NO_CATALOG
    con = _connect(db)
    try:
        return ", ".join(r[0] for r in con.execute("PRAGMA integrity_check").fetchall())
    finally:
        con.close()


def user_version(db: Path) -> int:
    con = _connect(db)
    try:
        return int(con.execute("PRAGMA user_version").fetchone()[0])
    finally:
        con.close()


def query(db: Path, sql: str) -> list[tuple]:
    """Rows of `sql`, on a connection of its own (WAL: it never blocks a running indexer).

    Unlike a read-only connection, it can rebuild the -shm index a SIGKILL or checkpoint left behind,
    so it never answers "no rows" for a catalog it could not open: errors are raised."""
    con = _connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def committed(db: Path) -> int:
    """(photo, analysis) pairs with an embedding: grows by one batch per commit, for any analysis."""
    if not db.exists():  # (connecting would create it)
        return 0
    try:
        return int(query(db, "SELECT COUNT(*) FROM embeddings")[0][0])
    except sqlite3.OperationalError as exc:  # the first run has not created the tables yet
        if "no such table" in str(exc):
            return 0
        raise


def has_photos(db: Path) -> bool:
    """True once the catalog file exists with its photos table."""
    return db.exists() and bool(query(db, "SELECT 1 FROM sqlite_master WHERE name = 'photos'"))


def _name_column(db: Path) -> str:
    """The photos' path column: `rel_path` up to schema version 1, `name` from version 2."""
    columns = {r[1] for r in query(db, "PRAGMA table_info(photos)")}
    return "name" if "name" in columns else "rel_path"


def catalog_names(db: Path) -> list[str]:
    """File names of the photos the catalog holds (the test folders are flat)."""
    return sorted({Path(r[0]).name for r in query(db, f"SELECT {_name_column(db)} FROM photos")})


def decisions_sql(db: Path) -> Expected:
    """Decisions by file name, read with plain SQL (the columns every schema version has)."""
    rows = query(
        db,
        f"SELECT p.{_name_column(db)}, d.rating, d.picked, d.label "
        "FROM decisions d JOIN photos p ON p.id = d.photo_id",
    )
    return {Path(r[0]).name: (int(r[1]), bool(r[2]), r[3] or None) for r in rows}


def decisions_listed(folder: Path, db: Path) -> tuple[Expected, list[dict]]:
    """Decisions as the user sees them: `clipiqa-desktop list FOLDER --format json`."""
    out = subprocess.run(
        [*plain_command("list", str(folder), catalog=db), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if out.returncode != 0:
        raise AssertionError(f"list failed ({out.returncode}): {out.stderr}")
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    got = {Path(r["path"]).name: (int(r["rating"]), bool(r["picked"]), r["label"] or None) for r in rows}
    return got, rows


def mismatches(expected: Expected, got: Expected) -> list[str]:
    return [
        f"{name}: expected {want}, found {got.get(name, 'no decision')}"
        for name, want in sorted(expected.items())
        if got.get(name) != want
    ]


def torch_mapped(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/maps") as f:
            return "libtorch" in f.read()
    except OSError:
        return False


def write_lock_held(db: Path) -> bool:
    """True while another connection holds the catalog's write lock (probe: BEGIN IMMEDIATE, no wait)."""
    if not db.exists():
        return False
    con = sqlite3.connect(db, timeout=0, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as exc:
        return getattr(exc, "sqlite_errorcode", None) == SQLITE_BUSY or "locked" in str(exc)
    finally:
        con.close()


@dataclass
class Kill:
    target: str  # the moment aimed at
    phase: str  # what the process was observed doing when it was killed
    at_s: float  # seconds after start
    size: str
    committed_before: int
    committed_after: int
    integrity: str


@dataclass
class KillLoop:
    seed: int
    photos: int
    kills: list[Kill] = field(default_factory=list)
    completed_early: int = 0  # runs that finished before their kill came
    expected: Expected = field(default_factory=dict)  # decisions made with `rate` between kills
    rate_calls: int = 0
    final_rc: int | None = None
    final_stderr: str = ""
    final_unchanged: int | None = None  # "unchanged N" of the final run
    final_committed_for_size: int = 0  # photos of the final analysis committed before the final run
    final_integrity: str = ""
    listed: list[dict] = field(default_factory=list)
    decision_mismatches: list[str] = field(default_factory=list)
    seconds: float = 0.0
    log: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return f"kill loop seed {self.seed} (rerun with CLIPIQA_KILL_SEED={self.seed}):\n  " + "\n  ".join(
            self.log
        )


def _committed_for_size(db: Path, size: str) -> int:
    rows = query(
        db,
        f"SELECT COUNT(*) FROM embeddings e JOIN analyses a ON a.id = e.analysis_id WHERE a.size = '{size}'",
    )
    return int(rows[0][0])


def _index_cmd(folder: Path, db: Path, size: str) -> list[str]:
    return [
        *app_command("index", str(folder), catalog=db),
        "--size",
        size,
        "--batch-size",
        "2",
        "--workers",
        "1",
    ]


def _grew(db: Path, before: int) -> bool:
    return committed(db) > before


def _wait_for(proc: subprocess.Popen, cond: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.005)
    return False


def _rate_some(loop: KillLoop, rng: random.Random, folder: Path, db: Path) -> None:
    """One `rate` call: the next action on up to 3 catalogued photos that have no decision yet."""
    fresh = [n for n in catalog_names(db) if n not in loop.expected]
    if not fresh:
        return
    names = rng.sample(fresh, min(3, len(fresh)))
    flags, rating, picked, label = ACTIONS[loop.rate_calls % len(ACTIONS)]
    out = subprocess.run(
        [*plain_command("rate", *(str(folder / n) for n in names), catalog=db), *flags],
        capture_output=True,
        text=True,
        timeout=120,
    )
    loop.rate_calls += 1
    if out.returncode != 0:
        raise AssertionError(
            f"rate {names} {flags} failed ({out.returncode}): {out.stderr}\n{loop.describe()}"
        )
    loop.expected.update(dict.fromkeys(names, (rating, picked, label)))
    loop.log.append(f"rate {' '.join(flags)}: {', '.join(names)}")


def kill_loop(
    folder: Path,
    db: Path,
    seed: int,
    min_kills: int = 5,
    targets: tuple[str, ...] = ("start-up", "model load", "indexing", "indexing", "any"),
    max_rounds: int = 12,
) -> KillLoop:
    """Index `folder` into `db`, SIGKILL it at drawn moments until `min_kills` kills (and every target
    phase) are done, `rate` photos between kills, then run to completion and read everything back."""
    started = time.monotonic()
    rng = random.Random(seed)
    photos = len(list(folder.glob("*.JPG")))
    loop = KillLoop(seed=seed, photos=photos)
    plan = list(targets)
    rng.shuffle(plan)
    size_i = 0
    rounds = 0
    while (len(loop.kills) < min_kills or plan) and rounds < max_rounds:
        rounds += 1
        target = plan.pop(0) if plan else rng.choice(targets)
        size = SIZES[size_i % len(SIZES)]
        before = committed(db)
        t0 = time.monotonic()
        proc = subprocess.Popen(
            _index_cmd(folder, db, size), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            if target == "start-up":
                delay = rng.uniform(0.05, 0.4)
            elif target == "model load":
                _wait_for(proc, partial(torch_mapped, proc.pid), 120)
                delay = rng.uniform(0.0, 1.5)
            elif target == "indexing":
                _wait_for(proc, partial(_grew, db, before), 180)
                delay = rng.uniform(0.0, 0.6)
            else:
                delay = rng.uniform(0.0, 8.0)
            end = time.monotonic() + delay
            while proc.poll() is None and time.monotonic() < end:
                time.sleep(0.005)
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                if proc.returncode != 0:
                    raise AssertionError(
                        f"index exited {proc.returncode} on its own before the kill:\n{err}\n"
                        + loop.describe()
                    )
                loop.completed_early += 1
                loop.log.append(f"{target}: run at size {size} completed before its kill; next size")
                size_i += 1
                if target != "any":
                    plan.insert(0, target)
                continue
            mapped, now = torch_mapped(proc.pid), committed(db)
            os.kill(proc.pid, signal.SIGKILL)
            at = time.monotonic() - t0
        finally:
            if proc.poll() is None:
                proc.wait(timeout=60)
            if proc.stderr:
                proc.stderr.close()
        if proc.returncode != -signal.SIGKILL:
            raise AssertionError(f"index ended with {proc.returncode}, not SIGKILL\n{loop.describe()}")
        phase = "indexing" if now > before else ("model load" if mapped else "start-up")
        if target not in ("any", phase) and not any(k.phase == target for k in loop.kills):
            plan.append(target)  # missed its phase (a fast or slow machine): aim at it again later
        after = committed(db)
        ok = integrity(db)
        loop.kills.append(Kill(target, phase, at, size, before, after, ok))
        loop.log.append(
            f"kill #{len(loop.kills)} aimed at {target}, landed in {phase} at {at:.2f}s "
            f"(size {size}, committed {before} -> {after}, integrity {ok})"
        )
        if ok not in ("ok", NO_CATALOG):
            raise AssertionError(f"integrity_check after a kill: {ok}\n{loop.describe()}")
        if not has_photos(db):  # killed before the catalog (or its tables) existed
            if loop.expected:
                raise AssertionError("the catalog lost its tables after a kill\n" + loop.describe())
            continue
        lost = mismatches(loop.expected, decisions_sql(db))
        if lost:
            raise AssertionError("decisions lost after a kill:\n" + "\n".join(lost) + "\n" + loop.describe())
        _rate_some(loop, rng, folder, db)

    size = SIZES[size_i % len(SIZES)]
    loop.final_committed_for_size = _committed_for_size(db, size)
    final = subprocess.run(_index_cmd(folder, db, size), capture_output=True, text=True, timeout=300)
    loop.final_rc, loop.final_stderr = final.returncode, final.stderr
    m = re.search(r"unchanged (\d+)", final.stderr)
    loop.final_unchanged = int(m.group(1)) if m else None
    loop.log.append(f"final run at size {size}: exit {final.returncode}: {final.stderr.strip()}")
    loop.final_integrity = integrity(db)
    got, loop.listed = decisions_listed(folder, db)
    loop.decision_mismatches = mismatches(loop.expected, got)
    # Photos never rated have no decision: the kills and resumes invented none.
    loop.decision_mismatches += [
        f"{name}: never rated, but shows {d}"
        for name, d in got.items()
        if name not in loop.expected and d != (0, False, None)
    ]
    loop.seconds = time.monotonic() - started
    return loop


# --- a kill inside a catalog migration ---------------------------------------------------------

OLD_VERSION = 1  # the first released schema: the oldest catalog a user can have


def build_old_catalog(db: Path, card: Path, decided: Expected, filler: int) -> None:
    """A schema-version-1 catalog as release 1 wrote it: `card`'s photos (not yet scored) with the
    decisions `decided`, plus `filler` scored, decided photos of an archive in camera sub-folders,
    so that migrating it takes a while."""
    from sqlalchemy import create_engine, text

    from clipiqa_desktop.catalog.schema import MIGRATIONS

    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        for step in MIGRATIONS[:OLD_VERSION]:
            step(conn)
        conn.execute(text(f"PRAGMA user_version = {OLD_VERSION}"))
    engine.dispose()
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode = WAL")
    now = time.time()
    with con:
        con.execute(
            "INSERT INTO folders (id, path) VALUES (1, ?), (2, ?)", (str(card.resolve()), "/archive/2019")
        )
        con.execute(
            "INSERT INTO analyses (id, model_id, size, embed_dim, logit_scale) "
            "VALUES (1, 'RN50/openai', '512', 1024, 100.0)"
        )
        for i, path in enumerate(sorted(card.glob("*.JPG")), start=1):
            st = path.stat()
            con.execute(
                "INSERT INTO photos (id, folder_id, rel_path, size_bytes, mtime_ns, status, added_at, "
                "updated_at) VALUES (?, 1, ?, ?, ?, 'ok', ?, ?)",
                (i, path.name, st.st_size, st.st_mtime_ns, now, now),
            )
            if path.name in decided:
                rating, picked, label = decided[path.name]
                con.execute(
                    "INSERT INTO decisions (photo_id, rating, picked, label, changed_at, source) "
                    "VALUES (?, ?, ?, ?, ?, 'user')",
                    (i, rating, picked, label, now),
                )
        base = 1000
        con.executemany(
            "INSERT INTO photos (id, folder_id, rel_path, size_bytes, mtime_ns, fingerprint, status, "
            "added_at, updated_at) VALUES (?, 2, ?, 123456, 1, ?, 'ok', ?, ?)",
            (
                (base + i, f"DCIM/{100 + i // 500}CANON/IMG_{i % 10000:04d}.JPG", f"{i:040x}", now, now)
                for i in range(filler)
            ),
        )
        con.executemany(
            "INSERT INTO scores (photo_id, analysis_id, attribute, value) VALUES (?, 1, ?, 0.5)",
            ((base + i, a) for i in range(filler) for a in ("quality", "sharpness")),
        )
        con.executemany(
            "INSERT INTO decisions (photo_id, rating, picked, label, changed_at, source) "
            "VALUES (?, ?, 0, NULL, ?, 'user')",
            ((base + i, 1 + i % 5, now) for i in range(0, filler, 7)),
        )
    con.close()


def archive_counts(db: Path) -> tuple[int, int, int]:
    """(photos, scores, decisions) of the archive's photos (ids >= 1000), whatever the folder rows."""
    rows = query(
        db,
        "SELECT (SELECT COUNT(*) FROM photos WHERE id >= 1000), "
        "(SELECT COUNT(*) FROM scores WHERE photo_id >= 1000), "
        "(SELECT COUNT(*) FROM decisions WHERE photo_id >= 1000)",
    )
    return int(rows[0][0]), int(rows[0][1]), int(rows[0][2])


def migration_seconds(db: Path) -> float:
    """How long opening (= migrating) a copy of `db` takes with this program's Catalog."""
    from clipiqa_desktop.catalog import Catalog

    work = db.with_name("migration-probe.sqlite")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{db}{suffix}")
        if src.exists():
            shutil.copyfile(src, f"{work}{suffix}")
    start = time.perf_counter()
    catalog = Catalog(work)
    seconds = time.perf_counter() - start
    catalog.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{work}{suffix}").unlink(missing_ok=True)
    return seconds


@dataclass
class MigrationKill:
    seed: int
    schema_from: int
    schema_to: int
    filler: int
    migration_s: float
    attempts: list[str] = field(default_factory=list)
    landed: bool = False
    version_after_kill: int | None = None
    integrity_after_kill: str = ""
    archive_before: tuple[int, int, int] = (0, 0, 0)
    archive_after: tuple[int, int, int] = (0, 0, 0)
    final_rc: int | None = None
    final_stderr: str = ""
    final_version: int | None = None
    final_integrity: str = ""
    expected: Expected = field(default_factory=dict)
    decision_mismatches: list[str] = field(default_factory=list)
    listed: list[dict] = field(default_factory=list)

    def describe(self) -> str:
        return (
            f"migration kill seed {self.seed} (rerun with CLIPIQA_KILL_SEED={self.seed}), schema "
            f"{self.schema_from}->{self.schema_to}, {self.filler} archive photos, migration "
            f"{self.migration_s:.2f}s:\n  " + "\n  ".join(self.attempts)
        )


def kill_in_migration(card: Path, work: Path, seed: int, attempts: int = 5) -> MigrationKill:
    """Open a version-1 catalog with `index` and SIGKILL it while it migrates; then run it to the end."""
    from clipiqa_desktop.catalog.schema import SCHEMA_VERSION

    rng = random.Random(seed)
    names = sorted(p.name for p in card.glob("*.JPG"))
    decided = {n: (ACTIONS[i][1], ACTIONS[i][2], ACTIONS[i][3]) for i, n in enumerate(names[: len(ACTIONS)])}
    pristine = work / "old.sqlite"
    filler = 2_000
    build_old_catalog(pristine, card, decided, filler)
    seconds = migration_seconds(pristine)
    while seconds < 0.4 and filler < 128_000:  # give the migration enough work to be hit
        filler *= 4
        for suffix in ("", "-wal", "-shm"):
            Path(f"{pristine}{suffix}").unlink(missing_ok=True)
        build_old_catalog(pristine, card, decided, filler)
        seconds = migration_seconds(pristine)
    result = MigrationKill(seed, OLD_VERSION, SCHEMA_VERSION, filler, seconds, expected=decided)
    result.archive_before = archive_counts(pristine)
    db = work / "catalog.sqlite"
    for attempt in range(attempts):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
            src = Path(f"{pristine}{suffix}")
            if src.exists():
                shutil.copyfile(src, f"{db}{suffix}")
        proc = subprocess.Popen(
            _index_cmd(card, db, "96"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        t0 = time.monotonic()
        seen = _wait_for(proc, partial(write_lock_held, db), 60)
        seen_at = time.monotonic() - t0
        delay = rng.uniform(0.05, 0.6) * seconds
        end = time.monotonic() + delay
        while proc.poll() is None and time.monotonic() < end:
            time.sleep(0.002)
        alive = proc.poll() is None
        if alive:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        version = user_version(db)
        result.attempts.append(
            f"attempt {attempt + 1}: write lock seen {seen} at {seen_at:.2f}s, kill after {delay:.2f}s more "
            f"({'killed' if alive else f'already exited {proc.returncode}'}); schema version after: {version}"
        )
        if alive and seen and version == OLD_VERSION:
            result.landed = True
            result.version_after_kill = version
            result.integrity_after_kill = integrity(db)
            result.archive_after = archive_counts(db)
            break
    if not result.landed:
        return result
    final = subprocess.run(_index_cmd(card, db, "96"), capture_output=True, text=True, timeout=300)
    result.final_rc, result.final_stderr = final.returncode, final.stderr
    result.final_version = user_version(db)
    result.final_integrity = integrity(db)
    result.archive_after = archive_counts(db)
    try:
        got, result.listed = decisions_listed(card, db)
    except AssertionError as exc:  # recorded with the final run's output, for the report and the test
        result.decision_mismatches = [f"{exc}; the final index said: {final.stderr.strip()}"]
        return result
    result.decision_mismatches = mismatches(decided, got)
    return result


def seed_from_env() -> int:
    value = os.environ.get("CLIPIQA_KILL_SEED")
    return int(value) if value else random.SystemRandom().randrange(1_000_000)


if __name__ == "__main__":  # pragma: no cover - a manual run: python -m tests.kills FOLDER
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        card = Path(tmp) / "card"
        make_card(card, 40)
        loop = kill_loop(card, Path(tmp) / "c.sqlite", seed_from_env())
        print(loop.describe(), file=sys.stderr)
