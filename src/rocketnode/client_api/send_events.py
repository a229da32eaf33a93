"""Sending events: messages, state and redactions (client-server API "Sending events to a
room", "Redactions")."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from rocketnode.client_api.auth import Authenticator, Requester
from rocketnode.client_api.paths import client_route
from rocketnode.client_api.request import json_response, optional_str, read_json_object
from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.core.ids import EventId
from rocketnode.services.ratelimit import RateLimiter
from rocketnode.services.rooms import RoomService, Txn

_FORBIDDEN_STATE_TYPES = frozenset({"m.room.create"})


class SendEventsApi:
    def __init__(self, auth: Authenticator, rooms: RoomService, limiter: RateLimiter) -> None:
        self._auth = auth
        self._rooms = rooms
        self._limiter = limiter

    def routes(self) -> list[web.RouteDef]:
        return [
            *client_route("PUT", "/rooms/{room_id}/send/{event_type}/{txn_id}", self.send_message),
            *client_route("PUT", "/rooms/{room_id}/state/{event_type}", self.set_room_state),
            # an empty state key may come with the trailing slash (spec: "the trailing slash
            # on this endpoint is optional"), as matrix-nio sends it
            *client_route("PUT", "/rooms/{room_id}/state/{event_type}/{state_key:.*}",
                          self.set_room_state),
            *client_route("PUT", "/rooms/{room_id}/redact/{event_id}/{txn_id}", self.redact_event),
        ]

    async def _requester(self, request: web.Request) -> Requester:
        requester = await self._auth.user(request)
        self._limiter.check(requester.user_id)
        return requester

    async def send_message(self, request: web.Request) -> web.Response:
        """PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}."""
        requester = await self._requester(request)
        content = await read_json_object(request, allow_empty=True)
        event_type = request.match_info["event_type"]
        txn = Txn(requester.user_id, requester.device_id, request.match_info["txn_id"])
        pdu = await self._rooms.send(
            request.match_info["room_id"], requester.user_id, event_type, content, txn=txn
        )
        return json_response({"event_id": pdu.event_id})

    async def set_room_state(self, request: web.Request) -> web.Response:
        """PUT /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}."""
        requester = await self._requester(request)
        content = await read_json_object(request, allow_empty=True)
        event_type = request.match_info["event_type"]
        if event_type in _FORBIDDEN_STATE_TYPES:
            raise MatrixError(Errcode.FORBIDDEN, f"Cannot send {event_type} this way", 403)
        state_key = request.match_info.get("state_key", "")
        pdu = await self._rooms.send(
            request.match_info["room_id"], requester.user_id, event_type, content, state_key
        )
        return json_response({"event_id": pdu.event_id})

    async def redact_event(self, request: web.Request) -> web.Response:
        """PUT /_matrix/client/v3/rooms/{roomId}/redact/{eventId}/{txnId}."""
        requester = await self._requester(request)
        body = await read_json_object(request, allow_empty=True)
        room_id = request.match_info["room_id"]
        target = str(EventId.parse(request.match_info["event_id"]))
        await self._rooms.check_may_redact(room_id, requester.user_id, target)
        content: dict[str, Any] = {}
        reason = optional_str(body, "reason")
        if reason is not None:
            content["reason"] = reason
        snapshot = await self._rooms.states.snapshot(room_id)
        extra: dict[str, Any] = {}
        if snapshot is not None and snapshot.room_version.updated_redaction_rules:
            content["redacts"] = target
        else:
            extra["redacts"] = target
        txn = Txn(requester.user_id, requester.device_id, request.match_info["txn_id"])
        pdu = await self._rooms.send(
            room_id, requester.user_id, "m.room.redaction", content, txn=txn, extra=extra
        )
        return json_response({"event_id": pdu.event_id})
