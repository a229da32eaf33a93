"""The authorisation rules, rule family by rule family, across room versions 6 to 12.

Every expectation is read off the spec (room versions "Authorisation rules", server-server API
"Auth events selection"); rule numbers in comments are v12's (one lower from rule 3 on before
v12). The power levels rule has its own module, ``test_power_levels``.
"""

from __future__ import annotations

from typing import Any

import pytest

from rocketnode.core.auth_rules import (
    auth_types_for_event,
    check_auth_events_selection,
    check_auth_rules,
)
from rocketnode.core.errors import AuthError
from rocketnode.core.pdu import Pdu, StateKey
from rocketnode.core.room_versions import (
    KNOWN_ROOM_VERSIONS,
    V10,
    V11,
    V12,
    RoomVersion,
)
from rocketnode.core.signing import SigningKey
from tests.unit.core.roombuilder import RoomBuilder, signing_key, third_party_signed

ALICE = "@alice:a.test"  # creator
BOB = "@bob:b.test"
CAROL = "@carol:c.test"
DAVE = "@dave:d.test"
MALLORY = "@mallory:m.test"

ALL_VERSIONS = list(KNOWN_ROOM_VERSIONS.values())
CREATE: StateKey = ("m.room.create", "")
POWER_LEVELS: StateKey = ("m.room.power_levels", "")
JOIN_RULES: StateKey = ("m.room.join_rules", "")


def by_id(version: RoomVersion) -> str:
    return f"v{version.identifier}"


def versions(predicate: Any) -> list[RoomVersion]:
    return [v for v in ALL_VERSIONS if predicate(v)]


def member(user_id: str) -> StateKey:
    return ("m.room.member", user_id)


def allowed(pdu: Pdu, state: dict[StateKey, Pdu]) -> bool:
    try:
        check_auth_rules(pdu, state)
    except AuthError:
        return False
    return True


def assert_rejected(pdu: Pdu, state: dict[StateKey, Pdu], match: str) -> None:
    with pytest.raises(AuthError, match=match):
        check_auth_rules(pdu, state)


def public_room(version: RoomVersion, *joined: str, join_rule: str = "public") -> RoomBuilder:
    """Alice's room with the default power levels (Alice 100 or creator) and ``joined``."""
    room = RoomBuilder.create_room(version, ALICE, join_rule="public")
    for user_id in joined:
        room.join(user_id)
    if join_rule != "public":
        room.set_join_rules(ALICE, join_rule)
    return room


def set_levels(room: RoomBuilder, **changes: Any) -> None:
    """Alice changes the power levels: top-level keys, or ``users`` entries as user IDs."""
    content = {
        key: dict(value) if isinstance(value, dict) else value
        for key, value in room.state[POWER_LEVELS].content.items()
    }
    for key, value in changes.items():
        if key.startswith("@"):
            content["users"][key] = value
        else:
            content[key] = value
    room.set_power_levels(ALICE, content)


