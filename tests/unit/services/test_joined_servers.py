"""The room service keeps the servers joined to a room with its snapshot, in step with
membership changes, and agrees with a fresh count from storage."""

from __future__ import annotations

import nio

from rocketnode.app import Node
from tests.nodes import ClientFactory


async def test_joined_servers_follow_joins_and_leaves(node: Node,
                                                      make_client: ClientFactory) -> None:
    rooms = node.services.rooms
    state = node.services.stores.state
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    created = await alice.room_create(preset=nio.RoomPreset.public_chat)
    assert isinstance(created, nio.RoomCreateResponse)
    room_id = created.room_id
    here = node.config.server_name
    assert await rooms.joined_servers(room_id) == {here}
    snapshot = await rooms.states.snapshot(room_id)
    assert snapshot is not None and snapshot.joined_per_server == {here: 1}

    assert isinstance(await bob.join(room_id), nio.JoinResponse)
    assert snapshot.joined_per_server == {here: 2}  # counted as the join was stored
    assert isinstance(await alice.room_leave(room_id), nio.RoomLeaveResponse)
    assert snapshot.joined_per_server == {here: 1}
    assert await rooms.joined_servers(room_id) == await state.get_joined_servers(room_id)
    assert isinstance(await bob.room_leave(room_id), nio.RoomLeaveResponse)
    assert snapshot.joined_per_server == {here: 0}
    assert await rooms.joined_servers(room_id) == set() == await state.get_joined_servers(room_id)

    rooms.states.forget(room_id)  # a reload counts from storage again
    assert await rooms.joined_servers(room_id) == set()
