"""X-Matrix request authentication (server-server API "Request Authentication"): the header we
send parses back, parsing follows the spec's rules, and the signature verifies over the
request JSON. Synapse's own header parser is the oracle on generated headers."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from synapse.federation.transport.server._base import _parse_auth_header

from rocketnode.core.errors import Errcode, MatrixError, SignatureError
from rocketnode.core.signing import SigningKey, verify_json
from rocketnode.federation.x_matrix import (
    XMatrixAuth,
    authorization_header,
    parse_authorization,
    request_json,
)

KEY = SigningKey("abc_1", bytes(range(32)))
ORIGIN, DESTINATION = "origin.test:8448", "destination.test"
URI = "/_matrix/federation/v1/send/%21abc%3Ahost?x=%40u%3Ahost"


def _signed(header: str, method: str, uri: str, content: Any | None) -> dict[str, Any]:
    """What a receiving server verifies: the request JSON with the header's signature."""
    auth = parse_authorization(header)
    signed = request_json(method, uri, auth.origin, DESTINATION, content)
    signed["signatures"] = {auth.origin: {auth.key_id: auth.signature}}
    return signed


def test_our_header_parses_back() -> None:
    header = authorization_header("PUT", URI, ORIGIN, DESTINATION, {"a": 1}, KEY)
    assert header.startswith('X-Matrix origin="origin.test:8448",')
    auth = parse_authorization(header)
    assert (auth.origin, auth.destination, auth.key_id) == (ORIGIN, DESTINATION, "ed25519:abc_1")
    assert len(auth.signature) == 86  # unpadded base64 of 64 bytes


@pytest.mark.parametrize("content", [None, {}, {"pdus": [], "edus": [{"x": "é"}]}])
def test_signature_verifies_over_request_json(content: Any | None) -> None:
    header = authorization_header("PUT", URI, ORIGIN, DESTINATION, content, KEY)
    verify_json(_signed(header, "PUT", URI, content), ORIGIN, KEY.verify_key)


@pytest.mark.parametrize(("method", "uri", "content"), [
    ("GET", URI, {"a": 1}),
    ("PUT", URI.replace("x=", "y="), {"a": 1}),
    ("PUT", URI, {"a": 2}),
    ("PUT", URI, None),
])
def test_signature_covers_method_uri_and_content(method: str, uri: str, content: Any) -> None:
    header = authorization_header("PUT", URI, ORIGIN, DESTINATION, {"a": 1}, KEY)
    with pytest.raises(SignatureError):
        verify_json(_signed(header, method, uri, content), ORIGIN, KEY.verify_key)


def test_request_json_omits_absent_content() -> None:
    assert request_json("GET", "/x", "a", "b", None) == {
        "method": "GET", "uri": "/x", "origin": "a", "destination": "b"}
    assert request_json("PUT", "/x", "a", "b", {})["content"] == {}


@pytest.mark.parametrize(("header", "expected"), [
    # the spec's example
    ('X-Matrix origin="origin.hs.example.com",destination="destination.hs.example.com",'
     'key="ed25519:key1",sig="ABCDEF..."',
     XMatrixAuth("origin.hs.example.com", "destination.hs.example.com", "ed25519:key1",
                 "ABCDEF...")),
    # names are case-insensitive, in any order; the scheme too
    ('x-matrix SIG="s",Key="ed25519:k",ORIGIN="o.test"', XMatrixAuth("o.test", None,
                                                                     "ed25519:k", "s")),
    # unquoted values, with colons (older servers)
    ("X-Matrix origin=o.test:8448,key=ed25519:k,sig=s,destination=d.test:443",
     XMatrixAuth("o.test:8448", "d.test:443", "ed25519:k", "s")),
    # spaces and tabs around commas, several spaces after the scheme
    ('X-Matrix   origin="o.test" ,\tkey="ed25519:k"\t,  sig="s"',
     XMatrixAuth("o.test", None, "ed25519:k", "s")),
    # backslash escapes in quoted values are undone
    (r'X-Matrix origin="o.test",key="ed25519:\k",sig="a\"b\\c\,d"',
     XMatrixAuth("o.test", None, "ed25519:k", 'a"b\\c,d')),
    # a comma inside a quoted value does not split it
    ('X-Matrix origin="o.test",key="ed25519:k",sig="x,y=z"',
     XMatrixAuth("o.test", None, "ed25519:k", "x,y=z")),
    # unknown parameters are ignored, quoted or not
    ('X-Matrix origin="o.test",future=1,key="ed25519:k",other="a, b",sig="s"',
     XMatrixAuth("o.test", None, "ed25519:k", "s")),
    # unknown parameter names may use any token character (RFC 9110 section 5.6.2)
    ("X-Matrix origin=o.test,org.example.v2=1,key=ed25519:k,x~y!='q',sig=s",
     XMatrixAuth("o.test", None, "ed25519:k", "s")),
    # IPv6 origin
    ('X-Matrix origin="[::1]:8448",key="ed25519:k",sig="s"',
     XMatrixAuth("[::1]:8448", None, "ed25519:k", "s")),
])
def test_parsing_rules(header: str, expected: XMatrixAuth) -> None:
    assert parse_authorization(header) == expected