# --- Auth events selection -------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=by_id)
class TestAuthTypes:
    def base(self, version: RoomVersion, sender: str = BOB) -> set[StateKey]:
        keys = {POWER_LEVELS, member(sender)}
        return keys if version.room_id_from_create_event else keys | {CREATE}

    def test_create_has_none(self, version: RoomVersion) -> None:
        assert auth_types_for_event(version, "m.room.create", ALICE, "", {}) == set()

    def test_message(self, version: RoomVersion) -> None:
        got = auth_types_for_event(version, "m.room.message", BOB, None, {"body": "x"})
        assert got == self.base(version)

    def test_state_event(self, version: RoomVersion) -> None:
        got = auth_types_for_event(version, "m.room.topic", BOB, "", {"topic": "x"})
        assert got == self.base(version)

    @pytest.mark.parametrize("membership", ["join", "invite", "knock"])
    def test_memberships_that_need_join_rules(self, version: RoomVersion, membership: str) -> None:
        got = auth_types_for_event(version, "m.room.member", BOB, CAROL, {"membership": membership})
        assert got == self.base(version) | {member(CAROL), JOIN_RULES}

    @pytest.mark.parametrize("membership", ["leave", "ban", "something", None])
    def test_memberships_without_join_rules(self, version: RoomVersion, membership: str) -> None:
        got = auth_types_for_event(version, "m.room.member", BOB, CAROL, {"membership": membership})
        assert got == self.base(version) | {member(CAROL)}

    def test_third_party_invite(self, version: RoomVersion) -> None:
        content = {"membership": "invite", "third_party_invite": {"signed": {"token": "tok"}}}
        got = auth_types_for_event(version, "m.room.member", BOB, CAROL, content)
        expected = {member(CAROL), JOIN_RULES, ("m.room.third_party_invite", "tok")}
        assert got == self.base(version) | expected

    @pytest.mark.parametrize(
        "third_party_invite",
        [None, "x", {}, {"signed": "x"}, {"signed": {}}, {"signed": {"token": 5}}],
    )
    def test_malformed_third_party_invite(
        self, version: RoomVersion, third_party_invite: Any
    ) -> None:
        content = {"membership": "invite", "third_party_invite": third_party_invite}
        got = auth_types_for_event(version, "m.room.member", BOB, CAROL, content)
        assert got == self.base(version) | {member(CAROL), JOIN_RULES}

    def test_third_party_token_only_for_invites(self, version: RoomVersion) -> None:
        content = {"membership": "join", "third_party_invite": {"signed": {"token": "tok"}}}
        got = auth_types_for_event(version, "m.room.member", BOB, BOB, content)
        assert got == self.base(version) | {JOIN_RULES}

    def test_authorising_user(self, version: RoomVersion) -> None:
        content = {"membership": "join", "join_authorised_via_users_server": CAROL}
        got = auth_types_for_event(version, "m.room.member", BOB, BOB, content)
        expected = self.base(version) | {JOIN_RULES}
        if version.restricted_join_rule:  # v8+
            expected.add(member(CAROL))
        assert got == expected

    def test_authorising_user_only_for_joins(self, version: RoomVersion) -> None:
        content = {"membership": "invite", "join_authorised_via_users_server": CAROL}
        got = auth_types_for_event(version, "m.room.member", BOB, DAVE, content)
        assert got == self.base(version) | {JOIN_RULES, member(DAVE)}


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=by_id)
class TestAuthEventsSelection:
    def room(self, version: RoomVersion) -> RoomBuilder:
        return public_room(version, BOB)

    def test_proper_selection_passes(self, version: RoomVersion) -> None:
        room = self.room(version)
        for pdu in room.events.values():
            check_auth_events_selection(pdu, room.events)
        check_auth_events_selection(room.message(BOB), room.events)

    def test_unknown_auth_event(self, version: RoomVersion) -> None:
        room = self.room(version)
        pdu = room.message(BOB)
        known = {k: v for k, v in room.events.items() if k != pdu.auth_events[0]}
        with pytest.raises(AuthError, match="unknown"):
            check_auth_events_selection(pdu, known)

    def test_duplicate_state_key(self, version: RoomVersion) -> None:
        room = self.room(version)
        first_levels = room.state[POWER_LEVELS]
        room.set_power_levels(ALICE, {**first_levels.content, "ban": 40})
        pdu = room.message(BOB, auth_events=[*room.message(BOB).auth_events, first_levels.event_id])
        with pytest.raises(AuthError, match="two auth events"):
            check_auth_events_selection(pdu, room.events)

    def test_same_event_twice(self, version: RoomVersion) -> None:
        room = self.room(version)
        proper = list(room.message(BOB).auth_events)
        pdu = room.message(BOB, auth_events=[*proper, proper[0]])
        with pytest.raises(AuthError, match="two auth events"):
            check_auth_events_selection(pdu, room.events)

    def test_unexpected_type(self, version: RoomVersion) -> None:
        room = self.room(version)
        proper = list(room.message(BOB).auth_events)
        pdu = room.message(BOB, auth_events=[*proper, room.state[JOIN_RULES].event_id])
        with pytest.raises(AuthError, match="not expected"):
            check_auth_events_selection(pdu, room.events)

    def test_someone_elses_membership(self, version: RoomVersion) -> None:
        room = self.room(version)
        proper = list(room.message(BOB).auth_events)
        pdu = room.message(BOB, auth_events=[*proper, room.state[member(ALICE)].event_id])
        with pytest.raises(AuthError, match="not expected"):
            check_auth_events_selection(pdu, room.events)

    def test_message_event_as_auth_event(self, version: RoomVersion) -> None:
        room = self.room(version)
        message = room.message(BOB)
        pdu = room.message(BOB, auth_events=[*message.auth_events, message.event_id])
        with pytest.raises(AuthError, match="not expected"):
            check_auth_events_selection(pdu, room.events)

    def test_rejected_auth_event(self, version: RoomVersion) -> None:
        room = self.room(version)
        pdu = room.message(BOB)
        bob_join = room.state[member(BOB)].event_id
        with pytest.raises(AuthError, match="rejected"):
            check_auth_events_selection(pdu, room.events, rejected={bob_join})
        check_auth_events_selection(pdu, room.events, rejected={"$other"})

    def test_auth_event_from_another_room(self, version: RoomVersion) -> None:
        room = self.room(version)
        other = RoomBuilder.create_room(version, ALICE, room_id="!other:a.test")
        if version.room_id_from_create_event:
            other = RoomBuilder.create_room(version, ALICE, create_content={"x": 1})
        foreign_levels = other.state[POWER_LEVELS]
        proper = [
            e for e in room.message(BOB).auth_events if room.events[e].type != POWER_LEVELS[0]
        ]
        pdu = room.message(BOB, auth_events=[*proper, foreign_levels.event_id])
        with pytest.raises(AuthError, match="another room"):
            check_auth_events_selection(pdu, {**room.events, **other.events})

    def test_create_event_is_needed_until_v12_and_refused_after(self, version: RoomVersion) -> None:
        room = self.room(version)
        create_id = room.state[CREATE].event_id
        without = [e for e in room.message(BOB).auth_events if e != create_id]
        with_create = [*without, create_id] if version.room_id_from_create_event else None
        if version.room_id_from_create_event:
            pdu = room.message(BOB, auth_events=with_create)
            with pytest.raises(AuthError, match="not expected"):
                check_auth_events_selection(pdu, room.events)
            check_auth_events_selection(room.message(BOB, auth_events=without), room.events)
        else:
            pdu = room.message(BOB, auth_events=without)
            with pytest.raises(AuthError, match=r"no m\.room\.create"):
                check_auth_events_selection(pdu, room.events)

    def test_missing_optional_auth_events_are_fine(self, version: RoomVersion) -> None:
        room = self.room(version)
        pdu = room.message(BOB, auth_events=[room.state[CREATE].event_id]
                           if not version.room_id_from_create_event else [])
        check_auth_events_selection(pdu, room.events)

    def test_create_event_is_not_checked(self, version: RoomVersion) -> None:
        room = RoomBuilder(version)
        create = room.create(ALICE, auth_events=["$whatever"])
        check_auth_events_selection(create, {})


# --- Rule 1: m.room.create --------------------------------------------------------------------


def create_event(
    version: RoomVersion, content: dict[str, Any] | None = None, **options: Any
) -> Pdu:
    return RoomBuilder(version).create(ALICE, content, **options)


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=by_id)
class TestCreate:
    def test_ordinary_create(self, version: RoomVersion) -> None:
        check_auth_rules(create_event(version), {})

    def test_prev_events(self, version: RoomVersion) -> None:
        assert_rejected(create_event(version, prev_events=["$earlier"]), {}, "prev_events")

    @pytest.mark.parametrize("room_version", ["999", 12, None, ["12"], "", "V12"])
    def test_unknown_room_version(self, version: RoomVersion, room_version: Any) -> None:
        pdu = create_event(version, {"room_version": room_version})
        assert_rejected(pdu, {}, "unknown room version")

    def test_room_version_may_be_absent(self, version: RoomVersion) -> None:
        room = RoomBuilder(version, room_id="!r:a.test")
        content = {} if version.implicit_room_creator else {"creator": ALICE}
        pdu = room.send("m.room.create", ALICE, content, state_key="", prev_events=[])
        check_auth_rules(pdu, {})

    def test_creator_property(self, version: RoomVersion) -> None:
        room = RoomBuilder(version, room_id="!r:a.test")
        pdu = room.send("m.room.create", ALICE, {"room_version": version.identifier},
                        state_key="", prev_events=[])
        if version.implicit_room_creator:  # v11+: the sender is the creator
            check_auth_rules(pdu, {})
        else:
            assert_rejected(pdu, {}, "no creator")


