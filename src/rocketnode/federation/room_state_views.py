"""Partial views of a room's state sent to servers outside it: the room state that comes with
an invite or a knock (server-server API "Inviting to a room"; from spec v1.16 these are full
PDUs formatted for the room version, the create event included)."""

from __future__ import annotations

from typing import Any

from rocketnode.core.pdu import Pdu, StateKey
from rocketnode.services.client_events import STRIPPED_STATE_TYPES
from rocketnode.services.rooms import RoomService


async def invite_room_state(rooms: RoomService, membership_event: Pdu) -> list[dict[str, Any]]:
    """Full PDUs of the room's identifying state plus the sender's membership."""
    snapshot = await rooms.states.snapshot(membership_event.room_id)
    if snapshot is None:
        return []
    keys: list[StateKey] = [k for k in snapshot.state if k[0] in STRIPPED_STATE_TYPES
                            and k[1] == ""]
    keys.append(("m.room.member", membership_event.sender))
    pdus = await rooms.states.state_pdus(snapshot.state, keys)
    return [{k: v for k, v in pdu.data.items() if k != "unsigned"} for pdu in pdus.values()]


def stripped_from_any(entries: object) -> list[dict[str, Any]]:
    """Client-facing stripped state from invite/knock room state (PDUs or stripped events)."""
    if not isinstance(entries, list):
        return []
    stripped = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        event_type, state_key = entry.get("type"), entry.get("state_key")
        content, sender = entry.get("content"), entry.get("sender")
        if isinstance(event_type, str) and isinstance(state_key, str) and \
                isinstance(content, dict) and isinstance(sender, str):
            stripped.append({"type": event_type, "state_key": state_key, "content": content,
                             "sender": sender})
    return stripped
