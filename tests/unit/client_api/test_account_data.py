"""Account data, global and per room, through a real node and /sync."""

from __future__ import annotations

import asyncio
import time

import nio

from rocketnode.app import Node
from tests.nodes import ClientFactory
from tests.unit.client_api.client_http import call, errcode, path
from tests.unit.client_api.sync_helpers import new_room, sync


def global_data(response: nio.SyncResponse) -> dict[str, dict[str, object]]:
    return {
        event.type: event.content
        for event in response.account_data_events
        if isinstance(event, nio.UnknownAccountDataEvent)
    }


async def test_global_account_data_round_trips_and_syncs(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    data_path = path("user", alice.user_id, "account_data", "org.example.config")
    status, _ = await call(node, "PUT", data_path, alice, body={"theme": "dark"})
    assert status == 200
    assert await call(node, "GET", data_path, alice) == (200, {"theme": "dark"})
    initial = await sync(alice, None)
    assert global_data(initial) == {"org.example.config": {"theme": "dark"}}
    assert global_data(await sync(alice, initial.next_batch)) == {}
    await call(node, "PUT", data_path, alice, body={"theme": "light"})
    assert global_data(await sync(alice, initial.next_batch)) == {
        "org.example.config": {"theme": "light"}
    }


async def test_room_account_data_syncs_in_its_room(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    room_id = await new_room(alice)
    since = (await sync(alice, None)).next_batch
    tags = {"tags": {"m.favourite": {"order": 0.5}}}
    tag_path = path("user", alice.user_id, "rooms", room_id, "account_data", "m.tag")
    assert (await call(node, "PUT", tag_path, alice, body=tags))[0] == 200
    assert await call(node, "GET", tag_path, alice) == (200, tags)
    response = await sync(alice, since)
    [event] = response.rooms.join[room_id].account_data
    assert isinstance(event, nio.TagEvent) and event.tags == tags["tags"]
    assert response.rooms.join[room_id].timeline.events == []
    assert global_data(response) == {}
    room_scoped_only = path("user", alice.user_id, "account_data", "m.tag")
    assert await errcode(node, "GET", room_scoped_only, alice) == (404, "M_NOT_FOUND")


async def test_account_data_wakes_a_waiting_sync(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    since = (await sync(alice, None)).next_batch
    waiting = asyncio.create_task(sync(alice, since, timeout=20_000))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    data_path = path("user", alice.user_id, "account_data", "org.example.wake")
    assert (await call(node, "PUT", data_path, alice, body={"n": 1}))[0] == 200
    response = await waiting
    assert time.monotonic() - started < 5
    assert global_data(response) == {"org.example.wake": {"n": 1}}


async def test_account_data_errors(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    room_id = await new_room(alice)
    own = path("user", alice.user_id, "account_data", "org.example.x")
    assert await errcode(node, "PUT", own, bob, body={}) == (403, "M_FORBIDDEN")
    assert await errcode(node, "GET", own, bob) == (403, "M_FORBIDDEN")
    assert await errcode(node, "GET", own, alice) == (404, "M_NOT_FOUND")
    assert await errcode(node, "PUT", own, alice, raw_body=b"not json") == (400, "M_NOT_JSON")
    assert await errcode(node, "PUT", own, alice, body=[1]) == (400, "M_BAD_JSON")
    for managed in ("m.fully_read", "m.push_rules"):
        managed_path = path("user", alice.user_id, "account_data", managed)
        assert await errcode(node, "PUT", managed_path, alice, body={}) == (405, "M_BAD_JSON")
        in_room = path("user", alice.user_id, "rooms", room_id, "account_data", managed)
        assert await errcode(node, "PUT", in_room, alice, body={}) == (405, "M_BAD_JSON")
    bad_room = path("user", alice.user_id, "rooms", "@not-a-room:x", "account_data", "a.b")
    assert await errcode(node, "PUT", bad_room, alice, body={}) == (400, "M_INVALID_PARAM")
    assert await errcode(node, "GET", bad_room, alice) == (400, "M_INVALID_PARAM")
    missing = path("user", alice.user_id, "rooms", room_id, "account_data", "a.b")
    assert await errcode(node, "GET", missing, alice) == (404, "M_NOT_FOUND")


async def test_rejoining_a_room_brings_back_its_account_data(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    room_id = await new_room(alice, preset=nio.RoomPreset.public_chat)
    assert isinstance(await bob.join(room_id), nio.JoinResponse)
    note_path = path("user", bob.user_id, "rooms", room_id, "account_data", "org.example.note")
    assert (await call(node, "PUT", note_path, bob, body={"text": "remember"}))[0] == 200
    assert isinstance(await bob.room_leave(room_id), nio.RoomLeaveResponse)
    since = (await sync(bob, None)).next_batch
    assert isinstance(await bob.join(room_id), nio.JoinResponse)
    room = (await sync(bob, since)).rooms.join[room_id]
    assert [(e.type, e.content) for e in room.account_data
            if isinstance(e, nio.UnknownAccountDataEvent)] == [
        ("org.example.note", {"text": "remember"})
    ]
