"""Contract of the ``EventStore`` port: persistence, the DAG, and the timeline queries."""

from __future__ import annotations

import pytest

from rocketnode.storage.ports import Stores
from rocketnode.storage.records import MembershipChange, NewStateGroup
from tests.unit.storage.builders import ALICE, BOB, LinearRoom, RoomDag

MANY = 40_000
"""More IDs than either SQLite (32766) or PostgreSQL (32767) accept as bind parameters."""


async def started_room(backend: Stores) -> LinearRoom:
    room = LinearRoom(backend)
    await room.start()
    return room


# -- persisting and reading back ----------------------------------------------------------------


async def test_event_reads_back_with_its_original_json(backend: Stores) -> None:
    room = await started_room(backend)
    pdu = room.dag.message("hello", extra={"unknown_key": {"kept": [1, "two"]}})
    result = await room.add(pdu, txn=(ALICE, "DEV", "t1"))

    stored = await backend.events.get_event(pdu.event_id)
    assert stored is not None
    assert stored.pdu.data == pdu.data
    assert stored.pdu.room_version == pdu.room_version
    assert stored.stream_ordering == result.stream_ordering
    assert stored.received_ts == pdu.origin_server_ts + 5
    assert (stored.outlier, stored.rejected, stored.soft_failed) == (False, None, False)
    assert (stored.txn_device, stored.txn_id) == ("DEV", "t1")
    assert await backend.events.stream_ordering_of(pdu.event_id) == result.stream_ordering


async def test_the_replaced_state_event_is_kept(backend: Stores) -> None:
    room = await started_room(backend)
    first = room.dag.message("not state")
    await room.add(first)
    marker = "$replaced-state-event"
    topic = room.dag.message("topic holder")
    await room.add(topic, replaces_state=marker)
    stored = await backend.events.get_events([first.event_id, topic.event_id])
    assert stored[first.event_id].replaces_state is None
    assert stored[topic.event_id].replaces_state == marker


async def test_unknown_events_are_absent(backend: Stores) -> None:
    room = await started_room(backend)
    known = room.dag.head[0]
    assert await backend.events.get_event("$missing") is None
    assert await backend.events.stream_ordering_of("$missing") is None
    assert set(await backend.events.get_events([known, "$missing"])) == {known}
    assert await backend.events.have_events([known, "$missing"]) == {known}
    assert await backend.events.get_events([]) == {}
    assert await backend.events.have_events([]) == set()


async def test_persisting_the_same_event_twice_stores_it_once(backend: Stores) -> None:
    room = await started_room(backend)
    pdu = room.dag.message("once")
    first = await room.add(pdu)
    # A second delivery (say, a retried federation transaction) with different intentions.
    second = await backend.events.persist_event(
        room.request(pdu, forward_extremities=("$other",), received_ts=1)
    )
    assert second.stream_ordering == first.stream_ordering
    assert second.before_group == first.before_group
    assert await backend.events.get_forward_extremities(room.dag.room_id) == [pdu.event_id]
    events, _ = await backend.events.room_events_between(room.dag.room_id, 0, 10**9, 100)
    assert [e.event_id for e in events].count(pdu.event_id) == 1
    stored = await backend.events.get_event(pdu.event_id)
    assert stored is not None and stored.received_ts == pdu.origin_server_ts + 5


async def test_persist_events_stores_several_in_order(backend: Stores) -> None:
    room = await started_room(backend)
    first = room.dag.message("one")
    second = room.dag.message("two")
    results = await backend.events.persist_events([
        room.request(first),
        room.request(second, state_before=room.state_group),
    ])
    assert results[0].stream_ordering < results[1].stream_ordering
    assert await backend.events.get_forward_extremities(room.dag.room_id) == [second.event_id]
    events, _ = await backend.events.room_events_between(
        room.dag.room_id, results[0].stream_ordering - 1, 10**9, 10
    )
    assert [e.event_id for e in events] == [first.event_id, second.event_id]


async def test_a_failing_persist_changes_nothing(backend: Stores) -> None:
    room = await started_room(backend)
    extremities = await backend.events.get_forward_extremities(room.dag.room_id)
    position = await backend.events.current_stream_ordering()
    good = room.dag.message("good")
    bad = room.dag.event("m.room.topic", {"topic": "x"}, state_key="")
    with pytest.raises(LookupError):
        await backend.events.persist_events([
            room.request(good),
            room.request(bad, state_before=NewStateGroup(987654, {})),  # no such group
        ])
    assert await backend.events.have_events([good.event_id, bad.event_id]) == set()
    assert await backend.events.get_forward_extremities(room.dag.room_id) == extremities
    assert await backend.events.current_stream_ordering() == position
    assert await backend.state.get_current_state_event_id(room.dag.room_id, ("m.room.topic", "")) \
        is None


