"""XMP in: sidecars edited by another tool after indexing are noticed on the next index run and
imported through the one decision path; real files, a real catalog, the tiny model."""

from __future__ import annotations

import io
import os
import time

import pytest

from clipiqa_desktop.catalog import Decision
from clipiqa_desktop.catalog.records import SidecarState
from clipiqa_desktop.commands.index import print_summary
from clipiqa_desktop.culling.decisions import DecisionChange, change_fn
from clipiqa_desktop.culling.handoff import XmpOptions, write_sidecars
from clipiqa_desktop.culling.xmp_import import import_changed_sidecars
from clipiqa_desktop.indexing.pipeline import IndexOptions, index_folder

from ..conftest import photo
from ..culling.test_handoff import shoot as indexed_files

OPTIONS = IndexOptions(long_side=64, batch_size=4, workers=1, thumb_long_side=32)
HOUR = 3600 * 10**9


def darktable(rating: int, extra: str = "") -> bytes:
    """A sidecar as darktable writes it: xmp:Rating and its own history, no pick, no xmp:Label."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:darktable="http://darktable.sf.net/"
   xmp:Rating="{rating}"
   darktable:xmp_version="5"
   darktable:auto_presets_applied="1">
   <darktable:colorlabels><rdf:Seq><rdf:li>0</rdf:li></rdf:Seq></darktable:colorlabels>{extra}
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
""".encode()


def digikam(rating: int, pick: int, label: str = "") -> bytes:
    """digiKam: xmp:Rating, digiKam:PickLabel (1 rejected, 3 accepted), sometimes xmp:Label."""
    lab = f' xmp:Label="{label}"' if label else ""
    return f"""<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/"
 xmlns:digiKam="http://www.digikam.org/ns/1.0/" xmp:Rating="{rating}" digiKam:PickLabel="{pick}"{lab}/>
</rdf:RDF></x:xmpmeta>""".encode()


def ours_label_reject(label: str = "Purple", keyword: str = "") -> bytes:
    """What our export writes for a reject in the "label" encoding (Lightroom users)."""
    kw = f"<dc:subject><rdf:Bag><rdf:li>{keyword}</rdf:li></rdf:Bag></dc:subject>" if keyword else ""
    return f"""<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/"
 xmlns:dc="http://purl.org/dc/elements/1.1/"
 xmlns:clipiqa="http://ns.clipiqa-desktop.org/xmp/1.0/" xmp:Rating="0" xmp:Label="{label}"
 clipiqa:RejectedAs="Label=Purple">{kw}</rdf:Description>
</rdf:RDF></x:xmpmeta>""".encode()


def put(path, data: bytes, mtime_ns: int) -> None:
    """Write a sidecar as another tool would, with a chosen modification time."""
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))


@pytest.fixture
def shoot(tmp_path):
    folder = tmp_path / "shoot"
    folder.mkdir()
    for i in range(3):
        photo(48, 32, seed=i).save(folder / f"IMG_{i}.jpg", quality=85)
    return folder


def ids(catalog, folder):
    tree = catalog.folder_ids(folder, recursive=True)
    return {k: st.id for k, st in catalog.photo_states(tree, None, root=folder).items()}


def decision(catalog, pid):
    return catalog.decisions([pid])[pid]


def index(catalog, scorer, folder):
    batches: list[list[int]] = []
    summary = index_folder(catalog, scorer, folder, OPTIONS, on_batch=batches.append)
    return summary, batches


