"""Signed PDUs for the storage contract tests, and persisting them as the room service does.

Storage checks no authorisation rules, only shapes, so these events carry whatever the test
needs.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from rocketnode.core.pdu import Pdu, hash_and_sign
from rocketnode.core.room_versions import V10, RoomVersion
from rocketnode.core.signing import SigningKey
from rocketnode.storage.ports import Stores
from rocketnode.storage.records import AFTER, EventPersist, NewStateGroup, PersistResult

SERVER = "storage.test"
KEY = SigningKey("t", bytes(range(32)))
ALICE = f"@alice:{SERVER}"
BOB = f"@bob:{SERVER}"
REMOTE = "@carol:remote.test"

_room_numbers = itertools.count(1)


class RoomDag:
    """Builds the events of one room; each new event follows the previous one by default."""

    def __init__(self, room_version: RoomVersion = V10, room_id: str | None = None) -> None:
        self.room_version = room_version
        self.room_id = room_id or f"!room{next(_room_numbers)}:{SERVER}"
        self.head: list[str] = []
        self.depth = 0
        self._ts = itertools.count(1_700_000_000_000)

    def event(
        self,
        event_type: str,
        content: dict[str, Any] | None = None,
        sender: str = ALICE,
        state_key: str | None = None,
        prev_events: Sequence[str] | None = None,
        auth_events: Sequence[str] = (),
        extra: dict[str, Any] | None = None,
        advance: bool = True,
    ) -> Pdu:
        prev = list(self.head if prev_events is None else prev_events)
        data: dict[str, Any] = {
            "room_id": self.room_id,
            "type": event_type,
            "sender": sender,
            "content": content if content is not None else {},
            "origin_server_ts": next(self._ts),
            "depth": self.depth + 1,
            "prev_events": prev,
            "auth_events": list(auth_events),
        }
        if state_key is not None:
            data["state_key"] = state_key
        data.update(extra or {})
        pdu = hash_and_sign(self.room_version, data, SERVER, KEY)
        if advance:
            self.head = [pdu.event_id]
            self.depth += 1
        return pdu

    def create(self, creator: str = ALICE) -> Pdu:
        return self.event("m.room.create", {"room_version": self.room_version.identifier},
                          sender=creator, state_key="")

    def member(self, user_id: str, membership: str, **options: Any) -> Pdu:
        options.setdefault("sender", user_id)
        return self.event("m.room.member", {"membership": membership}, state_key=user_id,
                          **options)

    def message(self, body: str, sender: str = ALICE, **options: Any) -> Pdu:
        return self.event("m.room.message", {"msgtype": "m.text", "body": body},
                          sender=sender, **options)


class LinearRoom:
    """Persists one room's events in a line, each on top of the last, as local sends are."""

    def __init__(self, stores: Stores, dag: RoomDag | None = None) -> None:
        self.stores = stores
        self.dag = dag or RoomDag()
        self.state_group: int | None = None
        self.state: dict[tuple[str, str], str] = {}

    async def start(self, creator: str = ALICE, is_public: bool = False) -> PersistResult:
        """Store the room and its create event and the creator's join."""
        await self.stores.rooms.store_room(
            self.dag.room_id, self.dag.room_version.identifier, creator, 1_700_000_000_000,
            is_public=is_public,
        )
        await self.add(self.dag.create(creator))
        return await self.add(self.dag.member(creator, "join"))

    def request(self, pdu: Pdu, **overrides: Any) -> EventPersist:
        """The request the room service would make for ``pdu`` on top of the line."""
        delta = {pdu.state_tuple: pdu.event_id} if pdu.is_state else {}
        fields: dict[str, Any] = {
            "pdu": pdu,
            "received_ts": pdu.origin_server_ts + 5,
            "state_before": (
                NewStateGroup(None, {}) if self.state_group is None else self.state_group
            ),
            "forward_extremities": (pdu.event_id,),
            "current_state_group": AFTER,
            "current_state_delta": delta,
        }
        fields.update(overrides)
        return EventPersist(**fields)

    async def add(self, pdu: Pdu, **overrides: Any) -> PersistResult:
        request = self.request(pdu, **overrides)
        result = await self.stores.events.persist_event(request)
        self.accept(request, result)
        return result

    def accept(self, request: EventPersist, result: PersistResult) -> None:
        """Follow a persisted request: its state becomes the line's state."""
        if result.current_state_group is not None:
            self.state_group = result.current_state_group
            self.state.update(request.current_state_delta)