@pytest.mark.parametrize("version", versions(lambda v: not v.room_id_from_create_event), ids=by_id)
def test_create_room_id_domain_must_match_sender(version: RoomVersion) -> None:
    check_auth_rules(RoomBuilder(version, room_id="!x:a.test").create(ALICE), {})
    pdu = RoomBuilder(version, room_id="!x:b.test").create(ALICE)
    assert_rejected(pdu, {}, "different servers")


def test_v12_create_must_not_have_room_id() -> None:
    # Pdu.from_json refuses this shape already; the auth rule must hold on its own too.
    pdu = create_event(V12)
    data = {**pdu.data, "room_id": "!" + pdu.event_id[1:]}
    forged = Pdu.trusted(V12, data, pdu.event_id)
    assert_rejected(forged, {}, "has a room_id")


@pytest.mark.parametrize(
    ("additional_creators", "ok"),
    [
        ([], True),
        ([BOB], True),
        ([BOB, CAROL, ALICE], True),
        ("@bob:b.test", False),
        ({"@bob:b.test": True}, False),
        ([BOB, 5], False),
        (["bob"], False),
        (["@bob"], False),
        (["@bob:"], False),
        (["@bob:bad host"], False),
        (["@" + "b" * 250 + ":b.test"], False),
    ],
)
def test_v12_additional_creators(additional_creators: Any, ok: bool) -> None:
    pdu = create_event(V12, {"additional_creators": additional_creators})
    assert allowed(pdu, {}) is ok


def test_additional_creators_are_not_checked_before_v12() -> None:
    check_auth_rules(create_event(V11, {"additional_creators": "nonsense"}), {})


# --- Rule 2 (v12) and the room of the state ------------------------------------------------


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=by_id)
def test_room_id_must_be_the_create_events_room(version: RoomVersion) -> None:
    room = public_room(version, BOB)
    other = RoomBuilder.create_room(version, ALICE, room_id="!other:a.test",
                                    create_content={"other": True})
    state = {**room.state, CREATE: other.state[CREATE]}
    assert_rejected(room.message(BOB), state, "room ID")
    check_auth_rules(room.message(BOB), room.state)


def test_state_without_create_event() -> None:
    room = public_room(V12, BOB)
    state = {k: v for k, v in room.state.items() if k != CREATE}
    with pytest.raises(AuthError, match=r"no m\.room\.create"):
        check_auth_rules(room.message(BOB), state)


# --- Rule 4: m.federate ----------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=by_id)
class TestFederate:
    def room(self, version: RoomVersion, federate: Any) -> RoomBuilder:
        return RoomBuilder.create_room(version, ALICE, create_content={"m.federate": federate})

    def test_remote_sender_in_unfederated_room(self, version: RoomVersion) -> None:
        room = self.room(version, False)
        assert_rejected(room.join(BOB, apply=False), room.state, "m.federate")
        room.join(BOB)  # the state is forced; Bob still may not talk
        assert_rejected(room.message(BOB), room.state, "m.federate")

    def test_local_sender_in_unfederated_room(self, version: RoomVersion) -> None:
        room = self.room(version, False)
        room.join("@alice2:a.test")
        check_auth_rules(room.message("@alice2:a.test"), room.state)

    def test_local_sender_may_not_target_remote_users(self, version: RoomVersion) -> None:
        # Stricter than the spec's wording (which reads only the sender's domain), as Synapse
        # is: an unfederated room admits no membership of a remote user at all.
        room = self.room(version, False)
        assert_rejected(room.invite(ALICE, BOB, apply=False), room.state, "m.federate")
        assert_rejected(room.ban(ALICE, BOB, apply=False), room.state, "m.federate")

    def test_true_federates(self, version: RoomVersion) -> None:
        check_auth_rules(self.room(version, True).join(BOB, apply=False),
                         self.room(version, True).state)

    @pytest.mark.parametrize("federate", ["false", 0, None, "no"])
    def test_anything_but_true_unfederates(self, version: RoomVersion, federate: Any) -> None:
        # The spec names only false; Synapse treats every value but true as false, and we
        # follow it so that both accept the same events.
        room = self.room(version, federate)
        assert_rejected(room.join(BOB, apply=False), room.state, "m.federate")


