"""Contract of the ``RoomStore`` port: rooms, the directory, local memberships, aliases."""

from __future__ import annotations

from rocketnode.core.room_versions import V10, V11
from rocketnode.storage.ports import Stores
from rocketnode.storage.records import MembershipChange
from tests.unit.storage.builders import ALICE, BOB, LinearRoom

ROOM = "!plain:storage.test"


async def test_a_room_is_stored_once(backend: Stores) -> None:
    rooms = backend.rooms
    assert await rooms.get_room(ROOM) is None
    assert await rooms.store_room(ROOM, "11", ALICE, 1234)
    assert not await rooms.store_room(ROOM, "10", BOB, 9999, is_public=True)
    record = await rooms.get_room(ROOM)
    assert record is not None
    assert (record.room_id, record.room_version, record.creator) == (ROOM, V11, ALICE)
    assert (record.is_public, record.created_ts, record.current_state_group) == (
        False, 1234, None
    )
    assert await rooms.store_room("!remote:elsewhere.test", "10", None, 5)
    remote = await rooms.get_room("!remote:elsewhere.test")
    assert remote is not None and remote.creator is None and remote.room_version == V10


async def test_public_directory_lists_rooms_with_events(backend: Stores) -> None:
    rooms = backend.rooms
    first = LinearRoom(backend)
    await first.start(is_public=True)
    second = LinearRoom(backend)
    await second.start()
    await rooms.store_room("!empty:storage.test", "10", ALICE, 1, is_public=True)
    assert await rooms.public_room_ids() == [first.dag.room_id]
    await rooms.set_public(second.dag.room_id, True)
    assert set(await rooms.public_room_ids()) == {first.dag.room_id, second.dag.room_id}
    await rooms.set_public(first.dag.room_id, False)
    assert await rooms.public_room_ids() == [second.dag.room_id]
    record = await rooms.get_room(second.dag.room_id)
    assert record is not None and record.is_public


async def test_local_memberships_follow_membership_changes(backend: Stores) -> None:
    rooms = backend.rooms
    room = LinearRoom(backend)
    await room.start()
    room_id = room.dag.room_id
    assert await rooms.local_membership(BOB, room_id) is None
    assert await rooms.local_memberships(BOB) == []

    invite = room.dag.member(BOB, "invite", sender=ALICE)
    invited = await room.add(
        invite, membership_changes=(MembershipChange(BOB, room_id, "invite", invite.event_id),)
    )
    join = room.dag.member(BOB, "join")
    joined = await room.add(
        join, membership_changes=(MembershipChange(BOB, room_id, "join", join.event_id),)
    )
    current = await rooms.local_membership(BOB, room_id)
    assert current is not None
    assert (current.membership, current.event_id, current.stream_ordering, current.forgotten) \
        == ("join", join.event_id, joined.stream_ordering, False)
    assert [m.room_id for m in await rooms.local_memberships(BOB)] == [room_id]
    position, memberships = await rooms.memberships_at_committed_position(BOB)
    assert memberships == await rooms.local_memberships(BOB)
    assert position == await backend.events.current_stream_ordering()
    assert position >= joined.stream_ordering
    assert await rooms.local_users_in_room(room_id) == [BOB]
    assert await rooms.local_users_in_room(room_id, "invite") == []

    changes = await rooms.local_membership_changes(BOB, invited.stream_ordering - 1, 10**9)
    assert [(c.membership, c.stream_ordering) for c in changes] == [
        ("join", joined.stream_ordering)
    ]
    assert await rooms.local_membership_changes(BOB, joined.stream_ordering, 10**9) == []
    assert await rooms.local_membership_changes(BOB, 0, invited.stream_ordering) == []

    leave = room.dag.member(BOB, "leave")
    await room.add(
        leave, membership_changes=(MembershipChange(BOB, room_id, "leave", leave.event_id),)
    )
    await rooms.forget(BOB, room_id)
    forgotten = await rooms.local_membership(BOB, room_id)
    assert forgotten is not None and forgotten.forgotten and forgotten.membership == "leave"
    assert await rooms.local_users_in_room(room_id, "leave") == [BOB]

    rejoin = room.dag.member(BOB, "join")
    await room.add(
        rejoin, membership_changes=(MembershipChange(BOB, room_id, "join", rejoin.event_id),)
    )
    again = await rooms.local_membership(BOB, room_id)
    assert again is not None and not again.forgotten and again.membership == "join"


async def test_aliases(backend: Stores) -> None:
    rooms = backend.rooms
    alias = "#lobby:storage.test"
    assert await rooms.get_alias(alias) is None
    assert await rooms.create_alias(alias, ROOM, ALICE)
    assert not await rooms.create_alias(alias, "!other:storage.test", BOB)
    assert await rooms.get_alias(alias) == (ROOM, ALICE)
    assert await rooms.create_alias("#another:storage.test", ROOM, BOB)
    assert await rooms.aliases_for_room(ROOM) == ["#another:storage.test", alias]
    assert await rooms.delete_alias(alias)
    assert not await rooms.delete_alias(alias)
    assert await rooms.get_alias(alias) is None
    assert await rooms.aliases_for_room(ROOM) == ["#another:storage.test"]
    assert await rooms.aliases_for_room("!none:storage.test") == []


async def test_servers_sharing_rooms_with_local_members(backend: Stores) -> None:
    rooms = backend.rooms
    assert await rooms.servers_sharing_rooms() == []
    shared = LinearRoom(backend)
    await shared.start()
    room_id = shared.dag.room_id
    remote = "@carol:remote.test"
    await shared.add(shared.dag.member(remote, "join"))
    left_behind = "@dave:gone.test"
    await shared.add(shared.dag.member(left_behind, "join"))
    await shared.add(shared.dag.member(left_behind, "leave"))
    assert await rooms.servers_sharing_rooms() == []  # no local member recorded yet
    join = shared.dag.member(BOB, "join")
    await shared.add(join, membership_changes=(MembershipChange(BOB, room_id, "join",
                                                                 join.event_id),))
    assert await rooms.servers_sharing_rooms() == sorted({"remote.test", BOB.split(":", 1)[1]})
    leave = shared.dag.member(BOB, "leave")
    await shared.add(leave, membership_changes=(MembershipChange(BOB, room_id, "leave",
                                                                  leave.event_id),))
    assert await rooms.servers_sharing_rooms() == []
