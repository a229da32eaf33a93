"""Contract of the ``StateStore`` port: state groups as deltas, current state, memberships."""

from __future__ import annotations

import pytest

from rocketnode.storage.ports import Stores
from rocketnode.storage.records import NewStateGroup
from tests.unit.storage.builders import ALICE, BOB, REMOTE, LinearRoom

ROOM = "!state:storage.test"
MANY = 40_000


async def test_state_groups_are_deltas_over_previous_groups(backend: Stores) -> None:
    state = backend.state
    base = await state.store_state_group(
        ROOM, NewStateGroup(None, {("m.room.create", ""): "$create", ("m.room.name", ""): "$n1"})
    )
    child = await state.store_state_group(
        ROOM, NewStateGroup(base, {("m.room.name", ""): "$n2", ("m.room.topic", ""): "$t"})
    )
    sibling = await state.store_state_group(ROOM, NewStateGroup(base, {}))
    assert len({base, child, sibling}) == 3
    assert await state.get_state_group(base) == {
        ("m.room.create", ""): "$create", ("m.room.name", ""): "$n1"
    }
    assert await state.get_state_group(child) == {
        ("m.room.create", ""): "$create", ("m.room.name", ""): "$n2", ("m.room.topic", ""): "$t"
    }
    assert await state.get_state_group(sibling) == await state.get_state_group(base)
    assert await state.get_state_groups([child, base, child]) == {
        base: await state.get_state_group(base), child: await state.get_state_group(child)
    }
    assert await state.get_state_groups([]) == {}


async def test_long_delta_chains_read_back_exactly(backend: Stores) -> None:
    """Far past the length at which a backend stores a full snapshot instead of a delta."""
    state = backend.state
    expected = {("m.room.create", ""): "$create"}
    group = await state.store_state_group(ROOM, NewStateGroup(None, expected))
    groups = {group: dict(expected)}
    for i in range(150):
        delta = {("m.room.member", f"@u{i}:storage.test"): f"$join{i}"}
        if i % 7 == 0:
            delta[("m.room.name", "")] = f"$name{i}"
        expected.update(delta)
        group = await state.store_state_group(ROOM, NewStateGroup(group, delta))
        groups[group] = dict(expected)
    for group_id in [*list(groups)[::10], group]:
        assert await state.get_state_group(group_id) == groups[group_id]
    # and building on a group far down the chain still works
    extra = await state.store_state_group(ROOM, NewStateGroup(group, {("m.room.topic", ""): "$t"}))
    assert await state.get_state_group(extra) == {**expected, ("m.room.topic", ""): "$t"}


async def test_unknown_previous_group_is_refused(backend: Stores) -> None:
    with pytest.raises(LookupError):
        await backend.state.store_state_group(ROOM, NewStateGroup(424242, {}))


async def test_current_state_and_membership_column(backend: Stores) -> None:
    room = LinearRoom(backend)
    await room.start()
    room_id = room.dag.room_id
    topic = room.dag.event("m.room.topic", {"topic": "t"}, state_key="")
    await room.add(topic)
    bob_invite = room.dag.member(BOB, "invite", sender=ALICE)
    await room.add(bob_invite)
    carol = room.dag.member(REMOTE, "join")
    await room.add(carol)
    state = backend.state

    current = await state.get_current_state(room_id)
    assert current == room.state
    assert current[("m.room.topic", "")] == topic.event_id
    assert await state.get_current_state(room_id, "m.room.member") == {
        k: v for k, v in room.state.items() if k[0] == "m.room.member"
    }
    assert await state.get_current_state_event_id(room_id, ("m.room.topic", "")) == \
        topic.event_id
    assert await state.get_current_state_event_id(room_id, ("m.room.name", "")) is None
    assert await state.get_current_state("!nothing:storage.test") == {}

    assert await state.get_members(room_id) == {ALICE: "join", REMOTE: "join"}
    assert await state.get_members(room_id, "invite") == {BOB: "invite"}
    assert await state.get_members(room_id, None) == {
        ALICE: "join", REMOTE: "join", BOB: "invite"
    }
    assert await state.get_joined_servers(room_id) == {"storage.test", "remote.test"}
    assert await state.joined_member_counts(room_id) == {"storage.test": 1, "remote.test": 1}

    bob_join = room.dag.member(BOB, "join")
    await room.add(bob_join)
    carol_leaves = room.dag.member(REMOTE, "leave")
    await room.add(carol_leaves)
    assert await state.get_members(room_id) == {ALICE: "join", BOB: "join"}
    assert await state.get_members(room_id, "leave") == {REMOTE: "leave"}
    assert await state.get_joined_servers(room_id) == {"storage.test"}
    assert await state.joined_member_counts(room_id) == {"storage.test": 2}
    assert await state.get_current_state_event_id(room_id, ("m.room.member", BOB)) == \
        bob_join.event_id


async def test_memberships_of_one_user_across_many_rooms(backend: Stores) -> None:
    joined = LinearRoom(backend)
    await joined.start()
    invited = LinearRoom(backend)
    await invited.start()
    await invited.add(invited.dag.member(BOB, "invite", sender=ALICE))
    never = LinearRoom(backend)
    await never.start()
    await joined.add(joined.dag.member(BOB, "join"))

    room_ids = [f"!r{i}:storage.test" for i in range(MANY)]
    room_ids += [joined.dag.room_id, invited.dag.room_id, never.dag.room_id]
    assert await backend.state.get_memberships(BOB, room_ids) == {
        joined.dag.room_id: "join", invited.dag.room_id: "invite"
    }
    assert await backend.state.get_memberships(BOB, []) == {}


async def test_state_entries_of_many_groups_and_keys(backend: Stores) -> None:
    """Long lists of both groups and keys stay within every backend's bind-parameter limit."""
    state = backend.state
    groups = []
    for i in range(520):
        group = await state.store_state_group(ROOM, NewStateGroup(None, {
            ("m.room.create", ""): "$c", ("m.room.member", f"@u{i}:storage.test"): f"$m{i}",
        }))
        groups.append(group)
    keys = [("m.room.member", f"@u{i}:storage.test") for i in range(0, 600, 2)]
    found = await state.get_state_entries(groups, keys)
    assert set(found) == set(groups)
    for i, group in enumerate(groups):
        expected = {("m.room.member", f"@u{i}:storage.test"): f"$m{i}"} if i % 2 == 0 else {}
        assert found[group] == expected