# --- Rule 5: m.room.member -------------------------------------------------------------------


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=by_id)
class TestMemberShape:
    def test_no_membership(self, version: RoomVersion) -> None:
        room = public_room(version)
        pdu = room.send("m.room.member", BOB, {"displayname": "Bob"}, state_key=BOB, apply=False)
        assert_rejected(pdu, room.state, "no membership")

    def test_no_state_key(self, version: RoomVersion) -> None:
        room = public_room(version)
        pdu = room.send("m.room.member", BOB, {"membership": "join"}, apply=False)
        assert_rejected(pdu, room.state, "no state_key")

    @pytest.mark.parametrize("membership", ["foo", "JOIN", "", 1, None, ["join"]])
    def test_unknown_membership(self, version: RoomVersion, membership: Any) -> None:
        room = public_room(version, BOB)
        pdu = room.member(BOB, BOB, "x", {"membership": membership}, apply=False)
        assert_rejected(pdu, room.state, "unknown membership")

    @pytest.mark.parametrize("authoriser", [5, None, "carol", "@carol", "@carol:"])
    def test_authoriser_must_be_a_user_id(self, version: RoomVersion, authoriser: Any) -> None:
        # v8+ rule 5.2: the event must be signed by the authoriser's server, which a value that
        # is not a user ID cannot name. It applies to every membership, not only joins.
        room = public_room(version, BOB)
        content = {"join_authorised_via_users_server": authoriser}
        for pdu in (room.join(BOB, content, apply=False),
                    room.member(BOB, BOB, "leave", content, apply=False)):
            assert allowed(pdu, room.state) is (not version.restricted_join_rule)


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=by_id)
class TestFirstJoin:
    def test_creator_joins_right_after_create(self, version: RoomVersion) -> None:
        room = RoomBuilder(version)
        room.create(ALICE)
        check_auth_rules(room.join(ALICE, apply=False), room.state)
        # ... even sent by someone else: the rule reads the state_key only.
        check_auth_rules(room.member(BOB, ALICE, "join", apply=False), room.state)

    def test_nobody_else(self, version: RoomVersion) -> None:
        room = RoomBuilder(version)
        room.create(ALICE)
        assert_rejected(room.join(BOB, apply=False), room.state, "join")

    def test_only_when_the_create_event_is_the_only_prev_event(self, version: RoomVersion) -> None:
        room = RoomBuilder(version)
        create = room.create(ALICE)
        other = room.message(ALICE, apply=False)
        pdu = room.join(ALICE, prev_events=[create.event_id, other.event_id], apply=False)
        assert_rejected(pdu, room.state, "join")  # no join rules event: invite-only
        pdu = room.join(ALICE, prev_events=[other.event_id], apply=False)
        assert_rejected(pdu, room.state, "join")

    def test_who_is_the_creator(self, version: RoomVersion) -> None:
        # Up to v10, content.creator; from v11 the sender of the create event.
        room = RoomBuilder(version)
        room.create(ALICE, {"creator": BOB})
        assert allowed(room.join(BOB, apply=False), room.state) is not version.implicit_room_creator
        assert allowed(room.join(ALICE, apply=False), room.state) is version.implicit_room_creator

    def test_additional_creators_get_no_first_join(self, version: RoomVersion) -> None:
        room = RoomBuilder(version)
        room.create(ALICE, {"additional_creators": [BOB]})
        assert_rejected(room.join(BOB, apply=False), room.state, "join")


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=by_id)
class TestJoin:
    def test_public_room(self, version: RoomVersion) -> None:
        room = public_room(version)
        check_auth_rules(room.join(BOB, apply=False), room.state)

    def test_cannot_join_someone_else(self, version: RoomVersion) -> None:
        room = public_room(version, BOB)
        pdu = room.member(BOB, CAROL, "join", apply=False)
        assert_rejected(pdu, room.state, "not the state_key")

    def test_banned(self, version: RoomVersion) -> None:
        room = public_room(version, BOB)
        room.ban(ALICE, BOB)
        assert_rejected(room.join(BOB, apply=False), room.state, "banned")

    def test_rejoin_after_leave(self, version: RoomVersion) -> None:
        room = public_room(version, BOB)
        room.leave(BOB)
        check_auth_rules(room.join(BOB, apply=False), room.state)

    def test_invite_only(self, version: RoomVersion) -> None:
        room = public_room(version, BOB, join_rule="invite")
        assert_rejected(room.join(CAROL, apply=False), room.state, "not invited")
        room.invite(BOB, CAROL)
        check_auth_rules(room.join(CAROL, apply=False), room.state)
        check_auth_rules(room.join(BOB, apply=False), room.state)  # already joined

    def test_no_join_rules_event_means_invite(self, version: RoomVersion) -> None:
        room = RoomBuilder.create_room(version, ALICE, join_rule=None)
        assert_rejected(room.join(CAROL, apply=False), room.state, "not invited")
        room.invite(ALICE, CAROL)
        check_auth_rules(room.join(CAROL, apply=False), room.state)

    def test_missing_join_rule_property_means_invite(self, version: RoomVersion) -> None:
        room = public_room(version)
        room.set_state(ALICE, "m.room.join_rules", {})
        assert_rejected(room.join(CAROL, apply=False), room.state, "not invited")

    @pytest.mark.parametrize("join_rule", ["private", "PUBLIC", "", 5, None])
    def test_other_join_rules_let_nobody_in(self, version: RoomVersion, join_rule: Any) -> None:
        room = public_room(version)
        room.set_state(ALICE, "m.room.join_rules", {"join_rule": join_rule})
        room.invite(ALICE, CAROL)
        assert_rejected(room.join(CAROL, apply=False), room.state, "join")
        assert_rejected(room.join(DAVE, apply=False), room.state, "join")

    def test_knock_join_rule(self, version: RoomVersion) -> None:
        room = public_room(version, join_rule="knock")
        room.invite(ALICE, CAROL)
        assert_rejected(room.join(DAVE, apply=False), room.state, "join")
        # v6 has no knock join rule: even an invited user cannot join.
        assert allowed(room.join(CAROL, apply=False), room.state) is version.knock_join_rule


def restricted_room(version: RoomVersion, join_rule: str = "restricted") -> RoomBuilder:
    room = public_room(version, BOB, CAROL, join_rule=join_rule)
    set_levels(room, invite=20, **{BOB: 20, CAROL: 19})
    return room


def authorised_join(room: RoomBuilder, user_id: str, authoriser: str | None) -> Pdu:
    content = {} if authoriser is None else {"join_authorised_via_users_server": authoriser}
    return room.join(user_id, content, apply=False)


