from __future__ import annotations

from clipiqa_desktop.catalog import Decision
from clipiqa_desktop.culling.decisions import DecisionChange, apply_change
from clipiqa_desktop.culling.xmp import parse_decision, read_decision

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
