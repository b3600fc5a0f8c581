"""A catalog write transaction that callers compose: the one path every decision takes.

    with catalog.transaction() as tx:
        deltas = tx.update_decisions(ids, change)        # read, change, write: one transaction
        tx.set_sidecar_state(photo_id, state)

`update_decisions` reads each photo's current decision INSIDE the write transaction (SQLite's
BEGIN IMMEDIATE holds the write lock from the start), lets `change` alter only the fields the user
touched, writes it, and returns before/after. So a `rate` in another terminal, a second window, or a
rating the indexer imported a moment earlier is never replaced by a stale copy: the window, `rate`,
undo/redo, the XMP import and the XMP hand-off all go through here, and none of them builds a whole
decision from a row it read earlier.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence

from sqlalchemy import Connection, bindparam, select, update

from . import schema as s
from .dialect import id_table, insert
from .records import LABELS, Decision, DecisionDelta, SidecarState

# change(photo_id, current decision) -> the new decision (return `current` to leave it alone)
DecisionChangeFn = Callable[[int, Decision], Decision]

# counters[DECISION_COUNTER]: raised once by every write transaction that changes a decision and
# stored in each decision it wrote (decisions.seq); a window polls Catalog.decision_changes for
# seq > the last value it saw (a counter, not a time: a studio's clocks differ)
DECISION_COUNTER = "decisions"

_CHUNK = 500


class CatalogTransaction:
    """Operations inside one open write transaction (see Catalog.transaction)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._seq: int | None = None  # counters['decisions'] as this transaction raised it

    # --- decisions -------------------------------------------------------------------------------
    def decisions(self, photo_ids: Sequence[int]) -> dict[int, Decision]:
        """Current decisions (Decision() for photos that have none)."""
        return read_decisions(self.conn, [int(p) for p in photo_ids])

    def decided(self, photo_ids: Sequence[int]) -> set[int]:
        """The photos that have a decision row: decided here (0 stars and no flag is a decision too)
        or imported before."""
        d = s.decisions.c
        out: set[int] = set()
        for chunk in _chunks([int(p) for p in photo_ids]):
            out |= {int(p) for (p,) in self.conn.execute(select(d.photo_id).where(d.photo_id.in_(chunk)))}
        return out

    def decision_times(self, photo_ids: Sequence[int]) -> dict[int, float]:
        """When each photo's decision last changed (unix time); photos without one are left out."""
        out: dict[int, float] = {}
        d = s.decisions.c
        for chunk in _chunks([int(p) for p in photo_ids]):
            for pid, at in self.conn.execute(select(d.photo_id, d.changed_at).where(d.photo_id.in_(chunk))):
                out[int(pid)] = float(at)
        return out

    def update_decisions(
        self, photo_ids: Iterable[int], change: DecisionChangeFn, source: str = "user"
    ) -> list[DecisionDelta]:
        """Apply `change` to each photo's CURRENT decision; returns one delta per photo it altered.

        Photos the change leaves as they are are not written (their changed_at stays), and no delta
        is returned for them. Photos that no longer exist (deleted by another process) are skipped.
        """
        ids = list(dict.fromkeys(int(p) for p in photo_ids))
        existing: set[int] = set()
        for chunk in _chunks(ids):
            q = select(s.photos.c.id).where(s.photos.c.id.in_(chunk))
            existing |= {int(p) for (p,) in self.conn.execute(q)}
        ids = [p for p in ids if p in existing]
        current = read_decisions(self.conn, ids)
        now = time.time()
        deltas: list[DecisionDelta] = []
        for pid in ids:
            before = current[pid]
            after = change(pid, before)
            if after == before:
                continue
            _check(after)
            vals = {
                "rating": after.rating,
                "picked": after.picked,
                "label": after.label,
                "changed_at": now,
                "source": source,
                "seq": self.decision_seq(),
            }
            self.conn.execute(
                insert(self.conn, s.decisions)
                .values(photo_id=pid, **vals)
                .on_conflict_do_update(index_elements=["photo_id"], set_=vals)
            )
            deltas.append(DecisionDelta(pid, before, after))
        return deltas

    def decision_seq(self) -> int:
        """The change counter's next value, taken ONCE per transaction (the first decision written
        raises it; the row is made when missing). Writers are serialised (SQLite's BEGIN IMMEDIATE,
        PostgreSQL's write lock in connection.py), so the read-modify-write is safe and the values
        commit in order: a reader that sees counter N sees every decision written with seq <= N."""
        if self._seq is None:
            c = s.counters
            self.conn.execute(
                insert(self.conn, c)
                .values(name=DECISION_COUNTER, value=1)
                .on_conflict_do_update(index_elements=["name"], set_={"value": c.c.value + 1})
            )
            self._seq = int(
                self.conn.execute(select(c.c.value).where(c.c.name == DECISION_COUNTER)).scalar_one()
            )
        return self._seq

    def set_decisions(self, decisions: dict[int, Decision], source: str = "user") -> list[DecisionDelta]:
        """Set whole decisions through update_decisions (an import of a complete state, test set-up);
        culling actions change only the fields the user touched."""
        return self.update_decisions(decisions, lambda pid, _current: decisions[pid], source)

    # --- sidecars --------------------------------------------------------------------------------
    def sidecar_states(self, photo_ids: Sequence[int]) -> dict[int, SidecarState | None]:
        """The sidecar each photo was last seen or written with, with the fields it stated then
        (None: none recorded; photos that do not exist are left out)."""
        return read_sidecar_states(self.conn, photo_ids)

    def set_sidecar_state(self, photo_id: int, state: SidecarState | None) -> None:
        """Record the sidecar as it is now (after reading or writing it); None forgets it."""
        self.set_sidecar_states({photo_id: state})

    def set_sidecar_states(self, states: dict[int, SidecarState | None]) -> None:
        """set_sidecar_state for many photos in one statement (the indexer's XMP import records
        every sidecar it compared; one UPDATE per photo would cost more than the import)."""
        if not states:
            return
        stmt = (
            update(s.photos)
            .where(s.photos.c.id == bindparam("b_id"))
            .values(
                sidecar_name=bindparam("b_name"),
                sidecar_mtime_ns=bindparam("b_mtime"),
                sidecar_size=bindparam("b_size"),
                sidecar_fields=bindparam("b_fields"),
            )
        )
        rows = [
            {
                "b_id": int(pid),
                "b_name": st and st.name,
                "b_mtime": st and st.mtime_ns,
                "b_size": st and st.size,
                "b_fields": None if st is None or st.fields is None else json.dumps(dict(st.fields)),
            }
            for pid, st in states.items()
        ]
        self.conn.execute(stmt, rows)


