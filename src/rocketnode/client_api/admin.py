"""RocketNode's admin API (not part of the Matrix spec): federation health per destination."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from rocketnode.client_api.auth import Authenticator
from rocketnode.client_api.request import json_response

FederationStatus = Callable[[], Awaitable[list[dict[str, Any]]]]


class AdminApi:
    def __init__(self, auth: Authenticator, federation_status: FederationStatus) -> None:
        self._auth = auth
        self._federation_status = federation_status

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/_rocketnode/admin/v1/federation", self.federation_destinations)]

    async def federation_destinations(self, request: web.Request) -> web.Response:
        """GET /_rocketnode/admin/v1/federation — every destination with its state (ok /
        backing_off until ``retry_after_ts`` / failing since ``failing_since_ts``), queue
        depth, last success and last error. Server admins only."""
        await self._auth.admin(request)
        return json_response({"destinations": await self._federation_status()})
