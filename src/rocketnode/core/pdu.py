"""PDUs: format checks, content and reference hashes, event IDs, signing and verification.

A :class:`Pdu` keeps the original JSON dict it was built from: hashes and signatures are computed
over it, and keys we do not know survive untouched. Treat ``Pdu.data`` as read-only.

Spec: server-server API "PDUs", "Signing events", "Checks performed on receipt of a PDU"; room
versions "Event format" and "Event IDs".
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rocketnode.core.canonical_json import encode_canonical_json, encode_canonical_json_checked
from rocketnode.core.errors import (
    CanonicalJsonError,
    Errcode,
    InvalidIdentifier,
    PduFormatError,
    SignatureError,
)
from rocketnode.core.ids import UserId, is_valid_user_id, server_name_of
from rocketnode.core.redaction import redact
from rocketnode.core.room_versions import RoomVersion
from rocketnode.core.signing import (
    SigningKey,
    VerifyKey,
    decode_base64,
    encode_base64,
    key_ids_signed_by,
    sign_json,
    signable_bytes,
    signature_of,
)

MAX_PDU_BYTES = 65536
MAX_FIELD_BYTES = 255
MAX_PREV_EVENTS = 20
MAX_AUTH_EVENTS = 10

StateKey = tuple[str, str]
"""A state map key: ``(event_type, state_key)``."""

# Keys left out of the content hash: exactly those the spec names (server-server API,
# "Calculating the content hash for an event"). Synapse also leaves out top-level age_ts, outlier
# and destinations, legacy keys no current server sends; where the two disagree we follow the
# spec, as Ruma does (tests/unit/core/test_core_vs_synapse.py pins the difference).
_NOT_HASHED = frozenset({"unsigned", "signatures", "hashes"})
# Keys left out of the reference hash after redaction ("Calculating the reference hash").
_NOT_REFERENCED = frozenset({"signatures", "unsigned"})


def compute_content_hash(data: Mapping[str, Any], checked: bool = False) -> bytes:
    """SHA-256 over the canonical JSON of the PDU without its hashes, signatures and unsigned.

    ``checked``: ``data`` is known to be canonical already (it was checked as a whole).
    """
    body = {k: v for k, v in data.items() if k not in _NOT_HASHED}
    encode = encode_canonical_json_checked if checked else encode_canonical_json
    return hashlib.sha256(encode(body)).digest()


def reference_bytes(room_version: RoomVersion, data: Mapping[str, Any],
                    checked: bool = False) -> bytes:
    """The canonical JSON of the redacted PDU without signatures and unsigned: what the
    reference hash covers, and what signatures sign."""
    redacted = redact(room_version, dict(data))
    encode = encode_canonical_json_checked if checked else encode_canonical_json
    return encode({k: v for k, v in redacted.items() if k not in _NOT_REFERENCED})


def compute_reference_hash(room_version: RoomVersion, data: Mapping[str, Any]) -> bytes:
    """SHA-256 over the canonical JSON of the redacted PDU without signatures and unsigned."""
    return hashlib.sha256(reference_bytes(room_version, data)).digest()


def compute_event_id(room_version: RoomVersion, data: Mapping[str, Any]) -> str:
    """``$`` + URL-safe unpadded base64 of the reference hash (room versions 4+)."""
    return "$" + encode_base64(compute_reference_hash(room_version, data), urlsafe=True)


def _require(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise PduFormatError(f"PDU key {key!r} is missing or not of the right type")
    return value


def _check_id_list(data: Mapping[str, Any], key: str, limit: int) -> tuple[str, ...]:
    value = _require(data, key, list)
    if len(value) > limit:
        raise PduFormatError(f"PDU has more than {limit} {key}")
    if not all(isinstance(item, str) and item.startswith("$") for item in value):
        raise PduFormatError(f"PDU {key} must be a list of event IDs")
    return tuple(value)


def _check_field_size(value: str, key: str) -> None:
    if len(value.encode("utf-8", "surrogatepass")) > MAX_FIELD_BYTES:
        raise PduFormatError(f"PDU key {key!r} is longer than {MAX_FIELD_BYTES} bytes",
                             Errcode.TOO_LARGE)


def _check_signatures(data: Mapping[str, Any]) -> None:
    """``signatures``: server name -> key ID -> signature, all strings (spec ``pdu_base``)."""
    signatures = _require(data, "signatures", dict)
    for by_server in signatures.values():
        if not isinstance(by_server, dict) or not all(
            isinstance(signature, str) for signature in by_server.values()
        ):
            raise PduFormatError("PDU signatures must map server names to key IDs to strings")


@dataclass(frozen=True, slots=True)
class Pdu:
    """A PDU of a known room version, with the fields auth and state resolution read."""

    event_id: str
    room_version: RoomVersion = field(repr=False)
    data: dict[str, Any] = field(repr=False, compare=False)
    type: str = field(repr=False, compare=False)
    state_key: str | None = field(repr=False, compare=False)
    sender: str = field(repr=False, compare=False)
    room_id: str = field(repr=False, compare=False)
    content: dict[str, Any] = field(repr=False, compare=False)
    prev_events: tuple[str, ...] = field(repr=False, compare=False)
    auth_events: tuple[str, ...] = field(repr=False, compare=False)
    depth: int = field(repr=False, compare=False)
    origin_server_ts: int = field(repr=False, compare=False)
    signed_bytes: bytes | None = field(default=None, repr=False, compare=False)
    """The bytes its signatures sign (and its event ID hashes), when already computed."""

    @classmethod
    def from_json(
        cls, room_version: RoomVersion, data: dict[str, Any], event_id: str | None = None
    ) -> Pdu:
        """Check the format of ``data`` and wrap it; ``PduFormatError`` if it is malformed.

        ``event_id`` may be given when it is already known (e.g. read back from storage);
        otherwise it is computed from the reference hash.
        """
        if not isinstance(data, dict):
            raise PduFormatError("PDU must be a JSON object")
        try:
            encoded = encode_canonical_json(data)
        except CanonicalJsonError as exc:
            raise PduFormatError(f"PDU is not canonical JSON: {exc.message}") from exc
        if len(encoded) > MAX_PDU_BYTES:
            raise PduFormatError(f"PDU is larger than {MAX_PDU_BYTES} bytes", Errcode.TOO_LARGE)
        event_type = _require(data, "type", str)
        sender = _require(data, "sender", str)
        content = _require(data, "content", dict)
        depth = _require(data, "depth", int)
        origin_server_ts = _require(data, "origin_server_ts", int)
        _require(data, "hashes", dict)
        if not isinstance(data["hashes"].get("sha256"), str):
            raise PduFormatError("PDU has no sha256 content hash")
        _check_signatures(data)
        if "unsigned" in data:
            _require(data, "unsigned", dict)
        prev_events = _check_id_list(data, "prev_events", MAX_PREV_EVENTS)
        auth_events = _check_id_list(data, "auth_events", MAX_AUTH_EVENTS)
        if depth < 0:
            raise PduFormatError("PDU depth must not be negative")
        state_key = data.get("state_key")
        if "state_key" in data and not isinstance(state_key, str):
            raise PduFormatError("PDU state_key must be a string")
        signed = None
        if event_id is None:
            signed = reference_bytes(room_version, data, checked=True)
            event_id = "$" + encode_base64(hashlib.sha256(signed).digest(), urlsafe=True)
        room_id = _room_id_of(room_version, data, event_type, event_id)
        for key, value in (("type", event_type), ("sender", sender), ("room_id", room_id),
                           ("event_id", event_id)):
            _check_field_size(value, key)
        if state_key is not None:
            _check_field_size(state_key, "state_key")
        try:
            UserId.parse(sender)
        except InvalidIdentifier as exc:
            raise PduFormatError(f"PDU sender is not a user ID: {exc.message}") from exc
        return cls(
            event_id=event_id,
            room_version=room_version,
            data=data,
            type=event_type,
            state_key=state_key,
            sender=sender,
            room_id=room_id,
            content=content,
            prev_events=prev_events,
            auth_events=auth_events,
            depth=depth,
            origin_server_ts=origin_server_ts,
            signed_bytes=signed,
        )

    @classmethod
    def trusted(cls, room_version: RoomVersion, data: dict[str, Any], event_id: str) -> Pdu:
        """Wrap a PDU that passed :meth:`from_json` before (e.g. read back from our storage)."""
        event_type = data["type"]
        return cls(
            event_id=event_id,
            room_version=room_version,
            data=data,
            type=event_type,
            state_key=data.get("state_key"),
            sender=data["sender"],
            room_id=data["room_id"] if "room_id" in data else "!" + event_id[1:],
            content=data["content"],
            prev_events=tuple(data["prev_events"]),
            auth_events=tuple(data["auth_events"]),
            depth=data["depth"],
            origin_server_ts=data["origin_server_ts"],
        )

    @property
    def is_state(self) -> bool:
        return self.state_key is not None

    @property
    def state_tuple(self) -> StateKey:
        """``(type, state_key)``; only meaningful for state events."""
        return (self.type, self.state_key if self.state_key is not None else "")

    @property
    def membership(self) -> str | None:
        value = self.content.get("membership")
        return value if isinstance(value, str) else None

    @property
    def redacts(self) -> str | None:
        """The event a redaction redacts (``content.redacts`` from v11, top-level before)."""
        if self.room_version.updated_redaction_rules:
            value = self.content.get("redacts")
        else:
            value = self.data.get("redacts")
        return value if isinstance(value, str) else None

    @property
    def origin(self) -> str:
        """The server that created this PDU: the sender's server."""
        return server_name_of(self.sender)

    def redacted(self) -> Pdu:
        """This PDU with the room version's redaction algorithm applied."""
        return Pdu.from_json(self.room_version, redact(self.room_version, self.data),
                             event_id=self.event_id)


