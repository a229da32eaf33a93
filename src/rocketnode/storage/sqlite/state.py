"""Room state in SQLite, stored compactly as deltas between state groups."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping

from rocketnode.core.pdu import StateKey
from rocketnode.storage.records import NewStateGroup, StateGroupRef
from rocketnode.storage.sqlite.database import (
    HEAVY_READ_ROWS,
    SqliteDatabase,
    chunked,
    placeholders,
)

MAX_CHAIN_LENGTH = 64
"""After this many deltas in a row, a group is stored as a full snapshot."""

StateMap = dict[StateKey, str]


def load_state_group(conn: sqlite3.Connection, group_id: int) -> StateMap:
    """The full state of a group: its entries applied over its chain of previous groups."""
    rows = conn.execute(
        """
        WITH RECURSIVE chain(id, prev, level) AS (
            SELECT id, prev_group, 0 FROM state_groups WHERE id = ?
            UNION ALL
            SELECT g.id, g.prev_group, c.level + 1
            FROM state_groups g JOIN chain c ON g.id = c.prev
        )
        SELECT e.type, e.state_key, e.event_id
        FROM chain JOIN state_group_entries e ON e.group_id = chain.id
        ORDER BY chain.level DESC
        """,
        (group_id,),
    ).fetchall()
    return {(event_type, state_key): event_id for event_type, state_key, event_id in rows}


def load_state_entries(
    conn: sqlite3.Connection, group_ids: list[int], keys: list[StateKey]
) -> dict[int, StateMap]:
    """Only the entries for ``keys`` of each group (each group's chain walked once, in SQL)."""
    found: dict[int, StateMap] = {group_id: {} for group_id in group_ids}
    for key_batch in chunked(keys, 200):  # two parameters a key: 400 + 500 fits in 999
        for batch in chunked(group_ids):
            _load_entries_batch(conn, batch, key_batch, found)
    return found


def _load_entries_batch(
    conn: sqlite3.Connection, batch: list[int], keys: list[StateKey],
    found: dict[int, StateMap],
) -> None:
    key_values = ",".join("(?, ?)" for _ in keys)
    key_params = [part for key in keys for part in key]
    rows = conn.execute(
        f"""
        WITH RECURSIVE chain(root, id, prev, level) AS (
            SELECT id, id, prev_group, 0 FROM state_groups
            WHERE id IN ({placeholders(len(batch))})
            UNION ALL
            SELECT c.root, g.id, g.prev_group, c.level + 1
            FROM state_groups g JOIN chain c ON g.id = c.prev
        ),
        wanted(type, state_key) AS (VALUES {key_values})
        SELECT chain.root, e.type, e.state_key, e.event_id
        FROM chain CROSS JOIN wanted
        JOIN state_group_entries e ON e.group_id = chain.id AND e.type = wanted.type
            AND e.state_key = wanted.state_key
        ORDER BY chain.root, chain.level DESC
        """,
        [*batch, *key_params],
    )
    for root, event_type, state_key, event_id in rows:
        found[root][(event_type, state_key)] = event_id


def insert_state_group(conn: sqlite3.Connection, room_id: str, ref: StateGroupRef) -> int:
    """Return ``ref`` if it names a group; otherwise create the group and return its ID."""
    if isinstance(ref, int):
        return ref
    prev_group, delta = ref.prev_group, dict(ref.delta)
    chain_length = 0
    if prev_group is not None:
        row = conn.execute(
            "SELECT chain_length FROM state_groups WHERE id = ?", (prev_group,)
        ).fetchone()
        if row is None:
            raise LookupError(f"Unknown state group {prev_group}")
        chain_length = row[0] + 1
        if chain_length > MAX_CHAIN_LENGTH:
            full = load_state_group(conn, prev_group)
            full.update(delta)
            prev_group, delta, chain_length = None, full, 0
    cursor = conn.execute(
        "INSERT INTO state_groups (room_id, prev_group, chain_length) VALUES (?, ?, ?)",
        (room_id, prev_group, chain_length),
    )
    group_id = cursor.lastrowid
    assert group_id is not None
    conn.executemany(
        "INSERT INTO state_group_entries (group_id, type, state_key, event_id) VALUES (?,?,?,?)",
        [(group_id, key[0], key[1], event_id) for key, event_id in delta.items()],
    )
    return group_id


def apply_current_state_delta(
    conn: sqlite3.Connection, room_id: str, delta: Mapping[StateKey, str]
) -> None:
    conn.executemany(
        """
        INSERT INTO current_state (room_id, type, state_key, event_id, membership)
        SELECT ?, ?, ?, ?, (SELECT json_extract(json, '$.content.membership')
                            FROM events WHERE event_id = ? AND type = 'm.room.member')
        ON CONFLICT (room_id, type, state_key)
        DO UPDATE SET event_id = excluded.event_id, membership = excluded.membership
        """,
        [(room_id, key[0], key[1], event_id, event_id) for key, event_id in delta.items()],
    )


class SqliteStateStore:
    """Read access to state groups and the materialised current state."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def get_state_group(self, group_id: int) -> StateMap:
        return await self._db.read(lambda conn: load_state_group(conn, group_id), heavy=True)

    async def get_state_groups(self, group_ids: Iterable[int]) -> dict[int, StateMap]:
        wanted = sorted(set(group_ids))
        return await self._db.read(lambda conn: {g: load_state_group(conn, g) for g in wanted},
                                   heavy=True)

    async def get_state_entries(
        self, group_ids: Iterable[int], keys: Iterable[StateKey]
    ) -> dict[int, StateMap]:
        """``group -> {key: event_id}`` for just ``keys`` (absent keys are left out)."""
        wanted_groups, wanted_keys = sorted(set(group_ids)), sorted(set(keys))
        if not wanted_groups:
            return {}
        return await self._db.read(
            lambda conn: load_state_entries(conn, wanted_groups, wanted_keys),
            heavy=len(wanted_groups) * max(len(wanted_keys), 1) > HEAVY_READ_ROWS,
        )

    async def store_state_group(self, room_id: str, group: NewStateGroup) -> int:
        return await self._db.write(lambda conn: insert_state_group(conn, room_id, group))

    async def get_current_state(
        self, room_id: str, event_type: str | None = None
    ) -> StateMap:
        def query(conn: sqlite3.Connection) -> StateMap:
            if event_type is None:
                rows = conn.execute(
                    "SELECT type, state_key, event_id FROM current_state WHERE room_id = ?",
                    (room_id,),
                )
            else:
                rows = conn.execute(
                    "SELECT type, state_key, event_id FROM current_state"
                    " WHERE room_id = ? AND type = ?",
                    (room_id, event_type),
                )
            return {(t, k): e for t, k, e in rows}

        return await self._db.read(query, heavy=event_type in (None, "m.room.member"))

    async def get_current_state_event_id(self, room_id: str, key: StateKey) -> str | None:
        def query(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(
                "SELECT event_id FROM current_state WHERE room_id = ? AND type = ?"
                " AND state_key = ?",
                (room_id, key[0], key[1]),
            ).fetchone()
            return row[0] if row else None

        return await self._db.read(query)

    async def get_members(
        self, room_id: str, membership: str | None = "join"
    ) -> dict[str, str]:
        """``user_id -> membership`` for the room's current members (optionally filtered)."""

        def query(conn: sqlite3.Connection) -> dict[str, str]:
            sql = (
                "SELECT state_key, membership FROM current_state"
                " WHERE room_id = ? AND type = 'm.room.member'"
            )
            params: tuple[str, ...] = (room_id,)
            if membership is not None:
                sql += " AND membership = ?"
                params = (room_id, membership)
            return dict(conn.execute(sql, params).fetchall())

        return await self._db.read(query, heavy=True)

    async def get_joined_servers(self, room_id: str) -> set[str]:
        """The servers with at least one joined member (on the send path: kept cheap)."""
        return await self._db.read(
            lambda conn: {
                row[0]
                for row in conn.execute(
                    "SELECT DISTINCT substr(state_key, instr(state_key, ':') + 1)"
                    " FROM current_state WHERE room_id = ? AND type = 'm.room.member'"
                    " AND membership = 'join'",
                    (room_id,),
                )
            }
        )

    async def joined_member_counts(self, room_id: str) -> dict[str, int]:
        """``server -> number of its users joined`` to the room now."""
        return await self._db.read(
            lambda conn: dict(conn.execute(
                "SELECT substr(state_key, instr(state_key, ':') + 1), COUNT(*)"
                " FROM current_state WHERE room_id = ? AND type = 'm.room.member'"
                " AND membership = 'join' GROUP BY 1",
                (room_id,),
            ).fetchall()),
            heavy=True,
        )

    async def get_memberships(
        self, user_id: str, room_ids: Iterable[str]
    ) -> dict[str, str]:
        """Current membership of one user in each of ``room_ids`` (absent if none)."""
        wanted = list(room_ids)

        def query(conn: sqlite3.Connection) -> dict[str, str]:
            found: dict[str, str] = {}
            for batch in chunked(wanted):
                rows = conn.execute(
                    "SELECT room_id, membership FROM current_state WHERE type = 'm.room.member'"
                    f" AND state_key = ? AND room_id IN ({placeholders(len(batch))})",
                    (user_id, *batch),
                )
                found.update(dict(rows.fetchall()))
            return found

        return await self._db.read(query, heavy=len(wanted) > HEAVY_READ_ROWS)
