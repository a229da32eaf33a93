"""Room aliases: resolving, creating and deleting them (client-server API "Room aliases").

Only aliases on this server's domain are created or deleted here. Resolving an alias of another
server goes through the same remote resolver that joins by alias use
(:meth:`rocketnode.services.membership.RemoteMembership.resolve_alias`, provided by the
federation layer; without federation such aliases are not found).

Who may do what:

- create: a member of the room (a server admin need not be one);
- delete: the alias's creator, a server admin, or a member whose power level allows sending
  ``m.room.canonical_alias`` (a room moderator). If the room's canonical alias event names the
  alias, it is updated as the spec recommends; when the user may not send that event the alias
  is still deleted;
- list a room's local aliases: its members, anyone if its history is ``world_readable``.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.core.ids import RoomAlias, RoomId
from rocketnode.core.power_levels import (
    CREATE_KEY,
    POWER_LEVELS_KEY,
    required_power_level,
    user_power_level,
)
from rocketnode.services.rooms import RoomService
from rocketnode.storage.ports import RoomStore, StateStore

logger = logging.getLogger(__name__)

CANONICAL_ALIAS = "m.room.canonical_alias"
HISTORY_VISIBILITY_KEY = ("m.room.history_visibility", "")


class AliasResolver(Protocol):
    async def resolve_alias(self, alias: str) -> tuple[str, list[str]]:
        """``(room_id, servers)`` for an alias on another server, or ``M_NOT_FOUND``."""
        ...


async def may_moderate(rooms: RoomService, room_id: str, user_id: str) -> bool:
    """Whether ``user_id`` is joined to the room with the power to send its canonical alias."""
    if await rooms.membership(room_id, user_id) != "join":
        return False
    state = await rooms.current_state_pdus(room_id, [CREATE_KEY, POWER_LEVELS_KEY])
    needed = required_power_level(CANONICAL_ALIAS, True, state)
    return user_power_level(user_id, state) >= needed


class DirectoryService:
    def __init__(
        self, rooms: RoomService, room_store: RoomStore, state: StateStore,
        remote: AliasResolver,
    ) -> None:
        self._rooms = rooms
        self._room_store = room_store
        self._state = state
        self._remote = remote

    def _local_alias(self, alias: str) -> str:
        parsed = RoomAlias.parse(alias)
        if parsed.server_name != self._rooms.server_name:
            raise MatrixError(Errcode.INVALID_PARAM, "Room alias must be on this server")
        return str(parsed)

    async def resolve(self, alias: str) -> tuple[str, list[str]]:
        """``(room_id, servers)`` for any alias; servers that can be joined through first."""
        parsed = RoomAlias.parse(alias)
        if parsed.server_name != self._rooms.server_name:
            return await self._remote.resolve_alias(str(parsed))
        found = await self._room_store.get_alias(str(parsed))
        if found is None:
            raise MatrixError(Errcode.NOT_FOUND, f"Room alias {parsed} not found", 404)
        room_id = found[0]
        joined = await self._rooms.joined_servers(room_id)
        ours = self._rooms.server_name
        others = sorted(server for server in joined if server != ours)
        return room_id, ([ours, *others] if ours in joined or not others else others)

    async def create(self, user_id: str, is_admin: bool, alias: str, room_id: str) -> None:
        alias = self._local_alias(alias)
        room_id = str(RoomId.parse(room_id))
        if await self._rooms.states.snapshot(room_id) is None:
            raise MatrixError(Errcode.NOT_FOUND, f"Unknown room {room_id}", 404)
        if not is_admin and await self._rooms.membership(room_id, user_id) != "join":
            raise MatrixError(
                Errcode.FORBIDDEN, "You must be in the room to create an alias for it", 403
            )
        if not await self._room_store.create_alias(alias, room_id, user_id):
            raise MatrixError(Errcode.UNKNOWN, f"Room alias {alias} already exists", 409)

    async def delete(self, user_id: str, is_admin: bool, alias: str) -> None:
        alias = self._local_alias(alias)
        found = await self._room_store.get_alias(alias)
        if found is None:
            raise MatrixError(Errcode.NOT_FOUND, f"Room alias {alias} not found", 404)
        room_id, creator = found
        allowed = is_admin or creator == user_id or await self._may_moderate(room_id, user_id)
        if not allowed:
            raise MatrixError(
                Errcode.FORBIDDEN, "You may not delete this alias", 403
            )
        if not await self._room_store.delete_alias(alias):
            raise MatrixError(Errcode.NOT_FOUND, f"Room alias {alias} not found", 404)
        await self._drop_from_canonical_alias(room_id, user_id, alias)

    async def _may_moderate(self, room_id: str, user_id: str) -> bool:
        try:
            return await may_moderate(self._rooms, room_id, user_id)
        except MatrixError:  # the server no longer knows the room's state
            return False

    async def _drop_from_canonical_alias(self, room_id: str, user_id: str, alias: str) -> None:
        key = (CANONICAL_ALIAS, "")
        try:
            event = (await self._rooms.current_state_pdus(room_id, [key])).get(key)
            if event is None:
                return
            content = _without_alias(event.content, alias)
            if content != event.content:
                await self._rooms.send(room_id, user_id, CANONICAL_ALIAS, content, "")
        except MatrixError as exc:
            logger.info("Canonical alias of %s not updated after deleting %s: %s",
                        room_id, alias, exc.message)

    async def local_aliases(self, user_id: str, is_admin: bool, room_id: str) -> list[str]:
        """The aliases this server holds for a room (members only, unless world readable)."""
        room_id = str(RoomId.parse(room_id))
        if not is_admin and not await self._may_see_aliases(room_id, user_id):
            raise MatrixError(Errcode.FORBIDDEN, "You are not a member of the room", 403)
        return await self._room_store.aliases_for_room(room_id)

    async def _may_see_aliases(self, room_id: str, user_id: str) -> bool:
        if await self._rooms.membership(room_id, user_id) == "join":
            return True
        if await self._rooms.states.snapshot(room_id) is None:
            return False
        event = (await self._rooms.current_state_pdus(room_id, [HISTORY_VISIBILITY_KEY])).get(
            HISTORY_VISIBILITY_KEY
        )
        return event is not None and event.content.get("history_visibility") == "world_readable"


def _without_alias(content: dict[str, Any], alias: str) -> dict[str, Any]:
    """Canonical alias content with ``alias`` removed from ``alias`` and ``alt_aliases``."""
    result = dict(content)
    if result.get("alias") == alias:
        del result["alias"]
    alt = result.get("alt_aliases")
    if isinstance(alt, list) and alias in alt:
        result["alt_aliases"] = [other for other in alt if other != alias]
    return result
