"""Presence (client-server API "Presence": ``/presence/{userId}/status``).

What the node does while presence is disabled (the default) is described in
:mod:`rocketnode.services.presence`: it answers, says ``offline``, and keeps nothing.
"""

from __future__ import annotations

from aiohttp import web

from rocketnode.client_api.auth import Authenticator
from rocketnode.client_api.paths import client_route
from rocketnode.client_api.request import field, json_response, read_json_object
from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.services.presence import PresenceService
from rocketnode.services.ratelimit import RateLimiter


class PresenceApi:
    def __init__(
        self, auth: Authenticator, presence: PresenceService, limiter: RateLimiter
    ) -> None:
        self._auth = auth
        self._presence = presence
        self._limiter = limiter

    def routes(self) -> list[web.RouteDef]:
        return [
            *client_route("GET", "/presence/{user_id}/status", self.get_presence),
            *client_route("PUT", "/presence/{user_id}/status", self.set_presence),
        ]

    async def get_presence(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/v3/presence/{userId}/status — "Presence"."""
        requester = await self._auth.user(request)
        return json_response(
            await self._presence.get(requester.user_id, request.match_info["user_id"])
        )

    async def set_presence(self, request: web.Request) -> web.Response:
        """PUT /_matrix/client/v3/presence/{userId}/status — "Presence"."""
        requester = await self._auth.user(request)
        self._limiter.check(requester.user_id)
        body = await read_json_object(request)
        presence = field(body, "presence", str)
        status_msg = body.get("status_msg")
        if status_msg is not None and not isinstance(status_msg, str):
            raise MatrixError(Errcode.BAD_JSON, "'status_msg' must be a string")
        await self._presence.set(
            requester.user_id, request.match_info["user_id"], presence, status_msg
        )
        return json_response({})
