"""Differential tests: the protocol core against Synapse (a test dependency, used as an oracle).

What must agree byte for byte -- content hashes, event IDs, redaction, signatures, key files --
is compared on hypothesis-generated PDUs of every room version we support. Where the spec and
Synapse disagree, the spec wins: each such case is pinned by a test below that names the section.
"""

from __future__ import annotations

import copy
import hashlib
import io
import string
from typing import Any

import canonicaljson
import pytest
import signedjson.key
import signedjson.sign
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from synapse.api.errors import SynapseError
from synapse.api.room_versions import KNOWN_ROOM_VERSIONS as SYNAPSE_ROOM_VERSIONS
from synapse.crypto.event_signing import add_hashes_and_signatures
from synapse.crypto.event_signing import compute_content_hash as synapse_content_hash
from synapse.events import make_event_from_dict
from synapse.events.utils import validate_canonicaljson
from synapse.synapse_rust.events import redact_event_dict
from synapse.types import RoomAlias as SynapseRoomAlias
from synapse.types import RoomID as SynapseRoomId
from synapse.types import UserID as SynapseUserId
from synapse.util.stringutils import parse_and_validate_server_name

from rocketnode.core.canonical_json import check_canonical
from rocketnode.core.errors import CanonicalJsonError, InvalidIdentifier
from rocketnode.core.ids import RoomAlias, RoomId, is_valid_server_name, is_valid_user_id
from rocketnode.core.pdu import Pdu, compute_content_hash, compute_event_id, hash_and_sign
from rocketnode.core.redaction import redact
from rocketnode.core.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from rocketnode.core.signing import (
    SigningKey,
    VerifyKey,
    encode_base64,
    format_signing_key_file,
    parse_signing_key_file,
    sign_json,
    verify_json,
)

VERSIONS = list(KNOWN_ROOM_VERSIONS.values())
SEED = bytes(range(100, 132))

# --- strategies ----------------------------------------------------------------------------------

_text = st.text(st.sampled_from([*string.ascii_letters[:6], "é", "日", "😀", "\n", '"', "\\",
                                 "\u2028", "\x00"]) | st.characters(codec="utf-8"), max_size=6)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | _text,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(_text, c, max_size=3),
    max_leaves=6,
)
_server = st.sampled_from(["example.org", "other.example:8448", "1.2.3.4", "[::1]:80", "a.b"])
_user_id = st.builds(lambda local, server: f"@{local}:{server}",
                     st.text(st.sampled_from("abcXYZ09._=/+é "), max_size=8), _server)
_b64 = st.binary(min_size=1, max_size=32).map(encode_base64)
_event_id = _b64.map(lambda b: "$" + b.replace("+", "-").replace("/", "_"))
_membership = st.sampled_from(["join", "invite", "leave", "ban", "knock"]) | _json

_CONTENT: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "m.room.member": {
        "membership": _membership,
        "join_authorised_via_users_server": _user_id | _json,
        "third_party_invite": st.fixed_dictionaries(
            {}, optional={"signed": _json, "display_name": _text, "extra": _json}) | _json,
        "displayname": _text,
        "avatar_url": _text,
        "reason": _text,
    },
    "m.room.create": {
        "creator": _user_id,
        "room_version": st.sampled_from(list(KNOWN_ROOM_VERSIONS)),
        "predecessor": _json,
        "additional_creators": st.lists(_user_id, max_size=2),
        "m.federate": st.booleans(),
        "type": _text,
    },
    "m.room.join_rules": {
        "join_rule": st.sampled_from(["public", "invite", "knock", "restricted"]),
        "allow": st.lists(st.fixed_dictionaries({"type": st.just("m.room_membership"),
                                                  "room_id": st.just("!r:example.org")})),
    },
    "m.room.power_levels": {
        key: (st.integers(-100, 100) | _json)
        for key in ("ban", "events_default", "invite", "kick", "redact", "state_default",
                    "users_default")
    } | {
        "events": st.dictionaries(_text, st.integers(0, 100), max_size=2),
        "users": st.dictionaries(_user_id, st.integers(0, 100), max_size=2),
        "notifications": st.fixed_dictionaries({"room": st.integers(0, 100)}),
    },
    "m.room.history_visibility": {"history_visibility": st.sampled_from(["shared", "joined"])},
    "m.room.redaction": {"redacts": _event_id | _json, "reason": _text},
    "m.room.aliases": {"aliases": st.lists(_text, max_size=2)},
    "m.room.message": {"body": _text, "msgtype": st.just("m.text")},
}
_event_type = st.sampled_from(list(_CONTENT)) | _text


