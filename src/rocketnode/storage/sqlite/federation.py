"""Federation state in SQLite: remote keys, the outbound PDU queue, destination health and
inbound transaction results."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from rocketnode.core.canonical_json import encode_json
from rocketnode.storage.records import DestinationState, EventPersist, QueuedPdu
from rocketnode.storage.sqlite.database import SqliteDatabase


def queue_outbound(conn: sqlite3.Connection, request: EventPersist, stream: int) -> None:
    """Persist hook: queue the event for its destinations in the storing transaction."""
    if not request.outbound_destinations:
        return
    pdu = request.pdu
    conn.executemany(
        "INSERT OR IGNORE INTO outbound_pdus (destination, stream_ordering, event_id, room_id)"
        " VALUES (?, ?, ?, ?)",
        [(d, stream, pdu.event_id, pdu.room_id) for d in request.outbound_destinations],
    )


def _destination(row: tuple[Any, ...]) -> DestinationState:
    return DestinationState(*row)


class SqliteFederationStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    # -- keys --------------------------------------------------------------------------------

    async def store_server_keys(
        self, server_name: str, keys: dict[str, tuple[str, int]], response: dict[str, Any] | None,
        valid_until_ts: int, now_ts: int,
    ) -> None:
        """Store verify keys ``key_id -> (base64 key, valid_until_ts)`` and the raw response."""

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO server_keys (server_name, key_id, verify_key, valid_until_ts,"
                " fetched_ts) VALUES (?,?,?,?,?) ON CONFLICT (server_name, key_id) DO UPDATE"
                " SET verify_key = excluded.verify_key,"
                " valid_until_ts = MAX(server_keys.valid_until_ts, excluded.valid_until_ts),"
                " fetched_ts = excluded.fetched_ts",
                [(server_name, key_id, key, until, now_ts)
                 for key_id, (key, until) in keys.items()],
            )
            if response is not None:
                conn.execute(
                    "INSERT INTO server_key_responses (server_name, response, valid_until_ts,"
                    " fetched_ts) VALUES (?,?,?,?) ON CONFLICT (server_name) DO UPDATE SET"
                    " response = excluded.response, valid_until_ts = excluded.valid_until_ts,"
                    " fetched_ts = excluded.fetched_ts"
                    " WHERE excluded.valid_until_ts >= server_key_responses.valid_until_ts",
                    (server_name, encode_json(response).decode("utf-8"), valid_until_ts, now_ts),
                )

        await self._db.write(write)

    async def get_server_keys(self, server_name: str) -> dict[str, tuple[str, int]]:
        return await self._db.read(
            lambda conn: {
                row[0]: (row[1], row[2])
                for row in conn.execute(
                    "SELECT key_id, verify_key, valid_until_ts FROM server_keys"
                    " WHERE server_name = ?",
                    (server_name,),
                )
            }
        )

    async def get_key_response(self, server_name: str) -> tuple[dict[str, Any], int] | None:
        def query(conn: sqlite3.Connection) -> tuple[dict[str, Any], int] | None:
            row = conn.execute(
                "SELECT response, valid_until_ts FROM server_key_responses WHERE server_name = ?",
                (server_name,),
            ).fetchone()
            return (json.loads(row[0]), row[1]) if row else None

        return await self._db.read(query)

    # -- outbound queue ----------------------------------------------------------------------

    async def queued_pdus(self, destination: str, limit: int) -> list[QueuedPdu]:
        return await self._db.read(
            lambda conn: [
                QueuedPdu(*row)
                for row in conn.execute(
                    "SELECT destination, stream_ordering, event_id, room_id FROM outbound_pdus"
                    " WHERE destination = ? ORDER BY stream_ordering LIMIT ?",
                    (destination, limit),
                )
            ]
        )

    async def queue_depths(self) -> dict[str, int]:
        return await self._db.read(
            lambda conn: dict(
                conn.execute(
                    "SELECT destination, COUNT(*) FROM outbound_pdus GROUP BY destination"
                ).fetchall()
            )
        )

    async def newest_queued_per_room(self, destination: str) -> list[QueuedPdu]:
        """For catch-up: the newest queued PDU of each room for ``destination``."""
        return await self._db.read(
            lambda conn: [
                QueuedPdu(*row)
                for row in conn.execute(
                    "SELECT destination, MAX(stream_ordering), event_id, room_id"
                    " FROM outbound_pdus WHERE destination = ? GROUP BY room_id"
                    " ORDER BY MAX(stream_ordering)",
                    (destination,),
                )
            ]
        )

    async def dequeue_pdus(self, destination: str, up_to_stream: int, room_ids: list[str] | None
                           ) -> None:
        """Drop queued PDUs at or below ``up_to_stream`` (of ``room_ids`` only, if given)."""

        def write(conn: sqlite3.Connection) -> None:
            if room_ids is None:
                conn.execute(
                    "DELETE FROM outbound_pdus WHERE destination = ? AND stream_ordering <= ?",
                    (destination, up_to_stream),
                )
                return
            conn.executemany(
                "DELETE FROM outbound_pdus WHERE destination = ? AND room_id = ?"
                " AND stream_ordering <= ?",
                [(destination, room_id, up_to_stream) for room_id in room_ids],
            )

        await self._db.write(write)

    async def destinations_with_queue(self) -> list[str]:
        return await self._db.read(
            lambda conn: [
                row[0] for row in conn.execute("SELECT DISTINCT destination FROM outbound_pdus")
            ]
        )

    # -- destination health ------------------------------------------------------------------

    async def get_destination(self, destination: str) -> DestinationState | None:
        def query(conn: sqlite3.Connection) -> DestinationState | None:
            row = conn.execute(
                "SELECT destination, retry_after_ts, retry_interval_ms, failing_since_ts,"
                " last_success_ts, last_error, last_error_ts FROM destinations"
                " WHERE destination = ?",
                (destination,),
            ).fetchone()
            return _destination(row) if row else None

        return await self._db.read(query)

    async def all_destinations(self) -> list[DestinationState]:
        return await self._db.read(
            lambda conn: [
                _destination(row)
                for row in conn.execute(
                    "SELECT destination, retry_after_ts, retry_interval_ms, failing_since_ts,"
                    " last_success_ts, last_error, last_error_ts FROM destinations"
                    " ORDER BY destination"
                )
            ]
        )

    async def set_destination(self, state: DestinationState) -> None:
        await self._db.write(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO destinations (destination, retry_after_ts,"
                " retry_interval_ms, failing_since_ts, last_success_ts, last_error,"
                " last_error_ts) VALUES (?,?,?,?,?,?,?)",
                (state.destination, state.retry_after_ts, state.retry_interval_ms,
                 state.failing_since_ts, state.last_success_ts, state.last_error,
                 state.last_error_ts),
            )
        )

    # -- inbound transactions ----------------------------------------------------------------

    async def get_transaction_response(self, origin: str, txn_id: str) -> dict[str, Any] | None:
        def query(conn: sqlite3.Connection) -> dict[str, Any] | None:
            row = conn.execute(
                "SELECT response FROM inbound_transactions WHERE origin = ? AND txn_id = ?",
                (origin, txn_id),
            ).fetchone()
            return json.loads(row[0]) if row else None

        return await self._db.read(query)

    async def store_transaction_response(
        self, origin: str, txn_id: str, response: dict[str, Any], now_ts: int
    ) -> None:
        await self._db.write(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO inbound_transactions (origin, txn_id, response,"
                " received_ts) VALUES (?, ?, ?, ?)",
                (origin, txn_id, encode_json(response).decode("utf-8"), now_ts),
            )
        )

    async def prune_transaction_responses(self, received_before_ts: int) -> int:
        """Forget the answers to transactions received before ``received_before_ts``; how
        many were forgotten."""
        return await self._db.write(
            lambda conn: conn.execute(
                "DELETE FROM inbound_transactions WHERE received_ts < ?", (received_before_ts,)
            ).rowcount
        )
