"""Room timelines: ``GET /messages`` (pagination) and ``GET /context`` (client-server API
"Getting events for a room", "Pagination", "Lazy-loading room members").

A walk reads the room's timeline in *topological* order — by ``(depth, stream_ordering)``, see
:mod:`rocketnode.services.stream_tokens` — from a position, keeps the events the reader may see
and the filter admits, and stops once it has ``limit`` of them, when the timeline ends, or after
a bounded number of storage pages (then the client simply paginates on from ``end``). Each page
costs a fixed number of round trips, whatever its size: the events, their state groups, the few
state entries the visibility rule reads, and the redaction events.

Walking backwards, a walk also fills the gaps in the history it crosses. An event whose prev
events are not in the timeline here (unknown, or known only as outliers) sits on a gap: this
server was not in the room then (it joined late, or left and came back) or missed events. The
walk asks other servers for the events before it (:class:`Backfill`), then reads on into them.
At most :data:`BACKFILL_ROUNDS` gaps are filled per request; when a walk meets one more, it
ends just above it, so the client's next page starts there and fills it. Gaps no server can
fill are remembered by the :class:`Backfill` for a while, and walks pass them meanwhile.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.services.filters import EventFilter
from rocketnode.services.room_access import Reader, RoomAccess, RoomView
from rocketnode.services.stream_tokens import (
    ROOM_END,
    ROOM_START,
    PaginationToken,
    TopologicalToken,
    topological_position,
)
from rocketnode.services.visibility import VisibilityFilter
from rocketnode.storage.ports import EventStore
from rocketnode.storage.records import StoredEvent


class Backfill(Protocol):
    """Filling gaps in a room's history from other servers (federation)."""

    def may_fill(self, room_id: str, extremities: Sequence[str]) -> bool:
        """Whether to ask for the events before ``extremities`` (no: every one of them is
        remembered as a gap no server could fill, for now)."""
        ...

    async def fill_gap(self, room_id: str, extremities: Sequence[str], limit: int) -> int:
        """Fetch up to ``limit`` events from ``extremities`` backwards from other servers and
        store them; return how many were stored."""
        ...


BACKFILL_ROUNDS = 3
"""Gaps one ``/messages`` request may fill (each fill is one or more remote requests)."""
DEFAULT_LIMIT = 10
MAX_LIMIT = 1000
PAGES_PER_WALK = 5
"""Storage pages one walk may read before it returns what it found."""
MIN_PAGE = 20


@dataclass(frozen=True, slots=True)
class MessagesQuery:
    """The query parameters of ``GET /messages``."""

    from_token: PaginationToken | None = None
    to_token: PaginationToken | None = None
    backwards: bool = True
    limit: int = DEFAULT_LIMIT
    event_filter: EventFilter = field(default_factory=EventFilter)
    from_text: str | None = None
    """``from`` as the client sent it: echoed as ``start`` when the walk starts there."""


@dataclass(slots=True)
class Walk:
    """Where a walk got to: the position after the last event it read, and what it kept."""

    position: TopologicalToken
    found: list[StoredEvent] = field(default_factory=list)
    first_read: StoredEvent | None = None
    exhausted: bool = False
    """The walk reached the end of the timeline (or the ``to`` bound)."""


@dataclass(slots=True)
class GapFilling:
    """The gaps one walk may still fill (none walking forwards, or without federation)."""

    backfill: Backfill | None
    room_id: str
    rounds_left: int = BACKFILL_ROUNDS
    below: dict[str, list[str]] = field(default_factory=dict)
    """Of the page being read: event ID -> its prev events missing here."""

    async def find(self, events: EventStore, page: Sequence[StoredEvent]) -> None:
        """Look up the gaps below the events of ``page`` (one round trip, if any may fill)."""
        self.below = {}
        if self.backfill is not None and page:
            self.below = await events.backward_extremities(event.event_id for event in page)

    def gap_below(self, event: StoredEvent) -> list[str] | None:
        """The missing prev events of ``event``, if that gap is worth filling."""
        gap = self.below.get(event.event_id)
        if gap is None or self.backfill is None or not self.backfill.may_fill(self.room_id, gap):
            return None
        return gap

    async def fill(self, gap: Sequence[str], limit: int) -> None:
        self.rounds_left -= 1
        if self.backfill is not None:
            await self.backfill.fill_gap(self.room_id, gap, limit)


