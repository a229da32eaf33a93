"""Typing notifications, receipts and read markers through a real node, seen through /sync."""

from __future__ import annotations

import asyncio
import time

import nio

from rocketnode.app import Node
from tests.nodes import ClientFactory
from tests.unit.client_api.client_http import call, errcode, path
from tests.unit.client_api.sync_helpers import (
    join,
    new_room,
    public_room,
    raw_sync,
    receipts_of,
    send_text,
    sync,
    typing_of,
)


async def two_members(node: Node, make_client: ClientFactory) -> tuple[
    nio.AsyncClient, nio.AsyncClient, str
]:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    room_id = await public_room(alice)
    await join(bob, room_id)
    return alice, bob, room_id


async def test_typing_wakes_a_sync_and_expires(node: Node, make_client: ClientFactory) -> None:
    alice, bob, room_id = await two_members(node, make_client)
    since = (await sync(alice, None)).next_batch
    waiting = asyncio.create_task(sync(alice, since, timeout=20_000))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    typed = await bob.room_typing(room_id, True, timeout=400)
    assert isinstance(typed, nio.RoomTypingResponse), typed
    response = await waiting
    assert time.monotonic() - started < 5
    assert typing_of(response, room_id) == [[bob.user_id]]
    expired = await sync(alice, response.next_batch, timeout=20_000)
    assert time.monotonic() - started < 5
    assert typing_of(expired, room_id) == [[]]
    quiet = await sync(alice, expired.next_batch)
    assert typing_of(quiet, room_id) == []


async def test_stopping_typing_is_reported(node: Node, make_client: ClientFactory) -> None:
    alice, bob, room_id = await two_members(node, make_client)
    assert isinstance(await bob.room_typing(room_id, True, 30_000), nio.RoomTypingResponse)
    initial = await sync(alice, None)
    assert typing_of(initial, room_id) == [[bob.user_id]]
    assert isinstance(await bob.room_typing(room_id, False), nio.RoomTypingResponse)
    assert typing_of(await sync(alice, initial.next_batch), room_id) == [[]]


