"""/sync (client-server API "Syncing"): initial and incremental syncs, long-polling.

A sync covers the window ``since < position <= upper`` of the one stream that orders events,
receipts and account data, plus the typing notices changed since the token's typing position.

The upper bound is a *committed* position: the database's highest committed position, raised
to the position of any membership row read afterwards (the single writer commits in stream
order, so everything at or below a committed row is committed too). The memberships are thus
exactly those at ``upper``, and every later commit has a higher position: it lands in the next
sync, never skipped nor sent twice.

Long-polling waits on the :class:`~rocketnode.services.notifier.Notifier`. The notifier's
position and the typing position are read before each computation; if either moved by the time
the (empty) result is ready, the sync computes again instead of sleeping, and once it sleeps
any later commit wakes it. No polling loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rocketnode.services.clock import Clock
from rocketnode.services.filters import Filter
from rocketnode.services.notifier import Notifier
from rocketnode.services.stream_tokens import BEFORE_ALL, SyncToken
from rocketnode.services.sync_rooms import (
    RoomExtras,
    RoomWindow,
    SyncContext,
    SyncRooms,
    account_data_events,
)
from rocketnode.services.typing import TypingService
from rocketnode.storage.ports import ClientDataStore, EventStore, RoomStore
from rocketnode.storage.records import AccountDataItem, LocalMembership, Receipt

logger = logging.getLogger(__name__)

MAX_TIMEOUT_MS = 5 * 60 * 1000
DEPARTED = frozenset({"leave", "ban"})


@dataclass(frozen=True, slots=True)
class SyncRequest:
    user_id: str
    device_id: str
    since: SyncToken | None = None
    filter: Filter = field(default_factory=Filter)
    full_state: bool = False
    timeout_ms: int = 0
    use_state_after: bool = False


@dataclass(slots=True)
class _Plan:
    """Which rooms go into one response, and how."""

    joined: list[RoomWindow] = field(default_factory=list)
    incremental: dict[str, LocalMembership] = field(default_factory=dict)
    left: list[tuple[RoomWindow, str]] = field(default_factory=list)
    """Each window with the ID of the user's departure event."""
    invited: list[LocalMembership] = field(default_factory=list)
    knocked: list[LocalMembership] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SyncResult:
    body: dict[str, Any]
    empty: bool
    watched_rooms: frozenset[str]


