"""Writing our decision and scores into an XMP packet: merge, never replace.

`merge_packet(existing, fields)` sets the fields this project owns and leaves everything else as
it was: develop settings, keywords, history, unknown namespaces, comments and whitespace. lxml
parses the packet (safely: no network, no entities, no DTD) and the edits are made on its tree,
which keeps every element, attribute, namespace prefix, comment and text node we do not touch
(exiv2 and Exempi re-serialise the whole packet in their own layout). The same edits are then
replayed on the original bytes (positions from expat), so everything else keeps its exact bytes,
even the line breaks between the attributes of a start tag that no parser reports; the result is
parsed again and must say exactly what the edited tree says, or the tree's own serialisation is
used instead (same content, start tags on one line). When nothing changes the input is returned as
it is, so a second export writes nothing.

Owned fields:
- `xmp:Rating`: -1 rejected (with reject_as "rating"), 0 unrated, 1..5 stars;
- `xmp:Label`: a colour word (Red Yellow Green Blue Purple). A label that is not a colour word
  ("To print", from another tool) is kept unless we set a colour;
- `digiKam:PickLabel`: 3 picked, 1 rejected; a 1 or 3 that would contradict the decision is removed,
  any other value (2 = pending) is kept;
- namespace `clipiqa` (CLIPIQA_NS): one element per attribute score (`clipiqa:quality`, 4 decimals),
  `clipiqa:Model`, `clipiqa:AnalysisSize`, and `clipiqa:RejectedAs` (only for a rejected photo: how
  the reject was encoded, "Rating=-1", "Rating=1" or "Label=<Colour>", so that our reader takes our
  own one-star or label back as a reject). Every other `clipiqa:` property is removed.

A property may be an attribute or an element of any `rdf:Description` (Lightroom writes several);
it is replaced where it is, and a second copy is removed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from ..catalog.records import LABELS, Decision

RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
X_NS = "adobe:ns:meta/"
XMP_NS = "http://ns.adobe.com/xap/1.0/"
DIGIKAM_NS = "http://www.digikam.org/ns/1.0/"
CLIPIQA_NS = "http://ns.clipiqa-desktop.org/xmp/1.0/"
PREFIXES = {"xmp": XMP_NS, "digiKam": DIGIKAM_NS, "clipiqa": CLIPIQA_NS}

REJECT_AS = ("rating", "one-star", "label")
DEFAULT_REJECT_AS = "rating"
REJECT_LABEL = "Purple"  # the colour a reject becomes with reject_as="label" (see README)
PICKED, REJECTED, PENDING = "3", "1", "2"
MAX_PACKET_BYTES = 16 * 1024 * 1024

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")  # an attribute key usable as an XML element name
_COLOURS = {c.casefold() for c in LABELS}
_DESC = f"{{{RDF_NS}}}Description"
_ABOUT = f"{{{RDF_NS}}}about"

NEW_PACKET = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="clipiqa-desktop">\n'
    ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
    f'  <rdf:Description rdf:about="" xmlns:xmp="{XMP_NS}" xmlns:digiKam="{DIGIKAM_NS}"'
    f' xmlns:clipiqa="{CLIPIQA_NS}">\n'
    "  </rdf:Description>\n"
    " </rdf:RDF>\n"
    "</x:xmpmeta>\n"
    '<?xpacket end="w"?>\n'
).encode()


class XmpError(ValueError):
    """An existing packet we must not replace: not XML, not XMP, a DTD, too large."""


@dataclass(frozen=True)
class XmpFields:
    """The values of our fields, as they are to be written. `label` None removes a colour label
    (never another tool's free-text label); `pick` None removes a contradicting 1/3."""

    rating: int = 0
    label: str | None = None
    pick: str | None = None
    scores: Mapping[str, float] = field(default_factory=dict)
    model: str | None = None
    analysis_size: str | None = None
    rejected_as: str | None = None


def fields_for(
    decision: Decision,
    reject_as: str = DEFAULT_REJECT_AS,
    scores: Mapping[str, float] | None = None,
    model: str | None = None,
    analysis_size: str | None = None,
) -> XmpFields:
    """How a decision is written under a reject encoding:

    - "rating" (standard): xmp:Rating=-1; darktable, Bridge and the XMP specification read it;
    - "one-star": xmp:Rating=1 (Lightroom shows it; filter 1 star and flag them there);
    - "label": xmp:Rating=0 and xmp:Label=Purple (Lightroom shows a purple label).
    A reject always gets digiKam:PickLabel=1 and clipiqa:RejectedAs; a pick PickLabel=3."""
    if reject_as not in REJECT_AS:
        raise ValueError(f"reject_as must be one of {', '.join(REJECT_AS)}, not {reject_as!r}")
    common: dict[str, Any] = {"scores": dict(scores or {}), "model": model, "analysis_size": analysis_size}
    if decision.rejected:
        if reject_as == "rating":
            return XmpFields(-1, decision.label, REJECTED, rejected_as="Rating=-1", **common)
        if reject_as == "one-star":
            return XmpFields(1, decision.label, REJECTED, rejected_as="Rating=1", **common)
        return XmpFields(0, REJECT_LABEL, REJECTED, rejected_as=f"Label={REJECT_LABEL}", **common)
    return XmpFields(decision.rating, decision.label, PICKED if decision.picked else None, **common)


def merge_packet(existing: bytes | None, fields: XmpFields) -> bytes:
    """The packet `existing` (None: a new minimal packet) with our fields set to `fields`.

    Returns `existing` itself when it already holds exactly these values. Raises XmpError for a
    packet that cannot be parsed safely (it must then be left alone, never replaced)."""
    source = NEW_PACKET if existing is None else existing
    head, root, tail = _parse(source)
    rdf = root if root.tag == f"{{{RDF_NS}}}RDF" else root.find(f".//{{{RDF_NS}}}RDF")
    if rdf is None:
        raise XmpError("no rdf:RDF element: not an XMP packet")
    merger = _Merger(rdf)
    merger.set("xmp", "Rating", str(int(fields.rating)))
    if fields.label is not None:
        merger.set("xmp", "Label", fields.label)
    else:
        merger.remove("xmp", "Label", only=lambda v: v.strip().casefold() in _COLOURS)
    if fields.pick is not None:
        merger.set("digiKam", "PickLabel", fields.pick)
    else:
        merger.remove("digiKam", "PickLabel", only=lambda v: v.strip() in (PICKED, REJECTED))
    ours: dict[str, str] = {}
    if fields.model:
        ours["Model"] = fields.model
    if fields.analysis_size:
        ours["AnalysisSize"] = str(fields.analysis_size)
    if fields.rejected_as:
        ours["RejectedAs"] = fields.rejected_as
    for key, score in fields.scores.items():
        if _NAME.match(key) and key not in ("Model", "AnalysisSize", "RejectedAs"):
            ours[key] = f"{float(score):.4f}"
    for local in merger.locals_of(CLIPIQA_NS) - set(ours):
        merger.remove("clipiqa", local)
    for local, text in ours.items():
        merger.set("clipiqa", local, text)
    if not merger.changed and existing is not None:
        return existing
    edited = _edit_bytes(source, merger)
    if edited is not None and _same_content(edited, root):
        return edited
    # The byte-level edit did not apply (a layout it does not handle): lxml's serialisation of the
    # same tree, with start tags on one line.
    body = etree.tostring(root, encoding="UTF-8", with_tail=False)
    return head + body + tail


# --- parsing -------------------------------------------------------------------------------------
def _parser() -> Any:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, remove_blank_text=False, load_dtd=False
    )


