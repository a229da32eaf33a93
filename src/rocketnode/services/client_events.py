"""The client format of events (client-server API "Room Events", ``ClientEvent``).

A PDU loses its federation-only keys (hashes, signatures, auth and prev events, depth) and gains
``event_id`` and ``unsigned`` (age, the sender's transaction ID, redacted_because). Redacted
events are shown through the room version's redaction algorithm.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rocketnode.core.pdu import Pdu
from rocketnode.core.redaction import redact
from rocketnode.storage.records import StoredEvent

_CLIENT_KEYS = ("content", "origin_server_ts", "sender", "type", "state_key", "room_id")

STRIPPED_STATE_TYPES = frozenset(
    {
        "m.room.create",
        "m.room.join_rules",
        "m.room.name",
        "m.room.avatar",
        "m.room.canonical_alias",
        "m.room.encryption",
        "m.room.topic",
    }
)


def client_event(
    event: StoredEvent,
    now_ms: int,
    viewer_device: tuple[str, str] | None = None,
    redaction: Pdu | None = None,
    include_room_id: bool = True,
    replaced: Pdu | None = None,
) -> dict[str, Any]:
    """The client form of ``event`` as seen by ``viewer_device`` = ``(user_id, device_id)``."""
    pdu = event.pdu
    data = pdu.data
    if event.redacted_by is not None:
        data = redact(pdu.room_version, data)
    result: dict[str, Any] = {key: data[key] for key in _CLIENT_KEYS if key in data}
    result["room_id"] = pdu.room_id
    if not include_room_id:
        del result["room_id"]
    result["event_id"] = pdu.event_id
    if pdu.type == "m.room.redaction" and pdu.redacts is not None:
        result["redacts"] = pdu.redacts
    unsigned: dict[str, Any] = {"age": max(0, now_ms - pdu.origin_server_ts)}
    if (
        viewer_device is not None
        and event.txn_id is not None
        and pdu.sender == viewer_device[0]
        and event.txn_device == viewer_device[1]
    ):
        unsigned["transaction_id"] = event.txn_id
    if event.redacted_by is not None and redaction is not None:
        unsigned["redacted_because"] = client_event(
            StoredEvent(redaction, 0, 0), now_ms, include_room_id=include_room_id
        )
    if event.replaces_state is not None:
        unsigned["replaces_state"] = event.replaces_state
        if replaced is not None:
            unsigned["prev_content"] = replaced.content
            unsigned["prev_sender"] = replaced.sender
    original_unsigned = pdu.data.get("unsigned")
    if isinstance(original_unsigned, dict) and pdu.type == "m.room.member":
        invite_state = original_unsigned.get("invite_room_state")
        if isinstance(invite_state, list):
            unsigned["invite_room_state"] = invite_state
    result["unsigned"] = unsigned
    return result


def client_events(
    events: Iterable[StoredEvent],
    now_ms: int,
    viewer_device: tuple[str, str] | None,
    redactions: Mapping[str, Pdu],
    include_room_id: bool = True,
    replaced: Mapping[str, Pdu] | None = None,
) -> list[dict[str, Any]]:
    """Client events; ``replaced`` maps ``replaces_state`` IDs to their events, for
    ``unsigned.prev_content``."""
    replaced = replaced or {}
    return [
        client_event(
            event, now_ms, viewer_device,
            redactions.get(event.redacted_by) if event.redacted_by else None,
            include_room_id,
            replaced.get(event.replaces_state) if event.replaces_state else None,
        )
        for event in events
    ]


def referenced_ids(events: Iterable[StoredEvent]) -> set[str]:
    """The redaction and replaced-state events that rendering ``events`` reads."""
    return {i for e in events for i in (e.redacted_by, e.replaces_state) if i is not None}


def stripped_state(pdu: Pdu) -> dict[str, Any]:
    """The stripped form of a state event (for invites and knocks)."""
    return {
        "type": pdu.type,
        "state_key": pdu.state_key or "",
        "content": pdu.content,
        "sender": pdu.sender,
    }
