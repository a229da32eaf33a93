"""Who may see which events of a room (client-server API "Room History Visibility").

The rule is decided per event from the state of the room *at* that event (the state before
it): the ``m.room.history_visibility`` then in force and the viewer's membership then. It is
pure (:func:`may_see`, :func:`is_visible`); :class:`VisibilityFilter` loads what it reads for a
whole batch of events in a fixed number of storage round trips, and keeps what it loaded for
the rest of the request (consecutive events mostly share their state group).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rocketnode.core.pdu import Pdu, StateKey
from rocketnode.services.room_state import RoomStates
from rocketnode.storage.ports import EventStore, StateStore
from rocketnode.storage.records import StoredEvent

HISTORY_VISIBILITY_KEY: StateKey = ("m.room.history_visibility", "")


class HistoryVisibility(enum.StrEnum):
    WORLD_READABLE = "world_readable"
    SHARED = "shared"
    INVITED = "invited"
    JOINED = "joined"

    @classmethod
    def of(cls, content: Mapping[str, Any] | None) -> HistoryVisibility:
        """The setting in an event's content; absent or not understood means ``shared``."""
        value = content.get("history_visibility") if content is not None else None
        if isinstance(value, str) and value in cls._value2member_map_:
            return cls(value)
        return cls.SHARED


@dataclass(frozen=True, slots=True)
class StateAtEvent:
    """What the rule reads from the state before an event."""

    history_visibility: HistoryVisibility = HistoryVisibility.SHARED
    membership: str | None = None
    """The viewer's membership then (``None``: never in the room)."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """The user reading, and when they last joined the room (for ``shared`` history)."""

    user_id: str
    last_join_stream: int | None = None
    joined_since: int | None = None
    """While the viewer is joined: the stream ordering of their current membership event.
    They have been joined ever since, so every later event of the timeline is theirs to see."""

    def joined_after(self, stream_ordering: int) -> bool:
        return self.last_join_stream is not None and self.last_join_stream > stream_ordering


def may_see(visibility: HistoryVisibility, membership: str | None, joined_later: bool) -> bool:
    """The spec's five steps, for one history visibility and one membership."""
    if visibility is HistoryVisibility.WORLD_READABLE:
        return True
    if membership == "join":
        return True
    if visibility is HistoryVisibility.SHARED and joined_later:
        return True
    return membership == "invite" and visibility is HistoryVisibility.INVITED


def is_visible(user_id: str, pdu: Pdu, before: StateAtEvent, joined_later: bool) -> bool:
    """Whether ``user_id`` may see ``pdu``, given the state before it.

    A history visibility change is visible if the setting before *or* after it allows; the
    viewer's own membership change if their membership before *or* after it allows.
    """
    if may_see(before.history_visibility, before.membership, joined_later):
        return True
    if pdu.type == HISTORY_VISIBILITY_KEY[0] and pdu.state_key == "":
        return may_see(HistoryVisibility.of(pdu.content), before.membership, joined_later)
    if pdu.type == "m.room.member" and pdu.state_key == user_id:
        return may_see(before.history_visibility, pdu.membership, joined_later)
    return False


def state_at_event(
    user_id: str, entries: Mapping[StateKey, str], pdus: Mapping[str, Pdu]
) -> StateAtEvent:
    """The facts of one state group, from its relevant ``entries`` and their PDUs."""
    history = pdus.get(entries.get(HISTORY_VISIBILITY_KEY, ""))
    member = pdus.get(entries.get(("m.room.member", user_id), ""))
    return StateAtEvent(
        HistoryVisibility.of(history.content if history is not None else None),
        member.membership if member is not None else None,
    )


class VisibilityFilter:
    """Filters events for one viewer during one request, loading state in batches."""

    def __init__(
        self, events: EventStore, state: StateStore, states: RoomStates, viewer: Viewer
    ) -> None:
        self._events = events
        self._state = state
        self._states = states
        self.viewer = viewer
        self._before_group: dict[str, int | None] = {}
        self._facts: dict[int, StateAtEvent] = {}

    async def filter(self, events: Sequence[StoredEvent]) -> list[StoredEvent]:
        """The events of ``events`` the viewer may see, in the same order."""
        await self._load([e for e in events if not self._seen_while_joined(e)])
        return [e for e in events if self._seen_while_joined(e) or self._visible(e)]

    def _seen_while_joined(self, event: StoredEvent) -> bool:
        since = self.viewer.joined_since
        return (since is not None and event.stream_ordering > since and not event.outlier
                and event.rejected is None)

    async def visible(self, event: StoredEvent) -> bool:
        return bool(await self.filter([event]))

    def _visible(self, event: StoredEvent) -> bool:
        group = self._before_group.get(event.event_id)
        if group is None or event.outlier or event.rejected is not None:
            return False
        return is_visible(
            self.viewer.user_id, event.pdu, self._facts[group],
            self.viewer.joined_after(event.stream_ordering),
        )

    async def _load(self, events: Iterable[StoredEvent]) -> None:
        wanted = [e.event_id for e in events]
        missing = [event_id for event_id in wanted if event_id not in self._before_group]
        if missing:
            found = await self._events.get_state_groups_for_events(missing)
            for event_id in missing:
                groups = found.get(event_id)
                self._before_group[event_id] = groups[0] if groups is not None else None
        new_groups = {
            group for event_id in wanted
            if (group := self._before_group[event_id]) is not None and group not in self._facts
        }
        if not new_groups:
            return
        keys = [HISTORY_VISIBILITY_KEY, ("m.room.member", self.viewer.user_id)]
        entries = await self._state.get_state_entries(new_groups, keys)
        pdus = await self._states.pdus(
            {event_id for found in entries.values() for event_id in found.values()}
        )
        for group in new_groups:
            self._facts[group] = state_at_event(self.viewer.user_id, entries.get(group, {}), pdus)
