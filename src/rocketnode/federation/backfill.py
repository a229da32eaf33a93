"""Backfill: fetching the parts of a room's history this server lacks (server-server API
"Backfilling and retrieving missing events").

A room's history here has gaps: before the event by which this server joined (it was not in
the room yet), between a leave and a later rejoin, or wherever events were missed. An event
sits on a gap when some of its prev events are not in the timeline here. When a client's
``/messages`` walk crosses one (:mod:`rocketnode.services.room_messages`), :class:`Backfiller`
asks the other servers in the room, in turn, for the events before it. They go through the same
receipt checks as any remote event and are stored with stream orderings below everything seen
(negative), oldest first; ``/messages`` reads in topological order, so they appear where they
happened.

A gap that no server fills (they lack the events, refuse, or are down) is remembered for
:data:`UNFILLABLE_FOR_S`; walks pass it meanwhile instead of asking again on every page.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from rocketnode.core.errors import MatrixError, RemoteServerError
from rocketnode.core.pdu import Pdu
from rocketnode.federation.client import FederationClient, path_segment
from rocketnode.federation.event_intake import EventIntake
from rocketnode.services.clock import Clock
from rocketnode.services.rooms import RoomService
from rocketnode.storage.ports import EventStore, StateStore

logger = logging.getLogger(__name__)

MAX_BACKFILL = 100
UNFILLABLE_FOR_S = 60.0
MAX_REMEMBERED_GAPS = 10_000


class Backfiller:
    def __init__(self, rooms: RoomService, intake: EventIntake, client: FederationClient,
                 events: EventStore, state: StateStore, clock: Clock) -> None:
        self._rooms = rooms
        self._intake = intake
        self._client = client
        self._events = events
        self._state = state
        self._clock = clock
        self._unfillable: dict[tuple[str, str], float] = {}
        """(room ID, missing event ID) -> until when no server is asked for it again."""

    def may_fill(self, room_id: str, extremities: Sequence[str]) -> bool:
        now = self._clock.monotonic()
        return any(self._unfillable.get((room_id, event_id), 0.0) <= now
                   for event_id in extremities)

    async def fill_gap(self, room_id: str, extremities: Sequence[str], limit: int) -> int:
        """Fetch up to ``limit`` events from ``extremities`` backwards from the first server
        in the room that has them; how many were stored."""
        targets = sorted(set(extremities))
        servers = sorted(await self._rooms.joined_servers(room_id) - {self._rooms.server_name})
        for server in servers:
            try:
                kept = await self._from(server, room_id, targets, min(limit, MAX_BACKFILL))
            except (RemoteServerError, MatrixError) as exc:
                logger.info("Backfill of %s from %s failed: %s", room_id, server, exc)
                continue
            if kept:
                return kept
        self._remember_unfillable(room_id, targets)
        return 0

    def _remember_unfillable(self, room_id: str, targets: Sequence[str]) -> None:
        now = self._clock.monotonic()
        if len(self._unfillable) >= MAX_REMEMBERED_GAPS:
            self._unfillable = {key: until for key, until in self._unfillable.items()
                                if until > now}
            if len(self._unfillable) >= MAX_REMEMBERED_GAPS:
                self._unfillable.clear()
        for event_id in targets:
            self._unfillable[(room_id, event_id)] = now + UNFILLABLE_FOR_S
        logger.info("No server could fill the gap of %s before %s", room_id, ", ".join(targets))

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