# -- outliers -----------------------------------------------------------------------------------


async def test_outlier_is_upgraded_once_its_state_is_known(backend: Stores) -> None:
    room = await started_room(backend)
    pdu = room.dag.message("arrived early")
    outlier = room.request(pdu, outlier=True, state_before=None, forward_extremities=None,
                           current_state_group=None, current_state_delta={})
    as_outlier = await backend.events.persist_event(outlier)
    stored = await backend.events.get_event(pdu.event_id)
    assert stored is not None and stored.outlier
    assert as_outlier.before_group is None and as_outlier.after_group is None
    assert await backend.events.get_state_groups_for_events([pdu.event_id]) == {}
    timeline, _ = await backend.events.room_events_between(room.dag.room_id, 0, 10**9, 100)
    assert pdu.event_id not in {e.event_id for e in timeline}

    again = await backend.events.persist_event(outlier)
    assert again.stream_ordering == as_outlier.stream_ordering

    upgraded = await room.add(pdu)
    assert upgraded.stream_ordering > as_outlier.stream_ordering
    stored = await backend.events.get_event(pdu.event_id)
    assert stored is not None and not stored.outlier
    assert stored.stream_ordering == upgraded.stream_ordering
    groups = await backend.events.get_state_groups_for_events([pdu.event_id])
    assert groups[pdu.event_id] == (upgraded.before_group, upgraded.after_group)
    timeline, _ = await backend.events.room_events_between(room.dag.room_id, 0, 10**9, 100)
    assert [e.event_id for e in timeline].count(pdu.event_id) == 1

    # Seeing it again as an outlier does not downgrade it.
    await backend.events.persist_event(outlier)
    stored = await backend.events.get_event(pdu.event_id)
    assert stored is not None and not stored.outlier


# -- the DAG ------------------------------------------------------------------------------------


async def test_forward_extremities_are_replaced_or_kept(backend: Stores) -> None:
    room = await started_room(backend)
    join = room.dag.head[0]
    left = room.dag.message("left", prev_events=[join], advance=False)
    right = room.dag.message("right", prev_events=[join], advance=False)
    await room.add(left)
    await room.add(right, forward_extremities=(left.event_id, right.event_id))
    assert sorted(await backend.events.get_forward_extremities(room.dag.room_id)) == sorted(
        [left.event_id, right.event_id]
    )
    rejected = room.dag.message("rejected", prev_events=[right.event_id], advance=False)
    await room.add(rejected, rejected="auth", forward_extremities=None, current_state_group=None)
    assert sorted(await backend.events.get_forward_extremities(room.dag.room_id)) == sorted(
        [left.event_id, right.event_id]
    )
    merge = room.dag.message("merge", prev_events=[left.event_id, right.event_id])
    await room.add(merge)
    assert await backend.events.get_forward_extremities(room.dag.room_id) == [merge.event_id]
    assert await backend.events.get_forward_extremities("!unknown:storage.test") == []


async def test_state_before_and_after_each_event(backend: Stores) -> None:
    room = await started_room(backend)
    topic = room.dag.event("m.room.topic", {"topic": "t"}, state_key="")
    await room.add(topic)
    message = room.dag.message("m")
    message_result = await room.add(message)
    rejected_state = room.dag.event("m.room.name", {"name": "n"}, state_key="")
    rejected_result = await room.add(
        rejected_state, rejected="auth", forward_extremities=None, current_state_group=None,
        current_state_delta={},
    )

    groups = await backend.events.get_state_groups_for_events(
        [topic.event_id, message.event_id, rejected_state.event_id, "$missing"]
    )
    assert set(groups) == {topic.event_id, message.event_id, rejected_state.event_id}
    topic_before, topic_after = groups[topic.event_id]
    assert topic_before != topic_after
    assert groups[message.event_id][0] == groups[message.event_id][1] == topic_after
    assert groups[rejected_state.event_id][0] == groups[rejected_state.event_id][1]
    assert message_result.current_state_group == topic_after
    assert rejected_result.current_state_group is None

    before = await backend.state.get_state_group(topic_before)
    after = await backend.state.get_state_group(topic_after)
    assert ("m.room.topic", "") not in before
    assert after == {**before, ("m.room.topic", ""): topic.event_id}
    room_record = await backend.rooms.get_room(room.dag.room_id)
    assert room_record is not None and room_record.current_state_group == topic_after


