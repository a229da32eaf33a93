"""Scenario 10: three servers in one room — RocketNode, Synapse, RocketNode. While one of them is
stopped, the other two change the room's state concurrently (the same state keys from both
sides, so the room's graph forks and has to be resolved); once the stopped server is back, all
three agree on the room's state and have every message.

Spec: server-server API "Room State Resolution" (v2, for room version 12), "Transactions",
"Backfilling and retrieving missing events" (the returning server closes its gap), "Joining
Rooms" (joining through a server that is not the room's creator).
"""

from __future__ import annotations

import asyncio

import nio
import pytest

from tests.interop.conftest import Servers
from tests.support.matrix import (
    bodies,
    create_room,
    eventually,
    get_state_event,
    join,
    put_state,
    room_state,
    send_text,
    timeline,
    wait_for_bodies,
    wait_for_membership,
    wait_for_same_state,
)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]
ROCKETNODES = 2
ROUNDS = 3

_clients: dict[str, nio.AsyncClient] = {}
_room: list[str] = []


async def three_server_room(servers: Servers) -> tuple[dict[str, nio.AsyncClient], str]:
    """ann on rocket1 creates the room; syd (Synapse) joins through rocket1, rob (rocket2)
    through Synapse; both get power to change state. Made once per module."""
    if not _room:
        ann = await servers.user(servers.rockets[0], "ann")
        syd = await servers.user(servers.synapse, "syd")
        rob = await servers.user(servers.rockets[1], "rob")
        room_id = await create_room(ann, name="Three servers")
        await join(syd, room_id, via=[servers.rockets[0].server_name])
        await wait_for_membership(ann, room_id, syd.user_id, "join")
        # Synapse joins with partial state (send_join with omit_members) and answers make_join
        # with 404 until it has resynced the full state; its GET /state waits for that
        await room_state(syd, room_id)
        await join(rob, room_id, via=[servers.synapse.server_name])
        for watcher in (ann, syd):
            await wait_for_membership(watcher, room_id, rob.user_id, "join")
        levels = await get_state_event(ann, room_id, "m.room.power_levels")
        assert levels is not None
        levels["users"] = {**levels["users"], syd.user_id: 100, rob.user_id: 100}
        await put_state(ann, room_id, "m.room.power_levels", levels)
        _clients.update(ann=ann, syd=syd, rob=rob)
        _room.append(room_id)
        await wait_for_same_state(list(_clients.values()), room_id)
    return _clients, _room[0]


async def change_state(client: nio.AsyncClient, room_id: str, tag: str) -> None:
    for i in range(ROUNDS):
        await put_state(client, room_id, "m.room.name", {"name": f"{tag} name {i}"})
        await put_state(client, room_id, "m.room.topic", {"topic": f"{tag} topic {i}"})
        await send_text(client, room_id, f"{tag} message {i}")


async def merges(servers: Servers, stopped: str, client: nio.AsyncClient,
                 room_id: str) -> int:
    """How many events of the room's timeline have several prev_events (read from a running
    RocketNode's store: the client API does not show prev_events)."""
    rocket = servers.rockets[1] if stopped == "rocket1" else servers.rockets[0]
    ids = [e["event_id"] for e in await timeline(client, room_id)]
    pdus = await rocket.node.services.rooms.states.pdus(ids)
    return sum(1 for pdu in pdus.values() if len(pdu.prev_events) > 1)


@pytest.mark.parametrize("stopped", ["rocket2", "synapse", "rocket1"])
async def test_concurrent_state_changes_while_one_is_stopped(servers: Servers,
                                                             stopped: str) -> None:
    clients, room_id = await three_server_room(servers)
    everyone = list(clients.values())
    away_user = {"rocket1": "ann", "synapse": "syd", "rocket2": "rob"}[stopped]
    away, live = clients[away_user], [c for n, c in clients.items() if n != away_user]
    server = {"rocket1": servers.rockets[0], "synapse": servers.synapse,
              "rocket2": servers.rockets[1]}[stopped]

    merges_before = await merges(servers, stopped, away, room_id)
    if server is servers.synapse:
        await asyncio.to_thread(servers.synapse.stop)
    else:
        await server.stop()  # type: ignore[union-attr]
    try:
        await asyncio.gather(*(change_state(c, room_id, f"{stopped}/{c.user_id}")
                               for c in live))
        await wait_for_same_state(live, room_id)
    finally:
        await server.start()

    # the returning user's first action tells the others (Synapse in particular) it is back
    typing = await away.room_typing(room_id, True, timeout=5_000)
    assert isinstance(typing, nio.RoomTypingResponse), typing
    state = await wait_for_same_state(everyone, room_id, timeout=90)
    expected = {f"{stopped}/{c.user_id} message {i}" for c in live for i in range(ROUNDS)}

    async def every_message(client: nio.AsyncClient) -> None:
        assert expected <= set(await bodies(client, room_id))
    for client in everyone:
        await eventually(lambda c=client: every_message(c), timeout=60,
                         what=f"every message on {client.homeserver}")
    names = {(await get_state_event(c, room_id, "m.room.name") or {}).get("name")
             for c in everyone}
    assert len(names) == 1 and names.pop() in {f"{stopped}/{c.user_id} name {ROUNDS - 1}"
                                               for c in live}, names
    assert ("m.room.member", away.user_id) in {(t, k) for t, k, _ in state}
    # the two sides did change state concurrently: the graph forked and was merged again
    assert await merges(servers, stopped, away, room_id) > merges_before

    back = f"{away.user_id} is back after {stopped} stopped"
    await send_text(away, room_id, back)
    for client in live:
        await wait_for_bodies(client, room_id, [back])
    await wait_for_same_state(everyone, room_id)
