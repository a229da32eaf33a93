"""Stopping a node and starting it again on the same data directory resumes exactly where it
stopped: accounts, tokens, rooms, state and the DAG's forward extremities are intact, sending
continues on top of the old DAG, and a stop under load loses no acknowledged write."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import nio
import pytest

from rocketnode.app import DataDirInUse, Node
from rocketnode.config import Config
from tests.nodes import ClientFactory, node_config

pytestmark = pytest.mark.slow
V3 = "/_matrix/client/v3"


@contextlib.asynccontextmanager
async def started(config: Config) -> AsyncIterator[Node]:
    node = Node(config)
    await node.start()
    try:
        yield node
    finally:
        await node.stop()


async def reconnect(node: Node, client: nio.AsyncClient) -> nio.AsyncClient:
    """The same session (user, device, token) pointed at the restarted node's new port."""
    again = nio.AsyncClient(node.client_url, client.user_id, device_id=client.device_id)
    again.restore_login(client.user_id, client.device_id, client.access_token)
    return again


async def send(client: nio.AsyncClient, room_id: str, body: str, txn: str) -> str:
    sent = await client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": body},
                                  tx_id=txn)
    assert isinstance(sent, nio.RoomSendResponse), sent
    return sent.event_id


async def test_restart_resumes_where_it_stopped(tmp_path: Path, make_client: ClientFactory
                                              ) -> None:
    config = node_config(tmp_path / "node")
    async with started(config) as node:
        alice = await make_client(node, "alice")
        bob = await make_client(node, "bob")
        created = await alice.room_create(preset=nio.RoomPreset.public_chat, name="Persistent",
                                          alias="persistent")
        assert isinstance(created, nio.RoomCreateResponse), created
        room_id = created.room_id
        assert isinstance(await bob.join(room_id), nio.JoinResponse)
        first = await send(alice, room_id, "one", "t1")
        await send(bob, room_id, "two", "t2")
        topic = await alice.room_put_state(room_id, "m.room.topic", {"topic": "kept"})
        assert isinstance(topic, nio.RoomPutStateResponse), topic

        stores = node.services.stores
        position = await stores.events.current_stream_ordering()
        extremities = await stores.events.get_forward_extremities(room_id)
        state = await stores.state.get_current_state(room_id)
        timeline, _ = await stores.events.room_events_between(room_id, 0, position, 1000)
        room = await stores.rooms.get_room(room_id)
        assert room is not None
        signing_key = node.signing_key

    async with started(config) as node:
        stores = node.services.stores
        assert node.signing_key == signing_key
        assert await stores.events.current_stream_ordering() == position
        assert node.services.notifier.position == position
        assert await stores.events.get_forward_extremities(room_id) == extremities
        assert await stores.state.get_current_state(room_id) == state
        assert await stores.rooms.get_room(room_id) == room
        again, _ = await stores.events.room_events_between(room_id, 0, position, 1000)
        assert [(e.event_id, e.pdu.data) for e in again] == [
            (e.event_id, e.pdu.data) for e in timeline
        ]
        alias = await stores.rooms.get_alias(f"#persistent:{config.server_name}")
        assert alias is not None and alias[0] == room_id

        alice2 = await reconnect(node, alice)
        bob2 = await reconnect(node, bob)
        try:
            whoami = await alice2.whoami()
            assert isinstance(whoami, nio.WhoamiResponse), whoami
            assert (whoami.user_id, whoami.device_id) == (alice.user_id, alice.device_id)
            for client in (alice2, bob2):
                rooms = await client.joined_rooms()
                assert isinstance(rooms, nio.JoinedRoomsResponse), rooms
                assert rooms.rooms == [room_id]

            assert await send(alice2, room_id, "one (retried)", "t1") == first
            after = await send(bob2, room_id, "three", "t3")
            stored = await stores.events.get_event(after)
            assert stored is not None
            assert list(stored.pdu.prev_events) == extremities
            previous = await stores.events.get_events(extremities)
            assert stored.pdu.depth == max(e.pdu.depth for e in previous.values()) + 1
            assert stored.stream_ordering > position
            assert await stores.events.get_forward_extremities(room_id) == [after]
            assert await stores.state.get_current_state(room_id) == state

            fresh = nio.AsyncClient(node.client_url, "alice")
            login = await fresh.login("secret-pw")
            await fresh.close()
            assert isinstance(login, nio.LoginResponse), login
        finally:
            await alice2.close()
            await bob2.close()


async def test_stop_under_load_keeps_every_acknowledged_event(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    config = node_config(tmp_path / "node")
    node = Node(config)
    await node.start()
    try:
        alice = await make_client(node, "alice")
        created = await alice.room_create()
        assert isinstance(created, nio.RoomCreateResponse), created
        room_id = created.room_id
        url, token = node.client_url, alice.access_token

        async def put(session: aiohttp.ClientSession, i: int) -> str | None:
            path = f"{url}{V3}/rooms/{room_id}/send/m.room.message/load{i}"
            try:
                async with session.put(path, json={"msgtype": "m.text", "body": f"m{i}"},
                                       headers={"Authorization": f"Bearer {token}"}) as answer:
                    if answer.status != 200:
                        assert answer.status < 500, await answer.text()
                        return None
                    event_id = (await answer.json())["event_id"]
                    assert isinstance(event_id, str)
                    return event_id
            except aiohttp.ClientError:
                return None  # refused or cut off by the stop: not acknowledged

        async with aiohttp.ClientSession() as session:
            sends = [asyncio.create_task(put(session, i)) for i in range(60)]
            while sum(task.done() for task in sends) < 10:
                await asyncio.sleep(0.005)
            await node.stop()
            acknowledged = [e for e in await asyncio.gather(*sends) if e is not None]
    finally:
        await node.stop()
    assert len(acknowledged) >= 10

    async with started(config) as node:
        events = node.services.stores.events
        stored = await events.get_events(acknowledged)
        assert set(stored) == set(acknowledged)
        timeline, _ = await events.room_events_between(
            room_id, 0, await events.current_stream_ordering(), 1000
        )
        bodies = [e.pdu.content.get("body") for e in timeline if e.pdu.type == "m.room.message"]
        assert len(bodies) == len(set(bodies))  # nothing stored twice
        known = {e.event_id for e in timeline}
        for event in timeline:  # the DAG has no holes
            assert all(prev in known for prev in event.pdu.prev_events)
        extremities = await events.get_forward_extremities(room_id)
        assert extremities == [timeline[-1].event_id]
        alice2 = await reconnect(node, alice)
        try:
            resumed = await send(alice2, room_id, "after", "after-stop")
        finally:
            await alice2.close()
        resumed_event = await events.get_event(resumed)
        assert resumed_event is not None and list(resumed_event.pdu.prev_events) == extremities


async def test_a_second_node_on_the_same_data_directory_is_refused(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    config = node_config(tmp_path / "node")
    async with started(config) as first:
        alice = await make_client(first, "alice")
        with pytest.raises(DataDirInUse):
            await Node(config).start()
        whoami = await alice.whoami()  # the first node is untouched
        assert isinstance(whoami, nio.WhoamiResponse), whoami
    async with started(config) as second:  # and once it stopped, the directory is free
        assert await second.services.stores.accounts.count_accounts() == 1
