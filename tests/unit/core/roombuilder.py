"""Build rooms of real, signed PDUs for tests.

A :class:`RoomBuilder` keeps every event it made (``events``), the state along its main line
(``state``) and its forward extremities. Each method builds one PDU; by default it cites the
current extremities as ``prev_events`` and picks ``auth_events`` from the current state with the
auth events selection algorithm, and everything can be overridden to build forks, bad auth
events or odd timestamps::

    room = RoomBuilder.create_room(V12, "@alice:a.test")   # create, join, power levels, public
    join = room.join("@bob:b.test")
    before_ban = room.snapshot()
    room.ban("@alice:a.test", "@bob:b.test")
    evading = room.message("@bob:b.test", prev_events=[join.event_id], auth_state=before_ban,
                           apply=False)

Nothing here runs the authorisation rules: a test may build events the rules reject. Each
server signs with a key derived from its name; :func:`key_lookup` serves them to ``verify_pdu``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from rocketnode.core.auth_rules import auth_types_for_event
from rocketnode.core.ids import server_name_of
from rocketnode.core.pdu import Pdu, StateKey, compute_content_hash, hash_and_sign
from rocketnode.core.room_versions import RoomVersion
from rocketnode.core.signing import SigningKey, VerifyKey, encode_base64, sign_json

KEY_VERSION = "test"
FAR_FUTURE_TS = 2**53 - 1
DEFAULT_START_TS = 1_700_000_000_000


def signing_key(server_name: str) -> SigningKey:
    """The deterministic test signing key of ``server_name``."""
    seed = hashlib.sha256(f"rocketnode-test-key:{server_name}".encode()).digest()
    return SigningKey(KEY_VERSION, seed)


def key_lookup(server_name: str, key_id: str) -> tuple[VerifyKey, int] | None:
    """A ``KeyLookup`` for ``verify_pdu`` that knows every test server's key."""
    key = signing_key(server_name)
    return (key.verify_key, FAR_FUTURE_TS) if key_id == key.key_id else None


def default_power_levels(creator: str, room_version: RoomVersion) -> dict[str, Any]:
    """Power levels as a server would create them: the creator at 100 (not listed from v12,
    where creators have infinite power)."""
    content: dict[str, Any] = {
        "ban": 50,
        "events": {"m.room.power_levels": 100, "m.room.history_visibility": 100},
        "events_default": 0,
        "invite": 0,
        "kick": 50,
        "redact": 50,
        "state_default": 50,
        "users": {},
        "users_default": 0,
    }
    if not room_version.privileged_creators:
        content["users"][creator] = 100
    return content


IDENTITY_SERVER = "id.test"


def third_party_signed(
    mxid: str, token: str, server_name: str = IDENTITY_SERVER, key: SigningKey | None = None
) -> dict[str, Any]:
    """The ``signed`` block an identity server gives for a third-party invite."""
    signer = signing_key(server_name) if key is None else key
    return sign_json({"mxid": mxid, "token": token}, server_name, signer)


