"""Room aliases (client-server API "Room aliases": ``/directory/room/{roomAlias}`` and
``/rooms/{roomId}/aliases``)."""

from __future__ import annotations

from aiohttp import web

from rocketnode.client_api.auth import Authenticator
from rocketnode.client_api.paths import client_route
from rocketnode.client_api.request import field, json_response, read_json_object
from rocketnode.services.directory import DirectoryService
from rocketnode.services.ratelimit import RateLimiter


class DirectoryApi:
    def __init__(
        self, auth: Authenticator, directory: DirectoryService, limiter: RateLimiter
    ) -> None:
        self._auth = auth
        self._directory = directory
        self._limiter = limiter

    def routes(self) -> list[web.RouteDef]:
        return [
            *client_route("GET", "/directory/room/{room_alias}", self.get_room_id_by_alias),
            *client_route("PUT", "/directory/room/{room_alias}", self.set_room_alias),
            *client_route("DELETE", "/directory/room/{room_alias}", self.delete_room_alias),
            *client_route("GET", "/rooms/{room_id}/aliases", self.get_local_aliases),
        ]

    async def get_room_id_by_alias(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/v3/directory/room/{roomAlias} — "Room aliases"."""
        room_id, servers = await self._directory.resolve(request.match_info["room_alias"])
        return json_response({"room_id": room_id, "servers": servers})

    async def set_room_alias(self, request: web.Request) -> web.Response:
        """PUT /_matrix/client/v3/directory/room/{roomAlias} — "Room aliases"."""
        requester = await self._auth.user(request)
        self._limiter.check(requester.user_id)
        body = await read_json_object(request)
        await self._directory.create(
            requester.user_id, requester.is_admin, request.match_info["room_alias"],
            field(body, "room_id", str),
        )
        return json_response({})

    async def delete_room_alias(self, request: web.Request) -> web.Response:
        """DELETE /_matrix/client/v3/directory/room/{roomAlias} — "Room aliases"."""
        requester = await self._auth.user(request)
        await self._directory.delete(
            requester.user_id, requester.is_admin, request.match_info["room_alias"]
        )
        return json_response({})

    async def get_local_aliases(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/v3/rooms/{roomId}/aliases — "Room aliases"."""
        requester = await self._auth.user(request)
        aliases = await self._directory.local_aliases(
            requester.user_id, requester.is_admin, request.match_info["room_id"]
        )
        return json_response({"aliases": aliases})
