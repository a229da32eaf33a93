"""Server discovery for clients: ``/versions``, capabilities, ``/.well-known/matrix/client``
(client-server API "Server Discovery", "Capabilities negotiation")."""

from __future__ import annotations

from aiohttp import web

from rocketnode import __version__
from rocketnode.client_api.auth import Authenticator
from rocketnode.client_api.paths import client_route
from rocketnode.client_api.request import json_response
from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.core.room_versions import DEFAULT_ROOM_VERSION, KNOWN_ROOM_VERSIONS

SPEC_VERSIONS = [
    "r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9",
    "v1.10", "v1.11", "v1.12", "v1.13", "v1.14", "v1.15", "v1.16",
]


class ServerInfoApi:
    def __init__(self, auth: Authenticator, well_known_client: str = "") -> None:
        self._auth = auth
        self._well_known_client = well_known_client

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/_matrix/client/versions", self.versions),
            web.get("/.well-known/matrix/client", self.well_known),
            *client_route("GET", "/capabilities", self.capabilities),
        ]

    async def versions(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/versions — "GET /_matrix/client/versions"."""
        return json_response({"versions": SPEC_VERSIONS, "unstable_features": {},
                              "server": {"name": "RocketNode", "version": __version__}})

    async def well_known(self, request: web.Request) -> web.Response:
        """GET /.well-known/matrix/client — "Well-known URIs"."""
        if not self._well_known_client:
            raise MatrixError(Errcode.NOT_FOUND, "No .well-known configured", 404)
        return json_response({"m.homeserver": {"base_url": self._well_known_client}})

    async def capabilities(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/v3/capabilities — "Capabilities negotiation"."""
        await self._auth.user(request)
        versions = {identifier: "stable" for identifier in KNOWN_ROOM_VERSIONS}
        return json_response({"capabilities": {
            "m.room_versions": {"default": DEFAULT_ROOM_VERSION.identifier,
                                "available": versions},
            "m.change_password": {"enabled": False},
            "m.set_displayname": {"enabled": True},
            "m.set_avatar_url": {"enabled": True},
            "m.3pid_changes": {"enabled": False},
        }})
