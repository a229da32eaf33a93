"""Who may read a room at all, and what of it: the gate in front of every room read.

A joined member reads the room as it is now. A member who left (or was kicked or banned) reads
it as it was when they left: its state then, and no event after their departure. Anyone may
read a ``world_readable`` room as it is now. Everyone else is refused with ``M_FORBIDDEN``.
Which *events* a reader may then see is decided per event by
:mod:`rocketnode.services.visibility`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.services.client_events import client_events, referenced_ids
from rocketnode.services.clock import Clock
from rocketnode.services.room_state import RoomStates, StateMap
from rocketnode.services.stream_tokens import ROOM_START, TopologicalToken
from rocketnode.services.visibility import (
    HISTORY_VISIBILITY_KEY,
    HistoryVisibility,
    Viewer,
    VisibilityFilter,
)
from rocketnode.storage.ports import EventStore, RoomStore, StateStore
from rocketnode.storage.records import StoredEvent

DEPARTED = frozenset({"leave", "ban"})


@dataclass(frozen=True, slots=True)
class Reader:
    """The requesting user and device (the device sees its own transaction IDs)."""

    user_id: str
    device_id: str


@dataclass(frozen=True, slots=True)
class RoomView:
    """What one reader may read of one room."""

    room_id: str
    viewer: Viewer
    state: StateMap
    """The state the reader sees: the current state, or the state when they left."""
    upto_stream: int | None = None
    """For a departed member: the stream ordering of their departure; nothing later is read."""
    upto: TopologicalToken | None = None
    """For a departed member: their departure's place in the room's topological order."""
    joined: bool = False


class RoomAccess:
    def __init__(
        self, clock: Clock, events: EventStore, state: StateStore, rooms: RoomStore,
        states: RoomStates,
    ) -> None:
        self._clock = clock
        self.events = events
        self.state = state
        self._rooms = rooms
        self.states = states

    async def view(self, user_id: str, room_id: str) -> RoomView:
        """The reader's view of the room, or ``M_FORBIDDEN`` if they may not read it."""
        snapshot = await self.states.snapshot(room_id)
        if snapshot is None:
            raise MatrixError(Errcode.FORBIDDEN, "You are not a member of this room", 403)
        membership = await self._rooms.local_membership(user_id, room_id)
        if membership is not None and membership.forgotten:
            membership = None
        if membership is not None and membership.membership == "join":
            viewer = Viewer(user_id, membership.stream_ordering, membership.stream_ordering)
            return RoomView(room_id, viewer, snapshot.state, joined=True)
        departed = membership is not None and membership.membership in DEPARTED
        last_join = (
            await self.events.latest_membership_stream(room_id, user_id, "join")
            if departed else None
        )
        viewer = Viewer(user_id, last_join)
        if await self._world_readable(snapshot.state):
            return RoomView(room_id, viewer, snapshot.state)
        if membership is None or not departed:
            raise MatrixError(Errcode.FORBIDDEN, "You are not a member of this room", 403)
        [(_group, state)] = await self.states.state_after([membership.event_id])
        departure = (await self.states.events([membership.event_id])).get(membership.event_id)
        upto = (TopologicalToken.after(departure.pdu.depth, membership.stream_ordering)
                if departure is not None else ROOM_START)
        return RoomView(room_id, viewer, state, upto_stream=membership.stream_ordering,
                        upto=upto)

    async def _world_readable(self, state: StateMap) -> bool:
        found = await self.states.state_pdus(state, [HISTORY_VISIBILITY_KEY])
        event = found.get(HISTORY_VISIBILITY_KEY)
        visibility = HistoryVisibility.of(event.content if event is not None else None)
        return visibility is HistoryVisibility.WORLD_READABLE

    def visibility(self, view: RoomView) -> VisibilityFilter:
        """A per-request filter of the events ``view``'s reader may see."""
        return VisibilityFilter(self.events, self.state, self.states, view.viewer)

    async def state_events(self, state: StateMap) -> list[StoredEvent]:
        """The events of a state map, in a stable order (by type, then state key)."""
        found = await self.states.events(state.values())
        return [found[state[key]] for key in sorted(state) if state[key] in found]

    async def render(
        self, reader: Reader, events: Sequence[StoredEvent]
    ) -> list[dict[str, Any]]:
        """Client events, redacted ones with ``unsigned.redacted_because`` (fetched in batch)."""
        wanted = referenced_ids(events)
        related = await self.states.pdus(wanted) if wanted else {}
        return client_events(
            events, self._clock.now_ms(), (reader.user_id, reader.device_id), related,
            replaced=related,
        )
