"""Typing notifications and receipts between servers (server-server API "Typing
Notifications", "Receipts"): local changes go out as EDUs to every other server in the room;
EDUs that come in are checked (the user must belong to the sending server and be joined) and
handed to the typing and receipt services."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.core.ids import server_name_of
from rocketnode.federation.sender import FederationSender
from rocketnode.services.receipts import LocalReceipt, ReceiptService
from rocketnode.services.typing import TypingChange, TypingService
from rocketnode.storage.ports import StateStore

logger = logging.getLogger(__name__)

MAX_RECEIPT_EVENT_IDS = 10


class EduRelay:
    def __init__(self, server_name: str, sender: FederationSender, state: StateStore,
                 typing: TypingService, receipts: ReceiptService,
                 joined_servers: Callable[[str], Awaitable[set[str]]]) -> None:
        self._joined_servers = joined_servers
        self._server_name = server_name
        self._sender = sender
        self._state = state
        self._typing = typing
        self._receipts = receipts
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Subscribe to local typing and receipt changes (called by ``app.py``)."""
        self._typing.subscribe(self._on_typing)
        self._receipts.subscribe(self._on_receipt)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- outbound ----------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_typing(self, change: TypingChange) -> None:
        content = {"room_id": change.room_id, "user_id": change.user_id,
                   "typing": change.typing}
        self._spawn(self._fan_out(change.room_id, "m.typing", content))

    def _on_receipt(self, receipt: LocalReceipt) -> None:
        content = {receipt.room_id: {receipt.receipt_type: {receipt.user_id: {
            "event_ids": [receipt.event_id], "data": receipt.data}}}}
        self._spawn(self._fan_out(receipt.room_id, "m.receipt", content))

    async def _fan_out(self, room_id: str, edu_type: str, content: dict[str, Any]) -> None:
        try:
            servers = await self._joined_servers(room_id)
        except Exception:
            logger.exception("Could not find the servers of %s", room_id)
            return
        for server in sorted(servers - {self._server_name}):
            self._sender.send_edu(server, edu_type, content)

    # -- inbound -----------------------------------------------------------------------------

    async def _joined(self, origin: str, user_id: object, room_id: object) -> bool:
        if not isinstance(user_id, str) or not isinstance(room_id, str):
            raise MatrixError(Errcode.BAD_JSON, "user_id and room_id must be strings")
        if server_name_of(user_id) != origin:
            raise MatrixError(Errcode.FORBIDDEN, f"{user_id} does not belong to {origin}", 403)
        memberships = await self._state.get_memberships(user_id, [room_id])
        return memberships.get(room_id) == "join"

    async def on_typing_edu(self, origin: str, content: dict[str, Any]) -> None:
        user_id, room_id, typing = content.get("user_id"), content.get("room_id"), \
            content.get("typing")
        if not isinstance(typing, bool):
            raise MatrixError(Errcode.BAD_JSON, "typing must be a boolean")
        if not await self._joined(origin, user_id, room_id):
            return
        assert isinstance(room_id, str) and isinstance(user_id, str)
        self._typing.set_typing(room_id, user_id, typing, 30_000, remote=True)

    async def on_receipt_edu(self, origin: str, content: dict[str, Any]) -> None:
        for room_id, by_type in content.items():
            if not isinstance(by_type, dict):
                continue
            for receipt_type, by_user in by_type.items():
                if not isinstance(by_user, dict):
                    continue
                for user_id, receipt in by_user.items():
                    await self._one_receipt(origin, room_id, receipt_type, user_id, receipt)

    async def _one_receipt(self, origin: str, room_id: str, receipt_type: str, user_id: str,
                           receipt: object) -> None:
        if not isinstance(receipt, dict) or not await self._joined(origin, user_id, room_id):
            return
        event_ids, data = receipt.get("event_ids"), receipt.get("data", {})
        if not isinstance(event_ids, list) or not event_ids or not isinstance(data, dict):
            return
        for event_id in event_ids[:MAX_RECEIPT_EVENT_IDS]:
            if isinstance(event_id, str):
                await self._receipts.receive_remote(room_id, receipt_type, user_id, event_id,
                                                    data)
