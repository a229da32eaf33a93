"""/sync through a real node, driven by matrix-nio (which checks every response against its
schema): initial and incremental syncs, long-polling, limited timelines, filters, invites and
departures, full state, and tokens that outlive a restart."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import nio

from rocketnode.app import Node
from tests.nodes import ClientFactory, node_config, running_node
from tests.unit.client_api.client_http import call, errcode, path
from tests.unit.client_api.sync_helpers import (
    ids,
    join,
    new_room,
    public_room,
    raw_sync,
    send_text,
    send_texts,
    sources,
    sync,
    texts,
    types,
)


async def test_initial_sync_has_rooms_timeline_and_state(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    room_id = await public_room(alice, name="Lobby", topic="Chat")
    sent = await send_texts(alice, room_id, 3)
    response = await sync(alice, None, sync_filter={"room": {"timeline": {"limit": 3}}})
    room = response.rooms.join[room_id]
    assert ids(room.timeline.events) == sent
    assert room.timeline.limited is True
    state_types = {(e["type"], e["state_key"]) for e in sources(room.state)}
    assert {("m.room.create", ""), ("m.room.name", ""), ("m.room.topic", ""),
            ("m.room.member", alice.user_id), ("m.room.power_levels", "")} <= state_types
    assert not set(ids(room.state)) & set(sent)
    assert room.summary is not None and room.summary.joined_member_count == 1
    assert response.next_batch.startswith("s")


async def test_initial_sync_of_a_small_room_puts_all_state_in_the_timeline(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    room_id = await new_room(alice)
    room = (await sync(alice, None, sync_filter={"room": {"timeline": {"limit": 50}}})
            ).rooms.join[room_id]
    assert room.timeline.limited is False
    assert types(room.timeline.events)[0] == "m.room.create"
    assert room.state == []


async def test_incremental_sync_returns_only_new_events(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    room_id = await new_room(alice)
    quiet_room = await new_room(alice)
    first = await sync(alice, None)
    sent = await send_texts(alice, room_id, 2)
    second = await sync(alice, first.next_batch)
    assert list(second.rooms.join) == [room_id]
    timeline = second.rooms.join[room_id].timeline
    assert ids(timeline.events) == sent
    assert timeline.limited is False
    assert second.rooms.join[room_id].state == []
    third = await sync(alice, second.next_batch)
    assert third.rooms.join == {}
    assert quiet_room in first.rooms.join


async def test_long_poll_returns_as_soon_as_a_message_arrives(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    room_id = await public_room(alice)
    await join(bob, room_id)
    since = (await sync(bob, None)).next_batch
    timeout_ms = 20_000
    started = time.monotonic()
    waiting = asyncio.create_task(sync(bob, since, timeout=timeout_ms))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    event_id = await send_text(alice, room_id, "wake up")
    response = await waiting
    elapsed = time.monotonic() - started
    assert ids(response.rooms.join[room_id].timeline.events) == [event_id]
    assert elapsed < timeout_ms / 1000 / 4


async def test_long_poll_times_out_empty(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    room_id = await new_room(alice)
    since = (await sync(alice, None)).next_batch
    started = time.monotonic()
    response = await sync(alice, since, timeout=400)
    assert time.monotonic() - started >= 0.35
    assert response.rooms.join == {}
    assert response.next_batch == since
    assert room_id


async def test_long_poll_ignores_rooms_the_user_is_not_in(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    bob_room = await new_room(bob)
    await new_room(alice)
    since = (await sync(alice, None)).next_batch
    waiting = asyncio.create_task(sync(alice, since, timeout=600))
    await asyncio.sleep(0.1)
    await send_text(bob, bob_room, "not for alice")
    response = await waiting
    assert response.rooms.join == {}


async def test_no_event_is_skipped_or_repeated_while_messages_stream_in(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    room_id = await public_room(alice)
    await join(bob, room_id)
    since = (await sync(bob, None)).next_batch
    big_timeline = {"room": {"timeline": {"limit": 100}}}

    async def send_all() -> list[str]:
        sent = []
        for index in range(40):
            sent.append(await send_text(alice, room_id, f"burst {index}"))
            if index % 7 == 0:
                await asyncio.sleep(0.01)
        return sent

    sender = asyncio.create_task(send_all())
    seen: list[str] = []
    while not sender.done() or len(seen) < 40:
        response = await sync(bob, since, timeout=1000, sync_filter=big_timeline)
        room = response.rooms.join.get(room_id)
        if room is not None:
            assert room.timeline.limited is False
            seen.extend(ids(room.timeline.events))
        since = response.next_batch
        if sender.done() and len(seen) >= len(sender.result()):
            break
    assert seen == sender.result()


async def test_limited_timeline_has_a_prev_batch_that_messages_continues_from(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    room_id = await new_room(alice)
    since = (await sync(alice, None)).next_batch
    topic = await alice.room_put_state(room_id, "m.room.topic", {"topic": "in the gap"})
    assert isinstance(topic, nio.RoomPutStateResponse)
    sent = await send_texts(alice, room_id, 12)
    response = await sync(alice, since, sync_filter={"room": {"timeline": {"limit": 5}}})
    room = response.rooms.join[room_id]
    assert room.timeline.limited is True
    assert ids(room.timeline.events) == sent[-5:]
    assert [e["event_id"] for e in sources(room.state)] == [topic.event_id]
    assert room.timeline.prev_batch is not None
    older = await alice.room_messages(room_id, start=room.timeline.prev_batch, limit=7)
    assert isinstance(older, nio.RoomMessagesResponse), older
    assert ids(older.chunk) == sent[:7][::-1]
    gap = await alice.room_messages(room_id, start=since, end=room.timeline.prev_batch,
                                    direction=nio.MessageDirection.front, limit=50)
    assert isinstance(gap, nio.RoomMessagesResponse), gap
    assert ids(gap.chunk) == [topic.event_id, *sent[:7]]


async def test_filter_types_keep_state_out_of_the_timeline_but_in_state(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    room_id = await new_room(alice)
    since = (await sync(alice, None)).next_batch
    first = await send_text(alice, room_id, "one")
    name = await alice.room_put_state(room_id, "m.room.name", {"name": "Renamed"})
    assert isinstance(name, nio.RoomPutStateResponse)
    second = await send_text(alice, room_id, "two")
    only_messages = {"room": {"timeline": {"types": ["m.room.message"]}}}
    room = (await sync(alice, since, sync_filter=only_messages)).rooms.join[room_id]
    assert ids(room.timeline.events) == [first, second]
    assert [e["event_id"] for e in sources(room.state)] == [name.event_id]


async def test_filter_not_types_and_senders(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    room_id = await public_room(alice)
    await join(bob, room_id)
    since = (await sync(alice, None)).next_batch
    await send_text(alice, room_id, "from alice")
    await send_text(bob, room_id, "from bob")
    react = await bob.room_send(room_id, "m.reaction", {})
    assert isinstance(react, nio.RoomSendResponse)
    bob_only = {"room": {"timeline": {"senders": [bob.user_id], "not_types": ["m.reaction"]}}}
    room = (await sync(alice, since, sync_filter=bob_only)).rooms.join[room_id]
    assert texts(room.timeline.events) == ["from bob"]
    assert types(room.timeline.events) == ["m.room.message"]


async def test_stored_filter_by_id(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    room_id = await new_room(alice)
    await send_texts(alice, room_id, 4)
    uploaded = await alice.upload_filter(room={"timeline": {"limit": 2}})
    assert isinstance(uploaded, nio.UploadFilterResponse), uploaded
    room = (await sync(alice, None, sync_filter=uploaded.filter_id)).rooms.join[room_id]
    assert texts(room.timeline.events) == ["m2", "m3"]
    status, stored = await call(
        node, "GET", path("user", alice.user_id, "filter", uploaded.filter_id), alice
    )
    assert status == 200
    assert stored["room"] == {"timeline": {"limit": 2}}


async def test_lazy_loading_sends_only_needed_members(
    node: Node, make_client: ClientFactory
) -> None:
    heroes = [await make_client(node, f"a{i}") for i in range(1, 6)]
    quiet = await make_client(node, "quiet")
    speaker = await make_client(node, "speaker")
    reader = await make_client(node, "zreader")
    room_id = await public_room(heroes[0])
    for client in [*heroes[1:], quiet, speaker, reader]:
        await join(client, room_id)
    await send_texts(speaker, room_id, 3)
    lazy = {"room": {"timeline": {"limit": 3}, "state": {"lazy_load_members": True}}}
    room = (await sync(reader, None, sync_filter=lazy)).rooms.join[room_id]
    members = {e["state_key"] for e in sources(room.state) if e["type"] == "m.room.member"}
    expected_heroes = sorted(c.user_id for c in heroes)
    assert room.summary is not None and room.summary.heroes == expected_heroes
    assert members == {speaker.user_id, reader.user_id, *expected_heroes}
    eager = {"room": {"timeline": {"limit": 3}}}
    room = (await sync(reader, None, sync_filter=eager)).rooms.join[room_id]
    members = {e["state_key"] for e in sources(room.state) if e["type"] == "m.room.member"}
    assert quiet.user_id in members


async def test_lazy_incremental_sync_brings_the_senders_member_event(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    room_id = await public_room(alice)
    await join(bob, room_id)
    lazy = {"room": {"state": {"lazy_load_members": True}}}
    since = (await sync(alice, None, sync_filter=lazy)).next_batch
    await send_text(bob, room_id, "hello")
    room = (await sync(alice, since, sync_filter=lazy)).rooms.join[room_id]
    members = [e["state_key"] for e in sources(room.state) if e["type"] == "m.room.member"]
    assert members == [bob.user_id]


async def test_invite_then_reject_shows_invite_then_leave(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    room_id = await new_room(alice, name="Secret")
    since = (await sync(bob, None)).next_batch
    assert isinstance(await alice.room_invite(room_id, bob.user_id), nio.RoomInviteResponse)
    raw = await raw_sync(node, bob, {"since": since})
    invite_state = raw["rooms"]["invite"][room_id]["invite_state"]["events"]
    stripped = {(e["type"], e["state_key"]) for e in invite_state}
    assert {("m.room.create", ""), ("m.room.name", ""),
            ("m.room.member", bob.user_id)} <= stripped
    assert all(set(e) == {"type", "state_key", "content", "sender"} for e in invite_state)
    invited = await sync(bob, since)
    assert list(invited.rooms.invite) == [room_id]
    assert isinstance(await bob.room_leave(room_id), nio.RoomLeaveResponse)
    left = await sync(bob, invited.next_batch)
    assert list(left.rooms.leave) == [room_id]
    timeline = sources(left.rooms.leave[room_id].timeline.events)
    assert [(e["type"], e["content"]["membership"]) for e in timeline] == [
        ("m.room.member", "leave")
    ]
    assert left.rooms.invite == {} and left.rooms.join == {}


async def test_leave_section_stops_at_the_departure(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    room_id = await public_room(alice)
    await join(bob, room_id)
    since = (await sync(bob, None)).next_batch
    before = await send_text(alice, room_id, "before")
    assert isinstance(await bob.room_leave(room_id), nio.RoomLeaveResponse)
    await send_text(alice, room_id, "after")
    response = await sync(bob, since)
    assert response.rooms.join == {}
    timeline = response.rooms.leave[room_id].timeline.events
    assert ids(timeline)[0] == before
    assert texts(timeline) == ["before"]
    assert sources(timeline)[-1]["state_key"] == bob.user_id
    later = await sync(bob, response.next_batch)
    assert later.rooms.leave == {}


async def test_include_leave_brings_left_rooms_into_an_initial_sync(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    room_id = await new_room(alice)
    assert isinstance(await alice.room_leave(room_id), nio.RoomLeaveResponse)
    assert (await sync(alice, None)).rooms.leave == {}
    with_leave = {"room": {"include_leave": True}}
    left = (await sync(alice, None, sync_filter=with_leave)).rooms.leave
    assert list(left) == [room_id]
    assert sources(left[room_id].timeline.events)[-1]["content"]["membership"] == "leave"


async def test_joining_a_room_brings_its_full_state(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    room_id = await public_room(alice, name="Busy")
    await send_texts(alice, room_id, 12)
    since = (await sync(bob, None)).next_batch
    await join(bob, room_id)
    room = (await sync(bob, since, sync_filter={"room": {"timeline": {"limit": 3}}})
            ).rooms.join[room_id]
    state_keys = {(e["type"], e["state_key"]) for e in sources(room.state)}
    assert {("m.room.create", ""), ("m.room.name", ""),
            ("m.room.member", alice.user_id)} <= state_keys
    assert sources(room.timeline.events)[-1]["state_key"] == bob.user_id


async def test_full_state_repeats_the_state_of_every_room(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    room_id = await new_room(alice, name="Quiet")
    since = (await sync(alice, None)).next_batch
    response = await sync(alice, since, full_state=True)
    room = response.rooms.join[room_id]
    assert room.timeline.events == []
    assert ("m.room.name", "") in {(e["type"], e["state_key"]) for e in sources(room.state)}


async def test_use_state_after_sends_state_up_to_the_end_of_the_timeline(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    room_id = await new_room(alice)
    since = (await raw_sync(node, alice))["next_batch"]
    name = await alice.room_put_state(room_id, "m.room.name", {"name": "After"})
    assert isinstance(name, nio.RoomPutStateResponse)
    message = await send_text(alice, room_id, "hi")
    room = (await raw_sync(node, alice, {"since": since, "use_state_after": "true"})
            )["rooms"]["join"][room_id]
    assert "state" not in room
    assert [e["event_id"] for e in room["state_after"]["events"]] == [name.event_id]
    assert [e["event_id"] for e in room["timeline"]["events"]] == [name.event_id, message]
    plain = (await raw_sync(node, alice, {"since": since}))["rooms"]["join"][room_id]
    assert "state_after" not in plain and plain["state"]["events"] == []


async def test_an_invite_wakes_the_invitees_long_poll(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    room_id = await new_room(alice)
    since = (await sync(bob, None)).next_batch
    waiting = asyncio.create_task(sync(bob, since, timeout=20_000))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    assert isinstance(await alice.room_invite(room_id, bob.user_id), nio.RoomInviteResponse)
    response = await waiting
    assert time.monotonic() - started < 5
    assert list(response.rooms.invite) == [room_id]


async def test_knocking_shows_the_room_under_knock(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    room_id = await new_room(alice, name="Door", room_version="12")
    rules = await alice.room_put_state(room_id, "m.room.join_rules", {"join_rule": "knock"})
    assert isinstance(rules, nio.RoomPutStateResponse), rules
    since = (await raw_sync(node, bob))["next_batch"]
    knocked = await bob.room_knock(room_id)
    assert isinstance(knocked, nio.RoomKnockResponse), knocked
    body = await raw_sync(node, bob, {"since": since})
    knock_state = body["rooms"]["knock"][room_id]["knock_state"]["events"]
    assert ("m.room.name", "") in {(e["type"], e["state_key"]) for e in knock_state}
    assert {"type": "m.room.member", "state_key": bob.user_id, "sender": bob.user_id,
            "content": knock_state[-1]["content"]} == knock_state[-1]
    assert body["rooms"]["join"] == {}


async def test_redacted_events_sync_redacted(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    room_id = await new_room(alice)
    since = (await sync(alice, None)).next_batch
    secret = await send_text(alice, room_id, "oops")
    redaction = await alice.room_redact(room_id, secret, reason="typo")
    assert isinstance(redaction, nio.RoomRedactResponse), redaction
    events = sources((await sync(alice, since)).rooms.join[room_id].timeline.events)
    assert [e["event_id"] for e in events] == [secret, redaction.event_id]
    assert events[0]["content"] == {}
    assert events[0]["unsigned"]["redacted_because"]["event_id"] == redaction.event_id


async def test_transaction_id_is_echoed_to_the_sending_device_only(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    room_id = await new_room(alice)
    since = (await sync(alice, None)).next_batch
    sent = await alice.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "x"},
                                 tx_id="txn-1")
    assert isinstance(sent, nio.RoomSendResponse)
    [event] = sources((await sync(alice, since)).rooms.join[room_id].timeline.events)
    assert event["unsigned"]["transaction_id"] == "txn-1"
    assert "room_id" not in event


async def test_bad_parameters_are_client_errors(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    sync_path = path("sync")
    assert await errcode(node, "GET", sync_path, alice, params={"since": "garbage"}) == (
        400, "M_INVALID_PARAM")
    assert await errcode(node, "GET", sync_path, alice, params={"filter": "{nope"}) == (
        400, "M_NOT_JSON")
    assert await errcode(node, "GET", sync_path, alice,
                         params={"filter": '{"room": []}'}) == (400, "M_BAD_JSON")
    assert await errcode(node, "GET", sync_path, alice, params={"filter": "12345"}) == (
        404, "M_NOT_FOUND")
    assert await errcode(node, "GET", sync_path, alice, params={"full_state": "yes"}) == (
        400, "M_INVALID_PARAM")
    assert await errcode(node, "GET", sync_path, alice, params={"timeout": "soon"}) == (
        400, "M_INVALID_PARAM")
    assert await errcode(node, "GET", sync_path) == (401, "M_MISSING_TOKEN")


async def test_filters_belong_to_their_user(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    filter_path = path("user", alice.user_id, "filter")
    status, created = await call(node, "POST", filter_path, alice, body={"presence": {}})
    assert status == 200 and isinstance(created["filter_id"], str)
    own = path("user", alice.user_id, "filter", created["filter_id"])
    assert await errcode(node, "GET", own, bob) == (403, "M_FORBIDDEN")
    assert await errcode(node, "POST", filter_path, bob, body={}) == (403, "M_FORBIDDEN")
    assert await errcode(node, "GET", path("user", alice.user_id, "filter", "99"), alice) == (
        404, "M_NOT_FOUND")
    assert await errcode(node, "POST", filter_path, alice, body={"room": {"timeline": 5}}) == (
        400, "M_BAD_JSON")


async def test_tokens_survive_a_restart(tmp_path: Path, make_client: ClientFactory) -> None:
    config = node_config(tmp_path / "node")
    async with running_node(config) as first_run:
        alice = await make_client(first_run, "alice")
        room_id = await new_room(alice)
        before = await send_text(alice, room_id, "before the token")
        token = (await sync(alice, None)).next_batch
        between = await send_text(alice, room_id, "after the token, before the restart")
        access_token, user_id = alice.access_token, alice.user_id
    async with running_node(config) as second_run:
        client = nio.AsyncClient(second_run.client_url, user_id)
        client.access_token, client.user_id = access_token, user_id
        try:
            resumed = await sync(client, token)
            assert ids(resumed.rooms.join[room_id].timeline.events) == [between]
            after = await send_text(client, room_id, "after the restart")
            again = await sync(client, token)
            assert ids(again.rooms.join[room_id].timeline.events) == [between, after]
            assert before not in ids(again.rooms.join[room_id].timeline.events)
            caught_up = await sync(client, again.next_batch)
            assert caught_up.rooms.join == {}
        finally:
            await client.close()
