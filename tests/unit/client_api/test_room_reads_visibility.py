"""History visibility through a real node (client-server API "Room History Visibility"):
who sees which events through /messages, /event, /context, /state and /members."""

from __future__ import annotations

import nio

from rocketnode.app import Node
from tests.nodes import ClientFactory
from tests.unit.client_api.room_reads_helpers import (
    bodies,
    paginate_all,
    public_room,
    raw_get,
    send_text,
    set_state,
)

BACK, FORWARD = nio.MessageDirection.back, nio.MessageDirection.front


async def _history_of(client: nio.AsyncClient, room_id: str) -> list[str]:
    events, _pages = await paginate_all(client, room_id, BACK, 3)
    return bodies(events)[::-1]


async def test_joined_visibility_hides_history_before_the_join(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    room_id = await public_room(alice, "joined")
    secret = await send_text(alice, room_id, "before bob")
    assert isinstance(await bob.join(room_id), nio.JoinResponse)
    await send_text(alice, room_id, "after bob")
    assert await _history_of(bob, room_id) == ["after bob"]
    assert await _history_of(alice, room_id) == ["before bob", "after bob"]
    events, _ = await paginate_all(bob, room_id, FORWARD, 5)
    assert bodies(events) == ["after bob"]
    assert any(e.source.get("state_key") == bob.user_id for e in events), "own join is visible"
    hidden = await bob.room_get_event(room_id, secret)
    assert isinstance(hidden, nio.RoomGetEventError) and hidden.status_code == "M_NOT_FOUND"
    context = await bob.room_context(room_id, secret)
    assert isinstance(context, nio.RoomContextError) and context.status_code == "M_NOT_FOUND"


async def test_shared_visibility_shows_history_before_the_join(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    room_id = await public_room(alice, "shared")
    earlier = await send_text(alice, room_id, "before bob")
    assert isinstance(await bob.join(room_id), nio.JoinResponse)
    await send_text(alice, room_id, "after bob")
    assert await _history_of(bob, room_id) == ["before bob", "after bob"]
    found = await bob.room_get_event(room_id, earlier)
    assert isinstance(found, nio.RoomGetEventResponse), found


async def test_invited_visibility_starts_at_the_invite(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    room_id = await public_room(alice, "invited")
    await send_text(alice, room_id, "before invite")
    assert isinstance(await alice.room_invite(room_id, bob.user_id), nio.RoomInviteResponse)
    await send_text(alice, room_id, "while invited")
    assert isinstance(await bob.join(room_id), nio.JoinResponse)
    await send_text(alice, room_id, "after join")
    assert await _history_of(bob, room_id) == ["while invited", "after join"]


async def test_visibility_is_taken_at_each_event(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    room_id = await public_room(alice, "shared")
    await send_text(alice, room_id, "shared era")
    await set_state(alice, room_id, "m.room.history_visibility", {"history_visibility": "joined"})
    await send_text(alice, room_id, "joined era")
    assert isinstance(await bob.join(room_id), nio.JoinResponse)
    events, _ = await paginate_all(bob, room_id, BACK, 50)
    assert bodies(events) == ["shared era"]
    changes = [e for e in events if e.source["type"] == "m.room.history_visibility"]
    settings = [e.source["content"]["history_visibility"] for e in changes]
    assert settings[0] == "joined" and set(settings[1:]) == {"shared"}, settings


async def test_left_user_reads_up_to_their_leave(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    room_id = await public_room(alice, "joined")
    assert isinstance(await bob.join(room_id), nio.JoinResponse)
    await set_state(alice, room_id, "m.room.name", {"name": "Old name"})
    await send_text(alice, room_id, "while bob was in")
    assert isinstance(await bob.room_leave(room_id), nio.RoomLeaveResponse)
    later = await send_text(alice, room_id, "after bob left")
    await set_state(alice, room_id, "m.room.name", {"name": "New name"})
    assert await _history_of(bob, room_id) == ["while bob was in"]
    events, _ = await paginate_all(bob, room_id, FORWARD, 4)
    assert bodies(events) == ["while bob was in"]
    assert events[-1].source["state_key"] == bob.user_id, "the walk ends at bob's leave"
    hidden = await bob.room_get_event(room_id, later)
    assert isinstance(hidden, nio.RoomGetEventError) and hidden.status_code == "M_NOT_FOUND"
    name = await bob.room_get_state_event(room_id, "m.room.name")
    assert isinstance(name, nio.RoomGetStateEventResponse)
    assert name.content == {"name": "Old name"}
    status, body = await raw_get(node, bob, ["rooms", room_id, "members"])
    assert status == 200
    members = {e["state_key"]: e["content"]["membership"] for e in body["chunk"]}
    assert members == {alice.user_id: "join", bob.user_id: "leave"}
    status, body = await raw_get(node, bob, ["rooms", room_id, "joined_members"])
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")


async def test_left_user_of_a_shared_room_sees_nothing_sent_after_leaving(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    room_id = await public_room(alice, "shared")
    earlier = await send_text(alice, room_id, "before bob")
    assert isinstance(await bob.join(room_id), nio.JoinResponse)
    assert isinstance(await bob.room_leave(room_id), nio.RoomLeaveResponse)
    later = await send_text(alice, room_id, "after bob left")
    found = await bob.room_get_event(room_id, earlier)
    assert isinstance(found, nio.RoomGetEventResponse), found
    hidden = await bob.room_get_event(room_id, later)
    assert isinstance(hidden, nio.RoomGetEventError) and hidden.status_code == "M_NOT_FOUND"
    assert await _history_of(bob, room_id) == ["before bob"]
    assert isinstance(await bob.room_forget(room_id), nio.RoomForgetResponse)
    forgotten = await bob.room_messages(room_id)
    assert isinstance(forgotten, nio.RoomMessagesError) and forgotten.status_code == "M_FORBIDDEN"


async def test_outsider_is_forbidden(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    eve = await make_client(node, "eve")
    room_id = await public_room(alice, "shared")
    event_id = await send_text(alice, room_id, "members only")
    messages = await eve.room_messages(room_id)
    assert isinstance(messages, nio.RoomMessagesError) and messages.status_code == "M_FORBIDDEN"
    state = await eve.room_get_state(room_id)
    assert isinstance(state, nio.RoomGetStateError)
    for parts in (["state"], ["members"], ["joined_members"], ["event", event_id],
                  ["context", event_id]):
        status, body = await raw_get(node, eve, ["rooms", room_id, *parts])
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN"), parts
    status, body = await raw_get(node, eve, ["rooms", "!nowhere:example.org", "messages"])
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")


async def test_world_readable_room_is_readable_by_anyone(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    eve = await make_client(node, "eve")
    room_id = await public_room(alice, "world_readable")
    event_id = await send_text(alice, room_id, "hello world")
    assert await _history_of(eve, room_id) == ["hello world"]
    found = await eve.room_get_event(room_id, event_id)
    assert isinstance(found, nio.RoomGetEventResponse), found
    state = await eve.room_get_state(room_id)
    assert isinstance(state, nio.RoomGetStateResponse), state
    assert ("m.room.history_visibility", "") in {(e["type"], e["state_key"]) for e in state.events}
