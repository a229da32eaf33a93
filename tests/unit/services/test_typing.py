"""Typing notices in memory: changes, expiry, positions, bounds and the federation hook."""

from __future__ import annotations

import asyncio

import pytest

from rocketnode.core.errors import MatrixError
from rocketnode.services.notifier import Notifier
from rocketnode.services.typing import MAX_TIMEOUT_MS, TypingChange, TypingService
from rocketnode.storage.records import LocalMembership

ROOM, OTHER = "!room:a", "!other:a"
ALICE, BOB = "@alice:a", "@bob:a"


class FakeClock:
    def __init__(self) -> None:
        self.seconds = 1000.0

    def now_ms(self) -> int:
        return int(self.seconds * 1000)

    def monotonic(self) -> float:
        return self.seconds

    async def sleep(self, seconds: float) -> None:
        self.seconds += seconds


class Memberships:
    """The one RoomStore method the typing service reads."""

    def __init__(self, joined: set[tuple[str, str]]) -> None:
        self.joined = joined

    async def local_membership(self, user_id: str, room_id: str) -> LocalMembership | None:
        if (user_id, room_id) not in self.joined:
            return None
        return LocalMembership(user_id, room_id, "join", "$join", 1)


def service(clock: FakeClock, **limits: int) -> tuple[TypingService, Notifier]:
    notifier = Notifier()
    rooms = Memberships({(ALICE, ROOM), (BOB, ROOM)})
    return TypingService(clock, notifier, rooms, **limits), notifier  # type: ignore[arg-type]


def test_typing_appears_then_expires() -> None:
    clock = FakeClock()
    typing, notifier = service(clock)
    start = typing.position
    typing.set_typing(ROOM, ALICE, True, 5000)
    assert typing.typing_users(ROOM) == [ALICE]
    assert typing.changed_since(start, [ROOM, OTHER]) == {ROOM: [ALICE]}
    assert notifier.typing_position == 1
    seen = typing.position
    clock.seconds += 4.9
    assert typing.expire() == []
    clock.seconds += 0.2
    assert typing.expire() == [ROOM]
    assert typing.typing_users(ROOM) == []
    assert typing.changed_since(seen, [ROOM]) == {ROOM: []}
    assert typing.changed_since(typing.position, [ROOM]) == {}


def test_renewing_a_notice_is_not_a_change_but_moves_the_expiry() -> None:
    clock = FakeClock()
    typing, _ = service(clock)
    typing.set_typing(ROOM, ALICE, True, 1000)
    seen = typing.position
    clock.seconds += 0.9
    typing.set_typing(ROOM, ALICE, True, 1000)
    assert typing.position == seen
    clock.seconds += 0.5
    typing.expire()
    assert typing.typing_users(ROOM) == [ALICE]
    assert typing.next_expiry_in() == pytest.approx(0.5)


def test_stopping_is_a_change_and_stopping_twice_is_not() -> None:
    typing, _ = service(FakeClock())
    typing.set_typing(ROOM, ALICE, True, 30_000)
    typing.set_typing(ROOM, ALICE, False, 0)
    after_stop = typing.position
    typing.set_typing(ROOM, ALICE, False, 0)
    assert typing.position == after_stop
    assert typing.typing_users(ROOM) == []


def test_timeouts_are_capped() -> None:
    clock = FakeClock()
    typing, _ = service(clock)
    typing.set_typing(ROOM, ALICE, True, 10**9)
    assert typing.next_expiry_in() == pytest.approx(MAX_TIMEOUT_MS / 1000)


def test_an_initial_sync_sees_only_rooms_with_typists() -> None:
    typing, _ = service(FakeClock())
    typing.set_typing(ROOM, ALICE, True, 30_000)
    assert typing.changed_since(None, [ROOM, OTHER]) == {ROOM: [ALICE]}


def test_a_token_from_another_run_gets_every_room() -> None:
    clock = FakeClock()
    old, _ = service(clock)
    old.set_typing(ROOM, ALICE, True, 30_000)
    old_token = old.position
    clock.seconds += 1  # the node restarts a second later
    fresh, _ = service(clock)
    assert fresh.position > old_token
    assert fresh.changed_since(old_token, [ROOM, OTHER]) == {ROOM: [], OTHER: []}


def test_forgotten_changes_raise_the_horizon() -> None:
    typing, _ = service(FakeClock(), max_rooms=2)
    token = typing.position
    for index in range(4):
        room_id = f"!r{index}:a"
        typing.set_typing(room_id, ALICE, True, 30_000)
        typing.set_typing(room_id, ALICE, False, 0)
    # only two change records are kept; a token older than the forgotten ones gets every room
    assert typing.changed_since(token, ["!r0:a", "!r3:a"]) == {"!r0:a": [], "!r3:a": []}
    recent = typing.position
    assert typing.changed_since(recent, ["!r0:a", "!r3:a"]) == {}


def test_a_full_room_ignores_new_typists() -> None:
    typing, _ = service(FakeClock(), max_typing_per_room=1)
    typing.set_typing(ROOM, ALICE, True, 30_000)
    typing.set_typing(ROOM, BOB, True, 30_000)
    assert typing.typing_users(ROOM) == [ALICE]


def test_listeners_hear_local_changes_and_expiries_only() -> None:
    clock = FakeClock()
    typing, _ = service(clock)
    heard: list[TypingChange] = []
    typing.subscribe(heard.append)
    typing.set_typing(ROOM, ALICE, True, 1000)
    typing.set_typing(ROOM, "@carol:remote", True, 1000, remote=True)
    clock.seconds += 2
    typing.expire()
    assert heard == [
        TypingChange(ROOM, ALICE, True, 1000),
        TypingChange(ROOM, ALICE, False, 0),
    ]


async def test_only_joined_users_may_type() -> None:
    typing, _ = service(FakeClock())
    await typing.set_local_typing(ALICE, ROOM, True, None)
    assert typing.typing_users(ROOM) == [ALICE]
    with pytest.raises(MatrixError) as caught:
        await typing.set_local_typing(ALICE, OTHER, True, None)
    assert caught.value.errcode == "M_FORBIDDEN"


async def test_the_expiry_task_expires_a_new_notice_and_wakes_syncs() -> None:
    clock = FakeClock()
    typing, notifier = service(clock)
    task = asyncio.create_task(typing.run_expiry())
    try:
        await asyncio.sleep(0)  # the task now sleeps with nothing to expire
        typing.set_typing(ROOM, ALICE, True, 50)
        started = typing.position
        clock.seconds += 1  # past the expiry: the new notice must have woken the task
        woken = await notifier.wait(BOB, [ROOM], 2.0)
        assert woken
        assert typing.position == started + 1
        assert typing.changed_since(started, [ROOM]) == {ROOM: []}
    finally:
        task.cancel()
