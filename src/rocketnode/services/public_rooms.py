"""The published room directory: a room's visibility in it, and listing it (client-server API
"Published room directory").

Listing orders rooms by joined members, largest first (then by room ID, so the order is total).
Pagination tokens are keyset tokens, ``n`` (rooms after) or ``p`` (rooms before) followed by
``<joined members>:<room ID>`` of the boundary room: a room gaining members between two requests
does not shift every later page. Rooms nobody is joined to any more are left out.

Changing a room's visibility needs a server admin or a room moderator (see
:func:`rocketnode.services.directory.may_moderate`). The directory of another server comes from a
:class:`RemotePublicRooms` that the federation layer provides.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.core.ids import RoomId
from rocketnode.services.directory import may_moderate
from rocketnode.services.rooms import RoomService
from rocketnode.storage.ports import RoomStore, StateStore

VISIBILITIES = ("public", "private")
SUMMARY_TYPES = (
    "m.room.create", "m.room.name", "m.room.topic", "m.room.canonical_alias", "m.room.avatar",
    "m.room.join_rules", "m.room.history_visibility", "m.room.guest_access",
)

SortKey = tuple[int, str]


@dataclass(frozen=True, slots=True)
class PublicRoomsQuery:
    limit: int | None = None
    since: str | None = None
    search_term: str | None = None
    room_types: tuple[str | None, ...] | None = None
    """Only rooms of these types (``None`` for rooms without one); all rooms if not given."""
    third_party_instance_id: str | None = None


class RemotePublicRooms(Protocol):
    async def public_rooms(self, server_name: str, query: PublicRoomsQuery) -> dict[str, Any]:
        """Another server's published room directory, in the client response format."""
        ...


class NoRemotePublicRooms:
    """The :class:`RemotePublicRooms` of a node without federation."""

    async def public_rooms(self, server_name: str, query: PublicRoomsQuery) -> dict[str, Any]:
        raise MatrixError(Errcode.NOT_FOUND, f"The room directory of {server_name} is "
                          "not reachable: federation is not enabled", 404)


class PublicRoomsService:
    def __init__(
        self, rooms: RoomService, room_store: RoomStore, state: StateStore,
        remote: RemotePublicRooms,
    ) -> None:
        self._rooms = rooms
        self._room_store = room_store
        self._state = state
        self._remote = remote

    async def visibility(self, room_id: str) -> str:
        room = await self._room_store.get_room(str(RoomId.parse(room_id)))
        if room is None:
            raise MatrixError(Errcode.NOT_FOUND, "Room not found", 404)
        return "public" if room.is_public else "private"

    async def set_visibility(
        self, user_id: str, is_admin: bool, room_id: str, visibility: str
    ) -> None:
        room_id = str(RoomId.parse(room_id))
        if visibility not in VISIBILITIES:
            raise MatrixError(Errcode.BAD_JSON, "visibility must be 'public' or 'private'")
        if await self._rooms.states.snapshot(room_id) is None:
            raise MatrixError(Errcode.NOT_FOUND, "Room not found", 404)
        if not is_admin and not await may_moderate(self._rooms, room_id, user_id):
            raise MatrixError(
                Errcode.FORBIDDEN, "You may not change this room's visibility", 403
            )
        await self._room_store.set_public(room_id, visibility == "public")

    async def list_rooms(
        self, server_name: str | None, query: PublicRoomsQuery
    ) -> dict[str, Any]:
        """One page of a server's published rooms (this server's if ``server_name`` is None)."""
        if server_name is not None and server_name != self._rooms.server_name:
            return await self._remote.public_rooms(server_name, query)
        if query.third_party_instance_id is not None:
            entries: list[dict[str, Any]] = []  # no bridged networks here
        else:
            entries = [e for e in await self._entries() if _matches(e, query)]
        entries.sort(key=_sort_key)
        return paginate(entries, query.limit, query.since)

    async def _entries(self) -> list[dict[str, Any]]:
        entries = []
        for room_id in await self._room_store.public_room_ids():
            joined = len(await self._state.get_members(room_id, "join"))
            if joined == 0:
                continue
            try:
                pdus = await self._rooms.current_state_pdus(
                    room_id, [(event_type, "") for event_type in SUMMARY_TYPES]
                )
            except MatrixError:  # state no longer known
                continue
            contents = {key[0]: pdu.content for key, pdu in pdus.items()}
            entries.append(chunk_entry(room_id, contents, joined))
        return entries


