"""`clipiqa-desktop move-rejects`: what it prints, exit codes 0/1/2, --dry-run, --undo, -r and --to."""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

import pytest

from clipiqa_desktop.catalog import Catalog
from clipiqa_desktop.catalog.moves import pending_batches
from clipiqa_desktop.cli import main

from .culling.test_move_rejects import NONE, PICK, REJECT, make_shoot, snapshot, where
from .culling.test_move_rejects import where as where_is


def dump(db: Path) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return [
            *con.execute("SELECT id, folder_id, name FROM photos ORDER BY id"),
            *con.execute("SELECT * FROM move_batches"),
            *con.execute("SELECT * FROM moved_files"),
        ]
    finally:
        con.close()


@pytest.fixture
def shoot(tmp_path):
    db = tmp_path / "catalog.sqlite"
    cat = Catalog(db)
    folder = tmp_path / "shoot"
    ids = make_shoot(
        cat,
        folder,
        {
            "IMG_1.CR2": REJECT,
            "IMG_1.JPG": NONE,
            "IMG_1.CR2.xmp": 10,
            "IMG_2.JPG": REJECT,
            "IMG_3.CR2": REJECT,
            "IMG_3.JPG": PICK,
            "IMG_4.JPG": NONE,
        },
    )
    cat.close()
    return folder, db, ids


def test_dry_run_says_what_goes_where_and_changes_nothing(shoot, capsys):
    folder, db, _ids = shoot
    files, rows = snapshot(folder), dump(db)
    assert main(["move-rejects", str(folder), "--dry-run", "--catalog", str(db)]) == 0
    out, err = capsys.readouterr()
    target = folder.resolve() / "_rejected"
    assert f"would move 2 rejected photos (4 files with 1 RAW+JPEG partner and 1 sidecar) to {target}" in err
    assert "IMG_3.CR2 is rejected but IMG_3.JPG is picked: left in place" in err
    assert "2 rejected photos, 1 RAW+JPEG partner, 1 sidecar: 4 files" in out
    assert f"4 files: {folder.resolve()} -> {target}" in out
    assert snapshot(folder) == files and dump(db) == rows


def test_move_then_undo_exit_zero_and_a_second_undo_has_nothing_to_do(shoot, capsys):
    folder, db, ids = shoot
    before = snapshot(folder)
    assert main(["move-rejects", str(folder), "--catalog", str(db)]) == 0
    err = capsys.readouterr().err
    assert "moved 2 rejected photos, 4 files in all" in err
    # the undo it suggests works pasted as shown: on the same catalog
    assert f"(undo: clipiqa-desktop move-rejects {folder} --undo --catalog {db})" in err
    assert sorted(os.listdir(folder / "_rejected")) == [
        "IMG_1.CR2",
        "IMG_1.CR2.xmp",
        "IMG_1.JPG",
        "IMG_2.JPG",
    ]
    cat = Catalog(db)
    try:
        assert where(cat, ids["IMG_2.JPG"]) == folder.resolve() / "_rejected" / "IMG_2.JPG"
    finally:
        cat.close()
    assert main(["move-rejects", str(folder), "--undo", "--catalog", str(db)]) == 0
    assert "put back 4 files" in capsys.readouterr().err
    assert snapshot(folder) == before and not (folder / "_rejected").exists()
    assert main(["move-rejects", str(folder), "--undo", "--catalog", str(db)]) == 2
    assert "no move of rejects to undo" in capsys.readouterr().err


def test_recursive_with_an_absolute_target(tmp_path, capsys):
    db = tmp_path / "catalog.sqlite"
    cat = Catalog(db)
    card = tmp_path / "DCIM"
    make_shoot(cat, card, {"100CANON/a.JPG": REJECT, "101CANON/b.JPG": REJECT, "101CANON/c.JPG": NONE})
    cat.close()
    aside = tmp_path / "aside"
    assert main(["move-rejects", str(card), "--catalog", str(db)]) == 0  # not -r: nothing of its own
    assert "no rejected photos to move" in capsys.readouterr().err
    assert main(["move-rejects", "-r", str(card), "--to", str(aside), "--catalog", str(db)]) == 0
    assert (aside / "100CANON" / "a.JPG").is_file() and (aside / "101CANON" / "b.JPG").is_file()
    assert (card / "101CANON" / "c.JPG").is_file()


def test_a_frame_that_cannot_move_is_reported_and_the_exit_status_is_one(shoot, capsys, monkeypatch):
    """A full disk for one file, injected at the OS boundary (the real full disk is tested in
    tests/culling/test_move_rejects.py)."""
    folder, db, ids = shoot
    real_link = os.link

    def link(src, dst, **kwargs):
        if Path(src).name == "IMG_1.JPG":
            raise OSError(errno.ENOSPC, "No space left on device", str(src), None, str(dst))
        return real_link(src, dst, **kwargs)

    monkeypatch.setattr(os, "link", link)
    assert main(["move-rejects", str(folder), "--catalog", str(db)]) == 1
    err = capsys.readouterr().err
    assert "IMG_1.CR2: No space left on device" in err and "the frame stays where it was" in err
    assert sorted(os.listdir(folder / "_rejected")) == ["IMG_2.JPG"]
    cat = Catalog(db)
    try:
        assert where(cat, ids["IMG_1.CR2"]) == folder.resolve() / "IMG_1.CR2"
        assert (folder / "IMG_1.CR2").is_file()
    finally:
        cat.close()