async def test_auth_chain_is_transitive(backend: Stores) -> None:
    room = await started_room(backend)
    dag = RoomDag(room_id=room.dag.room_id)
    create = dag.create()
    join = dag.member(ALICE, "join", auth_events=[create.event_id])
    power = dag.event("m.room.power_levels", {}, state_key="",
                      auth_events=[create.event_id, join.event_id])
    bob = dag.member(BOB, "join", auth_events=[create.event_id, power.event_id])
    message = dag.message("hi", sender=BOB, auth_events=[bob.event_id, power.event_id])
    line = LinearRoom(backend, dag)
    for pdu in (create, join, power, bob, message):
        await line.add(pdu)

    events = backend.events
    assert await events.get_auth_chain_ids([create.event_id]) == set()
    assert await events.get_auth_chain_ids([join.event_id]) == {create.event_id}
    assert await events.get_auth_chain_ids([message.event_id]) == {
        create.event_id, join.event_id, power.event_id, bob.event_id
    }
    assert await events.get_auth_chain_ids([power.event_id, join.event_id]) == {
        create.event_id, join.event_id
    }


async def test_transaction_ids_map_to_events(backend: Stores) -> None:
    room = await started_room(backend)
    pdu = room.dag.message("with txn")
    await room.add(pdu, txn=(ALICE, "DEVICE", "txn-1"))
    events = backend.events
    assert await events.get_txn_event_id(ALICE, "DEVICE", "txn-1") == pdu.event_id
    assert await events.get_txn_event_id(ALICE, "OTHER", "txn-1") is None
    assert await events.get_txn_event_id(BOB, "DEVICE", "txn-1") is None
    assert await events.get_txn_event_id(ALICE, "DEVICE", "txn-2") is None


async def test_redactions_are_recorded(backend: Stores) -> None:
    room = await started_room(backend)
    target = room.dag.message("oops")
    await room.add(target)
    redaction = room.dag.event("m.room.redaction", {}, extra={"redacts": target.event_id})
    await room.add(redaction, applies_redaction_of=target.event_id)
    stored = await backend.events.get_event(target.event_id)
    assert stored is not None and stored.redacted_by == redaction.event_id

    # A redaction that arrived before its target is applied once the target is known.
    late_target = room.dag.message("late")
    early = room.dag.event("m.room.redaction", {}, extra={"redacts": late_target.event_id})
    await room.add(early)
    await room.add(late_target)
    stored = await backend.events.get_event(late_target.event_id)
    assert stored is not None and stored.redacted_by is None
    await backend.events.apply_redaction(late_target.event_id, early.event_id)
    stored = await backend.events.get_event(late_target.event_id)
    assert stored is not None and stored.redacted_by == early.event_id


# -- stream positions and timeline queries ------------------------------------------------------


async def test_stream_positions_grow_across_events_receipts_and_account_data(
    backend: Stores,
) -> None:
    assert await backend.events.current_stream_ordering() == 0
    room = await started_room(backend)
    after_events = await backend.events.current_stream_ordering()
    assert after_events > 0
    receipt = await backend.client_data.put_receipt(
        room.dag.room_id, "m.read", ALICE, "", room.dag.head[0], {"ts": 1}
    )
    assert receipt > after_events
    assert await backend.events.current_stream_ordering() == receipt
    data = await backend.client_data.put_account_data(ALICE, "", "m.test", {})
    assert data > receipt
    assert await backend.events.current_stream_ordering() == data
    result = await room.add(room.dag.message("later"))
    assert result.stream_ordering > data


async def test_timeline_window_skips_outliers_rejected_and_soft_failed(backend: Stores) -> None:
    room = await started_room(backend)
    other = await started_room(backend)
    start = await backend.events.current_stream_ordering()
    visible = []
    for i in range(5):
        pdu = room.dag.message(f"m{i}")
        await room.add(pdu)
        visible.append(pdu.event_id)
        await other.add(other.dag.message(f"other {i}"))
    hidden_rejected = room.dag.message("rejected", advance=False)
    await room.add(hidden_rejected, rejected="auth", forward_extremities=None,
                   current_state_group=None)
    hidden_soft = room.dag.message("soft", advance=False)
    await room.add(hidden_soft, soft_failed=True, forward_extremities=None,
                   current_state_group=None)
    stored_soft = await backend.events.get_event(hidden_soft.event_id)
    assert stored_soft is not None and stored_soft.soft_failed
    end = await backend.events.current_stream_ordering()

    events, limited = await backend.events.room_events_between(room.dag.room_id, start, end, 10)
    assert [e.event_id for e in events] == visible
    assert not limited
    events, limited = await backend.events.room_events_between(room.dag.room_id, start, end, 3)
    assert [e.event_id for e in events] == visible[-3:]
    assert limited
    middle = (await backend.events.stream_ordering_of(visible[2])) or 0
    events, _ = await backend.events.room_events_between(room.dag.room_id, start, middle, 10)
    assert [e.event_id for e in events] == visible[:3]

    assert await backend.events.rooms_with_new_events(
        [room.dag.room_id, other.dag.room_id, "!quiet:storage.test"], start, end
    ) == {room.dag.room_id, other.dag.room_id}
    assert await backend.events.rooms_with_new_events(
        [room.dag.room_id, other.dag.room_id], end, end
    ) == set()