@pytest.mark.parametrize("header", [
    'X-Matrix key="ed25519:k",sig="s"',  # no origin
    'X-Matrix origin="o.test",sig="s"',  # no key
    'X-Matrix origin="o.test",key="ed25519:k"',  # no sig
    "X-Matrix",
    "",
    'Bearer origin="o.test",key="ed25519:k",sig="s"',  # another scheme
    'X-Matrix origin="not a server name",key="ed25519:k",sig="s"',
    'X-Matrix origin="o.test",key="ed25519:k",sig="s',  # unterminated quote
    'X-Matrix origin="o.test" key="ed25519:k",sig="s"',  # no comma
    "X-Matrix origin=o test,key=ed25519:k,sig=s",  # space in a bare value
    'X-Matrix origin="o.test",key="ed25519:k",sig',  # no value
])
def test_malformed_headers_are_unauthorized(header: str) -> None:
    with pytest.raises(MatrixError) as caught:
        parse_authorization(header)
    assert caught.value.errcode is Errcode.UNAUTHORIZED
    assert caught.value.status == 401


# -- Synapse as oracle ---------------------------------------------------------------------------

_hosts = st.sampled_from(["o.test", "origin.example.org:8448", "1.2.3.4", "[::1]:443",
                          "a-b.c", "localhost:1"])
_key_ids = st.from_regex(r"ed25519:[A-Za-z0-9_]{1,8}", fullmatch=True)
_sigs = st.from_regex(r"[A-Za-z0-9+/]{4,90}", fullmatch=True)
_names = ["origin", "destination", "key", "sig"]


@st.composite
def _headers(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    """A header as some server might write it: any name case and order, quoted or bare
    values, optional destination, unknown parameters, spaces and tabs around commas."""
    values = {"origin": draw(_hosts), "destination": draw(_hosts), "key": draw(_key_ids),
              "sig": draw(_sigs)}
    names = [n for n in _names if n != "destination" or draw(st.booleans())]
    unknown = st.sampled_from(["foo", "x_y", "v2", "org.example.x", "a+b~c"])
    names += draw(st.lists(unknown, max_size=2, unique=True))
    order = draw(st.permutations(names))
    params = []
    for name in order:
        value = values.get(name, "ignored")
        spelled = "".join(c.upper() if draw(st.booleans()) else c for c in name)
        params.append(f'{spelled}="{value}"' if draw(st.booleans()) else f"{spelled}={value}")
    separators = draw(st.lists(st.sampled_from([",", " ,", ", ", "\t,\t", " , "]),
                               min_size=len(params), max_size=len(params)))
    text = "".join(p + s for p, s in zip(params, separators, strict=True))[:-len(separators[-1])]
    return "X-Matrix" + " " * draw(st.integers(1, 3)) + text, {
        k: v for k, v in values.items() if k in names}


@settings(max_examples=300, deadline=None)
@given(_headers())
def test_parses_like_synapse(generated: tuple[str, dict[str, str]]) -> None:
    header, values = generated
    origin, key, sig, destination = _parse_auth_header(header.encode())
    ours = parse_authorization(header)
    assert (ours.origin, ours.key_id, ours.signature, ours.destination) == (
        origin, key, sig, destination)
    assert (ours.origin, ours.key_id, ours.signature, ours.destination) == (
        values["origin"], values["key"], values["sig"], values.get("destination"))


@settings(max_examples=50, deadline=None)
@given(_hosts, _hosts, st.sampled_from(["GET", "PUT", "POST"]))
def test_synapse_parses_our_header(origin: str, destination: str, method: str) -> None:
    header = authorization_header(method, URI, origin, destination, {"k": [1]}, KEY)
    assert _parse_auth_header(header.encode()) == (
        origin, KEY.key_id, parse_authorization(header).signature, destination)
