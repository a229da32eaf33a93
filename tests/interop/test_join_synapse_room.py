"""Scenario 1: a Synapse user creates rooms of version 10, 11 and 12; a RocketNode user joins
over federation, by alias and by room ID with ``server_name``; messages go both ways and both
servers show the same timeline in the same order.

Spec: server-server API "Joining Rooms" (make_join / send_join v2), client-server API
"POST /_matrix/client/v3/join/{roomIdOrAlias}" (``server_name`` / ``via``), room versions 10–12.
"""

from __future__ import annotations

import nio
import pytest

from tests.interop.conftest import Servers
from tests.support.matrix import (
    converse,
    create_room,
    join,
    same_timeline_from,
    timeline,
    wait_for_membership,
    wait_for_same_state,
)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]


@pytest.mark.parametrize("room_version", ["10", "11", "12"])
async def test_rocketnode_user_joins_synapse_room(servers: Servers, room_version: str) -> None:
    synapse, rocket = servers.synapse, servers.rocket
    alice = await servers.user(synapse, f"alice_v{room_version}")
    bob = await servers.user(rocket, f"bob_v{room_version}")
    alias_name = f"lobby-v{room_version}"
    room_id = await create_room(alice, room_version=room_version, room_alias_name=alias_name,
                                name=f"Lobby v{room_version}")
    alias = f"#{alias_name}:{synapse.server_name}"

    assert await join(bob, alias) == room_id  # by alias: the alias' server is asked
    await wait_for_membership(alice, room_id, bob.user_id, "join")
    expected: list[str] = []
    await converse(alice, bob, room_id, expected)
    first_join = next(e["event_id"] for e in await timeline(alice, room_id)
                      if e["type"] == "m.room.member" and e["state_key"] == bob.user_id)
    ids = await same_timeline_from([alice, bob], room_id, first_join)
    assert len(ids) == 1 + len(expected)
    await wait_for_same_state([alice, bob], room_id)

    left = await bob.room_leave(room_id)
    assert isinstance(left, nio.RoomLeaveResponse), left
    await wait_for_membership(alice, room_id, bob.user_id, "leave")
    # by ID: a v12 room ID names no server, so the client passes server_name
    assert await join(bob, room_id, via=[synapse.server_name]) == room_id
    await wait_for_membership(alice, room_id, bob.user_id, "join")
    await converse(bob, alice, room_id, expected, turns=2)
    ids = await same_timeline_from([alice, bob], room_id, first_join)
    assert len(ids) == 1 + len(expected) + 2  # the leave and the second join
    await wait_for_same_state([alice, bob], room_id)
