"""One room of a /sync response: the ``join``, ``leave``, ``invite`` and ``knock`` sections.

:class:`SyncService` decides which rooms go in a response and over which window of the stream
(a :class:`RoomWindow`); :class:`SyncRooms` builds each room's section: the timeline (newest
events of the window the user may see and the filter admits), the state section
(:mod:`rocketnode.services.sync_state`), ephemeral events (typing, receipts) and room account
data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rocketnode.core.redaction import redact
from rocketnode.services.client_events import (
    STRIPPED_STATE_TYPES,
    client_events,
    referenced_ids,
    stripped_state,
)
from rocketnode.services.filters import EventFilter, Filter, apply_event_fields
from rocketnode.services.room_state import RoomStates
from rocketnode.services.stream_tokens import RoomToken
from rocketnode.services.sync_state import (
    SyncStates,
    lazy_members,
    state_after_delta,
    state_delta,
)
from rocketnode.services.visibility import Viewer, VisibilityFilter
from rocketnode.storage.ports import EventStore, StateStore
from rocketnode.storage.records import AccountDataItem, LocalMembership, Receipt, StoredEvent

MIN_TIMELINE_BATCH = 20
MAX_TIMELINE_ROUNDS = 5
MAX_HEROES = 5
PRIVATE_RECEIPT_TYPES = frozenset({"m.read.private"})
STRIPPED_KEYS = ("type", "state_key", "content", "sender")


@dataclass(frozen=True, slots=True)
class SyncContext:
    """What every room of one sync shares."""

    user_id: str
    device_id: str
    filter: Filter
    since: int | None
    """The stream position of ``since`` (None for an initial sync)."""
    now_ms: int
    use_state_after: bool = False
    """Send ``state_after`` (state up to the *end* of the timeline) instead of ``state``."""

    @property
    def state_field(self) -> str:
        return "state_after" if self.use_state_after else "state"


@dataclass(frozen=True, slots=True)
class RoomWindow:
    """The part of a room's stream one sync covers: events with ``after < stream <= upto``."""

    room_id: str
    after: int
    upto: int
    full: bool
    """Send the full state (initial sync, newly joined room, ``full_state``)."""
    last_join_stream: int | None


@dataclass(slots=True)
class RoomExtras:
    """What a room gets besides events: typing (None: unchanged), receipts, account data."""

    typing: list[str] | None = None
    receipts: list[Receipt] = field(default_factory=list)
    account_data: list[AccountDataItem] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Timeline:
    events: list[StoredEvent]
    limited: bool


def allows_type(event_filter: EventFilter, event_type: str, room_id: str | None = None) -> bool:
    """The filter's verdict on an event known only by type (ephemeral events, account data)."""
    by_type = dataclasses.replace(event_filter, senders=None, not_senders=())
    view: dict[str, Any] = {"type": event_type}
    if room_id is not None:
        view["room_id"] = room_id
    return by_type.allows(view)


def _filter_view(event: StoredEvent) -> dict[str, Any]:
    pdu = event.pdu
    return {"type": pdu.type, "sender": pdu.sender, "room_id": pdu.room_id,
            "content": pdu.content}


def _restricts(event_filter: EventFilter) -> bool:
    """Whether a timeline filter may leave out events of the window (not only old ones)."""
    return (
        event_filter.types is not None or bool(event_filter.not_types)
        or event_filter.senders is not None or bool(event_filter.not_senders)
        or event_filter.contains_url is not None
    )


def receipt_event(receipts: Sequence[Receipt], viewer: str) -> dict[str, Any] | None:
    """One ``m.receipt`` event for a room; private receipts only if they are the viewer's."""
    content: dict[str, Any] = {}
    for receipt in receipts:
        if receipt.receipt_type in PRIVATE_RECEIPT_TYPES and receipt.user_id != viewer:
            continue
        by_type = content.setdefault(receipt.event_id, {})
        by_type.setdefault(receipt.receipt_type, {})[receipt.user_id] = receipt.data
    return {"type": "m.receipt", "content": content} if content else None


def account_data_events(
    event_filter: EventFilter, items: Sequence[AccountDataItem]
) -> list[dict[str, Any]]:
    if event_filter.blocks_everything:
        return []
    events = [
        {"type": item.type, "content": item.content}
        for item in items
        if allows_type(event_filter, item.type)
    ]
    return events if event_filter.limit is None else events[: event_filter.limit]


def sanitize_stripped(raw: object) -> list[dict[str, Any]]:
    """Stripped state received from elsewhere, pruned to the stripped state schema."""
    if not isinstance(raw, list):
        return []
    found = []
    for item in raw:
        if (
            isinstance(item, dict) and isinstance(item.get("type"), str)
            and isinstance(item.get("state_key"), str) and isinstance(item.get("sender"), str)
            and isinstance(item.get("content"), dict)
        ):
            found.append({key: item[key] for key in STRIPPED_KEYS})
    return found


