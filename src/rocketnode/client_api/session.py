"""Accounts and sessions: register, login, logout, whoami, devices (client-server API
"Client Authentication", "Account registration and management", "Device Management")."""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from rocketnode.client_api.auth import Authenticator
from rocketnode.client_api.paths import client_route
from rocketnode.client_api.request import field, json_response, optional_str, read_json_object
from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.services.accounts import AccountService
from rocketnode.services.clock import Clock
from rocketnode.services.ratelimit import RateLimiter

UIA_SESSION_LIFETIME_MS = 15 * 60 * 1000
UIA_PRUNE_AT = 1000
"""Expired sessions are swept when this many are open (not on every registration)."""
DUMMY_FLOWS = {"flows": [{"stages": ["m.login.dummy"]}], "params": {}}


class UiaSessions:
    """User-interactive auth sessions for registration (only ``m.login.dummy`` exists here)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._sessions: dict[str, int] = {}

    def start(self) -> str:
        now = self._clock.now_ms()
        if len(self._sessions) >= UIA_PRUNE_AT:
            self._sessions = {s: t for s, t in self._sessions.items()
                              if now - t < UIA_SESSION_LIFETIME_MS}
        session = secrets.token_urlsafe(16)
        self._sessions[session] = now
        return session

    def complete(self, auth: dict[str, Any]) -> None:
        """Accept a finished ``m.login.dummy`` stage; raise the 401 UIA answer otherwise."""
        if auth.get("type") != "m.login.dummy":
            raise _uia_required(self.start(), "Unsupported authentication type")
        session = auth.get("session")
        if session is not None:
            if not isinstance(session, str) or session not in self._sessions:
                raise MatrixError(Errcode.UNKNOWN, "Unknown UIA session", 400)
            del self._sessions[session]


class _UiaRequired(MatrixError):
    def __init__(self, session: str, message: str) -> None:
        super().__init__(Errcode.FORBIDDEN, message, 401)
        self.session = session

    def to_json(self) -> dict[str, object]:
        return {**DUMMY_FLOWS, "session": self.session}


def _uia_required(session: str, message: str = "Additional authentication required") -> MatrixError:
    return _UiaRequired(session, message)


class SessionApi:
    def __init__(
        self, accounts: AccountService, auth: Authenticator, clock: Clock,
        open_registration: bool, login_limiter: RateLimiter, register_limiter: RateLimiter,
    ) -> None:
        self._accounts = accounts
        self._auth = auth
        self._open_registration = open_registration
        self._uia = UiaSessions(clock)
        self._login_limiter = login_limiter
        self._register_limiter = register_limiter

    def routes(self) -> list[web.RouteDef]:
        return [
            *client_route("GET", "/login", self.login_flows),
            *client_route("POST", "/login", self.login),
            *client_route("POST", "/logout", self.logout),
            *client_route("POST", "/logout/all", self.logout_all),
            *client_route("POST", "/register", self.register),
            *client_route("GET", "/register/available", self.register_available),
            *client_route("GET", "/account/whoami", self.whoami),
            *client_route("GET", "/devices", self.devices),
            *client_route("GET", "/devices/{device_id}", self.device),
            *client_route("PUT", "/devices/{device_id}", self.update_device),
        ]

    async def login_flows(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/v3/login — "Login"."""
        return json_response({"flows": [{"type": "m.login.password"}]})

    async def login(self, request: web.Request) -> web.Response:
        """POST /_matrix/client/v3/login — "Login" (``m.login.password``)."""
        body = await read_json_object(request)
        if field(body, "type", str) != "m.login.password":
            raise MatrixError(Errcode.UNKNOWN, "Only m.login.password is supported", 400)
        username = _login_username(body)
        self._login_limiter.check(username.lower())
        password = field(body, "password", str)
        user_id = await self._accounts.check_login(username, password)
        login = await self._accounts.create_login(
            user_id, optional_str(body, "device_id"),
            optional_str(body, "initial_device_display_name"),
        )
        return json_response({
            "user_id": login.user_id, "access_token": login.access_token,
            "device_id": login.device_id, "home_server": self._accounts.server_name,
        })

    async def logout(self, request: web.Request) -> web.Response:
        """POST /_matrix/client/v3/logout — "Logout"."""
        requester = await self._auth.user(request)
        await self._accounts.logout(requester.access_token)
        return json_response({})

    async def logout_all(self, request: web.Request) -> web.Response:
        """POST /_matrix/client/v3/logout/all — "Logout all devices"."""
        requester = await self._auth.user(request)
        await self._accounts.logout_all(requester.user_id)
        return json_response({})

    async def register(self, request: web.Request) -> web.Response:
        """POST /_matrix/client/v3/register — "Account registration" (UIA, m.login.dummy)."""
        if request.query.get("kind", "user") == "guest":
            raise MatrixError(Errcode.GUEST_ACCESS_FORBIDDEN, "Guest access is disabled", 403)
        if not self._open_registration:
            raise MatrixError(Errcode.FORBIDDEN, "Registration is closed on this server", 403)
        body = await read_json_object(request)
        self._register_limiter.check(request.remote or "unknown")
        username = optional_str(body, "username") or secrets.token_hex(6)
        password = optional_str(body, "password")
        await self._accounts.username_available(username)
        auth = field(body, "auth", dict, required=False)
        if auth is None:
            raise _uia_required(self._uia.start())
        self._uia.complete(auth)
        user_id = await self._accounts.register(username, password)
        if field(body, "inhibit_login", bool, required=False, default=False):
            return json_response({"user_id": user_id, "home_server": self._accounts.server_name})
        login = await self._accounts.create_login(
            user_id, optional_str(body, "device_id"),
            optional_str(body, "initial_device_display_name"),
        )
        return json_response({
            "user_id": user_id, "access_token": login.access_token,
            "device_id": login.device_id, "home_server": self._accounts.server_name,
        })

    async def register_available(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/v3/register/available — "Check username availability"."""
        username = request.query.get("username")
        if not username:
            raise MatrixError(Errcode.MISSING_PARAM, "Missing 'username'")
        await self._accounts.username_available(username)
        return json_response({"available": True})

    async def whoami(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/v3/account/whoami — "Identify the owner of an access token"."""
        requester = await self._auth.user(request)
        return json_response({"user_id": requester.user_id, "device_id": requester.device_id,
                              "is_guest": False})

    async def devices(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/v3/devices — "Device Management"."""
        requester = await self._auth.user(request)
        devices = await self._accounts.devices(requester.user_id)
        return json_response({"devices": [_device_json(d) for d in devices]})

    async def device(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/v3/devices/{deviceId} — "Device Management"."""
        requester = await self._auth.user(request)
        wanted = request.match_info["device_id"]
        for device in await self._accounts.devices(requester.user_id):
            if device.device_id == wanted:
                return json_response(_device_json(device))
        raise MatrixError(Errcode.NOT_FOUND, "Unknown device", 404)

    async def update_device(self, request: web.Request) -> web.Response:
        """PUT /_matrix/client/v3/devices/{deviceId} — "Device Management"."""
        requester = await self._auth.user(request)
        body = await read_json_object(request, allow_empty=True)
        name = optional_str(body, "display_name")
        if name is not None and not await self._accounts.rename_device(
            requester.user_id, request.match_info["device_id"], name
        ):
            raise MatrixError(Errcode.NOT_FOUND, "Unknown device", 404)
        return json_response({})


def _login_username(body: dict[str, Any]) -> str:
    identifier = body.get("identifier")
    if isinstance(identifier, dict):
        if identifier.get("type") != "m.id.user":
            raise MatrixError(Errcode.UNKNOWN, "Only m.id.user identifiers are supported", 400)
        return field(identifier, "user", str)
    return field(body, "user", str)


def _device_json(device: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"device_id": device.device_id}
    if device.display_name is not None:
        result["display_name"] = device.display_name
    if device.last_seen_ts is not None:
        result["last_seen_ts"] = device.last_seen_ts
    return result