def _room_id_of(
    room_version: RoomVersion, data: Mapping[str, Any], event_type: str, event_id: str
) -> str:
    if room_version.room_id_from_create_event and event_type == "m.room.create":
        if "room_id" in data:
            raise PduFormatError("A room version 12 create event must not have a room_id")
        return "!" + event_id[1:]
    room_id: str = _require(data, "room_id", str)
    if not room_id.startswith("!"):
        raise PduFormatError(f"PDU room_id is not a room ID: {room_id!r}")
    return room_id


def hash_and_sign(
    room_version: RoomVersion, data: dict[str, Any], server_name: str, key: SigningKey
) -> Pdu:
    """Add the content hash and ``server_name``'s signature to a new PDU and wrap it.

    ``data`` must hold every key of the PDU except ``hashes`` and ``signatures``.
    """
    unsigned = data.get("unsigned")
    body = {k: v for k, v in data.items() if k not in ("hashes", "signatures", "unsigned")}
    body["hashes"] = {"sha256": encode_base64(compute_content_hash(body))}
    # The signed bytes (the redacted event without signatures) are also what the reference
    # hash covers, so the event ID comes from the same encoding.
    message = signable_bytes(redact(room_version, body))
    body["signatures"] = {server_name: {key.key_id: encode_base64(key.sign(message))}}
    if unsigned is not None:
        body["unsigned"] = unsigned
    event_id = "$" + encode_base64(hashlib.sha256(message).digest(), urlsafe=True)
    return Pdu.from_json(room_version, body, event_id=event_id)


