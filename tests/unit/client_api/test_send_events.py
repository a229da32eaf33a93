"""Sending state events: the state key in the path (client-server API "PUT
/rooms/{roomId}/state/{eventType}/{stateKey}")."""

from __future__ import annotations

import nio

from rocketnode.app import Node
from tests.nodes import ClientFactory
from tests.unit.client_api.client_http import call, path


async def test_empty_state_key_with_or_without_trailing_slash(
        node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    created = await alice.room_create(name="Slashes")
    assert isinstance(created, nio.RoomCreateResponse), created
    room_id = created.room_id
    without = path("rooms", room_id, "state", "m.room.topic")
    for url_path, topic in ((without, "no slash"), (without + "/", "trailing slash")):
        status, answer = await call(node, "PUT", url_path, alice, {"topic": topic})
        assert status == 200, answer
        status, content = await call(node, "GET", without, alice)
        assert (status, content) == (200, {"topic": topic})
    # nio sends the trailing slash for an empty state key
    sent = await alice.room_put_state(room_id, "m.room.topic", {"topic": "from nio"})
    assert isinstance(sent, nio.RoomPutStateResponse), sent
    status, content = await call(node, "GET", without, alice)
    assert (status, content) == (200, {"topic": "from nio"})


async def test_state_key_with_a_slash(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    created = await alice.room_create()
    assert isinstance(created, nio.RoomCreateResponse), created
    url_path = path("rooms", created.room_id, "state", "org.example.thing", "a/b")
    status, answer = await call(node, "PUT", url_path, alice, {"value": 1})
    assert status == 200, answer
    status, content = await call(node, "GET", url_path, alice)
    assert (status, content) == (200, {"value": 1})
