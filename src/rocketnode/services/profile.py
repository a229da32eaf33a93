"""User profiles: reading any user's profile, changing your own (client-server API "Profiles").

Fields (spec v1.16): ``displayname`` and ``avatar_url``, ``m.tz`` and custom namespaced keys.
The whole profile must stay under 64 KiB (``M_PROFILE_TOO_LARGE``), a key under 256 bytes
(``M_KEY_TOO_LARGE``). An empty ``displayname`` or ``avatar_url`` clears the field, as clients
have long used it; ``null`` is refused rather than stored.

When a user's ``displayname`` or ``avatar_url`` changes, a new ``m.room.member`` join event with
the new values goes into every room they are joined to (spec "Events on Change of Profile
Information"); a room where it cannot be sent is logged and skipped, it does not undo the
change. Profiles of users on other servers come from a :class:`RemoteProfiles` that the
federation layer provides; without it they are not found.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Protocol

from rocketnode.core.canonical_json import encode_json
from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.core.ids import UserId
from rocketnode.services.rooms import RoomService
from rocketnode.storage.ports import AccountStore, RoomStore

logger = logging.getLogger(__name__)

DISPLAYNAME = "displayname"
AVATAR_URL = "avatar_url"
MEMBER_FIELDS = (DISPLAYNAME, AVATAR_URL)
"""The fields that are copied into ``m.room.member`` events and live in the account."""

MAX_PROFILE_BYTES = 64 * 1024
MAX_KEY_BYTES = 255
MAX_DISPLAYNAME_LENGTH = 256
MAX_AVATAR_URL_LENGTH = 1000
PROPAGATION_CONCURRENCY = 8

_KEY = re.compile(r"(avatar_url|displayname|m\.tz|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+)\Z")
_MXC = re.compile(r"mxc://[A-Za-z0-9.\-:\[\]]+/[A-Za-z0-9_\-]+\Z")
_MEMBER_KEYS_NOT_KEPT = frozenset({"reason", "join_authorised_via_users_server"})


class RemoteProfiles(Protocol):
    async def query(self, user_id: str, field: str | None) -> dict[str, Any]:
        """The profile of a remote user (one field if ``field`` is given), or ``M_NOT_FOUND``."""
        ...


class NoRemoteProfiles:
    """The :class:`RemoteProfiles` of a node without federation."""

    async def query(self, user_id: str, field: str | None) -> dict[str, Any]:
        raise MatrixError(Errcode.NOT_FOUND, "Profile not found", 404)


def check_key(key: str) -> None:
    """A profile key a client may use (spec: the ``keyName`` pattern, at most 255 bytes)."""
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise MatrixError(Errcode.KEY_TOO_LARGE, f"Profile keys are at most {MAX_KEY_BYTES} bytes")
    if not _KEY.match(key):
        raise MatrixError(Errcode.INVALID_PARAM, f"Invalid profile key {key!r}")


def check_value(key: str, value: object) -> None:
    """Refuse a value that does not fit ``key`` with ``M_BAD_JSON`` (``null`` never does)."""
    if value is None:
        raise MatrixError(Errcode.BAD_JSON, f"'{key}' may not be null; DELETE the field instead")
    if key in (*MEMBER_FIELDS, "m.tz") and not isinstance(value, str):
        raise MatrixError(Errcode.BAD_JSON, f"'{key}' must be a string")
    if key == DISPLAYNAME and len(str(value)) > MAX_DISPLAYNAME_LENGTH:
        raise MatrixError(Errcode.BAD_JSON, "Display name is too long")
    if key == AVATAR_URL and value and (
        len(str(value)) > MAX_AVATAR_URL_LENGTH or not _MXC.match(str(value))
    ):
        raise MatrixError(Errcode.BAD_JSON, "avatar_url must be an mxc:// URI")


class ProfileService:
    def __init__(
        self, rooms: RoomService, accounts: AccountStore, room_store: RoomStore,
        remote: RemoteProfiles,
    ) -> None:
        self._rooms = rooms
        self._accounts = accounts
        self._room_store = room_store
        self.remote = remote

    async def profile(self, user_id: str) -> dict[str, Any]:
        """Every field of a user's profile; ``M_NOT_FOUND`` for an unknown user."""
        UserId.parse(user_id)
        if not self._rooms.is_local(user_id):
            return await self._remote_profile(user_id, None)
        return await self._local_profile(user_id)

    async def _remote_profile(self, user_id: str, field: str | None) -> dict[str, Any]:
        """A remote server may answer an unset field with null (server-server API "Query
        profile"); here, as for local users, an unset field is absent."""
        answer = await self.remote.query(user_id, field)
        return {key: value for key, value in answer.items() if value is not None}

    async def field(self, user_id: str, key: str) -> Any:
        """One field; ``M_NOT_FOUND`` if the user is unknown or has not set it."""
        UserId.parse(user_id)
        profile = (
            await self._local_profile(user_id) if self._rooms.is_local(user_id)
            else await self._remote_profile(user_id, key)
        )
        if key not in profile:
            raise MatrixError(Errcode.NOT_FOUND, f"The profile has no {key!r}", 404)
        return profile[key]

    async def _local_profile(self, user_id: str) -> dict[str, Any]:
        account = await self._accounts.get_account(user_id)
        if account is None:
            raise MatrixError(Errcode.NOT_FOUND, "Profile not found", 404)
        profile = await self._accounts.get_extra_profile_fields(user_id)
        if account.displayname is not None:
            profile[DISPLAYNAME] = account.displayname
        if account.avatar_url is not None:
            profile[AVATAR_URL] = account.avatar_url
        return profile

    async def set_field(self, requester: str, user_id: str, key: str, value: Any) -> None:
        """Set a field of the requester's own profile (and tell their rooms if it shows there)."""
        profile = await self._own_profile(requester, user_id)
        check_key(key)
        check_value(key, value)
        if key in MEMBER_FIELDS and value == "":
            await self._clear(user_id, key, profile)
            return
        if len(encode_json({**profile, key: value})) > MAX_PROFILE_BYTES:
            raise MatrixError(Errcode.PROFILE_TOO_LARGE, "The profile would exceed 64 KiB")
        if key not in MEMBER_FIELDS:
            await self._accounts.set_extra_profile_field(user_id, key, value)
            return
        await self._accounts.set_profile_field(user_id, key, value)
        if profile.get(key) != value:
            await self._propagate(user_id)

    async def delete_field(self, requester: str, user_id: str, key: str) -> None:
        """Remove a field of the requester's own profile (fine if it was not set)."""
        profile = await self._own_profile(requester, user_id)
        check_key(key)
        if key in MEMBER_FIELDS:
            await self._clear(user_id, key, profile)
        else:
            await self._accounts.delete_extra_profile_field(user_id, key)

    async def _own_profile(self, requester: str, user_id: str) -> dict[str, Any]:
        if requester != user_id:
            raise MatrixError(Errcode.FORBIDDEN, "You may only change your own profile", 403)
        return await self._local_profile(user_id)

    async def _clear(self, user_id: str, key: str, profile: dict[str, Any]) -> None:
        await self._accounts.set_profile_field(user_id, key, None)
        if key in profile:
            await self._propagate(user_id)

    # -- propagation into rooms --------------------------------------------------------------

    async def _propagate(self, user_id: str) -> None:
        """Send an updated join event into every room the user is joined to."""
        profile = await self._local_profile(user_id)
        memberships = await self._room_store.local_memberships(user_id)
        room_ids = sorted(m.room_id for m in memberships if m.membership == "join")
        limit = asyncio.Semaphore(PROPAGATION_CONCURRENCY)

        async def update(room_id: str) -> None:
            async with limit:
                try:
                    await self._update_member_event(room_id, user_id, profile)
                except MatrixError as exc:
                    logger.warning("Profile change of %s not sent to %s: %s",
                                   user_id, room_id, exc.message)

        async with asyncio.TaskGroup() as group:
            for room_id in room_ids:
                group.create_task(update(room_id))

    async def _update_member_event(
        self, room_id: str, user_id: str, profile: dict[str, Any]
    ) -> None:
        key = ("m.room.member", user_id)
        current = (await self._rooms.current_state_pdus(room_id, [key])).get(key)
        if current is None or current.membership != "join":
            return
        content = {k: v for k, v in current.content.items() if k not in _MEMBER_KEYS_NOT_KEPT}
        for name in MEMBER_FIELDS:
            content.pop(name, None)
            if name in profile:
                content[name] = profile[name]
        if content == current.content:
            return
        await self._rooms.send(room_id, user_id, "m.room.member", content, user_id)
