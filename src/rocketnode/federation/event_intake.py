"""Taking remote events into a room: the checks performed on receipt of a PDU, then the room
service (server-server API "Checks performed on receipt of a PDU", "Retrieving event
authorisation information", "Backfilling and retrieving missing events").

Every remote PDU that enters a room — from ``/send``, a join, ``get_missing_events``, state
fetches or backfill — goes through :class:`EventIntake`:

1. format (``Pdu.from_json``) and signatures/hashes (the keyring): dropped if they fail,
   redacted if only the content hash is wrong;
2. missing ``prev_events`` are pulled with ``get_missing_events``; if the gap cannot be closed,
   the state before the event is fetched with ``state_ids`` instead;
3. missing auth events are fetched and checked first (stored as outliers);
4. the auth rules against the auth events, the state before the event and the current state:
   rejected or soft-failed events are stored as such;
5. :meth:`RoomService.persist_checked` stores it with the room's new state.

Callers hold the room's lock (``RoomService.room_lock``) around :meth:`EventIntake.take`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from rocketnode.core.auth_rules import CREATE_KEY
from rocketnode.core.errors import (
    MatrixError,
    PduFormatError,
    RemoteServerError,
    SignatureError,
)
from rocketnode.core.pdu import Pdu, SignatureVerdict
from rocketnode.core.receipt import Outcome, check_against_auth_events, receipt_verdict
from rocketnode.core.room_versions import RoomVersion
from rocketnode.federation.client import FederationClient, path_segment
from rocketnode.federation.keyring import Keyring
from rocketnode.services.room_state import StateMap
from rocketnode.services.rooms import CheckedEvent, RoomService
from rocketnode.storage.records import EventPersist, NewStateGroup, StoredEvent

logger = logging.getLogger(__name__)

MISSING_EVENTS_BATCH = 100
MISSING_EVENTS_ROUNDS = 100
"""At most this many get_missing_events rounds (of up to 100 events) close one gap."""
MAX_AUTH_FETCH = 2000
BULK_FETCH_THRESHOLD = 20


class EventIntake:
    def __init__(self, rooms: RoomService, keyring: Keyring, client: FederationClient) -> None:
        self._rooms = rooms
        self._keyring = keyring
        self._client = client
        self._events = rooms.states

    # -- parsing and signatures --------------------------------------------------------------

    async def parse_verified(self, room_version: RoomVersion, raw: Sequence[Any]
                             ) -> list[Pdu | MatrixError]:
        """Format and signature checks for many PDUs; each result is the (possibly redacted)
        PDU or the error that dropped it."""
        parsed: list[Pdu | MatrixError] = []
        for item in raw:
            try:
                pdu = Pdu.from_json(room_version, item)
            except PduFormatError as exc:
                parsed.append(exc)
                continue
            origin = pdu.data.get("origin")
            if origin is not None and origin != pdu.origin:
                parsed.append(PduFormatError(f"{pdu.event_id}: origin is not the sender's server"))
            else:
                parsed.append(pdu)
        pdus = [p for p in parsed if isinstance(p, Pdu)]
        verdicts = iter(await self._keyring.verify_pdus(pdus))
        results: list[Pdu | MatrixError] = []
        for item in parsed:
            if not isinstance(item, Pdu):
                results.append(item)
                continue
            verdict = next(verdicts)
            if isinstance(verdict, SignatureError):
                results.append(verdict)
            elif verdict is SignatureVerdict.REDACT:
                logger.info("Content hash mismatch on %s: redacting", item.event_id)
                results.append(item.redacted())
            else:
                results.append(item)
        return results

    # -- the main path -----------------------------------------------------------------------

    async def take(self, origin: str, pdu: Pdu, backfilled: bool = False,
                   backfill_position: int | None = None) -> StoredEvent | None:
        """Check and store a verified remote PDU (room lock held); None if already known."""
        known = (await self._events.events([pdu.event_id])).get(pdu.event_id)
        if known is not None and not known.outlier:
            return None
        missing = await self._missing(pdu.prev_events)
        if missing and not backfilled:
            await self._fill_gap(origin, pdu)
            missing = await self._missing(pdu.prev_events)
        before_ref: int | NewStateGroup
        if missing:
            before_ref, state_before = await self._state_from_remote(origin, pdu, missing)
        else:
            before_ref, state_before = await self._rooms.state_before(pdu)
        return await self.check_and_persist(origin, pdu, before_ref, state_before, backfilled,
                                            backfill_position=backfill_position)

    async def check_and_persist(
        self, origin: str, pdu: Pdu, before_ref: int | NewStateGroup, state_before: StateMap,
        backfilled: bool = False, relay: bool = False, destinations: set[str] | None = None,
        backfill_position: int | None = None, own_join: bool = False,
    ) -> StoredEvent:
        """Run the auth checks and store ``pdu`` (room lock held). ``relay``: this server is
        the resident of a handshake and sends the event on to the room. ``own_join``: this
        server's join completed with ``send_join``, whose state is the room's current state:
        what this server kept of the room from before (if it was in it once) is stale and
        must not soft-fail the join ("Checks performed on receipt of a PDU", step 6)."""
        await self.ensure_auth_events(origin, [pdu])
        auth = await self._events.events(pdu.auth_events)
        create = await self._create_event(pdu)
        rejected_ids = {e for e, stored in auth.items() if stored.rejected is not None}
        snapshot = await self._rooms.states.snapshot(pdu.room_id)
        # Soft failure (step 6) keeps new events from changing the room's present. A
        # backfilled event is history from before the current state: it is checked against
        # the state before it only, or a member who has left since would lose their messages
        # (Synapse does the same: it never soft-fails backfilled events).
        judged_now = not own_join and not backfilled
        current = snapshot.state if snapshot is not None and judged_now else state_before
        verdict = receipt_verdict(
            pdu,
            {e: stored.pdu for e, stored in auth.items()},
            await self._rooms.auth_state_for(pdu, state_before),
            await self._rooms.auth_state_for(pdu, current),
            rejected_ids,
            create,
        )
        if verdict.outcome is not Outcome.ACCEPTED:
            logger.info("%s %s: %s", pdu.event_id, verdict.outcome.value, verdict.reason)
        checked = CheckedEvent(
            pdu, state_before, before_ref,
            rejected=verdict.reason if verdict.outcome is Outcome.REJECTED else None,
            soft_failed=verdict.outcome is Outcome.SOFT_FAILED,
        )
        return await self._rooms.persist_checked(
            checked, backfilled=backfilled, relay_from=origin if relay else None,
            destinations=destinations, backfill_position=backfill_position, own_join=own_join)

    async def _create_event(self, pdu: Pdu) -> Pdu | None:
        if not pdu.room_version.room_id_from_create_event:
            return None
        create_id = "$" + pdu.room_id[1:]
        found = await self._events.events([create_id])
        return found[create_id].pdu if create_id in found else None

    async def _missing(self, event_ids: Iterable[str]) -> list[str]:
        wanted = list(event_ids)
        found = await self._events.events(wanted)
        return [e for e in wanted if e not in found or found[e].outlier]

    # -- auth events -------------------------------------------------------------------------

    async def ensure_auth_events(self, origin: str, pdus: Sequence[Pdu]) -> None:
        """Fetch, check and store as outliers every auth event of ``pdus`` we lack."""
        wanted = {a for p in pdus for a in p.auth_events}
        known = await self._events.events(wanted)
        missing = wanted - known.keys()
        if not missing:
            return
        room_id = pdus[0].room_id
        fetched: dict[str, Pdu] = {}
        for pdu in pdus:
            if set(pdu.auth_events) & missing:
                chain = await self._fetch_auth_chain(origin, room_id, pdu.event_id,
                                                     pdu.room_version)
                fetched.update({p.event_id: p for p in chain})
                if missing <= fetched.keys():
                    break
        await self.store_outliers(origin, fetched.values())

    async def _fetch_auth_chain(self, origin: str, room_id: str, event_id: str,
                                room_version: RoomVersion) -> list[Pdu]:
        path = (f"/_matrix/federation/v1/event_auth/{path_segment(room_id)}/"
                f"{path_segment(event_id)}")
        answer = await self._client.get(origin, path)
        raw = answer.get("auth_chain") if isinstance(answer, dict) else None
        if not isinstance(raw, list) or len(raw) > MAX_AUTH_FETCH:
            raise RemoteServerError(origin, "invalid event_auth answer")
        return [p for p in await self.parse_verified(room_version, raw) if isinstance(p, Pdu)]

    async def store_outliers(self, origin: str, pdus: Iterable[Pdu]) -> dict[str, StoredEvent]:
        """Check events against their own auth events (in auth order) and store them as
        outliers; events whose auth events are missing are dropped. Returns every one of
        ``pdus`` now known here (stored before or now), with its rejection if any."""
        pending = {p.event_id: p for p in pdus}
        known = await self._events.events(pending)
        pending = {e: p for e, p in pending.items() if e not in known}
        stored: dict[str, StoredEvent] = {}
        requests: list[EventPersist] = []
        for pdu in _auth_order(pending.values()):
            reason = self._outlier_rejection(pdu, known, stored, pending)
            if reason == "missing":
                continue
            event = StoredEvent(pdu, 0, 0, rejected=reason, outlier=True)
            stored[pdu.event_id] = event
            requests.append(EventPersist(pdu, self._rooms.now_ms(), outlier=True,
                                         rejected=reason))
        await self._rooms.persist_outliers(requests)
        return {**known, **stored}

    def _outlier_rejection(self, pdu: Pdu, known: dict[str, StoredEvent],
                           stored: dict[str, StoredEvent], pending: dict[str, Pdu]) -> str | None:
        auth: dict[str, Pdu] = {}
        rejected: set[str] = set()
        for event_id in (*pdu.auth_events, "$" + pdu.room_id[1:]):
            event = stored.get(event_id) or known.get(event_id)
            if event is not None:
                auth[event_id] = event.pdu
                if event.rejected is not None:
                    rejected.add(event_id)
        if any(a not in auth for a in pdu.auth_events):
            return "missing"
        create = auth.get("$" + pdu.room_id[1:])
        try:
            check_against_auth_events(pdu, auth, rejected, create)
        except MatrixError as exc:
            return exc.message
        return None

    # -- gaps --------------------------------------------------------------------------------

    async def _fill_gap(self, origin: str, pdu: Pdu) -> None:
        """Pull the events between our forward extremities and ``pdu`` and take them in."""
        snapshot = await self._rooms.states.snapshot(pdu.room_id)
        earliest = snapshot.extremities if snapshot else []
        collected: dict[str, Pdu] = {}
        frontier = [pdu.event_id]
        for _ in range(MISSING_EVENTS_ROUNDS):
            batch = await self._get_missing_events(origin, pdu, earliest, frontier)
            new = [p for p in batch if p.event_id not in collected]
            if not new:
                break
            collected.update({p.event_id: p for p in new})
            everything = [pdu, *collected.values()]
            unknown_prevs = {prev for p in everything for prev in p.prev_events} - {
                p.event_id for p in everything}
            unknown_prevs = set(await self._missing(unknown_prevs))
            if not unknown_prevs:
                break
            frontier = [p.event_id for p in everything if set(p.prev_events) & unknown_prevs]
        for event in sorted(collected.values(), key=lambda p: (p.depth, p.event_id)):
            try:
                await self.take(origin, event, backfilled=False)
            except (MatrixError, RemoteServerError) as exc:
                logger.info("Could not take missing event %s: %s", event.event_id, exc)

    async def _get_missing_events(self, origin: str, pdu: Pdu, earliest: list[str],
                                  latest: list[str]) -> list[Pdu]:
        path = f"/_matrix/federation/v1/get_missing_events/{path_segment(pdu.room_id)}"
        body = {"earliest_events": earliest, "latest_events": latest,
                "limit": MISSING_EVENTS_BATCH, "min_depth": 0}
        try:
            answer = await self._client.post(origin, path, body)
        except RemoteServerError as exc:
            logger.info("get_missing_events from %s failed: %s", origin, exc)
            return []
        raw = answer.get("events") if isinstance(answer, dict) else None
        if not isinstance(raw, list):
            return []
        return [p for p in await self.parse_verified(pdu.room_version, raw[:MISSING_EVENTS_BATCH])
                if isinstance(p, Pdu) and p.room_id == pdu.room_id]

    async def _state_from_remote(self, origin: str, pdu: Pdu, missing: list[str]
                                 ) -> tuple[NewStateGroup, StateMap]:
        """The state before ``pdu`` when some prev events stay unknown: ask ``origin``."""
        known_prevs = [p for p in pdu.prev_events if p not in missing]
        states = [s for _, s in await self._rooms.states.state_after(known_prevs)]
        for prev in missing:
            states.append(await self.state_after_remote(origin, pdu.room_id, prev,
                                                        pdu.room_version))
        resolved = await self._rooms.states.resolve(pdu.room_version, states)
        return NewStateGroup(None, resolved), resolved

    async def state_after_remote(self, origin: str, room_id: str, event_id: str,
                                 room_version: RoomVersion) -> StateMap:
        """The state after a remote event, fetched with ``state_ids`` (events stored as
        outliers)."""
        path = f"/_matrix/federation/v1/state_ids/{path_segment(room_id)}"
        answer = await self._client.get(origin, path, {"event_id": event_id})
        if not isinstance(answer, dict):
            raise RemoteServerError(origin, "invalid state_ids answer")
        pdu_ids = [e for e in answer.get("pdu_ids", []) if isinstance(e, str)]
        auth_ids = [e for e in answer.get("auth_chain_ids", []) if isinstance(e, str)]
        wanted = [*auth_ids, *pdu_ids, event_id]
        unknown = [e for e in wanted if e not in await self._events.events(wanted)]
        if len(unknown) > BULK_FETCH_THRESHOLD:
            await self._fetch_full_state(origin, room_id, event_id, room_version)
        await self.fetch_events(origin, room_id, wanted, room_version)
        events = await self._events.events([*pdu_ids, event_id])
        state = {events[e].pdu.state_tuple: e for e in pdu_ids
                 if e in events and events[e].pdu.is_state}
        event = events.get(event_id)
        if event is not None and event.pdu.is_state and event.rejected is None:
            state[event.pdu.state_tuple] = event_id
        if CREATE_KEY not in state and not room_version.room_id_from_create_event:
            raise RemoteServerError(origin, "state_ids answer has no create event")
        return state

    async def _fetch_full_state(self, origin: str, room_id: str, event_id: str,
                                room_version: RoomVersion) -> None:
        """Fetch the state at an event and its auth chain in one ``/state`` request."""
        path = f"/_matrix/federation/v1/state/{path_segment(room_id)}"
        try:
            answer = await self._client.get(origin, path, {"event_id": event_id})
        except RemoteServerError as exc:
            logger.info("/state from %s failed: %s", origin, exc)
            return
        if not isinstance(answer, dict):
            return
        raw = [*answer.get("auth_chain", []), *answer.get("pdus", [])]
        pdus = [p for p in await self.parse_verified(room_version, raw)
                if isinstance(p, Pdu) and p.room_id == room_id]
        await self.store_outliers(origin, pdus)

    async def fetch_events(self, origin: str, room_id: str, event_ids: Sequence[str],
                           room_version: RoomVersion) -> None:
        """Fetch the events we lack with ``/event`` and store them as outliers."""
        wanted = list(dict.fromkeys(event_ids))
        known = await self._events.events(wanted)
        missing = [e for e in wanted if e not in known]
        raw: list[Any] = []
        for event_id in missing:
            try:
                answer = await self._client.get(
                    origin, f"/_matrix/federation/v1/event/{path_segment(event_id)}")
            except RemoteServerError as exc:
                logger.info("Fetching %s from %s failed: %s", event_id, origin, exc)
                continue
            pdus = answer.get("pdus") if isinstance(answer, dict) else None
            if isinstance(pdus, list) and pdus:
                raw.append(pdus[0])
        pdus = [p for p in await self.parse_verified(room_version, raw)
                if isinstance(p, Pdu) and p.room_id == room_id]
        await self.store_outliers(origin, pdus)


def _auth_order(pdus: Iterable[Pdu]) -> list[Pdu]:
    """Order events so that each comes after the auth events among them (iterative DFS)."""
    by_id = {p.event_id: p for p in pdus}
    ordered: list[Pdu] = []
    placed: set[str] = set()
    for start in sorted(by_id.values(), key=lambda p: (p.depth, p.event_id)):
        stack: list[tuple[str, bool]] = [(start.event_id, False)]
        while stack:
            event_id, children_done = stack.pop()
            if children_done:
                ordered.append(by_id[event_id])
                continue
            if event_id in placed or event_id not in by_id:
                continue
            placed.add(event_id)
            stack.append((event_id, True))
            stack.extend((a, False) for a in by_id[event_id].auth_events if a not in placed)
    return ordered
