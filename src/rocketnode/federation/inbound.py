"""Inbound transactions: ``PUT /_matrix/federation/v1/send/{txnId}`` (server-server API
"Transactions").

A transaction carries up to 50 PDUs and 100 EDUs. It is idempotent by ``(origin, txnId)`` (the
first answer is stored and replayed) and every PDU by its event ID. PDUs of different rooms are
handled concurrently and those of one room in order, so one slow or bad PDU never blocks the
others; every PDU gets its own result. PDUs of rooms this server is not in (no local user
joined) are dropped.

Answers are kept for replays for :data:`KEEP_ANSWERS_MS` (a day, as senders retry a
transaction within minutes); older ones are pruned at most every :data:`PRUNE_EVERY_MS`. A
transaction replayed after that is processed again, which changes nothing: its PDUs are known.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from rocketnode.core.errors import Errcode, MatrixError, RemoteServerError
from rocketnode.core.pdu import Pdu
from rocketnode.federation.event_intake import EventIntake
from rocketnode.services.clock import Clock
from rocketnode.storage.ports import FederationStore, RoomStore

logger = logging.getLogger(__name__)

MAX_PDUS = 50
MAX_EDUS = 100
PDU_TIMEOUT_S = 120.0
KEEP_ANSWERS_MS = 24 * 60 * 60 * 1000
PRUNE_EVERY_MS = 60 * 60 * 1000

EduHandler = Callable[[str, dict[str, Any]], Awaitable[None]]
"""``(origin, content)``: take in one EDU; raise MatrixError to report a bad one."""


class TransactionHandler:
    def __init__(self, intake: EventIntake, room_store: RoomStore, store: FederationStore,
                 clock: Clock, room_lock: Callable[[str], asyncio.Lock]) -> None:
        self._intake = intake
        self._room_store = room_store
        self._store = store
        self._clock = clock
        self._room_lock = room_lock
        self.edu_handlers: dict[str, EduHandler] = {}
        self._in_flight: dict[tuple[str, str], asyncio.Future[dict[str, Any]]] = {}
        self._recording: set[asyncio.Task[Any]] = set()
        self._pruned_at: int | None = None

    async def on_send(self, origin: str, txn_id: str, body: Any) -> dict[str, Any]:
        """Process a transaction (or replay the answer to one already processed).

        The answer is returned as soon as every PDU is stored; recording it for replays is
        queued behind those writes and awaited by :meth:`close`, and until it lands a
        duplicate waits for it here. A replay that slips past (after a crash) is harmless:
        PDUs are idempotent by event ID.
        """
        key = (origin, txn_id)
        running = self._in_flight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        # registered before anything is awaited: a duplicate either finds this future or,
        # once it is gone, the stored answer
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            response = await self._store.get_transaction_response(origin, txn_id)
            if response is None:
                pdus, edus = _validate(origin, body)
                response = await self._process(origin, pdus, edus)
                self._record(key, response)
            else:
                del self._in_flight[key]
            future.set_result(response)
            return response
        except BaseException as exc:
            self._in_flight.pop(key, None)
            future.set_exception(exc)
            future.exception()
            raise

    def _record(self, key: tuple[str, str], response: dict[str, Any]) -> None:
        now = self._clock.now_ms()
        task = asyncio.get_running_loop().create_task(
            self._store.store_transaction_response(*key, response, now))
        self._recording.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._recording.discard(finished)
            self._in_flight.pop(key, None)
            if not finished.cancelled() and finished.exception() is not None:
                logger.error("Could not record transaction %s: %s", key, finished.exception())

        task.add_done_callback(done)
        if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY_MS:
            self._pruned_at = now
            self._prune(now - KEEP_ANSWERS_MS)

    def _prune(self, received_before_ts: int) -> None:
        task = asyncio.get_running_loop().create_task(
            self._store.prune_transaction_responses(received_before_ts))
        self._recording.add(task)

        def done(finished: asyncio.Task[int]) -> None:
            self._recording.discard(finished)
            if finished.cancelled():
                return
            if finished.exception() is not None:
                logger.error("Could not prune transaction answers: %s", finished.exception())
            elif finished.result():
                logger.info("Forgot the answers to %d old transactions", finished.result())

        task.add_done_callback(done)

    async def close(self) -> None:
        """Wait until every answer given has been recorded (called by ``app.py``)."""
        await asyncio.gather(*self._recording, return_exceptions=True)

    async def _process(self, origin: str, pdus: list[Any], edus: list[Any]) -> dict[str, Any]:
        results: dict[str, dict[str, Any]] = {}
        by_room: dict[str, list[Any]] = {}
        for raw in pdus:
            room_id = raw.get("room_id") if isinstance(raw, dict) else None
            if not isinstance(room_id, str):
                continue
            by_room.setdefault(room_id, []).append(raw)
        async with asyncio.TaskGroup() as group:
            for room_id, raws in by_room.items():
                group.create_task(self._room_pdus(origin, room_id, raws, results))
        await self._edus(origin, edus)
        return {"pdus": results}

    async def _room_pdus(self, origin: str, room_id: str, raws: list[Any],
                         results: dict[str, dict[str, Any]]) -> None:
        room = await self._room_store.get_room(room_id)
        if room is None or not await self._room_store.local_users_in_room(room_id):
            # e.g. the invite of one of our users, sent to us as the target's server: taking
            # it in would pull the room's history into a server that is not in the room
            logger.info("Dropping %d PDUs for %s from %s: this server is not in the room",
                        len(raws), room_id, origin)
            return
        parsed = await self._intake.parse_verified(room.room_version, raws)
        for raw, item in zip(raws, parsed, strict=True):
            if not isinstance(item, Pdu):
                event_id = raw.get("event_id") if isinstance(raw.get("event_id"), str) else None
                logger.info("Dropping a PDU from %s: %s", origin, item.message)
                if event_id:
                    results[event_id] = {"error": item.message}
                continue
            results[item.event_id] = await self._one_pdu(origin, item)

    async def _one_pdu(self, origin: str, pdu: Pdu) -> dict[str, Any]:
        try:
            async with self._room_lock(pdu.room_id):
                stored = await asyncio.wait_for(self._intake.take(origin, pdu), PDU_TIMEOUT_S)
        except (MatrixError, RemoteServerError, TimeoutError) as exc:
            logger.info("PDU %s from %s failed: %s", pdu.event_id, origin, exc)
            return {"error": str(exc)}
        except Exception:  # a bug met by one PDU must not fail (and block) the others
            logger.exception("PDU %s from %s failed unexpectedly", pdu.event_id, origin)
            return {"error": "internal error"}
        if stored is not None and stored.rejected is not None:
            return {"error": f"rejected: {stored.rejected}"}
        return {}

    async def _edus(self, origin: str, edus: list[Any]) -> None:
        for edu in edus:
            if not isinstance(edu, dict) or not isinstance(edu.get("content"), dict):
                continue
            handler = self.edu_handlers.get(edu.get("edu_type", ""))
            if handler is None:
                continue
            try:
                await handler(origin, edu["content"])
            except MatrixError as exc:
                logger.info("Ignoring a %s EDU from %s: %s", edu.get("edu_type"), origin,
                            exc.message)
            except Exception:  # EDUs are best effort: never fail the transaction
                logger.exception("A %s EDU from %s failed unexpectedly", edu.get("edu_type"),
                                 origin)


def _validate(origin: str, body: Any) -> tuple[list[Any], list[Any]]:
    if not isinstance(body, dict):
        raise MatrixError(Errcode.BAD_JSON, "A transaction is a JSON object")
    pdus = body.get("pdus", [])
    edus = body.get("edus", [])
    if not isinstance(pdus, list) or not isinstance(edus, list):
        raise MatrixError(Errcode.BAD_JSON, "pdus and edus must be lists")
    if len(pdus) > MAX_PDUS or len(edus) > MAX_EDUS:
        raise MatrixError(Errcode.BAD_JSON, f"At most {MAX_PDUS} PDUs and {MAX_EDUS} EDUs")
    if body.get("origin", origin) != origin:
        raise MatrixError(Errcode.FORBIDDEN, "The transaction's origin is not the sender", 403)
    return pdus, edus
