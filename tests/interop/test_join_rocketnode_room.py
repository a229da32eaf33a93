"""Scenario 2: a RocketNode user creates a room (default version, 12); a Synapse user joins
over federation, by alias and by room ID with ``server_name``; messages go both ways and both
servers show the same timeline in the same order.

Spec: server-server API "Joining Rooms" (RocketNode as the resident server: make_join,
send_join v2 and its ``state``/``auth_chain``/``servers_in_room``), room version 12.
"""

from __future__ import annotations

import nio
import pytest

from tests.interop.conftest import Servers
from tests.support.matrix import (
    converse,
    create_room,
    get_state_event,
    join,
    same_timeline_from,
    timeline,
    wait_for_membership,
    wait_for_same_state,
)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]


async def test_synapse_user_joins_rocketnode_room(servers: Servers) -> None:
    synapse, rocket = servers.synapse, servers.rocket
    alice = await servers.user(rocket, "alice")
    bob = await servers.user(synapse, "bob")
    room_id = await create_room(alice, room_alias_name="garden", name="Garden",
                                topic="RocketNode's room")
    create = await get_state_event(alice, room_id, "m.room.create")
    assert create is not None and create.get("room_version") == "12", create
    alias = f"#garden:{rocket.server_name}"

    assert await join(bob, alias) == room_id
    await wait_for_membership(alice, room_id, bob.user_id, "join")
    name = await get_state_event(bob, room_id, "m.room.name")
    assert name == {"name": "Garden"}, name
    expected: list[str] = []
    await converse(bob, alice, room_id, expected)
    first_join = next(e["event_id"] for e in await timeline(alice, room_id)
                      if e["type"] == "m.room.member" and e["state_key"] == bob.user_id)
    ids = await same_timeline_from([alice, bob], room_id, first_join)
    assert len(ids) == 1 + len(expected)
    await wait_for_same_state([alice, bob], room_id)

    left = await bob.room_leave(room_id)
    assert isinstance(left, nio.RoomLeaveResponse), left
    await wait_for_membership(alice, room_id, bob.user_id, "leave")
    assert await join(bob, room_id, via=[rocket.server_name]) == room_id
    await wait_for_membership(alice, room_id, bob.user_id, "join")
    await converse(alice, bob, room_id, expected, turns=2)
    ids = await same_timeline_from([alice, bob], room_id, first_join)
    assert len(ids) == 1 + len(expected) + 2
    await wait_for_same_state([alice, bob], room_id)
