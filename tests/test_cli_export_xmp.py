"""`clipiqa-desktop export FOLDER --xmp`: in-process, on a folder indexed with the tiny model."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess

import pytest

from clipiqa_desktop.catalog import Decision
from clipiqa_desktop.cli import main
from clipiqa_desktop.culling.xmp import parse_decision

from .conftest import TINY_ARGS as MODEL
from .conftest import photo


@pytest.fixture(scope="module")
def indexed_once(tmp_path_factory):
    """A folder (and a sub-folder) indexed once for this module, one photo rejected, one picked."""
    tmp_path = tmp_path_factory.mktemp("export-xmp")
    folder = tmp_path / "shoot"
    (folder / "100CANON").mkdir(parents=True)
    for i in range(3):
        photo(96, 64, seed=i).save(folder / f"IMG_{i}.jpg")
    photo(96, 64, seed=9).save(folder / "100CANON" / "IMG_9.jpg")
    cat = ["--catalog", str(tmp_path / "c.sqlite")]
    assert main(["index", "-r", str(folder), *cat, *MODEL, "--size", "64"]) == 0
    assert main(["rate", str(folder / "IMG_0.jpg"), *cat, "--reject"]) == 0
    for change in (["--stars", "4"], ["--label", "green"], ["--pick"]):
        assert main(["rate", str(folder / "IMG_1.jpg"), *cat, *change]) == 0
    return folder, cat


@pytest.fixture
def indexed(indexed_once, capsys):
    """The indexed folder without any sidecar (each test starts from none)."""
    folder, cat = indexed_once
    for p in folder.rglob("*.xmp"):
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    capsys.readouterr()
    return folder, cat


def snapshot(folder):
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*.xmp"))}


def test_export_xmp_writes_decisions_and_scores_and_a_second_run_changes_nothing(indexed, capsys):
    folder, cat = indexed
    photos = {p: p.read_bytes() for p in folder.rglob("*.jpg")}
    assert main(["export", str(folder), *cat, "--xmp"]) == 0
    assert "wrote 3 sidecars, 0 unchanged" in capsys.readouterr().err
    assert sorted(p.name for p in folder.glob("*.xmp")) == ["IMG_0.jpg.xmp", "IMG_1.jpg.xmp", "IMG_2.jpg.xmp"]
    assert not (folder / "100CANON" / "IMG_9.jpg.xmp").exists(), "no -r: the sub-folder is left alone"
    assert {p: p.read_bytes() for p in folder.rglob("*.jpg")} == photos, "photos are never written"
    before = snapshot(folder)
    assert main(["export", str(folder), *cat, "--xmp"]) == 0
    assert "wrote 0 sidecars, 3 unchanged" in capsys.readouterr().err
    assert snapshot(folder) == before, "a second run changes no byte and no modification time"
    assert main(["export", "-r", str(folder), *cat, "--xmp"]) == 0
    assert "wrote 1 sidecar, 3 unchanged" in capsys.readouterr().err
    assert (folder / "100CANON" / "IMG_9.jpg.xmp").exists()


@pytest.mark.skipif(
    shutil.which("exiftool") is None, reason="exiftool is not installed (libimage-exiftool-perl)"
)
def test_exiftool_reads_the_exported_decisions_and_real_scores(indexed, capsys):
    folder, cat = indexed
    assert main(["export", str(folder), *cat, "--xmp"]) == 0
    out = subprocess.run(
        ["exiftool", "-j", "-G1", "-XMP:all", *(str(folder / f"IMG_{i}.jpg.xmp") for i in range(2))],
        capture_output=True,
        text=True,
        check=True,
    )
    rejected, picked = json.loads(out.stdout)
    assert rejected["XMP-xmp:Rating"] == -1 and rejected["XMP-digiKam:PickLabel"] == 1
    assert (picked["XMP-xmp:Rating"], picked["XMP-xmp:Label"], picked["XMP-digiKam:PickLabel"]) == (
        4,
        "Green",
        3,
    )
    assert isinstance(picked["XMP-clipiqa:Quality"], float) and picked["XMP-clipiqa:AnalysisSize"] == 64


def test_export_csv_and_xmp_together_and_adobe_naming(indexed, capsys, tmp_path):
    folder, cat = indexed
    out_csv = tmp_path / "out.csv"
    argv = ["export", str(folder), *cat, "--csv", str(out_csv), "--xmp", "--sidecar-naming", "adobe"]
    assert main([*argv, "--reject-as", "one-star"]) == 0
    err = capsys.readouterr().err
    assert "exported 3 photos" in err and "wrote 3 sidecars" in err
    assert len(list(csv.DictReader(io.StringIO(out_csv.read_text())))) == 3
    assert sorted(p.name for p in folder.glob("*.xmp")) == ["IMG_0.xmp", "IMG_1.xmp", "IMG_2.xmp"]
    assert b"<xmp:Rating>1</xmp:Rating>" in (folder / "IMG_0.xmp").read_bytes()
    assert b"<clipiqa:RejectedAs>Rating=1</clipiqa:RejectedAs>" in (folder / "IMG_0.xmp").read_bytes()


def test_export_xmp_reports_each_failure_and_exits_1(indexed, capsys):
    folder, cat = indexed
    (folder / "IMG_2.jpg.xmp").mkdir()  # something that is not a sidecar file is in the way
    assert main(["export", str(folder), *cat, "--xmp"]) == 1
    err = capsys.readouterr().err
    assert "wrote 2 sidecars, 0 unchanged, 1 failed" in err
    assert f"failed {folder / 'IMG_2.jpg.xmp'}: is not a regular file" in err and "Traceback" not in err


def test_export_xmp_merges_a_sidecar_with_a_default_namespace(indexed, capsys):
    """Valid XMP whose Description declares xmlns="…/xap/1.0/" (no xmp: prefix to add a Label
    with) is merged, not a KeyError traceback that leaves the whole batch unrecorded."""
    folder, cat = indexed
    sidecar = folder / "IMG_1.jpg.xmp"
    sidecar.write_bytes(
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="" xmlns="http://ns.adobe.com/xap/1.0/"><Rating>4</Rating>'
        b"</rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    assert main(["index", str(folder), *cat, *MODEL, "--size", "64"]) == 0  # the catalog reads it
    capsys.readouterr()
    assert main(["export", str(folder), *cat, "--xmp"]) == 0
    err = capsys.readouterr().err
    assert "wrote 3 sidecars, 0 unchanged" in err and "Traceback" not in err, err
    assert parse_decision(sidecar.read_bytes()) == Decision(4, True, "Green")


def test_export_needs_csv_or_xmp_and_valid_choices(indexed, capsys):
    folder, cat = indexed
    assert main(["export", str(folder), *cat]) == 2
    assert "--csv FILE, --xmp, or both" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", str(folder), *cat, "--xmp", "--sidecar-naming", "capture-one"])
    assert "invalid choice" in capsys.readouterr().err
