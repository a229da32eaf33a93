"""Conflicting state changes made on two servers while they cannot reach each other: once they
reconnect and exchange an event, every server answers GET /state the same, and the auth rules
decided who won (server-server API "Room State Resolution").

The partition is made by stopping servers: a change on A while B is down, then a change on B
while A is down (neither knows of the other's), then both run again.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

import nio
import pytest

from tests.integration.federation.cluster import Cluster, NodeHandle
from tests.nodes import ClientFactory
from tests.support.matrix import (
    bodies,
    eventually,
    join,
    membership_of,
    send_text,
    wait_for_body,
    wait_for_membership,
    wait_for_same_state,
)

pytestmark = pytest.mark.slow

Change = Callable[[], Awaitable[None]]
BRANCH_LENGTH = 250
"""Longer than the outbound sender's catch-up threshold (200 queued PDUs)."""


async def put_state(client: nio.AsyncClient, room_id: str, event_type: str,
                    content: dict[str, object], state_key: str = "") -> None:
    sent = await client.room_put_state(room_id, event_type, content, state_key)
    assert isinstance(sent, nio.RoomPutStateResponse), sent


async def set_power(client: nio.AsyncClient, room_id: str, user_id: str, level: int) -> None:
    levels = await client.room_get_state_event(room_id, "m.room.power_levels")
    assert isinstance(levels, nio.RoomGetStateEventResponse), levels
    users = {**levels.content.get("users", {}), user_id: level}
    await put_state(client, room_id, "m.room.power_levels", {**levels.content, "users": users})


async def state_content(client: nio.AsyncClient, room_id: str, event_type: str,
                        state_key: str = "") -> dict[str, object]:
    found = await client.room_get_state_event(room_id, event_type, state_key)
    assert isinstance(found, nio.RoomGetStateEventResponse), found
    return dict(found.content)


class Partition:
    """alice on A (the creator), bob on B (power 50) and bert on B (a bystander whose view
    of B stays complete whatever happens to bob) share a room."""

    def __init__(self, a: NodeHandle, b: NodeHandle, alice: nio.AsyncClient,
                 bob: nio.AsyncClient, bert: nio.AsyncClient, room_id: str) -> None:
        self.a, self.b, self.room_id = a, b, room_id
        self.alice, self.bob, self.bert = alice, bob, bert

    async def split(self, on_a: Change, on_b: Change) -> None:
        """Run ``on_a`` while B is down, then ``on_b`` while A is down; then start both, have
        them exchange messages and wait until they agree on the room's state."""
        await self.b.stop()
        await on_a()
        await self.a.stop()
        await self.b.start()
        await on_b()
        await self.a.start()
        await send_text(self.alice, self.room_id, "alice is back")
        await wait_for_body(self.bert, self.room_id, "alice is back", timeout=30)
        await send_text(self.bert, self.room_id, "bert is back")
        await wait_for_body(self.alice, self.room_id, "bert is back", timeout=30)
        await wait_for_same_state([self.alice, self.bert], self.room_id, timeout=30)


@pytest.fixture
async def partition(request: pytest.FixtureRequest, cluster: Cluster,
                    make_client: ClientFactory) -> Partition:
    """The room, in the version the test names (``indirect`` parametrisation), else 12."""
    room_version = getattr(request, "param", "12")
    a, b = await cluster.start("a"), await cluster.start("b")
    alice = await make_client(a.node, "alice")
    bob = await make_client(b.node, "bob")
    bert = await make_client(b.node, "bert")
    created = await alice.room_create(preset=nio.RoomPreset.public_chat,
                                      room_version=room_version)
    assert isinstance(created, nio.RoomCreateResponse), created
    room_id = created.room_id
    await join(bob, room_id, via=[a.server_name])
    await join(bert, room_id)
    await wait_for_membership(alice, room_id, bob.user_id, "join")
    await wait_for_membership(alice, room_id, bert.user_id, "join")
    await set_power(alice, room_id, bob.user_id, 50)  # enough to set the topic and name
    await put_state(alice, room_id, "m.room.topic", {"topic": "before"})
    await wait_for_same_state([alice, bob, bert], room_id)
    return Partition(a, b, alice, bob, bert, room_id)