def _parse(packet: bytes) -> tuple[bytes, Any, bytes]:
    """(bytes before the root element, the root, bytes after it)."""
    if len(packet) > MAX_PACKET_BYTES:
        raise XmpError(f"larger than {MAX_PACKET_BYTES // (1024 * 1024)} MB: not a sidecar")
    try:
        tree = etree.fromstring(packet, _parser()).getroottree()
    except etree.XMLSyntaxError as exc:
        raise XmpError(f"not well-formed XML ({exc.msg})") from None
    except ValueError as exc:  # e.g. a str with an encoding declaration
        raise XmpError(str(exc)) from None
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise XmpError("has a DOCTYPE: not an XMP packet")
    root = tree.getroot()
    start = _root_start(packet)
    end = _root_end(packet, root)
    if start is None or end is None:
        raise XmpError("cannot locate the root element")
    return packet[:start], root, packet[end:]


def _root_start(packet: bytes) -> int | None:
    """Byte offset of the root element's start tag: after a BOM, whitespace, PIs and comments."""
    i = 3 if packet.startswith(b"\xef\xbb\xbf") else 0
    while i < len(packet):
        if packet[i : i + 1].isspace():
            i += 1
        elif packet.startswith(b"<?", i):
            j = packet.find(b"?>", i)
            if j < 0:
                return None
            i = j + 2
        elif packet.startswith(b"<!--", i):
            j = packet.find(b"-->", i)
            if j < 0:
                return None
            i = j + 3
        elif packet.startswith(b"<", i):
            return i
        else:
            return None
    return None


