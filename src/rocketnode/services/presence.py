"""Presence of users (client-server API "Presence").

Presence is off by default (config ``presence_enabled = false``). Off, the node still answers
the presence API so that clients keep working, as other servers do: ``GET`` says every known user
is ``offline``, and ``PUT`` checks the request (only your own presence, a valid body) and then
discards it. Nothing is stored, so nothing about a user's activity is kept or shown.

On, each local user's state is kept in memory (presence is ephemeral: after a restart everyone
is offline until they act again). ``PUT`` sets it and counts as activity; ``online`` reads as
``unavailable`` once the user has been idle for :data:`IDLE_AFTER_MS` (spec "Idle timeout"),
and ``currently_active`` is true within :data:`CURRENTLY_ACTIVE_MS` of the last activity. Only
the user and those sharing a room with them may see it. Sending presence to other users in
``/sync`` and over federation is not part of this service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.core.ids import UserId, server_name_of
from rocketnode.services.clock import Clock
from rocketnode.storage.ports import AccountStore, RoomStore, StateStore

PRESENCE_STATES = ("online", "unavailable", "offline")
IDLE_AFTER_MS = 5 * 60 * 1000
CURRENTLY_ACTIVE_MS = 60 * 1000
OFFLINE: dict[str, Any] = {"presence": "offline"}


@dataclass(frozen=True, slots=True)
class UserPresence:
    presence: str
    status_msg: str | None
    last_active_ts: int

    def to_json(self, now_ms: int) -> dict[str, Any]:
        """The ``GET /presence/{userId}/status`` body of this state, seen at ``now_ms``."""
        idle_ms = max(0, now_ms - self.last_active_ts)
        presence = self.presence
        if presence == "online" and idle_ms > IDLE_AFTER_MS:
            presence = "unavailable"
        result: dict[str, Any] = {"presence": presence, "last_active_ago": idle_ms}
        if self.status_msg is not None:
            result["status_msg"] = self.status_msg
        if presence == "online":
            result["currently_active"] = idle_ms < CURRENTLY_ACTIVE_MS
        return result


class PresenceService:
    def __init__(
        self, enabled: bool, server_name: str, clock: Clock, accounts: AccountStore,
        room_store: RoomStore, state: StateStore,
    ) -> None:
        self.enabled = enabled
        self._server_name = server_name
        self._clock = clock
        self._accounts = accounts
        self._room_store = room_store
        self._state = state
        self._presence: dict[str, UserPresence] = {}

    async def get(self, observer: str, user_id: str) -> dict[str, Any]:
        """``user_id``'s presence as ``observer`` may see it."""
        user_id = str(UserId.parse(user_id))
        is_local = server_name_of(user_id) == self._server_name
        if is_local and await self._accounts.get_account(user_id) is None:
            raise MatrixError(Errcode.NOT_FOUND, f"Unknown user {user_id}", 404)
        if not self.enabled:
            return dict(OFFLINE)
        if observer != user_id and not await self._share_a_room(observer, user_id):
            raise MatrixError(Errcode.FORBIDDEN, "You are not allowed to see their presence", 403)
        found = self._presence.get(user_id)
        return found.to_json(self._clock.now_ms()) if found else dict(OFFLINE)

    async def set(
        self, requester: str, user_id: str, presence: str, status_msg: str | None
    ) -> None:
        """Set the requester's own presence (discarded while presence is disabled)."""
        if requester != user_id:
            raise MatrixError(Errcode.FORBIDDEN, "You may only set your own presence", 403)
        if presence not in PRESENCE_STATES:
            raise MatrixError(Errcode.BAD_JSON, f"presence must be one of {PRESENCE_STATES}")
        if self.enabled:
            self._presence[user_id] = UserPresence(presence, status_msg, self._clock.now_ms())

    async def _share_a_room(self, observer: str, user_id: str) -> bool:
        memberships = await self._room_store.local_memberships(observer)
        joined = [m.room_id for m in memberships if m.membership == "join"]
        theirs = await self._state.get_memberships(user_id, joined) if joined else {}
        return "join" in theirs.values()
