"""Decisions made in other tools: sidecars changed since the catalog last saw them are imported.

The catalog records, per photo, the sidecar it last read or wrote (its name, and the SIDECAR's own
mtime and size) and the decision fields that file stated then (`SidecarState.fields`). On every
index run each photo's sidecar (`sidecar_to_read` among the names of its folder) is compared with
that record: one stat per photo, no parsing. Only a sidecar that is new, changed or gone is looked at:

- new or changed: it is parsed, and the fields (rating, pick, colour label; `XmpFields`) whose value
  differs from the recorded one are imported through the one decision path
  (`update_decisions(..., source="xmp")`): a three-way merge, so a rewrite that left our fields
  as they were (a develop edit in darktable) imports nothing, and a field given here does not stop
  another field given there. A field the catalog ALSO changed since (its value is no longer the
  recorded one) goes to the later change: the decision's changed_at (its last change, of any
  field) vs the sidecar's mtime; when ours is later it is kept, and the next XMP export writes it.
  Without recorded fields (a sidecar of another name) every stated field goes to the later change.
- gone (deleted by the user): the catalog's decision stays; the record is forgotten.
- unreadable, malformed or huge: reported, nothing changes, nothing is recorded (so it is looked at
  again, and reported again, until it is fixed).

Our own XMP export records the stat of every sidecar it writes, so our writes are not imports.
Each batch of photos is compared, imported and recorded in ONE write transaction, and a record that
changed meanwhile (our exporter wrote the sidecar a moment ago) is taken as it now is.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..catalog import Catalog
from ..catalog.records import Decision, SidecarState
from .xmp import XmpError, XmpFields, read_sidecar

BATCH = 500


@dataclass
class SidecarImport:
    """What comparing the photos' sidecars with the catalog did."""

    imported: list[int] = field(default_factory=list)  # photos whose decision the sidecar changed
    kept: list[int] = field(default_factory=list)  # sidecar edited earlier than the catalog's decision
    removed: int = 0  # sidecars deleted since they were recorded (decisions kept)
    problems: list[tuple[Path, str]] = field(default_factory=list)  # (sidecar, why it was not read)


def import_changed_sidecars(
    catalog: Catalog,
    photos: Sequence[tuple[int, Path]],
    sidecar_of: Callable[[Path], str | None],
    batch: int = BATCH,
) -> SidecarImport:
    """Compare each photo's sidecar with the catalog's record of it and import what changed.

    `photos`: (catalog id, path) of photos the catalog already knows; `sidecar_of(photo)`: the
    path of the sidecar that belongs to it (`sidecar_to_read` among the names of its folder), or
    None; a string, since this runs for every photo of a tree on every index run.
    """
    report = SidecarImport()
    now: dict[int, tuple[str | None, SidecarState | None]] = {}
    for pid, photo in photos:
        path = sidecar_of(photo)
        state = None
        if path is not None:
            try:
                st = os.stat(path)
            except FileNotFoundError:  # removed since the folder was listed
                path = None
            except OSError as exc:
                report.problems.append((Path(path), f"cannot look at it: {exc.strerror or exc}"))
                continue
            else:
                state = SidecarState(os.path.basename(path), st.st_mtime_ns, st.st_size)
        now[pid] = (path, state)
    if not now:
        return report
    recorded = catalog.sidecar_states(list(now))
    changed = [pid for pid, (_path, state) in now.items() if recorded.get(pid) != state]
    fields: dict[int, XmpFields] = {}
    for pid in changed:  # parsed outside the write transaction: other writers do not wait on files
        path, state = now[pid]
        if path is None or state is None:
            continue
        try:
            fields[pid] = read_sidecar(Path(path))
        except XmpError as exc:
            report.problems.append((Path(path), str(exc)))
    todo = [pid for pid in changed if pid in fields or now[pid][1] is None]
    for start in range(0, len(todo), batch):
        _apply(catalog, todo[start : start + batch], now, fields, report)
    return report


def _apply(
    catalog: Catalog,
    ids: list[int],
    now: dict[int, tuple[str | None, SidecarState | None]],
    fields: dict[int, XmpFields],
    report: SidecarImport,
) -> None:
    with catalog.transaction() as tx:
        recorded = tx.sidecar_states(ids)
        times = tx.decision_times(ids)
        current = tx.decisions(ids)
        take: dict[int, XmpFields] = {}
        record: dict[int, SidecarState | None] = {}
        for pid in ids:
            if pid not in recorded:  # deleted by another process meanwhile
                continue
            state = now[pid][1]
            if recorded[pid] == state:  # recorded meanwhile (our own export wrote it)
                continue
            if state is None:
                report.removed += 1
                record[pid] = None
                continue
            theirs, ours_later = _merge(
                fields[pid],
                recorded[pid],
                state,
                current[pid],
                pid in times and times[pid] * 1e9 >= state.mtime_ns,
            )
            if ours_later.apply(current[pid]) != current[pid]:
                report.kept.append(pid)  # the decision made here is later: it stays
            if theirs.stated:
                take[pid] = theirs
            record[pid] = replace(state, fields=fields[pid].stated)
        tx.set_sidecar_states(record)
        deltas = tx.update_decisions(list(take), lambda pid, cur: take[pid].apply(cur), source="xmp")
    report.imported += [d.photo_id for d in deltas]


# A field our record does not state, as the catalog holds it when it was never set (our export
# writes no Label for "no label" and no PickLabel for "not picked").
_UNSET: dict[str, Any] = {"rating": 0, "picked": False, "label": None}


def _merge(
    sidecar: XmpFields,
    recorded: SidecarState | None,
    state: SidecarState,
    current: Decision,
    ours_is_later: bool,
) -> tuple[XmpFields, XmpFields]:
    """(the fields to import, the sidecar's fields that lose to a later change made here).

    With the fields the sidecar stated when the catalog last read or wrote it (three-way): only
    the fields whose value the other tool changed since come in; one the catalog changed too (its
    value is no longer the recorded one) goes to the later change. Without that record (none, or
    one of a sidecar of another name): every stated field is compared, and the later side wins
    them all."""
    base = recorded.fields if recorded is not None and recorded.name == state.name else None
    if base is None:
        changed = dict(sidecar.stated)
        both = set(changed)
    else:
        changed = {f: v for f, v in sidecar.stated.items() if f not in base or base[f] != v}
        both = {f for f in changed if getattr(current, f) != base.get(f, _UNSET[f])}
    lose = both if ours_is_later else set()
    return (
        XmpFields({f: v for f, v in changed.items() if f not in lose}),
        XmpFields({f: v for f, v in changed.items() if f in lose}),
    )
