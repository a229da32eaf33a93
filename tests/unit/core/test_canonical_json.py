"""Canonical JSON: the spec's examples, the encoding grammar, strict decoding, and fuzzing."""

from __future__ import annotations

import json
import math
from collections import OrderedDict, defaultdict
from pathlib import Path
from typing import Any

import canonicaljson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rocketnode.core.canonical_json import (
    check_canonical,
    decode_lenient,
    decode_strict,
    encode_canonical_json,
    encode_json,
)
from rocketnode.core.errors import CanonicalJsonError, Errcode

FIXTURES = Path(__file__).parents[2] / "fixtures"
SPEC_CASES = json.loads((FIXTURES / "canonical_json.json").read_text("utf-8"))["cases"]

# The integer range of the spec ("Canonical JSON"): [-(2**53)+1, (2**53)-1].
SPEC_MAX = 2**53 - 1
SPEC_MIN = -(2**53) + 1

# Characters that stress the encoder: every ASCII control character, the two characters JSON
# must escape, DEL, the JavaScript line separators, non-BMP characters and the BMP's last one.
SPECIAL_CHARS = [chr(c) for c in range(0x20)] + [
    '"', "\\", "/", "\x7f", "\u2028", "\u2029", "\ufeff", "\uffff", "é", "日", "😀", "\U0010ffff",
]

texts = st.text(st.sampled_from(SPECIAL_CHARS) | st.characters(codec="utf-8"), max_size=12)
canonical_ints = st.integers(SPEC_MIN, SPEC_MAX)
scalars = st.none() | st.booleans() | canonical_ints | texts
canonical_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=20,
)

# Any code point, lone surrogates included (hypothesis leaves them out unless asked).
any_chars = st.characters(codec="utf-8") | st.characters(categories=["Cs"])


def _spec_escape(char: str) -> str:
    """How the grammar in the spec's "Canonical JSON" section writes one character in a string."""
    short = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", '"': '\\"',
             "\\": "\\\\"}
    if char in short:
        return short[char]
    if ord(char) < 0x20:
        return f"\\u{ord(char):04x}"  # u000X / u001X with lower-case hex digits
    return char


# --- the spec's examples ----------------------------------------------------------------------


@pytest.mark.parametrize("case", SPEC_CASES, ids=[c["canonical"][:40] for c in SPEC_CASES])
def test_spec_example(case: dict[str, str]) -> None:
    canonical = case["canonical"].encode("utf-8")
    try:
        value = decode_strict(case["input"])
    except CanonicalJsonError:
        # Only the example {"a": -0, "b": 1e10} fails: room versions 6+ forbid the exponent form
        # (grammar: "removing ... fractions, exponents"). What is meaningful there is that the
        # lenient decoding of the input is numerically the spec's canonical output.
        assert "1e10" in case["input"]
        lenient = decode_lenient(case["input"])
        strict = decode_strict(canonical)
        assert lenient == strict and all(type(v) is int for v in strict.values())
        assert encode_canonical_json(strict) == canonical
        return
    assert encode_canonical_json(value) == canonical


@pytest.mark.parametrize("case", SPEC_CASES, ids=[c["canonical"][:40] for c in SPEC_CASES])
def test_spec_canonical_output_is_a_fixed_point(case: dict[str, str]) -> None:
    canonical = case["canonical"].encode("utf-8")
    assert encode_canonical_json(decode_strict(canonical)) == canonical


def test_spec_examples_agree_with_canonicaljson_package() -> None:
    for case in SPEC_CASES:
        value = decode_strict(case["canonical"])
        assert encode_canonical_json(value) == canonicaljson.encode_canonical_json(value)


# --- encoding -----------------------------------------------------------------------------------


@pytest.mark.parametrize("char", [*SPECIAL_CHARS, "a", "~", " "])
def test_string_escapes_follow_the_spec_grammar(char: str) -> None:
    expected = '["' + _spec_escape(char) + '"]'
    assert encode_canonical_json([char]) == expected.encode("utf-8")


def test_keys_sorted_by_code_point_not_utf16() -> None:
    # U+FFFF sorts before U+1F600 by code point; UTF-16 code units would put the emoji first.
    value = {"\U0001f600": 1, "\uffff": 2, "b": 3, "B": 4, "": 5}
    assert encode_canonical_json(value) == '{"":5,"B":4,"b":3,"\uffff":2,"\U0001f600":1}'.encode()


