"""Contract of the ``ClientDataStore`` port: receipts, account data, filters, push rules."""

from __future__ import annotations

from rocketnode.storage.ports import Stores
from tests.unit.storage.builders import ALICE, BOB

ROOM = "!data:storage.test"
OTHER_ROOM = "!other:storage.test"
MANY = 40_000


async def test_receipts_replace_the_previous_one_per_user_type_and_thread(
    backend: Stores,
) -> None:
    data = backend.client_data
    first = await data.put_receipt(ROOM, "m.read", ALICE, "", "$e1", {"ts": 1})
    bob = await data.put_receipt(ROOM, "m.read", BOB, "", "$e1", {"ts": 2})
    threaded = await data.put_receipt(ROOM, "m.read", ALICE, "$thread", "$e0", {"ts": 3})
    other = await data.put_receipt(OTHER_ROOM, "m.read.private", ALICE, "", "$x", {"ts": 4})
    moved = await data.put_receipt(ROOM, "m.read", ALICE, "", "$e2", {"ts": 5})
    assert first < bob < threaded < other < moved

    receipts = await data.receipts_for_rooms([ROOM], 0, moved)
    assert [(r.user_id, r.thread_id, r.event_id, r.data, r.stream_ordering) for r in receipts] \
        == [
            (BOB, "", "$e1", {"ts": 2}, bob),
            (ALICE, "$thread", "$e0", {"ts": 3}, threaded),
            (ALICE, "", "$e2", {"ts": 5}, moved),
        ]
    assert all(r.room_id == ROOM and r.receipt_type == "m.read" for r in receipts)
    since = await data.receipts_for_rooms([ROOM, OTHER_ROOM], threaded, moved)
    assert [(r.room_id, r.receipt_type, r.event_id) for r in since] == [
        (OTHER_ROOM, "m.read.private", "$x"), (ROOM, "m.read", "$e2")
    ]
    assert await data.receipts_for_rooms([ROOM], 0, first) == []  # replaced since
    assert await data.receipts_for_rooms([], 0, moved) == []
    many = [f"!r{i}:storage.test" for i in range(MANY)] + [OTHER_ROOM]
    assert [r.event_id for r in await data.receipts_for_rooms(many, 0, moved)] == ["$x"]


async def test_account_data_global_and_per_room(backend: Stores) -> None:
    data = backend.client_data
    assert await data.get_account_data(ALICE, "", "m.direct") is None
    first = await data.put_account_data(ALICE, "", "m.direct", {"@bob:s": ["!r:s"]})
    per_room = await data.put_account_data(ALICE, ROOM, "m.tag", {"tags": {}})
    await data.put_account_data(BOB, "", "m.direct", {"bob": True})
    replaced = await data.put_account_data(ALICE, "", "m.direct", {})
    assert first < per_room < replaced

    assert await data.get_account_data(ALICE, "", "m.direct") == {}
    assert await data.get_account_data(ALICE, ROOM, "m.tag") == {"tags": {}}
    assert await data.get_account_data(ALICE, "", "m.tag") is None
    assert await data.get_account_data(BOB, "", "m.direct") == {"bob": True}

    items = await data.account_data_since(ALICE, 0, replaced)
    assert [(i.room_id, i.type, i.content, i.stream_ordering) for i in items] == [
        (ROOM, "m.tag", {"tags": {}}, per_room), ("", "m.direct", {}, replaced)
    ]
    assert all(i.user_id == ALICE for i in items)
    assert [i.type for i in await data.account_data_since(ALICE, per_room, replaced)] == [
        "m.direct"
    ]
    assert await data.account_data_since(ALICE, 0, first) == []


async def test_filters_are_numbered_per_user(backend: Stores) -> None:
    data = backend.client_data
    body = {"room": {"timeline": {"limit": 10}}, "event_fields": ["type", "content.body"]}
    first = await data.add_filter(ALICE, body)
    second = await data.add_filter(ALICE, {})
    bob_first = await data.add_filter(BOB, {"presence": {"not_types": ["*"]}})
    assert second == first + 1
    assert bob_first == first
    assert await data.get_filter(ALICE, first) == body
    assert await data.get_filter(ALICE, second) == {}
    assert await data.get_filter(BOB, bob_first) == {"presence": {"not_types": ["*"]}}
    assert await data.get_filter(BOB, second) is None
    assert await data.get_filter(ALICE, 999) is None


async def test_push_rule_overrides(backend: Stores) -> None:
    data = backend.client_data
    assert await data.get_push_rule_overrides(ALICE) == []
    rule = {"actions": ["notify"], "pattern": "cake"}
    await data.put_push_rule(ALICE, "global", "content", "cake", rule, None)
    await data.put_push_rule(ALICE, "global", "override", ".m.rule.master", None, True)
    await data.put_push_rule(BOB, "global", "content", "pie", {"actions": []}, True)
    assert sorted(await data.get_push_rule_overrides(ALICE)) == [
        ("global", "content", "cake", rule, None),
        ("global", "override", ".m.rule.master", None, True),
    ]
    # Enabling keeps the rule; changing the rule keeps the enabled flag.
    await data.put_push_rule(ALICE, "global", "content", "cake", None, False)
    await data.put_push_rule(ALICE, "global", "override", ".m.rule.master", {"x": 1}, None)
    assert sorted(await data.get_push_rule_overrides(ALICE)) == [
        ("global", "content", "cake", rule, False),
        ("global", "override", ".m.rule.master", {"x": 1}, True),
    ]
    assert await data.delete_push_rule(ALICE, "global", "content", "cake")
    assert not await data.delete_push_rule(ALICE, "global", "content", "cake")
    assert [r[2] for r in await data.get_push_rule_overrides(ALICE)] == [".m.rule.master"]
    assert [r[2] for r in await data.get_push_rule_overrides(BOB)] == ["pie"]
