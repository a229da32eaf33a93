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


async def test_state_events_carry_what_they_replaced(node: Node, make_client: ClientFactory
                                                    ) -> None:
    alice = await make_client(node, "alice")
    created = await alice.room_create(name="First name")
    assert isinstance(created, nio.RoomCreateResponse)
    renamed = await alice.room_put_state(created.room_id, "m.room.name", {"name": "Second"})
    assert isinstance(renamed, nio.RoomPutStateResponse)
    await alice.set_displayname("Alice A.")
    page = await alice.room_messages(created.room_id, start="", limit=50)
    assert isinstance(page, nio.RoomMessagesResponse)
    by_id = {e.event_id: e.source for e in page.chunk}
    rename = by_id[renamed.event_id]
    assert rename["unsigned"]["prev_content"] == {"name": "First name"}
    first_name_id = rename["unsigned"]["replaces_state"]
    assert by_id[first_name_id]["content"] == {"name": "First name"}
    assert "prev_content" not in by_id[first_name_id]["unsigned"]
    profile_change = next(
        e for e in page.chunk
        if e.source["type"] == "m.room.member" and e.source["content"].get("displayname")
        == "Alice A."
    )
    previous = profile_change.source["unsigned"]["prev_content"]
    assert previous["membership"] == "join" and previous.get("displayname") != "Alice A."
