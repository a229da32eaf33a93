"""The history visibility rule (client-server API "Room History Visibility"), as pure logic."""

from __future__ import annotations

from typing import Any

import pytest

from rocketnode.core.pdu import Pdu
from rocketnode.core.room_versions import V10
from rocketnode.services.visibility import (
    HISTORY_VISIBILITY_KEY,
    HistoryVisibility,
    StateAtEvent,
    Viewer,
    is_visible,
    may_see,
    state_at_event,
)

BOB = "@bob:example.org"
ALICE = "@alice:example.org"
WORLD, SHARED, INVITED, JOINED = (
    HistoryVisibility.WORLD_READABLE, HistoryVisibility.SHARED,
    HistoryVisibility.INVITED, HistoryVisibility.JOINED,
)
MEMBERSHIPS = (None, "join", "invite", "leave", "ban", "knock")


def pdu(event_type: str, content: dict[str, Any], state_key: str | None = None,
        event_id: str = "$event") -> Pdu:
    data: dict[str, Any] = {
        "room_id": "!room:example.org", "type": event_type, "sender": ALICE,
        "content": content, "origin_server_ts": 1, "depth": 5, "prev_events": [],
        "auth_events": [],
    }
    if state_key is not None:
        data["state_key"] = state_key
    return Pdu.trusted(V10, data, event_id)


MESSAGE = pdu("m.room.message", {"body": "hi"})


@pytest.mark.parametrize("membership", MEMBERSHIPS)
@pytest.mark.parametrize("joined_later", [False, True])
def test_world_readable_allows_everyone(membership: str | None, joined_later: bool) -> None:
    assert may_see(WORLD, membership, joined_later)


@pytest.mark.parametrize("visibility", list(HistoryVisibility))
def test_joined_members_see_everything(visibility: HistoryVisibility) -> None:
    assert may_see(visibility, "join", joined_later=False)


@pytest.mark.parametrize("membership", [None, "leave", "ban", "knock", "invite"])
def test_shared_needs_a_later_join(membership: str | None) -> None:
    assert may_see(SHARED, membership, joined_later=True)
    assert not may_see(SHARED, membership, joined_later=False)


def test_invited_allows_invitees_only_when_invited() -> None:
    assert may_see(INVITED, "invite", joined_later=False)
    assert not may_see(JOINED, "invite", joined_later=True)
    assert not may_see(SHARED, "invite", joined_later=False)


@pytest.mark.parametrize("membership", [None, "invite", "leave", "ban", "knock"])
def test_joined_hides_from_non_members(membership: str | None) -> None:
    assert not may_see(JOINED, membership, joined_later=True)


def test_unknown_or_missing_visibility_is_shared() -> None:
    assert HistoryVisibility.of(None) is SHARED
    assert HistoryVisibility.of({}) is SHARED
    assert HistoryVisibility.of({"history_visibility": "everyone"}) is SHARED
    assert HistoryVisibility.of({"history_visibility": ["joined"]}) is SHARED
    assert HistoryVisibility.of({"history_visibility": "joined"}) is JOINED
    assert StateAtEvent() == StateAtEvent(SHARED, None)


def test_message_follows_the_state_before_it() -> None:
    assert not is_visible(BOB, MESSAGE, StateAtEvent(JOINED, "leave"), joined_later=True)
    assert is_visible(BOB, MESSAGE, StateAtEvent(JOINED, "join"), joined_later=False)
    assert is_visible(BOB, MESSAGE, StateAtEvent(SHARED, None), joined_later=True)
    assert not is_visible(BOB, MESSAGE, StateAtEvent(SHARED, "leave"), joined_later=False)


