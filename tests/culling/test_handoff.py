"""write_sidecars: the catalog's decisions and scores in each photo's sidecar, on real files and a
real catalog; both namings, the RAW+JPEG collision, idempotence, failures per file."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from clipiqa_desktop.catalog import Catalog, Decision, PhotoRecord
from clipiqa_desktop.catalog.records import SidecarState
from clipiqa_desktop.culling.handoff import XmpOptions, folder_photo_ids, write_sidecars
from clipiqa_desktop.culling.sidecars import sidecar_to_read
from clipiqa_desktop.culling.xmp import parse_decision
from clipiqa_desktop.culling.xmp_import import import_changed_sidecars

from ..catalog.test_errors import read_only_view, small_disk
from .test_xmp_write import LIGHTROOM, exiftool, exiv2, needs_readers

NAMES = ("IMG_1.CR2", "IMG_1.JPG", "IMG_2.JPG", "IMG_3.NEF")


def shoot(folder: Path, catalog: Catalog, names=NAMES, analysis: str = "512") -> dict[str, int]:
    """Photo files (their bytes do not matter here) indexed into `catalog` with scores."""
    folder.mkdir(exist_ok=True)
    for n in names:
        (folder / n).write_bytes(b"photo " + n.encode())
    fid = catalog.folder_id(folder)
    aid = catalog.analysis_id("tiny-model", analysis, 4, 100.0)
    assert fid is not None and aid is not None
    emb = np.array([0.6, 0.8, 0.0, 0.0], dtype=np.float32)
    records = [
        PhotoRecord(
            n,
            7,
            1,
            fingerprint=f"fp-{folder}-{n}",
            scores={"quality": 0.1 * (i + 1), "sharpness": 0.5},
            embedding=emb,
        )
        for i, n in enumerate(names)
    ]
    ids = catalog.write_batch(fid, aid, records)
    catalog.set_last_analysis(fid, aid)
    return ids


def read_sidecars(catalog: Catalog, folder: Path, ids: dict[str, int]) -> None:
    """What an index run does with the sidecars already beside the photos: import and record them
    (culling/xmp_import.py), so that the catalog knows them."""
    names = os.listdir(folder)

    def sidecar_of(photo: Path) -> str | None:
        found = sidecar_to_read(photo, names)
        return None if found is None else str(found)

    result = import_changed_sidecars(catalog, [(i, folder / n) for n, i in ids.items()], sidecar_of)
    assert result.problems == []


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


@needs_readers
def test_darktable_naming_writes_every_photo_its_own_sidecar(catalog, tmp_path):
    folder = tmp_path / "shoot"
    ids = shoot(folder, catalog)
    catalog.set_decisions({ids["IMG_1.CR2"]: Decision(-1), ids["IMG_1.JPG"]: Decision(5, True, "Red")})
    report = write_sidecars(catalog, ids.values())
    assert report.summary() == "wrote 4 sidecars, 0 unchanged"
    assert (report.skipped, report.failed) == ([], [])
    raw, jpg = folder / "IMG_1.CR2.xmp", folder / "IMG_1.JPG.xmp"
    assert exiftool(raw)["XMP-xmp:Rating"] == -1 and exiv2(raw)["Xmp.digiKam.PickLabel"] == "1"
    tags = exiftool(jpg)
    assert (tags["XMP-xmp:Rating"], tags["XMP-xmp:Label"], tags["XMP-digiKam:PickLabel"]) == (5, "Red", 3)
    assert tags["XMP-clipiqa:Quality"] == 0.2 and tags["XMP-clipiqa:Model"] == "tiny-model"
    assert exiv2(folder / "IMG_3.NEF.xmp")["Xmp.xmp.Rating"] == "0"
    assert [p.read_bytes() for p in sorted(folder.glob("IMG_*")) if p.suffix != ".xmp"] == [
        b"photo " + n.encode() for n in sorted(NAMES)
    ], "photos untouched"
    # recorded: the XMP-in import will not take our own write for another tool's edit
    with catalog.transaction() as tx:
        states = tx.sidecar_states(list(ids.values()))
    st = raw.stat()
    assert states[ids["IMG_1.CR2"]] == SidecarState("IMG_1.CR2.xmp", st.st_mtime_ns, st.st_size)


@needs_readers
def test_adobe_naming_and_the_raw_jpeg_collision(catalog, tmp_path):
    folder = tmp_path / "shoot"
    ids = shoot(folder, catalog)
    catalog.set_decisions({ids["IMG_1.CR2"]: Decision(-1), ids["IMG_1.JPG"]: Decision(5, True)})
    report = write_sidecars(catalog, ids.values(), XmpOptions(naming="adobe"))
    assert sorted(p.name for p in folder.glob("*.xmp")) == ["IMG_1.xmp", "IMG_2.xmp", "IMG_3.xmp"]
    assert exiftool(folder / "IMG_1.xmp")["XMP-xmp:Rating"] == -1, "the RAW's decision, never the JPEG's"
    [(skipped, why)] = report.skipped
    assert skipped == folder / "IMG_1.JPG" and "belongs to the RAW file IMG_1.CR2" in why
    assert report.summary() == "wrote 3 sidecars, 0 unchanged, 1 skipped"
    assert report.problems() == [f"skipped {folder / 'IMG_1.JPG'}: {why}"]


@pytest.mark.parametrize("naming", ["darktable", "adobe"])
def test_a_second_export_changes_no_byte_and_no_mtime(catalog, tmp_path, naming):
    folder = tmp_path / "shoot"
    ids = shoot(folder, catalog)
    catalog.set_decisions({ids["IMG_2.JPG"]: Decision(3, False, "Blue")})
    (folder / ("IMG_3.xmp" if naming == "adobe" else "IMG_3.NEF.xmp")).write_bytes(LIGHTROOM)
    read_sidecars(catalog, folder, ids)
    first = write_sidecars(catalog, ids.values(), XmpOptions(naming=naming, reject_as="label"))
    assert len(first.written) == (3 if naming == "adobe" else 4)
    before = snapshot(folder)
    second = write_sidecars(catalog, ids.values(), XmpOptions(naming=naming, reject_as="label"))
    assert second.written == [] and len(second.unchanged) == len(first.written)
    assert snapshot(folder) == before, "no byte and no modification time changed"
    catalog.set_decisions({ids["IMG_2.JPG"]: Decision(-1)})
    third = write_sidecars(catalog, [ids["IMG_2.JPG"]], XmpOptions(naming=naming, reject_as="label"))
    assert len(third.written) == 1
    packet = third.written[0].read_bytes()
    assert b"<xmp:Label>Purple</xmp:Label>" in packet and b"<xmp:Rating>0</xmp:Rating>" in packet
    assert parse_decision(packet) == Decision(-1), "our reader takes our own purple label back as a reject"


def test_an_existing_sidecar_keeps_its_permissions_and_a_new_one_follows_the_umask(catalog, tmp_path):
    folder = tmp_path / "shoot"
    ids = shoot(folder, catalog, ("a.CR3", "b.CR3"))
    existing = folder / "a.CR3.xmp"
    existing.write_bytes(LIGHTROOM)
    existing.chmod(0o640)
    read_sidecars(catalog, folder, ids)
    assert len(write_sidecars(catalog, ids.values()).written) == 2
    assert existing.stat().st_mode & 0o777 == 0o640
    mask = os.umask(0)
    os.umask(mask)
    assert (folder / "b.CR3.xmp").stat().st_mode & 0o777 == 0o666 & ~mask
    assert not list(folder.glob(".*")), "no temporary file left"


def test_a_sidecar_we_cannot_parse_or_changed_by_another_tool_is_left_alone(catalog, tmp_path):
    folder = tmp_path / "shoot"
    ids = shoot(folder, catalog, ("a.CR3", "b.CR3", "c.CR3"))
    broken = folder / "a.CR3.xmp"
    broken.write_bytes(b"<x:xmpmeta half written")
    report = write_sidecars(catalog, ids.values())
    assert broken.read_bytes() == b"<x:xmpmeta half written"
    [(path, why)] = report.failed
    assert path == broken and "not valid XMP" in why and "left as it is" in why
    # another tool edits b's sidecar after our write: the next export does not overwrite its edit
    edited = folder / "b.CR3.xmp"
    theirs = edited.read_bytes().replace(b"<xmp:Rating>0</xmp:Rating>", b"<xmp:Rating>5</xmp:Rating>")
    edited.write_bytes(theirs)
    catalog.set_decisions({ids["b.CR3"]: Decision(2)})
    again = write_sidecars(catalog, [ids["b.CR3"], ids["c.CR3"]])
    assert edited.read_bytes() == theirs
    assert [p for p, _ in again.skipped] == [edited] and "another program" in again.skipped[0][1]
    assert again.unchanged == [folder / "c.CR3.xmp"]


def test_a_missing_photo_is_skipped_with_the_reason(catalog, tmp_path):
    folder = tmp_path / "shoot"
    ids = shoot(folder, catalog, ("a.CR3", "b.CR3"))
    (folder / "a.CR3").unlink()
    report = write_sidecars(catalog, ids.values())
    assert [p.name for p, _ in report.skipped] == ["a.CR3"] and "not there" in report.skipped[0][1]
    assert not (folder / "a.CR3.xmp").exists() and (folder / "b.CR3.xmp").exists()


def test_a_read_only_folder_fails_per_file_and_leaves_the_sidecars_as_they_were(catalog, tmp_path):
    real = tmp_path / "card"
    real.mkdir()
    (real / "a.CR3").write_bytes(b"a")
    (real / "b.CR3").write_bytes(b"b")
    (real / "a.CR3.xmp").write_bytes(LIGHTROOM)
    with read_only_view(real, tmp_path / "ro") as ro:
        fid = catalog.folder_id(ro)
        aid = catalog.analysis_id("tiny-model", "512", 4, 100.0)
        assert fid is not None and aid is not None
        records = [PhotoRecord(n, 1, 1, fingerprint=f"ro-{n}") for n in ("a.CR3", "b.CR3")]
        ids = catalog.write_batch(fid, aid, records)
        catalog.set_decisions({ids["a.CR3"]: Decision(-1)})
        before = snapshot(real)
        report = write_sidecars(catalog, ids.values())
        assert report.written == [] and len(report.failed) == 2, report
        for path, why in report.failed:
            assert path.parent == ro and why in ("Read-only file system", "Permission denied"), why
        assert snapshot(real) == before, "nothing written, nothing half-written, no temporary file"


def test_a_full_disk_fails_per_file_and_leaves_the_sidecars_as_they_were(catalog, tmp_path):
    with small_disk(tmp_path / "disk", 1) as disk:
        folder = disk / "shoot"
        ids = shoot(folder, catalog, ("a.CR3", "b.CR3"))
        (folder / "a.CR3.xmp").write_bytes(LIGHTROOM)
        read_sidecars(catalog, folder, ids)
        with (disk / "ballast").open("wb", buffering=0) as f:  # fill it to the last byte
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        before = snapshot(folder)
        catalog.set_decisions({ids["a.CR3"]: Decision(-1), ids["b.CR3"]: Decision(4)})
        report = write_sidecars(catalog, ids.values())
        assert report.written == [] and [p.name for p, _ in report.failed] == ["a.CR3.xmp", "b.CR3.xmp"]
        assert {why for _, why in report.failed} == {"No space left on device"}
        assert snapshot(folder) == before, "the old sidecar intact, no new or temporary file"
        (disk / "ballast").unlink()
        assert len(write_sidecars(catalog, ids.values()).written) == 2, "with space, the same export works"


def test_folder_photo_ids_with_and_without_sub_folders(catalog, tmp_path):
    top = shoot(tmp_path / "card", catalog, ("a.CR3",))
    sub = shoot(tmp_path / "card" / "100CANON", catalog, ("b.CR3",))
    assert list(folder_photo_ids(catalog, tmp_path / "card", False)) == [top["a.CR3"]]
    assert sorted(folder_photo_ids(catalog, tmp_path / "card", True)) == sorted([top["a.CR3"], sub["b.CR3"]])
    shutil.rmtree(tmp_path / "card" / "100CANON")
    report = write_sidecars(catalog, folder_photo_ids(catalog, tmp_path / "card", True))
    assert (
        len(report.written) == 1
        and len(report.failed) == 1
        and "cannot read its folder" in report.failed[0][1]
    )


def test_an_upper_case_sidecar_is_merged_into_not_doubled_and_should_stop_is_heard(catalog, tmp_path):
    folder = tmp_path / "shoot"
    ids = shoot(folder, catalog, ("a.CR3", "b.CR3"))
    upper = folder / "a.CR3.XMP"
    upper.write_bytes(LIGHTROOM)
    read_sidecars(catalog, folder, ids)
    report = write_sidecars(catalog, [ids["a.CR3"]])
    assert report.written == [upper] and not (folder / "a.CR3.xmp").exists()
    assert b"crs:Exposure2012" in upper.read_bytes()
    assert (
        write_sidecars(catalog, ids.values(), should_stop=lambda: True).summary()
        == "wrote 0 sidecars, 0 unchanged"
    )
    assert not (folder / "b.CR3.xmp").exists()


def test_packets_with_a_default_namespace_or_a_rebound_prefix_are_merged_and_the_batch_recorded(
    catalog, tmp_path
):
    """Valid XMP the byte-exact edit cannot place a property in (xmlns="…xap/1.0/", or xmp: bound
    to another URI) falls back to the tree's serialisation instead of aborting the whole batch."""
    folder = tmp_path / "shoot"
    ids = shoot(folder, catalog, ("a.CR3", "b.CR3", "c.CR3"))
    rdf = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
    (folder / "b.CR3.xmp").write_bytes(
        rdf + b'><rdf:Description rdf:about="" xmlns="http://ns.adobe.com/xap/1.0/">'
        b"<Rating>2</Rating></rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    (folder / "c.CR3.xmp").write_bytes(
        rdf + b' xmlns:xmp="http://example.com/not-xmp/"><rdf:Description rdf:about="" xmp:Rating="7"/>'
        b"</rdf:RDF></x:xmpmeta>"
    )
    read_sidecars(catalog, folder, ids)
    wanted = {"a.CR3": Decision(5, False, "Red"), "b.CR3": Decision(3, False, "Red"), "c.CR3": Decision(-1)}
    catalog.set_decisions({ids[n]: d for n, d in wanted.items()})
    report = write_sidecars(catalog, ids.values())
    assert report.summary() == "wrote 3 sidecars, 0 unchanged", report.problems()
    for name, decision in wanted.items():
        assert parse_decision((folder / f"{name}.xmp").read_bytes()) == decision, name
    assert b'xmp:Rating="7"' in (folder / "c.CR3.xmp").read_bytes(), "the other namespace's property kept"
    with catalog.transaction() as tx:
        states = tx.sidecar_states(list(ids.values()))
    assert all(states[ids[n]] is not None and states[ids[n]].name == f"{n}.xmp" for n in wanted)