def test_a_folder_that_is_not_indexed_exits_two_with_one_line(tmp_path, capsys):
    db = tmp_path / "catalog.sqlite"
    Catalog(db).close()
    (tmp_path / "empty").mkdir()
    assert main(["move-rejects", str(tmp_path / "empty"), "--catalog", str(db)]) == 2
    err = capsys.readouterr().err
    assert "is not in the catalog" in err and len(err.strip().splitlines()) == 1
    assert main(["move-rejects", str(tmp_path / "nowhere"), "--catalog", str(db)]) == 2
    assert "does not exist" in capsys.readouterr().err


KILLER = """
import os, signal, sys
from clipiqa_desktop import cli
from clipiqa_desktop.culling import move_rejects as mr
where, n = sys.argv[1], int(sys.argv[2])
calls = [0]

def kill_on(real):
    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] > n:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    return wrapper

if where == "unlink":  # between a file's hard link and the removal of its old name
    os.unlink = kill_on(os.unlink)
elif where == "move":  # after n whole files moved
    mr.move_file = kill_on(mr.move_file)
elif where == "finish":  # every file moved, the catalog not told yet
    mr.finish_move = kill_on(mr.finish_move)
sys.exit(cli.main(sys.argv[3:]))
"""


@pytest.mark.parametrize(
    ("where", "n", "then"),
    [
        ("move", 0, "rerun"),
        ("move", 3, "undo"),
        ("unlink", 4, "rerun"),
        ("unlink", 4, "undo"),
        ("finish", 0, "undo"),
    ],
)
def test_a_run_killed_at_any_point_is_repaired_by_a_rerun_or_an_undo(tmp_path, capsys, where, n, then):
    """A real SIGKILL of the `move-rejects` process at a chosen point (before the first file, after
    3 files, between a link and its unlink, before the catalog is told); the next run settles it."""
    import subprocess
    import sys

    db = tmp_path / "catalog.sqlite"
    cat = Catalog(db)
    folder = tmp_path / "shoot"
    files = {}
    for i in range(4):
        files |= {f"F{i}.CR2": REJECT, f"F{i}.JPG": NONE, f"F{i}.CR2.xmp": 10}
    files |= {"KEEP.JPG": PICK}
    ids = make_shoot(cat, folder, files)
    cat.close()
    before = snapshot(folder)
    args = ["move-rejects", str(folder), "--catalog", str(db)]
    killer = [sys.executable, "-c", KILLER, where, str(n), *args]
    assert subprocess.run(killer, capture_output=True, timeout=60).returncode == -9
    # Every file is at its old or its new place, never lost, never two different copies.
    target = folder / "_rejected"
    for name, content in before.items():
        here, there = folder / name, target / name
        assert here.is_file() or there.is_file(), name
        assert (here.read_bytes() if here.is_file() else there.read_bytes()) == content

    if then == "rerun":
        assert main(args) == 0, capsys.readouterr().err
        assert sorted(os.listdir(target)) == sorted(name for name in before if name != "KEEP.JPG")
        assert sorted(os.listdir(folder)) == ["KEEP.JPG", "_rejected"]
        assert main([*args, "--undo"]) == 0  # the rerun's batch
    if where != "move" or n > 0:
        assert main([*args, "--undo"]) == 0, capsys.readouterr().err  # what the killed run moved
    assert main([*args, "--undo"]) == 2  # nothing left to undo
    assert snapshot(folder) == before and not target.exists()
    cat = Catalog(db)
    try:
        for name, pid in ids.items():
            assert where_is(cat, pid) == folder.resolve() / name
        assert not pending_batches(cat, folder.resolve())
    finally:
        cat.close()


def test_undo_with_the_target_drive_not_mounted_does_nothing_and_says_why(shoot, tmp_path, capsys):
    folder, db, _ids = shoot
    ext = tmp_path / "ext"
    assert main(["move-rejects", str(folder), "--to", str(ext / "rej"), "--catalog", str(db)]) == 0
    ext.rename(tmp_path / "unmounted")
    capsys.readouterr()
    assert main(["move-rejects", str(folder), "--undo", "--catalog", str(db)]) == 2
    err = capsys.readouterr().err
    assert (
        err.strip()
        == f"clipiqa-desktop: {ext / 'rej'} is not there (is its drive mounted?); nothing was put back"
    )
    (tmp_path / "unmounted").rename(ext)
    assert main(["move-rejects", str(folder), "--undo", "--catalog", str(db)]) == 0
    assert "put back 4 files" in capsys.readouterr().err


def test_a_folder_with_only_sub_folders_says_how_to_reach_them(shoot, capsys):
    """A card's DCIM holds no photos itself: nothing moves without -r, and the message says the
    command that would (on the same catalog)."""
    folder, db, _ids = shoot
    files = snapshot(folder)
    dcim = folder.parent
    assert main(["move-rejects", str(dcim), "--catalog", str(db)]) == 0
    err = capsys.readouterr().err
    assert (
        f"its sub-folders hold 6 more photos: `clipiqa-desktop move-rejects -r {dcim} --catalog {db}`" in err
    )
    assert snapshot(folder) == files