async def test_pagination_orders_backfilled_events_before_everything(backend: Stores) -> None:
    room = await started_room(backend)
    live = []
    for i in range(3):
        pdu = room.dag.message(f"live {i}")
        await room.add(pdu)
        live.append(pdu.event_id)
    # Older history fetched later: each backfilled batch goes further back in time.
    backfilled = []
    previous_stream = 0
    for i in range(3):
        pdu = room.dag.message(f"old {i}", prev_events=[], advance=False)
        result = await room.add(pdu, backfilled=True, forward_extremities=None,
                                current_state_group=None, current_state_delta={})
        assert result.stream_ordering < previous_stream
        previous_stream = result.stream_ordering
        backfilled.append(pdu.event_id)
    assert await backend.events.get_forward_extremities(room.dag.room_id) == [live[-1]]

    events = backend.events
    top = await events.current_stream_ordering() + 1
    page = await events.paginate_room_events(room.dag.room_id, top, True, 4)
    assert [e.event_id for e in page][:3] == live[::-1]
    everything = await events.paginate_room_events(room.dag.room_id, top, True, 100)
    ids = [e.event_id for e in everything]
    assert ids[-3:] == backfilled  # newest-first walk: the last backfilled is the oldest
    assert [e.stream_ordering for e in everything] == sorted(
        (e.stream_ordering for e in everything), reverse=True
    )

    only_old = await events.paginate_room_events(room.dag.room_id, 1, True, 100)
    assert [e.event_id for e in only_old] == backfilled
    lowest = everything[-1].stream_ordering
    forwards = await events.paginate_room_events(room.dag.room_id, lowest - 1, False, 100)
    assert [e.event_id for e in forwards] == ids[::-1]
    bounded = await events.paginate_room_events(
        room.dag.room_id, top, True, 100, to_stream=everything[2].stream_ordering
    )
    assert [e.event_id for e in bounded] == ids[:3]
    bounded_forwards = await events.paginate_room_events(
        room.dag.room_id, lowest - 1, False, 100, to_stream=everything[-2].stream_ordering
    )
    assert [e.event_id for e in bounded_forwards] == ids[::-1][:2]


async def test_reserved_backfill_positions_order_a_batch_oldest_first(backend: Stores) -> None:
    room = await started_room(backend)
    await room.add(room.dag.message("live"))
    first = await backend.events.reserve_backfill_positions(3)
    second = await backend.events.reserve_backfill_positions(2)
    assert first == sorted(first) and len(set(first)) == 3
    assert max(second) < min(first) < 0
    batch = [room.dag.message(f"old {i}", prev_events=[], advance=False) for i in range(3)]
    for pdu, position in zip(batch, first, strict=True):
        result = await room.add(pdu, backfilled=True, backfill_position=position,
                                forward_extremities=None, current_state_group=None,
                                current_state_delta={})
        assert result.stream_ordering == position
    top = await backend.events.current_stream_ordering() + 1
    page = await backend.events.paginate_room_events(room.dag.room_id, top, True, 100)
    bodies = [e.pdu.content["body"] for e in page if e.pdu.type == "m.room.message"]
    assert bodies == ["live", "old 2", "old 1", "old 0"]


