"""Scenario 3: invites across servers, accepted and rejected, in both directions.

Spec: server-server API "Inviting to a room" (PUT /v2/invite: the invitee's server countersigns
and keeps the stripped state), "Leaving Rooms (Rejecting Invites)" (make_leave / send_leave
through a server in the room), "Joining Rooms" (accepting through the inviting server);
client-server API "Room membership" (``rooms.invite`` in /sync with ``invite_state``).
"""

from __future__ import annotations

from typing import Any

import nio
import pytest

from tests.interop.conftest import Servers
from tests.support.matrix import (
    V3,
    create_room,
    eventually,
    join,
    ok,
    same_timeline_from,
    send_text,
    timeline,
    wait_for_bodies,
    wait_for_membership,
    wait_for_same_state,
)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]


async def invite_states(client: nio.AsyncClient) -> dict[str, list[dict[str, Any]]]:
    """The rooms of /sync's ``rooms.invite`` with their stripped state events."""
    body = await ok(client, "GET", f"{V3}/sync", query={"timeout": "0"})
    return {room_id: room.get("invite_state", {}).get("events", [])
            for room_id, room in body.get("rooms", {}).get("invite", {}).items()}


@pytest.mark.parametrize("direction", ["synapse_invites_rocketnode",
                                       "rocketnode_invites_synapse"])
async def test_invite_accepted_and_rejected(servers: Servers, direction: str) -> None:
    synapse, rocket = servers.synapse, servers.rocket
    inviter_home, invitee_home = (synapse, rocket) if direction.startswith("synapse") \
        else (rocket, synapse)
    inviter = await servers.user(inviter_home, f"inviter_{direction[:5]}")
    invitee = await servers.user(invitee_home, f"invitee_{direction[:5]}")
    accepted = await create_room(inviter, preset="private_chat", name="Accept me")
    rejected = await create_room(inviter, preset="private_chat", name="Decline me")
    for room_id in (accepted, rejected):
        invited = await inviter.room_invite(room_id, invitee.user_id)
        assert isinstance(invited, nio.RoomInviteResponse), invited
        await wait_for_membership(inviter, room_id, invitee.user_id, "invite")

    async def both_invites() -> dict[str, list[dict[str, Any]]]:
        states = await invite_states(invitee)
        assert {accepted, rejected} <= states.keys(), states
        return states
    states = await eventually(both_invites, what="both invites in the invitee's /sync")
    for room_id, name in ((accepted, "Accept me"), (rejected, "Decline me")):
        stripped = {(e["type"], e.get("state_key")): e for e in states[room_id]}
        assert stripped[("m.room.name", "")]["content"]["name"] == name, stripped
        assert stripped[("m.room.member", invitee.user_id)]["content"]["membership"] == \
            "invite", stripped

    # accepting: a join through the inviter's server, without naming it
    assert await join(invitee, accepted) == accepted
    await wait_for_membership(inviter, accepted, invitee.user_id, "join")
    await send_text(invitee, accepted, "thanks for the invite")
    await wait_for_bodies(inviter, accepted, ["thanks for the invite"])
    await send_text(inviter, accepted, "welcome")
    await wait_for_bodies(invitee, accepted, ["thanks for the invite", "welcome"])
    await wait_for_same_state([inviter, invitee], accepted)
    # the invitee's server backfills the room's history, its invite included
    create_id = (await timeline(inviter, accepted))[0]["event_id"]
    history = await same_timeline_from([inviter, invitee], accepted, create_id)
    assert len(history) >= 8, history  # create, member, levels, rules, ..., invite, join, 2 msgs

    # rejecting: a leave over federation, and the invite is gone from the invitee's sync
    left = await invitee.room_leave(rejected)
    assert isinstance(left, nio.RoomLeaveResponse), left
    await wait_for_membership(inviter, rejected, invitee.user_id, "leave")
    remaining = await invite_states(invitee)
    assert rejected not in remaining and accepted not in remaining, remaining
    # the inviter may invite again after a rejection
    again = await inviter.room_invite(rejected, invitee.user_id)
    assert isinstance(again, nio.RoomInviteResponse), again
    await eventually(lambda: _has_invite(invitee, rejected), what="the second invite")


async def _has_invite(client: nio.AsyncClient, room_id: str) -> None:
    assert room_id in await invite_states(client)
