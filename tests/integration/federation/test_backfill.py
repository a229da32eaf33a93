"""A server that joins late fills in the history from before its join when its client
paginates backwards (server-server API "Backfilling and retrieving missing events")."""

from __future__ import annotations

import nio
import pytest

from tests.integration.federation.cluster import (
    Cluster,
    bodies,
    eventually,
    join,
    send_text,
    wait_for_body,
    wait_for_membership,
)
from tests.nodes import ClientFactory

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
