"""Typing notifications (client-server API "Typing Notifications"), kept in memory only.

Each room holds the users typing in it with the time their notice expires. Every change bumps
the typing *position*, which /sync tokens carry; a room remembers the position of its last
change, so an incremental sync sends ``m.typing`` only for rooms whose list changed.

* Positions start at the clock's milliseconds when the service is built, so a token from a
  previous run (always lower) is recognised by :meth:`TypingService.changed_since` as "older
  than what I remember" and answered with every room.
* Memory is bounded: at most ``max_rooms`` rooms tracked and ``max_typing_per_room`` typists per
  room; the oldest change records are forgotten first (raising the horizon below which a token
  again gets every room).
* Expiry runs in :meth:`run_expiry`, a background task that ``app.py`` starts and stops.

Federation hooks: remote typing comes in through :meth:`set_typing` with ``remote=True``;
changes of local users (explicit, and expiries) go to the callbacks registered with
:meth:`subscribe`, which the federation layer turns into ``m.typing`` EDUs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.services.clock import Clock
from rocketnode.services.notifier import Notifier
from rocketnode.storage.ports import RoomStore

logger = logging.getLogger(__name__)

MAX_TIMEOUT_MS = 120_000
DEFAULT_TIMEOUT_MS = 30_000
MAX_ROOMS = 10_000
MAX_TYPING_PER_ROOM = 100


@dataclass(frozen=True, slots=True)
class TypingChange:
    """A local user started or stopped typing (for federation)."""

    room_id: str
    user_id: str
    typing: bool
    timeout_ms: int


@dataclass(slots=True)
class _Typist:
    expires_at: float
    remote: bool


TypingListener = Callable[[TypingChange], None]


class TypingService:
    def __init__(
        self, clock: Clock, notifier: Notifier, rooms: RoomStore,
        max_rooms: int = MAX_ROOMS, max_typing_per_room: int = MAX_TYPING_PER_ROOM,
    ) -> None:
        self._clock = clock
        self._notifier = notifier
        self._rooms = rooms
        self._max_rooms = max_rooms
        self._max_per_room = max_typing_per_room
        self._position = clock.now_ms()
        self._horizon = self._position
        """Tokens below this may have missed changes we no longer remember."""
        self._typing: dict[str, dict[str, _Typist]] = {}
        self._changed_at: dict[str, int] = {}
        self._listeners: list[TypingListener] = []
        self._wakeup = asyncio.Event()

    @property
    def position(self) -> int:
        return self._position

    def subscribe(self, listener: TypingListener) -> None:
        """Call ``listener`` for every change of a local user's typing state."""
        self._listeners.append(listener)

    # -- changes -----------------------------------------------------------------------------

    async def set_local_typing(
        self, user_id: str, room_id: str, typing: bool, timeout_ms: int | None
    ) -> None:
        """A local client's PUT /typing: the user must be joined to the room."""
        membership = await self._rooms.local_membership(user_id, room_id)
        if membership is None or membership.membership != "join":
            raise MatrixError(Errcode.FORBIDDEN, "You are not joined to this room", 403)
        self.set_typing(
            room_id, user_id, typing, DEFAULT_TIMEOUT_MS if timeout_ms is None else timeout_ms
        )

    def set_typing(
        self, room_id: str, user_id: str, typing: bool, timeout_ms: int, remote: bool = False
    ) -> None:
        """Mark ``user_id`` as typing in ``room_id`` for ``timeout_ms`` (or as stopped)."""
        timeout_ms = max(0, min(timeout_ms, MAX_TIMEOUT_MS))
        room = self._typing.get(room_id)
        if not typing or timeout_ms == 0:
            if room is None or room.pop(user_id, None) is None:
                return
            if not room:
                del self._typing[room_id]
        else:
            expires_at = self._clock.monotonic() + timeout_ms / 1000
            if room is None:
                room = self._typing[room_id] = {}
            was_typing = user_id in room
            if not was_typing and len(room) >= self._max_per_room:
                logger.info("Typing list of %s is full; ignoring a notice", room_id)
                return
            room[user_id] = _Typist(expires_at, remote)
            self._wakeup.set()
            if was_typing:
                return  # only the expiry moved: nothing for clients to see
        self._changed(room_id)
        if not remote:
            self._tell_listeners(TypingChange(room_id, user_id, typing, timeout_ms))

    def _changed(self, room_id: str) -> None:
        self._position += 1
        self._changed_at.pop(room_id, None)
        self._changed_at[room_id] = self._position
        self._forget_overflow()
        self._notifier.notify(room_ids=[room_id], typing=True)

    def _forget_overflow(self) -> None:
        """Drop the oldest change records of rooms nobody types in, beyond ``max_rooms``."""
        excess = len(self._changed_at) - self._max_rooms
        if excess <= 0:
            return
        for room_id in list(self._changed_at):
            if excess <= 0:
                break
            if room_id in self._typing:
                continue
            self._horizon = max(self._horizon, self._changed_at.pop(room_id))
            excess -= 1

    def _tell_listeners(self, change: TypingChange) -> None:
        for listener in self._listeners:
            try:
                listener(change)
            except Exception:
                logger.exception("Typing listener failed")

    # -- expiry ------------------------------------------------------------------------------

    def expire(self) -> list[str]:
        """Remove every notice that has expired; return the rooms that changed."""
        now = self._clock.monotonic()
        changed = []
        for room_id, room in list(self._typing.items()):
            expired = [user_id for user_id, t in room.items() if t.expires_at <= now]
            for user_id in expired:
                typist = room.pop(user_id)
                if not typist.remote:
                    self._tell_listeners(TypingChange(room_id, user_id, False, 0))
            if not room:
                del self._typing[room_id]
            if expired:
                changed.append(room_id)
                self._changed(room_id)
        return changed

    def next_expiry_in(self) -> float | None:
        """Seconds until the next notice expires (None if nobody is typing)."""
        soonest = min(
            (t.expires_at for room in self._typing.values() for t in room.values()),
            default=None,
        )
        return None if soonest is None else max(0.0, soonest - self._clock.monotonic())

    async def run_expiry(self) -> None:
        """Expire notices as they time out (a background task owned by ``app.py``)."""
        while True:
            self._wakeup.clear()
            delay = self.next_expiry_in()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), delay)
            self.expire()

    # -- reads -------------------------------------------------------------------------------

    def typing_users(self, room_id: str) -> list[str]:
        """Who is typing in ``room_id`` now (expired notices left out), sorted."""
        now = self._clock.monotonic()
        room = self._typing.get(room_id, {})
        return sorted(user_id for user_id, t in room.items() if t.expires_at > now)

    def changed_since(self, position: int | None, room_ids: Iterable[str]) -> dict[str, list[str]]:
        """``room_id -> typing users`` for the rooms of ``room_ids`` to report after ``position``.

        ``None`` (an initial sync) gives the rooms where someone is typing; a position we cannot
        vouch for (from another run, or older than what we remember) gives every room.
        """
        wanted = set(room_ids)
        if position is None:
            rooms: Iterable[str] = (r for r in self._typing if r in wanted)
        elif position < self._horizon or position > self._position:
            rooms = wanted
        else:
            rooms = (r for r, at in self._changed_at.items() if at > position and r in wanted)
        return {room_id: self.typing_users(room_id) for room_id in rooms}