@pytest.mark.parametrize("partition", ["10", "11", "12"], indirect=True)
async def test_concurrent_topic_and_name(partition: Partition) -> None:
    p = partition

    async def on_a() -> None:
        await put_state(p.alice, p.room_id, "m.room.topic", {"topic": "from A"})
        await put_state(p.alice, p.room_id, "m.room.name", {"name": "A"})

    async def on_b() -> None:
        await put_state(p.bob, p.room_id, "m.room.name", {"name": "B"})
        await put_state(p.bob, p.room_id, "m.room.topic", {"topic": "from B"})

    await p.split(on_a, on_b)
    for client in (p.alice, p.bert):
        # equal power: the later change of each wins (state resolution orders by timestamp)
        assert await state_content(client, p.room_id, "m.room.topic") == {"topic": "from B"}
        assert await state_content(client, p.room_id, "m.room.name") == {"name": "B"}


@pytest.mark.parametrize("partition", ["11", "12"], indirect=True)
async def test_ban_while_the_banned_user_acts_elsewhere(partition: Partition) -> None:
    p = partition

    async def on_a() -> None:
        banned = await p.alice.room_ban(p.room_id, p.bob.user_id, reason="partitioned")
        assert isinstance(banned, nio.RoomBanResponse), banned

    async def on_b() -> None:
        await send_text(p.bob, p.room_id, "I can still talk here")
        await put_state(p.bob, p.room_id, "m.room.topic", {"topic": "bob was here"})

    await p.split(on_a, on_b)
    for client in (p.alice, p.bert):
        assert await membership_of(client, p.room_id, p.bob.user_id) == "ban"
        assert await state_content(client, p.room_id, "m.room.topic") == {"topic": "before"}
    # b accepted bob's message before it knew of the ban; a got it after: soft-failed, hidden
    assert "I can still talk here" in await bodies(p.bert, p.room_id)
    assert "I can still talk here" not in await bodies(p.alice, p.room_id)
    refused = await p.bob.room_send(p.room_id, "m.room.message",
                                    {"msgtype": "m.text", "body": "still here?"})
    assert isinstance(refused, nio.RoomSendError), refused


@pytest.mark.parametrize("partition", ["11", "12"], indirect=True)
async def test_power_change_against_the_action_it_allowed(partition: Partition) -> None:
    p = partition

    async def on_a() -> None:
        await set_power(p.alice, p.room_id, p.bob.user_id, 0)

    async def on_b() -> None:
        await put_state(p.bob, p.room_id, "m.room.topic", {"topic": "bob decides"})
        await put_state(p.bob, p.room_id, "m.room.name", {"name": "bob's room"})

    await p.split(on_a, on_b)
    for client in (p.alice, p.bert):
        levels = await state_content(client, p.room_id, "m.room.power_levels")
        assert levels["users"].get(p.bob.user_id, 0) == 0  # type: ignore[attr-defined]
        assert await state_content(client, p.room_id, "m.room.topic") == {"topic": "before"}
        name = await client.room_get_state_event(p.room_id, "m.room.name")
        assert isinstance(name, nio.RoomGetStateEventError), name


async def test_long_concurrent_branches_merge(partition: Partition) -> None:
    """Each side writes more than the sender's catch-up threshold while cut off, so each
    learns of the other's branch from its newest event and pulls the rest itself."""
    p = partition

    async def on_a() -> None:
        for i in range(BRANCH_LENGTH):
            await send_text(p.alice, p.room_id, f"a {i:04d}")
        await put_state(p.alice, p.room_id, "m.room.topic", {"topic": "from A"})

    async def on_b() -> None:
        await put_state(p.bob, p.room_id, "m.room.name", {"name": "B"})
        for i in range(BRANCH_LENGTH):
            await send_text(p.bert, p.room_id, f"b {i:04d}")

    await p.split(on_a, on_b)
    for client in (p.alice, p.bert):
        await eventually(functools.partial(_both_branches, client, p.room_id), timeout=60,
                         interval=0.25, what="both branches on every server")
        assert await state_content(client, p.room_id, "m.room.topic") == {"topic": "from A"}
        assert await state_content(client, p.room_id, "m.room.name") == {"name": "B"}


async def _both_branches(client: nio.AsyncClient, room_id: str) -> None:
    seen = await bodies(client, room_id, limit=4 * BRANCH_LENGTH)
    for side in "ab":
        branch = [body for body in seen if body.startswith(f"{side} ")]
        assert branch == [f"{side} {i:04d}" for i in range(BRANCH_LENGTH)], \
            f"{side}: {len(branch)} of {BRANCH_LENGTH}"
