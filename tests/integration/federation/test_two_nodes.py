"""Two nodes: joining a remote room, messages both ways, invites, membership changes of a
remote user, profiles, aliases, typing and receipts."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import nio
import pytest

from tests.integration.federation.cluster import Cluster
from tests.nodes import ClientFactory
from tests.support.matrix import (
    V3,
    api,
    bodies,
    eventually,
    join,
    room_path,
    send_text,
    timeline,
    wait_for_bodies,
    wait_for_body,
    wait_for_membership,
    wait_for_same_state,
)

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("room_version", ["10", "11", "12"])
async def test_join_by_id_and_messages_both_ways(cluster: Cluster, make_client: ClientFactory,
                                                 room_version: str) -> None:
    a, b = await cluster.start("a"), await cluster.start("b")
    alice = await make_client(a.node, "alice")
    bob = await make_client(b.node, "bob")
    created = await alice.room_create(preset=nio.RoomPreset.public_chat,
                                      room_version=room_version)
    assert isinstance(created, nio.RoomCreateResponse), created
    room_id = created.room_id
    assert await join(bob, room_id, via=[a.server_name]) == room_id

    expected: list[str] = []
    for turn in range(4):  # a conversation: each side answers what it has seen
        sender = alice if turn % 2 == 0 else bob
        batch = [f"{sender.user_id} {turn}.{i}" for i in range(3)]
        for body in batch:
            await send_text(sender, room_id, body)
        expected.extend(batch)
        await wait_for_bodies(alice, room_id, expected)
        await wait_for_bodies(bob, room_id, expected)
    assert await bodies(alice, room_id) == await bodies(bob, room_id) == expected
    for client in (alice, bob):  # /sync shows the same timeline as /messages
        assert await synced_bodies(client, room_id) == expected
    await wait_for_same_state([alice, bob], room_id)


async def synced_bodies(client: nio.AsyncClient, room_id: str) -> list[str]:
    """Message bodies in the room's timeline of an initial /sync, oldest first."""
    status, body = await api(client, "GET", f"{V3}/sync", query={
        "timeout": "0", "filter": '{"room": {"timeline": {"limit": 100}}}'})
    assert status == 200, body
    events = body["rooms"]["join"][room_id]["timeline"]["events"]
    return [e["content"]["body"] for e in events if e["type"] == "m.room.message"]


async def two_node_room(cluster: Cluster, make_client: ClientFactory, **create: object
                        ) -> tuple[nio.AsyncClient, nio.AsyncClient, str]:
    """alice on node a creates a room, bob on node b joins it; returns (alice, bob, room)."""
    a, b = await cluster.start("a"), await cluster.start("b")
    alice = await make_client(a.node, "alice")
    bob = await make_client(b.node, "bob")
    created = await alice.room_create(**{"preset": nio.RoomPreset.public_chat, **create})
    assert isinstance(created, nio.RoomCreateResponse), created
    await join(bob, created.room_id, via=[a.server_name])
    await wait_for_membership(alice, created.room_id, bob.user_id, "join")
    return alice, bob, created.room_id


async def test_join_by_alias_and_alias_resolution(cluster: Cluster,
                                                  make_client: ClientFactory) -> None:
    a, b = await cluster.start("a"), await cluster.start("b")
    alice = await make_client(a.node, "alice")
    bob = await make_client(b.node, "bob")
    created = await alice.room_create(preset=nio.RoomPreset.public_chat, alias="lobby")
    assert isinstance(created, nio.RoomCreateResponse), created
    alias = f"#lobby:{a.server_name}"

    resolved = await bob.room_resolve_alias(alias)
    assert isinstance(resolved, nio.RoomResolveAliasResponse), resolved
    assert resolved.room_id == created.room_id
    assert a.server_name in resolved.servers
    missing = await bob.room_resolve_alias(f"#nope:{a.server_name}")
    assert isinstance(missing, nio.RoomResolveAliasError)
    assert missing.status_code == "M_NOT_FOUND"

    assert await join(bob, alias) == created.room_id
    await wait_for_membership(alice, created.room_id, bob.user_id, "join")
    # once b is in the room, a names it among the servers to join through
    status, body = await api(alice, "GET", f"{V3}/directory/room/{quote(alias, safe='')}")
    assert status == 200 and b.server_name in body["servers"], body
    await send_text(bob, created.room_id, "hello over the alias")
    await wait_for_bodies(alice, created.room_id, ["hello over the alias"])


