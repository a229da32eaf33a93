"""Serving room data to other servers: single events, the state at an event, auth chains,
backfill and missing events (server-server API "Retrieving events", "Backfilling and retrieving
missing events", "Retrieving event authorisation information").

A server may read a room's events only while one of its users is in the room's current state
(joined, invited, knocking, left or banned) or the room is world-readable. Beyond that, each
event is judged by the history visibility in force when it was sent (the state before it):
``world_readable`` and ``shared`` history is visible to such a server; ``invited`` history only
if one of its users was then invited or joined, ``joined`` only if one was then joined. An
event the server may not see is served redacted (it still needs the room's graph).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from typing import Any

from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.core.ids import server_name_of
from rocketnode.core.pdu import Pdu, StateKey
from rocketnode.services.rooms import RoomService
from rocketnode.storage.records import StoredEvent

HISTORY_VISIBILITY_KEY: StateKey = ("m.room.history_visibility", "")
MAX_BACKFILL = 100
MAX_MISSING = 100


def federation_json(pdu: Pdu) -> dict[str, Any]:
    return {k: v for k, v in pdu.data.items() if k != "unsigned"}


class RoomServing:
    def __init__(self, rooms: RoomService) -> None:
        self._rooms = rooms

    def _envelope(self, pdus: Sequence[Pdu]) -> dict[str, Any]:
        return {"origin": self._rooms.server_name, "origin_server_ts": self._rooms.now_ms(),
                "pdus": [federation_json(p) for p in pdus]}

    async def check_server_in_room(self, origin: str, room_id: str) -> None:
        snapshot = await self._rooms.states.snapshot(room_id)
        if snapshot is None:
            raise MatrixError(Errcode.NOT_FOUND, f"Unknown room {room_id}", 404)
        if any(t == "m.room.member" and server_name_of(k) == origin for t, k in snapshot.state):
            return
        visibility = await self._rooms.states.state_pdus(
            snapshot.state, [("m.room.history_visibility", "")])
        event = visibility.get(("m.room.history_visibility", ""))
        if event is not None and event.content.get("history_visibility") == "world_readable":
            return
        raise MatrixError(Errcode.FORBIDDEN, f"{origin} is not in {room_id}", 403)

    async def _event(self, event_id: str, room_id: str | None = None) -> StoredEvent:
        event = (await self._rooms.states.events([event_id])).get(event_id)
        if event is None or (room_id is not None and event.pdu.room_id != room_id):
            raise MatrixError(Errcode.NOT_FOUND, f"Unknown event {event_id}", 404)
        return event

    @staticmethod
    def _served(event: StoredEvent) -> Pdu:
        return event.pdu.redacted() if event.redacted_by is not None else event.pdu

    async def _served_to(self, origin: str, room_id: str, events: Sequence[StoredEvent]
                         ) -> list[Pdu]:
        """``events`` as ``origin`` may see them: whole, or redacted if its users could not."""
        if not events:
            return []
        snapshot = await self._rooms.states.snapshot(room_id)
        theirs = [key for key in (snapshot.state if snapshot else {})
                  if key[0] == "m.room.member" and server_name_of(key[1]) == origin]
        before = await self._rooms.states.entries_before(
            [e.event_id for e in events], [HISTORY_VISIBILITY_KEY, *theirs])
        wanted = {i for entries in before.values() for i in entries.values()}
        pdus = await self._rooms.states.pdus(wanted)
        served = []
        for event in events:
            visible = _server_may_see(origin, event.pdu, before.get(event.event_id, {}), pdus)
            served.append(self._served(event) if visible else event.pdu.redacted())
        return served

    async def get_event(self, origin: str, event_id: str) -> dict[str, Any]:
        """GET /_matrix/federation/v1/event/{eventId}."""
        event = await self._event(event_id)
        await self.check_server_in_room(origin, event.pdu.room_id)
        return self._envelope(await self._served_to(origin, event.pdu.room_id, [event]))

    async def state_ids(self, origin: str, room_id: str, event_id: str) -> dict[str, Any]:
        """GET /_matrix/federation/v1/state_ids/{roomId}: the state before an event."""
        await self.check_server_in_room(origin, room_id)
        await self._event(event_id, room_id)
        _, state = await self._rooms.states.state_before(event_id)
        chain = await self._rooms.auth_chain_ids(state.values())
        return {"pdu_ids": sorted(state.values()), "auth_chain_ids": sorted(chain)}

    async def state(self, origin: str, room_id: str, event_id: str) -> dict[str, Any]:
        """GET /_matrix/federation/v1/state/{roomId}: the same as full PDUs."""
        ids = await self.state_ids(origin, room_id, event_id)
        events = await self._rooms.states.events([*ids["pdu_ids"], *ids["auth_chain_ids"]])
        return {
            "pdus": [federation_json(self._served(events[e])) for e in ids["pdu_ids"]
                     if e in events],
            "auth_chain": [federation_json(self._served(events[e]))
                           for e in ids["auth_chain_ids"] if e in events],
        }

    async def event_auth(self, origin: str, room_id: str, event_id: str) -> dict[str, Any]:
        """GET /_matrix/federation/v1/event_auth/{roomId}/{eventId}."""
        await self.check_server_in_room(origin, room_id)
        await self._event(event_id, room_id)
        chain = await self._rooms.auth_chain_ids([event_id])
        events = await self._rooms.states.events(chain)
        return {"auth_chain": [federation_json(self._served(events[e])) for e in sorted(chain)
                               if e in events]}

    async def backfill(self, origin: str, room_id: str, starts: list[str],
                       limit: int) -> dict[str, Any]:
        """GET /_matrix/federation/v1/backfill/{roomId}: events from ``v`` backwards."""
        await self.check_server_in_room(origin, room_id)
        found = await self._walk_back(room_id, starts, set(), min(max(limit, 1), MAX_BACKFILL),
                                      include_starts=True, min_depth=0)
        return self._envelope(await self._served_to(origin, room_id, found))

    async def missing_events(self, origin: str, room_id: str, earliest: list[str],
                             latest: list[str], limit: int, min_depth: int) -> dict[str, Any]:
        """POST /_matrix/federation/v1/get_missing_events/{roomId}."""
        await self.check_server_in_room(origin, room_id)
        found = await self._walk_back(room_id, latest, set(earliest),
                                      min(max(limit, 1), MAX_MISSING),
                                      include_starts=False, min_depth=min_depth)
        found.sort(key=lambda e: (e.pdu.depth, e.stream_ordering))
        return {"events": [federation_json(p)
                           for p in await self._served_to(origin, room_id, found)]}

    async def _walk_back(self, room_id: str, starts: list[str], stop: set[str], limit: int,
                         include_starts: bool, min_depth: int) -> list[StoredEvent]:
        """Newest-first walk through prev_events (deepest first), up to ``limit`` events."""
        heap: list[tuple[int, str]] = []
        seen = set(stop)
        if include_starts:
            frontier = [e for e in starts if e not in seen]
        else:
            seen.update(starts)
            frontier = [p for event in (await self._rooms.states.events(starts)).values()
                        for p in event.pdu.prev_events if p not in seen]
        result: list[StoredEvent] = []
        await self._push(heap, frontier, seen, room_id, min_depth)
        while heap and len(result) < limit:
            _, event_id = heapq.heappop(heap)
            event = (await self._rooms.states.events([event_id]))[event_id]
            if event.outlier or event.rejected is not None:
                continue
            result.append(event)
            await self._push(heap, list(event.pdu.prev_events), seen, room_id, min_depth)
        return result

    async def _push(self, heap: list[tuple[int, str]], event_ids: list[str], seen: set[str],
                    room_id: str, min_depth: int) -> None:
        fresh = [e for e in event_ids if e not in seen]
        seen.update(fresh)
        for event_id, event in (await self._rooms.states.events(fresh)).items():
            if event.pdu.room_id == room_id and event.pdu.depth >= min_depth:
                heapq.heappush(heap, (-event.pdu.depth, event_id))


def _server_may_see(origin: str, pdu: Pdu, before: Mapping[StateKey, str],
                    pdus: Mapping[str, Pdu]) -> bool:
    history = pdus.get(before.get(HISTORY_VISIBILITY_KEY, ""))
    visibility = history.content.get("history_visibility") if history is not None else None
    if visibility not in ("invited", "joined"):
        return True  # world_readable, shared, or anything not understood (read as shared)
    if pdu.type == "m.room.member" and server_name_of(pdu.state_key or "") == origin:
        return True  # its own users' membership changes
    allowed = ("invite", "join") if visibility == "invited" else ("join",)
    return any(
        (member := pdus.get(event_id)) is not None and member.membership in allowed
        for key, event_id in before.items() if key[0] == "m.room.member"
    )
