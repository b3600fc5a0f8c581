"""Reading decisions made in other tools from XMP: sidecars and XMP embedded in the file.

Fields read (the ones photographers' tools agree on):
- `xmp:Rating` (http://ns.adobe.com/xap/1.0/): -1 rejected, 0 unrated, 1..5 stars;
- `xmp:Label`: Lightroom's colour label words (Red, Yellow, Green, Blue, Purple); any other word
  (a label such as "To print") means "no colour label" here;
- `digiKam:PickLabel`: 1 = rejected (unless the photo has stars: stars given in a tool that keeps
  digiKam's field as it was win), 3 = accepted (picked), 0/2 = neither; a 1 beside our
  `clipiqa:RejectedAs` that no longer holds is the one our export wrote, and is ignored;
- `clipiqa:RejectedAs` (http://ns.clipiqa-desktop.org/xmp/1.0/): written by our own XMP export for a
  rejected photo, saying how the reject was encoded for Lightroom ("Rating=-1", "Rating=1",
  "Label=Purple"). While that field still holds that value the packet means "rejected" (and in the
  label encoding the label is not a real label); once another tool changed it, the fields are read
  as they are.

A packet states only some fields: `XmpFields` keeps which (a darktable sidecar has no PickLabel, so
it says nothing about a pick), so that an import changes only what the other tool wrote.
Which sidecar belongs to which photo (darktable `IMG.CR3.xmp`, Adobe `IMG.xmp`, the RAW+JPEG rule)
is `culling.sidecars.sidecar_to_read`.
"""

from __future__ import annotations

import logging
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..catalog.records import LABELS, RATING_REJECTED, Decision, SidecarState
from .sidecars import sidecar_to_read

log = logging.getLogger(__name__)

CLIPIQA_NS = "http://ns.clipiqa-desktop.org/xmp/1.0/"
NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "digiKam": "http://www.digikam.org/ns/1.0/",
    "clipiqa": CLIPIQA_NS,
}
MAX_XMP_BYTES = 16 * 1024 * 1024  # as xmp_write.MAX_PACKET_BYTES; real sidecars are a few KiB
_MARKER = re.compile(r"^(Rating)=(-?\d+)$|^(Label)=(\w+)$")


class XmpError(ValueError):
    """A packet or sidecar that cannot be read; the message is one line for the user."""


@dataclass(frozen=True)
class XmpFields:
    """The decision fields a packet states ({"rating": 3, "label": None, ...}); fields it does not
    mention are absent, and an import leaves them as they are."""

    stated: dict[str, Any] = field(default_factory=dict)

    def apply(self, current: Decision) -> Decision:
        """`current` with the stated fields put in (a stated pick un-rejects, a stated reject un-picks)."""
        new = replace(current, **self.stated)
        if new.picked and new.rejected:
            new = replace(new, rating=0) if self.stated.get("picked") else replace(new, picked=False)
        return new

    def decision(self) -> Decision | None:
        """The whole decision (unstated fields at their defaults), or None when the packet holds no
        rating, colour label or pick: what a photo new to the catalog takes."""
        d = self.apply(Decision())
        return None if d == Decision() and "rating" not in self.stated else d


_RDF = f"{{{NS['rdf']}}}RDF"
_DESCRIPTION = f"{{{NS['rdf']}}}Description"


def _descriptions(root: ET.Element) -> list[ET.Element]:
    """The top-level rdf:Description elements of the packet's (first) rdf:RDF: where the writer
    (`xmp_write._Merger`) finds and edits our fields, and so the only places they are read from.
    A Rating nested deeper (an xmpMM:History event, a struct in a Pantry) is not the photo's."""
    rdf = root if root.tag == _RDF else root.find(f".//{_RDF}")
    return [] if rdf is None else [d for d in rdf if d.tag == _DESCRIPTION]


def _values(descriptions: list[ET.Element], qname: str) -> list[str]:
    """Values of a property of the photo, written either as an attribute of an rdf:Description or
    as its child element (both are valid RDF), in the writer's order (per Description: the
    attribute, then the elements)."""
    prefix, local = qname.split(":")
    tag = f"{{{NS[prefix]}}}{local}"
    out: list[str] = []
    for d in descriptions:
        if tag in d.attrib:
            out.append(d.attrib[tag])
        out += [(el.text or "").strip() for el in d if el.tag == tag]
    return out


def _rating(raw: str) -> int | None:
    try:
        return max(RATING_REJECTED, min(5, round(float(raw))))
    except (ValueError, OverflowError):  # "abc", "1e400", "nan"
        return None