def _string(content: Mapping[str, Any] | None, key: str) -> str | None:
    value = (content or {}).get(key)
    return value if isinstance(value, str) and value else None


def _plain_topic(content: Mapping[str, Any] | None) -> str | None:
    """The ``text/plain`` topic: from ``m.topic`` if it has one, else ``topic``."""
    block = (content or {}).get("m.topic")
    texts = block.get("m.text") if isinstance(block, dict) else None
    for text in texts if isinstance(texts, list) else []:
        if isinstance(text, dict) and text.get("mimetype", "text/plain") == "text/plain":
            body = text.get("body")
            if isinstance(body, str) and body:
                return body
    return _string(content, "topic")


def chunk_entry(
    room_id: str, contents: Mapping[str, Mapping[str, Any]], joined: int
) -> dict[str, Any]:
    """A ``PublishedRoomsChunk`` from the content of the room's summary state events."""
    entry: dict[str, Any] = {
        "room_id": room_id,
        "num_joined_members": joined,
        "world_readable": _string(contents.get("m.room.history_visibility"),
                                  "history_visibility") == "world_readable",
        "guest_can_join": _string(contents.get("m.room.guest_access"),
                                  "guest_access") == "can_join",
    }
    optional = {
        "name": _string(contents.get("m.room.name"), "name"),
        "topic": _plain_topic(contents.get("m.room.topic")),
        "canonical_alias": _string(contents.get("m.room.canonical_alias"), "alias"),
        "avatar_url": _string(contents.get("m.room.avatar"), "url"),
        "join_rule": _string(contents.get("m.room.join_rules"), "join_rule"),
        "room_type": _string(contents.get("m.room.create"), "type"),
    }
    entry.update({key: value for key, value in optional.items() if value is not None})
    return entry


def _matches(entry: Mapping[str, Any], query: PublicRoomsQuery) -> bool:
    if query.room_types and entry.get("room_type") not in query.room_types:
        return False
    term = (query.search_term or "").strip().casefold()
    if not term:
        return True
    fields = (entry.get("name"), entry.get("topic"), entry.get("canonical_alias"))
    return any(term in value.casefold() for value in fields if isinstance(value, str))


# -- pagination ------------------------------------------------------------------------------


def _sort_key(entry: Mapping[str, Any]) -> SortKey:
    return (-int(entry["num_joined_members"]), str(entry["room_id"]))


def _token(direction: str, key: SortKey) -> str:
    return f"{direction}{-key[0]}:{key[1]}"


def _parse_token(token: str) -> tuple[str, SortKey]:
    direction, rest = token[:1], token[1:]
    count, sep, room_id = rest.partition(":")
    if direction not in ("n", "p") or not sep or not count.isdigit() or \
            not room_id.startswith("!"):
        raise MatrixError(Errcode.INVALID_PARAM, "Invalid pagination token 'since'")
    return direction, (-int(count), room_id)


def paginate(
    entries: Sequence[dict[str, Any]], limit: int | None, since: str | None
) -> dict[str, Any]:
    """The page of sorted ``entries`` that ``since`` and ``limit`` select, with its tokens."""
    keys = [_sort_key(entry) for entry in entries]
    size = len(entries) if limit is None else limit
    start, end = 0, min(size, len(entries))
    if since:
        direction, boundary = _parse_token(since)
        if direction == "n":
            start = bisect.bisect_right(keys, boundary)
            end = min(start + size, len(entries))
        else:
            end = bisect.bisect_left(keys, boundary)
            start = max(0, end - size)
    result: dict[str, Any] = {
        "chunk": list(entries[start:end]),
        "total_room_count_estimate": len(entries),
    }
    if start < end and end < len(entries):
        result["next_batch"] = _token("n", keys[end - 1])
    if start < end and start > 0:
        result["prev_batch"] = _token("p", keys[start])
    return result
