"""The state section of a /sync room, as pure functions over state maps."""

from __future__ import annotations

from rocketnode.services.sync_state import lazy_members, state_after_delta, state_delta

NAME = ("m.room.name", "")
TOPIC = ("m.room.topic", "")
CREATE = ("m.room.create", "")


def member(user: str) -> tuple[str, str]:
    return ("m.room.member", user)


def test_full_sync_sends_the_state_at_the_start_of_the_timeline() -> None:
    start = {CREATE: "$c", NAME: "$n1"}
    end = {CREATE: "$c", NAME: "$n2"}
    assert state_delta(start, end, {}, {"$n2"}) == {CREATE: "$c", NAME: "$n1"}


def test_incremental_sync_sends_only_what_changed_in_the_gap() -> None:
    previous = {CREATE: "$c", NAME: "$n1", TOPIC: "$t1"}
    start = {CREATE: "$c", NAME: "$n2", TOPIC: "$t1"}
    assert state_delta(start, start, previous, set()) == {NAME: "$n2"}


def test_a_state_change_the_timeline_filter_hid_is_not_lost() -> None:
    previous = {CREATE: "$c", TOPIC: "$t1"}
    start = dict(previous)
    end = {CREATE: "$c", TOPIC: "$t2"}
    assert state_delta(start, end, previous, timeline_ids={"$message"}) == {TOPIC: "$t2"}


def test_events_in_the_timeline_are_never_repeated_in_state() -> None:
    previous = {CREATE: "$c"}
    start = {CREATE: "$c", NAME: "$n1"}
    end = {CREATE: "$c", NAME: "$n1", TOPIC: "$t"}
    assert state_delta(start, end, previous, {"$n1", "$t"}) == {}


def test_a_key_changed_before_and_inside_the_timeline_keeps_its_value_at_the_start() -> None:
    previous = {NAME: "$n0"}
    start = {NAME: "$n1"}
    end = {NAME: "$n2"}
    assert state_delta(start, end, previous, {"$n2"}) == {NAME: "$n1"}


def test_lazy_full_sync_keeps_only_the_wanted_members() -> None:
    delta = {CREATE: "$c", member("@a"): "$ma", member("@b"): "$mb", member("@c"): "$mc"}
    kept = lazy_members(delta, delta, {"@a", "@c"}, set(), incremental=False)
    assert kept == {CREATE: "$c", member("@a"): "$ma", member("@c"): "$mc"}


def test_lazy_incremental_sync_keeps_gap_changes_and_adds_senders() -> None:
    start = {CREATE: "$c", member("@a"): "$ma", member("@b"): "$mb2", member("@s"): "$ms"}
    delta = {member("@b"): "$mb2"}
    kept = lazy_members(delta, start, {"@s", "@t"}, set(), incremental=True)
    assert kept == {member("@b"): "$mb2", member("@s"): "$ms"}


def test_lazy_members_skip_member_events_that_are_in_the_timeline() -> None:
    start = {member("@a"): "$ma"}
    assert lazy_members({}, start, {"@a"}, {"$ma"}, incremental=False) == {}


def test_state_after_includes_timeline_state_and_skips_what_the_client_has() -> None:
    previous = {CREATE: "$c", NAME: "$n1"}
    end = {CREATE: "$c", NAME: "$n2", TOPIC: "$t"}
    assert state_after_delta(end, previous) == {NAME: "$n2", TOPIC: "$t"}
    assert state_after_delta(end, {}) == end
