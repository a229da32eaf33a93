"""The room timeline service costs a fixed number of storage round trips per page, however many
events and state groups the page spans."""

from __future__ import annotations

from collections import Counter
from typing import Any, cast

from rocketnode.app import Node
from rocketnode.services.clock import SystemClock
from rocketnode.services.filters import EventFilter
from rocketnode.services.room_access import Reader, RoomAccess
from rocketnode.services.room_messages import MessagesQuery, RoomMessages
from rocketnode.services.room_state import RoomStates
from rocketnode.storage.ports import EventStore, RoomStore, StateStore
from tests.nodes import ClientFactory
from tests.unit.client_api.room_reads_helpers import public_room, send_text, set_state

MAX_ROUND_TRIPS = 16
"""Including the four reads that load a room's snapshot into a cold cache."""


class CountingStore:
    """Wraps a store and counts calls of its coroutine methods (each is one round trip)."""

    def __init__(self, inner: object, calls: Counter[str]) -> None:
        self._inner = inner
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self._calls[name] += 1
            return await method(*args, **kwargs)

        return counted


async def test_a_page_of_100_costs_a_fixed_number_of_round_trips(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    room_id = await public_room(alice, "joined")
    await bob.join(room_id)
    for i in range(60):  # a new state group every other event
        await send_text(alice, room_id, f"message {i}")
        await set_state(alice, room_id, "m.room.topic", {"topic": f"topic {i}"})
    redacted = await send_text(alice, room_id, "to redact")
    await alice.room_redact(room_id, redacted)

    small_page, small_calls = await _page(node, bob.user_id, room_id, 10)
    page, calls = await _page(node, bob.user_id, room_id, 100)

    assert len(small_page["chunk"]) == 10
    assert len(page["chunk"]) == 100
    [shown] = [e for e in page["chunk"] if e["event_id"] == redacted]
    assert "redacted_because" in shown["unsigned"]
    assert {e["state_key"] for e in page["state"]} == {alice.user_id}
    assert sum(calls.values()) <= MAX_ROUND_TRIPS, calls
    assert sum(calls.values()) <= sum(small_calls.values()), (calls, small_calls)


async def _page(
    node: Node, user_id: str, room_id: str, limit: int
) -> tuple[dict[str, Any], Counter[str]]:
    """One /messages page read through counting stores and a cold event cache."""
    stores = node.services.stores
    calls: Counter[str] = Counter()
    events = cast(EventStore, CountingStore(stores.events, calls))
    state = cast(StateStore, CountingStore(stores.state, calls))
    rooms = cast(RoomStore, CountingStore(stores.rooms, calls))
    access = RoomAccess(SystemClock(), events, state, rooms, RoomStates(events, state, rooms))
    query = MessagesQuery(limit=limit, event_filter=EventFilter(lazy_load_members=True))
    page = await RoomMessages(access).messages(Reader(user_id, "DEVICE"), room_id, query)
    return page, calls
