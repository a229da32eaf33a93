"""Receipts and read markers (client-server API "Receipts", "Read and unread markers").

A receipt is stored per ``(room, receipt type, user, thread)`` (replacing the previous one) at
the next position of the shared stream, and wakes the syncs watching the room. ``m.read.private``
is stored like any receipt; /sync shows it only to its owner. The fully read marker is the room
account data ``m.fully_read``.

Federation hooks: :meth:`ReceiptService.subscribe` hands every new local ``m.read`` receipt to
the outbound EDU sender; :meth:`ReceiptService.receive_remote` stores a remote server's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.services.account_data import AccountDataService
from rocketnode.services.clock import Clock
from rocketnode.services.notifier import Notifier
from rocketnode.storage.ports import ClientDataStore, EventStore, RoomStore

logger = logging.getLogger(__name__)

READ = "m.read"
READ_PRIVATE = "m.read.private"
FULLY_READ = "m.fully_read"
RECEIPT_TYPES = frozenset({READ, READ_PRIVATE})
PUBLIC_RECEIPT_TYPES = frozenset({READ})
UNTHREADED = ""
"""The ``thread_id`` under which an unthreaded receipt is stored."""


@dataclass(frozen=True, slots=True)
class LocalReceipt:
    """A local user's public receipt (for federation)."""

    room_id: str
    receipt_type: str
    user_id: str
    event_id: str
    data: dict[str, Any]


ReceiptListener = Callable[[LocalReceipt], None]


def check_thread_id(thread_id: object) -> str:
    """The stored form of a request's ``thread_id`` (``M_INVALID_PARAM`` if malformed)."""
    if thread_id is None:
        return UNTHREADED
    if not isinstance(thread_id, str) or not thread_id:
        raise MatrixError(Errcode.INVALID_PARAM, "thread_id field must be a non-empty string")
    if thread_id != "main" and not thread_id.startswith("$"):
        raise MatrixError(Errcode.INVALID_PARAM, "thread_id must be 'main' or an event ID")
    return thread_id


class ReceiptService:
    def __init__(
        self, store: ClientDataStore, events: EventStore, rooms: RoomStore,
        account_data: AccountDataService, clock: Clock, notifier: Notifier,
    ) -> None:
        self._store = store
        self._events = events
        self._rooms = rooms
        self._account_data = account_data
        self._clock = clock
        self._notifier = notifier
        self._listeners: list[ReceiptListener] = []

    def subscribe(self, listener: ReceiptListener) -> None:
        self._listeners.append(listener)

    async def send_receipt(
        self, user_id: str, room_id: str, receipt_type: str, event_id: str,
        thread_id: str = UNTHREADED,
    ) -> None:
        """POST /receipt: ``m.read``, ``m.read.private`` or (unthreaded) ``m.fully_read``."""
        if receipt_type == FULLY_READ:
            if thread_id != UNTHREADED:
                raise MatrixError(Errcode.INVALID_PARAM, "m.fully_read cannot have a thread_id")
            await self.set_read_markers(user_id, room_id, fully_read=event_id)
            return
        if receipt_type not in RECEIPT_TYPES:
            raise MatrixError(Errcode.INVALID_PARAM, f"Unknown receipt type {receipt_type}")
        await self._check_joined_and_event(user_id, room_id, event_id)
        await self._store_local(user_id, room_id, receipt_type, event_id, thread_id)

    async def set_read_markers(
        self, user_id: str, room_id: str, fully_read: str | None = None,
        read: str | None = None, read_private: str | None = None,
    ) -> None:
        """POST /read_markers: the fully read marker and, optionally, read receipts."""
        for event_id in {e for e in (fully_read, read, read_private) if e is not None}:
            await self._check_joined_and_event(user_id, room_id, event_id)
        if fully_read is not None:
            await self._account_data.set_server_managed(
                user_id, room_id, FULLY_READ, {"event_id": fully_read}
            )
        if read is not None:
            await self._store_local(user_id, room_id, READ, read, UNTHREADED)
        if read_private is not None:
            await self._store_local(user_id, room_id, READ_PRIVATE, read_private, UNTHREADED)

    async def receive_remote(
        self, room_id: str, receipt_type: str, user_id: str, event_id: str,
        data: dict[str, Any],
    ) -> None:
        """A receipt from another server's ``m.receipt`` EDU (already checked by federation)."""
        if receipt_type not in PUBLIC_RECEIPT_TYPES:
            return
        thread_id = data.get("thread_id")
        stored_thread = thread_id if isinstance(thread_id, str) and thread_id else UNTHREADED
        await self._put(room_id, receipt_type, user_id, stored_thread, event_id, data)

    async def _check_joined_and_event(self, user_id: str, room_id: str, event_id: str) -> None:
        membership = await self._rooms.local_membership(user_id, room_id)
        if membership is None or membership.membership != "join":
            raise MatrixError(Errcode.FORBIDDEN, "You are not joined to this room", 403)
        event = await self._events.get_event(event_id)
        if event is None or event.pdu.room_id != room_id or event.outlier:
            raise MatrixError(Errcode.NOT_FOUND, f"Unknown event {event_id} in this room", 404)

    async def _store_local(
        self, user_id: str, room_id: str, receipt_type: str, event_id: str, thread_id: str
    ) -> None:
        data: dict[str, Any] = {"ts": self._clock.now_ms()}
        if thread_id != UNTHREADED:
            data["thread_id"] = thread_id
        await self._put(room_id, receipt_type, user_id, thread_id, event_id, data)
        if receipt_type in PUBLIC_RECEIPT_TYPES:
            receipt = LocalReceipt(room_id, receipt_type, user_id, event_id, data)
            for listener in self._listeners:
                try:
                    listener(receipt)
                except Exception:
                    logger.exception("Receipt listener failed")

    async def _put(
        self, room_id: str, receipt_type: str, user_id: str, thread_id: str, event_id: str,
        data: dict[str, Any],
    ) -> None:
        position = await self._store.put_receipt(
            room_id, receipt_type, user_id, thread_id, event_id, data
        )
        self._notifier.notify(position, room_ids=[room_id], user_ids=[user_id])