@st.composite
def _content(draw: st.DrawFn, event_type: str) -> dict[str, Any]:
    known = _CONTENT.get(event_type, {})
    content = {}
    for key, strategy in known.items():
        if draw(st.booleans()):
            content[key] = draw(strategy)
    content.update(draw(st.dictionaries(_text, _json, max_size=2)))
    return content


@st.composite
def pdus(draw: st.DrawFn, synapse_parsable: bool = True) -> dict[str, Any]:
    """A PDU dict with the extra keys real PDUs carry; :func:`versions_for` says which room
    versions it is well-formed in (a create event without room_id is v12 only, and so on).

    ``synapse_parsable`` keeps to what Synapse's event parser accepts (no top-level
    ``event_id``, typed ``unsigned`` fields), so that Synapse can compute an event ID.
    """
    event_type = draw(_event_type)
    pdu: dict[str, Any] = {
        "type": event_type,
        "sender": draw(_user_id),
        "content": draw(_content(event_type)),
        "depth": draw(st.integers(0, 2**53 - 1)),
        "origin_server_ts": draw(st.integers(0, 2**53 - 1)),
        "prev_events": draw(st.lists(_event_id, max_size=3)),
        "auth_events": draw(st.lists(_event_id, max_size=3)),
        "hashes": {"sha256": draw(_b64)},
        "signatures": draw(st.dictionaries(_server, st.dictionaries(
            st.sampled_from(["ed25519:a", "ed25519:b_1"]), _b64, max_size=2), max_size=2)),
    }
    if event_type != "m.room.create" or draw(st.booleans()):
        pdu["room_id"] = draw(st.sampled_from(["!r:example.org", "!" + "Q" * 43]))
    if event_type == "m.room.create" and synapse_parsable:
        # Synapse only treats (m.room.create, "") as a create event: see
        # test_v12_create_event_with_a_state_key.
        pdu["state_key"] = ""
    elif (event_type.startswith("m.room.") and event_type != "m.room.message") or draw(
        st.booleans()
    ):
        pdu["state_key"] = draw(st.sampled_from(["", "@alice:example.org"]) | _text)
    optional: dict[str, st.SearchStrategy[Any]] = {
        "origin": _server | _json,
        "membership": _membership,
        "prev_state": _json,
        "redacts": _event_id | _json,
        "unsigned": st.fixed_dictionaries({}, optional={
            "age_ts": st.integers(0, 2**53 - 1),
            "replaces_state": _event_id,
            "prev_content": st.dictionaries(_text, _json, max_size=2),
            "age": st.integers(0, 10**6),
        }),
        "custom_key": _json,
        "m.extra": _json,
    }
    if not synapse_parsable:
        optional["event_id"] = _event_id
        optional["unsigned"] = st.dictionaries(_text, _json, max_size=3)
    for key, strategy in optional.items():
        if draw(st.integers(0, 3)) == 0:
            pdu[key] = draw(strategy)
    return pdu


def versions_for(pdu: dict[str, Any]) -> list[RoomVersion]:
    """The room versions in which ``pdu`` has the right shape: in v12 only the create event lacks
    a room_id, and there it must lack one."""
    if pdu["type"] == "m.room.create":
        wants_room_id = "room_id" in pdu
        return [v for v in VERSIONS if v.room_id_from_create_event is not wants_room_id]
    return VERSIONS


def _synapse_room_version(room_version: RoomVersion) -> Any:
    return SYNAPSE_ROOM_VERSIONS[room_version.identifier]


# --- hashes, event IDs, redaction ----------------------------------------------------------------


def _synapse_redact(room_version: RoomVersion, pdu: dict[str, Any]) -> dict[str, Any]:
    redacted: dict[str, Any] = redact_event_dict(_synapse_room_version(room_version),
                                                 copy.deepcopy(pdu))
    # Synapse keeps unsigned.age_ts and unsigned.replaces_state through redaction; the spec's
    # lists (rooms "Redactions") have no `unsigned`, and we drop it: see test_redaction_unsigned.
    redacted.pop("unsigned", None)
    return redacted


