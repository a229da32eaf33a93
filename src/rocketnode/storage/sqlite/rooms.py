"""Rooms, local users' memberships, aliases and the public room directory in SQLite."""

from __future__ import annotations

import sqlite3

from rocketnode.core.room_versions import room_version
from rocketnode.storage.records import LocalMembership, RoomRecord
from rocketnode.storage.sqlite.database import SqliteDatabase
from rocketnode.storage.sqlite.streams import committed_position

_ROOM_COLUMNS = "room_id, room_version, creator, is_public, created_ts, current_state_group"


def _room(row: tuple[str, str, str | None, int, int, int | None]) -> RoomRecord:
    return RoomRecord(row[0], room_version(row[1]), row[2], bool(row[3]), row[4], row[5])


def _membership(row: tuple[str, str, str, str, int, int]) -> LocalMembership:
    return LocalMembership(row[0], row[1], row[2], row[3], row[4], bool(row[5]))


class SqliteRoomStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def store_room(
        self, room_id: str, version: str, creator: str | None, created_ts: int,
        is_public: bool = False,
    ) -> bool:
        """Record a room; return False if it was already known (nothing changes then)."""

        def write(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO rooms (room_id, room_version, creator, is_public,"
                " created_ts) VALUES (?, ?, ?, ?, ?)",
                (room_id, version, creator, int(is_public), created_ts),
            )
            return cursor.rowcount == 1

        return await self._db.write(write)

    async def get_room(self, room_id: str) -> RoomRecord | None:
        def query(conn: sqlite3.Connection) -> RoomRecord | None:
            row = conn.execute(
                f"SELECT {_ROOM_COLUMNS} FROM rooms WHERE room_id = ?", (room_id,)
            ).fetchone()
            return _room(row) if row else None

        return await self._db.read(query)

    async def set_public(self, room_id: str, is_public: bool) -> None:
        await self._db.write(
            lambda conn: conn.execute(
                "UPDATE rooms SET is_public = ? WHERE room_id = ?", (int(is_public), room_id)
            )
        )

    async def public_room_ids(self) -> list[str]:
        """Rooms in the public directory that this server currently participates in."""
        return await self._db.read(
            lambda conn: [
                row[0]
                for row in conn.execute(
                    "SELECT r.room_id FROM rooms r WHERE r.is_public = 1 AND EXISTS ("
                    " SELECT 1 FROM forward_extremities f WHERE f.room_id = r.room_id)"
                    " ORDER BY r.created_ts, r.room_id"
                )
            ]
        )

    # -- local memberships -------------------------------------------------------------------

    async def local_memberships(self, user_id: str) -> list[LocalMembership]:
        return await self._db.read(
            lambda conn: [
                _membership(row)
                for row in conn.execute(
                    "SELECT user_id, room_id, membership, event_id, stream_ordering, forgotten"
                    " FROM local_membership WHERE user_id = ?",
                    (user_id,),
                )
            ]
        )

    async def memberships_at_committed_position(
        self, user_id: str
    ) -> tuple[int, list[LocalMembership]]:
        """The highest committed stream position and the user's memberships, read together
        (one snapshot: no membership change can fall between the two)."""

        def query(conn: sqlite3.Connection) -> tuple[int, list[LocalMembership]]:
            position = committed_position(conn)
            rows = conn.execute(
                "SELECT user_id, room_id, membership, event_id, stream_ordering, forgotten"
                " FROM local_membership WHERE user_id = ?",
                (user_id,),
            )
            return position, [_membership(row) for row in rows]

        return await self._db.read(query)

    async def servers_sharing_rooms(self) -> list[str]:
        """Every server with a user joined to a room that a local user is joined to."""
        return await self._db.read(
            lambda conn: [
                row[0]
                for row in conn.execute(
                    "SELECT DISTINCT substr(c.state_key, instr(c.state_key, ':') + 1)"
                    " FROM current_state c WHERE c.type = 'm.room.member'"
                    " AND c.membership = 'join' AND c.room_id IN ("
                    " SELECT room_id FROM local_membership WHERE membership = 'join')"
                    " ORDER BY 1"
                )
            ]
        )

    async def local_membership(self, user_id: str, room_id: str) -> LocalMembership | None:
        def query(conn: sqlite3.Connection) -> LocalMembership | None:
            row = conn.execute(
                "SELECT user_id, room_id, membership, event_id, stream_ordering, forgotten"
                " FROM local_membership WHERE user_id = ? AND room_id = ?",
                (user_id, room_id),
            ).fetchone()
            return _membership(row) if row else None

        return await self._db.read(query)

    async def local_membership_changes(
        self, user_id: str, after: int, upto: int
    ) -> list[LocalMembership]:
        return await self._db.read(
            lambda conn: [
                _membership(row)
                for row in conn.execute(
                    "SELECT user_id, room_id, membership, event_id, stream_ordering, forgotten"
                    " FROM local_membership WHERE user_id = ? AND stream_ordering > ?"
                    " AND stream_ordering <= ? ORDER BY stream_ordering",
                    (user_id, after, upto),
                )
            ]
        )

    async def local_users_in_room(self, room_id: str, membership: str = "join") -> list[str]:
        return await self._db.read(
            lambda conn: [
                row[0]
                for row in conn.execute(
                    "SELECT user_id FROM local_membership WHERE room_id = ? AND membership = ?",
                    (room_id, membership),
                )
            ]
        )

    async def forget(self, user_id: str, room_id: str) -> None:
        await self._db.write(
            lambda conn: conn.execute(
                "UPDATE local_membership SET forgotten = 1 WHERE user_id = ? AND room_id = ?",
                (user_id, room_id),
            )
        )

    # -- aliases -----------------------------------------------------------------------------

    async def create_alias(self, alias: str, room_id: str, creator: str) -> bool:
        """Create an alias; False if it is already taken."""

        def write(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO room_aliases (alias, room_id, creator) VALUES (?, ?, ?)",
                (alias, room_id, creator),
            )
            return cursor.rowcount == 1

        return await self._db.write(write)

    async def get_alias(self, alias: str) -> tuple[str, str] | None:
        """``(room_id, creator)`` of a local alias."""

        def query(conn: sqlite3.Connection) -> tuple[str, str] | None:
            row = conn.execute(
                "SELECT room_id, creator FROM room_aliases WHERE alias = ?", (alias,)
            ).fetchone()
            return (row[0], row[1]) if row else None

        return await self._db.read(query)

    async def delete_alias(self, alias: str) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            return conn.execute("DELETE FROM room_aliases WHERE alias = ?", (alias,)).rowcount == 1

        return await self._db.write(write)

    async def aliases_for_room(self, room_id: str) -> list[str]:
        return await self._db.read(
            lambda conn: [
                row[0]
                for row in conn.execute(
                    "SELECT alias FROM room_aliases WHERE room_id = ? ORDER BY alias", (room_id,)
                )
            ]
        )
