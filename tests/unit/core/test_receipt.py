"""The checks performed on receipt of a PDU, steps 4 to 6 (server-server API)."""

from __future__ import annotations

import pytest

from rocketnode.core.errors import AuthError, SoftFailed
from rocketnode.core.pdu import Pdu, StateKey
from rocketnode.core.receipt import (
    Outcome,
    ReceiptVerdict,
    check_against_auth_events,
    check_against_state_before,
    check_soft_fail,
    receipt_verdict,
)
from rocketnode.core.room_versions import KNOWN_ROOM_VERSIONS, V11, V12, RoomVersion
from tests.unit.core.roombuilder import RoomBuilder

ALICE = "@alice:a.test"
BOB = "@bob:b.test"
MALLORY = "@mallory:m.test"
ALL_VERSIONS = list(KNOWN_ROOM_VERSIONS.values())
POWER_LEVELS: StateKey = ("m.room.power_levels", "")


def by_id(version: RoomVersion) -> str:
    return f"v{version.identifier}"


def room_with(version: RoomVersion, *joined: str) -> RoomBuilder:
    room = RoomBuilder.create_room(version, ALICE)
    for user_id in joined:
        room.join(user_id)
    return room


def verdict(room: RoomBuilder, pdu: Pdu, state_before: dict[StateKey, Pdu],
            rejected: frozenset[str] = frozenset()) -> ReceiptVerdict:
    return receipt_verdict(pdu, room.events, state_before, room.state, rejected,
                           room.create_event)


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=by_id)
class TestReceipt:
    def test_accepted(self, version: RoomVersion) -> None:
        room = room_with(version, BOB)
        before = room.snapshot()
        pdu = room.message(BOB)
        assert verdict(room, pdu, before) == ReceiptVerdict(Outcome.ACCEPTED)

    def test_every_event_of_a_built_room_is_accepted(self, version: RoomVersion) -> None:
        room = RoomBuilder(version)
        before = room.snapshot()

        def accepted(pdu: Pdu) -> bool:
            nonlocal before
            got = receipt_verdict(pdu, room.events, before, before, (), room.create_event)
            before = room.snapshot()
            return got.outcome is Outcome.ACCEPTED

        users = {BOB: 50} if version.privileged_creators else {ALICE: 100, BOB: 50}
        assert accepted(room.create(ALICE))
        assert accepted(room.join(ALICE))
        assert accepted(room.set_power_levels(ALICE, {"users": users}))
        assert accepted(room.set_join_rules(ALICE, "invite"))
        assert accepted(room.invite(ALICE, BOB))
        assert accepted(room.join(BOB))
        assert accepted(room.set_state(BOB, "m.room.topic", {"topic": "hi"}))
        assert accepted(room.ban(BOB, MALLORY))
        assert accepted(room.leave(BOB))
        assert not accepted(room.message(BOB))

    def test_rejected_for_its_auth_events(self, version: RoomVersion) -> None:
        room = room_with(version, BOB)
        before = room.snapshot()
        pdu = room.message(BOB)
        bob_join = before[("m.room.member", BOB)].event_id
        got = verdict(room, pdu, before, rejected=frozenset({bob_join}))
        assert got.outcome is Outcome.REJECTED
        assert got.reason is not None and "was rejected" in got.reason

    def test_rejected_against_auth_events_state(self, version: RoomVersion) -> None:
        # Mallory cites no membership of hers, so the auth events do not let her speak.
        room = room_with(version, BOB)
        before = room.snapshot()
        pdu = room.message(MALLORY)
        with pytest.raises(AuthError, match="sender joined"):
            check_against_auth_events(pdu, room.events, (), room.create_event)
        assert verdict(room, pdu, before).outcome is Outcome.REJECTED

    def test_rejected_against_state_before(self, version: RoomVersion) -> None:
        # Bob cites the power levels that made him a moderator, but the state before his
        # event (e.g. resolved from another branch) has already demoted him.
        room = room_with(version, BOB)
        levels = dict(room.state[POWER_LEVELS].content)
        room.set_power_levels(ALICE, {**levels, "users": {**levels["users"], BOB: 50}})
        promoted = room.snapshot()
        room.set_power_levels(ALICE, levels)
        demoted = room.snapshot()
        pdu = room.set_state(BOB, "m.room.topic", {"topic": "x"}, auth_state=promoted)
        check_against_auth_events(pdu, room.events, (), room.create_event)
        with pytest.raises(AuthError, match="required power level"):
            check_against_state_before(pdu, demoted)
        assert verdict(room, pdu, demoted).outcome is Outcome.REJECTED
        check_against_state_before(pdu, promoted)

    def test_soft_failed_ban_evasion(self, version: RoomVersion) -> None:
        # The spec's example: after A, B bans X; X's C cites only A's branch.
        room = room_with(version, BOB, MALLORY)
        state_at_a = room.snapshot()
        a = list(room.forward_extremities)
        room.ban(ALICE, MALLORY)
        c = room.message(MALLORY, prev_events=a, auth_state=state_at_a, apply=False)
        check_against_auth_events(c, room.events, (), room.create_event)
        check_against_state_before(c, state_at_a)
        with pytest.raises(SoftFailed, match="sender joined") as caught:
            check_soft_fail(c, room.state)
        assert isinstance(caught.value, AuthError)
        got = verdict(room, c, state_at_a)
        assert got.outcome is Outcome.SOFT_FAILED
        assert got.reason is not None and "not joined" in got.reason

    def test_soft_fail_passes_when_current_state_allows(self, version: RoomVersion) -> None:
        room = room_with(version, BOB)
        pdu = room.message(BOB)
        check_soft_fail(pdu, room.state)

    def test_create_event(self, version: RoomVersion) -> None:
        room = RoomBuilder(version)
        create = room.create(ALICE)
        got = receipt_verdict(create, {}, {}, {}, create_event=None)
        assert got == ReceiptVerdict(Outcome.ACCEPTED)


class TestV12CreateEvent:
    def test_create_event_is_required(self) -> None:
        room = room_with(V12, BOB)
        pdu = room.message(BOB)
        with pytest.raises(AuthError, match="create event is needed"):
            check_against_auth_events(pdu, room.events, (), None)

    def test_rejected_create_event(self) -> None:
        room = room_with(V12, BOB)
        pdu = room.message(BOB)
        assert room.create_event is not None
        with pytest.raises(AuthError, match="create event was rejected"):
            check_against_auth_events(pdu, room.events, {room.create_event.event_id},
                                      room.create_event)

    def test_create_event_of_another_room(self) -> None:
        room = room_with(V12, BOB)
        other = RoomBuilder.create_room(V12, ALICE, create_content={"other": True})
        pdu = room.message(BOB)
        with pytest.raises(AuthError, match="room ID"):
            check_against_auth_events(pdu, room.events, (), other.create_event)

    def test_citing_the_create_event_is_rejected(self) -> None:
        room = room_with(V12, BOB)
        assert room.create_event is not None
        proper = room.message(BOB).auth_events
        pdu = room.message(BOB, auth_events=[*proper, room.create_event.event_id])
        with pytest.raises(AuthError, match="not expected"):
            check_against_auth_events(pdu, room.events, (), room.create_event)


def test_create_event_argument_is_not_read_before_v12() -> None:
    room = room_with(V11, BOB)
    other = RoomBuilder.create_room(V11, ALICE, room_id="!other:a.test")
    pdu = room.message(BOB)
    check_against_auth_events(pdu, room.events, (), other.create_event)
    check_against_auth_events(pdu, room.events, (), None)
