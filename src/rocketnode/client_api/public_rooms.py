"""The published room directory (client-server API "Published room directory":
``/directory/list/room/{roomId}`` and ``/publicRooms``).

``GET /publicRooms`` of this server needs no access token (the spec gives it no security
requirement); asking for another server's directory does, so the node is not an open proxy.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from rocketnode.client_api.auth import Authenticator
from rocketnode.client_api.paths import client_route
from rocketnode.client_api.request import field, json_response, optional_str, read_json_object
from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.services.public_rooms import PublicRoomsQuery, PublicRoomsService

_LIST = "/directory/list/room/{room_id}"


class PublicRoomsApi:
    def __init__(self, auth: Authenticator, public_rooms: PublicRoomsService) -> None:
        self._auth = auth
        self._public_rooms = public_rooms

    def routes(self) -> list[web.RouteDef]:
        return [
            *client_route("GET", _LIST, self.get_room_visibility_on_directory),
            *client_route("PUT", _LIST, self.set_room_visibility_on_directory),
            *client_route("GET", "/publicRooms", self.get_public_rooms),
            *client_route("POST", "/publicRooms", self.query_public_rooms),
        ]

    async def get_room_visibility_on_directory(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/v3/directory/list/room/{roomId} — "Published room directory"."""
        visibility = await self._public_rooms.visibility(request.match_info["room_id"])
        return json_response({"visibility": visibility})

    async def set_room_visibility_on_directory(self, request: web.Request) -> web.Response:
        """PUT /_matrix/client/v3/directory/list/room/{roomId} — "Published room directory"."""
        requester = await self._auth.user(request)
        body = await read_json_object(request, allow_empty=True)
        visibility = optional_str(body, "visibility") or "public"
        await self._public_rooms.set_visibility(
            requester.user_id, requester.is_admin, request.match_info["room_id"], visibility
        )
        return json_response({})

    async def get_public_rooms(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/v3/publicRooms — "Published room directory"."""
        server = request.query.get("server") or None
        if server is not None:
            await self._auth.user(request)
        query = PublicRoomsQuery(
            limit=_limit(request.query.get("limit")), since=request.query.get("since") or None
        )
        return json_response(await self._public_rooms.list_rooms(server, query))

    async def query_public_rooms(self, request: web.Request) -> web.Response:
        """POST /_matrix/client/v3/publicRooms — "Published room directory" (filtered)."""
        await self._auth.user(request)
        body = await read_json_object(request, allow_empty=True)
        limit = field(body, "limit", int, required=False)
        if limit is not None and limit < 0:
            raise MatrixError(Errcode.INVALID_PARAM, "'limit' must not be negative")
        filter_json = field(body, "filter", dict, required=False, default={})
        include_all = field(body, "include_all_networks", bool, required=False, default=False)
        instance = optional_str(body, "third_party_instance_id")
        if include_all and instance is not None:
            raise MatrixError(Errcode.INVALID_PARAM,
                              "third_party_instance_id needs include_all_networks false")
        query = PublicRoomsQuery(
            limit=limit,
            since=optional_str(body, "since") or None,
            search_term=optional_str(filter_json, "generic_search_term"),
            room_types=_room_types(filter_json),
            third_party_instance_id=instance,
        )
        server = request.query.get("server") or None
        return json_response(await self._public_rooms.list_rooms(server, query))


def _limit(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise MatrixError(Errcode.INVALID_PARAM, "'limit' must be a non-negative integer")
    return int(raw)


def _room_types(filter_json: dict[str, Any]) -> tuple[str | None, ...] | None:
    value = filter_json.get("room_types")
    if value is None:
        return None
    if not isinstance(value, list) or not all(t is None or isinstance(t, str) for t in value):
        raise MatrixError(Errcode.BAD_JSON, "'room_types' must be a list of strings or nulls")
    return tuple(value)