def _root_end(packet: bytes, root: Any) -> int | None:
    """Byte offset just after the root element's end tag."""
    qname = root.tag.split("}")[-1] if root.prefix is None else f"{root.prefix}:{root.tag.split('}')[-1]}"
    i = packet.rfind(b"</" + qname.encode())
    if i < 0:
        return None
    j = packet.find(b">", i)
    return None if j < 0 else j + 1


# --- merging -------------------------------------------------------------------------------------
class _Merger:
    """Finds and edits simple properties across every rdf:Description of one rdf:RDF."""

    def __init__(self, rdf: Any) -> None:
        self.rdf = rdf
        self.changed = False
        self._new: Any = None  # the Description created for properties with nowhere to go
        # What changed, for the byte-level edit of the original (`_edit_bytes`): the elements are
        # those of the tree as parsed (lxml keeps a proxy the same object while it is referenced).
        self.ops: list[tuple[Any, ...]] = []
        self.original = [(d, [c for c in d if isinstance(c.tag, str)]) for d in rdf if isinstance(d.tag, str)]

    def _descriptions(self) -> list[Any]:
        return [d for d in self.rdf if d.tag == _DESC]

    def _find(self, uri: str, local: str) -> list[tuple[Any, Any]]:
        """Every occurrence: (description, None) for an attribute, (description, element)."""
        tag = f"{{{uri}}}{local}"
        found: list[tuple[Any, Any]] = []
        for d in self._descriptions():
            if tag in d.attrib:
                found.append((d, None))
            found += [(d, el) for el in d if el.tag == tag]
        return found

    def locals_of(self, uri: str) -> set[str]:
        out: set[str] = set()
        for d in self._descriptions():
            out |= {a.split("}")[1] for a in d.attrib if a.startswith(f"{{{uri}}}")}
            out |= {
                el.tag.split("}")[1]
                for el in d
                if isinstance(el.tag, str) and el.tag.startswith(f"{{{uri}}}")
            }
        return out

    def set(self, prefix: str, local: str, value: str) -> None:
        uri = PREFIXES[prefix]
        found = self._find(uri, local)
        if found:
            (d, el), rest = found[0], found[1:]
            if el is None:
                if d.get(f"{{{uri}}}{local}") != value:
                    d.set(f"{{{uri}}}{local}", value)
                    self.ops.append(("attr", d, f"{{{uri}}}{local}", value))
                    self.changed = True
            elif el.text != value or len(el) or el.attrib:
                for child in list(el):
                    el.remove(child)
                el.attrib.clear()
                el.text = value
                self.ops.append(("el", el, value))
                self.changed = True
            for d2, el2 in rest:
                self._drop(d2, el2, uri, local)
            return
        self._add(uri, local, value)

    def remove(self, prefix: str, local: str, only: Any = None) -> None:
        uri = PREFIXES[prefix]
        for d, el in self._find(uri, local):
            value = d.get(f"{{{uri}}}{local}") if el is None else (el.text or "")
            if only is None or only(value or ""):
                self._drop(d, el, uri, local)

    def _drop(self, d: Any, el: Any, uri: str, local: str) -> None:
        self.changed = True
        if el is None:
            del d.attrib[f"{{{uri}}}{local}"]
            self.ops.append(("del_attr", d, f"{{{uri}}}{local}"))
            return
        self.ops.append(("del_el", el))
        prev = el.getprevious()
        if el.getnext() is None:  # the last child: its tail is the indentation of the closing tag
            if prev is not None:
                prev.tail = el.tail
            else:
                d.text = el.tail
        d.remove(el)

    def _add(self, uri: str, local: str, value: str) -> None:
        self.changed = True
        target = next((d for d in self._descriptions() if uri in d.nsmap.values()), None)
        if target is None:
            target = self._new_description()
        el = etree.Element(f"{{{uri}}}{local}")
        el.text = value
        _append(target, el)
        self.ops.append(("add", target, uri, local, value))

    def _new_description(self) -> Any:
        """A Description of our own beside the others, declaring our namespaces (valid RDF: several
        Descriptions of one resource; Lightroom writes one per namespace)."""
        if self._new is None:
            about = next((d.get(_ABOUT) for d in self._descriptions() if d.get(_ABOUT) is not None), "")
            nsmap = {"rdf": RDF_NS, **PREFIXES}
            nsmap = {p: u for p, u in nsmap.items() if self.rdf.nsmap.get(p) in (None, u)}
            self._new = etree.Element(_DESC, nsmap=nsmap)
            self._new.set(_ABOUT, about)
            _append(self.rdf, self._new)
        return self._new


