"""Backfill: fetching a room's history from before this server joined (server-server API
"Backfilling and retrieving missing events").

When a client paginates past the oldest event this server has in a room's timeline and that
event points at earlier events the server lacks, :class:`Backfiller` asks the other servers in
the room, in turn, for the events before it. They go through the same receipt checks as any
remote event and are stored below everything already seen (negative stream positions), oldest
first, so /messages reads on into them.
"""

from __future__ import annotations

import logging

from rocketnode.core.errors import MatrixError, RemoteServerError
from rocketnode.core.pdu import Pdu
from rocketnode.federation.client import FederationClient, path_segment
from rocketnode.federation.event_intake import EventIntake
from rocketnode.services.rooms import RoomService
from rocketnode.services.stream_tokens import BEFORE_ALL
from rocketnode.storage.ports import EventStore, StateStore

logger = logging.getLogger(__name__)

MAX_BACKFILL = 100


class Backfiller:
    def __init__(self, rooms: RoomService, intake: EventIntake, client: FederationClient,
                 events: EventStore, state: StateStore) -> None:
        self._rooms = rooms
        self._intake = intake
        self._client = client
        self._events = events
        self._state = state
        self._complete: set[str] = set()
        """Rooms whose history goes back to their create event here."""

    async def backfill(self, room_id: str, limit: int) -> int:
        """Fetch up to ``limit`` events older than the room's oldest here; how many were kept."""
        if room_id in self._complete:
            return 0
        targets = await self._backward_extremities(room_id)
        if not targets:
            self._complete.add(room_id)
            return 0
        servers = sorted(await self._rooms.joined_servers(room_id)
                         - {self._rooms.server_name})
        for server in servers:
            try:
                return await self._from(server, room_id, targets, min(limit, MAX_BACKFILL))
            except (RemoteServerError, MatrixError) as exc:
                logger.info("Backfill of %s from %s failed: %s", room_id, server, exc)
        return 0

    async def _backward_extremities(self, room_id: str) -> list[str]:
        """Prev events of the oldest timeline event that are not in the timeline here."""
        oldest = await self._events.paginate_room_events(room_id, BEFORE_ALL, False, 1)
        if not oldest:
            return []
        prevs = list(oldest[0].pdu.prev_events)
        known = await self._rooms.states.events(prevs)
        return [p for p in prevs if p not in known or known[p].outlier]

    async def _from(self, server: str, room_id: str, targets: list[str], limit: int) -> int:
        path = f"/_matrix/federation/v1/backfill/{path_segment(room_id)}"
        answer = await self._client.get(server, path, {"v": targets, "limit": str(limit)})
        raw = answer.get("pdus") if isinstance(answer, dict) else None
        if not isinstance(raw, list):
            raise RemoteServerError(server, "invalid backfill answer")
        snapshot = await self._rooms.states.snapshot(room_id)
        if snapshot is None:
            return 0
        parsed = await self._intake.parse_verified(snapshot.room_version, raw[:MAX_BACKFILL])
        candidates = [p for p in parsed if isinstance(p, Pdu) and p.room_id == room_id]
        known = await self._rooms.states.events(p.event_id for p in candidates)
        fresh = sorted((p for p in candidates
                        if p.event_id not in known or known[p.event_id].outlier),
                       key=lambda p: (p.depth, p.event_id))
        if not fresh:
            return 0
        positions = await self._rooms.reserve_backfill_positions(len(fresh))
        kept = 0
        for pdu, position in zip(fresh, positions, strict=True):
            async with self._rooms.room_lock(room_id):
                stored = await self._intake.take(server, pdu, backfilled=True,
                                                 backfill_position=position)
            if stored is not None:
                kept += 1
        logger.info("Backfilled %d events of %s from %s", kept, room_id, server)
        return kept
