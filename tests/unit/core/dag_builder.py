"""Builds room DAGs of signed PDUs for state resolution tests (see ``state_res_scenarios``).

A :class:`Room` owns the events; a :class:`Fork` is one line of history with its own state
after its last event. Events get their auth events by the spec's "auth events selection" from
the fork's state, ``prev_events`` from the fork's head, and are signed by the sender's server.
An event the authorisation rules refuse against the fork's state is not added: the helpers
return ``None``, so random scenarios may attempt anything.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rocketnode.core.auth_rules import check_auth_rules
from rocketnode.core.errors import AuthError
from rocketnode.core.pdu import Pdu, StateKey, hash_and_sign
from rocketnode.core.room_versions import RoomVersion
from rocketnode.core.signing import SigningKey

Authorise = Callable[[Pdu, Mapping[StateKey, Pdu]], None]
"""The authorisation rules: raise :class:`AuthError` if the event is not allowed."""

CREATE_KEY: StateKey = ("m.room.create", "")
POWER_LEVELS_KEY: StateKey = ("m.room.power_levels", "")
JOIN_RULES_KEY: StateKey = ("m.room.join_rules", "")


def signing_key_for(server_name: str) -> SigningKey:
    """A fixed signing key per server, so that event IDs are reproducible."""
    return SigningKey("test", hashlib.sha256(server_name.encode()).digest())


def server_of(user_id: str) -> str:
    return user_id.split(":", 1)[1]


@dataclass
class Room:
    """All events of one room, and the rules used to decide which are accepted."""

    room_version: RoomVersion
    authorise: Authorise = check_auth_rules
    events: dict[str, Pdu] = field(default_factory=dict)
    room_id: str = ""
    create_id: str = ""

    def create(
        self,
        creator: str,
        ts: int = 1_000,
        additional_creators: Iterable[str] = (),
    ) -> Fork:
        """Send the create event and the creator's join; return the fork that holds them."""
        content: dict[str, Any] = {"room_version": self.room_version.identifier}
        if not self.room_version.implicit_room_creator:
            content["creator"] = creator
        extra = list(additional_creators)
        if extra:
            content["additional_creators"] = extra
        data: dict[str, Any] = {
            "type": "m.room.create",
            "state_key": "",
            "sender": creator,
            "content": content,
            "prev_events": [],
            "auth_events": [],
            "depth": 1,
            "origin_server_ts": ts,
        }
        if not self.room_version.room_id_from_create_event:
            data["room_id"] = f"!room:{server_of(creator)}"
        create = hash_and_sign(
            self.room_version, data, server_of(creator), signing_key_for(server_of(creator))
        )
        self.events[create.event_id] = create
        self.room_id = create.room_id
        self.create_id = create.event_id
        fork = Fork(self, {CREATE_KEY: create.event_id}, [create.event_id], 1, ts)
        if fork.send(creator, "m.room.member", {"membership": "join"}, creator) is None:
            raise AssertionError("the creator could not join their own room")
        return fork

    def state_events(self, state: Mapping[StateKey, str]) -> dict[StateKey, Pdu]:
        return {key: self.events[event_id] for key, event_id in state.items()}

    def copy(self) -> Room:
        return Room(self.room_version, self.authorise, dict(self.events), self.room_id,
                    self.create_id)


