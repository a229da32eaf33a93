"""PDUs: format checks, hashes and event IDs, signing, and the three-way verification verdict.

Expected hashes are computed here from the spec's algorithms with the ``canonicaljson`` package
and ``hashlib``, not with the functions under test.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
from collections.abc import Callable
from typing import Any

import canonicaljson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rocketnode.core.errors import Errcode, PduFormatError, SignatureError
from rocketnode.core.pdu import (
    MAX_PDU_BYTES,
    Pdu,
    SignatureVerdict,
    add_signature,
    compute_content_hash,
    compute_event_id,
    compute_reference_hash,
    hash_and_sign,
    servers_that_must_sign,
    signing_key_ids_needed,
    verify_pdu,
)
from rocketnode.core.redaction import redact
from rocketnode.core.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from rocketnode.core.signing import SigningKey, VerifyKey, sign_json, verify_json

ORIGIN = "origin.example"
OTHER = "other.example"
KEY = SigningKey("k1", bytes(range(32)))
OTHER_KEY = SigningKey("o1", bytes(range(1, 33)))
TS = 1_700_000_000_000
HASH_ROOM = "!" + "R" * 43
VERSIONS = list(KNOWN_ROOM_VERSIONS.values())
V = KNOWN_ROOM_VERSIONS
DELETE = object()

KeyTable = dict[tuple[str, str], tuple[VerifyKey, int]]


def _keys(table: KeyTable) -> Callable[[str, str], tuple[VerifyKey, int] | None]:
    return lambda server_name, key_id: table.get((server_name, key_id))


FOREVER = 2**53 - 1
KNOWN: KeyTable = {
    (ORIGIN, KEY.key_id): (KEY.verify_key, FOREVER),
    (OTHER, OTHER_KEY.key_id): (OTHER_KEY.verify_key, FOREVER),
}


def room_id_for(room_version: RoomVersion) -> str:
    return HASH_ROOM if room_version.room_id_from_create_event else f"!room:{ORIGIN}"


def body(room_version: RoomVersion, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": "m.room.message",
        "sender": f"@alice:{ORIGIN}",
        "room_id": room_id_for(room_version),
        "content": {"body": "hello", "msgtype": "m.text"},
        "depth": 7,
        "origin_server_ts": TS,
        "prev_events": ["$" + "P" * 43],
        "auth_events": ["$" + "A" * 43, "$" + "B" * 43],
        "unsigned": {"age": 10},
    }
    for key, value in changes.items():
        if value is DELETE:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def signed(room_version: RoomVersion, **changes: Any) -> Pdu:
    return hash_and_sign(room_version, body(room_version, **changes), ORIGIN, KEY)


def raw(room_version: RoomVersion, **changes: Any) -> dict[str, Any]:
    """A well-formed PDU dict whose hash and signature are placeholders (for format checks)."""
    data = body(room_version, **changes)
    data.setdefault("hashes", {"sha256": "AAAA"})
    data.setdefault("signatures", {ORIGIN: {KEY.key_id: "AAAA"}})
    return data


def _b64(data: bytes, urlsafe: bool = False) -> str:
    encoded = base64.urlsafe_b64encode(data) if urlsafe else base64.b64encode(data)
    return encoded.decode().rstrip("=")


def spec_content_hash(data: dict[str, Any]) -> str:
    """Spec "Calculating the content hash": drop unsigned, signatures, hashes; sha256."""
    stripped = {k: v for k, v in data.items() if k not in ("unsigned", "signatures", "hashes")}
    return _b64(hashlib.sha256(canonicaljson.encode_canonical_json(stripped)).digest())


def spec_event_id(room_version: RoomVersion, data: dict[str, Any]) -> str:
    """Spec "Calculating the reference hash" + room version 4+ event IDs."""
    redacted = redact(room_version, data)
    stripped = {k: v for k, v in redacted.items() if k not in ("signatures", "unsigned")}
    digest = hashlib.sha256(canonicaljson.encode_canonical_json(stripped)).digest()
    return "$" + _b64(digest, urlsafe=True)


def resign(pdu_data: dict[str, Any], room_version: RoomVersion, key: SigningKey = KEY,
           server_name: str = ORIGIN) -> dict[str, Any]:
    """Sign ``pdu_data`` as it stands (keeping its hashes, right or wrong)."""
    signatures = sign_json(redact(room_version, pdu_data), server_name, key)["signatures"]
    return {**pdu_data, "signatures": signatures}


# --- hashes, event IDs, signing -----------------------------------------------------------------


@pytest.mark.parametrize("room_version", VERSIONS, ids=lambda v: f"v{v.identifier}")
def test_hash_and_sign_follows_the_spec(room_version: RoomVersion) -> None:
    data = body(room_version)
    pdu = hash_and_sign(room_version, data, ORIGIN, KEY)
    assert pdu.data["hashes"] == {"sha256": spec_content_hash(data)}
    assert pdu.data["unsigned"] == {"age": 10}
    assert set(pdu.data["signatures"]) == {ORIGIN}
    verify_json(redact(room_version, pdu.data), ORIGIN, KEY.verify_key)
    assert pdu.event_id == spec_event_id(room_version, pdu.data)
    assert pdu.event_id == compute_event_id(room_version, pdu.data)
    assert len(pdu.event_id) == 44 and "=" not in pdu.event_id
    assert "+" not in pdu.event_id[1:] and "/" not in pdu.event_id[1:]
    assert compute_reference_hash(room_version, pdu.data) == base64.urlsafe_b64decode(
        pdu.event_id[1:] + "=")
    assert base64.b64decode(pdu.data["hashes"]["sha256"] + "=") == compute_content_hash(data)
    assert verify_pdu(pdu, _keys(KNOWN)) is SignatureVerdict.VALID


def test_content_hash_covers_all_but_unsigned_signatures_hashes() -> None:
    data = body(V["10"])
    base = compute_content_hash(data)
    for key in ("unsigned", "signatures", "hashes"):
        assert compute_content_hash({**data, key: {"anything": 1}}) == base
    # Every other key is covered, including ones Synapse leaves out (see the Synapse tests).
    for key in ("origin", "age_ts", "outlier", "destinations", "custom"):
        assert compute_content_hash({**data, key: 1}) != base


def test_event_id_ignores_unsigned_signatures_and_redacted_keys() -> None:
    room_version = V["11"]
    pdu = signed(room_version)
    data = dict(pdu.data)
    for change in ({"unsigned": {"x": 1}}, {"signatures": {}}, {"content": {"body": "other"}},
                   {"origin": "x"}, {"custom": 1}):
        assert compute_event_id(room_version, {**data, **change}) == pdu.event_id
    for change in ({"depth": 8}, {"hashes": {"sha256": "x"}}, {"type": "m.other"}):
        assert compute_event_id(room_version, {**data, **change}) != pdu.event_id


def test_hash_and_sign_does_not_mutate_and_drops_old_signatures() -> None:
    data = body(V["12"], hashes={"sha256": "old"}, signatures={"x": {"ed25519:y": "z"}})
    snapshot = copy.deepcopy(data)
    pdu = hash_and_sign(V["12"], data, ORIGIN, KEY)
    assert data == snapshot
    assert set(pdu.data["signatures"]) == {ORIGIN}
    assert pdu.data["hashes"]["sha256"] != "old"


def test_add_signature() -> None:
    pdu = signed(V["10"])
    cosigned = add_signature(pdu, OTHER, OTHER_KEY)
    assert cosigned.event_id == pdu.event_id
    assert set(cosigned.data["signatures"]) == {ORIGIN, OTHER}
    assert pdu.data["signatures"].keys() == {ORIGIN}
    verify_json(redact(V["10"], cosigned.data), ORIGIN, KEY.verify_key)
    verify_json(redact(V["10"], cosigned.data), OTHER, OTHER_KEY.verify_key)


# --- verify_pdu: the three-way verdict ----------------------------------------------------------


@pytest.mark.parametrize("room_version", VERSIONS, ids=lambda v: f"v{v.identifier}")
def test_tampered_content_means_redact(room_version: RoomVersion) -> None:
    pdu = signed(room_version)
    tampered = copy.deepcopy(pdu.data)
    tampered["content"]["body"] = "changed in transit"
    received = Pdu.from_json(room_version, tampered)
    assert received.event_id == pdu.event_id
    assert verify_pdu(received, _keys(KNOWN)) is SignatureVerdict.REDACT
    # A server that only sent us the redacted copy: signatures still verify.
    redacted = Pdu.from_json(room_version, redact(room_version, pdu.data))
    assert verify_pdu(redacted, _keys(KNOWN)) is SignatureVerdict.REDACT
    assert verify_pdu(pdu.redacted(), _keys(KNOWN)) is SignatureVerdict.REDACT
    # Unsigned data may change freely.
    assert verify_pdu(Pdu.from_json(room_version, {**pdu.data, "unsigned": {"age": 99}}),
                      _keys(KNOWN)) is SignatureVerdict.VALID


def test_unparseable_content_hash_means_redact() -> None:
    pdu = signed(V["12"])
    data = resign({**pdu.data, "hashes": {"sha256": "not base64!"}}, V["12"])
    assert verify_pdu(Pdu.from_json(V["12"], data), _keys(KNOWN)) is SignatureVerdict.REDACT


@pytest.mark.parametrize(
    "change",
    [
        {"origin_server_ts": TS + 1},
        {"depth": 8},
        {"type": "m.room.other"},
        {"prev_events": []},
        {"auth_events": ["$" + "A" * 43]},
        {"state_key": ""},
        {"room_id": "!other:origin.example"},
        {"hashes": {"sha256": "AAAA"}},
    ],
    ids=repr,
)
@pytest.mark.parametrize("room_version", [V["6"], V["10"], V["11"]], ids=lambda v: v.identifier)
def test_tampered_redacted_field_is_rejected(change: dict[str, Any], room_version: RoomVersion
                                             ) -> None:
    pdu = signed(room_version)
    tampered = Pdu.from_json(room_version, {**pdu.data, **change})
    with pytest.raises(SignatureError):
        verify_pdu(tampered, _keys(KNOWN))


def test_tampered_membership_is_rejected() -> None:
    room_version = V["12"]
    pdu = signed(room_version, type="m.room.member", state_key=f"@alice:{ORIGIN}",
                 content={"membership": "join", "displayname": "Alice"})
    data = copy.deepcopy(pdu.data)
    data["content"]["displayname"] = "Mallory"
    assert verify_pdu(Pdu.from_json(room_version, data), _keys(KNOWN)) is SignatureVerdict.REDACT
    data["content"]["membership"] = "leave"
    with pytest.raises(SignatureError):
        verify_pdu(Pdu.from_json(room_version, data), _keys(KNOWN))


def test_origin_key_is_kept_by_redaction_before_v11_only() -> None:
    for room_version in VERSIONS:
        pdu = signed(room_version, origin=ORIGIN)
        tampered = Pdu.from_json(room_version, {**pdu.data, "origin": OTHER})
        if room_version.updated_redaction_rules:
            assert verify_pdu(tampered, _keys(KNOWN)) is SignatureVerdict.REDACT
        else:
            with pytest.raises(SignatureError):
                verify_pdu(tampered, _keys(KNOWN))


def test_wrong_missing_unknown_and_expired_keys() -> None:
    pdu = signed(V["12"])
    stranger = SigningKey("k1", bytes(32))
    cases: list[KeyTable] = [
        {(ORIGIN, KEY.key_id): (stranger.verify_key, FOREVER)},  # wrong key
        {},  # unknown key
        {(ORIGIN, KEY.key_id): (KEY.verify_key, TS - 1)},  # expired before the event
        {(OTHER, KEY.key_id): (KEY.verify_key, FOREVER)},  # known for another server only
    ]
    for table in cases:
        with pytest.raises(SignatureError):
            verify_pdu(pdu, _keys(table))
    # valid_until_ts must be "at least as large as" origin_server_ts (room version 5+).
    at_limit = {(ORIGIN, KEY.key_id): (KEY.verify_key, TS)}
    assert verify_pdu(pdu, _keys(at_limit)) is SignatureVerdict.VALID


@pytest.mark.parametrize(
    "signatures",
    [
        {},
        {OTHER: {"ed25519:k1": "AAAA"}},
        {ORIGIN: {}},
        {ORIGIN: {"curve25519:k1": "AAAA"}},
        {ORIGIN: {"ed25519:k1": "not base64!"}},
        {ORIGIN: {"ed25519:k1": _b64(bytes(64))}},
    ],
    ids=repr,
)
def test_missing_or_bad_signatures(signatures: dict[str, Any]) -> None:
    pdu = signed(V["11"])
    with pytest.raises(SignatureError):
        verify_pdu(Pdu.from_json(V["11"], {**pdu.data, "signatures": signatures}), _keys(KNOWN))


def test_other_servers_signatures_alone_do_not_count() -> None:
    pdu = signed(V["11"])
    by_other = resign({**pdu.data, "signatures": {}}, V["11"], OTHER_KEY, OTHER)
    with pytest.raises(SignatureError):
        verify_pdu(Pdu.from_json(V["11"], by_other), _keys(KNOWN))


def test_every_known_unexpired_key_must_verify() -> None:
    # Spec "Validating hashes and signatures on received events": unknown and expired keys are
    # skipped; "if all signatures from known unexpired keys ... are found to be valid", go on.
    room_version = V["12"]
    second = SigningKey("k2", bytes(range(2, 34)))
    pdu = signed(room_version)
    both = resign(pdu.data, room_version, second)  # signed by k1 and k2
    assert set(both["signatures"][ORIGIN]) == {KEY.key_id, second.key_id}
    good = Pdu.from_json(room_version, both)
    wrong_k2 = {**KNOWN, (ORIGIN, second.key_id): (OTHER_KEY.verify_key, FOREVER)}
    expired_wrong_k2 = {**KNOWN, (ORIGIN, second.key_id): (OTHER_KEY.verify_key, TS - 1)}
    right_k2 = {**KNOWN, (ORIGIN, second.key_id): (second.verify_key, FOREVER)}
    assert verify_pdu(good, _keys(KNOWN)) is SignatureVerdict.VALID  # k2 unknown: skipped
    assert verify_pdu(good, _keys(right_k2)) is SignatureVerdict.VALID
    assert verify_pdu(good, _keys(expired_wrong_k2)) is SignatureVerdict.VALID  # expired: skipped
    with pytest.raises(SignatureError):
        verify_pdu(good, _keys(wrong_k2))  # known, unexpired and invalid
    only_k2_known = {(ORIGIN, second.key_id): (second.verify_key, FOREVER)}
    assert verify_pdu(good, _keys(only_k2_known)) is SignatureVerdict.VALID


def _restricted_join(room_version: RoomVersion, authoriser: Any = f"@admin:{OTHER}") -> Pdu:
    return signed(room_version, type="m.room.member", state_key=f"@alice:{ORIGIN}",
                  content={"membership": "join", "join_authorised_via_users_server": authoriser})


@pytest.mark.parametrize("room_version", VERSIONS, ids=lambda v: f"v{v.identifier}")
def test_restricted_join_needs_the_authorising_servers_signature(room_version: RoomVersion
                                                                  ) -> None:
    pdu = _restricted_join(room_version)
    cosigned = add_signature(pdu, OTHER, OTHER_KEY)
    assert verify_pdu(cosigned, _keys(KNOWN)) is SignatureVerdict.VALID
    if room_version.restricted_join_rule:
        assert servers_that_must_sign(pdu) == {ORIGIN, OTHER}
        with pytest.raises(SignatureError):
            verify_pdu(pdu, _keys(KNOWN))
        only_origin_known = {(ORIGIN, KEY.key_id): (KEY.verify_key, FOREVER)}
        with pytest.raises(SignatureError):
            verify_pdu(cosigned, _keys(only_origin_known))
    else:
        assert servers_that_must_sign(pdu) == {ORIGIN}
        assert verify_pdu(pdu, _keys(KNOWN)) is SignatureVerdict.VALID
    assert signing_key_ids_needed([cosigned]) == {
        (server, key_id) for server, key_id in KNOWN if server in servers_that_must_sign(pdu)
    }


def test_authorising_user_only_matters_for_joins() -> None:
    pdu = signed(V["10"], type="m.room.member", state_key=f"@bob:{ORIGIN}",
                 content={"membership": "invite", "join_authorised_via_users_server": "@x:y"})
    assert servers_that_must_sign(pdu) == {ORIGIN}
    assert verify_pdu(pdu, _keys(KNOWN)) is SignatureVerdict.VALID


@pytest.mark.parametrize("authoriser", [42, None, ["@admin:other.example"], "no-colon", "@:"])
def test_unusable_authorising_user_cannot_be_verified(authoriser: Any) -> None:
    pdu = add_signature(_restricted_join(V["10"], authoriser), OTHER, OTHER_KEY)
    with pytest.raises(SignatureError):
        verify_pdu(pdu, _keys(KNOWN))


# --- format checks ------------------------------------------------------------------------------


@pytest.mark.parametrize("room_version", VERSIONS, ids=lambda v: f"v{v.identifier}")
def test_from_json_fields(room_version: RoomVersion) -> None:
    data = raw(room_version, state_key="", type="m.room.topic", content={"topic": "t"})
    pdu = Pdu.from_json(room_version, data)
    assert pdu.data is data
    assert pdu.event_id == spec_event_id(room_version, data)
    assert (pdu.type, pdu.state_key, pdu.sender, pdu.room_id) == (
        "m.room.topic", "", f"@alice:{ORIGIN}", room_id_for(room_version))
    assert (pdu.depth, pdu.origin_server_ts) == (7, TS)
    assert pdu.prev_events == ("$" + "P" * 43,)
    assert pdu.auth_events == ("$" + "A" * 43, "$" + "B" * 43)
    assert pdu.is_state and pdu.state_tuple == ("m.room.topic", "")
    assert pdu.origin == ORIGIN
    assert Pdu.trusted(room_version, data, pdu.event_id) == pdu
    assert Pdu.from_json(room_version, data, event_id="$given").event_id == "$given"
    message = Pdu.from_json(room_version, raw(room_version))
    assert not message.is_state and message.membership is None


REQUIRED = ["type", "sender", "content", "depth", "origin_server_ts", "hashes", "signatures",
            "prev_events", "auth_events", "room_id"]


@pytest.mark.parametrize("key", REQUIRED)
@pytest.mark.parametrize("room_version", VERSIONS, ids=lambda v: f"v{v.identifier}")
def test_required_keys(room_version: RoomVersion, key: str) -> None:
    data = raw(room_version)
    del data[key]
    with pytest.raises(PduFormatError):
        Pdu.from_json(room_version, data)


@pytest.mark.parametrize(
    "change",
    [
        {"type": 1}, {"type": None}, {"sender": ["@a:b"]}, {"sender": "alice"},
        {"sender": "@alice"}, {"sender": "@alice:bad host"}, {"content": []},
        {"content": "x"}, {"depth": "7"}, {"depth": True}, {"depth": -1}, {"depth": 7.0},
        {"origin_server_ts": False}, {"origin_server_ts": "1"}, {"hashes": []},
        {"hashes": {}}, {"hashes": {"sha256": 1}}, {"signatures": []},
        {"signatures": {ORIGIN: "sig"}}, {"signatures": {ORIGIN: {"ed25519:k1": 1}}},
        {"signatures": {ORIGIN: []}}, {"prev_events": {}}, {"prev_events": [1]},
        {"prev_events": ["not-an-id"]}, {"auth_events": "$a"}, {"auth_events": [None]},
        {"state_key": 5}, {"state_key": None}, {"state_key": []}, {"room_id": 5},
        {"room_id": "room:example.org"}, {"unsigned": []}, {"unsigned": "x"},
        {"content": {"n": 2**53}}, {"content": {"f": 0.5}}, {"extra": float("nan")},
        {"content": {"\ud800": 1}},
    ],
    ids=repr,
)
def test_malformed_pdus(change: dict[str, Any]) -> None:
    for room_version in VERSIONS:
        with pytest.raises(PduFormatError) as info:
            Pdu.from_json(room_version, raw(room_version, **change))
        assert info.value.errcode == Errcode.BAD_JSON


@pytest.mark.parametrize("value", [None, [], "pdu", 5])
def test_pdu_must_be_an_object(value: Any) -> None:
    with pytest.raises(PduFormatError):
        Pdu.from_json(V["12"], value)


def _sized(room_version: RoomVersion, size: int) -> dict[str, Any]:
    data = raw(room_version, content={"body": ""})
    padding = size - len(canonicaljson.encode_canonical_json(data))
    data["content"]["body"] = "x" * padding
    assert len(canonicaljson.encode_canonical_json(data)) == size
    return data


@pytest.mark.parametrize("room_version", VERSIONS, ids=lambda v: f"v{v.identifier}")
def test_pdu_size_limit(room_version: RoomVersion) -> None:
    # Client-server API "Size limits": the event MUST NOT be larger than 65536 bytes.
    assert MAX_PDU_BYTES == 65536
    Pdu.from_json(room_version, _sized(room_version, 65536))
    with pytest.raises(PduFormatError) as info:
        Pdu.from_json(room_version, _sized(room_version, 65537))
    assert info.value.errcode == Errcode.TOO_LARGE
    multibyte = raw(room_version, content={"body": "é" * 33_000})  # 33,000 chars, 66,000 bytes
    with pytest.raises(PduFormatError):
        Pdu.from_json(room_version, multibyte)


def _user_of_bytes(size: int) -> str:
    suffix = f":{ORIGIN}"
    return "@" + "a" * (size - 1 - len(suffix)) + suffix


@pytest.mark.parametrize(
    ("key", "make"),
    [
        ("sender", _user_of_bytes),
        ("type", lambda n: "t" * n),
        ("state_key", lambda n: "s" * n),
        ("state_key", lambda n: "é" * (n // 2) + "s" * (n % 2)),
        ("room_id", lambda n: "!" + "r" * (n - 1 - len(ORIGIN) - 1) + ":" + ORIGIN),
    ],
)
def test_field_size_limits(key: str, make: Callable[[int], str]) -> None:
    for room_version in (V["6"], V["11"], V["12"]):
        at_limit = make(255)
        assert len(at_limit.encode()) == 255
        Pdu.from_json(room_version, raw(room_version, **{key: at_limit}))
        over = make(256)
        assert len(over.encode()) == 256
        with pytest.raises(PduFormatError) as info:
            Pdu.from_json(room_version, raw(room_version, **{key: over}))
        assert info.value.errcode == Errcode.TOO_LARGE


def test_event_id_size_limit() -> None:
    data = raw(V["10"])
    Pdu.from_json(V["10"], data, event_id="$" + "e" * 254)
    with pytest.raises(PduFormatError) as info:
        Pdu.from_json(V["10"], data, event_id="$" + "e" * 255)
    assert info.value.errcode == Errcode.TOO_LARGE


def test_prev_and_auth_event_limits() -> None:
    ids = ["$" + str(n) * 43 for n in range(10)] * 3
    for room_version in VERSIONS:
        Pdu.from_json(room_version, raw(room_version, prev_events=ids[:20], auth_events=ids[:10]))
        with pytest.raises(PduFormatError):
            Pdu.from_json(room_version, raw(room_version, prev_events=ids[:21]))
        with pytest.raises(PduFormatError):
            Pdu.from_json(room_version, raw(room_version, auth_events=ids[:11]))


def test_v12_create_event_room_id() -> None:
    room_version = V["12"]
    create = signed(room_version, type="m.room.create", state_key="", room_id=DELETE,
                    content={"room_version": "12"}, prev_events=[], auth_events=[])
    assert "room_id" not in create.data
    assert create.room_id == "!" + create.event_id[1:]
    assert create.room_id == "!" + spec_event_id(room_version, create.data)[1:]
    assert verify_pdu(create, _keys(KNOWN)) is SignatureVerdict.VALID
    assert create.redacted().room_id == create.room_id
    with pytest.raises(PduFormatError):
        Pdu.from_json(room_version, {**create.data, "room_id": create.room_id})
    with pytest.raises(PduFormatError):  # only the create event may omit room_id
        Pdu.from_json(room_version, raw(room_version, room_id=DELETE))
    for older in VERSIONS[:-1]:
        with pytest.raises(PduFormatError):
            Pdu.from_json(older, raw(older, type="m.room.create", state_key="", room_id=DELETE))


def test_redacts_and_redacted() -> None:
    for room_version in VERSIONS:
        pdu = Pdu.from_json(room_version, raw(
            room_version, type="m.room.redaction", redacts="$top", content={"redacts": "$inner"}))
        expected = "$inner" if room_version.updated_redaction_rules else "$top"
        assert pdu.redacts == expected
        redacted = pdu.redacted()
        assert redacted.event_id == pdu.event_id
        assert redacted.data == redact(room_version, pdu.data)
        assert redacted.redacts == ("$inner" if room_version.updated_redaction_rules else None)


def test_membership() -> None:
    pdu = Pdu.from_json(V["12"], raw(V["12"], type="m.room.member", state_key="@a:b",
                                     content={"membership": "knock"}))
    assert pdu.membership == "knock"
    odd = Pdu.from_json(V["12"], raw(V["12"], type="m.room.member", state_key="@a:b",
                                     content={"membership": 5}))
    assert odd.membership is None


# --- fuzzing: every failure is a PduFormatError ---------------------------------------------------

PDU_KEYS = [*REQUIRED, "state_key", "unsigned", "redacts", "origin", "membership", "event_id"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=8,
)
identifier_like = st.sampled_from(
    ["@a:b", "@a", "!r:b", "!" + "R" * 43, "$e", "e", "", "@a:b:0", "m.room.member", "@\x00:b"]
)


def _from_json_or_format_error(room_version: RoomVersion, data: Any) -> None:
    try:
        pdu = Pdu.from_json(room_version, data)
    except PduFormatError as exc:
        assert exc.errcode in (Errcode.BAD_JSON, Errcode.TOO_LARGE)
        return
    # Whatever is accepted can be verified without crashing: a verdict or a SignatureError.
    with contextlib.suppress(SignatureError):
        verify_pdu(pdu, _keys(KNOWN))
    pdu.redacted()


@settings(max_examples=800)
@given(
    st.sampled_from(VERSIONS),
    st.dictionaries(st.sampled_from(PDU_KEYS) | st.text(max_size=5),
                    json_values | identifier_like, max_size=12),
)
def test_fuzz_from_json_arbitrary_dicts(room_version: RoomVersion, data: dict[str, Any]) -> None:
    _from_json_or_format_error(room_version, data)


@settings(max_examples=1500)
@given(
    st.sampled_from(VERSIONS),
    st.sampled_from(["message", "member", "create", "join"]),
    st.lists(
        st.tuples(
            st.sampled_from([*PDU_KEYS, "content", "hashes", "signatures"]),
            st.sampled_from(["delete", "replace", "nest"]),
            json_values | identifier_like,
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_fuzz_from_json_mutated_pdus(
    room_version: RoomVersion, kind: str, mutations: list[tuple[str, str, Any]]
) -> None:
    if kind == "member":
        pdu = signed(room_version, type="m.room.member", state_key="@alice:origin.example",
                     content={"membership": "join"})
    elif kind == "create":
        pdu = signed(room_version, type="m.room.create", state_key="", prev_events=[],
                     auth_events=[], room_id=DELETE if room_version.room_id_from_create_event
                     else room_id_for(room_version))
    elif kind == "join":
        pdu = add_signature(_restricted_join(room_version), OTHER, OTHER_KEY)
    else:
        pdu = signed(room_version)
    data = copy.deepcopy(pdu.data)
    for key, action, value in mutations:
        if action == "delete":
            data.pop(key, None)
        elif action == "replace":
            data[key] = value
        elif isinstance(data.get(key), dict):
            data[key]["fuzz"] = value
            inner = next(iter(data[key]))
            data[key][inner] = value
        elif isinstance(data.get(key), list):
            data[key] = [*data[key], value]
    _from_json_or_format_error(room_version, data)
