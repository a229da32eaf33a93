"""Room timelines: ``GET /messages`` (pagination) and ``GET /context`` (client-server API
"Getting events for a room", "Lazy-loading room members").

A walk reads the room's timeline in stream order from a position (see
:mod:`rocketnode.services.stream_tokens`), keeps the events the reader may see and the filter
admits, and stops once it has ``limit`` of them, when the timeline ends, or after a bounded
number of storage pages (then the client simply paginates on from ``end``). Each page costs a
fixed number of round trips, whatever its size: the events, their state groups, the few state
entries the visibility rule reads, and the redaction events.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.services.filters import EventFilter
from rocketnode.services.room_access import Reader, RoomAccess, RoomView
from rocketnode.services.stream_tokens import BEFORE_ALL, RoomToken
from rocketnode.services.visibility import VisibilityFilter
from rocketnode.storage.records import StoredEvent


class Backfill(Protocol):
    async def backfill(self, room_id: str, limit: int) -> int:
        """Fetch up to ``limit`` events older than the room's oldest here from other servers;
        return how many were stored."""
        ...


BACKFILL_ROUNDS = 3
DEFAULT_LIMIT = 10
MAX_LIMIT = 1000
PAGES_PER_WALK = 5
"""Storage pages one walk may read before it returns what it found."""
MIN_PAGE = 20


@dataclass(frozen=True, slots=True)
class MessagesQuery:
    """The query parameters of ``GET /messages``."""

    from_token: RoomToken | None = None
    to_token: RoomToken | None = None
    backwards: bool = True
    limit: int = DEFAULT_LIMIT
    event_filter: EventFilter = field(default_factory=EventFilter)
    from_text: str | None = None
    """``from`` as the client sent it: echoed as ``start`` when the walk starts there."""


@dataclass(slots=True)
class Walk:
    """Where a walk got to: the position after the last event it read, and what it kept."""

    position: int
    found: list[StoredEvent] = field(default_factory=list)
    first_read: int | None = None
    exhausted: bool = False
    """The walk reached the end of the timeline (or the ``to`` bound)."""


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
        start = await self._start(view, query)
        visibility = self._access.visibility(view)
        bound = self._bound(view, query)
        walk = await self._walk(
            view, visibility, start, bound, query.backwards, query.limit, query.event_filter,
        )
        if query.backwards and walk.exhausted and bound is None:
            walk = await self._walk_backfilled(view, visibility, walk, query)
        result: dict[str, Any] = {
            "start": _start_token(query, start, walk),
            "chunk": await self._access.render(reader, walk.found),
        }
        if not walk.exhausted or (not query.backwards and walk.found):
            result["end"] = str(RoomToken(walk.position))
        if query.event_filter.lazy_load_members and walk.found:
            members = await self._members_after(walk.found[0], _senders(walk.found))
            result["state"] = await self._access.render(reader, members)
        return result

    async def _start(self, view: RoomView, query: MessagesQuery) -> int:
        if query.from_token is not None:
            start = query.from_token.stream
        elif query.backwards:
            start = await self._access.events.current_stream_ordering()
        else:
            start = BEFORE_ALL
        if query.backwards and view.upto_stream is not None:
            start = min(start, view.upto_stream)
        return start

    @staticmethod
    def _bound(view: RoomView, query: MessagesQuery) -> int | None:
        """The position the walk stops at (``to``; for a leaver going forwards, their leave)."""
        bound = query.to_token.stream if query.to_token is not None else None
        if not query.backwards and view.upto_stream is not None:
            bound = view.upto_stream if bound is None else min(bound, view.upto_stream)
        return bound

    async def _walk_backfilled(
        self, view: RoomView, visibility: VisibilityFilter, walk: Walk, query: MessagesQuery
    ) -> Walk:
        """At the start of the local timeline: fetch older history from other servers."""
        for _ in range(BACKFILL_ROUNDS):
            missing = query.limit - len(walk.found)
            if self._backfill is None or missing <= 0:
                break
            if not await self._backfill.backfill(view.room_id, max(missing, MIN_PAGE)):
                break
            more = await self._walk(view, visibility, walk.position, None, True, missing,
                                    query.event_filter)
            walk = Walk(more.position, [*walk.found, *more.found],
                        walk.first_read if walk.first_read is not None else more.first_read,
                        more.exhausted)
        return walk

    async def _walk(
        self, view: RoomView, visibility: VisibilityFilter, start: int, bound: int | None,
        backwards: bool, limit: int, event_filter: EventFilter,
    ) -> Walk:
        walk = Walk(start)
        page_size = max(limit, MIN_PAGE)
        for _ in range(PAGES_PER_WALK):
            if len(walk.found) >= limit:
                return walk
            page = await self._access.events.paginate_room_events(
                view.room_id,
                walk.position + 1 if backwards else walk.position,
                backwards,
                page_size,
                to_stream=None if bound is None else (bound + 1 if backwards else bound),
            )
            if page and walk.first_read is None:
                walk.first_read = page[0].stream_ordering
            kept = {
                event.event_id for event in await visibility.filter(page)
                if event_filter.allows(filter_fields(event))
            }
            for index, event in enumerate(page):
                walk.position = event.stream_ordering - (1 if backwards else 0)
                if event.event_id in kept:
                    walk.found.append(event)
                if len(walk.found) >= limit:
                    walk.exhausted = len(page) < page_size and index == len(page) - 1
                    return walk
            if len(page) < page_size:
                walk.exhausted = True
                return walk
        return walk

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
            view, visibility, event.stream_ordering - 1, None, True, before_limit, event_filter
        )
        after = await self._walk(
            view, visibility, event.stream_ordering, view.upto_stream, False,
            limit - before_limit, event_filter,
        )
        returned = [*before.found, event, *after.found]
        state = await self._context_state(after.found[-1] if after.found else event,
                                          returned, event_filter)
        render = self._access.render
        return {
            "start": str(RoomToken(before.position)),
            "end": str(RoomToken(after.position)),
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


def _start_token(query: MessagesQuery, start: int, walk: Walk) -> str:
    """``from`` as given if the walk started there; else the position the walk started at."""
    if query.from_token is not None and query.from_token.stream == start:
        return query.from_text or str(query.from_token)
    if query.from_token is None and not query.backwards and walk.first_read is not None:
        return str(RoomToken.before(walk.first_read))
    return str(RoomToken(start))


def _senders(events: Iterable[StoredEvent]) -> set[str]:
    return {event.pdu.sender for event in events}

