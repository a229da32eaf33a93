"""Per-user client data in SQLite: receipts, account data, filters and push rules."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from rocketnode.core.canonical_json import encode_json
from rocketnode.storage.records import AccountDataItem, Receipt
from rocketnode.storage.sqlite.database import (
    HEAVY_READ_ROWS,
    SqliteDatabase,
    chunked,
    placeholders,
)
from rocketnode.storage.sqlite.streams import StreamIds


def _dumps(value: Any) -> str:
    return encode_json(value).decode("utf-8")


class SqliteClientDataStore:
    def __init__(self, db: SqliteDatabase, streams: StreamIds) -> None:
        self._db = db
        self._streams = streams

    # -- receipts ----------------------------------------------------------------------------

    async def put_receipt(
        self, room_id: str, receipt_type: str, user_id: str, thread_id: str, event_id: str,
        data: dict[str, Any],
    ) -> int:
        """Store a user's receipt (replacing their previous one); return its stream position."""

        def write(conn: sqlite3.Connection) -> int:
            stream = self._streams.next(conn)
            conn.execute(
                "INSERT INTO receipts (room_id, receipt_type, user_id, thread_id, event_id,"
                " data, stream_ordering) VALUES (?,?,?,?,?,?,?)"
                " ON CONFLICT (room_id, receipt_type, user_id, thread_id) DO UPDATE SET"
                " event_id = excluded.event_id, data = excluded.data,"
                " stream_ordering = excluded.stream_ordering",
                (room_id, receipt_type, user_id, thread_id, event_id, _dumps(data), stream),
            )
            return stream

        return await self._db.write(write)

    async def receipts_for_rooms(
        self, room_ids: Iterable[str], after: int, upto: int
    ) -> list[Receipt]:
        """Receipts in ``room_ids`` with ``after < stream <= upto`` (``after=0`` for all)."""
        wanted = list(room_ids)

        def query(conn: sqlite3.Connection) -> list[Receipt]:
            found: list[Receipt] = []
            for batch in chunked(wanted):
                rows = conn.execute(
                    "SELECT room_id, receipt_type, user_id, thread_id, event_id, data,"
                    " stream_ordering FROM receipts WHERE stream_ordering > ?"
                    " AND stream_ordering <= ?"
                    f" AND room_id IN ({placeholders(len(batch))}) ORDER BY stream_ordering",
                    (after, upto, *batch),
                )
                found.extend(
                    Receipt(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6]) for r in rows
                )
            return found

        if not wanted:
            return []
        return await self._db.read(query, heavy=len(wanted) > HEAVY_READ_ROWS)

    # -- account data ------------------------------------------------------------------------

    async def put_account_data(
        self, user_id: str, room_id: str, data_type: str, content: dict[str, Any]
    ) -> int:
        def write(conn: sqlite3.Connection) -> int:
            stream = self._streams.next(conn)
            conn.execute(
                "INSERT INTO account_data (user_id, room_id, type, content, stream_ordering)"
                " VALUES (?,?,?,?,?) ON CONFLICT (user_id, room_id, type) DO UPDATE SET"
                " content = excluded.content, stream_ordering = excluded.stream_ordering",
                (user_id, room_id, data_type, _dumps(content), stream),
            )
            return stream

        return await self._db.write(write)

    async def get_account_data(
        self, user_id: str, room_id: str, data_type: str
    ) -> dict[str, Any] | None:
        def query(conn: sqlite3.Connection) -> dict[str, Any] | None:
            row = conn.execute(
                "SELECT content FROM account_data WHERE user_id = ? AND room_id = ? AND type = ?",
                (user_id, room_id, data_type),
            ).fetchone()
            return json.loads(row[0]) if row else None

        return await self._db.read(query)

    async def account_data_since(
        self, user_id: str, after: int, upto: int
    ) -> list[AccountDataItem]:
        return await self._db.read(
            lambda conn: [
                AccountDataItem(r[0], r[1], r[2], json.loads(r[3]), r[4])
                for r in conn.execute(
                    "SELECT user_id, room_id, type, content, stream_ordering FROM account_data"
                    " WHERE user_id = ? AND stream_ordering > ? AND stream_ordering <= ?"
                    " ORDER BY stream_ordering",
                    (user_id, after, upto),
                )
            ]
        )

    # -- filters -----------------------------------------------------------------------------

    async def add_filter(self, user_id: str, filter_json: dict[str, Any]) -> int:
        def write(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT COALESCE(MAX(filter_id), -1) + 1 FROM filters WHERE user_id = ?",
                (user_id,),
            ).fetchone()
            filter_id = int(row[0])
            conn.execute(
                "INSERT INTO filters (user_id, filter_id, filter_json) VALUES (?, ?, ?)",
                (user_id, filter_id, _dumps(filter_json)),
            )
            return filter_id

        return await self._db.write(write)

    async def get_filter(self, user_id: str, filter_id: int) -> dict[str, Any] | None:
        def query(conn: sqlite3.Connection) -> dict[str, Any] | None:
            row = conn.execute(
                "SELECT filter_json FROM filters WHERE user_id = ? AND filter_id = ?",
                (user_id, filter_id),
            ).fetchone()
            return json.loads(row[0]) if row else None

        return await self._db.read(query)

    # -- push rules --------------------------------------------------------------------------

    async def get_push_rule_overrides(self, user_id: str) -> list[tuple[str, str, str, Any, Any]]:
        """``(scope, kind, rule_id, rule or None, enabled or None)`` rows for a user."""
        return await self._db.read(
            lambda conn: [
                (r[0], r[1], r[2], json.loads(r[3]) if r[3] else None,
                 None if r[4] is None else bool(r[4]))
                for r in conn.execute(
                    "SELECT scope, kind, rule_id, rule, enabled FROM push_rules"
                    " WHERE user_id = ? ORDER BY priority DESC, rule_id",
                    (user_id,),
                )
            ]
        )

    async def put_push_rule(
        self, user_id: str, scope: str, kind: str, rule_id: str,
        rule: dict[str, Any] | None, enabled: bool | None,
    ) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO push_rules (user_id, scope, kind, rule_id, rule, enabled)"
                " VALUES (?,?,?,?,?,?) ON CONFLICT (user_id, scope, kind, rule_id) DO UPDATE"
                " SET rule = COALESCE(excluded.rule, push_rules.rule),"
                " enabled = COALESCE(excluded.enabled, push_rules.enabled)",
                (user_id, scope, kind, rule_id, _dumps(rule) if rule is not None else None,
                 None if enabled is None else int(enabled)),
            )

        await self._db.write(write)

    async def put_user_push_rule(
        self, user_id: str, scope: str, kind: str, rule_id: str, rule: dict[str, Any],
        order: Sequence[str],
    ) -> None:
        """Create (enabled) or replace a user-defined rule and, in the same transaction, set the
        priority order of the user's rules of ``kind``: ``order`` lists them most important
        first (``rule_id`` included)."""

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO push_rules (user_id, scope, kind, rule_id, rule, enabled)"
                " VALUES (?,?,?,?,?,1) ON CONFLICT (user_id, scope, kind, rule_id) DO UPDATE"
                " SET rule = excluded.rule",
                (user_id, scope, kind, rule_id, _dumps(rule)),
            )
            conn.executemany(
                "UPDATE push_rules SET priority = ? WHERE user_id = ? AND scope = ?"
                " AND kind = ? AND rule_id = ?",
                [(len(order) - index, user_id, scope, kind, other)
                 for index, other in enumerate(order)],
            )

        await self._db.write(write)

    async def delete_push_rule(self, user_id: str, scope: str, kind: str, rule_id: str) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            return conn.execute(
                "DELETE FROM push_rules WHERE user_id = ? AND scope = ? AND kind = ?"
                " AND rule_id = ?",
                (user_id, scope, kind, rule_id),
            ).rowcount == 1

        return await self._db.write(write)
