"""Room creation and membership (client-server API "Room creation", "Room membership")."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from rocketnode.client_api.auth import Authenticator
from rocketnode.client_api.paths import client_route
from rocketnode.client_api.request import field, json_response, optional_str, read_json_object
from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.core.room_versions import DEFAULT_ROOM_VERSION, room_version
from rocketnode.services.membership import MembershipService
from rocketnode.services.ratelimit import RateLimiter
from rocketnode.services.room_creation import CreateRoomRequest, RoomCreation
from rocketnode.storage.ports import RoomStore


def _str_list(body: dict[str, Any], name: str) -> list[str]:
    value = field(body, name, list, required=False, default=[])
    if not all(isinstance(item, str) for item in value):
        raise MatrixError(Errcode.BAD_JSON, f"'{name}' must be a list of strings")
    return value


class RoomsApi:
    def __init__(
        self, auth: Authenticator, creation: RoomCreation, membership: MembershipService,
        room_store: RoomStore, limiter: RateLimiter, join_limiter: RateLimiter,
    ) -> None:
        self._auth = auth
        self._creation = creation
        self._membership = membership
        self._room_store = room_store
        self._limiter = limiter
        self._join_limiter = join_limiter

    def routes(self) -> list[web.RouteDef]:
        return [
            *client_route("POST", "/createRoom", self.create_room),
            *client_route("POST", "/rooms/{room_id}/join", self.join_room_by_id),
            *client_route("POST", "/join/{room_id_or_alias}", self.join_room),
            *client_route("POST", "/knock/{room_id_or_alias}", self.knock_room),
            *client_route("POST", "/rooms/{room_id}/invite", self.invite_user),
            *client_route("POST", "/rooms/{room_id}/leave", self.leave_room),
            *client_route("POST", "/rooms/{room_id}/forget", self.forget_room),
            *client_route("POST", "/rooms/{room_id}/kick", self.kick),
            *client_route("POST", "/rooms/{room_id}/ban", self.ban),
            *client_route("POST", "/rooms/{room_id}/unban", self.unban),
            *client_route("GET", "/joined_rooms", self.joined_rooms),
        ]

    async def create_room(self, request: web.Request) -> web.Response:
        """POST /_matrix/client/v3/createRoom — "Creation"."""
        requester = await self._auth.user(request)
        self._limiter.check(requester.user_id)
        body = await read_json_object(request, allow_empty=True)
        version_id = optional_str(body, "room_version")
        visibility = optional_str(body, "visibility") or "private"
        if visibility not in ("public", "private"):
            raise MatrixError(Errcode.BAD_JSON, "visibility must be 'public' or 'private'")
        initial_state = field(body, "initial_state", list, required=False, default=[])
        create_request = CreateRoomRequest(
            creator=requester.user_id,
            room_version=room_version(version_id) if version_id else DEFAULT_ROOM_VERSION,
            preset=optional_str(body, "preset"),
            visibility=visibility,
            name=optional_str(body, "name"),
            topic=optional_str(body, "topic"),
            invite=_str_list(body, "invite"),
            initial_state=initial_state,
            creation_content=field(body, "creation_content", dict, required=False, default={}),
            power_level_content_override=field(
                body, "power_level_content_override", dict, required=False
            ),
            room_alias_name=optional_str(body, "room_alias_name"),
            is_direct=field(body, "is_direct", bool, required=False, default=False),
        )
        room_id, alias = await self._creation.create(create_request)
        if visibility == "public":
            await self._room_store.set_public(room_id, True)
        result: dict[str, Any] = {"room_id": room_id}
        if alias is not None:
            result["room_alias"] = alias
        return json_response(result)

    async def join_room_by_id(self, request: web.Request) -> web.Response:
        """POST /_matrix/client/v3/rooms/{roomId}/join — "Joining rooms"."""
        return await self._join(request, request.match_info["room_id"])

    async def join_room(self, request: web.Request) -> web.Response:
        """POST /_matrix/client/v3/join/{roomIdOrAlias} — "Joining rooms"."""
        return await self._join(request, request.match_info["room_id_or_alias"])

    async def _join(self, request: web.Request, target: str) -> web.Response:
        requester = await self._auth.user(request)
        self._join_limiter.check(requester.user_id)
        body = await read_json_object(request, allow_empty=True)
        via = request.query.getall("via", []) or request.query.getall("server_name", [])
        room_id = await self._membership.join(
            requester.user_id, target, via, optional_str(body, "reason")
        )
        return json_response({"room_id": room_id})

    async def knock_room(self, request: web.Request) -> web.Response:
        """POST /_matrix/client/v3/knock/{roomIdOrAlias} — "Knocking on rooms"."""
        requester = await self._auth.user(request)
        self._join_limiter.check(requester.user_id)
        body = await read_json_object(request, allow_empty=True)
        via = request.query.getall("via", []) or request.query.getall("server_name", [])
        room_id = await self._membership.knock(
            requester.user_id, request.match_info["room_id_or_alias"], via,
            optional_str(body, "reason"),
        )
        return json_response({"room_id": room_id})

    async def invite_user(self, request: web.Request) -> web.Response:
        """POST /_matrix/client/v3/rooms/{roomId}/invite — "Room membership"."""
        requester = await self._auth.user(request)
        self._limiter.check(requester.user_id)
        body = await read_json_object(request)
        await self._membership.invite(
            requester.user_id, request.match_info["room_id"], field(body, "user_id", str),
            optional_str(body, "reason"),
        )
        return json_response({})

    async def leave_room(self, request: web.Request) -> web.Response:
        """POST /_matrix/client/v3/rooms/{roomId}/leave — "Leaving rooms"."""
        requester = await self._auth.user(request)
        body = await read_json_object(request, allow_empty=True)
        await self._membership.leave(
            requester.user_id, request.match_info["room_id"], optional_str(body, "reason")
        )
        return json_response({})

    async def forget_room(self, request: web.Request) -> web.Response:
        """POST /_matrix/client/v3/rooms/{roomId}/forget — "Leaving rooms"."""
        requester = await self._auth.user(request)
        await self._membership.forget(requester.user_id, request.match_info["room_id"])
        return json_response({})

    async def kick(self, request: web.Request) -> web.Response:
        """POST /_matrix/client/v3/rooms/{roomId}/kick — "Kicking users"."""
        return await self._moderate(request, self._membership.kick)

    async def ban(self, request: web.Request) -> web.Response:
        """POST /_matrix/client/v3/rooms/{roomId}/ban — "Banning users"."""
        return await self._moderate(request, self._membership.ban)

    async def unban(self, request: web.Request) -> web.Response:
        """POST /_matrix/client/v3/rooms/{roomId}/unban — "Banning users"."""
        return await self._moderate(request, self._membership.unban)

    async def _moderate(self, request: web.Request, action: Any) -> web.Response:
        requester = await self._auth.user(request)
        self._limiter.check(requester.user_id)
        body = await read_json_object(request)
        await action(requester.user_id, request.match_info["room_id"],
                     field(body, "user_id", str), optional_str(body, "reason"))
        return json_response({})

    async def joined_rooms(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/v3/joined_rooms — "Room membership"."""
        requester = await self._auth.user(request)
        memberships = await self._room_store.local_memberships(requester.user_id)
        return json_response(
            {"joined_rooms": sorted(m.room_id for m in memberships if m.membership == "join")}
        )