# Each example is checked in every room version it fits: about 6 cases per example.
_MANY = settings(max_examples=1200, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@_MANY
@given(pdus())
def test_hashes_event_ids_and_redaction_agree(pdu: dict[str, Any]) -> None:
    snapshot = copy.deepcopy(pdu)
    _, digest = synapse_content_hash(copy.deepcopy(pdu), hashlib.sha256)
    assert compute_content_hash(pdu) == digest
    for room_version in versions_for(pdu):
        assert redact(room_version, pdu) == _synapse_redact(room_version, pdu)
        event = make_event_from_dict(copy.deepcopy(pdu), _synapse_room_version(room_version))
        assert compute_event_id(room_version, pdu) == event.event_id
        ours = Pdu.from_json(room_version, pdu)
        assert (ours.event_id, ours.room_id) == (event.event_id, event.room_id)
    assert pdu == snapshot


@settings(max_examples=600, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(pdus(synapse_parsable=False))
def test_redaction_and_content_hash_agree_on_any_keys(pdu: dict[str, Any]) -> None:
    _, digest = synapse_content_hash(copy.deepcopy(pdu), hashlib.sha256)
    assert compute_content_hash(pdu) == digest
    for room_version in versions_for(pdu):
        assert redact(room_version, pdu) == _synapse_redact(room_version, pdu)


def test_real_synapse_events() -> None:
    # Two events from Synapse's own test suite (rust/src/events/mod.rs), signed by real servers.
    v10_create = {
        "auth_events": [], "prev_events": [], "type": "m.room.create",
        "sender": "@anon-20260225_142731-20:localhost:8800",
        "content": {"room_version": "10",
                    "creator": "@anon-20260225_142731-20:localhost:8800"},
        "depth": 1, "room_id": "!qVoJSympOqdUQRUfiC:localhost:8800", "state_key": "",
        "origin_server_ts": 1772029657149,
        "hashes": {"sha256": "RIDkn4CrExGMOfRZlHl//1weAro5QC/q2D76YcyAUqk"},
        "signatures": {"localhost:8800": {"ed25519:a_GMSl": "GU7WmvI2Kd5kLrXKrWpRbUfEiVKGgH0sxQN"
                       "EpBMMvgF3QhHN25AubVMmIClht5r/c+Iihb1xsq1j5Sw+RGfiDg"}},
        "unsigned": {"age_ts": 1772029657149},
    }
    v12_create = {
        "auth_events": [], "prev_events": [], "type": "m.room.create", "sender": "@erikj:jki.re",
        "content": {"room_version": "12",
                    "predecessor": {"room_id": "!VuNGkDTdbMOOxSmuDa:jki.re"}},
        "depth": 1, "state_key": "", "origin_server_ts": 1775568141481,
        "hashes": {"sha256": "qBX+glsKvogXFrvsEN0eh13pO2kpuE6o/b4yREPtOqw"},
        "signatures": {"jki.re": {"ed25519:auto": "n/4gHQRagk3r1r24L/7a+oaMMf9cysVfQRYdjpDZcf4"
                                                  "ppkVym33rhTW18Vy4zMa1L5nsWLkxsBvbrRRDYUOhBQ"}},
        "unsigned": {"age_ts": 1775568141481},
    }
    for data in (v10_create, v12_create):
        assert encode_base64(compute_content_hash(data)) == data["hashes"]["sha256"]
    pdu = Pdu.from_json(KNOWN_ROOM_VERSIONS["12"], v12_create)
    assert pdu.room_id == "!BeXKh925K_M46DwsuJFR0EyBpE1P7CFUDGuWW4xw55Y"
    assert pdu.event_id == "$BeXKh925K_M46DwsuJFR0EyBpE1P7CFUDGuWW4xw55Y"
    synapse_event = make_event_from_dict(copy.deepcopy(v10_create), SYNAPSE_ROOM_VERSIONS["10"])
    assert Pdu.from_json(KNOWN_ROOM_VERSIONS["10"], v10_create).event_id == synapse_event.event_id


@pytest.mark.parametrize("key", ["age_ts", "outlier", "destinations"])
def test_content_hash_spec_wins_over_synapse(key: str) -> None:
    # Server-server API, "Calculating the content hash for an event": only unsigned, signatures
    # and hashes are removed. Synapse also removes top-level age_ts, outlier and destinations.
    pdu = {"type": "m.room.message", "content": {"body": "x"}, key: 1}
    spec_hash = hashlib.sha256(canonicaljson.encode_canonical_json(pdu)).digest()
    without = {k: v for k, v in pdu.items() if k != key}
    assert compute_content_hash(pdu) == spec_hash
    assert synapse_content_hash(copy.deepcopy(pdu), hashlib.sha256)[1] == (
        compute_content_hash(without))


def test_v12_create_event_with_a_state_key() -> None:
    # Rooms v12 "Event format": room_id is "Omitted from m.room.create events", and auth rule
    # 1.2 rejects any m.room.create that has one. Synapse only applies this to the state event
    # (m.room.create, "") and asks any other m.room.create for a room_id. We follow the spec
    # (the auth rules then judge the event); both refuse such an event that has a room_id.
    data = {"type": "m.room.create", "state_key": "x", "sender": "@a:example.org",
            "content": {}, "depth": 1, "origin_server_ts": 1, "prev_events": [],
            "auth_events": [], "hashes": {"sha256": "AA"}, "signatures": {}}
    pdu = Pdu.from_json(KNOWN_ROOM_VERSIONS["12"], data)
    assert pdu.room_id == "!" + pdu.event_id[1:]
    with pytest.raises(SynapseError):
        make_event_from_dict(copy.deepcopy(data), SYNAPSE_ROOM_VERSIONS["12"])


def test_v12_create_event_with_a_room_id_keeps_it_through_redaction() -> None:
    # Rooms v12 uses the v11 redaction algorithm, whose list keeps `room_id`. Synapse also
    # strips room_id from a v12 m.room.create. Only malformed create events have one (we refuse
    # them in Pdu.from_json, Synapse in its auth rules), so no valid event's ID differs.
    create = {"type": "m.room.create", "state_key": "", "content": {}, "room_id": "!r:x"}
    v12 = KNOWN_ROOM_VERSIONS["12"]
    assert redact(v12, create)["room_id"] == "!r:x"
    assert "room_id" not in redact_event_dict(_synapse_room_version(v12), copy.deepcopy(create))
    assert redact(v12, {**create, "type": "m.room.member"})["room_id"] == "!r:x"


def test_redaction_unsigned_spec_wins_over_synapse() -> None:
    # Rooms v6/v9/v11 "Redactions": strip every key not listed; `unsigned` is not listed.
    pdu = {"type": "m.room.message", "content": {}, "unsigned": {"age_ts": 1, "other": 2}}
    for room_version in VERSIONS:
        synapse = redact_event_dict(_synapse_room_version(room_version), copy.deepcopy(pdu))
        assert synapse["unsigned"] == {"age_ts": 1}
        assert "unsigned" not in redact(room_version, pdu)


# --- signatures and keys -------------------------------------------------------------------------


def _synapse_key(version: str, seed: bytes) -> Any:
    return signedjson.key.decode_signing_key_base64("ed25519", version, encode_base64(seed))


_objects = st.dictionaries(_text.filter(lambda k: k not in ("signatures", "unsigned")), _json,
                           max_size=5)


@settings(max_examples=300, deadline=None)
@given(_objects, st.none() | st.dictionaries(_text, _json, max_size=2),
       st.binary(min_size=32, max_size=32))
def test_json_signatures_agree(obj: dict[str, Any], unsigned: Any, seed: bytes) -> None:
    if unsigned is not None:
        obj = {**obj, "unsigned": unsigned}
    ours = sign_json(obj, "example.org", SigningKey("a_1", seed))
    theirs = signedjson.sign.sign_json(copy.deepcopy(obj), "example.org",
                                      _synapse_key("a_1", seed))
    assert ours == theirs
    verify_key = signedjson.key.get_verify_key(_synapse_key("a_1", seed))
    signedjson.sign.verify_signed_json(copy.deepcopy(ours), "example.org", verify_key)
    verify_json(theirs, "example.org", VerifyKey("ed25519:a_1", bytes(verify_key)))
    with pytest.raises(signedjson.sign.SignatureVerifyException):
        signedjson.sign.verify_signed_json({**ours, "tampered": 1}, "example.org", verify_key)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(pdus())
def test_hash_and_sign_agrees_with_add_hashes_and_signatures(pdu: dict[str, Any]) -> None:
    data = {k: v for k, v in pdu.items() if k not in ("hashes", "signatures")}
    for room_version in versions_for(pdu):
        ours = hash_and_sign(room_version, copy.deepcopy(data), "example.org",
                             SigningKey("k", SEED))
        theirs = copy.deepcopy(data)
        add_hashes_and_signatures(_synapse_room_version(room_version), theirs, "example.org",
                                  _synapse_key("k", SEED))
        assert ours.data == theirs
        assert ours.event_id == make_event_from_dict(
            theirs, _synapse_room_version(room_version)).event_id


def test_key_files_interoperate() -> None:
    stream = io.StringIO()
    synapse_keys = [_synapse_key("a_AbCd", SEED), signedjson.key.generate_signing_key("x_1")]
    signedjson.key.write_signing_keys(stream, synapse_keys)
    ours = parse_signing_key_file(stream.getvalue())
    assert [(k.version, k.seed) for k in ours] == [(k.version, bytes(k)) for k in synapse_keys]
    text = format_signing_key_file([SigningKey("a_AbCd", SEED), SigningKey.generate("b")])
    theirs = signedjson.key.read_signing_keys(io.StringIO(text))
    assert [(k.version, bytes(k)) for k in theirs] == [
        (k.version, k.seed) for k in parse_signing_key_file(text)]
    assert theirs[0].alg == "ed25519"
    assert bytes(theirs[0].verify_key) == SigningKey("a_AbCd", SEED).verify_key.key


# --- canonical JSON checks -----------------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers(-(2**54), 2**54) | st.floats() | _text,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(_text, c, max_size=3),
    max_leaves=8,
))
def test_canonical_value_check_agrees(value: Any) -> None:
    try:
        validate_canonicaljson(value)
        synapse_ok = True
    except SynapseError:
        synapse_ok = False
    try:
        check_canonical(value)
        ours_ok = True
    except CanonicalJsonError:
        ours_ok = False
    assert ours_ok == synapse_ok


