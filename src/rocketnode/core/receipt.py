"""The checks performed on receipt of a PDU, as pure steps (server-server API "Checks performed
on receipt of a PDU").

A federation service runs them in the spec's order and acts on the first that fails:

1. format: :meth:`rocketnode.core.pdu.Pdu.from_json` (``PduFormatError``: drop the event);
2. and 3. signatures, then hashes: :func:`rocketnode.core.pdu.verify_pdu` (``SignatureError``:
   drop it; ``SignatureVerdict.REDACT``: go on with the redacted event);
4. :func:`check_against_auth_events` (``AuthError``: the event is rejected);
5. :func:`check_against_state_before` (``AuthError``: the event is rejected);
6. :func:`check_soft_fail` (``SoftFailed``: the event is soft failed).

(Step 7, the policy server, is a service concern.) :func:`receipt_verdict` runs steps 4 to 6
and returns a :class:`ReceiptVerdict` instead of raising. Fetching the auth events, computing the
state before the event (state resolution) and the current state are the caller's job. Every
step is a thin layer over :mod:`rocketnode.core.auth_rules`.
"""

from __future__ import annotations

import enum
from collections.abc import Container, Mapping
from dataclasses import dataclass

from rocketnode.core.auth_rules import (
    CREATE_KEY,
    check_auth_events_selection,
    check_auth_rules,
)
from rocketnode.core.errors import AuthError, SoftFailed
from rocketnode.core.pdu import Pdu, StateKey


def check_against_auth_events(
    pdu: Pdu,
    auth_events: Mapping[str, Pdu],
    rejected: Container[str] = frozenset(),
    create_event: Pdu | None = None,
) -> None:
    """Step 4 of the spec: the auth rules against the event's own auth events.

    ``auth_events`` maps event IDs to events and holds at least ``pdu``'s auth events;
    ``rejected`` holds the IDs of events rejected before. From room version 12 the create event
    is not an auth event, so the caller passes it as ``create_event`` (it must be the event
    whose ID, with ``!``, is the room ID, and not rejected); before, ``create_event`` is not
    needed and not read. Raises :class:`AuthError`: the event is rejected.
    """
    check_auth_events_selection(pdu, auth_events, rejected)
    state = {auth_events[e].state_tuple: auth_events[e] for e in pdu.auth_events}
    if pdu.room_version.room_id_from_create_event and pdu.type != "m.room.create":
        if create_event is None:
            raise AuthError(f"{pdu.event_id}: the room's create event is needed to check it")
        if create_event.event_id in rejected:
            raise AuthError(f"{pdu.event_id}: the room's create event was rejected")
        state[CREATE_KEY] = create_event
    check_auth_rules(pdu, state)


def check_against_state_before(pdu: Pdu, state_before: Mapping[StateKey, Pdu]) -> None:
    """Step 5: the auth rules against the state before the event (resolved from the states
    after its ``prev_events``). Raises :class:`AuthError`: the event is rejected."""
    check_auth_rules(pdu, state_before)


def check_soft_fail(pdu: Pdu, current_state: Mapping[StateKey, Pdu]) -> None:
    """Step 6: the auth rules against the room's current state, for an event that passed the
    earlier steps. Raises :class:`SoftFailed`: keep the event but do not relay it to clients
    or use it as a prev event."""
    try:
        check_auth_rules(pdu, current_state)
    except AuthError as exc:
        raise SoftFailed(f"soft failed against the current state: {exc.message}") from exc


class Outcome(enum.Enum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    SOFT_FAILED = "soft_failed"


@dataclass(frozen=True, slots=True)
class ReceiptVerdict:
    """What to do with a received PDU, and why when it is not accepted."""

    outcome: Outcome
    reason: str | None = None


def receipt_verdict(
    pdu: Pdu,
    auth_events: Mapping[str, Pdu],
    state_before: Mapping[StateKey, Pdu],
    current_state: Mapping[StateKey, Pdu],
    rejected: Container[str] = frozenset(),
    create_event: Pdu | None = None,
) -> ReceiptVerdict:
    """Steps 4 to 6 in order, for a PDU whose format, signatures and hashes were checked."""
    try:
        check_against_auth_events(pdu, auth_events, rejected, create_event)
        check_against_state_before(pdu, state_before)
    except AuthError as exc:
        return ReceiptVerdict(Outcome.REJECTED, exc.message)
    try:
        check_soft_fail(pdu, current_state)
    except SoftFailed as exc:
        return ReceiptVerdict(Outcome.SOFT_FAILED, exc.message)
    return ReceiptVerdict(Outcome.ACCEPTED)
