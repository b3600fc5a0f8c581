from __future__ import annotations

import pytest

from clipiqa_desktop.catalog import Decision
from clipiqa_desktop.culling.decisions import DecisionChange, apply_change
from clipiqa_desktop.culling.xmp import (
    MAX_XMP_BYTES,
    XmpError,
    parse_decision,
    parse_fields,
    read_decision,
    read_photo_xmp,
    read_sidecar,
)
from clipiqa_desktop.culling.xmp_write import fields_for, merge_packet

ATTR_FORM = b"""<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/"
  xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/"
  xmp:Rating="4" xmp:Label="Red" crs:Exposure2012="+0.50"/>
</rdf:RDF></x:xmpmeta><?xpacket end="w"?>"""

ELEMENT_FORM = b"""<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/"><xmp:Rating>-1</xmp:Rating>
</rdf:Description></rdf:RDF></x:xmpmeta>"""

DIGIKAM_PICK = b"""<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:digiKam="http://www.digikam.org/ns/1.0/" digiKam:PickLabel="3"/>
</rdf:RDF></x:xmpmeta>"""


def test_parse_attribute_and_element_forms():
    assert parse_decision(ATTR_FORM) == Decision(rating=4, label="Red")
    assert parse_decision(ELEMENT_FORM) == Decision(rating=-1)
    assert parse_decision(DIGIKAM_PICK) == Decision(picked=True)


def test_nothing_to_read():
    assert parse_decision(b"") is None
    assert parse_decision(b"<x:xmpmeta broken") is None
    no_rating = ATTR_FORM.replace(b' xmp:Rating="4" xmp:Label="Red"', b"")
    assert parse_decision(no_rating) is None


def test_sidecar_naming_both_conventions_and_preference(tmp_path):
    photo = tmp_path / "IMG_0001.CR3"
    photo.write_bytes(b"raw")
    assert read_decision(photo) is None
    (tmp_path / "IMG_0001.xmp").write_bytes(ELEMENT_FORM)  # Adobe naming
    assert read_decision(photo) == Decision(rating=-1)
    (tmp_path / "IMG_0001.CR3.xmp").write_bytes(ATTR_FORM)  # darktable naming: more specific, wins
    assert read_decision(photo) == Decision(rating=4, label="Red")


def test_embedded_xmp_is_used_without_a_sidecar(tmp_path):
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"jpeg")
    assert read_decision(photo, embedded=ATTR_FORM) == Decision(rating=4, label="Red")


def test_decision_changes_follow_lightroom():
    starred = Decision(rating=3, label="Blue")
    assert apply_change(starred, DecisionChange(reject=True)) == Decision(-1, False, "Blue")
    assert apply_change(Decision(-1), DecisionChange(pick=True)) == Decision(0, True)
    assert apply_change(Decision(-1, False, "Red"), DecisionChange(unflag=True)) == Decision(0, False, "Red")
    assert apply_change(Decision(2, True), DecisionChange(unflag=True)) == Decision(2, False)
    assert apply_change(Decision(-1), DecisionChange(stars=5)) == Decision(5)
    assert apply_change(starred, DecisionChange(label="")) == Decision(3, False, None)


def test_absurd_ratings_are_ignored_not_fatal():
    for value in (b"1e400", b"nan", b"abc"):
        packet = ELEMENT_FORM.replace(b"-1</xmp:Rating>", value + b"</xmp:Rating>")
        assert parse_decision(packet) is None


# --- partial fields, our own reject marker, sidecar ownership, bad sidecars -----------------------


def packet(*attrs: str, body: str = "") -> bytes:
    """An XMP packet as our export writes it (attributes of one rdf:Description)."""
    return (
        '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/"\n'
        ' xmlns:digiKam="http://www.digikam.org/ns/1.0/" xmlns:clipiqa="http://ns.clipiqa-desktop.org/xmp/1.0/"\n'
        f" {' '.join(attrs)}>{body}</rdf:Description>\n"
        '</rdf:RDF></x:xmpmeta>\n<?xpacket end="w"?>'
    ).encode()