class SyncRooms:
    def __init__(self, events: EventStore, state: StateStore, states: RoomStates) -> None:
        self._events = events
        self._state = state
        self._states = states
        self.sync_states = SyncStates(events, state)

    # -- sections ----------------------------------------------------------------------------

    async def joined(
        self, ctx: SyncContext, window: RoomWindow, extras: RoomExtras
    ) -> dict[str, Any] | None:
        """The ``join`` section of a room, or None if an incremental sync has nothing for it."""
        timeline = await self._timeline(ctx, window, joined=True)
        summary = await self._summary(window.room_id, ctx.user_id) if window.full else None
        heroes = summary["m.heroes"] if summary else []
        state = await self._state_section(ctx, window, timeline, heroes)
        ephemeral = self._ephemeral(ctx, window.room_id, extras)
        account_data = account_data_events(ctx.filter.room.account_data, extras.account_data)
        if not (window.full or timeline.events or timeline.limited or state or ephemeral
                or account_data):
            return None
        members_changed = any(e.pdu.type == "m.room.member" for e in [*timeline.events, *state])
        if summary is None and members_changed:
            summary = await self._summary(window.room_id, ctx.user_id)
        section: dict[str, Any] = {
            "timeline": await self._timeline_json(ctx, window, timeline),
            ctx.state_field: {"events": await self._render(ctx, state)},
            "ephemeral": {"events": ephemeral},
            "account_data": {"events": account_data},
        }
        if summary is not None:
            section["summary"] = summary
        return section

    async def left(
        self, ctx: SyncContext, window: RoomWindow, extras: RoomExtras, departure_id: str
    ) -> dict[str, Any]:
        """The ``leave`` section: the timeline up to the user's departure.

        The departure itself is always shown, even where history visibility would hide it (a
        rejected invite), so that the client sees why the room went away.
        """
        timeline = await self._timeline(ctx, window, joined=False)
        event_filter = ctx.filter.room.timeline
        if departure_id not in {e.event_id for e in timeline.events} and event_filter.limit != 0:
            departure = (await self._states.events([departure_id])).get(departure_id)
            if departure is not None and event_filter.allows(_filter_view(departure)):
                events = [*timeline.events, departure]
                limit = ctx.filter.room.timeline_limit
                timeline = Timeline(events[-limit:], timeline.limited or len(events) > limit)
        state = await self._state_section(ctx, window, timeline, [])
        return {
            "timeline": await self._timeline_json(ctx, window, timeline),
            ctx.state_field: {"events": await self._render(ctx, state)},
            "account_data": {
                "events": account_data_events(ctx.filter.room.account_data, extras.account_data)
            },
        }

    async def invited(self, membership: LocalMembership) -> dict[str, Any]:
        return {"invite_state": {"events": await self._stripped(membership, "invite_room_state")}}

    async def knocked(self, membership: LocalMembership) -> dict[str, Any]:
        return {"knock_state": {"events": await self._stripped(membership, "knock_room_state")}}

    # -- timeline ----------------------------------------------------------------------------

    async def _timeline(self, ctx: SyncContext, window: RoomWindow, joined: bool) -> Timeline:
        """The newest ``limit`` events of the window that pass the filter and visibility."""
        event_filter = ctx.filter.room.timeline
        limit = ctx.filter.room.timeline_limit
        visibility = VisibilityFilter(
            self._events, self._state, self._states,
            Viewer(ctx.user_id, window.last_join_stream,
                   window.last_join_stream if joined else None),
        )
        collected: list[StoredEvent] = []
        top = window.upto
        for _ in range(MAX_TIMELINE_ROUNDS):
            need = limit - len(collected)
            batch, more = await self._events.room_events_between(
                window.room_id, window.after, top, max(need, MIN_TIMELINE_BATCH)
            )
            admitted = [e for e in batch if event_filter.allows(_filter_view(e))]
            kept = await visibility.filter(admitted) if admitted else []
            if len(kept) >= need:
                return Timeline(kept[len(kept) - need:] + collected, len(kept) > need or more)
            collected = kept + collected
            if not more or not batch:
                return Timeline(collected, False)
            top = batch[0].stream_ordering - 1
        return Timeline(collected, True)

    async def _timeline_json(
        self, ctx: SyncContext, window: RoomWindow, timeline: Timeline
    ) -> dict[str, Any]:
        if timeline.events:
            prev_batch = RoomToken.before(timeline.events[0].stream_ordering)
        else:
            prev_batch = RoomToken(window.upto)
        return {
            "events": await self._render(ctx, timeline.events),
            "limited": timeline.limited,
            "prev_batch": str(prev_batch),
        }

    # -- state -------------------------------------------------------------------------------

    async def _state_section(
        self, ctx: SyncContext, window: RoomWindow, timeline: Timeline, heroes: Sequence[str]
    ) -> list[StoredEvent]:
        state_filter = ctx.filter.room.state
        if state_filter.blocks_everything or not self._state_needed(ctx, window, timeline):
            return []
        lazy = state_filter.lazy_load_members
        first = timeline.events[0].event_id if timeline.events else None
        since = None if window.full else ctx.since
        states = await self.sync_states.window(window.room_id, first, window.upto, since)
        if ctx.use_state_after:
            excluded: set[str] = set()
            base = states.end
            delta = state_after_delta(states.end, states.previous)
        else:
            excluded = {e.event_id for e in timeline.events}
            base = states.start
            delta = state_delta(states.start, states.end, states.previous, excluded)
        if lazy:
            wanted = {e.pdu.sender for e in timeline.events}
            if window.full:
                wanted |= {ctx.user_id, *heroes}
            delta = lazy_members(delta, base, wanted, excluded, not window.full)
        found = await self._states.events(delta.values())
        events = [found[delta[key]] for key in sorted(delta) if delta[key] in found]
        return [e for e in events if state_filter.allows(_filter_view(e))]

    @staticmethod
    def _state_needed(ctx: SyncContext, window: RoomWindow, timeline: Timeline) -> bool:
        """Whether the state section can differ from empty.

        An incremental, complete and unfiltered timeline already shows every state change (up
        to forks resolved without a new event, which the next limited sync catches up on).
        """
        if window.full or timeline.limited or _restricts(ctx.filter.room.timeline):
            return True
        if ctx.filter.room.state.lazy_load_members and timeline.events:
            return True
        return ctx.use_state_after and any(e.pdu.is_state for e in timeline.events)

    async def _summary(self, room_id: str, user_id: str) -> dict[str, Any]:
        """``m.heroes`` and member counts, from the room's current members.

        Heroes are the first members other than the user, ordered by user ID (the spec asks
        for stream order, which the current-state table does not keep).
        """
        members = await self._state.get_members(room_id, None)
        joined = sorted(u for u, m in members.items() if m == "join")
        invited = sorted(u for u, m in members.items() if m == "invite")
        heroes = sorted(u for u in (*joined, *invited) if u != user_id)
        if not heroes:
            heroes = sorted(u for u, m in members.items() if m in ("leave", "ban")
                            and u != user_id)
        return {
            "m.heroes": heroes[:MAX_HEROES],
            "m.joined_member_count": len(joined),
            "m.invited_member_count": len(invited),
        }

    # -- ephemeral, stripped state, rendering ------------------------------------------------

    def _ephemeral(
        self, ctx: SyncContext, room_id: str, extras: RoomExtras
    ) -> list[dict[str, Any]]:
        event_filter = ctx.filter.room.ephemeral
        if event_filter.blocks_everything:
            return []
        events: list[dict[str, Any]] = []
        if extras.typing is not None:
            events.append({"type": "m.typing", "content": {"user_ids": extras.typing}})
        receipts = receipt_event(extras.receipts, ctx.user_id)
        if receipts is not None:
            events.append(receipts)
        events = [e for e in events if allows_type(event_filter, e["type"], room_id)]
        return events if event_filter.limit is None else events[: event_filter.limit]

    async def _stripped(self, membership: LocalMembership, unsigned_key: str) -> list[Any]:
        """Stripped state for an invite or knock: from the event, or the room's state then."""
        found = await self._states.events([membership.event_id])
        event = found.get(membership.event_id)
        if event is None:
            return []
        own = stripped_state(event.pdu)
        unsigned = event.pdu.data.get("unsigned")
        if isinstance(unsigned, dict) and unsigned_key in unsigned:
            return [*sanitize_stripped(unsigned[unsigned_key]), own]
        groups = await self._events.get_state_groups_for_events([membership.event_id])
        if membership.event_id not in groups:
            return [own]
        group = groups[membership.event_id][1]
        keys = [(t, "") for t in sorted(STRIPPED_STATE_TYPES)]
        keys.append(("m.room.member", event.pdu.sender))
        entries = (await self._state.get_state_entries([group], keys)).get(group, {})
        pdus = await self._states.pdus(e for e in entries.values() if e != event.event_id)
        return [*(stripped_state(pdu) for pdu in pdus.values()), own]

    async def _render(
        self, ctx: SyncContext, events: Sequence[StoredEvent]
    ) -> list[dict[str, Any]]:
        if ctx.filter.event_format == "federation":
            rendered = [
                redact(e.pdu.room_version, e.pdu.data) if e.redacted_by else dict(e.pdu.data)
                for e in events
            ]
        else:
            wanted = referenced_ids(events)
            related = await self._states.pdus(wanted) if wanted else {}
            rendered = client_events(
                events, ctx.now_ms, (ctx.user_id, ctx.device_id), related,
                include_room_id=False, replaced=related,
            )
        return [apply_event_fields(event, ctx.filter.event_fields) for event in rendered]