def test_a_sidecar_edited_after_indexing_is_imported_field_by_field(catalog, tiny_scorer, shoot):
    index(catalog, tiny_scorer, shoot)
    pid = ids(catalog, shoot)["IMG_1.jpg"]
    catalog.set_decisions({pid: Decision(2, True, "Blue")})  # picked and labelled here
    later = time.time_ns() + HOUR
    put(shoot / "IMG_1.jpg.xmp", darktable(4), later)  # then 4 stars in darktable

    summary, batches = index(catalog, tiny_scorer, shoot)
    assert (summary.indexed, summary.unchanged) == (0, 3), "the photo itself was not decoded again"
    assert summary.sidecars_imported == 1 and pid in batches[0], "the window is told to refresh it"
    # darktable's sidecar says nothing of picks and labels: only the rating came in
    assert decision(catalog, pid) == Decision(4, True, "Blue")
    assert "1 decision imported from sidecars changed in another tool" in summary.notes()
    state = catalog.sidecar_states([pid])[pid]
    assert state == SidecarState("IMG_1.jpg.xmp", later, (shoot / "IMG_1.jpg.xmp").stat().st_size)

    again, _ = index(catalog, tiny_scorer, shoot)
    assert again.sidecars_imported == 0 and again.notes() == [], "an unchanged sidecar is not read again"

    # the same size, another mtime: digiKam rejects it
    put(shoot / "IMG_1.jpg.xmp", digikam(0, 1), later + HOUR)
    third, _ = index(catalog, tiny_scorer, shoot)
    assert third.sidecars_imported == 1
    assert decision(catalog, pid) == Decision(-1, False, "Blue")


def test_the_later_change_wins_both_ways(catalog, tiny_scorer, shoot):
    sidecar = shoot / "IMG_0.jpg.xmp"
    put(sidecar, darktable(3), time.time_ns() - 3 * HOUR)
    index(catalog, tiny_scorer, shoot)  # first index: the sidecar's 3 stars are taken and recorded
    pid = ids(catalog, shoot)["IMG_0.jpg"]
    assert decision(catalog, pid) == Decision(3)
    with catalog.transaction() as tx:
        assert tx.sidecar_states([pid])[pid].fields == {"rating": 3}, "what it stated is recorded"

    # both changed: the sidecar an hour ago (darktable), the catalog now (the window): ours stays
    catalog.set_decisions({pid: Decision(5)})
    put(sidecar, darktable(1), time.time_ns() - HOUR)
    summary, _ = index(catalog, tiny_scorer, shoot)
    assert (summary.sidecars_imported, summary.sidecars_kept) == (0, 1)
    assert decision(catalog, pid) == Decision(5)
    assert any("kept ours" in n for n in summary.notes())
    assert catalog.sidecar_states([pid])[pid].mtime_ns == sidecar.stat().st_mtime_ns, "not compared again"

    # both changed again, the sidecar later this time: darktable's edit comes in
    catalog.set_decisions({pid: Decision(4)})
    put(sidecar, darktable(2), time.time_ns() + HOUR)
    summary, _ = index(catalog, tiny_scorer, shoot)
    assert (summary.sidecars_imported, summary.sidecars_kept) == (1, 0)
    assert decision(catalog, pid) == Decision(2)


def test_our_own_write_is_not_an_import(catalog, tiny_scorer, shoot):
    index(catalog, tiny_scorer, shoot)
    pid = ids(catalog, shoot)["IMG_2.jpg"]
    catalog.set_decisions({pid: Decision(-1, False, "Red")})
    sidecar = shoot / "IMG_2.jpg.xmp"
    put(sidecar, ours_label_reject(), time.time_ns() + HOUR)  # the export, Lightroom "label" setting
    st = sidecar.stat()
    with catalog.transaction() as tx:  # as the export records what it wrote
        tx.set_sidecar_state(pid, SidecarState(sidecar.name, st.st_mtime_ns, st.st_size))
    summary, _ = index(catalog, tiny_scorer, shoot)
    assert (summary.sidecars_imported, summary.sidecars_kept) == (0, 0)

    # Lightroom adds a keyword: the sidecar changed, but our reject marker still holds
    put(sidecar, ours_label_reject(keyword="wedding"), time.time_ns() + 2 * HOUR)
    summary, _ = index(catalog, tiny_scorer, shoot)
    assert summary.sidecars_imported == 0
    assert decision(catalog, pid) == Decision(-1, False, "Red"), "Purple stood for the reject, Red stays"

    # the user takes the reject back in Lightroom (Purple -> Green): the marker no longer holds
    put(sidecar, ours_label_reject(label="Green"), time.time_ns() + 3 * HOUR)
    summary, _ = index(catalog, tiny_scorer, shoot)
    assert summary.sidecars_imported == 1
    assert decision(catalog, pid) == Decision(0, False, "Green")