def test_a_write_protected_sidecar_is_not_replaced_and_fails_with_the_reason(catalog, tmp_path):
    folder = tmp_path / "shoot"
    ids = shoot(folder, catalog, ("a.CR3", "b.CR3"))
    write_sidecars(catalog, ids.values())
    protected = folder / "a.CR3.xmp"
    protected.chmod(0o444)
    before = protected.read_bytes()
    catalog.set_decisions({ids["a.CR3"]: Decision(4), ids["b.CR3"]: Decision(2)})
    report = write_sidecars(catalog, ids.values())
    assert protected.read_bytes() == before and protected.stat().st_mode & 0o777 == 0o444
    assert report.failed == [(protected, "the sidecar is write-protected; left as it is")]
    assert report.written == [folder / "b.CR3.xmp"], "the other sidecars are written"


def test_a_sidecar_the_catalog_has_no_record_of_is_not_overwritten(catalog, tmp_path):
    """Made by darktable or Lightroom after the folder was indexed, or beside the sidecar the
    catalog reads (a naming switch): its rating and label are never replaced by ours unread."""
    folder = tmp_path / "shoot"
    ids = shoot(folder, catalog, ("a.CR3", "b.CR3"))
    theirs = folder / "a.CR3.xmp"
    theirs.write_bytes(
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
        b' xmp:Rating="4" xmp:Label="Red"/></rdf:RDF></x:xmpmeta>'
    )
    before = theirs.read_bytes()
    catalog.set_decisions({ids["a.CR3"]: Decision(0, True), ids["b.CR3"]: Decision(2)})
    report = write_sidecars(catalog, ids.values())
    assert theirs.read_bytes() == before
    assert report.written == [folder / "b.CR3.xmp"]
    [(path, why)] = report.skipped
    assert path == theirs and "index the folder to import it first" in why
    with catalog.transaction() as tx:
        assert tx.sidecar_states([ids["a.CR3"]])[ids["a.CR3"]] is None, "not taken for ours"
    read_sidecars(catalog, folder, ids)  # the index reads it: from then on it is merged into
    assert write_sidecars(catalog, [ids["a.CR3"]]).written == [theirs]
    # Adobe naming beside it: a.xmp made by Lightroom is not the one read for a.CR3 (a.CR3.xmp is)
    lightroom = folder / "a.xmp"
    lightroom.write_bytes(LIGHTROOM)
    adobe = write_sidecars(catalog, [ids["a.CR3"]], XmpOptions(naming="adobe"))
    assert lightroom.read_bytes() == LIGHTROOM and adobe.written == []
    assert [(p, "decisions are read from a.CR3.xmp" in w) for p, w in adobe.skipped] == [(lightroom, True)]


