"""What a backend stored is there after it is closed and opened again, and stream positions
continue from where they were (above for new events, below for backfilled ones)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rocketnode.storage.ports import Stores
from tests.unit.storage.builders import ALICE, BOB, LinearRoom

Reopen = Callable[[Stores], Awaitable[Stores]]


async def test_everything_survives_a_reopen(backend: Stores, reopen: Reopen) -> None:
    room = LinearRoom(backend)
    await room.start(is_public=True)
    message = room.dag.message("before the restart")
    await room.add(message, txn=(ALICE, "DEV", "t1"))
    old = room.dag.message("old history", prev_events=[], advance=False)
    backfilled = await room.add(old, backfilled=True, forward_extremities=None,
                                current_state_group=None, current_state_delta={})
    await backend.accounts.create_account(BOB, "hash", True, 5)
    await backend.accounts.add_login(BOB, "DEV", "Bob's phone", "token-hash", 6)
    await backend.rooms.create_alias("#kept:storage.test", room.dag.room_id, ALICE)
    await backend.client_data.put_account_data(BOB, "", "m.test", {"n": 1})
    receipt = await backend.client_data.put_receipt(
        room.dag.room_id, "m.read", BOB, "", message.event_id, {}
    )
    filter_id = await backend.client_data.add_filter(BOB, {"room": {}})
    await backend.client_data.put_push_rule(BOB, "global", "content", "r", {"a": 1}, True)
    position = await backend.events.current_stream_ordering()
    assert position == receipt

    stores = await reopen(backend)

    assert await stores.events.current_stream_ordering() == position
    stored = await stores.events.get_event(message.event_id)
    assert stored is not None and stored.pdu.data == message.data
    assert await stores.events.get_txn_event_id(ALICE, "DEV", "t1") == message.event_id
    assert await stores.events.get_forward_extremities(room.dag.room_id) == [message.event_id]
    assert await stores.state.get_current_state(room.dag.room_id) == room.state
    record = await stores.rooms.get_room(room.dag.room_id)
    assert record is not None and record.current_state_group == room.state_group
    assert await stores.rooms.public_room_ids() == [room.dag.room_id]
    assert await stores.rooms.get_alias("#kept:storage.test") == (room.dag.room_id, ALICE)
    token = await stores.accounts.get_access_token("token-hash")
    assert token is not None and (token.user_id, token.device_id, token.is_admin) == (
        BOB, "DEV", True
    )
    assert await stores.client_data.get_account_data(BOB, "", "m.test") == {"n": 1}
    assert await stores.client_data.get_filter(BOB, filter_id) == {"room": {}}
    assert [r.event_id for r in await stores.client_data.receipts_for_rooms(
        [room.dag.room_id], 0, position
    )] == [message.event_id]
    assert await stores.client_data.get_push_rule_overrides(BOB) == [
        ("global", "content", "r", {"a": 1}, True)
    ]

    line = LinearRoom(stores, room.dag)
    line.state_group, line.state = room.state_group, room.state
    after = await line.add(room.dag.message("after the restart"))
    assert after.stream_ordering > position
    older = room.dag.message("older history", prev_events=[], advance=False)
    backfilled_again = await line.add(older, backfilled=True, forward_extremities=None,
                                      current_state_group=None, current_state_delta={})
    assert backfilled_again.stream_ordering < backfilled.stream_ordering < 0
    data_position = await stores.client_data.put_account_data(BOB, "", "m.test", {"n": 2})
    assert data_position > after.stream_ordering