@dataclass
class Fork:
    """One line of history: the state after its head, its head and its clock."""

    room: Room
    state: dict[StateKey, str]
    prev_events: list[str]
    depth: int
    ts: int

    def fork(self, room: Room | None = None) -> Fork:
        """A new line of history that starts where this one is now (in a copy of the room)."""
        return Fork(room or self.room, dict(self.state), list(self.prev_events), self.depth,
                    self.ts)

    def merge(self, others: Iterable[Fork], resolved: Mapping[StateKey, str]) -> None:
        """Continue from the heads of this fork and ``others``, with ``resolved`` as state."""
        forks = [self, *others]
        self.prev_events = sorted({e for fork in forks for e in fork.prev_events})[:20]
        self.depth = max(fork.depth for fork in forks)
        self.ts = max(fork.ts for fork in forks)
        self.state = dict(resolved)

    def send(
        self,
        sender: str,
        event_type: str,
        content: dict[str, Any],
        state_key: str | None = None,
        ts_step: int = 1,
    ) -> Pdu | None:
        """Create, sign and apply an event; ``None`` if the auth rules refuse it."""
        room = self.room
        self.ts += ts_step
        data: dict[str, Any] = {
            "type": event_type,
            "sender": sender,
            "content": content,
            "prev_events": list(self.prev_events),
            "auth_events": self._select_auth_events(sender, event_type, content, state_key),
            "depth": self.depth + 1,
            "origin_server_ts": self.ts,
            "room_id": room.room_id,
        }
        if state_key is not None:
            data["state_key"] = state_key
        pdu = hash_and_sign(
            room.room_version, data, server_of(sender), signing_key_for(server_of(sender))
        )
        try:
            room.authorise(pdu, self._state_for_auth())
        except AuthError:
            return None
        room.events[pdu.event_id] = pdu
        self.prev_events = [pdu.event_id]
        self.depth += 1
        if state_key is not None:
            self.state[(event_type, state_key)] = pdu.event_id
        return pdu

    def _state_for_auth(self) -> dict[StateKey, Pdu]:
        state = self.room.state_events(self.state)
        state[CREATE_KEY] = self.room.events[self.room.create_id]
        return state

    def _select_auth_events(
        self, sender: str, event_type: str, content: Mapping[str, Any], state_key: str | None
    ) -> list[str]:
        """Spec server-server API "Auth events selection"."""
        keys: list[StateKey] = [POWER_LEVELS_KEY, ("m.room.member", sender)]
        if not self.room.room_version.room_id_from_create_event:
            keys.insert(0, CREATE_KEY)
        if event_type == "m.room.member" and state_key is not None:
            keys.append(("m.room.member", state_key))
            membership = content.get("membership")
            if membership in ("join", "invite", "knock"):
                keys.append(JOIN_RULES_KEY)
            authoriser = content.get("join_authorised_via_users_server")
            if membership == "join" and isinstance(authoriser, str):
                keys.append(("m.room.member", authoriser))
        selected: list[str] = []
        for key in keys:
            event_id = self.state.get(key)
            if event_id is not None and event_id not in selected:
                selected.append(event_id)
        return selected

    # The actions random scenarios draw from.

    def membership(
        self, sender: str, target: str, membership: str, ts_step: int = 1, **extra: Any
    ) -> Pdu | None:
        return self.send(
            sender, "m.room.member", {"membership": membership, **extra}, target, ts_step
        )

    def power_levels(
        self, sender: str, change: Callable[[dict[str, Any]], None], ts_step: int = 1
    ) -> Pdu | None:
        """Send a copy of the current power levels content with ``change`` applied to it."""
        current = self.state.get(POWER_LEVELS_KEY)
        content: dict[str, Any] = {}
        if current is not None:
            old = self.room.events[current].content
            content = {k: dict(v) if isinstance(v, dict) else v for k, v in old.items()}
        change(content)
        return self.send(sender, "m.room.power_levels", content, "", ts_step)

    def join_rule(self, sender: str, rule: str, ts_step: int = 1) -> Pdu | None:
        return self.send(sender, "m.room.join_rules", {"join_rule": rule}, "", ts_step)

    def topic(self, sender: str, text: str, ts_step: int = 1) -> Pdu | None:
        return self.send(sender, "m.room.topic", {"topic": text}, "", ts_step)

    def name(self, sender: str, text: str, ts_step: int = 1) -> Pdu | None:
        return self.send(sender, "m.room.name", {"name": text}, "", ts_step)

    def membership_of(self, user_id: str) -> str | None:
        event_id = self.state.get(("m.room.member", user_id))
        return None if event_id is None else self.room.events[event_id].membership