# --- identifiers ---------------------------------------------------------------------------------


def _synapse_accepts_server_name(name: str) -> bool:
    try:
        parse_and_validate_server_name(name)
    except ValueError:
        return False
    return True


def _host_and_port(name: str) -> tuple[str, str | None]:
    if name.startswith("[") and "]" in name:
        end = name.index("]") + 1
        rest = name[end:]
        return name[:end], rest[1:] if rest.startswith(":") else None
    host, sep, port = name.partition(":")
    return host, port if sep else None


def _where_the_spec_differs(name: str) -> str | None:
    """Why we reject a server name Synapse accepts; None if there is no known reason.

    Spec appendix "Server Name": ``port = 1*5DIGIT`` (and, our reading of "the address at which
    the homeserver ... can be reached", a TCP port 1 to 65535); "IPv4 literals must be a
    sequence of four decimal numbers in the range 0 to 255"; ``dns-name = 1*255dns-char``.
    """
    host, port = _host_and_port(name)
    if port is not None and not (port.isascii() and port.isdigit() and len(port) <= 5
                                 and 0 < int(port) < 65536):
        # Synapse parses the port with int(): "+1", " 1", "1_0", "0", "65536", "123456" pass.
        return "port"
    parts = host.split(".")
    if len(parts) == 4 and all(p.isascii() and p.isdigit() for p in parts):
        # Synapse takes "1.2.3.256" and "01.2.3.4" for DNS names. We refuse leading zeros too:
        # a resolver reads "010.0.0.1" as octal while an IP filter would read it as decimal.
        return "ipv4"
    if len(host) > 255:
        return "length"
    return None


