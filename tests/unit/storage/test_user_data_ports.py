"""Contract of the port methods behind profiles and push rules: extended profile fields
(``AccountStore``) and ordered user push rules (``ClientDataStore``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rocketnode.storage.ports import Stores
from tests.unit.storage.builders import ALICE, BOB


async def test_extra_profile_fields_round_trip_and_survive_reopen(
    backend: Stores, reopen: Callable[[Stores], Awaitable[Stores]]
) -> None:
    accounts = backend.accounts
    assert await accounts.get_extra_profile_fields(ALICE) == {}
    await accounts.set_extra_profile_field(ALICE, "m.tz", "Europe/Paris")
    await accounts.set_extra_profile_field(ALICE, "org.example.list", [1, {"a": None}])
    await accounts.set_extra_profile_field(BOB, "m.tz", "Asia/Tokyo")
    await accounts.set_extra_profile_field(ALICE, "m.tz", "Europe/Berlin")
    await accounts.delete_extra_profile_field(BOB, "m.tz")
    await accounts.delete_extra_profile_field(BOB, "never.set")
    reopened = await reopen(backend)
    assert await reopened.accounts.get_extra_profile_fields(ALICE) == {
        "m.tz": "Europe/Berlin", "org.example.list": [1, {"a": None}]}
    assert await reopened.accounts.get_extra_profile_fields(BOB) == {}


async def test_user_push_rules_keep_the_given_order(backend: Stores) -> None:
    data = backend.client_data
    await data.put_user_push_rule(ALICE, "global", "override", "a", {"actions": []}, ["a"])
    await data.put_user_push_rule(ALICE, "global", "override", "b", {"actions": []}, ["b", "a"])
    await data.put_user_push_rule(ALICE, "global", "override", "c", {"actions": ["notify"]},
                                  ["b", "c", "a"])
    await data.put_push_rule(ALICE, "global", "override", "c", None, False)
    # Replacing a rule keeps its enabled flag; a new order moves it.
    await data.put_user_push_rule(ALICE, "global", "override", "c", {"actions": []},
                                  ["c", "b", "a"])
    rows = await data.get_push_rule_overrides(ALICE)
    assert rows == [
        ("global", "override", "c", {"actions": []}, False),
        ("global", "override", "b", {"actions": []}, True),
        ("global", "override", "a", {"actions": []}, True),
    ]
    assert await data.get_push_rule_overrides(BOB) == []