async def invited_to(client: nio.AsyncClient, room_ids: set[str]) -> None:
    """Wait until the client's sync lists an invite to every room of ``room_ids``."""
    async def check() -> None:
        synced = await client.sync(timeout=0, full_state=True)
        assert isinstance(synced, nio.SyncResponse), synced
        assert room_ids <= set(synced.rooms.invite), synced.rooms.invite
    await eventually(check, what=f"invites in {client.user_id}'s sync")


async def accept_one_reject_one(inviter: nio.AsyncClient, invitee: nio.AsyncClient,
                                room_version: str) -> None:
    accepted = await inviter.room_create(name=f"private of {inviter.user_id}",
                                         room_version=room_version)
    assert isinstance(accepted, nio.RoomCreateResponse), accepted
    rejected = await inviter.room_create(name=f"declined of {inviter.user_id}",
                                         room_version=room_version)
    assert isinstance(rejected, nio.RoomCreateResponse), rejected
    for room in (accepted.room_id, rejected.room_id):
        invited = await inviter.room_invite(room, invitee.user_id)
        assert isinstance(invited, nio.RoomInviteResponse), invited
    await invited_to(invitee, {accepted.room_id, rejected.room_id})

    # accepting: the invitee's server joins through the inviter's server, though no one names
    # it (the client gives no via, and from version 12 on a room ID has no server name)
    assert await join(invitee, accepted.room_id) == accepted.room_id
    await wait_for_membership(inviter, accepted.room_id, invitee.user_id, "join")
    await send_text(invitee, accepted.room_id, "thanks for the invite")
    await wait_for_bodies(inviter, accepted.room_id, ["thanks for the invite"])
    await wait_for_same_state([inviter, invitee], accepted.room_id)

    # rejecting: a leave over federation
    left = await invitee.room_leave(rejected.room_id)
    assert isinstance(left, nio.RoomLeaveResponse), left
    await wait_for_membership(inviter, rejected.room_id, invitee.user_id, "leave")
    synced = await invitee.sync(timeout=0)
    assert isinstance(synced, nio.SyncResponse), synced
    assert rejected.room_id not in synced.rooms.invite


@pytest.mark.parametrize("room_version", ["10", "12"])
async def test_invites_both_ways_accept_and_reject(cluster: Cluster, make_client: ClientFactory,
                                                   room_version: str) -> None:
    a, b = await cluster.start("a"), await cluster.start("b")
    alice = await make_client(a.node, "alice")
    bob = await make_client(b.node, "bob")
    await accept_one_reject_one(alice, bob, room_version)
    await accept_one_reject_one(bob, alice, room_version)


def server_of(user_id: str) -> str:
    return user_id.split(":", 1)[1]


async def test_leave_kick_ban_unban_of_remote_user(cluster: Cluster,
                                                   make_client: ClientFactory) -> None:
    alice, bob, room_id = await two_node_room(cluster, make_client)

    left = await bob.room_leave(room_id)
    assert isinstance(left, nio.RoomLeaveResponse), left
    await wait_for_membership(alice, room_id, bob.user_id, "leave")
    await wait_for_same_state([alice, bob], room_id)

    await join(bob, room_id, via=[server_of(alice.user_id)])
    await wait_for_membership(alice, room_id, bob.user_id, "join")
    kicked = await alice.room_kick(room_id, bob.user_id, reason="out")
    assert isinstance(kicked, nio.RoomKickResponse), kicked
    await wait_for_membership(bob, room_id, bob.user_id, "leave")
    await wait_for_same_state([alice, bob], room_id)

    await join(bob, room_id, via=[server_of(alice.user_id)])
    await wait_for_membership(alice, room_id, bob.user_id, "join")
    banned = await alice.room_ban(room_id, bob.user_id, reason="spam")
    assert isinstance(banned, nio.RoomBanResponse), banned
    await wait_for_membership(bob, room_id, bob.user_id, "ban")
    await wait_for_same_state([alice, bob], room_id)
    refused = await bob.join(room_id)
    assert isinstance(refused, nio.JoinError), refused

    unbanned = await alice.room_unban(room_id, bob.user_id)
    assert isinstance(unbanned, nio.RoomUnbanResponse), unbanned
    await wait_for_membership(alice, room_id, bob.user_id, "leave")
    await join(bob, room_id, via=[server_of(alice.user_id)])
    await wait_for_membership(alice, room_id, bob.user_id, "join")
    await send_text(bob, room_id, "back again")
    await wait_for_bodies(alice, room_id, ["back again"])
    await wait_for_same_state([alice, bob], room_id)