async def test_typing_is_refused_outside_the_room_or_for_others(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    eve = await make_client(node, "eve")
    room_id = await new_room(alice)
    typing_path = path("rooms", room_id, "typing", eve.user_id)
    body = {"typing": True, "timeout": 1000}
    assert await errcode(node, "PUT", typing_path, eve, body=body) == (403, "M_FORBIDDEN")
    as_alice = path("rooms", room_id, "typing", alice.user_id)
    assert await errcode(node, "PUT", as_alice, eve, body=body) == (403, "M_FORBIDDEN")
    assert await errcode(node, "PUT", as_alice, alice, body={"typing": "yes"}) == (
        400, "M_BAD_JSON")
    assert await errcode(node, "PUT", as_alice, alice, raw_body=b"{") == (400, "M_NOT_JSON")
    assert await errcode(node, "PUT", as_alice, alice, body={}) == (400, "M_MISSING_PARAM")


async def test_public_receipts_reach_everyone_private_ones_only_their_owner(
    node: Node, make_client: ClientFactory
) -> None:
    alice, bob, room_id = await two_members(node, make_client)
    first = await send_text(alice, room_id, "one")
    second = await send_text(alice, room_id, "two")
    alice_since = (await sync(alice, None)).next_batch
    bob_since = (await sync(bob, None)).next_batch
    read = await bob.update_receipt_marker(room_id, first)
    assert isinstance(read, nio.UpdateReceiptMarkerResponse), read
    private = await bob.update_receipt_marker(
        room_id, second, receipt_type=nio.ReceiptType.read_private, thread_id=None
    )
    assert isinstance(private, nio.UpdateReceiptMarkerResponse), private
    seen_by_alice = receipts_of(await sync(alice, alice_since), room_id)
    assert [(r.event_id, r.receipt_type, r.user_id, r.thread_id) for r in seen_by_alice] == [
        (first, "m.read", bob.user_id, "main")
    ]
    seen_by_bob = {
        (r.event_id, r.receipt_type, r.thread_id)
        for r in receipts_of(await sync(bob, bob_since), room_id)
    }
    assert seen_by_bob == {(first, "m.read", "main"), (second, "m.read.private", None)}


async def test_receipts_are_in_an_initial_sync_and_replace_older_ones(
    node: Node, make_client: ClientFactory
) -> None:
    alice, bob, room_id = await two_members(node, make_client)
    first = await send_text(alice, room_id, "one")
    second = await send_text(alice, room_id, "two")
    for event_id in (first, second):
        sent = await bob.update_receipt_marker(room_id, event_id, thread_id=None)
        assert isinstance(sent, nio.UpdateReceiptMarkerResponse)
    receipts = receipts_of(await sync(alice, None), room_id)
    assert [(r.event_id, r.user_id) for r in receipts] == [(second, bob.user_id)]


async def test_a_receipt_wakes_a_waiting_sync(node: Node, make_client: ClientFactory) -> None:
    alice, bob, room_id = await two_members(node, make_client)
    event_id = await send_text(alice, room_id, "read me")
    since = (await sync(alice, None)).next_batch
    waiting = asyncio.create_task(sync(alice, since, timeout=20_000))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    assert isinstance(await bob.update_receipt_marker(room_id, event_id),
                      nio.UpdateReceiptMarkerResponse)
    response = await waiting
    assert time.monotonic() - started < 5
    assert [r.user_id for r in receipts_of(response, room_id)] == [bob.user_id]


async def test_receipt_errors(node: Node, make_client: ClientFactory) -> None:
    alice, bob, room_id = await two_members(node, make_client)
    eve = await make_client(node, "eve")
    event_id = await send_text(alice, room_id, "x")
    receipt = path("rooms", room_id, "receipt", "m.read", event_id)
    assert await errcode(node, "POST", receipt, eve, body={}) == (403, "M_FORBIDDEN")
    unknown = path("rooms", room_id, "receipt", "m.read", "$nope")
    assert await errcode(node, "POST", unknown, bob, body={}) == (404, "M_NOT_FOUND")
    strange = path("rooms", room_id, "receipt", "m.seen", event_id)
    assert await errcode(node, "POST", strange, bob, body={}) == (400, "M_INVALID_PARAM")
    assert await errcode(node, "POST", receipt, bob, body={"thread_id": ""}) == (
        400, "M_INVALID_PARAM")
    assert await errcode(node, "POST", receipt, bob, body={"thread_id": 5}) == (
        400, "M_INVALID_PARAM")
    fully_read = path("rooms", room_id, "receipt", "m.fully_read", event_id)
    assert await errcode(node, "POST", fully_read, bob, body={"thread_id": "main"}) == (
        400, "M_INVALID_PARAM")
    status, _ = await call(node, "POST", receipt, bob)
    assert status == 200


async def test_read_markers_set_fully_read_and_the_receipt(
    node: Node, make_client: ClientFactory
) -> None:
    alice, bob, room_id = await two_members(node, make_client)
    event_id = await send_text(alice, room_id, "read")
    since = (await sync(bob, None)).next_batch
    alice_since = (await sync(alice, None)).next_batch
    marked = await bob.room_read_markers(room_id, event_id, read_event=event_id)
    assert isinstance(marked, nio.RoomReadMarkersResponse), marked
    response = await sync(bob, since)
    [fully_read] = response.rooms.join[room_id].account_data
    assert isinstance(fully_read, nio.FullyReadEvent) and fully_read.event_id == event_id
    assert [r.user_id for r in receipts_of(await sync(alice, alice_since), room_id)] == [
        bob.user_id
    ]
    status, content = await call(
        node, "GET", path("user", bob.user_id, "rooms", room_id, "account_data",
                          "m.fully_read"), bob
    )
    assert (status, content) == (200, {"event_id": event_id})


async def test_fully_read_through_the_receipt_endpoint(
    node: Node, make_client: ClientFactory
) -> None:
    alice, bob, room_id = await two_members(node, make_client)
    event_id = await send_text(alice, room_id, "read")
    since = (await sync(bob, None)).next_batch
    status, _ = await call(
        node, "POST", path("rooms", room_id, "receipt", "m.fully_read", event_id), bob, body={}
    )
    assert status == 200
    room = (await raw_sync(node, bob, {"since": since}))["rooms"]["join"][room_id]
    assert room["account_data"]["events"] == [
        {"type": "m.fully_read", "content": {"event_id": event_id}}
    ]
    assert room["ephemeral"]["events"] == []


async def test_read_markers_errors(node: Node, make_client: ClientFactory) -> None:
    alice, bob, room_id = await two_members(node, make_client)
    eve = await make_client(node, "eve")
    event_id = await send_text(alice, room_id, "x")
    markers = path("rooms", room_id, "read_markers")
    assert await errcode(node, "POST", markers, eve, body={"m.fully_read": event_id}) == (
        403, "M_FORBIDDEN")
    assert await errcode(node, "POST", markers, bob, body={"m.fully_read": 3}) == (
        400, "M_INVALID_PARAM")
    assert await errcode(node, "POST", markers, bob, body={"m.read": "$missing"}) == (
        404, "M_NOT_FOUND")


async def test_joining_brings_current_typing_and_existing_receipts(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    carol = await make_client(node, "carol")
    room_id = await public_room(alice)
    await join(carol, room_id)
    event_id = await send_text(alice, room_id, "hello")
    assert isinstance(await carol.update_receipt_marker(room_id, event_id),
                      nio.UpdateReceiptMarkerResponse)
    assert isinstance(await alice.room_typing(room_id, True, 30_000), nio.RoomTypingResponse)
    bob = await make_client(node, "bob")
    since = (await sync(bob, None)).next_batch
    await join(bob, room_id)
    response = await sync(bob, since)
    assert typing_of(response, room_id) == [[alice.user_id]]
    assert [(r.event_id, r.user_id) for r in receipts_of(response, room_id)] == [
        (event_id, carol.user_id)
    ]
