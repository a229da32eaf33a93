"""SyncService with its storage and room builder faked: the upper bound, long-poll races and
isolation of a failing room."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

from rocketnode.services.clock import SystemClock
from rocketnode.services.notifier import Notifier
from rocketnode.services.stream_tokens import SyncToken
from rocketnode.services.sync import SyncRequest, SyncService
from rocketnode.services.sync_rooms import RoomExtras, RoomWindow, SyncContext
from rocketnode.services.typing import TypingService
from rocketnode.storage.records import AccountDataItem, LocalMembership, Receipt

USER = "@alice:a"


class FakeStores:
    """The few reads SyncService makes of the event, room and client data stores."""

    def __init__(self, position: int, memberships: list[LocalMembership]) -> None:
        self.position = position
        self.memberships = memberships
        self.event_positions: dict[str, list[int]] = {}
        self.after_position_read: list[Callable[[], None]] = []

    async def current_stream_ordering(self) -> int:
        position = self.position
        hooks, self.after_position_read = self.after_position_read, []
        for hook in hooks:
            hook()
        return position

    async def local_memberships(self, user_id: str) -> list[LocalMembership]:
        return list(self.memberships)

    async def memberships_at_committed_position(
        self, user_id: str
    ) -> tuple[int, list[LocalMembership]]:
        return await self.current_stream_ordering(), list(self.memberships)

    async def local_membership(self, user_id: str, room_id: str) -> None:
        return None

    async def account_data_since(self, user_id: str, after: int, upto: int
                                 ) -> list[AccountDataItem]:
        return []

    async def receipts_for_rooms(self, room_ids: Iterable[str], after: int, upto: int
                                 ) -> list[Receipt]:
        return []

    async def rooms_with_new_events(self, room_ids: Iterable[str], after: int, upto: int
                                    ) -> set[str]:
        return {
            room_id for room_id in room_ids
            if any(after < p <= upto for p in self.event_positions.get(room_id, []))
        }


class FakeSyncRooms:
    """Builds a one-key section per room, or fails for the rooms in ``failing``."""

    def __init__(self) -> None:
        self.failing: set[str] = set()
        self.windows: list[RoomWindow] = []

    async def joined(self, ctx: SyncContext, window: RoomWindow, extras: RoomExtras
                     ) -> dict[str, Any] | None:
        self.windows.append(window)
        if window.room_id in self.failing:
            raise RuntimeError("broken room")
        return {"timeline": {"events": [], "after": window.after, "upto": window.upto}}


def joined(room_id: str, stream: int) -> LocalMembership:
    return LocalMembership(USER, room_id, "join", f"$join-{room_id}", stream)


def service(stores: FakeStores, rooms: FakeSyncRooms, notifier: Notifier) -> SyncService:
    clock = SystemClock()
    typing = TypingService(clock, notifier, stores)  # type: ignore[arg-type]
    return SyncService(clock, notifier, typing, stores, stores, stores,  # type: ignore[arg-type]
                       rooms)  # type: ignore[arg-type]


async def test_upper_bound_covers_every_membership_row_read() -> None:
    stores = FakeStores(10, [joined("!r:a", 12)])
    rooms = FakeSyncRooms()
    sync = service(stores, rooms, Notifier(10))
    body = await sync.sync(SyncRequest(USER, "DEV"))
    assert SyncToken.parse(body["next_batch"]).stream == 12
    assert [w.upto for w in rooms.windows] == [12]


async def test_a_failing_room_is_left_out_and_the_others_still_sync() -> None:
    stores = FakeStores(5, [joined("!good:a", 2), joined("!bad:a", 3)])
    rooms = FakeSyncRooms()
    rooms.failing.add("!bad:a")
    body = await service(stores, rooms, Notifier(5)).sync(SyncRequest(USER, "DEV"))
    assert list(body["rooms"]["join"]) == ["!good:a"]


async def test_a_commit_notified_during_the_computation_is_not_slept_through() -> None:
    stores = FakeStores(5, [joined("!r:a", 2)])
    notifier = Notifier(5)
    sync = service(stores, FakeSyncRooms(), notifier)
    since = SyncToken.parse((await sync.sync(SyncRequest(USER, "DEV")))["next_batch"])

    def commit_while_computing() -> None:
        # an event lands just after the sync read the position, and its notify() fires before
        # the sync starts waiting: only the position check before sleeping can catch it
        stores.position = 6
        stores.event_positions["!r:a"] = [6]
        notifier.notify(6, room_ids=["!r:a"])

    stores.after_position_read.append(commit_while_computing)
    started = time.monotonic()
    body = await asyncio.wait_for(
        sync.sync(SyncRequest(USER, "DEV", since, timeout_ms=3000)), 5
    )
    assert time.monotonic() - started < 1.5
    assert body["rooms"]["join"]["!r:a"]["timeline"]["after"] == 5
    assert SyncToken.parse(body["next_batch"]).stream == 6


async def test_closing_the_notifier_answers_a_waiting_long_poll_at_once() -> None:
    stores = FakeStores(5, [joined("!r:a", 2)])
    notifier = Notifier(5)
    sync = service(stores, FakeSyncRooms(), notifier)
    since = SyncToken.parse((await sync.sync(SyncRequest(USER, "DEV")))["next_batch"])
    waiting = asyncio.create_task(sync.sync(SyncRequest(USER, "DEV", since, timeout_ms=30_000)))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    started = time.monotonic()
    notifier.close()
    body = await asyncio.wait_for(waiting, 2)
    assert time.monotonic() - started < 1
    assert SyncToken.parse(body["next_batch"]).stream == 5
    again = await asyncio.wait_for(
        sync.sync(SyncRequest(USER, "DEV", since, timeout_ms=30_000)), 2)
    assert again["rooms"]["join"] == {}
