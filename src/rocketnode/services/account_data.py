"""Account data, global and per room (client-server API "Client Config").

Every write takes the next position of the shared stream (so /sync picks it up) and wakes the
user's waiting syncs. Types the server manages (``m.fully_read``, ``m.push_rules``) cannot be set
through the client API: read markers go through :mod:`rocketnode.services.receipts`.
"""

from __future__ import annotations

from typing import Any

from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.core.ids import RoomId
from rocketnode.services.notifier import Notifier
from rocketnode.storage.ports import ClientDataStore

SERVER_MANAGED_TYPES = frozenset({"m.fully_read", "m.push_rules"})
MAX_TYPE_LENGTH = 255
GLOBAL = ""
"""The ``room_id`` under which global account data is stored."""


def _check_type(data_type: str) -> None:
    if not data_type or len(data_type.encode("utf-8")) > MAX_TYPE_LENGTH:
        raise MatrixError(Errcode.INVALID_PARAM, "Invalid account data type")


def _check_room_id(room_id: str) -> None:
    try:
        RoomId.parse(room_id)
    except MatrixError as exc:
        raise MatrixError(Errcode.INVALID_PARAM, f"{room_id} is not a valid room ID") from exc


class AccountDataService:
    def __init__(self, store: ClientDataStore, notifier: Notifier) -> None:
        self._store = store
        self._notifier = notifier

    async def set_global(self, user_id: str, data_type: str, content: dict[str, Any]) -> None:
        self._check_client_settable(data_type)
        await self._put(user_id, GLOBAL, data_type, content)

    async def set_room(
        self, user_id: str, room_id: str, data_type: str, content: dict[str, Any]
    ) -> None:
        _check_room_id(room_id)
        self._check_client_settable(data_type)
        await self._put(user_id, room_id, data_type, content)

    async def set_server_managed(
        self, user_id: str, room_id: str, data_type: str, content: dict[str, Any]
    ) -> None:
        """Write a type the server manages (``m.fully_read`` from the read markers API)."""
        await self._put(user_id, room_id, data_type, content)

    async def get_global(self, user_id: str, data_type: str) -> dict[str, Any]:
        _check_type(data_type)
        found = await self._store.get_account_data(user_id, GLOBAL, data_type)
        if found is None:
            raise MatrixError(Errcode.NOT_FOUND, "Account data not found", 404)
        return found

    async def get_room(self, user_id: str, room_id: str, data_type: str) -> dict[str, Any]:
        _check_room_id(room_id)
        _check_type(data_type)
        found = await self._store.get_account_data(user_id, room_id, data_type)
        if found is None:
            raise MatrixError(Errcode.NOT_FOUND, "Room account data not found", 404)
        return found

    @staticmethod
    def _check_client_settable(data_type: str) -> None:
        _check_type(data_type)
        if data_type in SERVER_MANAGED_TYPES:
            raise MatrixError(
                Errcode.BAD_JSON, f"Cannot set {data_type} through this API", 405
            )

    async def _put(
        self, user_id: str, room_id: str, data_type: str, content: dict[str, Any]
    ) -> None:
        position = await self._store.put_account_data(user_id, room_id, data_type, content)
        self._notifier.notify(position, user_ids=[user_id])