def test_integer_bounds() -> None:
    assert encode_canonical_json([SPEC_MIN, SPEC_MAX]) == b"[-9007199254740991,9007199254740991]"
    for bad in (SPEC_MAX + 1, SPEC_MIN - 1, 2**64, -(2**64)):
        with pytest.raises(CanonicalJsonError):
            encode_canonical_json({"n": bad})
        with pytest.raises(CanonicalJsonError):
            check_canonical([[bad]])


@pytest.mark.parametrize(
    "value",
    [
        1.0,
        {"a": 0.5},
        [math.nan],
        {"a": math.inf},
        {"a": -math.inf},
        {1: "int key"},
        {None: "null key"},
        {("t",): "tuple key"},
        {"a": {1, 2}},
        {"a": b"bytes"},
        {"a": object()},
        "\ud800",
        {"\udfff": 1},
        ["ok", "lone \udc00 surrogate"],
    ],
    ids=repr,
)
def test_encoding_rejects_non_canonical_values(value: Any) -> None:
    with pytest.raises(CanonicalJsonError):
        encode_canonical_json(value)


def test_mapping_subclasses_are_checked_like_dicts() -> None:
    # A dict subclass with a non-string key must not be silently encoded with a stringified key.
    for bad in (OrderedDict({1: "a"}), defaultdict(int, {2: 1}), {"a": OrderedDict({None: 1})}):
        with pytest.raises(CanonicalJsonError):
            encode_canonical_json(bad)
    assert encode_canonical_json(OrderedDict([("b", 1), ("a", 2)])) == b'{"a":2,"b":1}'
    assert encode_canonical_json({Errcode.NOT_FOUND: [Errcode.BAD_JSON]}) == (
        b'{"M_NOT_FOUND":["M_BAD_JSON"]}')


def test_negative_zero_is_written_as_zero() -> None:
    # "negative zero -0 MUST NOT appear": -0 as a Python int is 0.
    assert encode_canonical_json({"a": -0}) == b'{"a":0}'
    assert decode_strict(b"-0") == 0
    assert encode_canonical_json(decode_strict(b"[-0]")) == b"[0]"


def test_deep_nesting_is_a_canonical_json_error() -> None:
    value: Any = []
    for _ in range(100_000):
        value = [value]
    with pytest.raises(CanonicalJsonError):
        encode_canonical_json(value)
    with pytest.raises(CanonicalJsonError):
        encode_json(value)


def test_encode_json_allows_floats_but_not_nan() -> None:
    assert encode_json({"b": 1.5, "a": 1}) == b'{"a":1,"b":1.5}'
    for bad in (math.nan, math.inf, {"a": object()}, "\ud800"):
        with pytest.raises(CanonicalJsonError):
            encode_json(bad)


# --- decoding -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "1.0", "-0.0", "1e5", "1E5", "1e-5", '{"a":[1.5]}',
        str(SPEC_MAX + 1), str(SPEC_MIN - 1), "1" * 5000, "-" + "9" * 30,
        "NaN", "Infinity", "-Infinity", '{"a":NaN}',
        '{"a":1,"a":1}', '{"a":{"b":1,"c":2,"b":3}}', '[{"x":1,"x":2}]',
        '"\\ud800"', '"\\udc00"', '"\\uDBFF"', '"\\ud800\\u0041"', '"\\udc00\\ud800"',
        '{"\\ud800":1}', '{"a":["\\udfff"]}',
    ],
)
def test_decode_strict_rejects(text: str) -> None:
    with pytest.raises(CanonicalJsonError) as info:
        decode_strict(text)
    assert info.value.errcode == Errcode.BAD_JSON
    with pytest.raises(CanonicalJsonError):
        decode_strict(text.encode("utf-8"))


@pytest.mark.parametrize(
    "data",
    [b"", b"{", b"[1,]", b"{'a':1}", b"01", b"\xff", b'"\xc3"', b"\xed\xa0\x80", b"tru",
     b"[1] x", b"-NaN", b"\xef\xbb\xbf{}", b'"a\x00b"', b'"\\x41"', b"\x00"],
)
def test_decode_strict_malformed_is_not_json(data: bytes) -> None:
    with pytest.raises(CanonicalJsonError) as info:
        decode_strict(data)
    assert info.value.errcode == Errcode.NOT_JSON