def test_a_packet_states_only_the_fields_it_holds():
    # darktable writes no PickLabel and no Label: a pick and a label made here stay
    assert parse_fields(packet('xmp:Rating="4"')).stated == {"rating": 4}
    assert parse_fields(packet('xmp:Rating="4"')).apply(Decision(2, True, "Blue")) == Decision(
        4, True, "Blue"
    )
    # a word that is not a colour means "no colour label" here (the user chose another label)
    assert parse_fields(packet('xmp:Label="To print"')).stated == {"label": None}
    # digiKam's reject un-picks; its accept un-rejects
    assert parse_fields(packet('digiKam:PickLabel="1"')).apply(Decision(3, True)) == Decision(-1, False)
    assert parse_fields(packet('digiKam:PickLabel="3"')).apply(Decision(-1, False, "Red")) == Decision(
        0, True, "Red"
    )
    assert parse_fields(packet('xmp:Rating="-1"')).apply(Decision(0, True)) == Decision(-1, False)


def test_our_reject_marker_in_each_encoding():
    std = packet('xmp:Rating="-1"', 'digiKam:PickLabel="1"', 'clipiqa:RejectedAs="Rating=-1"')
    one_star = packet('xmp:Rating="1"', 'clipiqa:RejectedAs="Rating=1"')
    label = packet('xmp:Rating="0"', 'xmp:Label="Purple"', 'clipiqa:RejectedAs="Label=Purple"')
    as_element = packet(body="<xmp:Rating>1</xmp:Rating><clipiqa:RejectedAs>Rating=1</clipiqa:RejectedAs>")
    for p in (std, one_star, label, as_element):
        assert parse_decision(p) == Decision(rating=-1), p
    # in the label encoding the stand-in colour is not a label: the catalog's real label stays
    assert parse_fields(label).apply(Decision(-1, False, "Red")) == Decision(-1, False, "Red")
    # without the marker, the same fields mean what they say
    assert parse_decision(packet('xmp:Rating="1"')) == Decision(rating=1)
    assert parse_decision(packet('xmp:Rating="0"', 'xmp:Label="Purple"')) == Decision(label="Purple")


def test_our_reject_marker_no_longer_holds_when_another_tool_changed_the_field():
    one_star = packet('xmp:Rating="3"', 'clipiqa:RejectedAs="Rating=1"')  # Lightroom: 3 stars
    assert parse_fields(one_star).apply(Decision(-1)) == Decision(3)
    relabelled = packet('xmp:Rating="0"', 'xmp:Label="Green"', 'clipiqa:RejectedAs="Label=Purple"')
    assert parse_fields(relabelled).apply(Decision(-1, False, "Red")) == Decision(0, False, "Green")
    unlabelled = packet('xmp:Rating="0"', 'clipiqa:RejectedAs="Label=Purple"')  # label removed
    assert parse_fields(unlabelled).apply(Decision(-1, False, "Red")) == Decision(0, False, "Red")
    garbage = packet('xmp:Rating="2"', 'clipiqa:RejectedAs="whatever"')
    assert parse_decision(garbage) == Decision(rating=2)


@pytest.mark.parametrize(
    ("reject_as", "ours", "unrejected"),
    [
        ("rating", b"<xmp:Rating>-1</xmp:Rating>", b"<xmp:Rating>0</xmp:Rating>"),
        ("one-star", b"<xmp:Rating>1</xmp:Rating>", b"<xmp:Rating>0</xmp:Rating>"),
        ("label", b"<xmp:Label>Purple</xmp:Label>", b""),
    ],
)
def test_an_unreject_in_another_tool_is_read_though_our_pick_label_stays(reject_as, ours, unrejected):
    # Lightroom, darktable and Capture One keep the digiKam:PickLabel=1 our export wrote with the
    # reject; once the field the reject was encoded in changed, that 1 is ours, not a reject.
    written = merge_packet(None, fields_for(Decision(-1), reject_as))
    assert parse_decision(written) == Decision(-1)
    assert ours in written and b"<digiKam:PickLabel>1</digiKam:PickLabel>" in written
    edited = written.replace(ours, unrejected)
    assert parse_fields(edited).stated == {"rating": 0}
    assert parse_fields(edited).apply(Decision(-1, False, "Red")) == Decision(0, False, "Red")
    # digiKam's own reject (no marker of ours) is still one
    assert parse_decision(packet('xmp:Rating="0"', 'digiKam:PickLabel="1"')) == Decision(-1)