def test_raw_plus_jpeg_adobe_sidecar_never_lands_in_the_jpeg(catalog, tiny_scorer, shoot):
    (shoot / "IMG_1.CR2").write_bytes(b"not really a raw file")  # fails to decode: a record all the same
    put(shoot / "IMG_1.xmp", digikam(5, 3), time.time_ns() - HOUR)  # Adobe naming: the RAW's
    put(shoot / "IMG_2.xmp", digikam(2, 0, "Yellow"), time.time_ns() - HOUR)  # a JPEG alone owns it
    index(catalog, tiny_scorer, shoot)
    known = ids(catalog, shoot)
    assert decision(catalog, known["IMG_1.jpg"]) == Decision()
    assert decision(catalog, known["IMG_2.jpg"]) == Decision(2, False, "Yellow")
    assert catalog.sidecar_states([known["IMG_2.jpg"]])[known["IMG_2.jpg"]].name == "IMG_2.xmp"

    put(shoot / "IMG_1.xmp", digikam(1, 0), time.time_ns() + HOUR)  # edited in Lightroom
    summary, _ = index(catalog, tiny_scorer, shoot)
    assert summary.sidecars_imported == 1
    assert decision(catalog, known["IMG_1.jpg"]) == Decision(), "never the JPEG"
    assert decision(catalog, known["IMG_1.CR2"]) == Decision(1)
    assert catalog.sidecar_states([known["IMG_1.jpg"]])[known["IMG_1.jpg"]] is None


def test_a_bad_sidecar_is_reported_and_changes_nothing(catalog, tiny_scorer, shoot):
    (shoot / "IMG_9.jpg.xmp").write_bytes(b"<x:xmpmeta><rdf:RDF>")  # beside a photo new to the catalog
    photo(48, 32, seed=9).save(shoot / "IMG_9.jpg")
    first, _ = index(catalog, tiny_scorer, shoot)
    assert dict(first.sidecar_problems) == {
        "IMG_9.jpg.xmp": "malformed XML (cut short: no closing x:xmpmeta or rdf:RDF)"
    }
    known = ids(catalog, shoot)
    catalog.set_decisions({known[f"IMG_{i}.jpg"]: Decision(3) for i in range(3)})
    later = time.time_ns() + HOUR
    put(shoot / "IMG_0.jpg.xmp", darktable(1).replace(b"</rdf:Description>", b""), later)
    put(shoot / "IMG_1.jpg.xmp", darktable(1, extra=" " * (17 * 1024 * 1024)), later)
    (shoot / "IMG_2.jpg.xmp").mkdir()  # not a file: cannot be read

    summary, _ = index(catalog, tiny_scorer, shoot)
    problems = dict(summary.sidecar_problems)
    assert problems.keys() == {"IMG_0.jpg.xmp", "IMG_1.jpg.xmp", "IMG_2.jpg.xmp", "IMG_9.jpg.xmp"}
    assert problems["IMG_0.jpg.xmp"].startswith("malformed XML (mismatched tag: line ")
    assert problems["IMG_1.jpg.xmp"] == "larger than 16 MiB, not an XMP sidecar"
    assert problems["IMG_2.jpg.xmp"] == "cannot read it: Is a directory"
    assert any(n.startswith("4 sidecars not read, decisions unchanged (") for n in summary.notes())
    assert summary.sidecars_imported == 0
    assert all(decision(catalog, known[f"IMG_{i}.jpg"]) == Decision(3) for i in range(3))
    assert set(catalog.sidecar_states(list(known.values())).values()) == {None}, "nothing recorded"
    out = io.StringIO()
    print_summary(summary, shoot, out)  # `index` lists each one under its summary line
    assert "  sidecar not read (decision unchanged): IMG_2.jpg.xmp: cannot read it: Is a directory\n" in (
        out.getvalue()
    )

    put(shoot / "IMG_0.jpg.xmp", darktable(1), later)  # fixed: now it comes in
    summary, _ = index(catalog, tiny_scorer, shoot)
    assert summary.sidecars_imported == 1 and len(summary.sidecar_problems) == 3