async def test_profile_of_remote_user(cluster: Cluster, make_client: ClientFactory) -> None:
    a, b = await cluster.start("a"), await cluster.start("b")
    alice = await make_client(a.node, "alice")
    bob = await make_client(b.node, "bob")
    assert isinstance(await bob.set_displayname("Bob the Builder"),
                      nio.ProfileSetDisplayNameResponse)
    profile = await alice.get_profile(bob.user_id)
    assert isinstance(profile, nio.ProfileGetResponse), profile
    assert profile.displayname == "Bob the Builder"
    name = await alice.get_displayname(bob.user_id)
    assert isinstance(name, nio.ProfileGetDisplayNameResponse), name
    assert name.displayname == "Bob the Builder"
    unknown = await alice.get_profile(f"@nobody:{b.server_name}")
    assert isinstance(unknown, nio.ProfileGetError), unknown
    assert unknown.status_code == "M_NOT_FOUND"


async def ephemeral_of(watcher: nio.AsyncClient, since: str, room_id: str
                       ) -> list[dict[str, object]]:
    """The room's ephemeral events in the watcher's incremental /sync from ``since``."""
    status, body = await api(watcher, "GET", f"{V3}/sync",
                             query={"timeout": "0", "since": since})
    assert status == 200, body
    room = body.get("rooms", {}).get("join", {}).get(room_id, {})
    return list(room.get("ephemeral", {}).get("events", []))


async def typing_and_receipt_seen(actor: nio.AsyncClient, watcher: nio.AsyncClient,
                                  room_id: str) -> None:
    first = await watcher.sync(timeout=0)
    assert isinstance(first, nio.SyncResponse), first
    event_id = await send_text(watcher, room_id, f"read me, {actor.user_id}")
    await wait_for_bodies(actor, room_id, [f"read me, {actor.user_id}"])
    typing = await actor.room_typing(room_id, True, timeout=20_000)
    assert isinstance(typing, nio.RoomTypingResponse), typing
    receipt = await actor.room_read_markers(room_id, event_id, event_id)
    assert isinstance(receipt, nio.RoomReadMarkersResponse), receipt

    async def check() -> None:
        ephemeral: list[Any] = await ephemeral_of(watcher, first.next_batch, room_id)
        typing_users = [u for e in ephemeral if e["type"] == "m.typing"
                        for u in e["content"].get("user_ids", [])]
        readers = [u for e in ephemeral if e["type"] == "m.receipt"
                   for u in e["content"].get(event_id, {}).get("m.read", {})]
        assert actor.user_id in typing_users, ephemeral
        assert actor.user_id in readers, ephemeral
    await eventually(check, what=f"{actor.user_id}'s typing and receipt")


async def test_typing_and_receipts_cross_both_ways(cluster: Cluster,
                                                   make_client: ClientFactory) -> None:
    alice, bob, room_id = await two_node_room(cluster, make_client)
    await typing_and_receipt_seen(alice, bob, room_id)
    await typing_and_receipt_seen(bob, alice, room_id)


