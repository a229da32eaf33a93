"""Power levels: reading levels from state, and the m.room.power_levels authorisation rule.

Expected values come from the spec: client-server API ``m.room.power_levels`` (defaults),
room versions 6-9 "m.room.power_levels events accept values as strings", rule 10 of v12
(rule 9 before).
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from rocketnode.core.auth_rules import check_auth_rules
from rocketnode.core.errors import AuthError
from rocketnode.core.power_levels import (
    named_power_level,
    parse_power_level,
    required_power_level,
    room_creators,
    user_power_level,
)
from rocketnode.core.room_versions import KNOWN_ROOM_VERSIONS, V6, V9, V10, V11, V12, RoomVersion
from tests.unit.core.roombuilder import RoomBuilder

ALICE = "@alice:a.test"
BOB = "@bob:b.test"
CAROL = "@carol:c.test"
DAVE = "@dave:d.test"

ALL_VERSIONS = list(KNOWN_ROOM_VERSIONS.values())
STRINGY_VERSIONS = [v for v in ALL_VERSIONS if not v.integer_power_levels]
INTEGER_VERSIONS = [v for v in ALL_VERSIONS if v.integer_power_levels]


def by_id(version: RoomVersion) -> str:
    return f"v{version.identifier}"


def room_with_levels(version: RoomVersion, content: dict[str, Any] | None) -> RoomBuilder:
    room = RoomBuilder.create_room(version, ALICE, power_levels=None, join_rule="public")
    room.join(BOB)
    room.join(CAROL)
    if content is not None:
        room.set_power_levels(ALICE, content)
    return room


# --- parse_power_level ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (50, 50),
        (-7, -7),
        (0, 0),
        ("50", 50),
        ("000100", 100),
        ("+100", 100),
        ("-100", -100),
        (" 100 ", 100),
        ("\t 00100 \n", 100),
        (" +100 ", 100),
        ("1.5", None),
        ("1e3", None),
        ("", None),
        ("+-1", None),
        ("1 0", None),
        ("0x10", None),
        ("1_000", None),  # Python's int() takes this; the spec's grammar does not
        ("\u0661\u0662", None),  # Arabic-Indic digits: not "base 10 integer" digits
        (True, None),
        (None, None),
        ([50], None),
        ({"level": 50}, None),
    ],
)
def test_stringy_levels_before_v10(value: object, expected: int | None) -> None:
    assert parse_power_level(value, V9) == expected


@pytest.mark.parametrize("value", ["50", " 1", "+1", "0", True, False, None, 1.0, [1]])
def test_only_integers_from_v10(value: object) -> None:
    assert parse_power_level(value, V10) is None


# --- Reading levels from state -------------------------------------------------------------


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=by_id)
def test_without_power_levels_event(version: RoomVersion) -> None:
    room = room_with_levels(version, None)
    creator_level = math.inf if version.privileged_creators else 100
    assert user_power_level(ALICE, room.state) == creator_level
    assert user_power_level(BOB, room.state) == 0
    assert required_power_level("m.room.message", False, room.state) == 0
    assert required_power_level("m.room.topic", True, room.state) == 50
    assert named_power_level("ban", room.state, 50) == 50
    assert named_power_level("invite", room.state, 0) == 0


def test_creator_before_v11_is_content_creator() -> None:
    room = RoomBuilder(V10)
    room.create(ALICE, {"creator": BOB})
    assert room_creators(room.state) == {BOB}
    assert user_power_level(BOB, room.state) == 100
    assert user_power_level(ALICE, room.state) == 0


def test_creator_from_v11_is_sender() -> None:
    room = RoomBuilder(V11)
    room.create(ALICE, {"creator": BOB})
    assert room_creators(room.state) == {ALICE}
    assert user_power_level(ALICE, room.state) == 100
    assert user_power_level(BOB, room.state) == 0


def test_v11_ignores_additional_creators() -> None:
    room = RoomBuilder(V11)
    create = room.create(ALICE, {"additional_creators": [BOB]})
    assert room_creators(create) == {ALICE}


def test_v12_creators_have_infinite_power_even_with_power_levels() -> None:
    room = RoomBuilder(V12)
    create = room.create(ALICE, {"additional_creators": [BOB, 7]})
    assert room_creators(create) == {ALICE, BOB}
    room.join(ALICE)
    room.set_power_levels(ALICE, {"users": {CAROL: 100}, "users_default": 10})
    assert user_power_level(ALICE, room.state) == math.inf
    assert user_power_level(BOB, room.state) == math.inf
    assert user_power_level(CAROL, room.state) == 100
    assert user_power_level(DAVE, room.state) == 10


def test_room_creators_needs_a_create_event() -> None:
    with pytest.raises(AuthError, match=r"m\.room\.create"):
        room_creators({})
    with pytest.raises(AuthError):
        user_power_level(ALICE, {})


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=by_id)
def test_levels_from_power_levels_event(version: RoomVersion) -> None:
    content = {
        "users": {BOB: 75, CAROL: -5},
        "users_default": 3,
        "events": {"m.room.topic": 20, "m.room.message": 7},
        "events_default": 1,
        "state_default": 90,
        "ban": 60,
        "redact": 5,
    }
    room = room_with_levels(version, content)
    assert user_power_level(BOB, room.state) == 75
    assert user_power_level(CAROL, room.state) == -5
    assert user_power_level(DAVE, room.state) == 3
    assert user_power_level(ALICE, room.state) == (math.inf if version.privileged_creators else 3)
    assert required_power_level("m.room.topic", True, room.state) == 20
    assert required_power_level("m.room.message", False, room.state) == 7
    assert required_power_level("m.room.name", True, room.state) == 90
    assert required_power_level("m.reaction", False, room.state) == 1
    assert named_power_level("ban", room.state, 50) == 60
    assert named_power_level("redact", room.state, 50) == 5
    assert named_power_level("kick", room.state, 50) == 50
    assert named_power_level("invite", room.state, 0) == 0


def test_events_key_applies_whatever_the_event_kind() -> None:
    room = room_with_levels(V11, {"events": {"m.room.topic": 20}, "events_default": 1})
    assert required_power_level("m.room.topic", False, room.state) == 20


@pytest.mark.parametrize("version", STRINGY_VERSIONS, ids=by_id)
def test_string_levels_read_before_v10(version: RoomVersion) -> None:
    content = {
        "users": {BOB: " 75 ", CAROL: "-5"},
        "users_default": "+3",
        "events": {"m.room.topic": "020"},
        "state_default": "90",
        "ban": "60",
    }
    room = room_with_levels(version, content)
    assert user_power_level(BOB, room.state) == 75
    assert user_power_level(CAROL, room.state) == -5
    assert user_power_level(DAVE, room.state) == 3
    assert required_power_level("m.room.topic", True, room.state) == 20
    assert required_power_level("m.room.name", True, room.state) == 90
    assert named_power_level("ban", room.state, 50) == 60


@pytest.mark.parametrize("version", STRINGY_VERSIONS, ids=by_id)
def test_unreadable_values_in_state_fall_back_to_defaults(version: RoomVersion) -> None:
    # Before v10 only `users` is validated, so a first power levels event can hold these.
    content = {
        "users_default": "many",
        "events": {"m.room.topic": None},
        "state_default": [1],
        "ban": True,
        "invite": "1.5",
    }
    room = room_with_levels(version, content)
    assert user_power_level(DAVE, room.state) == 0
    assert required_power_level("m.room.topic", True, room.state) == 50
    assert named_power_level("ban", room.state, 50) == 50
    assert named_power_level("invite", room.state, 0) == 0


def test_events_that_is_not_an_object_is_ignored_when_read() -> None:
    room = room_with_levels(V9, {"events": ["m.room.topic"], "state_default": 10})
    assert required_power_level("m.room.topic", True, room.state) == 10


# --- The m.room.power_levels rule ----------------------------------------------------------


def moderated_room(version: RoomVersion, **overrides: Any) -> RoomBuilder:
    """Alice creator (100, or infinite from v12), Bob 50, Carol 50, Dave 10; default levels."""
    content: dict[str, Any] = {
        "users": {BOB: 50, CAROL: 50, DAVE: 10},
        "events": {"m.room.power_levels": 50, "m.room.topic": 10},
        "notifications": {"room": 50},
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": 0,
        "events_default": 0,
        "state_default": 50,
        "users_default": 0,
    }
    if not version.privileged_creators:
        content["users"][ALICE] = 100
    content.update(overrides)
    room = room_with_levels(version, content)
    room.join(DAVE)
    return room


def changed(room: RoomBuilder, **changes: Any) -> dict[str, Any]:
    """The current power levels content with top-level ``changes`` (None removes a key)."""
    content = {
        key: dict(value) if isinstance(value, dict) else value
        for key, value in room.state[("m.room.power_levels", "")].content.items()
    }
    for key, value in changes.items():
        if value is None:
            content.pop(key, None)
        else:
            content[key] = value
    return content


def verdict(room: RoomBuilder, sender: str, content: dict[str, Any]) -> bool:
    pdu = room.set_power_levels(sender, content, apply=False)
    try:
        check_auth_rules(pdu, room.state)
    except AuthError:
        return False
    return True


def with_user(room: RoomBuilder, user_id: str, level: object) -> dict[str, Any]:
    users = dict(room.state[("m.room.power_levels", "")].content["users"])
    if level is None:
        users.pop(user_id, None)
    else:
        users[user_id] = level
    return changed(room, users=users)


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=by_id)
class TestUsersChanges:
    def test_cannot_raise_own_level_above_own(self, version: RoomVersion) -> None:
        room = moderated_room(version)
        assert not verdict(room, BOB, with_user(room, BOB, 51))
        assert not verdict(room, BOB, with_user(room, BOB, 100))

    def test_may_lower_or_keep_own_level(self, version: RoomVersion) -> None:
        room = moderated_room(version)
        assert verdict(room, BOB, with_user(room, BOB, 0))
        assert verdict(room, BOB, with_user(room, BOB, None))
        assert verdict(room, BOB, with_user(room, BOB, 50))

    def test_cannot_change_a_peer(self, version: RoomVersion) -> None:
        room = moderated_room(version)
        assert not verdict(room, BOB, with_user(room, CAROL, 0))
        assert not verdict(room, BOB, with_user(room, CAROL, None))

    def test_may_change_users_below(self, version: RoomVersion) -> None:
        room = moderated_room(version)
        assert verdict(room, BOB, with_user(room, DAVE, 0))
        assert verdict(room, BOB, with_user(room, DAVE, 50))
        assert verdict(room, BOB, with_user(room, DAVE, None))

    def test_cannot_promote_above_self(self, version: RoomVersion) -> None:
        room = moderated_room(version)
        assert not verdict(room, BOB, with_user(room, DAVE, 51))
        assert not verdict(room, BOB, with_user(room, "@new:n.test", 51))
        assert verdict(room, BOB, with_user(room, "@new:n.test", 50))

    def test_cannot_touch_someone_above(self, version: RoomVersion) -> None:
        room = moderated_room(version)
        room.set_power_levels(ALICE, with_user(room, CAROL, 60))
        assert not verdict(room, BOB, with_user(room, CAROL, 10))
        assert not verdict(room, BOB, with_user(room, CAROL, None))

    def test_users_keys_must_be_user_ids(self, version: RoomVersion) -> None:
        room = moderated_room(version)
        for key in ("bob", "@nocolon", "@bad:exa mple.org", "#room:a.test", ""):
            assert not verdict(room, ALICE, with_user(room, key, 0)), key

    def test_users_must_be_an_object(self, version: RoomVersion) -> None:
        room = moderated_room(version)
        assert not verdict(room, ALICE, changed(room, users=[BOB]))
        assert not verdict(room, ALICE, changed(room, users="all"))

    def test_user_levels_must_be_integers(self, version: RoomVersion) -> None:
        room = moderated_room(version)
        for level in (True, None, "x", "1.5", [1], {"a": 1}):  # (floats never parse as PDUs)
            content = changed(room, users={BOB: level})
            assert not verdict(room, ALICE, content), level


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=by_id)
class TestTopLevelChanges:
    @pytest.mark.parametrize("name", ["ban", "kick", "redact", "invite", "state_default",
                                      "events_default", "users_default"])
    def test_named_levels(self, version: RoomVersion, name: str) -> None:
        room = moderated_room(version)
        assert verdict(room, BOB, changed(room, **{name: 50}))
        assert verdict(room, BOB, changed(room, **{name: 20}))
        assert not verdict(room, BOB, changed(room, **{name: 51}))
        room.set_power_levels(ALICE, changed(room, **{name: 75}))
        assert not verdict(room, BOB, changed(room, **{name: 10}))  # current value above Bob
        assert not verdict(room, BOB, changed(room, **{name: None}))
        assert verdict(room, BOB, changed(room, **{name: 75, "x_unrelated": 1}))

    def test_adding_a_missing_level_only_checks_the_new_value(self, version: RoomVersion) -> None:
        # An absent key means the default (ban: 50), which the rule does not compare: a user
        # at 10 may add "ban": 10 although that lowers the effective ban level.
        room = moderated_room(version)
        room.set_power_levels(ALICE, changed(room, ban=None, users={**changed(room)["users"],
                                                                   DAVE: 50}))
        room.set_power_levels(ALICE, with_user(room, DAVE, 10) | {"events": {}, "state_default": 0})
        assert verdict(room, DAVE, changed(room, ban=10))
        assert not verdict(room, DAVE, changed(room, ban=11))

    @pytest.mark.parametrize("map_name", ["events", "notifications"])
    def test_level_maps(self, version: RoomVersion, map_name: str) -> None:
        room = moderated_room(version)
        base = room.state[("m.room.power_levels", "")].content[map_name]
        assert verdict(room, BOB, changed(room, **{map_name: {**base, "x.new": 50}}))
        assert not verdict(room, BOB, changed(room, **{map_name: {**base, "x.new": 51}}))
        room.set_power_levels(ALICE, changed(room, **{map_name: {**base, "x.high": 90}}))
        current = room.state[("m.room.power_levels", "")].content[map_name]
        assert not verdict(room, BOB, changed(room, **{map_name: {**current, "x.high": 0}}))
        without = {k: v for k, v in current.items() if k != "x.high"}
        assert not verdict(room, BOB, changed(room, **{map_name: without}))
        assert verdict(room, BOB, changed(room, **{map_name: {**current, "x.low": 5}}))


@pytest.mark.parametrize("version", INTEGER_VERSIONS, ids=by_id)
@pytest.mark.parametrize(
    "change",
    [
        {"ban": "50"},
        {"kick": True},
        {"invite": None},
        {"users_default": [0]},
        {"events": {"m.room.topic": "10"}},
        {"events": ["m.room.topic"]},
        {"notifications": {"room": "50"}},
        {"notifications": None},
        {"users": {BOB: "50"}},
    ],
)
def test_v10_rejects_non_integers(version: RoomVersion, change: dict[str, Any]) -> None:
    room = moderated_room(version)
    assert not verdict(room, ALICE, changed(room) | change)


@pytest.mark.parametrize("version", INTEGER_VERSIONS, ids=by_id)
def test_v10_rejects_non_integers_in_the_first_power_levels_event(version: RoomVersion) -> None:
    room = room_with_levels(version, None)
    pdu = room.set_power_levels(ALICE, {"ban": "50"}, apply=False)
    with pytest.raises(AuthError, match="'ban' is not an integer"):
        check_auth_rules(pdu, room.state)


@pytest.mark.parametrize("version", STRINGY_VERSIONS, ids=by_id)
class TestStringyChanges:
    def test_string_values_are_accepted_and_compared_as_integers(
        self, version: RoomVersion
    ) -> None:
        room = moderated_room(version)
        assert verdict(room, BOB, changed(room, ban="50", events={"m.room.topic": " 10"}))
        assert verdict(room, BOB, with_user(room, DAVE, "+20"))
        assert not verdict(room, BOB, changed(room, kick="51"))
        assert not verdict(room, BOB, with_user(room, DAVE, "051"))

    def test_unchanged_value_rewritten_as_string_is_no_change(self, version: RoomVersion) -> None:
        room = moderated_room(version, redact=75)
        assert verdict(room, BOB, changed(room, redact="75"))
        assert not verdict(room, BOB, changed(room, redact="74"))

    def test_first_event_only_validates_users(self, version: RoomVersion) -> None:
        room = room_with_levels(version, None)
        pdu = room.set_power_levels(ALICE, {"ban": "lots", "events": []}, apply=False)
        check_auth_rules(pdu, room.state)  # must not raise
        bad_users = room.set_power_levels(ALICE, {"users": {BOB: "lots"}}, apply=False)
        with pytest.raises(AuthError):
            check_auth_rules(bad_users, room.state)

    def test_later_events_with_garbage_values_are_rejected(self, version: RoomVersion) -> None:
        room = moderated_room(version)
        assert not verdict(room, ALICE, changed(room, ban="lots"))
        assert not verdict(room, ALICE, changed(room, events={"m.room.topic": "1.5"}))
        assert not verdict(room, ALICE, changed(room, notifications=["room"]))
        assert not verdict(room, ALICE, changed(room, kick=True))

    def test_garbage_already_in_state_may_stay(self, version: RoomVersion) -> None:
        room = room_with_levels(version, None)
        room.set_power_levels(ALICE, {"users": {ALICE: 100, BOB: 50}, "ban": "lots"})
        assert verdict(room, BOB, changed(room, users_default=1))
        assert verdict(room, BOB, changed(room, ban=50))


class TestV12Creators:
    def test_users_must_not_list_a_creator(self) -> None:
        room = RoomBuilder(V12)
        room.create(ALICE, {"additional_creators": [BOB]})
        room.join(ALICE)
        for listed in ({ALICE: 100}, {BOB: 0}, {ALICE: 100, CAROL: 1}):
            pdu = room.set_power_levels(ALICE, {"users": listed}, apply=False)
            with pytest.raises(AuthError, match="creators may not be listed"):
                check_auth_rules(pdu, room.state)

    def test_creator_may_set_any_level(self) -> None:
        room = moderated_room(V12)
        assert verdict(room, ALICE, with_user(room, BOB, 2**53 - 1))
        assert verdict(room, ALICE, changed(room, ban=2**53 - 1, state_default=-(2**53) + 1))

    def test_listing_creators_was_fine_before_v12(self) -> None:
        room = moderated_room(V11)
        assert verdict(room, ALICE, with_user(room, ALICE, 100))

    def test_nobody_outranks_a_creator(self) -> None:
        room = moderated_room(V12)
        room.set_power_levels(ALICE, with_user(room, BOB, 2**53 - 1))
        kick = room.kick(BOB, ALICE, apply=False)
        with pytest.raises(AuthError):
            check_auth_rules(kick, room.state)


def test_power_levels_event_with_another_state_key_has_no_previous_event() -> None:
    room = moderated_room(V6)
    pdu = room.send("m.room.power_levels", BOB, {"users": {BOB: 100}}, state_key="x",
                    apply=False)
    check_auth_rules(pdu, room.state)  # Bob may send it, and there is no previous ("...", "x")