def test_a_removed_sidecar_keeps_the_decision(catalog, tiny_scorer, shoot):
    put(shoot / "IMG_0.jpg.xmp", darktable(4), time.time_ns() - HOUR)
    index(catalog, tiny_scorer, shoot)
    pid = ids(catalog, shoot)["IMG_0.jpg"]
    assert decision(catalog, pid) == Decision(4)
    (shoot / "IMG_0.jpg.xmp").unlink()
    summary, _ = index(catalog, tiny_scorer, shoot)
    assert summary.sidecars_removed == 1 and "1 sidecar removed (decisions kept)" in summary.notes()
    assert decision(catalog, pid) == Decision(4)
    assert catalog.sidecar_states([pid])[pid] is None


@pytest.mark.parametrize("reject_as", ["rating", "one-star", "label"])
def test_what_our_export_wrote_is_not_imported_and_reads_back_as_it_was(
    catalog, tiny_scorer, shoot, reject_as
):
    index(catalog, tiny_scorer, shoot)
    known = ids(catalog, shoot)
    wanted = {
        known["IMG_0.jpg"]: Decision(-1, False, "Red"),
        known["IMG_1.jpg"]: Decision(3, True, "Green"),
        known["IMG_2.jpg"]: Decision(-1),
    }
    catalog.set_decisions(wanted)
    report = write_sidecars(catalog, list(wanted), XmpOptions(naming="adobe", reject_as=reject_as))
    assert len(report.written) == 3
    summary, _ = index(catalog, tiny_scorer, shoot)
    assert (summary.sidecars_imported, summary.sidecars_kept, summary.sidecar_problems) == (0, 0, [])

    # as if the catalog had never recorded them (a lost record, another machine): read back, they
    # still say exactly what the catalog says, so importing them changes nothing
    with catalog.transaction() as tx:
        for pid in wanted:
            tx.set_sidecar_state(pid, None)
    for path in report.written:
        os.utime(path, ns=(time.time_ns() + HOUR,) * 2)
    summary, _ = index(catalog, tiny_scorer, shoot)
    assert (summary.sidecars_imported, summary.sidecar_problems) == (0, [])
    assert catalog.decisions(list(wanted)) == wanted


def test_the_fast_lookup_finds_the_same_sidecar_as_the_naming_rules(tmp_path):
    """The indexer's string-only lookup (run for every photo on every run) agrees with
    culling.sidecars.sidecar_to_read on every case of the naming rules."""
    from clipiqa_desktop.culling.sidecars import sidecar_to_read
    from clipiqa_desktop.indexing.pipeline import _Names

    names = [
        *("A.CR2", "A.JPG", "A.xmp"),  # RAW+JPEG, Adobe naming: the RAW's
        *("B.CR2", "B.DNG", "B.xmp"),  # two RAWs: nobody's
        *("C.JPG", "C.PNG", "C.XMP"),  # two non-RAWs: nobody's
        *("D.CR3", "D.CR3.XMP", "D.xmp"),  # darktable naming (upper case) first
        *("E.jpg", "e.xmp"),  # another case: not the same file name
        *("F.tar.jpg", "F.tar.xmp", "F.xmp"),
        *("G.NEF", "G.NEF.xmp", "G.JPG", "G.JPG.xmp"),
        *("H.jpg", "notes.txt", ".hidden.xmp"),
    ]
    listed = {tmp_path: frozenset(names)}
    fast = _Names(listed)
    for name in names:
        photo = tmp_path / name
        expected = sidecar_to_read(photo, names)
        assert fast.sidecar(photo) == (None if expected is None else str(expected)), name