def _indent_of(el: Any) -> str:
    """The whitespace on the line before `el` (its indentation), or ''."""
    prev = el.getprevious()
    before = prev.tail if prev is not None else (el.getparent().text if el.getparent() is not None else "")
    before = before or ""
    return before[before.rfind("\n") + 1 :] if "\n" in before and not before.strip() else ""


def _append(parent: Any, el: Any) -> None:
    """Append `el` as the last child of `parent`, indented like its siblings."""
    children = list(parent)
    if children:
        last = children[-1]
        sibling_ws = parent.text if parent.text is not None and not parent.text.strip() else "\n"
        if len(children) > 1:
            prev_tail = children[-2].tail
            if prev_tail is not None and not prev_tail.strip():
                sibling_ws = prev_tail
        el.tail = last.tail
        last.tail = sibling_ws
    else:
        outer = _indent_of(parent) if parent.getparent() is not None else ""
        text = parent.text if parent.text is not None and parent.text.strip() == "" else None
        parent.text = "\n" + outer + " "
        el.tail = text if text is not None and "\n" in text else "\n" + outer
    parent.append(el)


# --- byte-exact output ---------------------------------------------------------------------------
# The edits of the tree are replayed on the original bytes, so that what we do not touch keeps its
# exact bytes, down to line breaks inside start tags (which no XML parser reports). Positions come
# from expat (CurrentByteIndex). The result is parsed again and must equal the edited tree;
# otherwise merge_packet falls back to lxml's serialisation.
_ATTR = re.compile(rb"""(\s+)([^\s=/>]+)\s*=\s*("[^"]*"|'[^']*')""")


@dataclass
class _Span:
    start: int  # the "<" of the start tag
    tag_end: int  # just after the start tag's ">"
    end: int = 0  # just after the element (its end tag, or the start tag when self-closing)
    closing: int = 0  # the "<" of the end tag (tag_end for a self-closing element)
    empty: bool = False  # self-closing