@pytest.mark.parametrize("join_rule", ["restricted", "knock_restricted"])
@pytest.mark.parametrize("version", ALL_VERSIONS, ids=by_id)
class TestRestrictedJoin:
    def supported(self, version: RoomVersion, join_rule: str) -> bool:
        if join_rule == "restricted":
            return version.restricted_join_rule
        return version.knock_restricted_join_rule

    def test_authorised_by_a_joined_inviter(self, version: RoomVersion, join_rule: str) -> None:
        room = restricted_room(version, join_rule)
        pdu = authorised_join(room, DAVE, BOB)
        assert allowed(pdu, room.state) is self.supported(version, join_rule)

    def test_no_authoriser(self, version: RoomVersion, join_rule: str) -> None:
        room = restricted_room(version, join_rule)
        assert_rejected(authorised_join(room, DAVE, None), room.state, "join")

    def test_authoriser_below_invite_level(self, version: RoomVersion, join_rule: str) -> None:
        room = restricted_room(version, join_rule)
        assert_rejected(authorised_join(room, DAVE, CAROL), room.state, "join")

    def test_authoriser_not_joined(self, version: RoomVersion, join_rule: str) -> None:
        room = restricted_room(version, join_rule)
        room.leave(BOB)
        assert_rejected(authorised_join(room, DAVE, BOB), room.state, "join")
        room.invite(ALICE, MALLORY)  # invited is not joined
        set_levels(room, **{MALLORY: 50})
        assert_rejected(authorised_join(room, DAVE, MALLORY), room.state, "join")

    def test_authoriser_outside_the_room(self, version: RoomVersion, join_rule: str) -> None:
        room = restricted_room(version, join_rule)
        assert_rejected(authorised_join(room, DAVE, MALLORY), room.state, "join")

    def test_invited_users_need_no_authoriser(self, version: RoomVersion, join_rule: str) -> None:
        room = restricted_room(version, join_rule)
        room.invite(BOB, DAVE)
        pdu = authorised_join(room, DAVE, None)
        assert allowed(pdu, room.state) is self.supported(version, join_rule)

    def test_banned_users_stay_out(self, version: RoomVersion, join_rule: str) -> None:
        room = restricted_room(version, join_rule)
        room.ban(ALICE, DAVE)
        assert_rejected(authorised_join(room, DAVE, BOB), room.state, "banned")

    def test_v12_creator_authorises(self, version: RoomVersion, join_rule: str) -> None:
        room = restricted_room(version, join_rule)
        set_levels(room, invite=2**53 - 1)  # only creators (infinite from v12) reach it
        pdu = authorised_join(room, DAVE, ALICE)
        expected = self.supported(version, join_rule) and version.privileged_creators
        assert allowed(pdu, room.state) is expected


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=by_id)
class TestInvite:
    def test_member_invites(self, version: RoomVersion) -> None:
        room = public_room(version, BOB)
        check_auth_rules(room.invite(BOB, CAROL, apply=False), room.state)

    def test_non_member_cannot_invite(self, version: RoomVersion) -> None:
        room = public_room(version, BOB)
        assert_rejected(room.invite(CAROL, DAVE, apply=False), room.state, "not joined")
        room.invite(BOB, CAROL)  # invited is not joined
        assert_rejected(room.invite(CAROL, DAVE, apply=False), room.state, "not joined")

    def test_target_joined_or_banned(self, version: RoomVersion) -> None:
        room = public_room(version, BOB, CAROL)
        assert_rejected(room.invite(BOB, CAROL, apply=False), room.state, "joined or banned")
        room.ban(ALICE, DAVE)
        assert_rejected(room.invite(BOB, DAVE, apply=False), room.state, "joined or banned")

    def test_reinvite_and_invite_after_leave_or_knock(self, version: RoomVersion) -> None:
        room = public_room(version, BOB, CAROL)
        room.invite(BOB, DAVE)
        check_auth_rules(room.invite(BOB, DAVE, apply=False), room.state)
        room.leave(CAROL)
        check_auth_rules(room.invite(BOB, CAROL, apply=False), room.state)

    def test_invite_level(self, version: RoomVersion) -> None:
        room = public_room(version, BOB)
        set_levels(room, invite=10, **{BOB: 9})
        assert_rejected(room.invite(BOB, CAROL, apply=False), room.state, "invite level")
        set_levels(room, **{BOB: 10})
        check_auth_rules(room.invite(BOB, CAROL, apply=False), room.state)


def third_party_room(version: RoomVersion) -> RoomBuilder:
    room = public_room(version, BOB, join_rule="invite")
    room.third_party_invite(BOB, "tok")
    return room


def third_party_content(signed: Any, **extra: Any) -> dict[str, Any]:
    return {"third_party_invite": {"display_name": "c...@example.org", "signed": signed, **extra}}


