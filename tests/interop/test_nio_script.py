"""Scenario 11: a matrix-nio client on each server runs the same script at the same time — sync,
talk, change their own display name, mark what they read, sync until they have seen everything —
and the test compares what each client saw through its own /sync.

Spec: client-server API "Syncing" (timeline, state, ephemeral events, ``limited``), "Filtering"
(the timeline limit), "Receipts", "Profiles" (a display name change is a member event in every
joined room), server-server API "Transactions".
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import nio
import pytest

from tests.interop.conftest import Servers
from tests.support.matrix import create_room, join, wait_for_membership

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]
MESSAGES = 8
SYNC_FILTER = {"room": {"timeline": {"limit": 1000}}}
DEADLINE_S = 60.0


@dataclasses.dataclass
class Seen:
    """What one client learned from its /sync."""

    messages: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    receipts: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    limited: int = 0
    room: dict[str, Any] = dataclasses.field(default_factory=dict)


async def script(client: nio.AsyncClient, room_id: str, tag: str, partner: str) -> Seen:
    seen = Seen()

    async def on_message(room: nio.MatrixRoom, event: nio.RoomMessageText) -> None:
        if room.room_id == room_id:
            seen.messages.append((event.sender, event.body))

    async def on_receipt(room: nio.MatrixRoom, event: nio.ReceiptEvent) -> None:
        if room.room_id == room_id:
            seen.receipts.update((r.user_id, r.event_id) for r in event.receipts
                                 if r.receipt_type == "m.read")

    client.add_event_callback(on_message, nio.RoomMessageText)  # type: ignore[arg-type]
    client.add_ephemeral_callback(on_receipt, nio.ReceiptEvent)  # type: ignore[arg-type]

    async def sync_once(timeout_ms: int = 0) -> None:
        response = await client.sync(timeout=timeout_ms, sync_filter=SYNC_FILTER)
        assert isinstance(response, nio.SyncResponse), response
        joined = response.rooms.join.get(room_id)
        if joined is not None and joined.timeline.limited and client.next_batch:
            seen.limited += 1

    await sync_once()
    # the display names first, and both clients wait until they see both: a member event
    # that is concurrent with the partner's messages can go back to its old content in
    # Synapse's /sync, whose ``state`` is the state at the start of the timeline — at a
    # remote message built before the change arrived (the spec's /sync, fixed by MSC4222's
    # ``state_after``), and nio applies it
    await client.set_displayname(f"{tag} (nio)")
    room = client.rooms[room_id]
    deadline = time.monotonic() + DEADLINE_S
    while {room.user_name(u) for u in room.users} != {"sy (nio)", "rn (nio)"}:
        assert time.monotonic() < deadline, \
            f"{tag}: names {[(u, room.user_name(u)) for u in room.users]}"
        await sync_once(1000)
    for i in range(MESSAGES):
        sent = await client.room_send(room_id, "m.room.message",
                                      {"msgtype": "m.text", "body": f"{tag} says {i}"})
        assert isinstance(sent, nio.RoomSendResponse), sent
        await sync_once()
        await asyncio.sleep(0.05)
    while len(seen.messages) < 2 * MESSAGES:
        assert time.monotonic() < deadline, f"{tag} saw only {seen.messages}"
        await sync_once(1000)

    # mark the partner's last message as read, and wait for the partner's receipt
    last = await client.room_messages(room_id, client.next_batch or "", limit=50)
    assert isinstance(last, nio.RoomMessagesResponse), last
    theirs = next(e for e in last.chunk if isinstance(e, nio.RoomMessageText)
                  and e.sender == partner)
    marked = await client.room_read_markers(room_id, theirs.event_id, theirs.event_id)
    assert isinstance(marked, nio.RoomReadMarkersResponse), marked
    while not any(user == partner for user, _ in seen.receipts):
        assert time.monotonic() < deadline, f"{tag} saw no receipt of {partner}"
        await sync_once(1000)

    seen.room = {
        "name": room.name, "topic": room.topic, "members": sorted(room.users),
        "display_names": sorted(room.user_name(u) or "" for u in room.users),
        "power_levels": {u: room.power_levels.get_user_level(u) for u in room.users},
        "joined_count": room.joined_count,
    }
    return seen


async def test_same_script_on_both_sides(servers: Servers) -> None:
    sy = await servers.user(servers.synapse, "nio_sy")
    rn = await servers.user(servers.rocket, "nio_rn")
    room_id = await create_room(sy, name="Scripted", topic="same script, both sides")
    await join(rn, room_id, via=[servers.synapse.server_name])
    await wait_for_membership(sy, room_id, rn.user_id, "join")

    seen_sy, seen_rn = await asyncio.gather(
        script(servers.again(sy), room_id, "sy", rn.user_id),
        script(servers.again(rn), room_id, "rn", sy.user_id))

    for seen in (seen_sy, seen_rn):
        assert seen.limited == 0  # no gap in either /sync
        assert len(seen.messages) == len(set(seen.messages)) == 2 * MESSAGES, seen.messages
        for who, tag in ((sy.user_id, "sy"), (rn.user_id, "rn")):
            mine = [body for sender, body in seen.messages if sender == who]
            assert mine == [f"{tag} says {i}" for i in range(MESSAGES)], mine
    assert set(seen_sy.messages) == set(seen_rn.messages)
    assert seen_sy.room == seen_rn.room
    assert seen_sy.room["name"] == "Scripted" and seen_sy.room["joined_count"] == 2
    assert seen_sy.room["display_names"] == ["rn (nio)", "sy (nio)"], seen_sy.room
