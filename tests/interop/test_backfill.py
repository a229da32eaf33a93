"""Scenario 5: history — a user who joins late paginates the messages sent before the join, which
their server fetches from the other one (backfill), in both directions; a user whose server left
the room and came back paginates across what was said meanwhile (a gap in the middle of the
history, filled the same way).

Spec: server-server API "Backfilling and retrieving missing events" (GET /backfill), client-server
API "GET /rooms/{roomId}/messages" and "Room History Visibility" (``shared``: joined members see
the history from before they joined).

Where RocketNode disagreed with Synapse (fixed in RocketNode): server-server API "Checks
performed on receipt of a PDU", step 6 — RocketNode also soft-failed *backfilled* events against
the room's current state, so the messages (and the join) of a member who had left since were
hidden from the late joiner, and backfill stopped at them. Backfilled events are history; they
are checked against the state before them, as Synapse does.
"""

from __future__ import annotations

import nio
import pytest

from tests.interop.conftest import Servers
from tests.support.matrix import (
    create_room,
    join,
    message_bodies,
    send_text,
    timeline,
    wait_for_event,
    wait_for_membership,
)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]
HISTORY = 45


@pytest.mark.parametrize("home", ["synapse", "rocketnode"])
async def test_late_joiner_reads_history(servers: Servers, home: str) -> None:
    creator_home, joiner_home = (servers.synapse, servers.rocket) if home == "synapse" \
        else (servers.rocket, servers.synapse)
    creator = await servers.user(creator_home, f"historian_{home}")
    joiner = await servers.user(joiner_home, f"latecomer_{home}")
    visitor = await servers.user(creator_home, f"visitor_{home}")
    room_id = await create_room(creator, name="History")
    sent = [f"before the join {i}" for i in range(HISTORY)]
    for body in sent[:HISTORY // 2]:
        await send_text(creator, room_id, body)
    # someone who came, spoke and left before the late joiner arrived: their messages are
    # history too, although they are not in the room any more
    await join(visitor, room_id)
    sent.insert(HISTORY // 2, "a visitor passing by")
    await send_text(visitor, room_id, sent[HISTORY // 2])
    left = await visitor.room_leave(room_id)
    assert isinstance(left, nio.RoomLeaveResponse), left
    for body in sent[HISTORY // 2 + 1:]:
        await send_text(creator, room_id, body)

    await join(joiner, room_id, via=[creator_home.server_name])
    await wait_for_membership(creator, room_id, joiner.user_id, "join")
    after = await send_text(creator, room_id, "after the join")
    await wait_for_event(joiner, room_id, after)
    # small pages: the joiner's server has to backfill several times
    late_view = await timeline(joiner, room_id, page=10)
    assert message_bodies(late_view) == [*sent, "after the join"]
    assert late_view[0]["type"] == "m.room.create", late_view[0]
    creator_view = await timeline(creator, room_id)
    assert [e["event_id"] for e in late_view] == [e["event_id"] for e in creator_view]


@pytest.mark.parametrize("home", ["synapse", "rocketnode"])
async def test_rejoiner_reads_what_was_said_while_away(servers: Servers, home: str) -> None:
    creator_home, joiner_home = (servers.synapse, servers.rocket) if home == "synapse" \
        else (servers.rocket, servers.synapse)
    creator = await servers.user(creator_home, f"keeper_{home}")
    joiner = await servers.user(joiner_home, f"wanderer_{home}")
    room_id = await create_room(creator, name="Coming back")
    await send_text(creator, room_id, "before")
    await join(joiner, room_id, via=[creator_home.server_name])
    await wait_for_event(joiner, room_id, await send_text(creator, room_id, "while in"))
    left = await joiner.room_leave(room_id)
    assert isinstance(left, nio.RoomLeaveResponse), left
    await wait_for_membership(creator, room_id, joiner.user_id, "leave")
    away = [f"while away {i}" for i in range(HISTORY)]
    for body in away:  # the joiner's server is out of the room: it gets none of these
        await send_text(creator, room_id, body)
    await join(joiner, room_id, via=[creator_home.server_name])
    await wait_for_membership(creator, room_id, joiner.user_id, "join")
    await wait_for_event(joiner, room_id, await send_text(creator, room_id, "after"))

    back_view = await timeline(joiner, room_id, page=10)
    assert message_bodies(back_view) == ["before", "while in", *away, "after"]
    creator_view = await timeline(creator, room_id)
    assert [e["event_id"] for e in back_view] == [e["event_id"] for e in creator_view]
