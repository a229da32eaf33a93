"""Profiles (client-server API "Profiles", spec v1.16: any ``keyName``).

Looking up a profile needs no access token (the spec gives ``GET`` no security requirement);
changing one needs the owner's.
"""

from __future__ import annotations

from aiohttp import web

from rocketnode.client_api.auth import Authenticator
from rocketnode.client_api.paths import client_route
from rocketnode.client_api.request import json_response, read_json_object
from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.services.profile import ProfileService, check_key
from rocketnode.services.ratelimit import RateLimiter


class ProfileApi:
    def __init__(
        self, auth: Authenticator, profiles: ProfileService, limiter: RateLimiter
    ) -> None:
        self._auth = auth
        self._profiles = profiles
        self._limiter = limiter

    def routes(self) -> list[web.RouteDef]:
        return [
            *client_route("GET", "/profile/{user_id}", self.get_user_profile),
            *client_route("GET", "/profile/{user_id}/{key_name}", self.get_profile_field),
            *client_route("PUT", "/profile/{user_id}/{key_name}", self.set_profile_field),
            *client_route("DELETE", "/profile/{user_id}/{key_name}", self.delete_profile_field),
        ]

    async def get_user_profile(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/v3/profile/{userId} — "Profiles"."""
        return json_response(await self._profiles.profile(request.match_info["user_id"]))

    async def get_profile_field(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/v3/profile/{userId}/{keyName} — "Profiles"."""
        key = request.match_info["key_name"]
        check_key(key)
        value = await self._profiles.field(request.match_info["user_id"], key)
        return json_response({key: value})

    async def set_profile_field(self, request: web.Request) -> web.Response:
        """PUT /_matrix/client/v3/profile/{userId}/{keyName} — "Profiles"."""
        requester = await self._auth.user(request)
        self._limiter.check(requester.user_id)
        key = request.match_info["key_name"]
        body = await read_json_object(request)
        if key not in body:
            raise MatrixError(Errcode.MISSING_PARAM, f"The body must hold '{key}'")
        await self._profiles.set_field(
            requester.user_id, request.match_info["user_id"], key, body[key]
        )
        return json_response({})

    async def delete_profile_field(self, request: web.Request) -> web.Response:
        """DELETE /_matrix/client/v3/profile/{userId}/{keyName} — "Profiles"."""
        requester = await self._auth.user(request)
        self._limiter.check(requester.user_id)
        await self._profiles.delete_field(
            requester.user_id, request.match_info["user_id"], request.match_info["key_name"]
        )
        return json_response({})
