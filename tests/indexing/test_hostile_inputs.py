"""The hostile shoot (tests/hostile.py) through the scoring stream, `score` and `index`, as a user runs them.

Every good file is scored, every bad one recorded with its reason, a symlink loop ends, no traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from clipiqa_desktop.indexing.scan import find_photos
from clipiqa_desktop.indexing.stream import score_photos
from clipiqa_desktop.scoring import BUILTIN_ATTRIBUTES

from ..conftest import TINY_ARGS, photo, query_readonly
from ..hostile import make_fifo, make_file_link, make_symlink_loop, write_hostile_shoot


@pytest.fixture(scope="module")
def shoot(tmp_path_factory):
    folder = tmp_path_factory.mktemp("card") / "shoot"
    cases = write_hostile_shoot(folder)
    return folder, cases


def _check(outcomes: dict[str, str | None], cases) -> None:
    """outcomes: rel path -> recorded error (None when scored)."""
    assert set(outcomes) == {c.rel_path for c in cases}
    for case in cases:
        error = outcomes[case.rel_path]
        if case.expect == "scored":
            assert error is None, (case, error)
        else:
            assert error is not None and case.reason in error, (case, error)
            assert "Traceback" not in error and "Errno" not in error, error


def test_the_stream_scores_every_good_file_and_records_every_bad_one(shoot, tiny_scorer):
    folder, cases = shoot
    selection = find_photos([folder])
    assert len(selection.photos) == len(cases) and not selection.unreadable
    outcomes = {}
    for r in score_photos(selection.paths, tiny_scorer, BUILTIN_ATTRIBUTES, 512, batch_size=4):
        rel = r.path.relative_to(folder).as_posix()
        outcomes[rel] = r.error
        if r.ok:
            assert r.scores is not None and len(r.scores) == len(BUILTIN_ATTRIBUTES)
            assert r.embedding is not None and abs(float((r.embedding**2).sum()) - 1) < 1e-4
    _check(outcomes, cases)


def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clipiqa_desktop", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
    )


def test_score_command_over_the_hostile_shoot_reports_everything_in_input_order(shoot, tmp_path):
    folder, cases = shoot
    missing = tmp_path / "not there.jpg"
    proc = _run(
        "score", *TINY_ARGS, "--format", "json", "--attributes", "quality,sharpness",
        str(folder / "IMG_0002.JPG"), str(missing), str(folder),
    )  # fmt: skip
    assert "Traceback" not in proc.stderr and "Error:" not in proc.stderr, proc.stderr
    assert proc.returncode == 1, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    # input order: the file, the missing path, then the folder's photos by name (IMG_0002 once)
    names = sorted(c.rel_path for c in cases)
    assert [r["path"] for r in rows] == [str(folder / "IMG_0002.JPG"), str(missing)] + [
        str(folder / n) for n in names if n != "IMG_0002.JPG"
    ]
    assert rows[1]["error"] == "file not found"
    outcomes = {r["path"][len(str(folder)) + 1 :]: r["error"] for r in rows if r is not rows[1]}
    _check(outcomes, cases)
    for r in rows:
        assert set(r) == set(rows[0])  # the same keys on every line
        assert (r["scores"] is None) == (r["error"] is not None)
    failed = sum(c.expect == "failed" for c in cases) + 1
    assert f"scored {len(cases) - failed + 1} photo(s)" in proc.stderr and f"{failed} failed" in proc.stderr


def test_a_symlink_loop_under_recursive_scan_ends_and_counts_each_photo_once(tmp_path):
    folder = tmp_path / "shoot"
    cases = write_hostile_shoot(folder)
    loop = make_symlink_loop(folder)
    (folder / "nested" / "IMG_9000.JPG").write_bytes((folder / "IMG_0001.JPG").read_bytes())
    make_file_link(folder / "favourites" / "best.jpg", folder / "IMG_0001.JPG")
    selection = find_photos([folder], recursive=True)
    rels = [p.relative_to(folder).as_posix() for p in selection.paths]
    assert sorted(rels) == sorted([c.rel_path for c in cases] + ["nested/IMG_9000.JPG"])
    assert dict(selection.passed_over) == {
        loop: f"not followed: a link back to {folder}, which contains it (a loop)",
        folder / "favourites" / "best.jpg": f"counted once: a link to {folder / 'IMG_0001.JPG'}",
    }

    catalog = tmp_path / "catalog.sqlite"
    proc = _run("index", "-r", str(folder), "--catalog", str(catalog), *TINY_ARGS, "--size", "128")
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1, proc.stderr  # the bad files of the hostile shoot
    # index names every link it did not follow, as score does: never a silent skip
    assert "2 links passed over" in proc.stderr, proc.stderr
    assert "link nested/loop: not followed: a link back to" in proc.stderr, proc.stderr
    assert "link favourites/best.jpg: counted once: a link to" in proc.stderr, proc.stderr
    rows = query_readonly(catalog, "SELECT name, status, error FROM photos")
    assert len(rows) == len(cases) + 1, "one record per photo, however many ways it is reached"
    assert sorted(r[0] for r in rows) == sorted(rel.rsplit("/", 1)[-1] for rel in rels)
    _check({name: error for name, _, error in rows if name != "IMG_9000.JPG"}, cases)


def test_a_named_pipe_among_the_photos_neither_hangs_nor_hides(tmp_path):
    folder = tmp_path / "shoot"
    cases = write_hostile_shoot(folder)
    pipe = make_fifo(folder / "IMG_0003.JPG")
    reason = "not a regular file (a named pipe, socket or device)"
    assert find_photos([folder]).unreadable == [(pipe, reason)]
    proc = _run(
        "score", *TINY_ARGS, "--format", "json", "--attributes", "quality", str(folder), str(pipe),
        timeout=200,
    )  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == len(cases) + 1  # the pipe is one row, where the folder's files put it
    assert rows[2] == {**rows[2], "path": str(pipe), "scores": None, "error": f"cannot read: {reason}"}


def test_links_never_make_a_photo_count_twice_and_real_names_win(tmp_path):
    shoot = tmp_path / "shoot"
    (shoot / "day1").mkdir(parents=True)
    for name in ("b.jpg", "day1/c.jpg"):
        photo(64, 48).save(shoot / name)
    make_file_link(shoot / "a_link.jpg", shoot / "b.jpg")  # sorts before its target
    os.link(shoot / "day1" / "c.jpg", shoot / "hard.jpg")  # a second name of the same file
    os.symlink(shoot / "day1", shoot / "a_day1_again", target_is_directory=True)
    os.symlink(shoot / "gone.jpg", shoot / "broken.jpg")
    sel = find_photos([shoot], recursive=True)
    assert [p.relative_to(shoot).as_posix() for p in sel.paths] == ["b.jpg", "day1/c.jpg"]
    assert dict(sel.passed_over) == {
        shoot / "a_link.jpg": f"counted once: a link to {shoot / 'b.jpg'}",
        shoot / "hard.jpg": f"counted once: the same file (a hard link) as {shoot / 'day1' / 'c.jpg'}",
        shoot / "a_day1_again": f"not followed: a link to {shoot / 'day1'}, already scanned",
    }
    assert sel.unreadable == [(shoot / "broken.jpg", "broken link: the file it points to does not exist")]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads every folder")
def test_a_folder_without_read_permission_is_reported_not_skipped(tmp_path):
    (tmp_path / "locked").mkdir()
    photo(64, 48).save(tmp_path / "locked" / "x.jpg")
    photo(64, 48).save(tmp_path / "y.jpg")
    (tmp_path / "locked").chmod(0)
    try:
        sel = find_photos([tmp_path], recursive=True)
    finally:
        (tmp_path / "locked").chmod(0o755)
    assert sel.paths == [tmp_path / "y.jpg"]
    assert sel.unreadable == [(tmp_path / "locked", "Permission denied")]
