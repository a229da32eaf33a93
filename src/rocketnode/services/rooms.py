"""The one path by which any event enters a room, local or remote.

Local events are built on the room's forward extremities, checked against the authorisation
rules and persisted together with the new forward extremities, current state and outbound
federation queue. Remote events (see ``federation``) arrive already checked and enter through
:meth:`RoomService.persist_checked`, which updates the same structures the same way.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from rocketnode.core.auth_rules import auth_types_for_event, check_auth_rules
from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.core.ids import server_name_of
from rocketnode.core.pdu import Pdu, StateKey, hash_and_sign
from rocketnode.core.power_levels import NAMED_LEVEL_DEFAULTS, named_power_level, user_power_level
from rocketnode.core.room_versions import RoomVersion
from rocketnode.core.signing import SigningKey
from rocketnode.services.clock import Clock
from rocketnode.services.notifier import Notifier
from rocketnode.services.room_state import RoomSnapshot, RoomStates, StateMap
from rocketnode.storage.ports import EventStore, RoomStore, StateStore
from rocketnode.storage.records import (
    AFTER,
    EventPersist,
    MembershipChange,
    NewStateGroup,
    PersistResult,
    StateGroupRef,
    StoredEvent,
)

logger = logging.getLogger(__name__)

MAX_PREV_EVENTS = 10
MAX_DEPTH = 2**53 - 1
CREATE_KEY: StateKey = ("m.room.create", "")


@dataclass(frozen=True, slots=True)
class Identity:
    """Who this server is: its name and the key it signs with."""

    server_name: str
    signing_key: SigningKey


@dataclass(frozen=True, slots=True)
class EventSpec:
    """An event to build: who sends it, its type, content and state key."""

    sender: str
    event_type: str
    content: dict[str, Any]
    state_key: str | None = None


@dataclass(frozen=True, slots=True)
class Txn:
    """A client's transaction ID, scoped to its device."""

    user_id: str
    device_id: str
    txn_id: str


@dataclass(frozen=True, slots=True)
class CheckedEvent:
    """A remote PDU that passed the receipt checks, with the state before it."""

    pdu: Pdu
    state_before: StateMap
    state_before_group: StateGroupRef
    rejected: str | None = None
    soft_failed: bool = False


