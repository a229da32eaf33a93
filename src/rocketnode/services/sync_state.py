"""The ``state`` section of a /sync room: which state events the client needs, and why.

Three state maps of the room are read (each is one state group):

* ``start``: the state at the start of the returned timeline (before its first event);
* ``end``: the state at the end of the sync window (after the last event at or before it);
* ``previous``: the state the client already has (at ``since``; empty for a full sync).

The section (:func:`state_delta`) holds what changed from ``previous`` to ``start``, plus the
changes inside the window that the returned timeline does not show (it may be limited or
filtered), minus the events already in the timeline. With ``use_state_after`` the section is
``state_after`` instead: what changed from ``previous`` to ``end``, timeline events included
(:func:`state_after_delta`). With ``lazy_load_members``
(:func:`lazy_members`) member events are kept only for the users the client needs: the
timeline's senders, the syncing user and the room's heroes in a full sync; in an incremental
sync every membership change in the gap is kept too (the spec requires it) and the senders'
current member events are added, possibly redundantly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rocketnode.core.pdu import StateKey
from rocketnode.services.stream_tokens import BEFORE_ALL
from rocketnode.storage.ports import EventStore, StateStore

StateMap = dict[StateKey, str]
MEMBER = "m.room.member"


def state_delta(
    start: Mapping[StateKey, str], end: Mapping[StateKey, str],
    previous: Mapping[StateKey, str], timeline_ids: set[str],
) -> StateMap:
    """The state entries to send (see the module docstring)."""
    result = {key: event_id for key, event_id in start.items() if previous.get(key) != event_id}
    for key, event_id in end.items():
        changed = previous.get(key) != event_id and start.get(key) != event_id
        if changed and event_id not in timeline_ids:
            result[key] = event_id
    return {key: event_id for key, event_id in result.items() if event_id not in timeline_ids}


def state_after_delta(
    end: Mapping[StateKey, str], previous: Mapping[StateKey, str]
) -> StateMap:
    """``state_after`` (``use_state_after``): every entry of ``end`` the client lacks, timeline
    events included, since the client then takes state from this list only."""
    return {key: event_id for key, event_id in end.items() if previous.get(key) != event_id}


def lazy_members(
    delta: Mapping[StateKey, str], start: Mapping[StateKey, str], wanted_users: Iterable[str],
    timeline_ids: set[str], incremental: bool,
) -> StateMap:
    """``delta`` with member events limited to ``wanted_users`` (plus, in an incremental sync,
    every membership that changed in the gap), and the wanted users' member events added."""
    wanted = set(wanted_users)
    result = {
        key: event_id
        for key, event_id in delta.items()
        if key[0] != MEMBER or incremental or key[1] in wanted
    }
    for user_id in wanted:
        key = (MEMBER, user_id)
        event_id = start.get(key)
        if key not in result and event_id is not None and event_id not in timeline_ids:
            result[key] = event_id
    return result


@dataclass(frozen=True, slots=True)
class WindowStates:
    start: StateMap
    end: StateMap
    previous: StateMap


class SyncStates:
    """Reads the state maps of a room at the points a sync needs."""

    def __init__(self, events: EventStore, state: StateStore) -> None:
        self._events = events
        self._state = state

    async def group_at(self, room_id: str, position: int) -> int | None:
        """The state group after the room's last timeline event at or before ``position``."""
        events, _ = await self._events.room_events_between(room_id, BEFORE_ALL, position, 1)
        if not events:
            return None
        groups = await self._events.get_state_groups_for_events([events[0].event_id])
        found = groups.get(events[0].event_id)
        return found[1] if found is not None else None

    async def window(
        self, room_id: str, first_event_id: str | None, upto: int, since: int | None
    ) -> WindowStates:
        """The ``start``, ``end`` and ``previous`` state maps of a sync window."""
        end_group = await self.group_at(room_id, upto)
        start_group = end_group
        if first_event_id is not None:
            found = await self._events.get_state_groups_for_events([first_event_id])
            if first_event_id in found:
                start_group = found[first_event_id][0]
        previous_group = await self.group_at(room_id, since) if since is not None else None
        groups = {g for g in (start_group, end_group, previous_group) if g is not None}
        maps = await self._state.get_state_groups(groups) if groups else {}

        def load(group: int | None) -> StateMap:
            return dict(maps.get(group, {})) if group is not None else {}

        return WindowStates(load(start_group), load(end_group), load(previous_group))

    async def membership_event_at(self, room_id: str, user_id: str, position: int) -> str | None:
        """The ID of ``user_id``'s member event in the room's state at ``position``."""
        group = await self.group_at(room_id, position)
        if group is None:
            return None
        entries = await self._state.get_state_entries([group], [(MEMBER, user_id)])
        return entries.get(group, {}).get((MEMBER, user_id))
