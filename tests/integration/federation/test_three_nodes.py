"""Three nodes in one room: everyone sees everything, and the room outlives its creator's
server."""

from __future__ import annotations

import asyncio
import functools

import nio
import pytest

from tests.integration.federation.cluster import Cluster
from tests.nodes import ClientFactory
from tests.support.matrix import (
    bodies,
    eventually,
    join,
    send_text,
    wait_for_bodies,
    wait_for_membership,
    wait_for_same_state,
)

pytestmark = pytest.mark.slow
CONCURRENT_MESSAGES = 60


@pytest.mark.parametrize("room_version", ["11", "12"])
async def test_three_nodes_see_everything_and_survive_the_creator(
        cluster: Cluster, make_client: ClientFactory, room_version: str) -> None:
    a, b, c = [await cluster.start(n) for n in "abc"]
    alice = await make_client(a.node, "alice")
    bob = await make_client(b.node, "bob")
    carol = await make_client(c.node, "carol")
    created = await alice.room_create(preset=nio.RoomPreset.public_chat,
                                      room_version=room_version)
    assert isinstance(created, nio.RoomCreateResponse), created
    room_id = created.room_id
    await join(bob, room_id, via=[a.server_name])
    await wait_for_membership(alice, room_id, bob.user_id, "join")
    await join(carol, room_id, via=[b.server_name])  # through a server that is not the creator's
    for watcher in (alice, bob):
        await wait_for_membership(watcher, room_id, carol.user_id, "join")

    expected: list[str] = []
    clients = [alice, bob, carol]
    for round_ in range(2):
        for sender in clients:
            expected.append(f"{sender.user_id} says {round_}")
            await send_text(sender, room_id, expected[-1])
            for watcher in clients:
                await wait_for_bodies(watcher, room_id, expected)
    for watcher in clients:
        assert await bodies(watcher, room_id) == expected
    levels = await alice.room_get_state_event(room_id, "m.room.power_levels")
    assert isinstance(levels, nio.RoomGetStateEventResponse), levels
    content = {**levels.content, "users": {**levels.content["users"], bob.user_id: 50}}
    raised = await alice.room_put_state(room_id, "m.room.power_levels", content)
    assert isinstance(raised, nio.RoomPutStateResponse), raised
    await wait_for_same_state(clients, room_id)

    await a.stop()
    later: list[str] = []
    for i in range(4):
        sender, watcher = (bob, carol) if i % 2 == 0 else (carol, bob)
        later.append(f"{sender.user_id} without the creator {i}")
        await send_text(sender, room_id, later[-1])
        await wait_for_bodies(watcher, room_id, later)
    topic = await bob.room_put_state(room_id, "m.room.topic", {"topic": "creator away"})
    assert isinstance(topic, nio.RoomPutStateResponse), topic
    await wait_for_same_state([bob, carol], room_id)
    for watcher in (bob, carol):
        assert await bodies(watcher, room_id) == expected + later

    await a.start()  # back: it catches up with what it missed
    await send_text(bob, room_id, "welcome back")
    await wait_for_bodies(alice, room_id, [*later, "welcome back"], timeout=30)
    await wait_for_same_state(clients, room_id, timeout=30)


async def test_a_new_server_joins_while_the_creators_server_is_down(
        cluster: Cluster, make_client: ClientFactory) -> None:
    a, b = await cluster.start("a"), await cluster.start("b")
    # d cannot fetch a's keys from a while it is down: it asks b, its notary
    d = await cluster.start("d", federation_trusted_key_servers=(b.server_name,))
    alice = await make_client(a.node, "alice")
    bob = await make_client(b.node, "bob")
    dave = await make_client(d.node, "dave")
    created = await alice.room_create(preset=nio.RoomPreset.public_chat)
    assert isinstance(created, nio.RoomCreateResponse), created
    room_id = created.room_id
    await join(bob, room_id, via=[a.server_name])
    await send_text(alice, room_id, "before a went down")
    await wait_for_bodies(bob, room_id, ["before a went down"])

    await a.stop()
    await join(dave, room_id, via=[b.server_name])
    await send_text(dave, room_id, "dave joined without a")
    await wait_for_bodies(bob, room_id, ["dave joined without a"])
    await send_text(bob, room_id, "welcome dave")
    await wait_for_bodies(dave, room_id, ["dave joined without a", "welcome dave"])

    await a.start()
    await send_text(bob, room_id, "a is back")
    await wait_for_bodies(alice, room_id, ["dave joined without a", "welcome dave", "a is back"],
                          timeout=30)
    await wait_for_same_state([alice, bob, dave], room_id, timeout=30)


async def test_concurrent_senders_on_three_servers_converge(
        cluster: Cluster, make_client: ClientFactory) -> None:
    """Three servers send messages and state changes at the same time, so the room's graph
    keeps forking and merging: every server ends with every message once, each sender's in
    the order sent, and the same state."""
    a, b, c = [await cluster.start(n) for n in "abc"]
    alice = await make_client(a.node, "alice")
    bob = await make_client(b.node, "bob")
    carol = await make_client(c.node, "carol")
    clients = [alice, bob, carol]
    created = await alice.room_create(preset=nio.RoomPreset.public_chat)
    assert isinstance(created, nio.RoomCreateResponse), created
    room_id = created.room_id
    for client in (bob, carol):
        await join(client, room_id, via=[a.server_name])
        await wait_for_membership(alice, room_id, client.user_id, "join")
    levels = await alice.room_get_state_event(room_id, "m.room.power_levels")
    assert isinstance(levels, nio.RoomGetStateEventResponse), levels
    users = {**levels.content["users"], bob.user_id: 50, carol.user_id: 50}
    raised = await alice.room_put_state(room_id, "m.room.power_levels",
                                        {**levels.content, "users": users})
    assert isinstance(raised, nio.RoomPutStateResponse), raised
    await wait_for_same_state(clients, room_id)

    async def stream(client: nio.AsyncClient) -> None:
        for i in range(CONCURRENT_MESSAGES):
            await send_text(client, room_id, f"{client.user_id} {i:04d}")
            if i % 10 == 0:
                for event_type, key in (("m.room.topic", "topic"), ("m.room.name", "name")):
                    sent = await client.room_put_state(room_id, event_type,
                                                       {key: f"{client.user_id} {i}"})
                    assert isinstance(sent, nio.RoomPutStateResponse), sent
    await asyncio.wait_for(asyncio.gather(*(stream(c) for c in clients)), timeout=60)

    expected = {f"{c.user_id} {i:04d}" for c in clients for i in range(CONCURRENT_MESSAGES)}
    for watcher in clients:
        seen = await eventually(functools.partial(_all_seen, watcher, room_id, len(expected)),
                                timeout=60, interval=0.25, what="every message everywhere")
        assert len(seen) == len(set(seen)) and set(seen) == expected
        for sender in clients:
            own = [s for s in seen if s.startswith(f"{sender.user_id} ")]
            assert own == sorted(own), f"{sender.user_id}'s messages out of order"
    await wait_for_same_state(clients, room_id)


async def _all_seen(client: nio.AsyncClient, room_id: str, count: int) -> list[str]:
    seen = await bodies(client, room_id, limit=count + 200)
    assert len(seen) >= count, f"{len(seen)} of {count}"
    return seen