def test_only_the_fields_the_other_tool_changed_come_in(catalog, tmp_path):
    """Three-way: the sidecar's fields are compared with what it stated when we last wrote or read
    it, not the sidecar's time with the decision's: a develop-only edit brings nothing back, and a
    label given here later does not drop a rating given there earlier."""
    folder = tmp_path / "shoot"
    pid = indexed_files(folder, catalog, ("a.CR3",))["a.CR3"]
    photo_path, sidecar = folder / "a.CR3", folder / "a.CR3.xmp"
    catalog.set_decisions({pid: Decision(3)})
    write_sidecars(catalog, [pid])  # File > Export XMP: Rating 3
    with catalog.transaction() as tx:
        assert tx.sidecar_states([pid])[pid].fields == {"rating": 3}, "the export records what it wrote"

    def run():
        return import_changed_sidecars(catalog, [(pid, photo_path)], lambda p: f"{p}.xmp")

    # Lightroom gives 2 stars; then, later, a label is given here: the rating still comes in
    exported = sidecar.read_bytes()
    put(sidecar, exported.replace(b"<xmp:Rating>3<", b"<xmp:Rating>2<"), time.time_ns() - HOUR)
    catalog.update_decisions([pid], change_fn(DecisionChange(label="Red")))
    report = run()
    assert (report.imported, report.kept) == ([pid], [])
    assert decision(catalog, pid) == Decision(2, False, "Red")

    # 5 stars here; darktable then changes only develop settings: the 2 it rewrites is not news
    catalog.update_decisions([pid], change_fn(DecisionChange(stars=5)))
    develop = b'<rdf:Description rdf:about="" xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/"'
    edited = sidecar.read_bytes().replace(b"</rdf:RDF>", develop + b' crs:Exposure2012="+0.30"/></rdf:RDF>')
    put(sidecar, edited, time.time_ns() + HOUR)
    report = run()
    assert (report.imported, report.kept) == ([], [])
    assert decision(catalog, pid) == Decision(5, False, "Red")

    # both sides change the rating: the later change wins (here: ours)
    catalog.update_decisions([pid], change_fn(DecisionChange(stars=4)))
    put(sidecar, edited.replace(b"<xmp:Rating>2<", b"<xmp:Rating>1<"), time.time_ns() - 2 * HOUR)
    report = run()
    assert (report.imported, report.kept) == ([], [pid])
    assert decision(catalog, pid) == Decision(4, False, "Red")
    with catalog.transaction() as tx:
        assert tx.sidecar_states([pid])[pid].fields == {"rating": 1}, "the record follows the file"


def test_a_photo_with_two_sidecars_says_which_one_is_never_read(catalog, tiny_scorer, shoot):
    """IMG_2.jpg.xmp (darktable naming, read) beside IMG_2.xmp (Adobe naming, e.g. Lightroom's): edits
    in IMG_2.xmp could never come in, so every run says so until one is removed."""
    put(shoot / "IMG_2.jpg.xmp", darktable(3), time.time_ns() - HOUR)
    index(catalog, tiny_scorer, shoot)
    put(shoot / "IMG_2.xmp", digikam(5, 0), time.time_ns())
    summary, _ = index(catalog, tiny_scorer, shoot)
    assert decision(catalog, ids(catalog, shoot)["IMG_2.jpg"]) == Decision(3)
    assert [(rel, why) for rel, why in summary.sidecar_problems if rel == "IMG_2.xmp"] == [
        (
            "IMG_2.xmp",
            "not read: IMG_2.jpg's decisions come from IMG_2.jpg.xmp; remove one of its two sidecars",
        )
    ]
    (shoot / "IMG_2.xmp").unlink()
    assert index(catalog, tiny_scorer, shoot)[0].sidecar_problems == []
