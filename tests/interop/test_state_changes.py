"""Scenario 4: state changes across servers — name, topic, power levels, join rules, and kick,
ban and unban of a remote user — with the room on either server. After each change GET
/rooms/{roomId}/state answers the same (sorted type, state_key, event_id) on both servers.

Spec: client-server API "GET /rooms/{roomId}/state", "Room membership" (kick, ban, unban);
room version 12 authorization rules (power levels, join rules, bans); server-server API
"Transactions" (state events reaching the other server) and "Joining Rooms" (a refused join).

Where RocketNode disagreed with Synapse (fixed in RocketNode):
- client-server API "PUT /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}":
  with an empty state key "the trailing slash on this endpoint is optional"; RocketNode
  answered 405 to ``.../state/m.room.topic/`` (what matrix-nio sends).
- server-server API "Checks performed on receipt of a PDU" (step 6, soft failure against the
  current state) with "Joining Rooms": a RocketNode user kicked while the room's join rule was
  ``invite`` could not rejoin after it became ``public``; RocketNode soft-failed its own join
  against the state it kept from before the kick, although send_join had just given it the
  room's current state.
"""

from __future__ import annotations

import json

import nio
import pytest

from tests.interop.conftest import RocketNode, Servers
from tests.support.matrix import (
    V3,
    api,
    create_room,
    eventually,
    get_state_event,
    join,
    ok,
    put_state,
    room_state,
    send_text,
    wait_for_bodies,
    wait_for_membership,
    wait_for_same_state,
)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]


async def join_refused(client: nio.AsyncClient, room_id: str, via: str) -> int:
    status, body = await api(client, "POST", f"{V3}/join/{room_id}", {},
                             [("server_name", via)])
    assert status == 403, (status, body)
    return status


@pytest.mark.parametrize("home", ["synapse", "rocketnode"])
async def test_state_changes_agree(servers: Servers, home: str) -> None:
    owner_home, guest_home = (servers.synapse, servers.rocket) if home == "synapse" \
        else (servers.rocket, servers.synapse)
    owner = await servers.user(owner_home, f"owner_{home}")
    guest = await servers.user(guest_home, f"guest_{home}")
    room_id = await create_room(owner, name="Before")
    await join(guest, room_id, via=[owner_home.server_name])
    await wait_for_membership(owner, room_id, guest.user_id, "join")
    pair = [owner, guest]
    await wait_for_same_state(pair, room_id)

    await put_state(owner, room_id, "m.room.name", {"name": "After"})
    await wait_for_same_state(pair, room_id)
    assert await get_state_event(guest, room_id, "m.room.name") == {"name": "After"}

    levels = await get_state_event(owner, room_id, "m.room.power_levels")
    assert levels is not None
    levels["users"] = {**levels.get("users", {}), guest.user_id: 50}
    await put_state(owner, room_id, "m.room.power_levels", levels)
    await wait_for_same_state(pair, room_id)

    # the remote moderator changes state on its own server; the owner's server accepts it
    await put_state(guest, room_id, "m.room.topic", {"topic": f"set by {guest.user_id}"})
    await wait_for_same_state(pair, room_id)
    topic = await get_state_event(owner, room_id, "m.room.topic")
    assert topic == {"topic": f"set by {guest.user_id}"}, topic

    await put_state(owner, room_id, "m.room.join_rules", {"join_rule": "invite"})
    await wait_for_same_state(pair, room_id)

    kicked = await owner.room_kick(room_id, guest.user_id, reason="kick test")
    assert isinstance(kicked, nio.RoomKickResponse), kicked
    await wait_for_membership(guest, room_id, guest.user_id, "leave")
    await wait_for_same_state(pair, room_id)
    await join_refused(guest, room_id, owner_home.server_name)  # join rule is invite now

    for i in range(3):  # events the guest's server never sees: its old view goes stale
        await send_text(owner, room_id, f"while the guest is out {i}")
    await put_state(owner, room_id, "m.room.join_rules", {"join_rule": "public"})
    kick_id = dict(((t, k), e) for t, k, e in await room_state(guest, room_id))[
        ("m.room.member", guest.user_id)]
    await join(guest, room_id, via=[owner_home.server_name])
    await wait_for_membership(owner, room_id, guest.user_id, "join")
    await wait_for_same_state(pair, room_id)
    if isinstance(guest_home, RocketNode):
        # its view from before the kick is stale: the rejoin does not build on it
        events = guest_home.node.services.stores.events
        assert kick_id not in await events.get_forward_extremities(room_id)

    # Synapse refuses a banned user's GET /state ("not in room"; the spec names only users
    # who left), so from here a second user of the guest's server watches the room
    witness = await servers.user(guest_home, f"witness_{home}")
    await join(witness, room_id, via=[owner_home.server_name])
    await wait_for_membership(owner, room_id, witness.user_id, "join")
    watchers = [owner, witness]
    await wait_for_same_state(watchers, room_id)

    banned = await owner.room_ban(room_id, guest.user_id, reason="ban test")
    assert isinstance(banned, nio.RoomBanResponse), banned
    await wait_for_membership(witness, room_id, guest.user_id, "ban")
    await wait_for_same_state(watchers, room_id)
    await eventually(lambda: _left_in_sync(guest, room_id), what="the ban in the guest's sync")
    await join_refused(guest, room_id, owner_home.server_name)

    unbanned = await owner.room_unban(room_id, guest.user_id)
    assert isinstance(unbanned, nio.RoomUnbanResponse), unbanned
    for watcher in watchers:
        await wait_for_membership(watcher, room_id, guest.user_id, "leave")
    await join(guest, room_id, via=[owner_home.server_name])
    await wait_for_membership(owner, room_id, guest.user_id, "join")
    final = await wait_for_same_state([*watchers, guest], room_id)
    await send_text(guest, room_id, "back after the unban")
    await wait_for_bodies(owner, room_id, ["back after the unban"])
    members = {key for kind, key, _ in final if kind == "m.room.member"}
    assert members == {owner.user_id, guest.user_id, witness.user_id}


async def _left_in_sync(client: nio.AsyncClient, room_id: str) -> None:
    include_leave = json.dumps({"room": {"include_leave": True}})
    body = await ok(client, "GET", f"{V3}/sync", query={"timeout": "0",
                                                         "filter": include_leave})
    assert room_id in body.get("rooms", {}).get("leave", {}), body.get("rooms")
