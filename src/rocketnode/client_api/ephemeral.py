"""Typing notifications, receipts and read markers (client-server API "Typing Notifications",
"Receipts", "Read and unread markers")."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from rocketnode.client_api.auth import Authenticator
from rocketnode.client_api.paths import client_route
from rocketnode.client_api.request import field, json_response, read_json_object
from rocketnode.client_api.sync import own_user
from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.core.ids import EventId, RoomId
from rocketnode.services.ratelimit import RateLimiter
from rocketnode.services.receipts import ReceiptService, check_thread_id
from rocketnode.services.typing import TypingService


def _room_id(request: web.Request) -> str:
    return str(RoomId.parse(request.match_info["room_id"]))


def _event_id(value: object, name: str) -> str:
    try:
        return str(EventId.parse(value))
    except MatrixError as exc:
        raise MatrixError(Errcode.INVALID_PARAM, f"'{name}' must be an event ID") from exc


def _optional_event_id(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    return None if value is None else _event_id(value, name)


class EphemeralApi:
    def __init__(
        self, auth: Authenticator, typing: TypingService, receipts: ReceiptService,
        limiter: RateLimiter,
    ) -> None:
        self._auth = auth
        self._typing = typing
        self._receipts = receipts
        self._limiter = limiter

    def routes(self) -> list[web.RouteDef]:
        return [
            *client_route("PUT", "/rooms/{room_id}/typing/{user_id}", self.set_typing),
            *client_route("POST", "/rooms/{room_id}/receipt/{receipt_type}/{event_id}",
                          self.post_receipt),
            *client_route("POST", "/rooms/{room_id}/read_markers", self.set_read_marker),
        ]

    async def set_typing(self, request: web.Request) -> web.Response:
        """PUT /_matrix/client/v3/rooms/{roomId}/typing/{userId} — "Typing Notifications"."""
        requester = await self._auth.user(request)
        own_user(requester, request.match_info["user_id"])
        self._limiter.check(requester.user_id)
        body = await read_json_object(request)
        typing = field(body, "typing", bool)
        timeout = field(body, "timeout", int, required=False)
        if timeout is not None and timeout < 0:
            raise MatrixError(Errcode.BAD_JSON, "'timeout' must not be negative")
        await self._typing.set_local_typing(requester.user_id, _room_id(request), typing, timeout)
        return json_response({})

    async def post_receipt(self, request: web.Request) -> web.Response:
        """POST /_matrix/client/v3/rooms/{roomId}/receipt/{receiptType}/{eventId} — "Receipts"."""
        requester = await self._auth.user(request)
        self._limiter.check(requester.user_id)
        body = await read_json_object(request, allow_empty=True)
        thread_id = check_thread_id(body.get("thread_id"))
        await self._receipts.send_receipt(
            requester.user_id, _room_id(request), request.match_info["receipt_type"],
            _event_id(request.match_info["event_id"], "eventId"), thread_id,
        )
        return json_response({})

    async def set_read_marker(self, request: web.Request) -> web.Response:
        """POST /_matrix/client/v3/rooms/{roomId}/read_markers — "Read and unread markers"."""
        requester = await self._auth.user(request)
        self._limiter.check(requester.user_id)
        body = await read_json_object(request)
        await self._receipts.set_read_markers(
            requester.user_id, _room_id(request),
            fully_read=_optional_event_id(body, "m.fully_read"),
            read=_optional_event_id(body, "m.read"),
            read_private=_optional_event_id(body, "m.read.private"),
        )
        return json_response({})
