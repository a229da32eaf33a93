"""Reading rooms: events, state, members and timelines (client-server API "Getting events for
a room", and the "Event Context" module)."""

from __future__ import annotations

from aiohttp import web

from rocketnode.client_api.auth import Authenticator
from rocketnode.client_api.paths import client_route
from rocketnode.client_api.request import json_response, query_int
from rocketnode.core.canonical_json import decode_lenient
from rocketnode.core.errors import CanonicalJsonError, Errcode, MatrixError
from rocketnode.core.ids import EventId, RoomId
from rocketnode.services.filters import EventFilter
from rocketnode.services.room_access import Reader
from rocketnode.services.room_messages import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MessagesQuery,
    RoomMessages,
)
from rocketnode.services.room_reads import MEMBERSHIPS, MemberFilter, RoomReads
from rocketnode.services.stream_tokens import PaginationToken, parse_pagination_token


def _room_id(request: web.Request) -> str:
    return str(RoomId.parse(request.match_info["room_id"]))


def _event_id(request: web.Request) -> str:
    return str(EventId.parse(request.match_info["event_id"]))


def _choice(request: web.Request, name: str, allowed: frozenset[str]) -> str | None:
    value = request.query.get(name)
    if value is not None and value not in allowed:
        raise MatrixError(Errcode.INVALID_PARAM, f"'{name}' must be one of {sorted(allowed)}")
    return value


def _token(request: web.Request, name: str) -> PaginationToken | None:
    value = request.query.get(name)
    return parse_pagination_token(value) if value else None


def _event_filter(request: web.Request) -> EventFilter:
    """The ``filter`` query parameter: a JSON ``RoomEventFilter``."""
    raw = request.query.get("filter")
    if raw is None or raw == "":
        return EventFilter()
    try:
        value = decode_lenient(raw)
    except CanonicalJsonError as exc:
        raise MatrixError(Errcode.BAD_JSON, "'filter' must be a JSON RoomEventFilter") from exc
    return EventFilter.parse(value)


class RoomReadsApi:
    def __init__(self, auth: Authenticator, reads: RoomReads, messages: RoomMessages) -> None:
        self._auth = auth
        self._reads = reads
        self._messages = messages

    def routes(self) -> list[web.RouteDef]:
        return [
            *client_route("GET", "/rooms/{room_id}/event/{event_id}", self.get_one_room_event),
            *client_route("GET", "/rooms/{room_id}/state", self.get_room_state),
            *client_route("GET", "/rooms/{room_id}/state/{event_type}",
                          self.get_room_state_with_key),
            *client_route("GET", "/rooms/{room_id}/state/{event_type}/{state_key:.*}",
                          self.get_room_state_with_key),
            *client_route("GET", "/rooms/{room_id}/members", self.get_members_by_room),
            *client_route("GET", "/rooms/{room_id}/joined_members",
                          self.get_joined_members_by_room),
            *client_route("GET", "/rooms/{room_id}/messages", self.get_room_events),
            *client_route("GET", "/rooms/{room_id}/context/{event_id}", self.get_event_context),
        ]

    async def _reader(self, request: web.Request) -> Reader:
        requester = await self._auth.user(request)
        return Reader(requester.user_id, requester.device_id)

    async def get_one_room_event(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/v3/rooms/{roomId}/event/{eventId} — "Getting events for a room"."""
        reader = await self._reader(request)
        return json_response(
            await self._reads.event(reader, _room_id(request), _event_id(request))
        )

    async def get_room_state(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/v3/rooms/{roomId}/state — "Getting events for a room"."""
        reader = await self._reader(request)
        return json_response(await self._reads.state(reader, _room_id(request)))

    async def get_room_state_with_key(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey} — "Getting events
        for a room"; ``?format=event`` returns the whole event instead of its content."""
        reader = await self._reader(request)
        response_format = _choice(request, "format", frozenset({"content", "event"}))
        event = await self._reads.state_event(
            reader, _room_id(request), request.match_info["event_type"],
            request.match_info.get("state_key", ""),
        )
        return json_response(event if response_format == "event" else event["content"])

    async def get_members_by_room(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/v3/rooms/{roomId}/members — "Getting events for a room"."""
        reader = await self._reader(request)
        chunk = await self._reads.members(
            reader, _room_id(request),
            at=_token(request, "at"),
            member_filter=MemberFilter(
                _choice(request, "membership", MEMBERSHIPS),
                _choice(request, "not_membership", MEMBERSHIPS),
            ),
        )
        return json_response({"chunk": chunk})

    async def get_joined_members_by_room(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/v3/rooms/{roomId}/joined_members — "Getting events for a
        room"."""
        reader = await self._reader(request)
        joined = await self._reads.joined_members(reader.user_id, _room_id(request))
        return json_response({"joined": joined})

    async def get_room_events(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/v3/rooms/{roomId}/messages — "Getting events for a room"."""
        reader = await self._reader(request)
        direction = _choice(request, "dir", frozenset({"b", "f"})) or "b"
        from_text = request.query.get("from") or None
        query = MessagesQuery(
            from_token=parse_pagination_token(from_text) if from_text else None,
            to_token=_token(request, "to"),
            backwards=direction == "b",
            limit=query_int(request, "limit", DEFAULT_LIMIT, minimum=0, maximum=MAX_LIMIT),
            event_filter=_event_filter(request),
            from_text=from_text,
        )
        return json_response(await self._messages.messages(reader, _room_id(request), query))

    async def get_event_context(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/v3/rooms/{roomId}/context/{eventId} — "Event context"."""
        reader = await self._reader(request)
        limit = query_int(request, "limit", DEFAULT_LIMIT, minimum=0, maximum=MAX_LIMIT)
        return json_response(
            await self._messages.context(
                reader, _room_id(request), _event_id(request), limit, _event_filter(request)
            )
        )