class SyncService:
    def __init__(
        self, clock: Clock, notifier: Notifier, typing: TypingService, events: EventStore,
        rooms: RoomStore, client_data: ClientDataStore, sync_rooms: SyncRooms,
    ) -> None:
        self._clock = clock
        self._notifier = notifier
        self._typing = typing
        self._events = events
        self._rooms = rooms
        self._client_data = client_data
        self._sync_rooms = sync_rooms

    async def sync(self, request: SyncRequest) -> dict[str, Any]:
        """Answer a /sync, waiting up to ``timeout_ms`` for something new (incremental only)."""
        timeout_s = min(max(request.timeout_ms, 0), MAX_TIMEOUT_MS) / 1000
        deadline = self._clock.monotonic() + timeout_s
        while True:
            seen = (self._notifier.position, self._typing.position)
            result = await self.compute(request)
            remaining = deadline - self._clock.monotonic()
            if (
                not result.empty or request.since is None or request.full_state
                or remaining <= 0 or self._notifier.closing
            ):
                return result.body
            if (self._notifier.position, self._typing.position) != seen:
                continue  # something committed while we computed: look again
            await self._notifier.wait(request.user_id, result.watched_rooms, remaining)

    async def compute(self, request: SyncRequest) -> SyncResult:
        """One sync response up to the current committed position (no waiting).

        The reads that do not depend on each other run concurrently (readers work in
        parallel), so a sync costs a few round trips of latency, not a dozen.
        """
        typing_position = self._typing.position
        upper, memberships = await self._rooms.memberships_at_committed_position(
            request.user_id
        )
        upper = max([upper, *(m.stream_ordering for m in memberships)])
        since = request.since.stream if request.since is not None else None
        ctx = SyncContext(
            request.user_id, request.device_id, request.filter, since, self._clock.now_ms(),
            request.use_state_after,
        )
        plan = await self._plan(request, memberships, upper)
        after = since if since is not None else 0
        account_data, receipts, with_events = await asyncio.gather(
            self._client_data.account_data_since(request.user_id, after, upper),
            self._receipts(request, plan, upper),
            self._rooms_with_events(ctx, plan, upper),
        )
        global_data = [item for item in account_data if item.room_id == ""]
        extras = await self._extras(request, plan, account_data, receipts, upper)
        rooms = await self._room_sections(ctx, plan, extras, with_events, upper)
        body: dict[str, Any] = {
            "next_batch": str(SyncToken(upper, typing_position)),
            "account_data": {
                "events": account_data_events(request.filter.account_data, global_data)
            },
            "presence": {"events": []},
            "rooms": rooms,
        }
        empty = not body["account_data"]["events"] and not any(rooms.values())
        watched = frozenset(m.room_id for m in memberships if m.membership == "join")
        return SyncResult(body, empty, watched)

    # -- planning ----------------------------------------------------------------------------

    async def _plan(
        self, request: SyncRequest, memberships: Sequence[LocalMembership], upper: int
    ) -> _Plan:
        plan = _Plan()
        since = request.since.stream if request.since is not None else None
        room_filter = request.filter.room
        for m in memberships:
            if not room_filter.allows_room(m.room_id):
                continue
            changed = since is None or m.stream_ordering > since
            if m.membership == "join":
                await self._plan_joined(request, plan, m, since, upper)
            elif m.membership == "invite" and changed:
                plan.invited.append(m)
            elif m.membership == "knock" and changed:
                plan.knocked.append(m)
            elif m.membership in DEPARTED and not m.forgotten:
                if since is None and room_filter.include_leave:
                    plan.left.append((await self._left_window(m, BEFORE_ALL, True), m.event_id))
                elif since is not None and m.stream_ordering > since:
                    full = not await self._was_joined(m, since)
                    plan.left.append((await self._left_window(m, since, full), m.event_id))
        return plan

    async def _plan_joined(
        self, request: SyncRequest, plan: _Plan, m: LocalMembership, since: int | None,
        upper: int,
    ) -> None:
        if since is None:
            plan.joined.append(RoomWindow(m.room_id, BEFORE_ALL, upper, True, m.stream_ordering))
        elif request.full_state or (
            m.stream_ordering > since and not await self._was_joined(m, since)
        ):
            plan.joined.append(RoomWindow(m.room_id, since, upper, True, m.stream_ordering))
        else:
            plan.incremental[m.room_id] = m

    async def _was_joined(self, m: LocalMembership, position: int) -> bool:
        """Whether the user was joined to ``m``'s room at ``position``."""
        event_id = await self._sync_rooms.sync_states.membership_event_at(
            m.room_id, m.user_id, position
        )
        if event_id is None:
            return False
        event = await self._events.get_event(event_id)
        return event is not None and event.pdu.membership == "join"

    async def _left_window(self, m: LocalMembership, after: int, full: bool) -> RoomWindow:
        last_join = await self._events.latest_membership_stream(m.room_id, m.user_id, "join")
        return RoomWindow(m.room_id, after, m.stream_ordering, full, last_join)

    # -- ephemeral data and account data -----------------------------------------------------

    async def _receipts(
        self, request: SyncRequest, plan: _Plan, upper: int
    ) -> list[Receipt]:
        """All receipts of rooms sent in full; those since the token of the other rooms."""
        full_ids = [w.room_id for w in plan.joined]
        queries = [self._client_data.receipts_for_rooms(full_ids, 0, upper)] if full_ids else []
        if request.since is not None and plan.incremental:
            queries.append(self._client_data.receipts_for_rooms(
                plan.incremental, request.since.stream, upper))
        found = await asyncio.gather(*queries)
        return [receipt for batch in found for receipt in batch]

    async def _extras(
        self, request: SyncRequest, plan: _Plan, account_data: Sequence[AccountDataItem],
        receipts: Sequence[Receipt], upper: int,
    ) -> dict[str, RoomExtras]:
        """Typing, receipts and room account data per room.

        Rooms sent in full get all of them (not only what changed since the token): a room
        newly joined in an incremental sync is new to the client.
        """
        since = request.since
        full_ids = [w.room_id for w in plan.joined]
        extras: dict[str, RoomExtras] = defaultdict(RoomExtras)
        typing = self._typing.changed_since(
            since.typing if since is not None else None, [*full_ids, *plan.incremental]
        )
        typing.update(self._typing.changed_since(None, full_ids))
        for room_id, users in typing.items():
            extras[room_id].typing = users
        room_data = [item for item in account_data if item.room_id]
        if since is not None and full_ids:
            everything = await self._client_data.account_data_since(request.user_id, 0, upper)
            wanted = set(full_ids)
            room_data = [i for i in room_data if i.room_id not in wanted]
            room_data += [i for i in everything if i.room_id in wanted]
        for receipt in receipts:
            extras[receipt.room_id].receipts.append(receipt)
        for item in room_data:
            extras[item.room_id].account_data.append(item)
        return extras

    # -- rooms -------------------------------------------------------------------------------

    async def _room_sections(
        self, ctx: SyncContext, plan: _Plan, extras: dict[str, RoomExtras],
        with_events: set[str], upper: int,
    ) -> dict[str, dict[str, Any]]:
        """Every room's section, built concurrently.

        A room whose section fails to build is logged and left out of this response rather
        than failing the whole sync (which would fail the same way on every retry).
        """
        windows = [*plan.joined, *self._active_incremental(ctx, plan, extras, with_events, upper)]
        builder = self._sync_rooms
        sections: dict[str, dict[str, asyncio.Task[dict[str, Any] | None]]] = {
            "join": {}, "invite": {}, "leave": {}, "knock": {}
        }
        async with asyncio.TaskGroup() as group:
            def start(section: str, room_id: str, build: Awaitable[dict[str, Any] | None]) -> None:
                sections[section][room_id] = group.create_task(_guarded(room_id, build))

            for w in windows:
                start("join", w.room_id,
                      builder.joined(ctx, w, extras.get(w.room_id) or RoomExtras()))
            for w, departure_id in plan.left:
                start("leave", w.room_id, builder.left(
                    ctx, w, extras.get(w.room_id) or RoomExtras(), departure_id
                ))
            for m in plan.invited:
                start("invite", m.room_id, builder.invited(m))
            for m in plan.knocked:
                start("knock", m.room_id, builder.knocked(m))
        return {
            name: {
                room_id: result for room_id, task in tasks.items()
                if (result := task.result()) is not None
            }
            for name, tasks in sections.items()
        }

    async def _rooms_with_events(self, ctx: SyncContext, plan: _Plan, upper: int) -> set[str]:
        """The joined rooms (not sent in full) with new events in the window."""
        if not plan.incremental or ctx.since is None:
            return set()
        return await self._events.rooms_with_new_events(plan.incremental, ctx.since, upper)

    @staticmethod
    def _active_incremental(
        ctx: SyncContext, plan: _Plan, extras: dict[str, RoomExtras], with_events: set[str],
        upper: int,
    ) -> list[RoomWindow]:
        """Windows of the joined rooms (not sent in full) that have anything new."""
        if not plan.incremental or ctx.since is None:
            return []
        active = with_events | {room_id for room_id in plan.incremental if room_id in extras}
        return [
            RoomWindow(room_id, ctx.since, upper, False, m.stream_ordering)
            for room_id, m in plan.incremental.items()
            if room_id in active
        ]


async def _guarded(
    room_id: str, build: Awaitable[dict[str, Any] | None]
) -> dict[str, Any] | None:
    try:
        return await build
    except Exception:
        logger.exception("Could not build the sync section of room %s", room_id)
        return None