def test_decode_strict_rejects_raw_lone_surrogates_in_text() -> None:
    # A str can hold lone surrogates that no UTF-8 byte string can; they must not slip through.
    for text in ('"\ud800"', '{"\udc00":1}', '["\ud83d\ude00"]'):
        with pytest.raises(CanonicalJsonError):
            decode_strict(text)


def test_decode_strict_accepts_surrogate_pairs_and_bounds() -> None:
    assert decode_strict('"\\ud83d\\ude00"') == "\U0001f600"
    assert decode_strict('{"\\uD83D\\uDE00":1}') == {"\U0001f600": 1}
    assert decode_strict(str(SPEC_MAX)) == SPEC_MAX
    assert decode_strict(str(SPEC_MIN)) == SPEC_MIN
    assert decode_strict(' {"a" : [ true , false , null ] } ') == {"a": [True, False, None]}


def test_deeply_nested_input_is_rejected_cleanly() -> None:
    with pytest.raises(CanonicalJsonError):
        decode_strict("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CanonicalJsonError):
        decode_lenient("[" * 100_000 + "]" * 100_000)


def test_decode_lenient() -> None:
    assert decode_lenient('{"a":1.5,"a":2}') == {"a": 2}
    for text in ("NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1" * 5000, b"\xff"):
        with pytest.raises(CanonicalJsonError):
            decode_lenient(text)


# --- properties ---------------------------------------------------------------------------------


@settings(max_examples=500)
@given(canonical_values)
def test_round_trip(value: Any) -> None:
    encoded = encode_canonical_json(value)
    assert decode_strict(encoded) == value
    assert decode_strict(encoded.decode("utf-8")) == value
    assert encode_canonical_json(decode_strict(encoded)) == encoded


@settings(max_examples=500)
@given(canonical_values)
def test_agrees_with_canonicaljson_package(value: Any) -> None:
    assert encode_canonical_json(value) == canonicaljson.encode_canonical_json(value)


@settings(max_examples=300)
@given(canonical_values)
def test_reencoding_pretty_json_gives_the_same_bytes(value: Any) -> None:
    pretty = json.dumps(value, indent=3, ensure_ascii=True)
    assert encode_canonical_json(decode_strict(pretty)) == encode_canonical_json(value)


def _decode_or_reject(data: str | bytes) -> None:
    try:
        value = decode_strict(data)
    except CanonicalJsonError as exc:
        assert exc.errcode in (Errcode.BAD_JSON, Errcode.NOT_JSON)
        return
    # Whatever strict decoding accepts must be a canonical JSON value.
    assert decode_strict(encode_canonical_json(value)) == value


@settings(max_examples=1000)
@given(st.text(any_chars, max_size=40))
@example('"\ud800"')
@example("1" * 5000)
def test_fuzz_decode_strict_text(text: str) -> None:
    _decode_or_reject(text)


@settings(max_examples=1000)
@given(st.binary(max_size=40))
def test_fuzz_decode_strict_bytes(data: bytes) -> None:
    _decode_or_reject(data)


_json_tokens = st.sampled_from(
    ['{', '}', '[', ']', ',', ':', '"', '\\', '\\u', 'd800', 'dc00', 'D83D', '\\ud800', '\\udc00',
     '"a"', '1', '-', '0', '.', '5', 'e', 'E', '+', '9007199254740992', 'true', 'null', 'NaN',
     'Infinity', ' ', '\n', '\x00', 'é', '\ud800', '\U0001f600']
)


@settings(max_examples=1500)
@given(st.lists(_json_tokens, max_size=25).map("".join))
def test_fuzz_decode_strict_json_like_text(text: str) -> None:
    _decode_or_reject(text)
    _decode_or_reject(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=500)
@given(canonical_values, st.integers(0, 200), st.text(any_chars, min_size=1, max_size=3))
def test_fuzz_decode_strict_mutated_json(value: Any, position: int, insert: str) -> None:
    text = json.dumps(value, ensure_ascii=bool(position % 2))
    position %= len(text) + 1
    _decode_or_reject(text[:position] + insert + text[position:])
    _decode_or_reject(text[:position] + text[position + 1 :])


@settings(max_examples=500)
@given(st.text(any_chars, max_size=30) | st.lists(_json_tokens, max_size=20).map("".join))
def test_fuzz_decode_lenient(text: str) -> None:
    try:
        value = decode_lenient(text)
    except CanonicalJsonError:
        return
    # Lenient decoding allows floats, never NaN or infinities.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            assert math.isfinite(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