def test_visibility_change_is_seen_if_before_or_after_allows() -> None:
    to_joined = pdu(HISTORY_VISIBILITY_KEY[0], {"history_visibility": "joined"}, "")
    to_world = pdu(HISTORY_VISIBILITY_KEY[0], {"history_visibility": "world_readable"}, "")
    assert is_visible(BOB, to_joined, StateAtEvent(WORLD, None), joined_later=False)
    assert is_visible(BOB, to_world, StateAtEvent(JOINED, None), joined_later=False)
    assert not is_visible(BOB, to_joined, StateAtEvent(INVITED, None), joined_later=False)
    other_key = pdu(HISTORY_VISIBILITY_KEY[0], {"history_visibility": "world_readable"}, "x")
    assert not is_visible(BOB, other_key, StateAtEvent(JOINED, None), joined_later=False)


def test_own_membership_change_is_seen_if_before_or_after_allows() -> None:
    join = pdu("m.room.member", {"membership": "join"}, BOB)
    leave = pdu("m.room.member", {"membership": "leave"}, BOB)
    invite = pdu("m.room.member", {"membership": "invite"}, BOB)
    assert is_visible(BOB, join, StateAtEvent(JOINED, None), joined_later=False)
    assert is_visible(BOB, leave, StateAtEvent(JOINED, "join"), joined_later=False)
    assert is_visible(BOB, invite, StateAtEvent(INVITED, None), joined_later=False)
    assert not is_visible(BOB, invite, StateAtEvent(JOINED, None), joined_later=False)
    someone_else = pdu("m.room.member", {"membership": "join"}, ALICE)
    assert not is_visible(BOB, someone_else, StateAtEvent(JOINED, None), joined_later=False)


def test_viewer_joined_after() -> None:
    assert Viewer(BOB, 10).joined_after(9)
    assert not Viewer(BOB, 10).joined_after(10)
    assert not Viewer(BOB, None).joined_after(-5)


def test_state_at_event_reads_the_viewers_membership_and_the_setting() -> None:
    hv = pdu(HISTORY_VISIBILITY_KEY[0], {"history_visibility": "invited"}, "", "$hv")
    bob_member = pdu("m.room.member", {"membership": "invite"}, BOB, "$bob")
    alice_member = pdu("m.room.member", {"membership": "join"}, ALICE, "$alice")
    entries = {HISTORY_VISIBILITY_KEY: "$hv", ("m.room.member", BOB): "$bob",
               ("m.room.member", ALICE): "$alice"}
    pdus = {p.event_id: p for p in (hv, bob_member, alice_member)}
    assert state_at_event(BOB, entries, pdus) == StateAtEvent(INVITED, "invite")
    assert state_at_event("@carol:example.org", entries, pdus) == StateAtEvent(INVITED, None)
    assert state_at_event(BOB, {}, {}) == StateAtEvent(SHARED, None)


class _NoStorage:
    """Storage that must not be asked: every read fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"storage was asked for {name}")


async def test_events_after_the_viewers_current_join_need_no_state_lookup() -> None:
    from rocketnode.services.visibility import VisibilityFilter
    from rocketnode.storage.records import StoredEvent

    message = pdu("m.room.message", {"body": "hi"})
    events = [StoredEvent(message, stream, 0) for stream in (11, 12)]
    viewer = Viewer("@v:x", last_join_stream=10, joined_since=10)
    storage: Any = _NoStorage()
    assert await VisibilityFilter(storage, storage, storage, viewer).filter(events) == events
    rejected = StoredEvent(message, 13, 0, rejected="bad")
    outlier = StoredEvent(message, 14, 0, outlier=True)
    before_join = StoredEvent(message, 9, 0)
    with pytest.raises(AssertionError, match="storage was asked"):
        await VisibilityFilter(storage, storage, storage, viewer).filter([before_join])
    found = await VisibilityFilter(storage, storage, storage, viewer).filter([])
    assert found == []
    for not_fast in (rejected, outlier):
        with pytest.raises(AssertionError, match="storage was asked"):
            await VisibilityFilter(storage, storage, storage, viewer).filter([not_fast])