async def test_topological_pagination_puts_a_filled_gap_where_it_happened(
        backend: Stores) -> None:
    room = await started_room(backend)
    events, room_id = backend.events, room.dag.room_id
    first_read = await events.paginate_room_events(room_id, -(10**9), False, 10)
    create, join = first_read[0].event_id, first_read[1].event_id
    join_stream = first_read[1].stream_ordering
    # Two events this server missed, then one it received on top of them: a gap below it.
    old = [room.dag.message(f"old {i}") for i in range(2)]
    live = room.dag.message("live")
    await room.add(live)
    # The first missed event is known, but only as an outlier: still a gap.
    await backend.events.persist_event(room.request(
        old[1], outlier=True, state_before=None, forward_extremities=None,
        current_state_group=None, current_state_delta={}))
    assert await events.backward_extremities([live.event_id, join, create]) == {
        live.event_id: [old[1].event_id]}
    assert await events.backward_extremities([]) == {}
    live_stream = (await events.stream_ordering_of(live.event_id)) or 0
    assert await events.latest_topological_key(room_id, live_stream) == (5, live_stream)
    assert await events.latest_topological_key(room_id, live_stream - 1) == (2, join_stream)
    assert await events.latest_topological_key(room_id, -1) is None

    # The gap is filled (backfilled: stream orderings below everything).
    positions = await events.reserve_backfill_positions(2)
    for pdu, position in zip(old, positions, strict=True):
        await room.add(pdu, backfilled=True, backfill_position=position,
                       forward_extremities=None, current_state_group=None,
                       current_state_delta={})
    assert await events.backward_extremities(
        [live.event_id, *(p.event_id for p in old), join]) == {}
    assert await events.latest_topological_key(room_id, -1) == (4, positions[1])

    in_order = [create, join, old[0].event_id, old[1].event_id, live.event_id]
    end = (2**62, 0)
    backwards = await events.paginate_room_events_topological(room_id, end, True, 100)
    assert [e.event_id for e in backwards] == in_order[::-1]
    forwards = await events.paginate_room_events_topological(room_id, (-1, 0), False, 100)
    assert [e.event_id for e in forwards] == in_order
    page = await events.paginate_room_events_topological(room_id, end, True, 2)
    assert [e.event_id for e in page] == in_order[:2:-1]
    below_live = await events.paginate_room_events_topological(
        room_id, (5, live_stream), True, 100, to_key=(3, positions[0]))
    assert [e.event_id for e in below_live] == [old[1].event_id, old[0].event_id]
    after_join = await events.paginate_room_events_topological(
        room_id, (2, join_stream), False, 100, to_key=(4, positions[1]))
    assert [e.event_id for e in after_join] == [old[0].event_id, old[1].event_id]
    # Stream-order pagination still lists the backfilled events last (they arrived late).
    by_stream = await events.paginate_room_events(room_id, 10**9, True, 100)
    assert [e.event_id for e in by_stream][-2:] == [old[1].event_id, old[0].event_id]

    # A fork: an event beside "live" (same depth), received later. The stream ordering breaks
    # the tie, on both sides of a position at that depth.
    fork = room.dag.message("fork", prev_events=[old[1].event_id], advance=False,
                            extra={"depth": 5})
    await room.add(fork)
    fork_stream = (await events.stream_ordering_of(fork.event_id)) or 0
    assert fork_stream > live_stream
    backwards = await events.paginate_room_events_topological(room_id, end, True, 3)
    assert [e.event_id for e in backwards] == [fork.event_id, live.event_id, old[1].event_id]
    below_fork = await events.paginate_room_events_topological(
        room_id, (5, fork_stream), True, 2)
    assert [e.event_id for e in below_fork] == [live.event_id, old[1].event_id]
    after_live = await events.paginate_room_events_topological(
        room_id, (5, live_stream), False, 100)
    assert [e.event_id for e in after_live] == [fork.event_id]
    assert await events.latest_topological_key(room_id, fork_stream) == (5, fork_stream)


# -- long ID lists ------------------------------------------------------------------------------


async def test_long_id_lists_are_chunked(backend: Stores) -> None:
    room = await started_room(backend)
    for i in range(3):
        await room.add(room.dag.message(f"m{i}"))
    known = room.dag.head[0]
    ids = [f"$missing{i}" for i in range(MANY)] + [known]
    events = backend.events
    assert set(await events.get_events(ids)) == {known}
    assert await events.have_events(ids) == {known}
    assert set(await events.get_state_groups_for_events(ids)) == {known}
    assert await events.get_auth_chain_ids(ids) == set()
    room_ids = [f"!r{i}:storage.test" for i in range(MANY)] + [room.dag.room_id]
    assert await events.rooms_with_new_events(room_ids, 0, 10**9) == {room.dag.room_id}


async def test_membership_changes_are_recorded_with_the_event(backend: Stores) -> None:
    room = await started_room(backend)
    join = room.dag.member(BOB, "join")
    result = await room.add(
        join, membership_changes=(MembershipChange(BOB, room.dag.room_id, "join", join.event_id),)
    )
    membership = await backend.rooms.local_membership(BOB, room.dag.room_id)
    assert membership is not None
    assert (membership.membership, membership.event_id, membership.stream_ordering) == (
        "join", join.event_id, result.stream_ordering
    )
