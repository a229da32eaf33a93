"""What a server is given of a room's history over federation follows the history visibility
at each event: a server whose users were not there when ``joined``-only history was sent gets
those events redacted (server-server API "Backfilling and retrieving missing events"; client-server
API "Room History Visibility")."""

from __future__ import annotations

from typing import Any

import nio
import pytest

from rocketnode.federation.client import path_segment
from tests.integration.federation.cluster import Cluster
from tests.nodes import ClientFactory
from tests.support.matrix import join, send_text, wait_for_body, wait_for_membership

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("visibility", "readable"), [("joined", False), ("shared", True)])
async def test_backfill_serves_history_as_the_requesting_server_may_see_it(
        cluster: Cluster, make_client: ClientFactory, visibility: str, readable: bool) -> None:
    a, b = await cluster.start("a"), await cluster.start("b")
    alice = await make_client(a.node, "alice")
    bob = await make_client(b.node, "bob")
    created = await alice.room_create(preset=nio.RoomPreset.public_chat, initial_state=[
        {"type": "m.room.history_visibility", "state_key": "",
         "content": {"history_visibility": visibility}}])
    assert isinstance(created, nio.RoomCreateResponse), created
    room_id = created.room_id
    for i in range(3):
        await send_text(alice, room_id, f"before {i}")
    await join(bob, room_id, via=[a.server_name])
    await wait_for_membership(alice, room_id, bob.user_id, "join")
    after = await send_text(alice, room_id, "after")
    await wait_for_body(bob, room_id, "after")

    answer: Any = await b.node.federation.client.get(  # type: ignore[union-attr]
        a.server_name, f"/_matrix/federation/v1/backfill/{path_segment(room_id)}",
        {"v": [after], "limit": "20"})
    by_body = [p for p in answer["pdus"] if p.get("type") == "m.room.message"]
    assert len(by_body) == 4
    messages = {p["content"].get("body") for p in by_body}
    if readable:
        assert messages == {"before 0", "before 1", "before 2", "after"}
    else:
        assert messages == {"after", None}  # the three earlier ones come redacted
        assert sum(1 for p in by_body if p["content"] == {}) == 3