def third_party_member(room: RoomBuilder, sender: str, target: str, signed: Any) -> Pdu:
    return room.member(sender, target, "invite", third_party_content(signed), apply=False)


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=by_id)
class TestThirdPartyInvite:
    def test_valid(self, version: RoomVersion) -> None:
        room = third_party_room(version)
        pdu = third_party_member(room, BOB, CAROL, third_party_signed(CAROL, "tok"))
        check_auth_rules(pdu, room.state)

    def test_sender_need_not_be_joined_any_more(self, version: RoomVersion) -> None:
        # Rule 5.4.1 allows or rejects before rule 5.4.2 reads the sender's membership.
        room = third_party_room(version)
        room.leave(BOB)
        check_auth_rules(third_party_member(room, BOB, CAROL, third_party_signed(CAROL, "tok")),
                         room.state)

    def test_key_only_in_public_keys(self, version: RoomVersion) -> None:
        room = public_room(version, BOB)
        other = SigningKey.generate("x")
        keys = [other.verify_key, signing_key("id.test").verify_key]
        invite = room.third_party_invite(BOB, "tok", keys)
        assert "public_key" in invite.content  # the other key
        pdu = third_party_member(room, BOB, CAROL, third_party_signed(CAROL, "tok"))
        check_auth_rules(pdu, room.state)

    def test_key_only_in_public_key(self, version: RoomVersion) -> None:
        room = public_room(version, BOB)
        key = signing_key("id.test").verify_key
        room.set_state(BOB, "m.room.third_party_invite", {"public_key": key.to_base64()}, "tok")
        pdu = third_party_member(room, BOB, CAROL, third_party_signed(CAROL, "tok"))
        check_auth_rules(pdu, room.state)

    def test_url_safe_key_encoding(self, version: RoomVersion) -> None:
        room = public_room(version, BOB)
        key = signing_key("id.test").verify_key.to_base64().replace("+", "-").replace("/", "_")
        room.set_state(BOB, "m.room.third_party_invite", {"public_keys": [{"public_key": key}]},
                       "tok")
        pdu = third_party_member(room, BOB, CAROL, third_party_signed(CAROL, "tok"))
        check_auth_rules(pdu, room.state)

    def test_any_of_several_signatures(self, version: RoomVersion) -> None:
        room = third_party_room(version)
        signed = third_party_signed(CAROL, "tok", "other.test", SigningKey.generate("a"))
        signed = {**signed, "signatures": {**signed["signatures"],
                                           **third_party_signed(CAROL, "tok")["signatures"]}}
        check_auth_rules(third_party_member(room, BOB, CAROL, signed), room.state)

    def test_target_banned(self, version: RoomVersion) -> None:
        room = third_party_room(version)
        room.ban(ALICE, CAROL)
        pdu = third_party_member(room, BOB, CAROL, third_party_signed(CAROL, "tok"))
        assert_rejected(pdu, room.state, "banned")

    @pytest.mark.parametrize(
        "signed",
        [None, "x", {}, {"mxid": CAROL}, {"token": "tok"}, {"mxid": CAROL, "token": "tok"}],
    )
    def test_malformed_signed(self, version: RoomVersion, signed: Any) -> None:
        room = third_party_room(version)
        assert_rejected(third_party_member(room, BOB, CAROL, signed), room.state, "third-party")

    def test_no_signed_at_all(self, version: RoomVersion) -> None:
        room = third_party_room(version)
        values: list[Any] = [{}, "yes", None]
        for value in values:
            pdu = room.member(BOB, CAROL, "invite", {"third_party_invite": value}, apply=False)
            assert_rejected(pdu, room.state, "no signed")

    def test_mxid_is_not_the_target(self, version: RoomVersion) -> None:
        room = third_party_room(version)
        pdu = third_party_member(room, BOB, DAVE, third_party_signed(CAROL, "tok"))
        assert_rejected(pdu, room.state, "mxid")

    def test_unknown_token(self, version: RoomVersion) -> None:
        room = third_party_room(version)
        pdu = third_party_member(room, BOB, CAROL, third_party_signed(CAROL, "other"))
        assert_rejected(pdu, room.state, "token")

    def test_sender_is_not_the_inviter(self, version: RoomVersion) -> None:
        room = third_party_room(version)
        room.join(DAVE)
        pdu = third_party_member(room, DAVE, CAROL, third_party_signed(CAROL, "tok"))
        assert_rejected(pdu, room.state, "did not send")

    def test_signature_by_unknown_key(self, version: RoomVersion) -> None:
        room = third_party_room(version)
        signed = third_party_signed(CAROL, "tok", "id.test", SigningKey.generate("test"))
        assert_rejected(third_party_member(room, BOB, CAROL, signed), room.state, "signature")

    def test_tampered_signed_block(self, version: RoomVersion) -> None:
        room = third_party_room(version)
        signed = {**third_party_signed(DAVE, "tok"), "mxid": CAROL}
        assert_rejected(third_party_member(room, BOB, CAROL, signed), room.state, "signature")

    def test_no_signatures(self, version: RoomVersion) -> None:
        room = third_party_room(version)
        all_signatures: list[Any] = [None, {}, {"id.test": {}}, {"id.test": "x"}]
        for signatures in all_signatures:
            signed = {"mxid": CAROL, "token": "tok", "signatures": signatures}
            pdu = third_party_member(room, BOB, CAROL, signed)
            assert_rejected(pdu, room.state, "signature")

    def test_non_ed25519_or_broken_keys_are_skipped(self, version: RoomVersion) -> None:
        room = public_room(version, BOB)
        good = signing_key("id.test").verify_key.to_base64()
        room.set_state(BOB, "m.room.third_party_invite", {
            "public_key": "not base64!",
            "public_keys": [
                "bare", {"public_key": 5}, {"public_key": "AAAA"}, {"public_key": good}
            ],
        }, "tok")
        signed = third_party_signed(CAROL, "tok")
        sig = signed["signatures"]["id.test"]["ed25519:test"]
        signed["signatures"]["id.test"] = {"curve25519:x": sig, "ed25519:test": sig}
        check_auth_rules(third_party_member(room, BOB, CAROL, signed), room.state)


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=by_id)
class TestLeave:
    def test_leave_from_join_or_invite(self, version: RoomVersion) -> None:
        room = public_room(version, BOB)
        room.invite(BOB, CAROL)
        check_auth_rules(room.leave(BOB, apply=False), room.state)
        check_auth_rules(room.leave(CAROL, apply=False), room.state)  # rejecting the invite

    def test_leave_from_knock(self, version: RoomVersion) -> None:
        room = public_room(version, join_rule="knock")
        room.knock(CAROL)
        assert allowed(room.leave(CAROL, apply=False), room.state) is version.knock_join_rule

    @pytest.mark.parametrize("before", [None, "leave", "ban"])
    def test_cannot_leave_from_elsewhere(self, version: RoomVersion, before: str | None) -> None:
        room = public_room(version, BOB)
        if before is not None:
            room.member(ALICE, CAROL, before)
        assert_rejected(room.leave(CAROL, apply=False), room.state, "leave")

    def test_kick(self, version: RoomVersion) -> None:
        room = public_room(version, BOB, CAROL)
        set_levels(room, kick=30, **{BOB: 30, CAROL: 29})
        check_auth_rules(room.kick(BOB, CAROL, apply=False), room.state)
        room.invite(BOB, DAVE)
        check_auth_rules(room.kick(BOB, DAVE, apply=False), room.state)  # revoking an invite

    def test_kick_below_kick_level(self, version: RoomVersion) -> None:
        room = public_room(version, BOB, CAROL)
        set_levels(room, kick=30, **{BOB: 29, CAROL: 0})
        assert_rejected(room.kick(BOB, CAROL, apply=False), room.state, "kick level")

    def test_kick_of_equal_or_higher_user(self, version: RoomVersion) -> None:
        room = public_room(version, BOB, CAROL)
        set_levels(room, **{BOB: 60, CAROL: 60})
        assert_rejected(room.kick(BOB, CAROL, apply=False), room.state, "target")
        set_levels(room, **{CAROL: 61})
        assert_rejected(room.kick(BOB, CAROL, apply=False), room.state, "target")
        assert_rejected(room.kick(BOB, ALICE, apply=False), room.state, "target")

    def test_kick_by_non_member(self, version: RoomVersion) -> None:
        room = public_room(version, BOB, CAROL)
        set_levels(room, **{BOB: 60})
        room.leave(BOB)
        assert_rejected(room.kick(BOB, CAROL, apply=False), room.state, "not joined")

    def test_unban_needs_ban_and_kick_level(self, version: RoomVersion) -> None:
        room = public_room(version, BOB)
        room.ban(ALICE, CAROL)
        set_levels(room, ban=60, kick=40, **{BOB: 59})
        assert_rejected(room.unban(BOB, CAROL, apply=False), room.state, "unban")
        set_levels(room, ban=40, kick=60)
        assert_rejected(room.unban(BOB, CAROL, apply=False), room.state, "kick level")
        set_levels(room, kick=59)
        check_auth_rules(room.unban(BOB, CAROL, apply=False), room.state)

    def test_unban_of_higher_user(self, version: RoomVersion) -> None:
        room = public_room(version, BOB)
        set_levels(room, **{BOB: 60, CAROL: 70})
        room.ban(ALICE, CAROL)
        assert_rejected(room.unban(BOB, CAROL, apply=False), room.state, "target")

    def test_banned_user_cannot_unban_self(self, version: RoomVersion) -> None:
        room = public_room(version, BOB)
        room.ban(ALICE, BOB)
        assert_rejected(room.leave(BOB, apply=False), room.state, "leave")


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=by_id)
class TestBan:
    def test_ban(self, version: RoomVersion) -> None:
        room = public_room(version, BOB, CAROL)
        set_levels(room, **{BOB: 50})
        check_auth_rules(room.ban(BOB, CAROL, apply=False), room.state)
        check_auth_rules(room.ban(BOB, MALLORY, apply=False), room.state)  # never in the room

    def test_ban_without_power(self, version: RoomVersion) -> None:
        room = public_room(version, BOB, CAROL)
        assert_rejected(room.ban(BOB, CAROL, apply=False), room.state, "ban level")

    def test_ban_of_equal_or_higher_user(self, version: RoomVersion) -> None:
        room = public_room(version, BOB, CAROL)
        set_levels(room, **{BOB: 50, CAROL: 50})
        assert_rejected(room.ban(BOB, CAROL, apply=False), room.state, "target")
        assert_rejected(room.ban(BOB, ALICE, apply=False), room.state, "target")

    def test_ban_self(self, version: RoomVersion) -> None:
        room = public_room(version, BOB)
        set_levels(room, **{BOB: 50})
        assert_rejected(room.ban(BOB, BOB, apply=False), room.state, "target")

    def test_ban_by_non_member(self, version: RoomVersion) -> None:
        room = public_room(version, BOB, CAROL)
        set_levels(room, **{BOB: 60})
        room.leave(BOB)
        assert_rejected(room.ban(BOB, CAROL, apply=False), room.state, "not joined")

    def test_creators_cannot_ban_each_other_in_v12(self, version: RoomVersion) -> None:
        content = {"additional_creators": [BOB]}
        room = RoomBuilder.create_room(version, ALICE, create_content=content)
        room.join(BOB)
        expected = not version.privileged_creators  # before v12 Bob is an ordinary user (0)
        assert allowed(room.ban(BOB, ALICE, apply=False), room.state) is False
        assert allowed(room.ban(ALICE, BOB, apply=False), room.state) is expected


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=by_id)
class TestKnock:
    def test_knock(self, version: RoomVersion) -> None:
        room = public_room(version, join_rule="knock")
        assert allowed(room.knock(CAROL, apply=False), room.state) is version.knock_join_rule

    def test_knock_restricted(self, version: RoomVersion) -> None:
        room = public_room(version, join_rule="knock_restricted")
        expected = version.knock_restricted_join_rule
        assert allowed(room.knock(CAROL, apply=False), room.state) is expected

    @pytest.mark.parametrize("join_rule", ["public", "invite", "restricted", "private"])
    def test_other_join_rules(self, version: RoomVersion, join_rule: str) -> None:
        room = public_room(version, join_rule=join_rule)
        assert not allowed(room.knock(CAROL, apply=False), room.state)

    def test_knock_for_someone_else(self, version: RoomVersion) -> None:
        room = public_room(version, BOB, join_rule="knock")
        assert not allowed(room.member(BOB, CAROL, "knock", apply=False), room.state)

    @pytest.mark.parametrize("before", ["join", "invite", "ban"])
    def test_cannot_knock_when(self, version: RoomVersion, before: str) -> None:
        room = public_room(version, join_rule="knock")
        room.member(ALICE, CAROL, before)
        assert not allowed(room.knock(CAROL, apply=False), room.state)

    @pytest.mark.parametrize("before", ["leave", "knock"])
    def test_may_knock_again(self, version: RoomVersion, before: str) -> None:
        room = public_room(version, join_rule="knock")
        room.member(CAROL, CAROL, before)
        assert allowed(room.knock(CAROL, apply=False), room.state) is version.knock_join_rule


