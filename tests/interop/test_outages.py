"""Scenario 7: outages. Synapse is stopped while RocketNode users keep sending, then restarted:
everything arrives. The reverse: RocketNode is stopped while Synapse users send, then started
again on the same data directory and ports: it catches up.

Spec: server-server API "Transactions" (retries of the same PDUs), "Backfilling and retrieving
missing events" (get_missing_events to close the gap after an outage; backfill for what is
older than a receiver pulls). Synapse retries a destination only when it has something new to
send to it or hears from it (any signed request resets its backoff), so after RocketNode
restarts, the first thing its user does (here: typing) is what brings Synapse's backlog.
"""

from __future__ import annotations

import asyncio

import nio
import pytest

from tests.interop.conftest import Servers
from tests.support.matrix import (
    bodies,
    create_room,
    join,
    same_timeline_from,
    send_text,
    timeline,
    wait_for_bodies,
    wait_for_membership,
    wait_for_same_state,
)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]
BACKLOG = 30
LONG_BACKLOG = 230
"""More than the sender's catch-up threshold (200): RocketNode then sends only the newest PDU
and the receiver pulls the rest."""
LONG_SYNAPSE_BACKLOG = 120
"""Six times what Synapse answers to one get_missing_events (20)."""

_room: dict[str, str] = {}


async def shared_room(servers: Servers) -> tuple[nio.AsyncClient, nio.AsyncClient, str]:
    """alice on Synapse and bob on RocketNode in one room (made once per module)."""
    if not _room:
        alice = await servers.user(servers.synapse, "alice")
        bob = await servers.user(servers.rocket, "bob")
        room_id = await create_room(alice, name="Weathering outages")
        await join(bob, room_id, via=[servers.synapse.server_name])
        await wait_for_membership(alice, room_id, bob.user_id, "join")
        _room.update(alice=alice.access_token, bob=bob.access_token, room_id=room_id)
        shared_room.clients = (alice, bob)  # type: ignore[attr-defined]
    alice, bob = shared_room.clients  # type: ignore[attr-defined]
    return alice, bob, _room["room_id"]


async def test_synapse_outage(servers: Servers) -> None:
    alice, bob, room_id = await shared_room(servers)
    await send_text(alice, room_id, "before the outage")
    await wait_for_bodies(bob, room_id, ["before the outage"])
    await asyncio.to_thread(servers.synapse.stop)
    try:
        sent = [f"while synapse is down {i}" for i in range(BACKLOG)]
        for body in sent:
            await send_text(bob, room_id, body)
    finally:
        await servers.synapse.start()
    await wait_for_bodies(alice, room_id, sent, timeout=60)
    reply = "got them all"
    await send_text(alice, room_id, reply)
    await wait_for_bodies(bob, room_id, [*sent, reply])
    assert (await bodies(alice, room_id))[-BACKLOG - 2:] == ["before the outage", *sent, reply]
    await same_timeline_from([alice, bob], room_id, (await timeline(bob, room_id))[0]["event_id"])
    await wait_for_same_state([alice, bob], room_id)


async def test_rocketnode_outage(servers: Servers) -> None:
    alice, bob, room_id = await shared_room(servers)
    await servers.rocket.stop()
    try:
        sent = [f"while rocketnode is down {i}" for i in range(BACKLOG)]
        for body in sent:
            await send_text(alice, room_id, body)
    finally:
        await servers.rocket.start()  # a new Node on the same data directory and ports
    # bob's client keeps its session across the restart; his typing notification is the
    # first thing Synapse hears from the restarted server, and it sends its backlog
    typing = await bob.room_typing(room_id, True, timeout=10_000)
    assert isinstance(typing, nio.RoomTypingResponse), typing
    await wait_for_bodies(bob, room_id, sent, timeout=60)
    back = "back online"
    await send_text(bob, room_id, back)
    await wait_for_bodies(alice, room_id, [*sent, back])
    await same_timeline_from([alice, bob], room_id, (await timeline(bob, room_id))[0]["event_id"])
    await wait_for_same_state([alice, bob], room_id)


async def test_long_synapse_outage(servers: Servers) -> None:
    """A backlog over the catch-up threshold: Synapse gets the newest event, pulls what it can
    with get_missing_events and backfills the rest when alice scrolls back."""
    alice, bob, room_id = await shared_room(servers)
    await asyncio.to_thread(servers.synapse.stop)
    try:
        sent = [f"long outage {i}" for i in range(LONG_BACKLOG)]
        for body in sent:
            await send_text(bob, room_id, body)
    finally:
        await servers.synapse.start()
    await wait_for_bodies(alice, room_id, sent, timeout=90)
    await same_timeline_from([alice, bob], room_id, (await timeline(bob, room_id))[0]["event_id"])


async def test_long_rocketnode_outage(servers: Servers) -> None:
    """A longer backlog from Synapse: it sends only its newest event once RocketNode is back,
    and answers get_missing_events with at most 20 events a time, so RocketNode pulls the gap
    in several rounds."""
    alice, bob, room_id = await shared_room(servers)
    await servers.rocket.stop()
    try:
        sent = [f"long rocketnode outage {i}" for i in range(LONG_SYNAPSE_BACKLOG)]
        for body in sent:
            await send_text(alice, room_id, body)
    finally:
        await servers.rocket.start()
    typing = await bob.room_typing(room_id, True, timeout=10_000)
    assert isinstance(typing, nio.RoomTypingResponse), typing
    await wait_for_bodies(bob, room_id, sent, timeout=90)
    await same_timeline_from([alice, bob], room_id, (await timeline(bob, room_id))[0]["event_id"])
