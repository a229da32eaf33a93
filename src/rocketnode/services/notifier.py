"""Wakes waiting /sync long-polls the moment something they care about happens.

Writers call :meth:`Notifier.notify` after a commit with the rooms and users concerned; each
waiter is woken only if it watches one of them. No polling loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable


class _Waiter:
    __slots__ = ("event", "room_ids", "user_id")

    def __init__(self, user_id: str, room_ids: frozenset[str]) -> None:
        self.user_id = user_id
        self.room_ids = room_ids
        self.event = asyncio.Event()


class Notifier:
    def __init__(self, position: int = 0) -> None:
        self.position = position
        """Highest committed stream position (events, receipts, account data)."""
        self.typing_position = 0
        """Position of the in-memory typing stream."""
        self._by_user: dict[str, set[_Waiter]] = {}
        self._by_room: dict[str, set[_Waiter]] = {}
        self.closing = False
        """Set when the node shuts down: long-polls answer at once with what they have."""

    def close(self) -> None:
        """Wake every waiter and make later waits return at once (graceful shutdown)."""
        self.closing = True
        for waiters in self._by_user.values():
            for waiter in waiters:
                waiter.event.set()

    def notify(
        self,
        position: int | None = None,
        room_ids: Iterable[str] = (),
        user_ids: Iterable[str] = (),
        typing: bool = False,
    ) -> None:
        if position is not None and position > self.position:
            self.position = position
        if typing:
            self.typing_position += 1
        woken: set[_Waiter] = set()
        for room_id in room_ids:
            woken.update(self._by_room.get(room_id, ()))
        for user_id in user_ids:
            woken.update(self._by_user.get(user_id, ()))
        for waiter in woken:
            waiter.event.set()

    async def wait(self, user_id: str, room_ids: Iterable[str], timeout_s: float) -> bool:
        """Wait until something for ``user_id`` or ``room_ids`` happens; False on timeout."""
        if self.closing:
            return False
        waiter = _Waiter(user_id, frozenset(room_ids))
        self._by_user.setdefault(user_id, set()).add(waiter)
        for room_id in waiter.room_ids:
            self._by_room.setdefault(room_id, set()).add(waiter)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.event.wait(), timeout_s)
            return waiter.event.is_set()
        finally:
            self._discard(waiter)

    def _discard(self, waiter: _Waiter) -> None:
        _remove(self._by_user, waiter.user_id, waiter)
        for room_id in waiter.room_ids:
            _remove(self._by_room, room_id, waiter)

    @property
    def waiting(self) -> int:
        return sum(len(w) for w in self._by_user.values())


def _remove(index: dict[str, set[_Waiter]], key: str, waiter: _Waiter) -> None:
    waiters = index.get(key)
    if waiters is not None:
        waiters.discard(waiter)
        if not waiters:
            del index[key]
