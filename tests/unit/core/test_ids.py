"""Identifiers (spec appendix "Identifier Grammar"): what parses, what does not, and fuzzing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rocketnode.core.errors import Errcode, InvalidIdentifier
from rocketnode.core.ids import (
    EventId,
    RoomAlias,
    RoomId,
    ServerName,
    UserId,
    is_valid_server_name,
    is_valid_user_id,
    server_name_of,
)

FIXTURES = json.loads(
    (Path(__file__).parents[2] / "fixtures" / "identifiers.json").read_text("utf-8")
)
HASH_43 = "Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ"

# --- server names -------------------------------------------------------------------------------

VALID_SERVER_NAMES = [
    *FIXTURES["valid_server_names"],
    "localhost",
    "localhost:8448",
    "example.com:1",
    "example.com:65535",
    "example.com:08448",  # grammar: port = 1*5DIGIT; leading zeros are digits too
    "MATRIX.ORG",  # upper case is discouraged, not forbidden
    "a",
    "a-b.c-d",
    "-leading-hyphen.example",  # the spec's dns-char allows "-" anywhere in a label
    "xn--bcher-kva.example",
    "123",  # a dns-name: only four dot-separated numbers form an IPv4 literal
    "1.2.3",
    "1.2.3.4.5",
    "0.0.0.0",
    "255.255.255.255:443",
    "[::]",
    "[::1]",
    "[::1]:8448",
    "[2001:DB8::1]",
    "[2001:db8:0:0:0:0:0:1]",
    "[0001:0db8::1]",
    "[::ffff:1.2.3.4]",
    "[::ffff:1.2.3.4]:1",
    "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 63,  # 255 characters
]

INVALID_SERVER_NAMES = [
    "",
    ":8448",
    "example.com:",
    "example.com:abc",
    "example.com:-1",
    "example.com:+80",
    "example.com: 80",
    "example.com:8_0",
    "example.com:123456",  # port is at most 5 digits
    "example.com:0",  # 0 is not a port a server can be reached at
    "example.com:65536",
    "example.com:99999",
    "example.com:80:80",
    "example.com:８０",  # non-ASCII digits
    "exa mple.com",
    "exa_mple.com",
    "exämple.com",
    "example.com\n",
    "example.com/",
    "user@example.com",
    ".",
    "..",
    ".example.com",
    "example.com.",  # labels are separated by ".": no empty label (spec prose, as Synapse)
    "a..b",
    "a" * 256,
    "1.2.3.256",  # four numbers form an IPv4 literal, each 0-255
    "256.1.1.1",
    "01.2.3.4",  # leading zeros: getaddrinfo reads 010.0.0.1 as octal, an IP filter as decimal
    "[::1",
    "::1",
    "[::1]:",
    "[::1]x",
    "[::1]:0",
    "[::1]:65536",
    "[]",
    "[1.2.3.4]",
    "[:::]",
    "[1::2::3]",
    "[12345::]",
    "[::g]",
    "[fe80::1%eth0]",
    "[fe80::1%25eth0]",
    "[::1]]",
    "[[::1]]",
    "[" + "1:" * 30 + ":1]",
]


@pytest.mark.parametrize("value", VALID_SERVER_NAMES)
def test_valid_server_names(value: str) -> None:
    server_name = ServerName.parse(value)
    assert str(server_name) == value
    assert is_valid_server_name(value)


@pytest.mark.parametrize("value", INVALID_SERVER_NAMES)
def test_invalid_server_names(value: str) -> None:
    with pytest.raises(InvalidIdentifier) as info:
        ServerName.parse(value)
    assert info.value.errcode == Errcode.INVALID_PARAM
    assert info.value.status == 400
    assert not is_valid_server_name(value)


def test_server_name_parts() -> None:
    assert ServerName.parse("matrix.org:8888") == ServerName("matrix.org", 8888)
    assert ServerName.parse("matrix.org") == ServerName("matrix.org", None)
    assert ServerName.parse("[1234:5678::abcd]:5678") == ServerName("[1234:5678::abcd]", 5678)
    assert ServerName.parse("1.2.3.4").is_ip_literal
    assert ServerName.parse("[::1]").is_ip_literal
    assert not ServerName.parse("matrix.org").is_ip_literal
    assert not ServerName.parse("1.2.3").is_ip_literal
    assert str(ServerName("matrix.org", 8888)) == "matrix.org:8888"


def test_server_names_are_case_sensitive_strings() -> None:
    # Spec: "@user:matrix.org is a different person from @user:MATRIX.ORG".
    assert ServerName.parse("matrix.org") != ServerName.parse("MATRIX.ORG")
    # The same goes for two spellings of one port: they are two server names.
    assert ServerName.parse("h:08448") != ServerName.parse("h:8448")
    assert ServerName.parse("h:8448") == ServerName("h", 8448)
    assert ServerName.parse("h:08448").port == 8448


@pytest.mark.parametrize("value", [None, 1, b"example.com", ["example.com"]])
def test_server_name_of_wrong_type(value: Any) -> None:
    with pytest.raises(InvalidIdentifier):
        ServerName.parse(value)


# --- user IDs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        *FIXTURES["user_id_examples"],
        "@alice:example.com",
        "@a.b_c=d-e/f+g:example.com:8448",
        "@alice:[::1]:8448",
        # Historical user IDs must be accepted over federation: any non-surrogate code point
        # except ":" and NUL, control characters and the empty string included.
        "@:example.com",
        "@Alice:example.com",
        "@ali ce:example.com",
        "@日本:example.com",
        "@\x01\x7f\u2028:example.com",
        "@\U0001f600:example.com",
        "@@#!$:example.com",
    ],
)
def test_valid_user_ids(value: str) -> None:
    user_id = UserId.parse(value)
    assert str(user_id) == value
    assert is_valid_user_id(value)


def test_user_id_parts() -> None:
    user_id = UserId.parse("@alice:example.com:8448")
    assert user_id == UserId("alice", "example.com:8448")
    assert server_name_of("@alice:example.com:8448") == "example.com:8448"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "@",
        "alice:example.com",
        "#alice:example.com",
        "@alice",
        "@alice:",
        "@alice:exa mple.com",
        "@alice:example.com:0",
        "@al\x00ice:example.com",
        "@al\ud800ice:example.com",  # a lone surrogate is not a legal code point
        "@\udc00:example.com",
        "@" + "a" * 243 + ":example.com",  # 256 bytes
        "@" + "é" * 122 + ":example.com",  # 257 bytes in UTF-8, 135 characters
        None,
        42,
    ],
)
def test_invalid_user_ids(value: Any) -> None:
    with pytest.raises(InvalidIdentifier):
        UserId.parse(value)
    assert not is_valid_user_id(value)


def test_user_id_length_limit_is_in_bytes() -> None:
    longest = "@" + "a" * 242 + ":example.com"
    assert len(longest.encode()) == 255
    assert UserId.parse(longest).localpart == "a" * 242
    two_byte = "@" + "ü" * 121 + ":example.com"
    assert len(two_byte.encode()) == 255
    assert UserId.parse(two_byte).localpart == "ü" * 121
    with pytest.raises(InvalidIdentifier):
        UserId.parse("@" + "ü" * 122 + ":example.com")  # 135 characters, 257 bytes


@pytest.mark.parametrize(
    ("value", "compliant"),
    [
        ("@alice:example.com", True),
        ("@a.b_c=d-e/f+g0:example.com", True),
        ("@Alice:example.com", False),
        ("@:example.com", False),
        ("@al ice:example.com", False),
        ("@日本:example.com", False),
        ("@a#b:example.com", False),
    ],
)
def test_user_id_compliance(value: str, compliant: bool) -> None:
    assert UserId.parse(value).is_compliant is compliant
    if compliant:
        assert UserId.parse_compliant(value) == UserId.parse(value)
    else:
        with pytest.raises(InvalidIdentifier) as info:
            UserId.parse_compliant(value)
        assert info.value.errcode == Errcode.INVALID_USERNAME


# --- room IDs, event IDs, aliases ---------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [*FIXTURES["room_id_examples"], "!:example.com", "!a:b", "!日本\x01:example.com:1",
              "!" + HASH_43]
)
def test_valid_room_ids(value: str) -> None:
    room_id = RoomId.parse(value)
    assert str(room_id) == value


def test_room_id_forms() -> None:
    assert RoomId.parse("!abc:example.org") == RoomId("abc", "example.org")
    assert RoomId.parse("!" + HASH_43) == RoomId(HASH_43, None)
    assert RoomId.from_create_event_id("$" + HASH_43) == RoomId(HASH_43, None)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "!",
        "abc:example.org",
        "$abc:example.org",
        "!abc",  # no domain: must then be a 43-character URL-safe base64 hash
        "!" + HASH_43[:-1],
        "!" + HASH_43 + "A",
        "!" + HASH_43[:-1] + "+",
        "!" + HASH_43[:-1] + "=",
        "!abc:",
        "!abc:example.org:0",
        "!a\x00b:example.org",
        "!a\ud800:example.org",
        "!" + "a" * 243 + ":example.org",
        None,
    ],
)
def test_invalid_room_ids(value: Any) -> None:
    with pytest.raises(InvalidIdentifier):
        RoomId.parse(value)


@pytest.mark.parametrize("value", ["$abc", "$" + HASH_43 + "x", "abc", "", None])
def test_room_id_from_create_event_id_needs_a_hash(value: Any) -> None:
    with pytest.raises(InvalidIdentifier):
        RoomId.from_create_event_id(value)


@pytest.mark.parametrize("value", [*FIXTURES["event_id_examples"], "$" + HASH_43, "$a"])
def test_valid_event_ids(value: str) -> None:
    assert str(EventId.parse(value)) == value


@pytest.mark.parametrize(
    "value", ["", "$", "abc", "!abc", "$a\x00", "$\ud800", "$" + "a" * 255, None, 1]
)
def test_invalid_event_ids(value: Any) -> None:
    with pytest.raises(InvalidIdentifier):
        EventId.parse(value)


@pytest.mark.parametrize(
    "value", [*FIXTURES["room_alias_examples"], "#:example.org", "#日本 x:example.org:1"]
)
def test_valid_room_aliases(value: str) -> None:
    alias = RoomAlias.parse(value)
    assert str(alias) == value


@pytest.mark.parametrize(
    "value",
    ["", "#", "#abc", "#abc:", "abc:example.org", "#a\x00:example.org", "#a\udfff:example.org",
     "#" + "a" * 243 + ":example.org", None],
)
def test_invalid_room_aliases(value: Any) -> None:
    with pytest.raises(InvalidIdentifier):
        RoomAlias.parse(value)


# --- fuzzing: every failure is an InvalidIdentifier ----------------------------------------------

_any_char = st.characters(codec="utf-8") | st.characters(categories=["Cs"])
_id_chars = st.sampled_from([*"@!#$:[].-_0123456789aAzZ%+/ \x00é日", "\ud800", "😀"])
_id_like = st.text(_id_chars, max_size=30) | st.text(_any_char, max_size=30)
_PARSERS = [ServerName.parse, UserId.parse, UserId.parse_compliant, RoomId.parse,
            RoomId.from_create_event_id, EventId.parse, RoomAlias.parse]


@settings(max_examples=2000)
@given(_id_like, st.sampled_from(["", "@", "!", "#", "$"]), st.sampled_from(["", ":a.b", ":1"]))
@example("[", "", "")
@example("@a:[", "", "")
@example("a", "@", ":[::1]:99999")
def test_fuzz_parsers_raise_only_invalid_identifier(text: str, sigil: str, suffix: str) -> None:
    value = sigil + text + suffix
    for parse in _PARSERS:
        try:
            parsed = parse(value)
        except InvalidIdentifier:
            continue
        # Whatever parses is a legal string: no NUL, no lone surrogate, at most 255 bytes.
        rendered = str(parsed)
        assert "\x00" not in rendered
        assert len(rendered.encode("utf-8")) <= 255 or parse is ServerName.parse


_label = st.text(st.sampled_from("abcXYZ019-"), min_size=1, max_size=10)
_dns_names = (
    st.lists(_label, min_size=1, max_size=4)
    .map(".".join)
    .filter(lambda name: not re.fullmatch(r"[0-9]+(\.[0-9]+){3}", name))
)
_ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
_ipv6 = st.ip_addresses(v=6).map(lambda a: f"[{a}]")
_ports = st.none() | st.integers(1, 65535)


@settings(max_examples=500)
@given(st.one_of(_dns_names, _ipv4, _ipv6), _ports, st.text(_any_char, max_size=8))
def test_generated_server_names_round_trip(host: str, port: int | None, localpart: str) -> None:
    name = host if port is None else f"{host}:{port}"
    parsed = ServerName.parse(name)
    assert (parsed.host, parsed.port) == (host, port)
    assert str(parsed) == name
    user_id = "@" + localpart + ":" + name
    legal = (
        ":" not in localpart
        and "\x00" not in localpart
        and not any(0xD800 <= ord(c) <= 0xDFFF for c in localpart)
        and len(user_id.encode("utf-8", "surrogatepass")) <= 255
    )
    assert is_valid_user_id(user_id) is legal


def test_server_name_port_text_must_spell_the_port() -> None:
    assert ServerName("h", 8448, "08448").port_text == "08448"
    for port, text in ((8448, "8449"), (None, "1"), (1, "+1"), (1, "")):
        with pytest.raises(ValueError):
            ServerName("h", port, text)
