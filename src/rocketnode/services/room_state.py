"""Reading room state for the room service: the per-room snapshot, PDUs, state resolution.

The snapshot (forward extremities, current state, its state group, depth) is the one cache of
the room service: it is loaded from storage on first use, changed only by
:class:`~rocketnode.services.rooms.RoomService` while it holds the room's lock, and dropped
when a persist fails, so the next use reloads it from storage.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.core.pdu import Pdu, StateKey
from rocketnode.core.room_versions import RoomVersion
from rocketnode.core.state_res import resolve_state
from rocketnode.storage.ports import EventStore, RoomStore, StateStore
from rocketnode.storage.records import StoredEvent

logger = logging.getLogger(__name__)

StateMap = dict[StateKey, str]
PDU_CACHE_SIZE = 20_000


@dataclass(slots=True)
class RoomSnapshot:
    room_id: str
    room_version: RoomVersion
    extremities: list[str]
    state: StateMap
    state_group: int | None
    depth: int
    joined_per_server: dict[str, int] | None = None
    """How many members of each server are joined (``None``: not known, read it again)."""


class PduCache:
    """A bounded LRU of PDUs by event ID (PDUs never change, so nothing to invalidate)."""

    def __init__(self, size: int = PDU_CACHE_SIZE) -> None:
        self._size = size
        self._items: OrderedDict[str, StoredEvent] = OrderedDict()

    def get(self, event_id: str) -> StoredEvent | None:
        item = self._items.get(event_id)
        if item is not None:
            self._items.move_to_end(event_id)
        return item

    def put(self, event: StoredEvent) -> None:
        self._items[event.event_id] = event
        self._items.move_to_end(event.event_id)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def drop(self, event_id: str) -> None:
        self._items.pop(event_id, None)


class RoomStates:
    def __init__(self, events: EventStore, state: StateStore, rooms: RoomStore) -> None:
        self._events = events
        self._state = state
        self._rooms = rooms
        self._snapshots: dict[str, RoomSnapshot] = {}
        self.cache = PduCache()

    # -- snapshots ---------------------------------------------------------------------------

    async def snapshot(self, room_id: str) -> RoomSnapshot | None:
        """The room's current snapshot, or None if this server has no events in the room."""
        found = self._snapshots.get(room_id)
        if found is not None:
            return found
        room = await self._rooms.get_room(room_id)
        if room is None or room.current_state_group is None:
            return None
        extremities = await self._events.get_forward_extremities(room_id)
        if not extremities:
            return None
        state = await self._state.get_state_group(room.current_state_group)
        events = await self.events(extremities)
        depth = max((e.pdu.depth for e in events.values()), default=0)
        snapshot = RoomSnapshot(
            room_id, room.room_version, extremities, state, room.current_state_group, depth
        )
        self._snapshots[room_id] = snapshot
        return snapshot

    def remember(self, snapshot: RoomSnapshot) -> None:
        self._snapshots[snapshot.room_id] = snapshot

    def forget(self, room_id: str) -> None:
        self._snapshots.pop(room_id, None)

    # -- events ------------------------------------------------------------------------------

    async def events(self, event_ids: Iterable[str]) -> dict[str, StoredEvent]:
        found: dict[str, StoredEvent] = {}
        missing = []
        for event_id in event_ids:
            cached = self.cache.get(event_id)
            if cached is None:
                missing.append(event_id)
            else:
                found[event_id] = cached
        if missing:
            fetched = await self._events.get_events(missing)
            for event in fetched.values():
                self.cache.put(event)
            found.update(fetched)
        return found

    async def pdus(self, event_ids: Iterable[str]) -> dict[str, Pdu]:
        return {event_id: e.pdu for event_id, e in (await self.events(event_ids)).items()}

    async def state_pdus(self, state: Mapping[StateKey, str], keys: Iterable[StateKey]
                         ) -> dict[StateKey, Pdu]:
        wanted = {key: state[key] for key in keys if key in state}
        pdus = await self.pdus(wanted.values())
        return {key: pdus[event_id] for key, event_id in wanted.items() if event_id in pdus}

    # -- state at events ---------------------------------------------------------------------

    async def state_after(self, event_ids: Sequence[str]) -> list[tuple[int, StateMap]]:
        """``(group, state)`` after each event; MatrixError if one has no known state."""
        groups = await self._events.get_state_groups_for_events(event_ids)
        missing = [event_id for event_id in event_ids if event_id not in groups]
        if missing:
            raise MatrixError(Errcode.NOT_FOUND, f"No state known after {missing[0]}", 404)
        after_ids = [groups[event_id][1] for event_id in event_ids]
        maps = await self._state.get_state_groups(after_ids)
        return [(group, maps[group]) for group in after_ids]

    async def entries_before(self, event_ids: Sequence[str], keys: Sequence[StateKey]
                             ) -> dict[str, StateMap]:
        """Just ``keys`` of the state before each event (events without known state left out)."""
        groups = await self._events.get_state_groups_for_events(event_ids)
        entries = await self._state.get_state_entries({g[0] for g in groups.values()}, keys)
        return {event_id: entries.get(before, {}) for event_id, (before, _) in groups.items()}

    async def state_before(self, event_id: str) -> tuple[int, StateMap]:
        groups = await self._events.get_state_groups_for_events([event_id])
        if event_id not in groups:
            raise MatrixError(Errcode.NOT_FOUND, f"No state known at {event_id}", 404)
        group = groups[event_id][0]
        return group, await self._state.get_state_group(group)

    async def resolve(self, room_version: RoomVersion, state_sets: Sequence[StateMap],
                      unstored: Iterable[Pdu] = ()) -> StateMap:
        """State resolution over ``state_sets``, loading the events it needs. ``unstored``:
        events the state sets cite that are not stored yet (the event being persisted)."""
        distinct = [dict(s) for s in {tuple(sorted(s.items())): s for s in state_sets}.values()]
        if len(distinct) == 1:
            return dict(distinct[0])
        new = {pdu.event_id: pdu for pdu in unstored}
        ids = {event_id for state in distinct for event_id in state.values()} - new.keys()
        ids |= {a for pdu in new.values() for a in pdu.auth_events}
        ids |= await self._events.get_auth_chain_ids(ids)
        events = await self.events(ids)
        rejected = {event_id for event_id, e in events.items() if e.rejected is not None}
        pdus = {i: e.pdu for i, e in events.items()}
        pdus.update(new)
        return resolve_state(room_version, distinct, pdus, rejected)