async def test_knock_retract_and_knock_admitted(cluster: Cluster,
                                                make_client: ClientFactory) -> None:
    a, b = await cluster.start("a"), await cluster.start("b")
    alice = await make_client(a.node, "alice")
    bob = await make_client(b.node, "bob")
    created = await alice.room_create(initial_state=[{
        "type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}])
    assert isinstance(created, nio.RoomCreateResponse), created
    room_id = created.room_id
    knock_path = f"{V3}/knock/{quote(room_id, safe='')}"
    via = [("server_name", a.server_name)]

    status, body = await api(bob, "POST", knock_path, {"reason": "let me in"}, query=via)
    assert status == 200, body
    await wait_for_membership(alice, room_id, bob.user_id, "knock")
    # retracting the knock is a leave over federation, through a server of the room
    status, body = await api(bob, "POST", room_path(room_id, "leave"), {})
    assert status == 200, body
    await wait_for_membership(alice, room_id, bob.user_id, "leave")

    status, body = await api(bob, "POST", knock_path, {}, query=via)
    assert status == 200, body
    await wait_for_membership(alice, room_id, bob.user_id, "knock")
    invited = await alice.room_invite(room_id, bob.user_id)
    assert isinstance(invited, nio.RoomInviteResponse), invited
    assert await join(bob, room_id) == room_id
    await wait_for_membership(alice, room_id, bob.user_id, "join")
    await wait_for_same_state([alice, bob], room_id)


async def test_redaction_and_profile_changes_cross(cluster: Cluster,
                                                   make_client: ClientFactory) -> None:
    alice, bob, room_id = await two_node_room(cluster, make_client)
    event_id = await send_text(alice, room_id, "oops")
    await wait_for_body(bob, room_id, "oops")
    redacted = await alice.room_redact(room_id, event_id, reason="typo")
    assert isinstance(redacted, nio.RoomRedactResponse), redacted

    async def redacted_on_b() -> None:
        found = [e for e in await timeline(bob, room_id) if e["event_id"] == event_id]
        assert len(found) == 1 and found[0]["content"] == {}, found
    await eventually(redacted_on_b, what="the redaction on b")

    renamed = await bob.set_displayname("Bobby")
    assert isinstance(renamed, nio.ProfileSetDisplayNameResponse), renamed

    async def renamed_on_a() -> None:
        status, body = await api(alice, "GET", room_path(room_id, "state", "m.room.member",
                                                         bob.user_id))
        assert status == 200 and body.get("displayname") == "Bobby", body
    await eventually(renamed_on_a, what="bob's new name in the room on a")
    await wait_for_same_state([alice, bob], room_id)


async def test_public_room_directory_of_a_remote_server(cluster: Cluster,
                                                        make_client: ClientFactory) -> None:
    a, b = await cluster.start("a"), await cluster.start("b")
    alice = await make_client(a.node, "alice")
    bob = await make_client(b.node, "bob")
    created = await alice.room_create(preset=nio.RoomPreset.public_chat, name="Agora",
                                      visibility=nio.RoomVisibility.public)
    assert isinstance(created, nio.RoomCreateResponse), created
    hidden = await alice.room_create(preset=nio.RoomPreset.public_chat, name="Hidden")
    assert isinstance(hidden, nio.RoomCreateResponse), hidden
    status, body = await api(bob, "GET", f"{V3}/publicRooms", query={"server": a.server_name})
    assert status == 200, body
    assert [(r["room_id"], r.get("name")) for r in body["chunk"]] == [
        (created.room_id, "Agora")], body


async def test_an_invited_server_does_not_take_in_the_room(cluster: Cluster,
                                                           make_client: ClientFactory) -> None:
    """The invite reaches the invitee's server twice: through /invite (kept apart from the
    room, for the invitee) and in a transaction (the target's server gets the event). A server
    with no user in the room ignores the latter rather than pulling the room's history."""
    a, b = await cluster.start("a"), await cluster.start("b")
    alice = await make_client(a.node, "alice")
    bob = await make_client(b.node, "bob")
    created = await alice.room_create(name="private")
    assert isinstance(created, nio.RoomCreateResponse), created
    room_id = created.room_id
    for i in range(5):
        await send_text(alice, room_id, f"before the invite {i}")
    invited = await alice.room_invite(room_id, bob.user_id)
    assert isinstance(invited, nio.RoomInviteResponse), invited

    assert a.node.federation is not None
    sender = a.node.federation.sender

    async def delivered() -> None:
        report = {d["destination"]: d for d in await sender.status()}
        assert report.get(b.server_name, {}).get("last_success_ts"), report
        assert report[b.server_name]["queue_depth"] == 0, report
    await eventually(delivered, what="the invite sent to b in a transaction")
    assert await b.node.services.rooms.states.snapshot(room_id) is None
    await invited_to(bob, {room_id})

    assert await join(bob, room_id) == room_id
    await send_text(alice, room_id, "welcome")
    await wait_for_bodies(bob, room_id, ["welcome"])
    await wait_for_same_state([alice, bob], room_id)
