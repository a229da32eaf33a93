"""The pure parts of a /sync room section: receipts, account data, stripped state, filters."""

from __future__ import annotations

import pytest

from rocketnode.core.errors import MatrixError
from rocketnode.services.filters import EventFilter
from rocketnode.services.receipts import check_thread_id
from rocketnode.services.sync_rooms import (
    account_data_events,
    allows_type,
    receipt_event,
    sanitize_stripped,
)
from rocketnode.storage.records import AccountDataItem, Receipt

ROOM = "!r:a"


def receipt(receipt_type: str, user_id: str, event_id: str, ts: int) -> Receipt:
    return Receipt(ROOM, receipt_type, user_id, "", event_id, {"ts": ts}, ts)


def test_receipts_group_by_event_and_type_and_hide_others_private_ones() -> None:
    receipts = [
        receipt("m.read", "@a:a", "$1", 1),
        receipt("m.read", "@b:a", "$1", 2),
        receipt("m.read.private", "@b:a", "$2", 3),
        receipt("m.read.private", "@c:a", "$2", 4),
    ]
    assert receipt_event(receipts, "@b:a") == {
        "type": "m.receipt",
        "content": {
            "$1": {"m.read": {"@a:a": {"ts": 1}, "@b:a": {"ts": 2}}},
            "$2": {"m.read.private": {"@b:a": {"ts": 3}}},
        },
    }
    only_private = [receipt("m.read.private", "@c:a", "$2", 4)]
    assert receipt_event(only_private, "@b:a") is None


def test_account_data_filter_by_type_and_limit() -> None:
    items = [AccountDataItem("@a:a", "", t, {"n": i}, i) for i, t in enumerate(["a.x", "b.y",
                                                                              "a.z"])]
    assert account_data_events(EventFilter(types=("a.*",)), items) == [
        {"type": "a.x", "content": {"n": 0}}, {"type": "a.z", "content": {"n": 2}}
    ]
    assert account_data_events(EventFilter(limit=1), items) == [{"type": "a.x",
                                                                 "content": {"n": 0}}]
    assert account_data_events(EventFilter(types=()), items) == []


def test_type_only_events_ignore_sender_conditions_but_not_rooms() -> None:
    senders_only = EventFilter(senders=("@someone:a",))
    assert allows_type(senders_only, "m.typing", ROOM)
    assert not allows_type(EventFilter(not_types=("m.typing",)), "m.typing", ROOM)
    assert not allows_type(EventFilter(not_rooms=(ROOM,)), "m.receipt", ROOM)


def test_stripped_state_from_elsewhere_is_pruned_to_the_schema() -> None:
    raw = [
        {"type": "m.room.name", "state_key": "", "sender": "@a:a", "content": {"name": "N"},
         "event_id": "$leak", "origin_server_ts": 5, "signatures": {}},
        {"type": "m.room.topic", "state_key": 3, "sender": "@a:a", "content": {}},
        "garbage",
    ]
    assert sanitize_stripped(raw) == [
        {"type": "m.room.name", "state_key": "", "sender": "@a:a", "content": {"name": "N"}}
    ]
    assert sanitize_stripped({"not": "a list"}) == []


@pytest.mark.parametrize("value", ["", 5, "thread", ["$x"]])
def test_bad_thread_ids_are_invalid_params(value: object) -> None:
    with pytest.raises(MatrixError) as caught:
        check_thread_id(value)
    assert caught.value.errcode == "M_INVALID_PARAM"


def test_thread_ids() -> None:
    assert check_thread_id(None) == ""
    assert check_thread_id("main") == "main"
    assert check_thread_id("$root") == "$root"