def _tag_end(packet: bytes, i: int) -> tuple[int, bool]:
    """Just after the start tag at `i`, and whether it closes itself ("/>")."""
    quote = 0
    for j in range(i + 1, len(packet)):
        c = packet[j]
        if quote:
            if c == quote:
                quote = 0
        elif c in (34, 39):
            quote = c
        elif c == 62:
            return j + 1, packet[j - 1] == 47
    raise ValueError("unterminated start tag")


def _layout(packet: bytes) -> tuple[_Span, list[tuple[_Span, list[_Span]]]] | None:
    """The rdf:RDF element, its element children and theirs, as byte spans (None: no rdf:RDF)."""
    from xml.parsers import expat

    parser = expat.ParserCreate(namespace_separator="}")
    stack: list[_Span] = []
    rdf_depth: int | None = None
    rdf: _Span | None = None
    children: list[tuple[_Span, list[_Span]]] = []

    def start(name: str, _attrs: Any) -> None:
        nonlocal rdf_depth, rdf
        i = parser.CurrentByteIndex
        end, empty = _tag_end(packet, i)
        span = _Span(i, end, end if empty else 0, end if empty else 0, empty)
        depth = len(stack)
        stack.append(span)
        if rdf_depth is None and "{" + name == f"{{{RDF_NS}}}RDF":
            rdf_depth, rdf = depth, span
        elif rdf_depth is not None and rdf is not None and not rdf.end:
            if depth == rdf_depth + 1:
                children.append((span, []))
            elif depth == rdf_depth + 2:
                children[-1][1].append(span)

    def end(_name: str) -> None:
        span = stack.pop()
        if not span.empty:
            span.closing = parser.CurrentByteIndex
            span.end = packet.index(b">", span.closing) + 1

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.Parse(packet, True)
    return None if rdf is None else (rdf, children)


def _escape(text: str, quote: str = "") -> bytes:
    out = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if quote:
        out = out.replace(quote, "&quot;" if quote == '"' else "&apos;")
    return out.encode()


def _qname(el: Any, uri: str, local: str) -> str:
    """`prefix:local` for `uri` in scope at `el`."""
    prefix = next((p for p, u in el.nsmap.items() if u == uri and p), None)
    if prefix is None:
        raise KeyError(uri)
    return f"{prefix}:{local}"


def _line_start(packet: bytes, i: int) -> int:
    """`i` moved back over the spaces and the one line break before it."""
    while i > 0 and packet[i - 1] in b" \t":
        i -= 1
    if i > 0 and packet[i - 1] == 10:
        i -= 1
        if i > 0 and packet[i - 1] == 13:
            i -= 1
    return i


def _indent_before(packet: bytes, i: int) -> bytes:
    """The spaces between the line break before `i` and `i` (b"" when `i` does not start a line)."""
    j = i
    while j > 0 and packet[j - 1] in b" \t":
        j -= 1
    return packet[j:i] if j > 0 and packet[j - 1] == 10 else b""


def _edit_bytes(packet: bytes, merger: _Merger) -> bytes | None:
    """The original bytes with the merger's edits applied in place, or None where the layout is
    not one this handles (the caller then serialises the tree)."""
    try:
        return _replay(packet, merger)
    except KeyError:  # no prefix in scope for a property to add (a default namespace, or the
        return None  # prefix bound to another URI): the tree's serialisation declares one