def add_signature(pdu: Pdu, server_name: str, key: SigningKey) -> Pdu:
    """Co-sign an existing PDU (e.g. a join or invite handled by another server)."""
    signed = sign_json(redact(pdu.room_version, pdu.data), server_name, key)
    data = dict(pdu.data)
    data["signatures"] = signed["signatures"]
    return Pdu.from_json(pdu.room_version, data, event_id=pdu.event_id)


_AUTHORISER = "join_authorised_via_users_server"
_ABSENT = object()


def _authorising_user(pdu: Pdu) -> object:
    """``join_authorised_via_users_server`` of a restricted join (v8+), whatever its type;
    ``_ABSENT`` if the PDU is not a join of such a room version or has no such key."""
    if (
        pdu.room_version.restricted_join_rule
        and pdu.type == "m.room.member"
        and pdu.membership == "join"
    ):
        return pdu.content.get(_AUTHORISER, _ABSENT)
    return _ABSENT


def servers_that_must_sign(pdu: Pdu) -> set[str]:
    """The servers whose signatures a PDU must carry (spec "Validating hashes and signatures").

    The sender's server, and for a restricted join (v8+) the server of the user that authorised
    it. An authorising "user" that is not a user ID adds no server here; :func:`verify_pdu`
    refuses such a join, since no server can have signed for it.
    """
    servers = {pdu.origin}
    authoriser = _authorising_user(pdu)
    if isinstance(authoriser, str) and is_valid_user_id(authoriser):
        servers.add(server_name_of(authoriser))
    return servers


