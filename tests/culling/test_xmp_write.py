"""merge_packet: our fields set, everything else kept, proven with two independent readers
(exiftool and exiv2) on real files."""

from __future__ import annotations

import difflib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from clipiqa_desktop.catalog import Decision
from clipiqa_desktop.culling.xmp_write import (
    CLIPIQA_NS,
    NEW_PACKET,
    XmpError,
    XmpFields,
    fields_for,
    merge_packet,
)

SCORES = {"quality": 0.51234, "sharpness": 0.2}
MODEL = "ViT-B-32/laion2b_s34b_b79k"

# What Lightroom Classic writes beside a RAW file (layout, namespaces and develop settings as it
# writes them), plus a comment and a namespace no tool here knows; rating and label set by LR.
LIGHTROOM = b"""<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="Adobe XMP Core 7.0-c000 1.000000, 2024/01/01">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:tiff="http://ns.adobe.com/tiff/1.0/"
    xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"
    xmlns:stEvt="http://ns.adobe.com/xap/1.0/sType/ResourceEvent#"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/"
   xmp:ModifyDate="2024-05-01T12:00:00+02:00"
   xmp:Rating="4"
   xmp:Label="To print"
   tiff:Make="Canon"
   xmpMM:DocumentID="xmp.did:0a1b2c3d"
   xmpMM:InstanceID="xmp.iid:4e5f6a7b"
   crs:Version="16.3"
   crs:ProcessVersion="15.4"
   crs:WhiteBalance="As Shot"
   crs:Exposure2012="+0.35"
   crs:Contrast2012="+12"
   crs:Highlights2012="-40"
   crs:HasCrop="False">
   <xmpMM:History>
    <rdf:Seq>
     <rdf:li
      stEvt:action="saved"
      stEvt:instanceID="xmp.iid:4e5f6a7b"
      stEvt:when="2024-05-01T12:00:00+02:00"
      stEvt:softwareAgent="Adobe Photoshop Lightroom Classic 13.3 (Macintosh)"
      stEvt:changed="/metadata"/>
    </rdf:Seq>
   </xmpMM:History>
   <dc:subject>
    <rdf:Bag>
     <rdf:li>wedding</rdf:li>
     <rdf:li>first dance</rdf:li>
    </rdf:Bag>
   </dc:subject>
   <crs:ToneCurvePV2012>
    <rdf:Seq>
     <rdf:li>0, 0</rdf:li>
     <rdf:li>255, 255</rdf:li>
    </rdf:Seq>
   </crs:ToneCurvePV2012>
  </rdf:Description>
  <!-- written by another tool -->
  <rdf:Description rdf:about=""
    xmlns:acme="http://example.com/acme/1.0/">
   <acme:Flag>keep me</acme:Flag>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"""
OWNED_EXIFTOOL = ("XMP-xmp:Rating", "XMP-xmp:Label", "XMP-digiKam:PickLabel")

needs_readers = pytest.mark.skipif(
    shutil.which("exiftool") is None or shutil.which("exiv2") is None,
    reason="exiftool and exiv2 are not installed (Debian: libimage-exiftool-perl exiv2)",
)


