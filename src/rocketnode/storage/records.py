"""Plain records that cross the storage ports (no SQL, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from rocketnode.core.pdu import Pdu, StateKey
from rocketnode.core.room_versions import RoomVersion


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A PDU with what this server knows about it."""

    pdu: Pdu
    stream_ordering: int
    received_ts: int
    rejected: str | None = None
    outlier: bool = False
    soft_failed: bool = False
    redacted_by: str | None = None
    txn_device: str | None = None
    txn_id: str | None = None
    replaces_state: str | None = None
    """For a state event: the event that held its key in the state before it."""

    @property
    def event_id(self) -> str:
        return self.pdu.event_id


@dataclass(frozen=True, slots=True)
class RoomRecord:
    room_id: str
    room_version: RoomVersion
    creator: str | None
    is_public: bool
    created_ts: int
    current_state_group: int | None


@dataclass(frozen=True, slots=True)
class NewStateGroup:
    """A state group to create: ``delta`` applied over ``prev_group`` (or a full snapshot)."""

    prev_group: int | None
    delta: Mapping[StateKey, str]


StateGroupRef = int | NewStateGroup
AFTER: Literal["after"] = "after"
"""Marker: the room's current state becomes the state after the event being persisted."""


@dataclass(frozen=True, slots=True)
class MembershipChange:
    """A local user's membership in a room changed (kept for /sync and joined_rooms)."""

    user_id: str
    room_id: str
    membership: str
    event_id: str


@dataclass(frozen=True, slots=True)
class EventPersist:
    """Everything that changes, atomically, when one event is stored.

    ``state_before`` is the state group of the state before the event (not for outliers).
    The state after is derived by storage: a one-entry delta for an accepted state event,
    otherwise the same group.
    """

    pdu: Pdu
    received_ts: int
    state_before: StateGroupRef | None = None
    outlier: bool = False
    backfilled: bool = False
    backfill_position: int | None = None
    """For a backfilled event, the (negative) stream position reserved for it."""
    rejected: str | None = None
    soft_failed: bool = False
    forward_extremities: tuple[str, ...] | None = None
    """The room's new forward extremities, or ``None`` to leave them unchanged."""
    current_state_group: StateGroupRef | Literal["after"] | None = None
    current_state_delta: Mapping[StateKey, str] = field(default_factory=dict)
    """Entries of the room's current state that change (applied to the materialised table)."""
    membership_changes: tuple[MembershipChange, ...] = ()
    txn: tuple[str, str, str] | None = None
    """``(user_id, device_id, txn_id)`` for an event sent by a local client."""
    applies_redaction_of: str | None = None
    outbound_destinations: tuple[str, ...] = ()
    """Servers to queue this PDU for, in the same transaction (federation)."""
    replaces_state: str | None = None
    """For a state event: the event holding its key in the state before it."""


@dataclass(frozen=True, slots=True)
class PersistResult:
    stream_ordering: int
    before_group: int | None
    after_group: int | None
    current_state_group: int | None


@dataclass(frozen=True, slots=True)
class Account:
    user_id: str
    password_hash: str | None
    is_admin: bool
    created_ts: int
    deactivated: bool
    displayname: str | None
    avatar_url: str | None


@dataclass(frozen=True, slots=True)
class AccessToken:
    user_id: str
    device_id: str
    is_admin: bool


@dataclass(frozen=True, slots=True)
class Device:
    user_id: str
    device_id: str
    display_name: str | None
    last_seen_ts: int | None


@dataclass(frozen=True, slots=True)
class Receipt:
    room_id: str
    receipt_type: str
    user_id: str
    thread_id: str
    event_id: str
    data: dict[str, Any]
    stream_ordering: int


@dataclass(frozen=True, slots=True)
class AccountDataItem:
    user_id: str
    room_id: str
    type: str
    content: dict[str, Any]
    stream_ordering: int


@dataclass(frozen=True, slots=True)
class LocalMembership:
    user_id: str
    room_id: str
    membership: str
    event_id: str
    stream_ordering: int
    forgotten: bool = False


@dataclass(frozen=True, slots=True)
class QueuedPdu:
    destination: str
    stream_ordering: int
    event_id: str
    room_id: str


@dataclass(frozen=True, slots=True)
class DestinationState:
    """Health of a remote server as seen by the outbound sender."""

    destination: str
    retry_after_ts: int = 0
    retry_interval_ms: int = 0
    failing_since_ts: int | None = None
    last_success_ts: int | None = None
    last_error: str | None = None
    last_error_ts: int | None = None