SERVER_NAME_CASES = [
    "matrix.org", "matrix.org:8888", "1.2.3.4", "1.2.3.4:1234", "[1234:5678::abcd]",
    "[1234:5678::abcd]:5678", "localhost", "a-b", "-a", "a.", ".a", "a..b", "", ":", ":80",
    "a:", "a:0", "a:65535", "a:65536", "a:+80", "a: 80", "a:8_0", "a:123456", "a:08448",
    "1.2.3.256", "01.2.3.4", "1.2.3", "[::1]", "[::1]:80", "[::1", "::1", "[]", "[::1]:",
    "[1.2.3.4]", "[::ffff:1.2.3.4]", "[fe80::1%eth0]", "[12345::]", "[::1]x", "exa_mple",
    "ex ample", "é.example", "a" * 256, "a]", "[a]",
]


@pytest.mark.parametrize("name", SERVER_NAME_CASES)
def test_server_names_against_synapse(name: str) -> None:
    ours = is_valid_server_name(name)
    synapse = _synapse_accepts_server_name(name)
    if ours != synapse:
        assert synapse and not ours, "we accept what Synapse refuses"
        assert _where_the_spec_differs(name) is not None


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from([*"ab09.-:[]f ", "::1", "1.2.3.4", "65536", "é"]), max_size=12)
       .map("".join))