def exiftool(path: Path) -> dict[str, object]:
    out = subprocess.run(
        ["exiftool", "-j", "-G1", "-XMP:all", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    tags = json.loads(out.stdout)[0]
    tags.pop("SourceFile")
    return tags


def exiv2(path: Path) -> dict[str, str]:
    out = subprocess.run(
        ["exiv2", "-PXkv", str(path)], capture_output=True, text=True, check=True, timeout=60
    )
    tags: dict[str, str] = {}
    for line in out.stdout.splitlines():
        key, _, value = line.partition(" ")
        tags[key] = value.strip()
    return tags


def write(tmp_path: Path, data: bytes, name: str = "IMG_0001.CR2.xmp") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@needs_readers
@pytest.mark.parametrize(
    ("reject_as", "rating", "label", "rejected_as"),
    [
        ("rating", -1, "Red", "Rating=-1"),
        ("one-star", 1, "Red", "Rating=1"),
        ("label", 0, "Purple", "Label=Purple"),
    ],
)
def test_a_reject_read_back_by_exiftool_and_exiv2(tmp_path, reject_as, rating, label, rejected_as):
    packet = merge_packet(None, fields_for(Decision(-1, False, "Red"), reject_as, SCORES, MODEL, "512"))
    path = write(tmp_path, packet)
    tool = exiftool(path)
    assert tool["XMP-xmp:Rating"] == rating
    assert tool["XMP-xmp:Label"] == label
    assert tool["XMP-digiKam:PickLabel"] == 1
    assert tool["XMP-clipiqa:RejectedAs"] == rejected_as
    assert tool["XMP-clipiqa:Model"] == MODEL
    assert tool["XMP-clipiqa:AnalysisSize"] == 512
    assert tool["XMP-clipiqa:Quality"] == 0.5123 and tool["XMP-clipiqa:Sharpness"] == 0.2
    ex = exiv2(path)
    assert ex["Xmp.xmp.Rating"] == str(rating)
    assert ex["Xmp.xmp.Label"] == label
    assert ex["Xmp.digiKam.PickLabel"] == "1"
    assert ex["Xmp.clipiqa.RejectedAs"] == rejected_as
    assert ex["Xmp.clipiqa.quality"] == "0.5123" and ex["Xmp.clipiqa.sharpness"] == "0.2000"
    assert ex["Xmp.clipiqa.Model"] == MODEL and ex["Xmp.clipiqa.AnalysisSize"] == "512"
    assert packet.startswith(b"<?xpacket begin=") and packet.rstrip().endswith(b'<?xpacket end="w"?>')
    assert f'xmlns:clipiqa="{CLIPIQA_NS}"'.encode() in packet


@needs_readers
def test_stars_pick_and_label_read_back(tmp_path):
    path = write(
        tmp_path, merge_packet(None, fields_for(Decision(4, True, "Green"), "label", SCORES, MODEL, "full"))
    )
    tool, ex = exiftool(path), exiv2(path)
    assert (tool["XMP-xmp:Rating"], tool["XMP-xmp:Label"], tool["XMP-digiKam:PickLabel"]) == (4, "Green", 3)
    assert (ex["Xmp.xmp.Rating"], ex["Xmp.xmp.Label"], ex["Xmp.digiKam.PickLabel"]) == ("4", "Green", "3")
    assert "XMP-clipiqa:RejectedAs" not in tool and "Xmp.clipiqa.RejectedAs" not in ex
    assert tool["XMP-clipiqa:AnalysisSize"] == "full"


@needs_readers
@pytest.mark.parametrize("decision", [Decision(-1), Decision(2, True, "Blue"), Decision()])
def test_a_lightroom_sidecar_keeps_everything_we_do_not_own(tmp_path, decision):
    before_path = write(tmp_path, LIGHTROOM, "before.xmp")
    merged = merge_packet(LIGHTROOM, fields_for(decision, "rating", SCORES, MODEL, "512"))
    after_path = write(tmp_path, merged, "after.xmp")
    before, after = exiftool(before_path), exiftool(after_path)
    kept = {k: v for k, v in before.items() if k not in OWNED_EXIFTOOL}
    assert {k: after.get(k) for k in kept} == kept, "every tag we do not own is unchanged (exiftool)"
    ex_before, ex_after = exiv2(before_path), exiv2(after_path)
    owned = ("Xmp.xmp.Rating", "Xmp.xmp.Label", "Xmp.digiKam.")
    assert {k: ex_after.get(k) for k in ex_before if not k.startswith(owned)} == {
        k: v for k, v in ex_before.items() if not k.startswith(owned)
    }, "every tag we do not own is unchanged (exiv2)"
    assert after["XMP-xmp:Rating"] == decision.rating, "the rating another tool set is replaced by ours"
    # "To print" is not a colour: kept unless we set a colour
    assert after["XMP-xmp:Label"] == (decision.label or "To print")
    assert merged.count(b"xmp:Rating") == 1, "one copy of the rating, where it was (an attribute)"
    assert b'xmp:Rating="%d"' % decision.rating in merged
    # raw bytes outside our elements: the element content and layout of what we do not own
    for block in (
        b"   <dc:subject>\n    <rdf:Bag>\n     <rdf:li>wedding</rdf:li>\n     <rdf:li>first dance</rdf:li>\n"
        b"    </rdf:Bag>\n   </dc:subject>\n",
        b"   <crs:ToneCurvePV2012>\n    <rdf:Seq>\n     <rdf:li>0, 0</rdf:li>\n",
        b"  <!-- written by another tool -->\n",
        b"   <acme:Flag>keep me</acme:Flag>\n  </rdf:Description>\n",
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="Adobe XMP Core 7.0-c000 1.000000, 2024/01/01">\n',
    ):
        assert block in merged, block
    assert merged.endswith(b" </rdf:RDF>\n</x:xmpmeta>\n")


@pytest.mark.parametrize("decision", [Decision(-1, False, "Red"), Decision(2, True), Decision()])
def test_only_the_lines_of_our_fields_change_in_a_lightroom_sidecar(decision):
    """Byte-exact: what we do not own keeps its bytes, line breaks inside start tags included."""
    merged = merge_packet(LIGHTROOM, fields_for(decision, "rating", SCORES, MODEL, "512"))
    before, after = LIGHTROOM.decode().splitlines(), merged.decode().splitlines()
    diff = list(difflib.ndiff(before, after))
    removed = [line[2:] for line in diff if line.startswith("- ")]
    added = [line[2:] for line in diff if line.startswith("+ ")]
    assert all("xmp:Rating=" in line or "xmp:Label=" in line for line in removed), removed
    ours = ("xmp:Rating=", "xmp:Label=", "<rdf:Description", "</rdf:Description>", "digiKam:", "clipiqa:")
    assert all(any(o in line for o in ours) for line in added), added
    assert after[:9] == before[:9], "the start tag with its line breaks"


def test_without_the_byte_level_edit_the_tree_is_serialised_with_the_same_content(monkeypatch):
    from clipiqa_desktop.culling import xmp_write

    fields = fields_for(Decision(-1, False, "Red"), "label", SCORES, MODEL, "512")
    exact = merge_packet(LIGHTROOM, fields)
    monkeypatch.setattr(xmp_write, "_edit_bytes", lambda packet, merger: None)
    serialised = merge_packet(LIGHTROOM, fields)
    assert serialised != exact and xmp_write._same_content(serialised, xmp_write._parse(exact)[1])


def test_unchanged_returns_the_same_bytes_and_a_second_merge_changes_nothing():
    fields = fields_for(Decision(3, True, "Red"), "rating", SCORES, MODEL, "512")
    once = merge_packet(LIGHTROOM, fields)
    assert once != LIGHTROOM
    assert merge_packet(once, fields) is once, "nothing to change: the very same bytes"
    new = merge_packet(None, fields)
    assert merge_packet(new, fields) is new
    assert merge_packet(once, fields_for(Decision(3, True, "Red"), "rating", SCORES, MODEL, "full")) != once


def test_a_property_in_two_descriptions_is_replaced_once_and_the_copy_removed():
    packet = b"""<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
 <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="2"/>
 <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/">
  <xmp:Rating>5</xmp:Rating>
  <xmp:Label>Yellow</xmp:Label>
 </rdf:Description>
</rdf:RDF></x:xmpmeta>"""
    merged = merge_packet(packet, fields_for(Decision(1), "rating"))
    assert merged.count(b"xmp:Rating") == 1 and b'xmp:Rating="1"' in merged
    assert b"Yellow" not in merged, "a colour we no longer have is removed"
    assert b"<xmp:Label" not in merged


def test_pick_label_pending_and_foreign_labels_are_kept():
    pending = b"""<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
 <rdf:Description rdf:about="" xmlns:digiKam="http://www.digikam.org/ns/1.0/" xmlns:xmp="http://ns.adobe.com/xap/1.0/"
   digiKam:PickLabel="2" xmp:Label="To print"/>
</rdf:RDF></x:xmpmeta>"""
    neither = merge_packet(pending, fields_for(Decision(2), "rating"))
    assert b'digiKam:PickLabel="2"' in neither and b'xmp:Label="To print"' in neither
    picked = merge_packet(pending, fields_for(Decision(0, True), "rating"))
    assert b'digiKam:PickLabel="3"' in picked
    unpicked = merge_packet(picked, fields_for(Decision(0), "rating"))
    assert b"PickLabel" not in unpicked, "a 3 that contradicts the decision is removed"
    coloured = merge_packet(pending, fields_for(Decision(0, False, "Blue"), "rating"))
    assert b'xmp:Label="Blue"' in coloured and b"To print" not in coloured


def test_our_old_scores_and_reject_mark_are_removed_when_they_no_longer_apply():
    rejected = merge_packet(
        None, fields_for(Decision(-1), "one-star", {"quality": 0.1, "old": 0.9}, MODEL, "512")
    )
    assert b"<clipiqa:old>" in rejected and b"RejectedAs" in rejected
    kept = merge_packet(rejected, fields_for(Decision(2), "one-star", {"quality": 0.1}, MODEL, "512"))
    assert b"clipiqa:old" not in kept and b"RejectedAs" not in kept and b"PickLabel" not in kept
    assert b"<clipiqa:quality>0.1000</clipiqa:quality>" in kept


@pytest.mark.parametrize(
    "bad",
    [
        b"<x:xmpmeta broken",
        b"",
        b"\x00\x01binary",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/">&b;</x:xmpmeta>',
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><nothing/></x:xmpmeta>',
    ],
)
def test_a_packet_we_cannot_parse_safely_is_an_error_never_replaced(bad):
    with pytest.raises(XmpError):
        merge_packet(bad, XmpFields(rating=3))


def test_the_new_packet_is_a_minimal_standard_one():
    assert NEW_PACKET.startswith(b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>')
    packet = merge_packet(None, XmpFields(rating=0))
    assert b'rdf:about=""' in packet and b"<xmp:Rating>0</xmp:Rating>" in packet


def _inputs() -> list[bytes | None]:
    from .test_xmp import ATTR_FORM, DIGIKAM_PICK, ELEMENT_FORM

    return [None, LIGHTROOM, ATTR_FORM, ELEMENT_FORM, DIGIKAM_PICK]


@pytest.mark.parametrize("reject_as", ["rating", "one-star", "label"])
@pytest.mark.parametrize(
    "decision",
    [
        Decision(-1),
        Decision(-1, False, "Red"),
        Decision(5, True, "Blue"),
        Decision(1),
        Decision(0, True),
        Decision(),
    ],
)
def test_our_reader_takes_back_every_decision_we_write_into_any_layout(reject_as, decision, monkeypatch):
    from clipiqa_desktop.culling import xmp_write
    from clipiqa_desktop.culling.xmp import parse_decision

    def no_fallback(packet, root):  # the byte-exact edit must apply to every one of these layouts
        assert same(packet, root), "the byte-level edit said something else than the tree"
        return True

    def edit(packet, merger):
        edited = edit_bytes(packet, merger)
        assert edited is not None, "the byte-level edit handles this layout"
        return edited

    same, edit_bytes = xmp_write._same_content, xmp_write._edit_bytes
    monkeypatch.setattr(xmp_write, "_same_content", no_fallback)
    monkeypatch.setattr(xmp_write, "_edit_bytes", edit)

    fields = fields_for(decision, reject_as, SCORES, MODEL, "512")
    expected = (
        Decision(-1, False, None if reject_as == "label" else decision.label)
        if decision.rejected
        else decision
    )
    for packet in _inputs():
        merged = merge_packet(packet, fields)
        assert parse_decision(merged) in ((expected, None) if expected == Decision() else (expected,)), packet
        assert merge_packet(merged, fields) is merged, "idempotent"
        again = merge_packet(merged, fields_for(Decision(2), "rating", {}, MODEL, "512"))
        assert parse_decision(again) == Decision(2) and b"clipiqa:quality" not in again
