"""Events and the room DAG in SQLite: persistence in one transaction, and the reads around it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rocketnode.core.canonical_json import encode_canonical_json
from rocketnode.core.pdu import Pdu
from rocketnode.core.room_versions import room_version
from rocketnode.storage.records import (
    AFTER,
    EventPersist,
    NewStateGroup,
    PersistResult,
    StoredEvent,
)
from rocketnode.storage.sqlite.database import (
    HEAVY_READ_ROWS,
    SqliteDatabase,
    chunked,
    placeholders,
)
from rocketnode.storage.sqlite.state import apply_current_state_delta, insert_state_group
from rocketnode.storage.sqlite.streams import StreamIds, committed_position

_EVENT_COLUMNS = """
    e.event_id, e.json, r.room_version, e.stream_ordering, e.received_ts, e.rejected,
    e.outlier, e.soft_failed,
    (SELECT x.event_id FROM redactions x WHERE x.redacts = e.event_id LIMIT 1),
    e.txn_device, e.txn_id, e.replaces_state
"""
_EVENT_FROM = "FROM events e JOIN rooms r ON r.room_id = e.room_id"

OutboundHook = Callable[[sqlite3.Connection, EventPersist, int], None]


def row_to_event(row: Sequence[Any]) -> StoredEvent:
    event_id, data, version, stream, received, rejected, outlier, soft, redacted_by = row[:9]
    pdu = Pdu.trusted(room_version(version), json.loads(data), event_id)
    return StoredEvent(
        pdu=pdu,
        stream_ordering=stream,
        received_ts=received,
        rejected=rejected,
        outlier=bool(outlier),
        soft_failed=bool(soft),
        redacted_by=redacted_by,
        txn_device=row[9],
        txn_id=row[10],
        replaces_state=row[11],
    )


def select_events(conn: sqlite3.Connection, event_ids: Iterable[str]) -> dict[str, StoredEvent]:
    found: dict[str, StoredEvent] = {}
    for batch in chunked(set(event_ids)):
        rows = conn.execute(
            f"SELECT {_EVENT_COLUMNS} {_EVENT_FROM}"
            f" WHERE e.event_id IN ({placeholders(len(batch))})",
            batch,
        )
        for row in rows:
            event = row_to_event(row)
            found[event.event_id] = event
    return found


class SqliteEventStore:
    def __init__(self, db: SqliteDatabase, streams: StreamIds) -> None:
        self._db = db
        self._streams = streams
        self._outbound_hooks: list[OutboundHook] = []

    def add_outbound_hook(self, hook: OutboundHook) -> None:
        """Run ``hook`` in the persisting transaction (used to queue PDUs for federation)."""
        self._outbound_hooks.append(hook)

    # -- writes ------------------------------------------------------------------------------

    async def persist_event(self, request: EventPersist) -> PersistResult:
        return await self._db.write(lambda conn: self._persist(conn, request))

    async def persist_events(self, requests: Sequence[EventPersist]) -> list[PersistResult]:
        """Persist several events in one transaction (in order)."""
        return await self._db.write(lambda conn: [self._persist(conn, r) for r in requests])

    def _persist(self, conn: sqlite3.Connection, request: EventPersist) -> PersistResult:
        pdu = request.pdu
        existing = conn.execute(
            "SELECT stream_ordering, outlier FROM events WHERE event_id = ?", (pdu.event_id,)
        ).fetchone()
        if existing is not None and (not existing[1] or request.outlier):
            return self._existing_result(conn, pdu.event_id, existing[0])
        if request.backfill_position is not None:
            stream = request.backfill_position
        elif request.backfilled:
            stream = self._streams.next_backfill(conn)
        else:
            stream = self._streams.next(conn)
        self._write_event_row(conn, request, stream, replace=existing is not None)
        before_group = after_group = None
        if not request.outlier and request.state_before is not None:
            before_group = insert_state_group(conn, pdu.room_id, request.state_before)
            after_group = before_group
            if pdu.is_state and request.rejected is None:
                after_group = insert_state_group(
                    conn, pdu.room_id, NewStateGroup(before_group, {pdu.state_tuple: pdu.event_id})
                )
            conn.execute(
                "INSERT OR REPLACE INTO event_state (event_id, before_group, after_group)"
                " VALUES (?, ?, ?)",
                (pdu.event_id, before_group, after_group),
            )
        current_group = self._update_room_state(conn, request, after_group)
        self._record_side_tables(conn, request, stream)
        for hook in self._outbound_hooks:
            hook(conn, request, stream)
        return PersistResult(stream, before_group, after_group, current_group)

    def _existing_result(
        self, conn: sqlite3.Connection, event_id: str, stream: int
    ) -> PersistResult:
        row = conn.execute(
            "SELECT before_group, after_group FROM event_state WHERE event_id = ?", (event_id,)
        ).fetchone()
        before, after = (row[0], row[1]) if row else (None, None)
        return PersistResult(stream, before, after, None)

    def _write_event_row(
        self, conn: sqlite3.Connection, request: EventPersist, stream: int, replace: bool
    ) -> None:
        pdu = request.pdu
        if replace:
            conn.execute("DELETE FROM events WHERE event_id = ?", (pdu.event_id,))
        txn_device, txn_id = (request.txn[1], request.txn[2]) if request.txn else (None, None)
        conn.execute(
            """
            INSERT INTO events (stream_ordering, event_id, room_id, type, state_key, sender,
                depth, origin_server_ts, received_ts, json, rejected, outlier, soft_failed,
                redacts, txn_device, txn_id, replaces_state)
            VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
            """,
            (
                stream, pdu.event_id, pdu.room_id, pdu.type, pdu.state_key, pdu.sender,
                pdu.depth, pdu.origin_server_ts, request.received_ts,
                encode_canonical_json(pdu.data).decode("utf-8"), request.rejected,
                int(request.outlier), int(request.soft_failed), pdu.redacts, txn_device, txn_id,
                request.replaces_state,
            ),
        )
        conn.executemany(
            "INSERT OR IGNORE INTO event_edges (event_id, prev_event_id) VALUES (?, ?)",
            [(pdu.event_id, prev) for prev in pdu.prev_events],
        )
        conn.executemany(
            "INSERT OR IGNORE INTO event_auth (event_id, auth_id) VALUES (?, ?)",
            [(pdu.event_id, auth) for auth in pdu.auth_events],
        )

    def _update_room_state(
        self, conn: sqlite3.Connection, request: EventPersist, after_group: int | None
    ) -> int | None:
        room_id = request.pdu.room_id
        if request.forward_extremities is not None:
            conn.execute("DELETE FROM forward_extremities WHERE room_id = ?", (room_id,))
            conn.executemany(
                "INSERT INTO forward_extremities (room_id, event_id) VALUES (?, ?)",
                [(room_id, event_id) for event_id in request.forward_extremities],
            )
        group = request.current_state_group
        if group is None:
            current = None
        elif group == AFTER:
            current = after_group
        else:
            assert not isinstance(group, str)
            current = insert_state_group(conn, room_id, group)
        if current is not None:
            conn.execute(
                "UPDATE rooms SET current_state_group = ? WHERE room_id = ?", (current, room_id)
            )
        if request.current_state_delta:
            apply_current_state_delta(conn, room_id, request.current_state_delta)
        return current

    def _record_side_tables(
        self, conn: sqlite3.Connection, request: EventPersist, stream: int
    ) -> None:
        pdu = request.pdu
        conn.executemany(
            """
            INSERT INTO local_membership (user_id, room_id, membership, event_id,
                stream_ordering, forgotten)
            VALUES (?, ?, ?, ?, ?, 0)
            ON CONFLICT (user_id, room_id) DO UPDATE SET membership = excluded.membership,
                event_id = excluded.event_id, stream_ordering = excluded.stream_ordering,
                forgotten = 0
            """,
            [
                (c.user_id, c.room_id, c.membership, c.event_id, stream)
                for c in request.membership_changes
            ],
        )
        if request.txn is not None:
            conn.execute(
                "INSERT OR IGNORE INTO transaction_ids (user_id, device_id, txn_id, event_id,"
                " created_ts) VALUES (?, ?, ?, ?, ?)",
                (*request.txn, pdu.event_id, request.received_ts),
            )
        if request.applies_redaction_of is not None:
            conn.execute(
                "INSERT OR IGNORE INTO redactions (redacts, event_id) VALUES (?, ?)",
                (request.applies_redaction_of, pdu.event_id),
            )

    async def reserve_backfill_positions(self, count: int) -> list[int]:
        """Stream positions for ``count`` backfilled events, ascending (oldest first)."""
        return await self._db.write(lambda conn: self._streams.reserve_backfill(conn, count))

    async def apply_redaction(self, redacts: str, redaction_event_id: str) -> None:
        """Record that an earlier-received redaction now applies to ``redacts``."""
        await self._db.write(
            lambda conn: conn.execute(
                "INSERT OR IGNORE INTO redactions (redacts, event_id) VALUES (?, ?)",
                (redacts, redaction_event_id),
            )
        )

    # -- reads -------------------------------------------------------------------------------

    async def get_events(self, event_ids: Iterable[str]) -> dict[str, StoredEvent]:
        wanted = list(event_ids)
        if not wanted:
            return {}
        return await self._db.read(lambda conn: select_events(conn, wanted),
                                   heavy=len(wanted) > HEAVY_READ_ROWS)

    async def get_event(self, event_id: str) -> StoredEvent | None:
        return (await self.get_events([event_id])).get(event_id)

    async def have_events(self, event_ids: Iterable[str]) -> set[str]:
        wanted = list(set(event_ids))

        def query(conn: sqlite3.Connection) -> set[str]:
            found: set[str] = set()
            for batch in chunked(wanted):
                found.update(
                    row[0]
                    for row in conn.execute(
                        f"SELECT event_id FROM events WHERE event_id IN"
                        f" ({placeholders(len(batch))})",
                        batch,
                    )
                )
            return found

        if not wanted:
            return set()
        return await self._db.read(query, heavy=len(wanted) > HEAVY_READ_ROWS)

    async def get_forward_extremities(self, room_id: str) -> list[str]:
        return await self._db.read(
            lambda conn: [
                row[0]
                for row in conn.execute(
                    "SELECT event_id FROM forward_extremities WHERE room_id = ?", (room_id,)
                )
            ]
        )

    async def get_state_groups_for_events(
        self, event_ids: Iterable[str]
    ) -> dict[str, tuple[int, int]]:
        """``event_id -> (before_group, after_group)`` for events in the room graph."""
        wanted = list(set(event_ids))

        def query(conn: sqlite3.Connection) -> dict[str, tuple[int, int]]:
            found = {}
            for batch in chunked(wanted):
                for event_id, before, after in conn.execute(
                    "SELECT event_id, before_group, after_group FROM event_state"
                    f" WHERE event_id IN ({placeholders(len(batch))})",
                    batch,
                ):
                    found[event_id] = (before, after)
            return found

        return await self._db.read(query, heavy=len(wanted) > HEAVY_READ_ROWS)

    async def get_auth_chain_ids(self, event_ids: Iterable[str]) -> set[str]:
        """Every event reachable through ``auth_events`` from ``event_ids`` (not included)."""
        start = list(set(event_ids))

        def query(conn: sqlite3.Connection) -> set[str]:
            seen: set[str] = set()
            frontier = start
            while frontier:
                found: set[str] = set()
                for batch in chunked(frontier):
                    found.update(
                        row[0]
                        for row in conn.execute(
                            "SELECT auth_id FROM event_auth"
                            f" WHERE event_id IN ({placeholders(len(batch))})",
                            batch,
                        )
                    )
                frontier = list(found - seen)
                seen |= found
            return seen

        return await self._db.read(query, heavy=True)

    async def get_txn_event_id(self, user_id: str, device_id: str, txn_id: str) -> str | None:
        def query(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(
                "SELECT event_id FROM transaction_ids WHERE user_id = ? AND device_id = ?"
                " AND txn_id = ?",
                (user_id, device_id, txn_id),
            ).fetchone()
            return row[0] if row else None

        return await self._db.read(query)

    async def current_stream_ordering(self) -> int:
        return await self._db.read(committed_position)

    async def room_events_between(
        self, room_id: str, after: int, upto: int, limit: int
    ) -> tuple[list[StoredEvent], bool]:
        """The newest ``limit`` timeline events with ``after < stream <= upto``, oldest first.

        The flag says whether older events in the window were left out (the timeline is
        ``limited``).
        """

        def query(conn: sqlite3.Connection) -> tuple[list[StoredEvent], bool]:
            rows = conn.execute(
                f"SELECT {_EVENT_COLUMNS} {_EVENT_FROM}"
                " WHERE e.room_id = ? AND e.stream_ordering > ? AND e.stream_ordering <= ?"
                " AND e.outlier = 0 AND e.rejected IS NULL AND e.soft_failed = 0"
                " ORDER BY e.stream_ordering DESC LIMIT ?",
                (room_id, after, upto, limit + 1),
            ).fetchall()
            limited = len(rows) > limit
            events = [row_to_event(row) for row in rows[:limit]]
            events.reverse()
            return events, limited

        return await self._db.read(query, heavy=limit > HEAVY_READ_ROWS)

    async def paginate_room_events(
        self, room_id: str, from_stream: int, backwards: bool, limit: int,
        to_stream: int | None = None,
    ) -> list[StoredEvent]:
        """Timeline events strictly before (or after) ``from_stream``, and at or after (at or
        before) ``to_stream``, in the walk's order (stream order)."""
        return await self._paginate(
            room_id, ("e.stream_ordering",), (from_stream,), backwards, limit,
            None if to_stream is None else (to_stream,),
        )

    async def paginate_room_events_topological(
        self, room_id: str, from_key: tuple[int, int], backwards: bool, limit: int,
        to_key: tuple[int, int] | None = None,
    ) -> list[StoredEvent]:
        """Timeline events whose ``(depth, stream_ordering)`` is strictly before (or after)
        ``from_key``, and at or after (at or before) ``to_key``, in the walk's order."""
        return await self._paginate(
            room_id, ("e.depth", "e.stream_ordering"), from_key, backwards, limit, to_key
        )

    async def _paginate(
        self, room_id: str, columns: tuple[str, ...], start: tuple[int, ...], backwards: bool,
        limit: int, end: tuple[int, ...] | None,
    ) -> list[StoredEvent]:
        """Timeline events ordered by ``columns``, from ``start`` (excluded) to ``end``
        (included), backwards or forwards."""
        key = f"({', '.join(columns)})"
        values = f"({placeholders(len(columns))})"
        comparison, order = ("<", "DESC") if backwards else (">", "ASC")
        sql = (
            f"SELECT {_EVENT_COLUMNS} {_EVENT_FROM} WHERE e.room_id = ?"
            f" AND {key} {comparison} {values} AND e.outlier = 0"
            " AND e.rejected IS NULL AND e.soft_failed = 0"
        )
        params: list[Any] = [room_id, *start]
        if end is not None:
            sql += f" AND {key} {'>=' if backwards else '<='} {values}"
            params.extend(end)
        sql += " ORDER BY " + ", ".join(f"{column} {order}" for column in columns) + " LIMIT ?"
        params.append(limit)

        def query(conn: sqlite3.Connection) -> list[StoredEvent]:
            return [row_to_event(row) for row in conn.execute(sql, params)]

        return await self._db.read(query, heavy=limit > HEAVY_READ_ROWS)

    async def latest_topological_key(
        self, room_id: str, upto_stream: int
    ) -> tuple[int, int] | None:
        """The greatest ``(depth, stream_ordering)`` among the room's timeline events with
        ``stream_ordering <= upto_stream``; None if it has none."""

        def query(conn: sqlite3.Connection) -> tuple[int, int] | None:
            row = conn.execute(
                "SELECT depth, stream_ordering FROM events WHERE room_id = ?"
                " AND stream_ordering <= ? AND outlier = 0 AND rejected IS NULL"
                " AND soft_failed = 0 ORDER BY depth DESC, stream_ordering DESC LIMIT 1",
                (room_id, upto_stream),
            ).fetchone()
            return (row[0], row[1]) if row else None

        return await self._db.read(query)

    async def backward_extremities(self, event_ids: Iterable[str]) -> dict[str, list[str]]:
        """For each of ``event_ids`` with prev events outside the room graph here (unknown,
        or known only as outliers): those prev events, sorted. Others are left out."""
        wanted = list(set(event_ids))

        def query(conn: sqlite3.Connection) -> dict[str, list[str]]:
            found: dict[str, list[str]] = {}
            for batch in chunked(wanted):
                for event_id, prev_event_id in conn.execute(
                    "SELECT g.event_id, g.prev_event_id FROM event_edges g"
                    " LEFT JOIN events p ON p.event_id = g.prev_event_id"
                    f" WHERE g.event_id IN ({placeholders(len(batch))})"
                    " AND (p.event_id IS NULL OR p.outlier = 1)",
                    batch,
                ):
                    found.setdefault(event_id, []).append(prev_event_id)
            return {event_id: sorted(prevs) for event_id, prevs in found.items()}

        if not wanted:
            return {}
        return await self._db.read(query, heavy=len(wanted) > HEAVY_READ_ROWS)

    async def rooms_with_new_events(
        self, room_ids: Iterable[str], after: int, upto: int
    ) -> set[str]:
        wanted = list(room_ids)

        def query(conn: sqlite3.Connection) -> set[str]:
            found: set[str] = set()
            for batch in chunked(wanted):
                found.update(
                    row[0]
                    for row in conn.execute(
                        "SELECT DISTINCT room_id FROM events WHERE stream_ordering > ?"
                        " AND stream_ordering <= ? AND outlier = 0 AND rejected IS NULL"
                        f" AND soft_failed = 0 AND room_id IN ({placeholders(len(batch))})",
                        (after, upto, *batch),
                    )
                )
            return found

        return await self._db.read(query, heavy=len(wanted) > HEAVY_READ_ROWS)

    async def latest_membership_stream(
        self, room_id: str, user_id: str, membership: str
    ) -> int | None:
        """Stream ordering of the user's newest accepted ``membership`` event in the room."""

        def query(conn: sqlite3.Connection) -> int | None:
            row = conn.execute(
                "SELECT MAX(stream_ordering) FROM events WHERE room_id = ?"
                " AND type = 'm.room.member' AND state_key = ? AND outlier = 0"
                " AND rejected IS NULL AND soft_failed = 0"
                " AND json_extract(json, '$.content.membership') = ?",
                (room_id, user_id, membership),
            ).fetchone()
            return row[0] if row else None

        return await self._db.read(query)

    async def stream_ordering_of(self, event_id: str) -> int | None:
        def query(conn: sqlite3.Connection) -> int | None:
            row = conn.execute(
                "SELECT stream_ordering FROM events WHERE event_id = ?", (event_id,)
            ).fetchone()
            return row[0] if row else None

        return await self._db.read(query)
