"""Signing JSON (spec appendix "Signing JSON"), base64, keys and key files."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rocketnode.core.canonical_json import encode_canonical_json
from rocketnode.core.errors import SignatureError
from rocketnode.core.pdu import compute_content_hash, hash_and_sign
from rocketnode.core.redaction import redact
from rocketnode.core.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from rocketnode.core.signing import (
    SigningKey,
    VerifyKey,
    decode_base64,
    encode_base64,
    format_signing_key_file,
    key_ids_signed_by,
    parse_signing_key_file,
    sign_json,
    signable_bytes,
    signature_of,
    verify_json,
)

FIXTURES = Path(__file__).parents[2] / "fixtures"
VECTORS = json.loads((FIXTURES / "signing.json").read_text("utf-8"))
IDENTIFIERS = json.loads((FIXTURES / "identifiers.json").read_text("utf-8"))
SERVER = VECTORS["server_name"]
SPEC_KEY = SigningKey(
    VECTORS["key_id"].split(":", 1)[1], decode_base64(VECTORS["signing_key_seed"])
)

# The event signing vectors are in the event format of room versions 1-10: they carry `origin`,
# which the redaction algorithm keeps until room version 11 and drops from then on.
KEEPS_ORIGIN = [v for v in KNOWN_ROOM_VERSIONS.values() if not v.updated_redaction_rules]
DROPS_ORIGIN = [v for v in KNOWN_ROOM_VERSIONS.values() if v.updated_redaction_rules]

canonical_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=8),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
    max_leaves=12,
)
objects = st.dictionaries(
    st.text(max_size=6).filter(lambda k: k not in ("signatures", "unsigned")),
    canonical_values,
    max_size=5,
)


# --- the spec's test vectors --------------------------------------------------------------------


def test_spec_key_id() -> None:
    assert SPEC_KEY.key_id == VECTORS["key_id"] == "ed25519:1"


@pytest.mark.parametrize("case", VECTORS["json_signing"], ids=["empty", "data"])
def test_spec_json_signing(case: dict[str, Any]) -> None:
    signed = sign_json(case["input"], SERVER, SPEC_KEY)
    assert signed == case["signed"]
    assert encode_canonical_json(signed) == encode_canonical_json(case["signed"])
    verify_json(case["signed"], SERVER, SPEC_KEY.verify_key)


@pytest.mark.parametrize("case", VECTORS["event_signing"], ids=["minimal", "redactable"])
@pytest.mark.parametrize("room_version", KEEPS_ORIGIN, ids=lambda v: f"v{v.identifier}")
def test_spec_event_signing(case: dict[str, Any], room_version: RoomVersion) -> None:
    expected = case["signed"]
    content_hash = encode_base64(compute_content_hash(case["input"]))
    assert content_hash == expected["hashes"]["sha256"]
    body = {k: v for k, v in case["input"].items() if k not in ("signatures", "unsigned")}
    body["hashes"] = {"sha256": content_hash}
    signed = sign_json(redact(room_version, body), SERVER, SPEC_KEY)
    assert signed["signatures"] == expected["signatures"]
    verify_json(redact(room_version, expected), SERVER, SPEC_KEY.verify_key)


@pytest.mark.parametrize("room_version", KEEPS_ORIGIN, ids=lambda v: f"v{v.identifier}")
def test_spec_minimal_event_through_hash_and_sign(room_version: RoomVersion) -> None:
    case = VECTORS["event_signing"][0]
    data = {k: v for k, v in case["input"].items() if k not in ("hashes", "signatures")}
    assert hash_and_sign(room_version, data, SERVER, SPEC_KEY).data == case["signed"]


@pytest.mark.parametrize("room_version", DROPS_ORIGIN, ids=lambda v: f"v{v.identifier}")
def test_spec_event_vectors_do_not_verify_under_v11_redaction(room_version: RoomVersion) -> None:
    # Room version 11 no longer keeps `origin` through redaction, so the signed bytes differ.
    for case in VECTORS["event_signing"]:
        assert "origin" in case["signed"]
        with pytest.raises(SignatureError):
            verify_json(redact(room_version, case["signed"]), SERVER, SPEC_KEY.verify_key)


def test_spec_signing_details_example_signs_without_signatures_and_unsigned() -> None:
    example = VECTORS["signing_details_example"]["object"]
    expected = {k: v for k, v in example.items() if k not in ("signatures", "unsigned")}
    assert signable_bytes(example) == encode_canonical_json(expected)
    assert b"age_ts" not in signable_bytes(example)
    assert key_ids_signed_by(example, "example.org") == ["ed25519:1"]


# --- base64 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "encoded"), IDENTIFIERS["unpadded_base64"])
def test_spec_unpadded_base64(raw: str, encoded: str) -> None:
    assert encode_base64(raw.encode()) == encoded
    assert decode_base64(encoded) == raw.encode()
    assert decode_base64(encoded + "=" * (-len(encoded) % 4)) == raw.encode()  # padded too


def test_url_safe_base64() -> None:
    data = bytes([0xFB, 0xFF, 0xBF])
    assert encode_base64(data) == "+/+/"
    assert encode_base64(data, urlsafe=True) == "-_-_"
    assert decode_base64("-_-_") == decode_base64("+/+/") == data


@pytest.mark.parametrize("text", ["A", "AAAAA", "Zm9v!", "Zm 9v", "Zg=a", "é", "Zm9v\n"])
def test_invalid_base64(text: str) -> None:
    with pytest.raises(SignatureError):
        decode_base64(text)


@given(st.binary(max_size=80), st.booleans())
def test_base64_round_trip(data: bytes, urlsafe: bool) -> None:
    encoded = encode_base64(data, urlsafe=urlsafe)
    assert "=" not in encoded
    assert decode_base64(encoded) == data


# --- keys -----------------------------------------------------------------------------------------


def test_signing_key_validation() -> None:
    for version in ("", "a:b", "a b", "é", "a-b"):
        with pytest.raises(ValueError):
            SigningKey(version, bytes(32))
    for seed in (b"", bytes(31), bytes(33)):
        with pytest.raises(ValueError):
            SigningKey("1", seed)
    key = SigningKey.generate("a_B9")
    assert key.key_id == "ed25519:a_B9"
    assert key.verify_key.key_id == "ed25519:a_B9"
    assert key != SigningKey.generate("a_B9")
    assert repr(key.seed) not in repr(key) and key.seed.hex() not in repr(key)


def test_verify_key_from_base64() -> None:
    public = SPEC_KEY.verify_key.to_base64()
    assert VerifyKey.from_base64("ed25519:1", public) == SPEC_KEY.verify_key
    with pytest.raises(SignatureError):
        VerifyKey.from_base64("curve25519:1", public)
    with pytest.raises(SignatureError):
        VerifyKey.from_base64("ed25519:1", public[:-2])
    with pytest.raises(SignatureError):
        VerifyKey.from_base64("ed25519:1", "not base64!")


def test_raw_sign_and_verify() -> None:
    signature = SPEC_KEY.sign(b"message")
    assert len(signature) == 64
    SPEC_KEY.verify_key.verify(b"message", signature)
    for message, sig in ((b"messagf", signature), (b"message", signature[:-1]),
                         (b"message", bytes(64))):
        with pytest.raises(SignatureError):
            SPEC_KEY.verify_key.verify(message, sig)
    with pytest.raises(SignatureError):
        SigningKey.generate("1").verify_key.verify(b"message", signature)


# --- key files ------------------------------------------------------------------------------------


def test_key_file_round_trip() -> None:
    keys = [SPEC_KEY, SigningKey.generate("a_xYz9")]
    text = format_signing_key_file(keys)
    algorithm, version, seed = text.splitlines()[0].split(" ")
    assert (algorithm, version, decode_base64(seed)) == ("ed25519", "1", SPEC_KEY.seed)
    assert "=" not in seed and text.endswith("\n")
    assert parse_signing_key_file(text) == keys


def test_key_file_tolerates_blank_lines_comments_and_padding() -> None:
    seed = VECTORS["signing_key_seed"]
    text = f"# our key\n\n  ed25519   1   {seed}=  \n"
    assert parse_signing_key_file(text) == [SPEC_KEY]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n# only a comment\n",
        "ed25519 1",
        "ed25519 1 AAAA extra",
        "curve25519 1 " + "A" * 43,
        "ed25519 1 not-base64!",
        "ed25519 1 " + encode_base64(bytes(31)),
        "ed25519 a:b " + encode_base64(bytes(32)),
    ],
)
def test_bad_key_files(text: str) -> None:
    with pytest.raises(ValueError):
        parse_signing_key_file(text)


# --- sign_json / verify_json ----------------------------------------------------------------------


def test_sign_json_keeps_unsigned_and_other_signatures_and_does_not_mutate() -> None:
    other = SigningKey.generate("other")
    original = {"a": 1, "unsigned": {"age": 5}, "signatures": {"elsewhere": {"ed25519:x": "sig"}}}
    snapshot = copy.deepcopy(original)
    signed = sign_json(original, SERVER, SPEC_KEY)
    assert original == snapshot
    assert signed["unsigned"] == {"age": 5}
    assert signed["signatures"]["elsewhere"] == {"ed25519:x": "sig"}
    twice = sign_json(signed, SERVER, other)
    assert set(twice["signatures"][SERVER]) == {"ed25519:1", "ed25519:other"}
    verify_json(twice, SERVER, SPEC_KEY.verify_key)
    verify_json(twice, SERVER, other.verify_key)
    assert key_ids_signed_by(twice, SERVER) == ["ed25519:1", "ed25519:other"]


def test_verify_json_failures() -> None:
    signed = sign_json({"a": 1}, SERVER, SPEC_KEY)
    signature = signed["signatures"][SERVER]["ed25519:1"]
    key = SPEC_KEY.verify_key
    cases: list[dict[str, Any]] = [
        {"a": 1},
        {**signed, "a": 2},
        {**signed, "b": None},
        {**signed, "signatures": []},
        {**signed, "signatures": {"other": signed["signatures"][SERVER]}},
        {**signed, "signatures": {SERVER: {"ed25519:2": signature}}},
        {**signed, "signatures": {SERVER: {"ed25519:1": "!!"}}},
        {**signed, "signatures": {SERVER: {"ed25519:1": 7}}},
        {**signed, "signatures": {SERVER: "ed25519:1"}},
        {**signed, "a": 1.0},
    ]
    for case in cases:
        with pytest.raises(SignatureError):
            verify_json(case, SERVER, key)
    with pytest.raises(SignatureError):
        verify_json(signed, SERVER, SigningKey("1", bytes(32)).verify_key)


def test_signature_of_and_key_ids() -> None:
    obj = {"signatures": {SERVER: {"ed25519:1": "AAAA", "curve25519:2": "AAAA", "x": "AAAA"}}}
    assert key_ids_signed_by(obj, SERVER) == ["ed25519:1"]
    assert key_ids_signed_by(obj, "other") == []
    assert key_ids_signed_by({"signatures": "x"}, SERVER) == []
    assert signature_of(obj, SERVER, "ed25519:1") == b"\x00\x00\x00"
    with pytest.raises(SignatureError):
        signature_of(obj, SERVER, "ed25519:2")


@settings(max_examples=200)
@given(objects, canonical_values)
def test_sign_verify_round_trip(obj: dict[str, Any], unsigned: Any) -> None:
    signed = sign_json({**obj, "unsigned": unsigned}, SERVER, SPEC_KEY)
    verify_json(signed, SERVER, SPEC_KEY.verify_key)
    # unsigned is not covered by the signature ...
    verify_json({**signed, "unsigned": {"changed": True}}, SERVER, SPEC_KEY.verify_key)
    # ... every other key is.
    with pytest.raises(SignatureError):
        verify_json({**signed, "added": 1}, SERVER, SPEC_KEY.verify_key)
    for key in obj:
        with pytest.raises(SignatureError):
            verify_json({**signed, key: [obj[key]]}, SERVER, SPEC_KEY.verify_key)
