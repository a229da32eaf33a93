"""Load: 50 matrix-nio clients sending at once into a few shared rooms on one node.

Every message is stored exactly once (retried transactions included), /sync shows every one
of them to a member of the room, no request fails with a 5xx and nothing logs "database is
locked". Bounded: 20 messages per client and an overall deadline.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import nio
import pytest

from rocketnode.app import Node
from tests.nodes import ClientFactory

pytestmark = pytest.mark.slow

SENDERS = 50
ROOMS = 5
MESSAGES = 20
RETRY_EVERY = 5
"""Every fifth message is sent twice at once with the same transaction ID (a client retry)."""
DEADLINE_S = 90.0
SYNC_FILTER: dict[str, Any] = {
    "room": {"timeline": {"limit": SENDERS * MESSAGES}, "state": {"lazy_load_members": True}},
    "presence": {"not_types": ["*"]},
}


async def gather_limited(limit: int, *jobs: Any) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(job: Any) -> Any:
        async with gate:
            return await job

    return list(await asyncio.gather(*(one(job) for job in jobs)))


async def send_all(client: nio.AsyncClient, room_id: str) -> dict[str, str]:
    """Send this client's messages; ``body -> event_id``."""
    sent: dict[str, str] = {}
    for i in range(MESSAGES):
        body = f"{client.user_id} #{i}"
        content = {"msgtype": "m.text", "body": body}
        txn = f"load-{i}"
        attempts = 2 if i % RETRY_EVERY == 0 else 1
        answers = await asyncio.gather(
            *(client.room_send(room_id, "m.room.message", content, tx_id=txn)
              for _ in range(attempts))
        )
        for answer in answers:
            assert isinstance(answer, nio.RoomSendResponse), answer
        assert len({answer.event_id for answer in answers}) == 1, answers
        sent[body] = answers[0].event_id
    return sent


async def watch(client: nio.AsyncClient, room_id: str, wanted: set[str], done: asyncio.Event
                ) -> set[str]:
    """Incremental /sync until every wanted event showed up in the room's timeline."""
    seen: set[str] = set()
    while not (done.is_set() and wanted <= seen):
        answer = await client.sync(timeout=500, sync_filter=SYNC_FILTER)
        assert isinstance(answer, nio.SyncResponse), answer
        room = answer.rooms.join.get(room_id)
        if room is not None:
            assert not room.timeline.limited, "a gap: /sync left events out"
            seen.update(event.event_id for event in room.timeline.events)
    return seen


async def test_fifty_clients_sending_into_shared_rooms(
    node: Node, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with asyncio.timeout(DEADLINE_S):
        watchers = await gather_limited(
            8, *(make_client(node, f"watcher{r}") for r in range(ROOMS))
        )
        senders = await gather_limited(
            8, *(make_client(node, f"sender{i:02d}") for i in range(SENDERS))
        )
        room_ids = []
        for watcher in watchers:
            created = await watcher.room_create(preset=nio.RoomPreset.public_chat)
            assert isinstance(created, nio.RoomCreateResponse), created
            room_ids.append(created.room_id)
        room_of = {s.user_id: room_ids[i % ROOMS] for i, s in enumerate(senders)}
        joined = await asyncio.gather(*(s.join(room_of[s.user_id]) for s in senders))
        assert all(isinstance(j, nio.JoinResponse) for j in joined), joined
        for watcher in watchers:
            assert isinstance(await watcher.sync(timeout=0, sync_filter=SYNC_FILTER),
                              nio.SyncResponse)

        expected: dict[str, set[str]] = {room_id: set() for room_id in room_ids}
        sending_done = asyncio.Event()
        watching = [
            asyncio.create_task(watch(w, room_id, expected[room_id], sending_done))
            for w, room_id in zip(watchers, room_ids, strict=True)
        ]
        results = await asyncio.gather(*(send_all(s, room_of[s.user_id]) for s in senders))
        for sender, sent in zip(senders, results, strict=True):
            expected[room_of[sender.user_id]].update(sent.values())
        sending_done.set()
        seen = await asyncio.gather(*watching)

    # /sync showed each watcher every message of its room.
    for room_id, seen_ids in zip(room_ids, seen, strict=True):
        assert expected[room_id] <= seen_ids
    # Storage holds every message exactly once, under the ID the client was given.
    events = node.services.stores.events
    position = await events.current_stream_ordering()
    bodies: Counter[str] = Counter()
    for room_id in room_ids:
        timeline, limited = await events.room_events_between(room_id, 0, position, 10_000)
        assert not limited
        messages = {e.event_id: e for e in timeline if e.pdu.type == "m.room.message"}
        assert set(messages) == expected[room_id]
        bodies.update(e.pdu.content["body"] for e in messages.values())
        assert len(await events.get_forward_extremities(room_id)) == 1
    assert len(bodies) == SENDERS * MESSAGES
    assert set(bodies.values()) == {1}
    for sender, sent in zip(senders, results, strict=True):
        txn_id = f"load-{RETRY_EVERY}"
        assert await events.get_txn_event_id(sender.user_id, sender.device_id, txn_id) == \
            sent[f"{sender.user_id} #{RETRY_EVERY}"]

    statuses = [record.args[2] for record in caplog.records
                if record.name == "rocketnode.access" and isinstance(record.args, tuple)]
    assert len(statuses) >= SENDERS * MESSAGES
    assert [s for s in statuses if s >= 500] == []
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [line for line in logged if "locked" in line.lower()]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
