"""A server fills the gaps in a room's history when its client paginates backwards across
them: the history from before it joined, and what happened while it was out of the room
(server-server API "Backfilling and retrieving missing events")."""

from __future__ import annotations

from typing import Any

import nio
import pytest

from rocketnode.federation import backfill as backfill_module
from tests.integration.federation.cluster import Cluster
from tests.nodes import ClientFactory
from tests.support.matrix import (
    api,
    bodies,
    eventually,
    join,
    room_path,
    send_text,
    timeline,
    wait_for_body,
    wait_for_event,
    wait_for_membership,
)

pytestmark = pytest.mark.slow
HISTORY = 120


@pytest.mark.parametrize("room_version", ["10", "12"])
async def test_late_joiner_paginates_history_from_before_it_joined(
        cluster: Cluster, make_client: ClientFactory, room_version: str) -> None:
    a, b = await cluster.start("a"), await cluster.start("b")
    alice = await make_client(a.node, "alice")
    bob = await make_client(b.node, "bob")
    created = await alice.room_create(preset=nio.RoomPreset.public_chat,
                                      room_version=room_version)  # history: "shared"
    assert isinstance(created, nio.RoomCreateResponse), created
    room_id = created.room_id
    history = [f"history {i:03d}" for i in range(HISTORY)]
    for body in history:
        await send_text(alice, room_id, body)

    await join(bob, room_id, via=[a.server_name])
    await wait_for_membership(alice, room_id, bob.user_id, "join")
    await send_text(alice, room_id, "after the join")
    await wait_for_body(bob, room_id, "after the join")

    async def everything() -> None:
        assert await bodies(bob, room_id) == [*history, "after the join"]
    await eventually(everything, what="the history backfilled on b")
    assert await bodies(alice, room_id) == await bodies(bob, room_id)


async def test_late_joiner_sees_no_history_the_room_hides_from_it(
        cluster: Cluster, make_client: ClientFactory) -> None:
    a, b = await cluster.start("a"), await cluster.start("b")
    alice = await make_client(a.node, "alice")
    bob = await make_client(b.node, "bob")
    created = await alice.room_create(preset=nio.RoomPreset.public_chat, initial_state=[
        {"type": "m.room.history_visibility", "state_key": "",
         "content": {"history_visibility": "joined"}}])
    assert isinstance(created, nio.RoomCreateResponse), created
    room_id = created.room_id
    for i in range(20):
        await send_text(alice, room_id, f"secret {i}")
    await join(bob, room_id, via=[a.server_name])
    await send_text(alice, room_id, "after the join")
    await wait_for_body(bob, room_id, "after the join")
    assert await bodies(bob, room_id) == ["after the join"]
    assert (await bodies(alice, room_id))[-1] == "after the join"


@pytest.mark.parametrize("fill_size", [None, 2])
async def test_a_server_that_left_and_rejoined_fills_the_gap_in_between(
        cluster: Cluster, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch,
        fill_size: int | None) -> None:
    if fill_size is not None:  # each remote request brings two events: many fills per page
        monkeypatch.setattr(backfill_module, "MAX_BACKFILL", fill_size)
    a, b = await cluster.start("a"), await cluster.start("b")
    alice = await make_client(a.node, "alice")
    bob = await make_client(b.node, "bob")
    created = await alice.room_create(preset=nio.RoomPreset.public_chat)  # history: "shared"
    assert isinstance(created, nio.RoomCreateResponse), created
    room_id = created.room_id
    await send_text(alice, room_id, "before")
    await join(bob, room_id, via=[a.server_name])
    await wait_for_event(bob, room_id, await send_text(alice, room_id, "while b is in"))
    left = await bob.room_leave(room_id)
    assert isinstance(left, nio.RoomLeaveResponse), left
    await wait_for_membership(alice, room_id, bob.user_id, "leave")
    # b is out of the room: it receives none of these.
    away = [f"while b is away {i:02d}" for i in range(45)]
    for body in away:
        await send_text(alice, room_id, body)
    await join(bob, room_id, via=[a.server_name])
    await wait_for_event(bob, room_id, await send_text(alice, room_id, "after the rejoin"))

    expected = ["before", "while b is in", *away, "after the rejoin"]
    assert await bodies(alice, room_id) == expected

    if fill_size is None:
        async def filled() -> None:  # small pages: several fills, each page reading on below
            assert await bodies(bob, room_id, page=10) == expected
        await eventually(filled, what="the gap filled on b")
    else:
        # A page fills at most three gaps; then it ends early, above the next, with an end
        # token from which the next page fills on.
        pages: list[list[dict[str, Any]]] = []
        query = {"dir": "b", "limit": "20"}
        while True:
            status, body = await api(bob, "GET", room_path(room_id, "messages"), query=query)
            assert status == 200, body
            pages.append(body["chunk"])
            if "end" not in body:
                break
            query["from"] = body["end"]
            assert len(pages) < 100
        assert any(len(chunk) < 20 for chunk in pages[:-1]), [len(c) for c in pages]
        shown = [e["content"]["body"] for chunk in reversed(pages) for e in reversed(chunk)
                 if e["type"] == "m.room.message"]
        assert shown == expected
    # The events sit where they happened, between the leave and the rejoin, in the same order
    # as on a.
    on_a = [e["event_id"] for e in await timeline(alice, room_id)]
    on_b = [e["event_id"] for e in await timeline(bob, room_id)]
    assert on_b == on_a


async def test_a_gap_no_server_can_fill_is_passed(
        cluster: Cluster, make_client: ClientFactory) -> None:
    a, b = await cluster.start("a"), await cluster.start("b")
    alice = await make_client(a.node, "alice")
    bob = await make_client(b.node, "bob")
    created = await alice.room_create(preset=nio.RoomPreset.public_chat)
    assert isinstance(created, nio.RoomCreateResponse), created
    room_id = created.room_id
    await send_text(alice, room_id, "before")
    await join(bob, room_id, via=[a.server_name])
    await wait_for_event(bob, room_id, await send_text(alice, room_id, "while b is in"))
    assert isinstance(await bob.room_leave(room_id), nio.RoomLeaveResponse)
    await wait_for_membership(alice, room_id, bob.user_id, "leave")
    for i in range(5):
        await send_text(alice, room_id, f"while b is away {i}")
    await join(bob, room_id, via=[a.server_name])
    await wait_for_event(bob, room_id, await send_text(alice, room_id, "after the rejoin"))

    # The only server that has the missing history is down: b's client still reads all b has,
    # across both gaps, page after page, and again (the gaps remembered as unfillable).
    await a.stop()
    for page in (3, 500, 3):
        assert await bodies(bob, room_id, page=page) == ["while b is in", "after the rejoin"]