# --- Rules 6 to 9: everything else ---------------------------------------------------------


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=by_id)
class TestOtherEvents:
    def test_member_sends(self, version: RoomVersion) -> None:
        room = public_room(version, BOB)
        check_auth_rules(room.message(BOB, apply=False), room.state)

    @pytest.mark.parametrize("membership", [None, "invite", "leave", "ban", "knock"])
    def test_non_member_sends(self, version: RoomVersion, membership: str | None) -> None:
        room = public_room(version, BOB)
        if membership is not None:
            room.member(ALICE, CAROL, membership)
        assert_rejected(room.message(CAROL, apply=False), room.state, "sender joined")
        topic = room.set_state(CAROL, "m.room.topic", {"topic": "x"}, apply=False)
        assert_rejected(topic, room.state, "sender joined")

    def test_events_default(self, version: RoomVersion) -> None:
        room = public_room(version, BOB)
        set_levels(room, events_default=10, **{BOB: 9})
        assert_rejected(room.message(BOB, apply=False), room.state, "required power level")

    def test_state_default(self, version: RoomVersion) -> None:
        room = public_room(version, BOB)
        pdu = room.set_state(BOB, "m.room.topic", {"topic": "x"}, apply=False)
        assert_rejected(pdu, room.state, "required power level")
        set_levels(room, events={"m.room.topic": 0})
        check_auth_rules(room.set_state(BOB, "m.room.topic", {"topic": "x"}, apply=False),
                         room.state)

    def test_events_map_for_messages(self, version: RoomVersion) -> None:
        room = public_room(version, BOB)
        set_levels(room, events={"m.room.message": 1})
        assert_rejected(room.message(BOB, apply=False), room.state, "required power level")
        check_auth_rules(room.send("m.reaction", BOB, {}, apply=False), room.state)

    def test_state_key_of_another_user(self, version: RoomVersion) -> None:
        room = public_room(version, BOB)
        set_levels(room, state_default=0)
        for state_key in (CAROL, "@", "@bob:b.test_suffix", "@bob:b.tes"):
            pdu = room.set_state(BOB, "org.example.state", {}, state_key, apply=False)
            assert_rejected(pdu, room.state, "state_key")
        for state_key in (BOB, "", "bob", "x@bob:b.test"):
            check_auth_rules(room.set_state(BOB, "org.example.state", {}, state_key, apply=False),
                             room.state)

    def test_state_key_rule_binds_admins_too(self, version: RoomVersion) -> None:
        room = public_room(version, BOB)
        pdu = room.set_state(ALICE, "org.example.state", {}, BOB, apply=False)
        assert_rejected(pdu, room.state, "state_key")

    def test_third_party_invite_event_uses_the_invite_level(self, version: RoomVersion) -> None:
        room = public_room(version, BOB)
        set_levels(room, invite=5, events={"m.room.third_party_invite": 100}, **{BOB: 5})
        # Rule 7 decides before the required power level (rule 8) or the state_key rule (9).
        check_auth_rules(room.third_party_invite(BOB, "tok", apply=False), room.state)
        check_auth_rules(room.third_party_invite(BOB, CAROL, apply=False), room.state)
        set_levels(room, **{BOB: 4})
        assert_rejected(room.third_party_invite(BOB, "tok", apply=False), room.state, "invite")

    def test_redaction_ignores_the_redact_level(self, version: RoomVersion) -> None:
        room = public_room(version, BOB)
        alices = room.message(ALICE)
        set_levels(room, redact=100)
        check_auth_rules(room.redact(BOB, alices.event_id, apply=False), room.state)
        set_levels(room, events={"m.room.redaction": 1})
        assert_rejected(room.redact(BOB, alices.event_id, apply=False), room.state,
                        "required power level")

    def test_another_create_event_goes_through_rule_1_only(self, version: RoomVersion) -> None:
        room = public_room(version, BOB)
        pdu = room.send("m.room.create", BOB, {"creator": BOB}, state_key="", apply=False)
        assert_rejected(pdu, room.state, "create")

    def test_no_power_levels_event(self, version: RoomVersion) -> None:
        room = RoomBuilder.create_room(version, ALICE, power_levels=None)
        room.join(BOB)
        check_auth_rules(room.message(BOB, apply=False), room.state)
        topic = room.set_state(BOB, "m.room.topic", {"topic": "x"}, apply=False)
        assert_rejected(topic, room.state, "required power level")
        check_auth_rules(room.set_state(ALICE, "m.room.topic", {"topic": "x"}, apply=False),
                         room.state)
        assert_rejected(room.kick(BOB, ALICE, apply=False), room.state, "kick level")
        check_auth_rules(room.kick(ALICE, BOB, apply=False), room.state)


