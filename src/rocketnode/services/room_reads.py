"""Reading a room: one event, its state, its members (client-server API "Getting events for a
room"). Timelines (``/messages``, ``/context``) are in :mod:`rocketnode.services.room_messages`.

Every read goes through :meth:`RoomAccess.view`: members read the room now, departed members
as it was when they left, anyone a ``world_readable`` room.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.services.room_access import Reader, RoomAccess, RoomView
from rocketnode.services.room_state import StateMap
from rocketnode.services.stream_tokens import PaginationToken, TopologicalToken
from rocketnode.storage.records import StoredEvent

MEMBERSHIPS = frozenset({"join", "invite", "knock", "leave", "ban"})


@dataclass(frozen=True, slots=True)
class MemberFilter:
    """``membership`` / ``not_membership`` of ``GET /members``: either condition admits."""

    membership: str | None = None
    not_membership: str | None = None

    def admits(self, membership: str | None) -> bool:
        if self.membership is None and self.not_membership is None:
            return True
        if self.membership is not None and membership == self.membership:
            return True
        return self.not_membership is not None and membership != self.not_membership


class RoomReads:
    def __init__(self, access: RoomAccess) -> None:
        self._access = access

    async def event(self, reader: Reader, room_id: str, event_id: str) -> dict[str, Any]:
        """One event, if the reader may see it; ``M_NOT_FOUND`` otherwise."""
        view = await self._access.view(reader.user_id, room_id)
        found = (await self._access.states.events([event_id])).get(event_id)
        if (
            found is None
            or found.pdu.room_id != room_id
            or not await self._access.visibility(view).visible(found)
        ):
            raise MatrixError(Errcode.NOT_FOUND, "Event not found", 404)
        [rendered] = await self._access.render(reader, [found])
        return rendered

    async def state(self, reader: Reader, room_id: str) -> list[dict[str, Any]]:
        """All state events of the room as the reader sees it."""
        view = await self._access.view(reader.user_id, room_id)
        return await self._access.render(reader, await self._access.state_events(view.state))

    async def state_event(
        self, reader: Reader, room_id: str, event_type: str, state_key: str
    ) -> dict[str, Any]:
        """One state event (client format); ``M_NOT_FOUND`` if the room has none."""
        view = await self._access.view(reader.user_id, room_id)
        event_id = view.state.get((event_type, state_key))
        found = (await self._access.states.events([event_id])) if event_id else {}
        if event_id is None or event_id not in found:
            raise MatrixError(
                Errcode.NOT_FOUND, f"No state {event_type} with key {state_key!r}", 404
            )
        [rendered] = await self._access.render(reader, [found[event_id]])
        return rendered

    async def members(
        self, reader: Reader, room_id: str, at: PaginationToken | None = None,
        member_filter: MemberFilter | None = None,
    ) -> list[dict[str, Any]]:
        """The room's ``m.room.member`` events, now or at the position ``at``."""
        view = await self._access.view(reader.user_id, room_id)
        state = view.state if at is None else await self._state_at(view, at)
        admits = (member_filter or MemberFilter()).admits
        members = {key: event_id for key, event_id in state.items() if key[0] == "m.room.member"}
        events = [
            event for event in await self._access.state_events(members)
            if admits(event.pdu.membership)
        ]
        return await self._access.render(reader, events)

    async def _state_at(self, view: RoomView, at: PaginationToken) -> StateMap:
        """The state after the room's last event at or before ``at`` (clamped for leavers):
        last in topological order for a topological token, in stream order for a stream one."""
        events = self._access.events
        if isinstance(at, TopologicalToken):
            position = at if view.upto is None else min(at, view.upto)
            latest = await events.paginate_room_events_topological(
                view.room_id, (position.depth, position.stream + 1), backwards=True, limit=1
            )
        else:
            stream = at.stream if view.upto_stream is None else min(at.stream, view.upto_stream)
            latest = await events.paginate_room_events(
                view.room_id, stream + 1, backwards=True, limit=1
            )
        if not latest:
            return {}
        [(_group, state)] = await self._access.states.state_after([latest[0].event_id])
        return state

    async def joined_members(self, user_id: str, room_id: str) -> dict[str, dict[str, str]]:
        """``user_id -> {display_name, avatar_url}`` of the joined members (readers in it)."""
        view = await self._access.view(user_id, room_id)
        if view.upto_stream is not None:
            raise MatrixError(Errcode.FORBIDDEN, "You are not a member of this room", 403)
        members = {key: event_id for key, event_id in view.state.items()
                   if key[0] == "m.room.member"}
        joined: dict[str, dict[str, str]] = {}
        for event in await self._access.state_events(members):
            if event.pdu.membership != "join" or event.pdu.state_key is None:
                continue
            joined[event.pdu.state_key] = _profile(event)
        return joined


def _profile(event: StoredEvent) -> dict[str, str]:
    """Display name and avatar from a member event (none from a redacted one)."""
    content = event.pdu.content if event.redacted_by is None else {}
    profile = {}
    for source, target in (("displayname", "display_name"), ("avatar_url", "avatar_url")):
        value = content.get(source)
        if isinstance(value, str):
            profile[target] = value
    return profile
