"""Syncing and filters (client-server API "Syncing", "Filtering")."""

from __future__ import annotations

from aiohttp import web

from rocketnode.client_api.auth import Authenticator, Requester
from rocketnode.client_api.paths import client_route
from rocketnode.client_api.request import json_response, query_int, read_json_object
from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.services.stream_tokens import SyncToken
from rocketnode.services.sync import MAX_TIMEOUT_MS, SyncRequest, SyncService
from rocketnode.services.user_filters import UserFilters

PRESENCE_STATES = frozenset({"offline", "online", "unavailable"})


def query_bool(request: web.Request, name: str) -> bool:
    raw = request.query.get(name)
    if raw is None or raw == "" or raw == "false":
        return False
    if raw == "true":
        return True
    raise MatrixError(Errcode.INVALID_PARAM, f"'{name}' must be 'true' or 'false'")


def own_user(requester: Requester, user_id: str) -> None:
    """Users may only touch their own filters, account data and typing state."""
    if user_id != requester.user_id:
        raise MatrixError(Errcode.FORBIDDEN, "You may only act for yourself", 403)


class SyncApi:
    def __init__(self, auth: Authenticator, sync: SyncService, filters: UserFilters) -> None:
        self._auth = auth
        self._sync = sync
        self._filters = filters

    def routes(self) -> list[web.RouteDef]:
        return [
            *client_route("GET", "/sync", self.sync),
            *client_route("POST", "/user/{user_id}/filter", self.define_filter),
            *client_route("GET", "/user/{user_id}/filter/{filter_id}", self.get_filter),
        ]

    async def sync(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/v3/sync — "Syncing"."""
        requester = await self._auth.user(request)
        since = request.query.get("since")
        presence = request.query.get("set_presence")
        if presence is not None and presence not in PRESENCE_STATES:
            raise MatrixError(Errcode.INVALID_PARAM, "Unknown set_presence value")
        sync_request = SyncRequest(
            user_id=requester.user_id,
            device_id=requester.device_id,
            since=SyncToken.parse(since) if since else None,
            filter=await self._filters.resolve(requester.user_id, request.query.get("filter")),
            full_state=query_bool(request, "full_state"),
            timeout_ms=query_int(request, "timeout", 0, 0, MAX_TIMEOUT_MS),
            use_state_after=query_bool(request, "use_state_after"),
        )
        return json_response(await self._sync.sync(sync_request))

    async def define_filter(self, request: web.Request) -> web.Response:
        """POST /_matrix/client/v3/user/{userId}/filter — "Filtering"."""
        requester = await self._auth.user(request)
        own_user(requester, request.match_info["user_id"])
        body = await read_json_object(request)
        filter_id = await self._filters.define(requester.user_id, body)
        return json_response({"filter_id": filter_id})

    async def get_filter(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/v3/user/{userId}/filter/{filterId} — "Filtering"."""
        requester = await self._auth.user(request)
        own_user(requester, request.match_info["user_id"])
        found = await self._filters.get(requester.user_id, request.match_info["filter_id"])
        return json_response(found)