class RoomService:
    def __init__(
        self,
        identity: Identity,
        clock: Clock,
        events: EventStore,
        state: StateStore,
        rooms: RoomStore,
        states: RoomStates,
        notifier: Notifier,
    ) -> None:
        self._identity = identity
        self._clock = clock
        self._events = events
        self._state = state
        self._rooms = rooms
        self.states = states
        self._notifier = notifier
        self._locks: dict[str, asyncio.Lock] = {}
        self._txns_in_flight: dict[Txn, asyncio.Future[str]] = {}
        self.on_persisted: list[Callable[[StoredEvent, tuple[str, ...]], None]] = []
        """Called after each event is stored, with the servers it was queued for."""

    @property
    def server_name(self) -> str:
        return self._identity.server_name

    @property
    def notifier(self) -> Notifier:
        return self._notifier

    @property
    def signing_key(self) -> SigningKey:
        return self._identity.signing_key

    def now_ms(self) -> int:
        return self._clock.now_ms()

    def is_local(self, user_id: str) -> bool:
        return server_name_of(user_id) == self._identity.server_name

    def room_lock(self, room_id: str) -> asyncio.Lock:
        lock = self._locks.get(room_id)
        if lock is None:
            lock = self._locks[room_id] = asyncio.Lock()
        return lock

    # -- local events ------------------------------------------------------------------------

    def _create_event(
        self, creator: str, room_version: RoomVersion, content: dict[str, Any]
    ) -> Pdu:
        data: dict[str, Any] = {
            "type": "m.room.create",
            "state_key": "",
            "sender": creator,
            "content": content,
            "origin_server_ts": self._clock.now_ms(),
            "depth": 1,
            "prev_events": [],
            "auth_events": [],
        }
        if not room_version.room_id_from_create_event:
            data["room_id"] = f"!{secrets.token_urlsafe(18)}:{self.server_name}"
        pdu = hash_and_sign(room_version, data, self.server_name, self._identity.signing_key)
        check_auth_rules(pdu, {})
        return pdu

    async def build_new_room(
        self, creator: str, room_version: RoomVersion, create_content: dict[str, Any],
        specs: Sequence[EventSpec],
    ) -> list[Pdu]:
        """The create event and ``specs`` built on top of each other in memory, each checked
        against the state before it (AuthError if one is refused). Nothing is stored."""
        create = self._create_event(creator, room_version, create_content)
        snapshot = RoomSnapshot(create.room_id, room_version, [create.event_id],
                                {CREATE_KEY: create.event_id}, None, create.depth)
        built = {create.event_id: create}
        for spec in specs:
            pdu = await self.build_event(snapshot, spec.sender, spec.event_type, spec.content,
                                         spec.state_key)
            keys = auth_types_for_event(room_version, pdu.type, pdu.sender, pdu.state_key,
                                        pdu.content) | {CREATE_KEY}
            check_auth_rules(pdu, {k: built[snapshot.state[k]] for k in keys
                                   if k in snapshot.state})
            built[pdu.event_id] = pdu
            snapshot.extremities, snapshot.depth = [pdu.event_id], pdu.depth
            if pdu.is_state:
                snapshot.state[pdu.state_tuple] = pdu.event_id
        return list(built.values())

    async def store_new_room(self, pdus: Sequence[Pdu]) -> None:
        """Store a room built by :meth:`build_new_room`, all its events in one transaction."""
        create, last = pdus[0], pdus[-1]
        room_id = create.room_id
        await self._rooms.store_room(room_id, create.room_version.identifier, create.sender,
                                     create.origin_server_ts)
        state: StateMap = {}
        requests = []
        for pdu in pdus:
            before = dict(state)
            delta = {pdu.state_tuple: pdu.event_id} if pdu.is_state else {}
            state.update(delta)
            changes = tuple(
                MembershipChange(key[1], room_id, pdu.membership or "", pdu.event_id)
                for key in delta if key[0] == "m.room.member" and self.is_local(key[1])
            )
            requests.append(EventPersist(
                pdu, self._clock.now_ms(), state_before=NewStateGroup(None, before),
                forward_extremities=(pdu.event_id,), current_state_group=AFTER,
                current_state_delta=delta, membership_changes=changes,
                replaces_state=before.get(pdu.state_tuple) if pdu.is_state else None))
        async with self.room_lock(room_id):
            results = await self._events.persist_events(requests)
            for pdu, request, result in zip(pdus, requests, results, strict=True):
                stored = StoredEvent(pdu, result.stream_ordering, request.received_ts,
                                     replaces_state=request.replaces_state)
                self.states.cache.put(stored)
                for callback in self.on_persisted:
                    callback(stored, ())
            self.states.remember(RoomSnapshot(room_id, create.room_version, [last.event_id],
                                              state, results[-1].current_state_group,
                                              last.depth))
        users = [c.user_id for r in requests for c in r.membership_changes]
        self._notifier.notify(results[-1].stream_ordering, [room_id], users)

    async def send(
        self,
        room_id: str,
        sender: str,
        event_type: str,
        content: dict[str, Any],
        state_key: str | None = None,
        txn: Txn | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Pdu:
        """Build, sign, authorise and persist a local event; return it.

        With ``txn``, a retry of the same transaction returns the first event instead.
        """
        if txn is None:
            return await self._send(room_id, sender, event_type, content, state_key, None, extra)
        existing = await self._events.get_txn_event_id(txn.user_id, txn.device_id, txn.txn_id)
        if existing is not None:
            return await self._pdu(existing)
        in_flight = self._txns_in_flight.get(txn)
        if in_flight is not None:
            return await self._pdu(await asyncio.shield(in_flight))
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._txns_in_flight[txn] = future
        try:
            pdu = await self._send(room_id, sender, event_type, content, state_key, txn, extra)
            future.set_result(pdu.event_id)
            return pdu
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiting retries see it through shield
            raise
        finally:
            del self._txns_in_flight[txn]

    async def _pdu(self, event_id: str) -> Pdu:
        found = await self.states.pdus([event_id])
        if event_id not in found:
            raise MatrixError(Errcode.NOT_FOUND, f"Unknown event {event_id}", 404)
        return found[event_id]

    async def _send(
        self, room_id: str, sender: str, event_type: str, content: dict[str, Any],
        state_key: str | None, txn: Txn | None, extra: Mapping[str, Any] | None,
    ) -> Pdu:
        async with self.room_lock(room_id):
            snapshot = await self._require_snapshot(room_id)
            pdu = await self.build_event(
                snapshot, sender, event_type, content, state_key, extra
            )
            await self.check_local(pdu, snapshot.state)
            await self._persist(
                pdu, snapshot, snapshot.state_group or NewStateGroup(None, snapshot.state),
                snapshot.state, rejected=None, soft_failed=False, txn=txn,
            )
            return pdu

    async def _require_snapshot(self, room_id: str) -> RoomSnapshot:
        snapshot = await self.states.snapshot(room_id)
        if snapshot is None:
            raise MatrixError(Errcode.NOT_FOUND, f"Unknown room {room_id}", 404)
        return snapshot

    async def build_event(
        self,
        snapshot: RoomSnapshot,
        sender: str,
        event_type: str,
        content: dict[str, Any],
        state_key: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Pdu:
        """A signed PDU on top of ``snapshot`` (not checked, not stored)."""
        version = snapshot.room_version
        auth_keys = auth_types_for_event(version, event_type, sender, state_key, content)
        auth_events = sorted(snapshot.state[key] for key in auth_keys if key in snapshot.state)
        prev_events = snapshot.extremities[-MAX_PREV_EVENTS:]
        data: dict[str, Any] = {
            "room_id": snapshot.room_id,
            "type": event_type,
            "sender": sender,
            "content": content,
            "origin_server_ts": self._clock.now_ms(),
            "depth": min(snapshot.depth + 1, MAX_DEPTH),
            "prev_events": prev_events,
            "auth_events": auth_events,
        }
        if state_key is not None:
            data["state_key"] = state_key
        if extra:
            data.update(extra)
        return hash_and_sign(version, data, self.server_name, self._identity.signing_key)

    async def auth_state_for(self, pdu: Pdu, state: Mapping[StateKey, str]) -> dict[StateKey, Pdu]:
        """The PDUs of ``state`` that the auth rules look at for ``pdu`` (create included)."""
        keys = auth_types_for_event(
            pdu.room_version, pdu.type, pdu.sender, pdu.state_key, pdu.content
        )
        keys.add(CREATE_KEY)
        return await self.states.state_pdus(state, keys)

    async def check_local(self, pdu: Pdu, state: Mapping[StateKey, str]) -> None:
        """Authorise a locally built event against ``state``; AuthError -> ``M_FORBIDDEN``."""
        check_auth_rules(pdu, await self.auth_state_for(pdu, state))

    async def persist_local_signed(self, pdu: Pdu) -> StoredEvent:
        """Persist a local event that was built earlier and co-signed remotely (an invite)."""
        async with self.room_lock(pdu.room_id):
            before_ref, state_before = await self.state_before(pdu)
            await self.check_local(pdu, state_before)
            snapshot = await self._require_snapshot(pdu.room_id)
            return await self._persist(
                pdu, snapshot, before_ref, state_before, rejected=None, soft_failed=False
            )

    async def state_before(self, pdu: Pdu) -> tuple[StateGroupRef, StateMap]:
        """The state before ``pdu``: after its prev_events, resolved if there are several."""
        if not pdu.prev_events:
            return NewStateGroup(None, {}), {}
        snapshot = await self.states.snapshot(pdu.room_id)
        if (snapshot is not None and snapshot.state_group is not None
                and list(pdu.prev_events) == snapshot.extremities):
            return snapshot.state_group, dict(snapshot.state)  # built on our current tip
        states = await self.states.state_after(list(pdu.prev_events))
        if len(states) == 1:
            return states[0]
        resolved = await self.states.resolve(pdu.room_version, [s for _, s in states])
        base_group, base = states[0]
        delta = {k: v for k, v in resolved.items() if base.get(k) != v}
        return NewStateGroup(base_group, delta), resolved

    # -- persistence (local and remote) ------------------------------------------------------

    async def persist_outliers(self, requests: list[EventPersist]) -> None:
        """Store events outside the room graph (auth chains, fetched state, invites)."""
        if not requests:
            return
        results = await self._events.persist_events(requests)
        for request in requests:
            self.states.cache.drop(request.pdu.event_id)
        users = [c.user_id for r in requests for c in r.membership_changes]
        rooms = [c.room_id for r in requests for c in r.membership_changes]
        if users:
            self._notifier.notify(max(r.stream_ordering for r in results), rooms, users)

    async def persist_checked(
        self, event: CheckedEvent, backfilled: bool = False, relay_from: str | None = None,
        destinations: set[str] | None = None, backfill_position: int | None = None,
        own_join: bool = False,
    ) -> StoredEvent:
        """Persist a remote event that passed the receipt checks (call with the room lock).

        With ``relay_from``, this server is the resident server of a join, leave or knock
        handshake and sends the event on to the other servers in the room. ``own_join``: the
        event is this server's join through a resident server; whatever this server last saw
        of the room (before it left) is stale, so the join becomes the only forward extremity.
        """
        snapshot = await self.states.snapshot(event.pdu.room_id)
        if own_join and snapshot is not None:
            snapshot = replace(snapshot, extremities=[])
        if relay_from is not None and event.rejected is None and not event.soft_failed:
            destinations = await self._destinations(event.pdu, True)
            destinations.discard(relay_from)
        elif destinations is None:
            destinations = set()
        return await self._persist(
            event.pdu, snapshot, event.state_before_group, event.state_before,
            rejected=event.rejected, soft_failed=event.soft_failed, backfilled=backfilled,
            destinations=destinations, backfill_position=backfill_position,
        )

    async def _persist(
        self,
        pdu: Pdu,
        snapshot: RoomSnapshot | None,
        before_ref: StateGroupRef,
        state_before: StateMap,
        rejected: str | None,
        soft_failed: bool,
        txn: Txn | None = None,
        backfilled: bool = False,
        destinations: set[str] | None = None,
        backfill_position: int | None = None,
    ) -> StoredEvent:
        """Store an event and the room's new state. ``destinations`` defaults to every other
        server in the room for local events and none for remote ones."""
        accepted = rejected is None and not soft_failed and not backfilled
        after = dict(state_before)
        if pdu.is_state and rejected is None:
            after[pdu.state_tuple] = pdu.event_id
        old_state = snapshot.state if snapshot else {}
        new_extremities, new_state, current_ref = await self._next_room_state(
            pdu, snapshot, after, accepted
        )
        delta = {k: v for k, v in new_state.items() if old_state.get(k) != v}
        if destinations is None:
            destinations = (await self._destinations(pdu, accepted)
                            if self.is_local(pdu.sender) else set())
        request = EventPersist(
            pdu=pdu,
            received_ts=self._clock.now_ms(),
            state_before=before_ref,
            rejected=rejected,
            soft_failed=soft_failed,
            backfilled=backfilled,
            backfill_position=backfill_position,
            forward_extremities=tuple(new_extremities) if accepted else None,
            current_state_group=current_ref if accepted else None,
            current_state_delta=delta if accepted else {},
            membership_changes=await self._membership_changes(pdu, delta) if accepted else (),
            txn=(txn.user_id, txn.device_id, txn.txn_id) if txn else None,
            outbound_destinations=tuple(sorted(destinations)),
            applies_redaction_of=(
                await self._redaction_target(pdu, state_before) if rejected is None else None
            ),
            replaces_state=state_before.get(pdu.state_tuple) if pdu.is_state else None,
        )
        try:
            result = await self._events.persist_event(request)
        except BaseException:
            self.states.forget(pdu.room_id)
            raise
        stored = StoredEvent(
            pdu, result.stream_ordering, request.received_ts, rejected, False, soft_failed,
            txn_device=txn.device_id if txn else None, txn_id=txn.txn_id if txn else None,
            replaces_state=request.replaces_state,
        )
        self.states.cache.put(stored)
        if request.applies_redaction_of is not None:
            self.states.cache.drop(request.applies_redaction_of)
        if accepted:
            if snapshot is not None:
                self._count_membership_change(snapshot, pdu, delta, old_state)
            self._update_snapshot(pdu, snapshot, new_extremities, new_state, result)
        self._notifier.notify(
            result.stream_ordering,
            room_ids=[pdu.room_id],
            user_ids=[change.user_id for change in request.membership_changes],
        )
        for callback in self.on_persisted:
            callback(stored, request.outbound_destinations)
        return stored

    async def _next_room_state(
        self, pdu: Pdu, snapshot: RoomSnapshot | None, after: StateMap, accepted: bool
    ) -> tuple[list[str], StateMap, StateGroupRef | Literal["after"]]:
        """New forward extremities, current state and its group once ``pdu`` is in."""
        if not accepted:
            return [], {}, AFTER
        previous = set(pdu.prev_events)
        others = [e for e in (snapshot.extremities if snapshot else []) if e not in previous]
        if others:
            others = [e for e in others if not await self._is_ancestor(e, pdu)]
        extremities = [*others, pdu.event_id]
        if not others:
            return extremities, after, AFTER
        states = await self.states.state_after(others)
        version = pdu.room_version
        resolved = await self.states.resolve(version, [after, *(s for _, s in states)],
                                             unstored=[pdu])
        if resolved == after:
            return extremities, after, AFTER
        base_group, base_state = states[0]
        delta = {k: v for k, v in resolved.items() if base_state.get(k) != v}
        return extremities, resolved, NewStateGroup(base_group, delta)

    async def _is_ancestor(self, event_id: str, pdu: Pdu) -> bool:
        """Whether ``event_id`` is reachable through ``pdu``'s prev_events (a short walk)."""
        frontier, seen = list(pdu.prev_events), set()
        for _ in range(64):
            if not frontier:
                return False
            if event_id in frontier:
                return True
            seen.update(frontier)
            events = await self.states.events(frontier)
            frontier = [p for e in events.values() for p in e.pdu.prev_events if p not in seen]
        return False

    async def _membership_changes(
        self, pdu: Pdu, delta: Mapping[StateKey, str]
    ) -> tuple[MembershipChange, ...]:
        """Local users whose membership the state ``delta`` changes."""
        wanted = {
            state_key: event_id
            for (event_type, state_key), event_id in delta.items()
            if event_type == "m.room.member" and self.is_local(state_key)
        }
        if not wanted:
            return ()
        known = {pdu.event_id: pdu}
        known.update(await self.states.pdus(e for e in wanted.values() if e != pdu.event_id))
        return tuple(
            MembershipChange(user_id, pdu.room_id, membership, event_id)
            for user_id, event_id in wanted.items()
            if event_id in known and (membership := known[event_id].membership) is not None
        )

    async def joined_servers(self, room_id: str) -> set[str]:
        """The servers with a member joined to the room now (kept with the room's snapshot,
        so sending in a big room does not read its member list each time)."""
        snapshot = await self.states.snapshot(room_id)
        if snapshot is None:
            return set()
        if snapshot.joined_per_server is None:
            snapshot.joined_per_server = await self._state.joined_member_counts(room_id)
        return {server for server, count in snapshot.joined_per_server.items() if count > 0}

    def _count_membership_change(self, snapshot: RoomSnapshot, pdu: Pdu,
                                 delta: Mapping[StateKey, str], old: StateMap) -> None:
        """Keep ``joined_per_server`` in step with a state change (or drop it)."""
        counts = snapshot.joined_per_server
        members = [key for key in delta if key[0] == "m.room.member"]
        if counts is None or not members:
            return
        if members != [pdu.state_tuple] or delta[pdu.state_tuple] != pdu.event_id:
            snapshot.joined_per_server = None  # resolved state: count again when asked
            return
        previous_id = old.get(pdu.state_tuple)
        previous = self.states.cache.get(previous_id) if previous_id else None
        if previous_id is not None and previous is None:
            snapshot.joined_per_server = None
            return
        server = server_name_of(pdu.state_key or "")
        was = previous is not None and previous.pdu.membership == "join"
        now = pdu.membership == "join"
        counts[server] = counts.get(server, 0) + int(now) - int(was)

    async def _destinations(self, pdu: Pdu, accepted: bool) -> set[str]:
        if not accepted:
            return set()
        servers = await self.joined_servers(pdu.room_id)
        if pdu.type == "m.room.member" and pdu.state_key:
            servers.add(server_name_of(pdu.state_key))
        servers.discard(self.server_name)
        return servers

    def _update_snapshot(
        self, pdu: Pdu, snapshot: RoomSnapshot | None, extremities: list[str],
        state: StateMap, result: PersistResult,
    ) -> None:
        if snapshot is None:
            snapshot = RoomSnapshot(pdu.room_id, pdu.room_version, [], {}, None, 0)
        snapshot.extremities = extremities
        snapshot.state = state
        snapshot.state_group = result.current_state_group
        snapshot.depth = max(snapshot.depth, pdu.depth)
        self.states.remember(snapshot)

    # -- redactions --------------------------------------------------------------------------

    async def check_may_redact(self, room_id: str, user_id: str, event_id: str) -> None:
        """A user may redact their own events, or others' with the room's redact level."""
        events = await self.states.events([event_id])
        target = events.get(event_id)
        if target is None or target.pdu.room_id != room_id:
            raise MatrixError(Errcode.NOT_FOUND, "Event not found", 404)
        if target.pdu.sender == user_id:
            return
        snapshot = await self._require_snapshot(room_id)
        if not await self._has_redact_power(user_id, snapshot.state):
            raise MatrixError(Errcode.FORBIDDEN, "You may not redact other users' events", 403)

    async def _has_redact_power(self, user_id: str, state: Mapping[StateKey, str]) -> bool:
        keys = [CREATE_KEY, ("m.room.power_levels", "")]
        pdus = await self.states.state_pdus(state, keys)
        level = named_power_level("redact", pdus, NAMED_LEVEL_DEFAULTS["redact"])
        return user_power_level(user_id, pdus) >= level

    async def _redaction_target(self, pdu: Pdu, state_before: Mapping[StateKey, str]) -> str | None:
        """The event a redaction applies to, if it may (spec "Handling redactions")."""
        target_id = pdu.redacts
        if pdu.type != "m.room.redaction" or target_id is None:
            return None
        target = (await self.states.events([target_id])).get(target_id)
        if target is None or target.pdu.room_id != pdu.room_id:
            return None
        if server_name_of(target.pdu.sender) == server_name_of(pdu.sender):
            return target_id
        return target_id if await self._has_redact_power(pdu.sender, state_before) else None

    # -- reads used by several services ------------------------------------------------------

    async def reserve_backfill_positions(self, count: int) -> list[int]:
        return await self._events.reserve_backfill_positions(count)

    async def auth_chain_ids(self, event_ids: Iterable[str]) -> set[str]:
        return await self._events.get_auth_chain_ids(event_ids)

    async def current_state_pdus(
        self, room_id: str, keys: Iterable[StateKey] | None = None
    ) -> dict[StateKey, Pdu]:
        snapshot = await self._require_snapshot(room_id)
        wanted = snapshot.state.keys() if keys is None else keys
        return await self.states.state_pdus(snapshot.state, wanted)

    async def membership(self, room_id: str, user_id: str) -> str | None:
        snapshot = await self.states.snapshot(room_id)
        if snapshot is None:
            return None
        found = await self.states.state_pdus(snapshot.state, [("m.room.member", user_id)])
        event = found.get(("m.room.member", user_id))
        return event.membership if event else None
