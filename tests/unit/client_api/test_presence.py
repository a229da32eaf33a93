"""Presence through a real node: disabled (the default: answered, nothing kept) and enabled
(kept in memory, visible to who shares a room, idle after five minutes)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import nio
import pytest

from rocketnode.app import Node
from tests.nodes import ClientFactory, node_config
from tests.unit.client_api.client_http import call, errcode, path


class ManualClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000_000

    def now_ms(self) -> int:
        return self.now

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def presence_node(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Node]:
    started = Node(node_config(tmp_path / "presence", presence_enabled=True), clock=clock)
    await started.start()
    try:
        yield started
    finally:
        await started.stop()


async def test_disabled_presence_answers_offline_and_keeps_nothing(
    node: Node, make_client: ClientFactory
) -> None:
    assert node.config.presence_enabled is False
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    assert isinstance(await alice.set_presence("online", "here"), nio.PresenceSetResponse)
    for viewer in (alice, bob):
        seen = await viewer.get_presence(alice.user_id)
        assert isinstance(seen, nio.PresenceGetResponse), seen
        assert (seen.presence, seen.status_msg, seen.last_active_ago) == ("offline", None, None)
    status, body = await call(node, "GET", path("presence", alice.user_id, "status"), bob)
    assert (status, body) == (200, {"presence": "offline"})


async def test_presence_errors(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    own = path("presence", alice.user_id, "status")
    assert await errcode(node, "PUT", own, bob, {"presence": "online"}) == (403, "M_FORBIDDEN")
    assert await errcode(node, "PUT", own, alice, {"presence": "busy"}) == (400, "M_BAD_JSON")
    assert await errcode(node, "PUT", own, alice, {}) == (400, "M_MISSING_PARAM")
    assert await errcode(node, "PUT", own, alice, {"presence": "online", "status_msg": 5}) == (
        400, "M_BAD_JSON")
    assert await errcode(node, "PUT", own, alice, raw_body=b"online") == (400, "M_NOT_JSON")
    assert await errcode(node, "GET", own) == (401, "M_MISSING_TOKEN")
    unknown = path("presence", f"@nobody:{node.config.server_name}", "status")
    assert await errcode(node, "GET", unknown, alice) == (404, "M_NOT_FOUND")
    assert await errcode(node, "GET", path("presence", "nobody", "status"), alice) == (
        400, "M_INVALID_PARAM")


async def test_enabled_presence_is_kept_and_shared_with_room_members(
    presence_node: Node, make_client: ClientFactory
) -> None:
    node = presence_node
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    own = path("presence", alice.user_id, "status")
    assert (await call(node, "GET", own, alice)) == (200, {"presence": "offline"})
    assert isinstance(await alice.set_presence("online", "at lunch"), nio.PresenceSetResponse)
    assert (await call(node, "GET", own, alice)) == (200, {
        "presence": "online", "status_msg": "at lunch", "last_active_ago": 0,
        "currently_active": True,
    })
    # bob shares no room with alice yet.
    assert await errcode(node, "GET", own, bob) == (403, "M_FORBIDDEN")
    room = await alice.room_create(preset=nio.RoomPreset.public_chat)
    assert isinstance(room, nio.RoomCreateResponse)
    assert isinstance(await bob.join(room.room_id), nio.JoinResponse)
    seen = await bob.get_presence(alice.user_id)
    assert isinstance(seen, nio.PresenceGetResponse), seen
    assert (seen.presence, seen.status_msg) == ("online", "at lunch")

    assert isinstance(await alice.set_presence("unavailable"), nio.PresenceSetResponse)
    status, body = await call(node, "GET", own, bob)
    assert (status, body) == (200, {"presence": "unavailable", "last_active_ago": 0})


async def test_online_turns_unavailable_when_idle(
    presence_node: Node, make_client: ClientFactory, clock: ManualClock
) -> None:
    alice = await make_client(presence_node, "alice")
    own = path("presence", alice.user_id, "status")
    assert isinstance(await alice.set_presence("online"), nio.PresenceSetResponse)
    clock.now += 2 * 60 * 1000
    assert (await call(presence_node, "GET", own, alice)) == (200, {
        "presence": "online", "last_active_ago": 120_000, "currently_active": False})
    clock.now += 4 * 60 * 1000
    assert (await call(presence_node, "GET", own, alice)) == (200, {
        "presence": "unavailable", "last_active_ago": 360_000})
    assert isinstance(await alice.set_presence("online"), nio.PresenceSetResponse)
    status, body = await call(presence_node, "GET", own, alice)
    assert (status, body["presence"], body["last_active_ago"]) == (200, "online", 0)
