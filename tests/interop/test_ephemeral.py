"""Scenario 6: typing notifications and read receipts cross between the servers, both ways.

Spec: server-server API "Typing Notifications" (m.typing EDU), "Receipts" (m.receipt EDU);
client-server API "Typing Notifications", "Receipts" (``ephemeral`` events in /sync).
"""

from __future__ import annotations

from typing import Any

import nio
import pytest

from tests.interop.conftest import Servers
from tests.support.matrix import (
    V3,
    create_room,
    eventually,
    join,
    ok,
    send_text,
    wait_for_event,
    wait_for_membership,
)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]


async def ephemeral_since(client: nio.AsyncClient, room_id: str, since: str
                          ) -> list[dict[str, Any]]:
    body = await ok(client, "GET", f"{V3}/sync", query={"timeout": "0", "since": since})
    room = body.get("rooms", {}).get("join", {}).get(room_id, {})
    return list(room.get("ephemeral", {}).get("events", []))


async def sync_token(client: nio.AsyncClient) -> str:
    body = await ok(client, "GET", f"{V3}/sync", query={"timeout": "0"})
    return str(body["next_batch"])


@pytest.mark.parametrize("actor_home", ["synapse", "rocketnode"])
async def test_typing_and_receipts_cross(servers: Servers, actor_home: str) -> None:
    home, other = (servers.synapse, servers.rocket) if actor_home == "synapse" \
        else (servers.rocket, servers.synapse)
    actor = await servers.user(home, f"typist_{actor_home}")
    watcher = await servers.user(other, f"watcher_{actor_home}")
    room_id = await create_room(watcher, name="Ephemeral")
    await join(actor, room_id, via=[other.server_name])
    await wait_for_membership(watcher, room_id, actor.user_id, "join")
    event_id = await send_text(watcher, room_id, "please read me")
    await wait_for_event(actor, room_id, event_id)
    since = await sync_token(watcher)

    typing = await actor.room_typing(room_id, True, timeout=30_000)
    assert isinstance(typing, nio.RoomTypingResponse), typing

    async def typing_seen() -> None:
        events = await ephemeral_since(watcher, room_id, since)
        typing_users = [u for e in events if e["type"] == "m.typing"
                        for u in e["content"].get("user_ids", [])]
        assert actor.user_id in typing_users, events
    await eventually(typing_seen, what=f"{actor.user_id} typing on {other.server_name}")

    stopped = await actor.room_typing(room_id, False)
    assert isinstance(stopped, nio.RoomTypingResponse), stopped
    since = await sync_token(watcher)

    async def typing_stopped() -> None:
        body = await ok(watcher, "GET", f"{V3}/sync", query={"timeout": "0"})
        room = body["rooms"]["join"][room_id]
        typing_users = [u for e in room.get("ephemeral", {}).get("events", [])
                        if e["type"] == "m.typing" for u in e["content"].get("user_ids", [])]
        assert actor.user_id not in typing_users, room.get("ephemeral")
    await eventually(typing_stopped, what="typing to stop")

    receipt = await actor.room_read_markers(room_id, event_id, event_id)
    assert isinstance(receipt, nio.RoomReadMarkersResponse), receipt

    async def receipt_seen() -> None:
        events = await ephemeral_since(watcher, room_id, since)
        readers = [u for e in events if e["type"] == "m.receipt"
                   for u in e["content"].get(event_id, {}).get("m.read", {})]
        assert actor.user_id in readers, events
    await eventually(receipt_seen, what=f"{actor.user_id}'s receipt on {other.server_name}")
