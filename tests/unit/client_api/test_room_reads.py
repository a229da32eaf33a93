"""Reading rooms through a real node, driven by matrix-nio: /messages, /context, /state,
/members, /joined_members, /event, redacted events. History visibility is in
``test_room_reads_visibility.py``."""

from __future__ import annotations

import nio

from rocketnode.app import Node
from tests.nodes import ClientFactory
from tests.unit.client_api.room_reads_helpers import (
    bodies,
    event_ids,
    paginate_all,
    public_room,
    raw_get,
    send_text,
    send_texts,
    set_state,
)

BACK, FORWARD = nio.MessageDirection.back, nio.MessageDirection.front
TEXTS = [f"m{i}" for i in range(25)]


async def test_messages_backwards_walks_the_whole_room_in_pages(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    room_id = await public_room(alice)
    sent = await send_texts(alice, room_id, TEXTS)
    first = await alice.room_messages(room_id, limit=10)
    assert isinstance(first, nio.RoomMessagesResponse), first
    assert event_ids(first.chunk) == sent[::-1][:10]
    second = await alice.room_messages(room_id, start=first.end, limit=10)
    assert isinstance(second, nio.RoomMessagesResponse), second
    assert second.start == first.end
    assert event_ids(second.chunk) == sent[::-1][10:20]
    everything, pages = await paginate_all(alice, room_id, BACK, 10)
    assert bodies(everything) == TEXTS[::-1]
    assert len(set(event_ids(everything))) == len(everything)
    assert everything[-1].source["type"] == "m.room.create"
    assert pages >= 3


async def test_messages_forwards_from_the_start_and_from_a_backward_token(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    room_id = await public_room(alice)
    sent = await send_texts(alice, room_id, TEXTS)
    everything, _pages = await paginate_all(alice, room_id, FORWARD, 10)
    assert everything[0].source["type"] == "m.room.create"
    assert bodies(everything) == TEXTS
    backward = await alice.room_messages(room_id, limit=10)
    assert isinstance(backward, nio.RoomMessagesResponse)
    assert backward.end is not None
    forward = await alice.room_messages(room_id, start=backward.end, direction=FORWARD, limit=10)
    assert isinstance(forward, nio.RoomMessagesResponse), forward
    assert event_ids(forward.chunk) == sent[-10:]


async def test_messages_to_token_bounds_the_walk(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    room_id = await public_room(alice)
    sent = await send_texts(alice, room_id, TEXTS)
    newest = await alice.room_messages(room_id, limit=5)
    assert isinstance(newest, nio.RoomMessagesResponse)
    bounded = await alice.room_messages(room_id, end=newest.end, limit=100)
    assert isinstance(bounded, nio.RoomMessagesResponse), bounded
    assert event_ids(bounded.chunk) == sent[::-1][:5]
    assert bounded.end is None


async def test_messages_filter_by_type_and_sender(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    room_id = await public_room(alice)
    assert isinstance(await bob.join(room_id), nio.JoinResponse)
    pings = []
    for i in range(15):
        await send_text(alice, room_id, f"text {i}")
        sent = await alice.room_send(room_id, "org.example.ping", {"n": i})
        assert isinstance(sent, nio.RoomSendResponse)
        pings.append(sent.event_id)
    await send_text(bob, room_id, "from bob")
    only_pings, pages = await paginate_all(
        alice, room_id, BACK, 4, message_filter={"types": ["org.example.*"]}
    )
    assert event_ids(only_pings) == pings[::-1]
    assert pages >= 4
    from_bob = await alice.room_messages(
        room_id, limit=50, message_filter={"senders": [bob.user_id], "types": ["m.room.message"]}
    )
    assert isinstance(from_bob, nio.RoomMessagesResponse)
    assert bodies(from_bob.chunk) == ["from bob"]
    no_messages, _ = await paginate_all(
        alice, room_id, FORWARD, 50, message_filter={"not_types": ["m.room.message"]}
    )
    assert no_messages and all(e.source["type"] != "m.room.message" for e in no_messages)
    assert event_ids([e for e in no_messages if e.source["type"] == "org.example.ping"]) == pings


async def test_messages_lazy_loads_the_senders_members(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    carol = await make_client(node, "carol")
    room_id = await public_room(alice)
    for client in (bob, carol):
        assert isinstance(await client.join(room_id), nio.JoinResponse)
    await send_text(alice, room_id, "hi")
    await send_text(bob, room_id, "hello")
    status, body = await raw_get(
        node, alice, ["rooms", room_id, "messages"],
        {"dir": "b", "limit": "2", "filter": '{"lazy_load_members": true}'},
    )
    assert status == 200, body
    members = {e["state_key"] for e in body["state"] if e["type"] == "m.room.member"}
    assert members == {alice.user_id, bob.user_id}
    status, plain = await raw_get(node, alice, ["rooms", room_id, "messages"], {"limit": "2"})
    assert status == 200 and "state" not in plain


async def test_messages_tokens_and_parameters(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    room_id = await public_room(alice)
    await send_texts(alice, room_id, ["one", "two"])
    path = ["rooms", room_id, "messages"]
    status, body = await raw_get(node, alice, path, {"dir": "b", "from": "s1000000_7"})
    assert status == 200 and [e["content"].get("body") for e in body["chunk"][:2]] == [
        "two", "one"
    ]
    for params in ({"from": "garbage"}, {"to": "s1x"}, {"dir": "sideways"}, {"limit": "ten"}):
        status, body = await raw_get(node, alice, path, params)
        assert (status, body["errcode"]) == (400, "M_INVALID_PARAM"), params
    status, body = await raw_get(node, alice, path, {"filter": "{not json"})
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")


async def test_context_around_an_event(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    room_id = await public_room(alice)
    sent = await send_texts(alice, room_id, [f"c{i}" for i in range(10)])
    context = await alice.room_context(room_id, sent[5], limit=4)
    assert isinstance(context, nio.RoomContextResponse), context
    assert context.event.event_id == sent[5]
    assert event_ids(context.events_before) == [sent[4], sent[3]]
    assert event_ids(context.events_after) == [sent[6], sent[7]]
    assert "m.room.create" in {e.source["type"] for e in context.state}
    older = await alice.room_messages(room_id, start=context.start, limit=1)
    assert isinstance(older, nio.RoomMessagesResponse)
    assert event_ids(older.chunk) == [sent[2]]
    newer = await alice.room_messages(room_id, start=context.end, direction=FORWARD, limit=1)
    assert isinstance(newer, nio.RoomMessagesResponse)
    assert event_ids(newer.chunk) == [sent[8]]
    status, body = await raw_get(
        node, alice, ["rooms", room_id, "context", sent[5]],
        {"limit": "2", "filter": '{"types": ["m.room.member"], "lazy_load_members": true}'},
    )
    assert status == 200
    assert body["event"]["event_id"] == sent[5]
    assert body["events_after"] == []
    assert [e["type"] for e in body["events_before"]] == ["m.room.member"]
    assert [e["state_key"] for e in body["state"]] == [alice.user_id]


async def test_room_state_all_and_by_key(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    room_id = await public_room(alice)
    await set_state(alice, room_id, "m.room.name", {"name": "Lobby"})
    await set_state(alice, room_id, "org.example.slashy", {"ok": True}, state_key="a/b")
    state = await alice.room_get_state(room_id)
    assert isinstance(state, nio.RoomGetStateResponse), state
    keys = {(e["type"], e["state_key"]) for e in state.events}
    assert {("m.room.create", ""), ("m.room.name", ""), ("m.room.member", alice.user_id),
            ("org.example.slashy", "a/b")} <= keys
    name = await alice.room_get_state_event(room_id, "m.room.name")
    assert isinstance(name, nio.RoomGetStateEventResponse)
    assert name.content == {"name": "Lobby"}
    slashy = await alice.room_get_state_event(room_id, "org.example.slashy", "a/b")
    assert isinstance(slashy, nio.RoomGetStateEventResponse)
    assert slashy.content == {"ok": True}
    status, event = await raw_get(
        node, alice, ["rooms", room_id, "state", "m.room.name", ""], {"format": "event"}
    )
    assert status == 200
    assert (event["type"], event["state_key"]) == ("m.room.name", "")
    assert event["content"] == name.content
    status, body = await raw_get(node, alice, ["rooms", room_id, "state", "m.room.topic", ""])
    assert (status, body["errcode"]) == (404, "M_NOT_FOUND")


async def test_members_with_filters_and_at(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    bob, carol, dave = [await make_client(node, name) for name in ("bob", "carol", "dave")]
    room_id = await public_room(alice)
    before_bob = await alice.room_messages(room_id, limit=1)
    assert isinstance(before_bob, nio.RoomMessagesResponse)
    for client in (bob, dave):
        assert isinstance(await client.join(room_id), nio.JoinResponse)
    assert isinstance(await alice.room_invite(room_id, carol.user_id), nio.RoomInviteResponse)
    assert isinstance(await dave.room_leave(room_id), nio.RoomLeaveResponse)

    async def members(**params: str) -> dict[str, str]:
        status, body = await raw_get(node, bob, ["rooms", room_id, "members"], params)
        assert status == 200, body
        return {e["state_key"]: e["content"]["membership"] for e in body["chunk"]}

    everyone = {alice.user_id: "join", bob.user_id: "join", carol.user_id: "invite",
                dave.user_id: "leave"}
    assert await members() == everyone
    assert await members(membership="join") == {alice.user_id: "join", bob.user_id: "join"}
    assert await members(not_membership="leave") == {
        k: v for k, v in everyone.items() if v != "leave"
    }
    assert await members(membership="leave", not_membership="join") == {
        carol.user_id: "invite", dave.user_id: "leave"
    }
    assert await members(at=before_bob.start) == {alice.user_id: "join"}
    status, body = await raw_get(node, bob, ["rooms", room_id, "members"], {"membership": "x"})
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")


async def test_joined_members_with_profiles(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    room_id = await public_room(alice)
    assert isinstance(await bob.join(room_id), nio.JoinResponse)
    await set_state(
        bob, room_id, "m.room.member",
        {"membership": "join", "displayname": "Bobby", "avatar_url": "mxc://example.org/bob"},
        state_key=bob.user_id,
    )
    joined = await alice.joined_members(room_id)
    assert isinstance(joined, nio.JoinedMembersResponse), joined
    by_user = {m.user_id: m for m in joined.members}
    assert set(by_user) == {alice.user_id, bob.user_id}
    assert (by_user[bob.user_id].display_name, by_user[bob.user_id].avatar_url) == (
        "Bobby", "mxc://example.org/bob"
    )


async def test_get_one_event(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    room_id = await public_room(alice)
    other_room = await public_room(alice)
    event_id = await send_text(alice, room_id, "find me")
    found = await alice.room_get_event(room_id, event_id)
    assert isinstance(found, nio.RoomGetEventResponse), found
    assert found.event.source["content"]["body"] == "find me"
    elsewhere = await alice.room_get_event(other_room, event_id)
    assert isinstance(elsewhere, nio.RoomGetEventError)
    assert elsewhere.status_code == "M_NOT_FOUND"


async def test_redacted_event_is_served_redacted(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    room_id = await public_room(alice)
    event_id = await send_text(alice, room_id, "oops")
    redaction = await alice.room_redact(room_id, event_id, reason="typo")
    assert isinstance(redaction, nio.RoomRedactResponse), redaction
    found = await alice.room_get_event(room_id, event_id)
    assert isinstance(found, nio.RoomGetEventResponse), found
    assert found.event.source["content"] == {}
    because = found.event.source["unsigned"]["redacted_because"]
    assert because["event_id"] == redaction.event_id
    assert because["content"]["reason"] == "typo"
    page = await alice.room_messages(room_id, limit=2)
    assert isinstance(page, nio.RoomMessagesResponse)
    [redacted] = [e for e in page.chunk if e.event_id == event_id]
    assert redacted.source["content"] == {}
    assert redacted.source["unsigned"]["redacted_because"]["event_id"] == redaction.event_id


async def test_sync_prev_batch_continues_in_messages(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    room_id = await public_room(alice)
    sent = await send_texts(alice, room_id, TEXTS)
    synced = await alice.sync(timeout=0, sync_filter={"room": {"timeline": {"limit": 5}}})
    assert isinstance(synced, nio.SyncResponse), synced
    timeline = synced.rooms.join[room_id].timeline
    assert event_ids(timeline.events) == sent[-5:]
    older = await alice.room_messages(room_id, start=timeline.prev_batch, limit=10)
    assert isinstance(older, nio.RoomMessagesResponse), older
    assert event_ids(older.chunk) == sent[::-1][5:15]
    newer = await alice.room_messages(room_id, start=synced.next_batch, direction=FORWARD)
    assert isinstance(newer, nio.RoomMessagesResponse), newer
    assert newer.chunk == []
    latest = await alice.room_messages(room_id, start=synced.next_batch, limit=1)
    assert isinstance(latest, nio.RoomMessagesResponse)
    assert event_ids(latest.chunk) == [sent[-1]]