def test_no_catalog_lock_is_held_while_sidecars_are_written_and_a_record_changed_meanwhile_stays(
    catalog, tmp_path, monkeypatch
):
    """Write-as-I-cull on a slow card must not stall an index in another process: while a sidecar
    is written, another connection can take the catalog's write lock. A record another process
    made meanwhile (an index read the sidecar) is not overwritten by the one decided earlier."""
    import sqlite3

    from clipiqa_desktop.culling import handoff

    folder = tmp_path / "shoot"
    ids = shoot(folder, catalog, ("a.CR3", "b.CR3"))
    other = SidecarState("b.CR3.xmp", 1, 2)
    locked: list[str] = []
    real = handoff.write_atomically

    def write_and_probe(path, data, mode=None, sync=True):
        probe = sqlite3.connect(catalog.path, timeout=0.05, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
        except sqlite3.OperationalError as exc:
            locked.append(f"{path.name}: {exc}")
        finally:
            probe.close()
        if path.name == "a.CR3.xmp":  # meanwhile, another process records b's sidecar
            elsewhere = Catalog(catalog.path)
            try:
                with elsewhere.transaction() as tx:
                    tx.set_sidecar_state(ids["b.CR3"], other)
            finally:
                elsewhere.close()
        real(path, data, mode, sync)

    monkeypatch.setattr(handoff, "write_atomically", write_and_probe)
    report = write_sidecars(catalog, ids.values())
    assert locked == [] and len(report.written) == 2
    with catalog.transaction() as tx:
        states = tx.sidecar_states(list(ids.values()))
    st = (folder / "a.CR3.xmp").stat()
    assert states[ids["a.CR3"]] == SidecarState("a.CR3.xmp", st.st_mtime_ns, st.st_size)
    assert states[ids["b.CR3"]] == other, "the record made meanwhile stays"