@example("a:0")
@example("1.2.3.999")
def test_fuzz_server_names_against_synapse(name: str) -> None:
    ours = is_valid_server_name(name)
    synapse = _synapse_accepts_server_name(name)
    if ours != synapse:
        assert synapse and not ours, f"we accept {name!r}, Synapse refuses it"
        assert _where_the_spec_differs(name) is not None, name


def _synapse_user_id_valid(value: str) -> bool:
    return bool(SynapseUserId.is_valid(value))


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from([*"@a:b.0-[]", "\x00", "\ud800", ":8448", "😀"])
                | st.characters(codec="utf-8"), max_size=12)
       .map(lambda parts: "@" + "".join(parts)))
@example("@:example.org")
@example("@\x00:example.org")
@example("@a\ud800:example.org")
@example("@" + "a" * 300 + ":example.org")
def test_user_ids_against_synapse(value: str) -> None:
    ours = is_valid_user_id(value)
    synapse = _synapse_user_id_valid(value)
    if ours == synapse:
        return
    # Synapse's UserID.is_valid does not check what the spec's "User Identifiers" and
    # "Historical User IDs" require: at most 255 bytes, no NUL, no lone surrogates.
    assert synapse and not ours
    localpart, _, server = value[1:].partition(":")
    assert (
        "\x00" in localpart
        or any(0xD800 <= ord(c) <= 0xDFFF for c in localpart)
        or len(value.encode("utf-8", "surrogatepass")) > 255
        or _where_the_spec_differs(server) is not None
    ), value


@pytest.mark.parametrize(
    "value",
    ["!abc:example.org", "!" + "Q" * 43, "!" + "Q" * 42, "!abc", "!:example.org", "!a:b:0",
     "!a:b:65536", "!a:[::1]", "abc:example.org", "!a\x00:b"],
)
def test_room_ids_against_synapse(value: str) -> None:
    try:
        RoomId.parse(value)
        ours = True
    except InvalidIdentifier:
        ours = False
    synapse = SynapseRoomId.is_valid(value)
    if ours != synapse:
        assert synapse and not ours
        assert "\x00" in value or _where_the_spec_differs(value.partition(":")[2]) is not None


@pytest.mark.parametrize("value", ["#a:example.org", "#:example.org", "#a", "#a:b:0", "a:b"])
def test_room_aliases_against_synapse(value: str) -> None:
    try:
        RoomAlias.parse(value)
        ours = True
    except InvalidIdentifier:
        ours = False
    synapse = SynapseRoomAlias.is_valid(value)
    if ours != synapse:
        assert synapse and not ours
        assert _where_the_spec_differs(value.partition(":")[2]) is not None


# --- room versions -------------------------------------------------------------------------------

_FLAG_NAMES = {
    "knock_join_rule": "knock_join_rule",
    "restricted_join_rule": "restricted_join_rule",
    "restricted_join_redaction_fix": "restricted_join_rule_fix",
    "knock_restricted_join_rule": "knock_restricted_join_rule",
    "integer_power_levels": "enforce_int_power_levels",
    "implicit_room_creator": "implicit_room_creator",
    "updated_redaction_rules": "updated_redaction_rules",
    "room_id_from_create_event": "msc4291_room_ids_as_hashes",
    "privileged_creators": "msc4289_creator_power_enabled",
}


@pytest.mark.parametrize("room_version", VERSIONS, ids=lambda v: f"v{v.identifier}")
def test_room_version_flags_match_synapse(room_version: RoomVersion) -> None:
    synapse = _synapse_room_version(room_version)
    for ours, theirs in _FLAG_NAMES.items():
        assert getattr(room_version, ours) == getattr(synapse, theirs), ours
    assert (room_version.state_res.value == "v2.1") == room_version.room_id_from_create_event
    assert synapse.strict_canonicaljson and synapse.enforce_key_validity
    assert not synapse.special_case_aliases_auth
