"""Room creation and membership through a real node, driven by matrix-nio."""

from __future__ import annotations

import nio

from rocketnode.app import Node
from tests.nodes import ClientFactory


async def test_create_invite_join_send(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    created = await alice.room_create(name="Lobby", topic="Hello")
    assert isinstance(created, nio.RoomCreateResponse), created
    assert isinstance(await alice.room_invite(created.room_id, bob.user_id),
                      nio.RoomInviteResponse)
    joined = await bob.join(created.room_id)
    assert isinstance(joined, nio.JoinResponse), joined
    sent = await bob.room_send(created.room_id, "m.room.message",
                               {"msgtype": "m.text", "body": "hi"})
    assert isinstance(sent, nio.RoomSendResponse), sent
    rooms = await bob.joined_rooms()
    assert isinstance(rooms, nio.JoinedRoomsResponse)
    assert rooms.rooms == [created.room_id]


async def test_member_cannot_kick_creator(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    created = await alice.room_create(preset=nio.RoomPreset.public_chat)
    assert isinstance(created, nio.RoomCreateResponse)
    assert isinstance(await bob.join(created.room_id), nio.JoinResponse)
    kicked = await bob.room_kick(created.room_id, alice.user_id)
    assert isinstance(kicked, nio.RoomKickError)
    assert kicked.status_code == "M_FORBIDDEN"


async def test_uninvited_user_cannot_join_private_room(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    eve = await make_client(node, "eve")
    created = await alice.room_create()
    assert isinstance(created, nio.RoomCreateResponse)
    joined = await eve.join(created.room_id)
    assert isinstance(joined, nio.JoinError)
    assert joined.status_code == "M_FORBIDDEN"