def _replay(packet: bytes, merger: _Merger) -> bytes | None:
    try:
        found = _layout(packet)
    except Exception:  # expat disagreeing with lxml on a packet lxml accepted: fall back
        return None
    if found is None:
        return None
    rdf_span, spans = found
    if len(spans) != len(merger.original):
        return None
    desc_span: dict[Any, tuple[_Span, list[_Span]]] = {}
    child_span: dict[Any, _Span] = {}
    for (d, kids), (dspan, kspans) in zip(merger.original, spans, strict=True):
        if len(kids) != len(kspans):
            return None
        desc_span[d] = (dspan, kspans)
        child_span.update(zip(kids, kspans, strict=True))
    edits: list[tuple[int, int, bytes]] = []
    deleted: set[int] = set()  # start offsets of the child elements removed
    added: dict[Any, list[tuple[str, str, str]]] = {}
    try:
        for op in merger.ops:
            kind = op[0]
            if kind in ("attr", "del_attr"):
                d, key = op[1], op[2]
                dspan = desc_span[d][0]
                for m in _ATTR.finditer(packet, dspan.start, dspan.tag_end):
                    qn = m.group(2).decode()
                    prefix, _, local = qn.rpartition(":")
                    if not prefix or f"{{{d.nsmap.get(prefix)}}}{local}" != key:
                        continue
                    if kind == "attr":
                        quote = chr(m.group(3)[0])
                        value = quote.encode() + _escape(op[3], quote) + quote.encode()
                        edits.append((m.start(3), m.end(3), value))
                    else:
                        edits.append((m.start(0), m.end(0), b""))
                    break
                else:
                    return None
            elif kind == "el":
                span = child_span[op[1]]
                qn = packet[span.start + 1 : span.tag_end].split()[0].rstrip(b"/>")
                edits.append((span.start, span.end, b"<" + qn + b">" + _escape(op[2]) + b"</" + qn + b">"))
            elif kind == "del_el":
                span = child_span[op[1]]
                edits.append((_line_start(packet, span.start), span.end, b""))
                deleted.add(span.start)
            else:
                added.setdefault(op[1], []).append((op[2], op[3], op[4]))
    except KeyError:
        return None
    for target, props in added.items():
        if target is merger._new:
            continue
        dspan, kspans = desc_span[target]
        alive = [k for k in kspans if k.start not in deleted]
        if alive:
            at = alive[-1].end
            indent = _indent_before(packet, alive[-1].start) or b" "
        else:
            at = dspan.tag_end
            indent = _indent_before(packet, dspan.start) + b" "
        text = b"".join(b"\n" + indent + _element(target, *p) for p in props)
        if dspan.empty:
            dq = packet[dspan.start + 1 : dspan.tag_end].split()[0].rstrip(b"/>")
            outer = _indent_before(packet, dspan.start)
            edits.append((dspan.tag_end - 2, dspan.tag_end, b">" + text + b"\n" + outer + b"</" + dq + b">"))
        else:
            edits.append((at, at, text))
    if merger._new is not None:
        if rdf_span.empty or not spans:
            return None
        new = merger._new
        last = spans[-1][0]
        indent = _indent_before(packet, last.start)
        rq = packet[rdf_span.start + 1 : rdf_span.tag_end].split()[0].rstrip(b"/>")
        rdf_prefix = rq.split(b":")[0] + b":" if b":" in rq else b""
        if rdf_prefix != b"rdf:":
            return None
        declared = " ".join(f'xmlns:{p}="{u}"' for p, u in new.nsmap.items() if PREFIXES.get(p) == u)
        start = b'<rdf:Description rdf:about="' + _escape(new.get(_ABOUT), '"') + b'" '
        body = b"".join(b"\n" + indent + b" " + _element(new, *p) for p in added.get(new, []))
        block = (
            b"\n" + indent + start + declared.encode() + b">" + body + b"\n" + indent + b"</rdf:Description>"
        )
        edits.append((last.end, last.end, block))
    out = packet
    for a, b, text in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        out = out[:a] + text + out[b:]
    return out


def _element(scope: Any, uri: str, local: str, value: str) -> bytes:
    qn = _qname(scope, uri, local).encode()
    return b"<" + qn + b">" + _escape(value) + b"</" + qn + b">"


def _signature(el: Any) -> tuple[Any, ...]:
    """What a packet says, without the whitespace between elements and the namespace prefixes."""
    kids = tuple(_signature(c) for c in el if isinstance(c.tag, str))
    comments = tuple(c.text for c in el if not isinstance(c.tag, str))
    return (el.tag, tuple(sorted(el.attrib.items())), (el.text or "").strip(), kids, comments)


def _same_content(packet: bytes, root: Any) -> bool:
    try:
        _head, again, _tail = _parse(packet)
    except XmpError:
        return False
    return _signature(again) == _signature(root)
