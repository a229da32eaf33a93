"""Accounts: registration, password login, access tokens, devices and profiles.

Passwords are hashed with scrypt (in a worker thread); access tokens are random and stored only
as their SHA-256 hash.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import string
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, TypeVar

from rocketnode.core.errors import Errcode, InvalidIdentifier, MatrixError
from rocketnode.core.ids import UserId
from rocketnode.core.signing import decode_base64, encode_base64
from rocketnode.services.clock import Clock
from rocketnode.storage.ports import AccountStore
from rocketnode.storage.records import AccessToken, Account, Device

T = TypeVar("T")
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
MAX_PASSWORD_LENGTH = 512


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R,
                            p=_SCRYPT_P, dklen=32)
    params = f"{_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}"
    return f"scrypt${params}${encode_base64(salt)}${encode_base64(digest)}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    actual = hashlib.scrypt(password.encode("utf-8"), salt=decode_base64(salt), n=int(n),
                            r=int(r), p=int(p), dklen=32)
    return hmac.compare_digest(actual, decode_base64(digest))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_device_id() -> str:
    return "".join(secrets.choice(string.ascii_uppercase) for _ in range(10))


@dataclass(frozen=True, slots=True)
class Login:
    user_id: str
    access_token: str
    device_id: str


TOKEN_CACHE_SIZE = 10_000
TOKEN_CACHE_SECONDS = 60.0
"""How long a looked-up access token is trusted without asking storage again: logouts through
this service take effect at once; changes made by another process within this time."""


class AccountService:
    def __init__(self, server_name: str, accounts: AccountStore, clock: Clock,
                 hashing: Executor | None = None) -> None:
        self.server_name = server_name
        self._accounts = accounts
        self._clock = clock
        self._hashing = hashing
        """Where password hashes are computed (scrypt takes 16 MiB while it runs; one
        thread keeps that to 16 MiB however many logins arrive at once)."""
        self._tokens: dict[str, tuple[AccessToken, float]] = {}
        """The one cache of this service: access token hash -> (owner, trusted until)."""

    def user_id_for(self, username: str) -> str:
        """The local user ID for a username or a full user ID (lower-cased localpart)."""
        if username.startswith("@"):
            user_id = UserId.parse(username)
            if user_id.server_name != self.server_name:
                raise MatrixError(Errcode.INVALID_USERNAME, "User ID is not on this server")
            return str(user_id)
        return f"@{username.lower()}:{self.server_name}"

    async def register(
        self, username: str, password: str | None, is_admin: bool = False
    ) -> str:
        try:
            user_id = UserId.parse_compliant(self.user_id_for(username))
        except InvalidIdentifier as exc:
            raise MatrixError(Errcode.INVALID_USERNAME, exc.message) from exc
        if password is not None and len(password) > MAX_PASSWORD_LENGTH:
            raise MatrixError(Errcode.INVALID_PARAM, "Password is too long")
        password_hash = await self._in_hashing(hash_password, password) if password else None
        created = await self._accounts.create_account(
            str(user_id), password_hash, is_admin, self._clock.now_ms(), user_id.localpart
        )
        if not created:
            raise MatrixError(Errcode.USER_IN_USE, "User ID already taken")
        return str(user_id)

    async def username_available(self, username: str) -> bool:
        try:
            user_id = UserId.parse_compliant(self.user_id_for(username))
        except InvalidIdentifier as exc:
            raise MatrixError(Errcode.INVALID_USERNAME, exc.message) from exc
        if await self._accounts.get_account(str(user_id)) is not None:
            raise MatrixError(Errcode.USER_IN_USE, "User ID already taken")
        return True

    async def check_login(self, username: str, password: str) -> str:
        """The user ID if ``password`` is right; ``M_FORBIDDEN`` otherwise."""
        try:
            user_id = self.user_id_for(username)
        except MatrixError as exc:
            raise MatrixError(Errcode.FORBIDDEN, "Invalid username or password", 403) from exc
        account = await self._accounts.get_account(user_id)
        if account is None or account.password_hash is None or account.deactivated:
            raise MatrixError(Errcode.FORBIDDEN, "Invalid username or password", 403)
        if not await self._in_hashing(check_password, password, account.password_hash):
            raise MatrixError(Errcode.FORBIDDEN, "Invalid username or password", 403)
        return user_id

    async def _in_hashing(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._hashing, fn, *args)

    async def create_login(
        self, user_id: str, device_id: str | None = None, display_name: str | None = None
    ) -> Login:
        token = "rnt_" + secrets.token_urlsafe(32)
        device_id = device_id or new_device_id()
        await self._accounts.add_login(
            user_id, device_id, display_name, hash_token(token), self._clock.now_ms()
        )
        return Login(user_id, token, device_id)

    async def authenticate(self, token: str) -> AccessToken:
        token_hash = hash_token(token)
        now = self._clock.monotonic()
        cached = self._tokens.get(token_hash)
        if cached is not None and cached[1] > now:
            return cached[0]
        found = await self._accounts.get_access_token(token_hash)
        if found is None:
            self._tokens.pop(token_hash, None)
            raise MatrixError(Errcode.UNKNOWN_TOKEN, "Unknown access token", 401)
        if len(self._tokens) >= TOKEN_CACHE_SIZE:
            self._tokens = {k: v for k, v in self._tokens.items() if v[1] > now}
            if len(self._tokens) >= TOKEN_CACHE_SIZE:
                self._tokens.clear()
        self._tokens[token_hash] = (found, now + TOKEN_CACHE_SECONDS)
        return found

    async def logout(self, token: str) -> None:
        token_hash = hash_token(token)
        cached = self._tokens.get(token_hash)
        await self._accounts.delete_access_token(token_hash)
        self._tokens.pop(token_hash, None)
        if cached is not None:  # the device goes too, with every token it had
            self._forget_tokens(lambda t: t.user_id == cached[0].user_id
                                and t.device_id == cached[0].device_id)

    async def logout_all(self, user_id: str) -> None:
        await self._accounts.delete_all_access_tokens(user_id)
        self._forget_tokens(lambda t: t.user_id == user_id)

    def _forget_tokens(self, matches: Callable[[AccessToken], bool]) -> None:
        self._tokens = {k: v for k, v in self._tokens.items() if not matches(v[0])}

    async def get_account(self, user_id: str) -> Account | None:
        return await self._accounts.get_account(user_id)

    async def profile(self, user_id: str) -> dict[str, Any]:
        """``displayname``/``avatar_url`` of a local user (only the fields that are set)."""
        account = await self._accounts.get_account(user_id)
        if account is None:
            raise MatrixError(Errcode.NOT_FOUND, "Profile not found", 404)
        profile: dict[str, Any] = {}
        if account.displayname is not None:
            profile["displayname"] = account.displayname
        if account.avatar_url is not None:
            profile["avatar_url"] = account.avatar_url
        return profile

    async def set_profile_field(self, user_id: str, field: str, value: str | None) -> None:
        await self._accounts.set_profile_field(user_id, field, value)

    async def devices(self, user_id: str) -> list[Device]:
        return await self._accounts.get_devices(user_id)

    async def rename_device(self, user_id: str, device_id: str, display_name: str) -> bool:
        return await self._accounts.update_device(user_id, device_id, display_name)