def test_rule_order_membership_before_sender_joined() -> None:
    # A ban by a joined moderator of a user who never joined, in a room where the
    # moderator's own membership is checked by rule 5.6, not rule 6.
    room = public_room(V10, BOB)
    set_levels(room, **{BOB: 50})
    check_auth_rules(room.ban(BOB, MALLORY, apply=False), room.state)


# The spec's feature matrix (rooms/_index.md) and per-version changes, written out by hand so
# that these expectations do not come from the RoomVersion flags the code reads.
FEATURES: dict[str, dict[str, bool]] = {
    # knock, restricted, knock_restricted, string levels, creator key, create in auth events,
    # infinite creators
    "6": dict(knock=False, restricted=False, knock_restricted=False, strings=True,
              creator_key=True, create_cited=True, infinite=False),
    "7": dict(knock=True, restricted=False, knock_restricted=False, strings=True,
              creator_key=True, create_cited=True, infinite=False),
    "8": dict(knock=True, restricted=True, knock_restricted=False, strings=True,
              creator_key=True, create_cited=True, infinite=False),
    "9": dict(knock=True, restricted=True, knock_restricted=False, strings=True,
              creator_key=True, create_cited=True, infinite=False),
    "10": dict(knock=True, restricted=True, knock_restricted=True, strings=False,
               creator_key=True, create_cited=True, infinite=False),
    "11": dict(knock=True, restricted=True, knock_restricted=True, strings=False,
               creator_key=False, create_cited=True, infinite=False),
    "12": dict(knock=True, restricted=True, knock_restricted=True, strings=False,
               creator_key=False, create_cited=False, infinite=True),
}


@pytest.mark.parametrize("identifier", list(FEATURES))
def test_feature_matrix(identifier: str) -> None:
    version = KNOWN_ROOM_VERSIONS[identifier]
    features = FEATURES[identifier]
    knock_room = public_room(version, join_rule="knock")
    assert allowed(knock_room.knock(CAROL, apply=False), knock_room.state) is features["knock"]
    for rule in ("restricted", "knock_restricted"):
        room = restricted_room(version, rule)
        assert allowed(authorised_join(room, DAVE, BOB), room.state) is features[rule]
    room = public_room(version, BOB)
    set_levels(room, **{BOB: 50})
    levels = room.set_power_levels(ALICE, {**room.state[POWER_LEVELS].content, "kick": "40"},
                                   apply=False)
    assert allowed(levels, room.state) is features["strings"]
    no_creator = RoomBuilder(version, room_id="!r:a.test").send(
        "m.room.create", ALICE, {"room_version": identifier}, state_key="", prev_events=[])
    assert allowed(no_creator, {}) is not features["creator_key"]
    cited = CREATE in auth_types_for_event(version, "m.room.message", BOB, None, {})
    assert cited is features["create_cited"]
    kick_creator = room.kick(BOB, ALICE, apply=False)
    set_levels(room, **{BOB: 2**53 - 1})
    assert allowed(kick_creator, room.state) is not features["infinite"]
