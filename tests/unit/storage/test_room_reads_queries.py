"""Contract of the two reads history visibility needs: a few state entries of many groups at
once (``StateStore.get_state_entries``) and a user's latest membership of a kind
(``EventStore.latest_membership_stream``)."""

from __future__ import annotations

from rocketnode.storage.ports import Stores
from rocketnode.storage.records import NewStateGroup
from tests.unit.storage.builders import ALICE, BOB, LinearRoom

ROOM = "!reads:storage.test"
HISTORY = ("m.room.history_visibility", "")


async def test_state_entries_match_the_full_groups(backend: Stores) -> None:
    state = backend.state
    full = {("m.room.create", ""): "$create", HISTORY: "$hv1", ("m.room.member", ALICE): "$a1"}
    group = await state.store_state_group(ROOM, NewStateGroup(None, full))
    groups = [group]
    for i in range(150):  # far past the chain length at which a snapshot is stored
        delta = {("m.room.member", f"@u{i}:storage.test"): f"$u{i}"}
        if i % 10 == 3:
            delta[HISTORY] = f"$hv{i}"
        if i % 25 == 7:
            delta[("m.room.member", BOB)] = f"$bob{i}"
        group = await state.store_state_group(ROOM, NewStateGroup(group, delta))
        groups.append(group)
    keys = [HISTORY, ("m.room.member", BOB), ("m.room.topic", "")]
    found = await state.get_state_entries(groups, keys)
    fulls = await state.get_state_groups(groups)
    for group_id in groups:
        expected = {key: value for key, value in fulls[group_id].items() if key in keys}
        assert found.get(group_id, {}) == expected, group_id
    assert found[groups[0]] == {HISTORY: "$hv1"}
    assert found[groups[-1]][("m.room.member", BOB)] == "$bob132"
    assert await state.get_state_entries([], keys) == {}
    assert all(not entries for entries in (await state.get_state_entries(groups, [])).values())


async def test_latest_membership_stream(backend: Stores) -> None:
    room = LinearRoom(backend)
    alice_join = await room.start()
    dag = room.dag
    first_join = await room.add(dag.member(BOB, "join"))
    leave = await room.add(dag.member(BOB, "leave"))
    rejoin = await room.add(dag.member(BOB, "join"))
    await room.add(dag.message("hi", sender=BOB))
    rejected = dag.member(BOB, "ban", sender=ALICE)
    await room.add(rejected, rejected="not allowed", forward_extremities=None,
                   current_state_group=None, current_state_delta={})
    events = backend.events
    assert first_join.stream_ordering < leave.stream_ordering < rejoin.stream_ordering
    assert await events.latest_membership_stream(dag.room_id, BOB, "join") == rejoin.stream_ordering
    assert await events.latest_membership_stream(dag.room_id, BOB, "leave") == leave.stream_ordering
    assert await events.latest_membership_stream(dag.room_id, BOB, "ban") is None
    assert await events.latest_membership_stream(dag.room_id, ALICE, "join") == (
        alice_join.stream_ordering
    )
    assert await events.latest_membership_stream("!other:storage.test", BOB, "join") is None