class PageEnd(enum.Enum):
    """How reading one storage page ended."""

    FULL = "full"
    """The walk has ``limit`` events."""
    STOP = "stop"
    """The next event sits on a gap this request may not fill any more: the walk ends above
    it, so that the client's next page starts with it and fills the gap."""
    READ_AGAIN = "read again"
    """A gap was filled: read on from the walk's position, which now sees the new events."""
    READ_ON = "read on"
    """Every event of the page was read."""


def filter_fields(event: StoredEvent) -> dict[str, Any]:
    """The keys of the client event that an event filter looks at."""
    pdu = event.pdu
    content = pdu.content if event.redacted_by is None else {}
    return {"type": pdu.type, "sender": pdu.sender, "room_id": pdu.room_id, "content": content}


class RoomMessages:
    def __init__(self, access: RoomAccess, backfill: Backfill | None = None) -> None:
        self._access = access
        self._backfill = backfill

    async def messages(self, reader: Reader, room_id: str, query: MessagesQuery) -> dict[str, Any]:
        """``GET /messages``: ``start``, ``chunk``, ``end`` (unless no more), lazy ``state``."""
        view = await self._access.view(reader.user_id, room_id)
        origin = (await self._position(room_id, query.from_token)
                  if query.from_token is not None else None)
        start = self._start(view, query.backwards, origin)
        bound = await self._bound(view, query)
        gaps = (GapFilling(self._backfill, room_id)
                if query.backwards and self._backfill is not None else None)
        walk = await self._walk(
            view, self._access.visibility(view), start, bound, query.backwards, query.limit,
            query.event_filter, gaps,
        )
        result: dict[str, Any] = {
            "start": _start_token(query, origin, start, walk),
            "chunk": await self._access.render(reader, walk.found),
        }
        if not walk.exhausted or (not query.backwards and walk.found):
            result["end"] = str(walk.position)
        if query.event_filter.lazy_load_members and walk.found:
            members = await self._members_after(walk.found[0], _senders(walk.found))
            result["state"] = await self._access.render(reader, members)
        return result

    async def _position(self, room_id: str, token: PaginationToken) -> TopologicalToken:
        """A token's place in the room's topological order (a stream token is converted as
        :mod:`rocketnode.services.stream_tokens` describes)."""
        if isinstance(token, TopologicalToken):
            return token
        events = self._access.events
        return topological_position(await events.latest_topological_key(room_id, token.stream))

    @staticmethod
    def _start(
        view: RoomView, backwards: bool, origin: TopologicalToken | None
    ) -> TopologicalToken:
        start = origin if origin is not None else ROOM_END if backwards else ROOM_START
        if backwards and view.upto is not None:
            start = min(start, view.upto)
        return start

    async def _bound(self, view: RoomView, query: MessagesQuery) -> TopologicalToken | None:
        """The position the walk stops at (``to``; for a leaver going forwards, their leave)."""
        bound = (await self._position(view.room_id, query.to_token)
                 if query.to_token is not None else None)
        if not query.backwards and view.upto is not None:
            bound = view.upto if bound is None else min(bound, view.upto)
        return bound

    async def _walk(
        self, view: RoomView, visibility: VisibilityFilter, start: TopologicalToken,
        bound: TopologicalToken | None, backwards: bool, limit: int, event_filter: EventFilter,
        gaps: GapFilling | None = None,
    ) -> Walk:
        walk = Walk(start)
        if gaps is None:
            gaps = GapFilling(None, view.room_id)
        page_size = max(limit, MIN_PAGE)
        for _ in range(PAGES_PER_WALK):
            if len(walk.found) >= limit:
                return walk
            page = await self._page(view.room_id, walk.position, bound, backwards, page_size)
            if page and walk.first_read is None:
                walk.first_read = page[0]
            await gaps.find(self._access.events, page)
            kept = {
                event.event_id for event in await visibility.filter(page)
                if event_filter.allows(filter_fields(event))
            }
            ended = await _read_page(walk, page, kept, gaps, backwards, limit)
            if ended is PageEnd.FULL:
                walk.exhausted = (len(page) < page_size
                                  and walk.position == _past(page[-1], backwards))
                return walk
            if ended is PageEnd.STOP:
                return walk
            if ended is PageEnd.READ_ON and len(page) < page_size:
                walk.exhausted = True
                return walk
        return walk

    async def _page(
        self, room_id: str, position: TopologicalToken, bound: TopologicalToken | None,
        backwards: bool, size: int,
    ) -> list[StoredEvent]:
        """The next events of the walk: at or before ``position`` and after ``bound``
        (backwards), or after ``position`` and at or before ``bound`` (forwards)."""
        if backwards:
            from_key = (position.depth, position.stream + 1)
            to_key = None if bound is None else (bound.depth, bound.stream + 1)
        else:
            from_key = position.key
            to_key = None if bound is None else bound.key
        return await self._access.events.paginate_room_events_topological(
            room_id, from_key, backwards, size, to_key=to_key,
        )

    async def _members_after(
        self, event: StoredEvent, user_ids: Iterable[str]
    ) -> list[StoredEvent]:
        """The member events of ``user_ids`` in the state after ``event`` (lazy loading)."""
        groups = await self._access.events.get_state_groups_for_events([event.event_id])
        if event.event_id not in groups:
            return []
        after = groups[event.event_id][1]
        keys = [("m.room.member", user_id) for user_id in sorted(set(user_ids))]
        entries = await self._access.state.get_state_entries([after], keys)
        return await self._access.state_events(entries.get(after, {}))

    async def context(
        self, reader: Reader, room_id: str, event_id: str, limit: int, event_filter: EventFilter
    ) -> dict[str, Any]:
        """``GET /context``: the event, up to ``limit`` events around it, and the state."""
        view = await self._access.view(reader.user_id, room_id)
        visibility = self._access.visibility(view)
        event = (await self._access.states.events([event_id])).get(event_id)
        if event is None or event.pdu.room_id != room_id or not await visibility.visible(event):
            raise MatrixError(Errcode.NOT_FOUND, "Event not found", 404)
        before_limit = limit // 2
        before = await self._walk(
            view, visibility, _past(event, True), None, True, before_limit, event_filter
        )
        after = await self._walk(
            view, visibility, _past(event, False), view.upto, False, limit - before_limit,
            event_filter,
        )
        returned = [*before.found, event, *after.found]
        state = await self._context_state(after.found[-1] if after.found else event,
                                          returned, event_filter)
        render = self._access.render
        return {
            "start": str(before.position),
            "end": str(after.position),
            "events_before": await render(reader, before.found),
            "event": (await render(reader, [event]))[0],
            "events_after": await render(reader, after.found),
            "state": await render(reader, state),
        }

    async def _context_state(
        self, last: StoredEvent, returned: list[StoredEvent], event_filter: EventFilter
    ) -> list[StoredEvent]:
        """The state after the last event returned, filtered (and lazy-loaded) as asked."""
        [(_group, state)] = await self._access.states.state_after([last.event_id])
        if event_filter.lazy_load_members:
            senders = _senders(returned)
            state = {
                key: event_id for key, event_id in state.items()
                if key[0] != "m.room.member" or key[1] in senders
            }
        return [
            event for event in await self._access.state_events(state)
            if event_filter.allows(filter_fields(event))
        ]


