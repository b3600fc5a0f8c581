"""`clipiqa-desktop roots` and the commands on a catalog shared by two machines (CLIPIQA_MACHINE=a / b)
that see one shared folder at two local paths (two copies of the same files: the catalog resolves
paths, so a symlink would make both machines one path and prove nothing)."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest

from clipiqa_desktop.catalog.roots import MACHINE_ENV
from clipiqa_desktop.cli import main

from .conftest import TINY_ARGS as MODEL
from .conftest import photo

NAMES = ["IMG_0.jpg", "IMG_1.jpg", "IMG_2.jpg", "IMG_3.jpg"]


@pytest.fixture
def share(tmp_path, monkeypatch):
    a = tmp_path / "volA" / "shoots"
    (a / "2026" / "wedding").mkdir(parents=True)
    for i, name in enumerate(NAMES):
        photo(160, 120, seed=i).save(a / "2026" / "wedding" / name)
    b = tmp_path / "mntB" / "shoots"
    b.parent.mkdir()
    shutil.copytree(a, b)  # copy2 keeps mtimes: unchanged on b
    monkeypatch.setenv(MACHINE_ENV, "a")
    return a, b, ["--catalog", str(tmp_path / "c.sqlite")]


def _as(monkeypatch, machine: str) -> None:
    monkeypatch.setenv(MACHINE_ENV, machine)


def _list(folder, cat, capsys) -> list[dict]:
    assert main(["list", str(folder), *cat, "--format", "json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_index_on_a_then_b_finds_the_same_photos_and_decisions(share, capsys, monkeypatch, tmp_path):
    a, b, cat = share
    # a solo user indexes and culls, then starts sharing: everything is kept
    assert main(["index", "-r", str(a), *cat, *MODEL, "--size", "128"]) == 0
    assert main(["rate", str(a / "2026" / "wedding" / "IMG_1.jpg"), *cat, "--reject"]) == 0
    assert main(["roots", "add", "shoots", str(a), *cat]) == 0
    err = capsys.readouterr().err
    assert f"root 'shoots' is {a} on a (this machine)" in err
    assert "2 folder(s) under" in err and "now stored as shoots:/" in err

    _as(monkeypatch, "b")
    wedding = b / "2026" / "wedding"
    # b has no mount yet: every command says so (and what to type), and indexes nothing, also from
    # a folder above the share (refused before anything is decoded: no folder row for it either)
    for command in (
        ["list", str(wedding)],
        ["index", "-r", str(b), *MODEL, "--size", "128"],
        ["index", "-r", str(b.parent), *MODEL, "--size", "128"],
        ["rate", str(wedding / "IMG_0.jpg"), "--pick"],
        ["move-rejects", str(wedding), "--dry-run"],
    ):
        assert main([*command, *cat]) == 2, command
        err = capsys.readouterr().err
        assert "root 'shoots' is not mounted on this machine (b)" in err, err
        assert f"clipiqa-desktop roots add shoots {b} --catalog" in err
        assert "Traceback" not in err
    db = tmp_path / "c.sqlite"
    with sqlite3.connect(db) as con:
        assert sorted(p for (p,) in con.execute("SELECT path FROM folders")) == [
            "shoots:/",
            "shoots:/2026/wedding",
        ]

    assert main(["roots", "add", "shoots", str(b), *cat]) == 0
    capsys.readouterr()
    assert main(["index", "-r", str(b), *cat, *MODEL, "--size", "128"]) == 0
    assert "indexed 0, unchanged 4" in capsys.readouterr().err, "no re-index on b"
    # a tree above b's mount holds it too: unchanged, nothing new, nothing missing
    assert main(["index", "-r", str(b.parent), *cat, *MODEL, "--size", "128"]) == 0
    assert "indexed 0, unchanged 4" in capsys.readouterr().err
    rows = _list(wedding, cat, capsys)
    assert [r["path"] for r in rows] == [str(wedding / n) for n in NAMES], "b's own paths"
    assert [r["rating"] for r in rows] == [0, -1, 0, 0], "a's decision"
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT count(*) FROM photos").fetchone()[0] == 4
        assert con.execute("SELECT count(*) FROM photos WHERE status != 'ok'").fetchone()[0] == 0
        paths = sorted(p for (p,) in con.execute("SELECT path FROM folders"))
    assert "shoots:/2026/wedding" in paths and not any(p.startswith(str(b)) for p in paths)

    # a decision on b shows on a, by a's path
    assert main(["rate", str(wedding / "IMG_2.jpg"), *cat, "--stars", "4"]) == 0
    _as(monkeypatch, "a")
    capsys.readouterr()
    rows = _list(a / "2026" / "wedding", cat, capsys)
    assert [r["rating"] for r in rows] == [0, -1, 4, 0]
    assert rows[0]["path"] == str(a / "2026" / "wedding" / "IMG_0.jpg")

    # the share gone from b's mount point (NAS unplugged): b's photos are not marked missing
    _as(monkeypatch, "b")
    b.rename(b.parent / "unplugged")
    b.mkdir()
    assert main(["index", "-r", str(b.parent), *cat, *MODEL, "--size", "128"]) in (0, 1)
    capsys.readouterr()
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT count(*) FROM photos WHERE status != 'ok'").fetchone()[0] == 0


def test_roots_list_marks_this_machine(share, capsys, monkeypatch):
    a, _b, cat = share
    assert main(["index", str(a / "2026" / "wedding"), *cat, *MODEL, "--size", "128"]) == 0
    assert main(["roots", *cat]) == 0
    assert "no folder roots" in capsys.readouterr().err
    assert main(["roots", "add", "shoots", str(a), *cat]) == 0
    assert main(["roots", "add", "shoots", "/srv/nas/shoots", "--machine", "b", *cat]) == 0
    capsys.readouterr()
    assert main(["roots", "list", *cat]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"* shoots  a  {a}", "  shoots  b  /srv/nas/shoots"]
    assert "shoots: 1 folder(s) in the catalog" in err and "* = this machine (a)" in err
    _as(monkeypatch, "c")
    assert main(["roots", *cat]) == 0
    assert "not mounted on this machine (c)" in capsys.readouterr().err


def test_bad_input_is_refused_with_a_message(share, capsys, tmp_path):
    a, _b, cat = share
    assert main(["index", str(a / "2026" / "wedding"), *cat, *MODEL, "--size", "128"]) == 0
    capsys.readouterr()
    a_file = a / "2026" / "wedding" / "IMG_0.jpg"
    for args, why in (
        (["add", "shoots", "relative/path"], "is a relative path"),
        (["add", "shoots", str(tmp_path / "nowhere")], "does not exist on this machine"),
        (["add", "shoots", str(a_file)], "is not a folder"),
        (["add", "a/b", str(a)], "cannot name a root"),
        (["add", "sh:oots", str(a)], "cannot name a root"),
        (["add", "s", str(a)], "cannot name a root"),
        (["add", "shoots", "relative", "--machine", "b"], "is not an absolute path"),
        (["remove", "shoots"], "root 'shoots' is not mounted on a"),
    ):
        assert main(["roots", *args, *cat]) == 2, args
        err = capsys.readouterr().err
        assert why in err and "Traceback" not in err, (args, err)
    assert main(["roots", "add", "shoots", str(a), *cat]) == 0
    assert main(["roots", "add", "inner", str(a / "2026"), *cat]) == 2
    assert "roots cannot be nested" in capsys.readouterr().err
    # the last mount removed: the folders are a's local paths again, list works as before
    assert main(["roots", "remove", "shoots", *cat]) == 0
    assert "it was the last mount: its 1 folder(s)" in capsys.readouterr().err
    assert len(_list(a / "2026" / "wedding", cat, capsys)) == 4


def test_another_machines_mount_keeps_a_drive_root_and_names_match_in_any_case(share, capsys):
    _a, _b, cat = share
    # `roots add` may be the first command on a new catalog (a studio's empty database)
    assert main(["roots", "add", "shoots", "S:\\", "--machine", "EDIT-PC", *cat]) == 0
    assert main(["roots", "add", "archive", "T:\\Archive\\", "--machine", "edit-pc", *cat]) == 0
    capsys.readouterr()
    assert main(["roots", "list", *cat]) == 0
    out = [line.split() for line in capsys.readouterr().out.splitlines()]
    # "S:" alone would be drive S's current folder; the trailing separator of a folder is dropped
    assert out == [["archive", "edit-pc", "T:\\Archive"], ["shoots", "edit-pc", "S:\\"]]