def parse_fields(packet: bytes) -> XmpFields:
    """The decision fields an XMP packet states; raises XmpError when it is not readable XMP."""
    if len(packet) > MAX_XMP_BYTES:
        raise XmpError(f"larger than {MAX_XMP_BYTES // (1024 * 1024)} MiB, not an XMP sidecar")
    start = packet.find(b"<x:xmpmeta")
    if start < 0:
        start = packet.find(b"<rdf:RDF")
    end_tag = b"</x:xmpmeta>" if packet.find(b"</x:xmpmeta>") >= 0 else b"</rdf:RDF>"
    end = packet.find(end_tag)
    if start < 0:
        raise XmpError("no XMP packet in it (no x:xmpmeta or rdf:RDF element)")
    if end < start:
        raise XmpError("malformed XML (cut short: no closing x:xmpmeta or rdf:RDF)")
    if b"<!DOCTYPE" in packet[:end] or b"<!ENTITY" in packet[:end]:
        raise XmpError("it declares a DTD or entities, which XMP does not allow")  # no entity bombs
    try:
        root = ET.fromstring(packet[start : end + len(end_tag)])
    except ET.ParseError as exc:
        raise XmpError(f"malformed XML ({exc})") from None
    where = _descriptions(root)
    stated: dict[str, Any] = {}
    raw_rating = next((r for r in map(_rating, _values(where, "xmp:Rating")) if r is not None), None)
    if raw_rating is not None:
        stated["rating"] = raw_rating
    labels = _values(where, "xmp:Label")
    raw_label = labels[0] if labels else None
    if raw_label is not None:
        word = raw_label.strip().capitalize()
        stated["label"] = word if word in LABELS else None
    marker = next(iter(_values(where, "clipiqa:RejectedAs")), None)
    holds = marker is not None and _marker_holds(marker, raw_rating, raw_label)
    pick = next(iter(_values(where, "digiKam:PickLabel")), None)
    if pick == "1" and marker is not None and not holds:
        # Our export wrote this PickLabel with the reject; Lightroom, darktable and Capture One
        # leave it as it was, so once the field the reject was encoded in changed (un-rejected
        # there), it is ours, not the user's: ignored.
        pick = None
    if pick is not None:
        if pick == "1" and stated.get("rating", 0) == 0:  # digiKam writes Rating 0 with its reject;
            stated["rating"] = RATING_REJECTED  # stars given since (Lightroom keeps PickLabel) win
        stated["picked"] = pick == "3" and stated.get("rating") != RATING_REJECTED
    if marker is not None and holds:
        stated["rating"], stated["picked"] = RATING_REJECTED, False
        if marker.startswith("Label="):
            stated.pop("label", None)  # the reject's stand-in colour, not a label the user gave
    elif stated.get("rating") == RATING_REJECTED:
        stated["picked"] = False  # a reject is never a pick
    return XmpFields(stated)


def _marker_holds(marker: str, rating: int | None, label: str | None) -> bool:
    """Whether the field our export encoded a reject in still holds what it wrote there."""
    m = _MARKER.match(marker.strip())
    if m is None:
        return False
    if m.group(1):
        return rating is not None and rating == int(m.group(2))
    return label is not None and label.strip().casefold() == m.group(4).casefold()


def parse_decision(packet: bytes) -> Decision | None:
    """The decision an XMP packet holds, or None when it holds none or cannot be read."""
    try:
        return parse_fields(packet).decision()
    except XmpError:
        return None


def sidecar_state(path: Path, fields: XmpFields | None = None) -> SidecarState:
    """The sidecar's own name, mtime and size, and the `fields` it states, as the catalog records
    them (raises OSError)."""
    st = os.stat(path)
    return SidecarState(path.name, st.st_mtime_ns, st.st_size, None if fields is None else fields.stated)


def stated_fields(packet: bytes) -> dict[str, Any] | None:
    """The decision fields a packet states as the catalog records them with its sidecar (what the
    XMP import later compares with), or None when it cannot be read."""
    try:
        return dict(parse_fields(packet).stated)
    except XmpError:
        return None


def read_sidecar(path: Path) -> XmpFields:
    """The fields a sidecar states; XmpError (one line: why) when it cannot be read or parsed.
    Never reads more than MAX_XMP_BYTES + 1 bytes, whatever the file's size."""
    try:
        with path.open("rb") as f:
            packet = f.read(MAX_XMP_BYTES + 1)
    except OSError as exc:
        raise XmpError(f"cannot read it: {exc.strerror or exc}") from None
    return parse_fields(packet)


@dataclass(frozen=True)
class PhotoXmp:
    """What indexing reads for a photo new to the catalog: its decision, the sidecar's state to
    record (None: no sidecar, or one that could not be read), and the reason it could not."""

    decision: Decision | None = None
    sidecar: SidecarState | None = None
    problem: str | None = None  # why `path` could not be read
    path: Path | None = None  # the photo's own sidecar, read or not


def read_photo_xmp(
    photo: Path, embedded: bytes | None = None, siblings: Iterable[str] | None = None
) -> PhotoXmp:
    """The decision of the photo's own sidecar (`sidecar_to_read` among `siblings`, the file names of
    its folder; listed when not given), else of the XMP embedded in the file."""
    if siblings is None:
        try:
            siblings = os.listdir(photo.parent)
        except OSError:
            siblings = ()
    path = sidecar_to_read(photo, siblings)
    decision, state, problem = None, None, None
    if path is not None:
        try:
            state = sidecar_state(path)
            fields = read_sidecar(path)
            decision = fields.decision()
            state = replace(state, fields=fields.stated)
        except (OSError, XmpError) as exc:
            problem = f"cannot look at it: {exc.strerror or exc}" if isinstance(exc, OSError) else str(exc)
            log.warning("XMP sidecar %s not read: %s", path, problem)
            state = None  # not recorded: read again (and reported again) until it is fixed
    if decision is None and embedded:
        decision = parse_decision(embedded)
    return PhotoXmp(decision, state, problem, path)


def read_decision(
    photo: Path, embedded: bytes | None = None, siblings: Iterable[str] | None = None
) -> Decision | None:
    """The decision from the photo's own sidecar (preferred: it is what editors write) or embedded XMP."""
    return read_photo_xmp(photo, embedded, siblings).decision