async def _read_page(
    walk: Walk, page: Sequence[StoredEvent], kept: set[str], gaps: GapFilling,
    backwards: bool, limit: int,
) -> PageEnd:
    """Take the events of one page in order, filling the gaps below them (backwards)."""
    for event in page:
        gap = gaps.gap_below(event)
        if gap is not None and gaps.rounds_left == 0:
            return PageEnd.STOP
        walk.position = _past(event, backwards)
        if event.event_id in kept:
            walk.found.append(event)
        if gap is not None:
            await gaps.fill(gap, max(limit - len(walk.found), MIN_PAGE))
            return PageEnd.READ_AGAIN
        if len(walk.found) >= limit:
            return PageEnd.FULL
    return PageEnd.READ_ON


def _past(event: StoredEvent, backwards: bool) -> TopologicalToken:
    """The position of a walk that has just read ``event``."""
    depth, stream = event.pdu.depth, event.stream_ordering
    if backwards:
        return TopologicalToken.before(depth, stream)
    return TopologicalToken.after(depth, stream)


def _start_token(
    query: MessagesQuery, origin: TopologicalToken | None, start: TopologicalToken, walk: Walk
) -> str:
    """``from`` as given if the walk started there; without ``from``, the position just
    outside the first event read; else the position the walk started at."""
    if origin is not None and origin == start:
        return query.from_text or str(query.from_token)
    if origin is None and walk.first_read is not None:
        return str(_past(walk.first_read, not query.backwards))
    return str(start)


def _senders(events: Iterable[StoredEvent]) -> set[str]:
    return {event.pdu.sender for event in events}

