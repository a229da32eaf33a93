"""Scenario 8: RocketNode restarts in the middle of a conversation with a Synapse user — a
graceful restart of an in-process node, and ``kill -9`` of a ``rocketnode serve`` process —
while both users keep sending: nothing is lost and nothing is duplicated, as the Synapse user
sees it (and as the RocketNode user sees it).

The RocketNode user's client does what a real client does when its server goes away: it
retries the same request, with the same transaction ID, until it is acknowledged.

Spec: client-server API "Transaction identifiers" (a retried PUT /send with the same txnId
returns the first event), server-server API "Transactions" (the outbound queue survives the
restart), "Backfilling and retrieving missing events" (the gap Synapse leaves while the node is
down is pulled with get_missing_events).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable

import aiohttp
import nio
import pytest

from tests.interop.conftest import Server, Servers
from tests.support.matrix import (
    api,
    bodies,
    create_room,
    eventually,
    join,
    room_path,
    send_text,
    timeline,
    wait_for_membership,
    wait_for_same_state,
)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]
ROCKETNODE_PROCESSES = 1
MESSAGES = 20
PACE_S = 0.1
RETRY_DEADLINE_S = 60.0


async def send_until_acknowledged(client: nio.AsyncClient, room_id: str, body: str,
                                  txn_id: str) -> str:
    """PUT /send with one transaction ID, again and again until the server answers 200."""
    path = room_path(room_id, "send", "m.room.message", txn_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RETRY_DEADLINE_S
    while True:
        try:
            status, answer = await api(client, "PUT", path, {"msgtype": "m.text", "body": body},
                                       timeout=10)
        except (aiohttp.ClientError, OSError, TimeoutError):
            status, answer = 0, None  # the server is away
        if status == 200:
            return str(answer["event_id"])
        assert status == 0 or status >= 500, (status, answer)
        assert loop.time() < deadline, f"{body!r} never acknowledged"
        await asyncio.sleep(0.1)


async def talk(client: nio.AsyncClient, room_id: str, prefix: str) -> list[str]:
    event_ids = []
    for i in range(MESSAGES):
        event_ids.append(await send_until_acknowledged(client, room_id, f"{prefix} {i}",
                                                       f"{prefix}-{i}"))
        await asyncio.sleep(PACE_S)
    return event_ids


async def conversation_across_restart(servers: Servers, rocket: Server, tag: str,
                                      restart: Callable[[], Awaitable[None]]) -> None:
    alice = await servers.user(servers.synapse, f"alice_{tag}")
    bob = await servers.user(rocket, f"bob_{tag}")
    room_id = await create_room(alice, name=f"Restart {tag}")
    await join(bob, room_id, via=[servers.synapse.server_name])
    await wait_for_membership(alice, room_id, bob.user_id, "join")

    async def restart_midway() -> None:
        await asyncio.sleep(MESSAGES * PACE_S / 3)
        await restart()

    alice_ids, bob_ids, _ = await asyncio.gather(
        talk(alice, room_id, f"alice-{tag}"), talk(bob, room_id, f"bob-{tag}"),
        restart_midway())
    # the last word of each: Synapse hears from the restarted node, and sends what it missed
    await send_text(bob, room_id, "bob is done")
    await send_text(alice, room_id, "alice is done")
    expected = {f"{who}-{tag} {i}" for who in ("alice", "bob") for i in range(MESSAGES)}
    expected |= {"bob is done", "alice is done"}

    for client in (alice, bob):
        async def complete(client: nio.AsyncClient = client) -> list[str]:
            seen = [b for b in await bodies(client, room_id) if b in expected]
            assert set(seen) == expected, sorted(expected - set(seen))
            return seen
        seen = await eventually(complete, timeout=60, interval=0.5,
                                what=f"every message on {client.homeserver}")
        duplicates = [b for b, n in collections.Counter(seen).items() if n > 1]
        assert not duplicates, duplicates
        for who in ("alice", "bob"):  # each sender's messages in the order sent
            mine = [b for b in seen if b.startswith(f"{who}-{tag} ")]
            assert mine == [f"{who}-{tag} {i}" for i in range(MESSAGES)], mine
    timeline_ids = {e["event_id"] for e in await timeline(alice, room_id)}
    assert set(alice_ids) | set(bob_ids) <= timeline_ids
    assert len(set(bob_ids)) == MESSAGES  # each retry got its own first event back
    await wait_for_same_state([alice, bob], room_id)


async def test_graceful_restart_mid_conversation(servers: Servers) -> None:
    rocket = servers.rocket

    async def restart() -> None:
        await rocket.stop()
        await rocket.start()

    await conversation_across_restart(servers, rocket, "graceful", restart)


async def test_kill_9_mid_conversation(servers: Servers) -> None:
    process = servers.processes[0]

    async def restart() -> None:
        pid = process.pid
        process.kill()
        assert pid is not None and process.pid is None
        await process.start()

    await conversation_across_restart(servers, process, "kill", restart)