class RoomBuilder:
    """A factory of PDUs for one room; see the module docstring."""

    def __init__(
        self,
        room_version: RoomVersion,
        *,
        room_id: str | None = None,
        sign: bool = True,
        start_ts: int = DEFAULT_START_TS,
    ) -> None:
        self.room_version = room_version
        self.room_id = room_id
        """Set by :meth:`create` unless given (room versions before 12 only)."""
        self.sign = sign
        """Whether to sign; unsigned PDUs carry an empty ``signatures`` (faster)."""
        self.clock = start_ts
        self.events: dict[str, Pdu] = {}
        self.state: dict[StateKey, Pdu] = {}
        self.forward_extremities: list[str] = []
        self.create_event: Pdu | None = None

    @classmethod
    def create_room(
        cls,
        room_version: RoomVersion,
        creator: str = "@creator:a.test",
        *,
        create_content: Mapping[str, Any] | None = None,
        power_levels: Mapping[str, Any] | Literal["default"] | None = "default",
        join_rule: str | None = "public",
        sign: bool = True,
        room_id: str | None = None,
    ) -> RoomBuilder:
        """A room with its create event, the creator's join, power levels (default:
        :func:`default_power_levels`; ``None`` for none) and join rules (``None`` for none)."""
        room = cls(room_version, sign=sign, room_id=room_id)
        room.create(creator, create_content)
        room.join(creator)
        if power_levels == "default":
            room.set_power_levels(creator, default_power_levels(creator, room_version))
        elif isinstance(power_levels, Mapping):
            room.set_power_levels(creator, power_levels)
        if join_rule is not None:
            room.set_join_rules(creator, join_rule)
        return room

    # --- Generic events --------------------------------------------------------------------

    def create(
        self, creator: str, content: Mapping[str, Any] | None = None, **options: Any
    ) -> Pdu:
        """The create event; its ``content`` gets ``room_version`` (and ``creator`` before
        room version 11) unless given."""
        body = dict(content) if content is not None else {}
        body.setdefault("room_version", self.room_version.identifier)
        if not self.room_version.implicit_room_creator:
            body.setdefault("creator", creator)
        if self.room_id is None and not self.room_version.room_id_from_create_event:
            self.room_id = f"!room:{server_name_of(creator)}"
        options.setdefault("prev_events", [])
        pdu = self.send("m.room.create", creator, body, state_key="", **options)
        if options.get("apply", True):
            self.create_event = pdu
            if self.room_version.room_id_from_create_event:
                self.room_id = pdu.room_id
        return pdu

    def send(
        self,
        event_type: str,
        sender: str,
        content: Mapping[str, Any],
        state_key: str | None = None,
        *,
        prev_events: Sequence[str] | None = None,
        auth_events: Sequence[str] | None = None,
        auth_state: Mapping[StateKey, Pdu] | None = None,
        origin_server_ts: int | None = None,
        depth: int | None = None,
        room_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
        apply: bool = True,
    ) -> Pdu:
        """Build, hash and sign one PDU.

        ``auth_events`` defaults to the selection from ``auth_state`` (default: the builder's
        state); ``prev_events`` to the forward extremities; ``origin_server_ts`` to the next
        tick of the builder's clock; ``depth`` to one more than the deepest prev event.
        ``extra`` adds or replaces top-level keys. With ``apply`` (the default) the event
        becomes the only forward extremity and, if it is a state event, enters the state.
        """
        prev = list(self.forward_extremities if prev_events is None else prev_events)
        if auth_events is None:
            auth_events = self.select_auth_events(
                event_type, sender, state_key, content, auth_state
            )
        data: dict[str, Any] = {
            "type": event_type,
            "sender": sender,
            "content": dict(content),
            "prev_events": prev,
            "auth_events": list(auth_events),
            "depth": self._depth(prev) if depth is None else depth,
            "origin_server_ts": self._tick() if origin_server_ts is None else origin_server_ts,
        }
        if state_key is not None:
            data["state_key"] = state_key
        if room_id is not None or not self._is_v12_create(event_type):
            data["room_id"] = room_id if room_id is not None else self.room_id
        if extra:
            data.update(extra)
        pdu = self._finish(data)
        self.events[pdu.event_id] = pdu
        if apply:
            self.forward_extremities = [pdu.event_id]
            if pdu.is_state:
                self.state[pdu.state_tuple] = pdu
        return pdu

    def select_auth_events(
        self,
        event_type: str,
        sender: str,
        state_key: str | None,
        content: Mapping[str, Any],
        auth_state: Mapping[StateKey, Pdu] | None = None,
    ) -> list[str]:
        """The auth events the selection algorithm picks from ``auth_state`` (default: the
        builder's state)."""
        state = self.state if auth_state is None else auth_state
        wanted = auth_types_for_event(self.room_version, event_type, sender, state_key, content)
        return [state[key].event_id for key in sorted(wanted) if key in state]

    def _is_v12_create(self, event_type: str) -> bool:
        return self.room_version.room_id_from_create_event and event_type == "m.room.create"

    def _tick(self) -> int:
        self.clock += 1
        return self.clock

    def _depth(self, prev_events: Sequence[str]) -> int:
        depths = [self.events[e].depth for e in prev_events if e in self.events]
        return max(depths, default=0) + 1

    def _finish(self, data: dict[str, Any]) -> Pdu:
        if self.sign:
            server_name = server_name_of(data["sender"])
            return hash_and_sign(self.room_version, data, server_name, signing_key(server_name))
        data["hashes"] = {"sha256": encode_base64(compute_content_hash(data))}
        data["signatures"] = {}
        return Pdu.from_json(self.room_version, data)

    # --- Membership ------------------------------------------------------------------------

    def member(
        self,
        sender: str,
        target: str,
        membership: str,
        content: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Pdu:
        """An ``m.room.member`` event setting ``target``'s membership."""
        body = {"membership": membership, **(content or {})}
        return self.send("m.room.member", sender, body, state_key=target, **options)

    def join(self, user_id: str, content: Mapping[str, Any] | None = None, **options: Any) -> Pdu:
        return self.member(user_id, user_id, "join", content, **options)

    def leave(self, user_id: str, **options: Any) -> Pdu:
        return self.member(user_id, user_id, "leave", **options)

    def knock(self, user_id: str, **options: Any) -> Pdu:
        return self.member(user_id, user_id, "knock", **options)

    def invite(self, sender: str, target: str, **options: Any) -> Pdu:
        return self.member(sender, target, "invite", **options)

    def kick(self, sender: str, target: str, **options: Any) -> Pdu:
        return self.member(sender, target, "leave", **options)

    def unban(self, sender: str, target: str, **options: Any) -> Pdu:
        return self.member(sender, target, "leave", **options)

    def ban(self, sender: str, target: str, **options: Any) -> Pdu:
        return self.member(sender, target, "ban", **options)

    # --- Other state and messages ----------------------------------------------------------

    def set_power_levels(self, sender: str, content: Mapping[str, Any], **options: Any) -> Pdu:
        return self.send("m.room.power_levels", sender, content, state_key="", **options)

    def set_join_rules(
        self,
        sender: str,
        join_rule: str,
        allow: Sequence[Mapping[str, Any]] | None = None,
        **options: Any,
    ) -> Pdu:
        content: dict[str, Any] = {"join_rule": join_rule}
        if allow is not None:
            content["allow"] = [dict(condition) for condition in allow]
        return self.send("m.room.join_rules", sender, content, state_key="", **options)

    def set_state(
        self,
        sender: str,
        event_type: str,
        content: Mapping[str, Any],
        state_key: str = "",
        **options: Any,
    ) -> Pdu:
        return self.send(event_type, sender, content, state_key=state_key, **options)

    def third_party_invite(
        self,
        sender: str,
        token: str,
        public_keys: Sequence[VerifyKey] | None = None,
        **options: Any,
    ) -> Pdu:
        """An ``m.room.third_party_invite`` with ``public_keys`` (default: the identity
        server's key) as ``public_key`` (the first) and ``public_keys`` (all of them)."""
        keys = [signing_key(IDENTITY_SERVER).verify_key] if public_keys is None else public_keys
        content: dict[str, Any] = {
            "display_name": "a...@example.org",
            "key_validity_url": f"https://{IDENTITY_SERVER}/_matrix/identity/v2/pubkey/isvalid",
            "public_keys": [{"public_key": key.to_base64()} for key in keys],
        }
        if keys:
            content["public_key"] = keys[0].to_base64()
        return self.send("m.room.third_party_invite", sender, content, state_key=token, **options)

    def message(self, sender: str, body: str = "hello", **options: Any) -> Pdu:
        content = {"msgtype": "m.text", "body": body}
        return self.send("m.room.message", sender, content, **options)

    def redact(self, sender: str, redacts: str, **options: Any) -> Pdu:
        """An ``m.room.redaction``: ``redacts`` in content from v11, top-level before."""
        if self.room_version.updated_redaction_rules:
            return self.send("m.room.redaction", sender, {"redacts": redacts}, **options)
        extra = {**options.pop("extra", {}), "redacts": redacts}
        return self.send("m.room.redaction", sender, {}, extra=extra, **options)

    # --- Views -----------------------------------------------------------------------------

    def snapshot(self) -> dict[StateKey, Pdu]:
        """A copy of the current state."""
        return dict(self.state)

    def state_ids(self) -> dict[StateKey, str]:
        """The current state as event IDs, as state resolution takes it."""
        return {key: pdu.event_id for key, pdu in self.state.items()}