NESTED = b"""<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/" xmlns:xmp="http://ns.adobe.com/xap/1.0/">
 <xmpMM:Pantry><rdf:Bag><rdf:li><rdf:Description xmp:Rating="5" xmp:Label="Blue"/>
 </rdf:li></rdf:Bag></xmpMM:Pantry>
 <xmpMM:History><rdf:Seq><rdf:li rdf:parseType="Resource"><xmp:Rating>-1</xmp:Rating>
 </rdf:li></rdf:Seq></xmpMM:History>
</rdf:Description>
<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="2"/>
</rdf:RDF></x:xmpmeta>"""


def test_fields_are_read_where_the_writer_writes_them_not_from_nested_structs():
    # a Rating/Label inside a Pantry struct or a History event is another resource's
    assert parse_fields(NESTED).stated == {"rating": 2}
    assert parse_fields(NESTED.replace(b' xmp:Rating="2"', b"")).stated == {}
    # what our writer merges in is what the reader then reads
    merged = merge_packet(NESTED, fields_for(Decision(4, False, "Red")))
    assert b'xmp:Rating="5"' in merged, "the nested struct is left as it was"
    assert parse_decision(merged) == Decision(4, False, "Red")


def test_bad_sidecars_say_why(tmp_path):
    huge = tmp_path / "huge.xmp"
    huge.write_bytes(packet('xmp:Rating="2"') + b" " * MAX_XMP_BYTES)
    broken = tmp_path / "broken.xmp"
    broken.write_bytes(packet('xmp:Rating="2"').replace(b"</rdf:Description>", b""))
    bomb = tmp_path / "bomb.xmp"
    bomb.write_bytes(b'<!DOCTYPE x [<!ENTITY a "aaaa">]>' + packet('xmp:Rating="2"'))
    cut = tmp_path / "cut.xmp"
    cut.write_bytes(packet('xmp:Rating="2"')[:120])
    notes = tmp_path / "notes.xmp"
    notes.write_bytes(b"shopping list")
    folder = tmp_path / "folder.xmp"
    folder.mkdir()
    expected = {
        huge: "larger than 16 MiB",
        broken: "malformed XML",
        bomb: "DTD",
        cut: r"malformed XML \(cut short",
        notes: "no XMP packet in it",
        folder: "cannot read it: Is a directory",
        tmp_path / "absent.xmp": "cannot read it: No such file",
    }
    for path, reason in expected.items():
        with pytest.raises(XmpError, match=reason):
            read_sidecar(path)


def test_adobe_sidecar_of_a_raw_plus_jpeg_pair_never_lands_in_the_jpeg(tmp_path):
    jpeg, raw = tmp_path / "IMG_1.JPG", tmp_path / "IMG_1.CR2"
    jpeg.write_bytes(b"jpeg")
    raw.write_bytes(b"raw")
    (tmp_path / "IMG_1.xmp").write_bytes(packet('xmp:Rating="5"'))
    assert read_photo_xmp(jpeg) == read_photo_xmp(jpeg, None, ["IMG_1.JPG", "IMG_1.CR2", "IMG_1.xmp"])
    assert read_decision(jpeg) is None and read_photo_xmp(jpeg).path is None
    assert read_decision(raw) == Decision(rating=5)
    # the JPEG's own darktable-named sidecar is its own
    (tmp_path / "IMG_1.JPG.xmp").write_bytes(packet('xmp:Label="Red"'))
    assert read_decision(jpeg) == Decision(label="Red")


def test_a_bad_sidecar_is_reported_and_the_embedded_xmp_still_read(tmp_path):
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"jpeg")
    (tmp_path / "a.jpg.xmp").write_bytes(b"<x:xmpmeta><rdf:RDF></x:xmpmeta>")
    got = read_photo_xmp(photo, embedded=ATTR_FORM)
    assert got.decision == Decision(rating=4, label="Red") and got.sidecar is None
    assert got.path == tmp_path / "a.jpg.xmp" and "malformed XML" in (got.problem or "")