class SignatureVerdict(enum.Enum):
    VALID = "valid"
    """Signatures and content hash are fine."""
    REDACT = "redact"
    """Signatures are fine but the content hash is wrong: keep the redacted form."""


KeyLookup = Callable[[str, str], tuple[VerifyKey, int] | None]
"""``(server_name, key_id) -> (verify_key, valid_until_ts)`` or ``None`` if unknown."""


def verify_pdu(pdu: Pdu, keys: KeyLookup) -> SignatureVerdict:
    """Check signatures and content hash; raise :class:`SignatureError` if they are invalid.

    For every server in :func:`servers_that_must_sign`, the signatures on the redacted PDU made
    with keys we know and that were valid at ``origin_server_ts`` must all verify, and there
    must be at least one; signatures with unknown or expired keys are skipped.
    """
    authoriser = _authorising_user(pdu)
    if authoriser is not _ABSENT and not (
        isinstance(authoriser, str) and is_valid_user_id(authoriser)
    ):
        raise SignatureError(f"{pdu.event_id}: {_AUTHORISER} is not a user ID")
    message = pdu.signed_bytes or reference_bytes(pdu.room_version, pdu.data, checked=True)
    for server_name in sorted(servers_that_must_sign(pdu)):
        _check_one_server(pdu, pdu.data, message, server_name, keys)
    expected = pdu.data["hashes"].get("sha256")
    try:
        actual = decode_base64(expected)
    except SignatureError:
        return SignatureVerdict.REDACT
    if actual != compute_content_hash(pdu.data, checked=True):
        return SignatureVerdict.REDACT
    return SignatureVerdict.VALID


def _check_one_server(
    pdu: Pdu, signed_object: dict[str, Any], message: bytes, server_name: str, keys: KeyLookup
) -> None:
    checked = 0
    skipped = []
    for key_id in key_ids_signed_by(signed_object, server_name):
        found = keys(server_name, key_id)
        if found is None:
            skipped.append(f"unknown key {key_id}")
            continue
        verify_key, valid_until_ts = found
        if valid_until_ts < pdu.origin_server_ts:
            skipped.append(f"key {key_id} expired before the event")
            continue
        try:
            verify_key.verify(message, signature_of(signed_object, server_name, key_id))
        except SignatureError as exc:
            raise SignatureError(
                f"{pdu.event_id}: bad signature by {server_name} with {key_id}"
            ) from exc
        checked += 1
    if not checked:
        reasons = "; ".join(skipped) or "no ed25519 signature"
        raise SignatureError(f"{pdu.event_id}: no valid signature by {server_name} ({reasons})")


def signing_key_ids_needed(pdus: Iterable[Pdu]) -> set[tuple[str, str]]:
    """The ``(server_name, key_id)`` pairs a caller must fetch to verify ``pdus``."""
    needed = set()
    for pdu in pdus:
        for server_name in servers_that_must_sign(pdu):
            for key_id in key_ids_signed_by(pdu.data, server_name):
                needed.add((server_name, key_id))
    return needed