def read_sidecar_states(
    conn: Connection, photo_ids: Sequence[int], recorded_only: bool = False
) -> dict[int, SidecarState | None]:
    """The recorded sidecar of each existing photo among `photo_ids` (None: none recorded), in one
    query whatever the number of ids (json_each: the indexer asks for every photo of a tree on every
    run). With `recorded_only`, photos without a record are left out too (fewer rows to read)."""
    p = s.photos.c
    given = id_table(conn, photo_ids)
    q = select(p.id, p.sidecar_name, p.sidecar_mtime_ns, p.sidecar_size, p.sidecar_fields).where(
        p.id.in_(select(given.c.value))
    )
    if recorded_only:
        q = q.where(p.sidecar_name.is_not(None))
    return {
        int(pid): None
        if name is None
        else SidecarState(str(name), int(mtime), int(size), _fields_from(fields))
        for pid, name, mtime, size, fields in conn.execute(q)
    }


def _fields_from(raw: str | None) -> dict[str, int | bool | str | None] | None:
    """The recorded fields (None: not recorded, or not readable: the import then compares times)."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else None


def read_decision_seq(conn: Connection) -> int:
    """counters['decisions'] as committed (0: no decision was written since schema v5)."""
    c = s.counters.c
    value = conn.execute(select(c.value).where(c.name == DECISION_COUNTER)).scalar()
    return 0 if value is None else int(value)


def read_decisions(conn: Connection, ids: list[int]) -> dict[int, Decision]:
    result = {pid: Decision() for pid in ids}
    d = s.decisions.c
    q = select(d.photo_id, d.rating, d.picked, d.label)
    for chunk in _chunks(ids):
        for pid, rating, picked, label in conn.execute(q.where(d.photo_id.in_(chunk))):
            result[int(pid)] = Decision(int(rating), bool(picked), label)
    return result


def _check(d: Decision) -> None:
    if not -1 <= d.rating <= 5:
        raise ValueError(f"rating must be -1..5, got {d.rating}")
    if d.label is not None and d.label not in LABELS:
        raise ValueError(f"label must be one of {', '.join(LABELS)}")
    if d.picked and d.rating == -1:
        raise ValueError("a photo cannot be picked and rejected at once")


def _chunks(items: list[int]) -> Iterable[list[int]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]
