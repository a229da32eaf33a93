"""Account data, global and per room (client-server API "Client Config")."""

from __future__ import annotations

from aiohttp import web

from rocketnode.client_api.auth import Authenticator, Requester
from rocketnode.client_api.paths import client_route
from rocketnode.client_api.request import json_response, read_json_object
from rocketnode.client_api.sync import own_user
from rocketnode.services.account_data import AccountDataService


class AccountDataApi:
    def __init__(self, auth: Authenticator, account_data: AccountDataService) -> None:
        self._auth = auth
        self._account_data = account_data

    def routes(self) -> list[web.RouteDef]:
        room_path = "/user/{user_id}/rooms/{room_id}/account_data/{type}"
        return [
            *client_route("PUT", "/user/{user_id}/account_data/{type}", self.set_account_data),
            *client_route("GET", "/user/{user_id}/account_data/{type}", self.get_account_data),
            *client_route("PUT", room_path, self.set_account_data_per_room),
            *client_route("GET", room_path, self.get_account_data_per_room),
        ]

    async def _requester(self, request: web.Request) -> Requester:
        requester = await self._auth.user(request)
        own_user(requester, request.match_info["user_id"])
        return requester

    async def set_account_data(self, request: web.Request) -> web.Response:
        """PUT /_matrix/client/v3/user/{userId}/account_data/{type} — "Client Config"."""
        requester = await self._requester(request)
        content = await read_json_object(request)
        await self._account_data.set_global(
            requester.user_id, request.match_info["type"], content
        )
        return json_response({})

    async def get_account_data(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/v3/user/{userId}/account_data/{type} — "Client Config"."""
        requester = await self._requester(request)
        found = await self._account_data.get_global(requester.user_id, request.match_info["type"])
        return json_response(found)

    async def set_account_data_per_room(self, request: web.Request) -> web.Response:
        """PUT /_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type} —
        "Client Config"."""
        requester = await self._requester(request)
        content = await read_json_object(request)
        await self._account_data.set_room(
            requester.user_id, request.match_info["room_id"], request.match_info["type"], content
        )
        return json_response({})

    async def get_account_data_per_room(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type} —
        "Client Config"."""
        requester = await self._requester(request)
        found = await self._account_data.get_room(
            requester.user_id, request.match_info["room_id"], request.match_info["type"]
        )
        return json_response(found)
