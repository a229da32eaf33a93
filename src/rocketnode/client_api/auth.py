"""Who is calling: the access token of a client request (header or query parameter)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.services.accounts import AccountService


@dataclass(frozen=True, slots=True)
class Requester:
    user_id: str
    device_id: str
    is_admin: bool
    access_token: str


def access_token_of(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        raise MatrixError(Errcode.MISSING_TOKEN, "Malformed Authorization header", 401)
    return request.query.get("access_token") or None


class Authenticator:
    def __init__(self, accounts: AccountService) -> None:
        self._accounts = accounts

    async def user(self, request: web.Request) -> Requester:
        token = access_token_of(request)
        if token is None:
            raise MatrixError(Errcode.MISSING_TOKEN, "Missing access token", 401)
        found = await self._accounts.authenticate(token)
        return Requester(found.user_id, found.device_id, found.is_admin, token)

    async def admin(self, request: web.Request) -> Requester:
        requester = await self.user(request)
        if not requester.is_admin:
            raise MatrixError(Errcode.FORBIDDEN, "You are not a server admin", 403)
        return requester
