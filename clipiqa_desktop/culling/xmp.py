"""Reading decisions made in other tools from XMP: sidecars and XMP embedded in the file.

Fields read (the ones photographers' tools agree on):
- `xmp:Rating` (http://ns.adobe.com/xap/1.0/): -1 rejected, 0 unrated, 1..5 stars;
- `xmp:Label`: Lightroom's colour label words (Red, Yellow, Green, Blue, Purple);
- `digiKam:PickLabel`: 1 = rejected, 3 = accepted (picked).
Sidecars: darktable/digiKam name them `IMG_0001.CR3.xmp`, Adobe `IMG_0001.xmp`; both are looked for,
in that order, case-insensitively on the extension.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path

from ..catalog.records import LABELS, RATING_REJECTED, Decision

log = logging.getLogger(__name__)

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "digiKam": "http://www.digikam.org/ns/1.0/",
}
_MAX_XMP_BYTES = 4 * 1024 * 1024


def sidecar_candidates(photo: Path) -> list[Path]:
    """Sidecar paths that may belong to `photo`, most specific first."""
    return [
        photo.with_name(photo.name + ".xmp"),
        photo.with_name(photo.name + ".XMP"),
        photo.with_suffix(".xmp"),
        photo.with_suffix(".XMP"),
    ]


def find_sidecar(photo: Path) -> Path | None:
    for candidate in sidecar_candidates(photo):
        if candidate.is_file():
            return candidate
    return None


def _values(root: ET.Element, qname: str) -> list[str]:
    """Values of a property written either as an attribute or as an element (both are valid RDF)."""
    prefix, local = qname.split(":")
    tag = f"{{{NS[prefix]}}}{local}"
    out = [el.attrib[tag] for el in root.iter() if tag in el.attrib]
    out += [(el.text or "").strip() for el in root.iter(tag) if (el.text or "").strip()]
    return out


def parse_decision(packet: bytes) -> Decision | None:
    """The decision an XMP packet holds, or None when it holds no rating, label or pick."""
    if len(packet) > _MAX_XMP_BYTES:
        return None
    start = packet.find(b"<x:xmpmeta")
    if start < 0:
        start = packet.find(b"<rdf:RDF")
    end_tag = b"</x:xmpmeta>" if packet.find(b"</x:xmpmeta>") >= 0 else b"</rdf:RDF>"
    end = packet.find(end_tag)
    if start < 0 or end < 0:
        return None
    try:
        root = ET.fromstring(packet[start : end + len(end_tag)])
    except ET.ParseError:
        return None
    rating: int | None = None
    for raw in _values(root, "xmp:Rating"):
        try:
            rating = max(RATING_REJECTED, min(5, round(float(raw))))
            break
        except (ValueError, OverflowError):  # "abc", "1e400", "nan"
            continue
    label = next((w.capitalize() for w in _values(root, "xmp:Label") if w.capitalize() in LABELS), None)
    pick = next(iter(_values(root, "digiKam:PickLabel")), None)
    if pick == "1" and rating is None:
        rating = RATING_REJECTED
    picked = pick == "3" and rating != RATING_REJECTED  # a reject wins over a contradicting pick
    if rating is None and label is None and not picked:
        return None
    return Decision(rating=rating or 0, picked=picked, label=label)


def read_decision(photo: Path, embedded: bytes | None = None) -> Decision | None:
    """The decision from the photo's sidecar (preferred: it is what editors write) or embedded XMP."""
    sidecar = find_sidecar(photo)
    if sidecar is not None:
        try:
            decision = parse_decision(sidecar.read_bytes()[: _MAX_XMP_BYTES + 1])
        except OSError as exc:
            log.warning("cannot read XMP sidecar %s: %s", sidecar, exc.strerror)
            decision = None
        if decision is not None:
            return decision
    return parse_decision(embedded) if embedded else None
