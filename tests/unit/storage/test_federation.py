"""Contract of the ``FederationStore`` port: remote keys, the outbound PDU queue (filled in the
transaction that stores the event), destination health, inbound transaction results."""

from __future__ import annotations

import pytest

from rocketnode.storage.ports import Stores
from rocketnode.storage.records import DestinationState, NewStateGroup
from tests.unit.storage.builders import LinearRoom

A, B = "a.remote.test", "b.remote.test"


async def test_server_keys_keep_the_longest_validity(backend: Stores) -> None:
    federation = backend.federation
    assert await federation.get_server_keys(A) == {}
    assert await federation.get_key_response(A) is None
    await federation.store_server_keys(A, {"ed25519:1": ("key1", 500)}, {"n": 1}, 500, 10)
    await federation.store_server_keys(
        A, {"ed25519:1": ("key1", 300), "ed25519:2": ("key2", 900)}, None, 900, 20
    )
    await federation.store_server_keys(B, {"ed25519:x": ("keyx", 50)}, {"b": True}, 50, 30)
    assert await federation.get_server_keys(A) == {
        "ed25519:1": ("key1", 500), "ed25519:2": ("key2", 900)
    }
    assert await federation.get_key_response(A) == ({"n": 1}, 500)
    await federation.store_server_keys(A, {}, {"n": 2}, 800, 40)
    assert await federation.get_key_response(A) == ({"n": 2}, 800)
    await federation.store_server_keys(A, {}, {"n": 3}, 700, 50)  # older: not taken
    assert await federation.get_key_response(A) == ({"n": 2}, 800)
    assert await federation.get_key_response(B) == ({"b": True}, 50)


async def test_outbound_queue_is_filled_with_the_event(backend: Stores) -> None:
    federation = backend.federation
    first_room = LinearRoom(backend)
    await first_room.start()
    second_room = LinearRoom(backend)
    await second_room.start()
    assert await federation.destinations_with_queue() == []

    queued = []
    for room, body, destinations in [
        (first_room, "one", (A, B)), (second_room, "two", (A,)), (first_room, "three", (A,)),
        (first_room, "local only", ()),
    ]:
        pdu = room.dag.message(body)
        result = await room.add(pdu, outbound_destinations=destinations)
        queued.append((pdu.event_id, room.dag.room_id, result.stream_ordering))
    (one, one_room, one_stream), (two, two_room, two_stream), (three, _, three_stream) = \
        queued[:3]

    to_a = await federation.queued_pdus(A, 10)
    assert [(q.destination, q.event_id, q.room_id, q.stream_ordering) for q in to_a] == [
        (A, one, one_room, one_stream), (A, two, two_room, two_stream),
        (A, three, one_room, three_stream),
    ]
    assert [q.event_id for q in await federation.queued_pdus(A, 2)] == [one, two]
    assert [q.event_id for q in await federation.queued_pdus(B, 10)] == [one]
    assert await federation.queue_depths() == {A: 3, B: 1}
    assert sorted(await federation.destinations_with_queue()) == [A, B]
    newest = await federation.newest_queued_per_room(A)
    assert [(q.room_id, q.event_id, q.stream_ordering) for q in newest] == [
        (two_room, two, two_stream), (one_room, three, three_stream)
    ]

    await federation.dequeue_pdus(A, three_stream, [two_room])
    assert [q.event_id for q in await federation.queued_pdus(A, 10)] == [one, three]
    await federation.dequeue_pdus(A, one_stream, None)
    assert [q.event_id for q in await federation.queued_pdus(A, 10)] == [three]
    await federation.dequeue_pdus(A, three_stream, None)
    assert await federation.queued_pdus(A, 10) == []
    assert await federation.destinations_with_queue() == [B]
    assert await federation.queue_depths() == {B: 1}


async def test_a_failed_persist_queues_nothing(backend: Stores) -> None:
    room = LinearRoom(backend)
    await room.start()
    pdu = room.dag.message("never stored")
    with pytest.raises(LookupError):
        await backend.events.persist_event(
            room.request(pdu, state_before=NewStateGroup(999_999, {}), outbound_destinations=(A,))
        )
    assert await backend.federation.queued_pdus(A, 10) == []


async def test_destination_health(backend: Stores) -> None:
    federation = backend.federation
    assert await federation.get_destination(A) is None
    assert await federation.all_destinations() == []
    failing = DestinationState(B, retry_after_ts=5000, retry_interval_ms=2000,
                               failing_since_ts=1000, last_error="timeout", last_error_ts=3000)
    await federation.set_destination(failing)
    await federation.set_destination(DestinationState(A, last_success_ts=42))
    assert await federation.get_destination(B) == failing
    assert await federation.all_destinations() == [DestinationState(A, last_success_ts=42),
                                                   failing]
    recovered = DestinationState(B, last_success_ts=6000)
    await federation.set_destination(recovered)
    assert await federation.get_destination(B) == recovered


async def test_inbound_transaction_results(backend: Stores) -> None:
    federation = backend.federation
    assert await federation.get_transaction_response(A, "t1") is None
    await federation.store_transaction_response(A, "t1", {"pdus": {"$e": {}}}, 10)
    await federation.store_transaction_response(B, "t1", {"pdus": {}}, 11)
    assert await federation.get_transaction_response(A, "t1") == {"pdus": {"$e": {}}}
    assert await federation.get_transaction_response(B, "t1") == {"pdus": {}}
    assert await federation.get_transaction_response(A, "t2") is None

    assert await federation.prune_transaction_responses(10) == 0
    assert await federation.prune_transaction_responses(11) == 1
    assert await federation.get_transaction_response(A, "t1") is None
    assert await federation.get_transaction_response(B, "t1") == {"pdus": {}}
