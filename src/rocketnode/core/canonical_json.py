"""Canonical JSON (spec appendix "Canonical JSON") and strict JSON decoding.

Encoding: UTF-8, no insignificant whitespace, keys sorted by code point, no escaping beyond what
JSON requires, integers only within [-(2**53)+1, 2**53-1].

Decoding: :func:`decode_strict` rejects what room versions 6+ forbid: floats, integers out of
range, NaN/Infinity, duplicate keys and lone surrogates. Every failure is a
:class:`~rocketnode.core.errors.CanonicalJsonError`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from rocketnode.core.errors import CanonicalJsonError, Errcode

MIN_INT = -(2**53) + 1
MAX_INT = 2**53 - 1

_encoder = json.JSONEncoder(
    ensure_ascii=False,
    allow_nan=False,
    separators=(",", ":"),
    sort_keys=True,
)

# An escaped UTF-16 surrogate in JSON text, or a raw surrogate code point. Raw surrogates cannot
# come out of valid UTF-8, but a ``str`` handed to us can hold them. Text without either cannot
# decode to a lone surrogate, so this pattern lets us skip the slow check usually.
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}|[\ud800-\udfff]")


def check_canonical(value: Any) -> None:
    """Raise :class:`CanonicalJsonError` if ``value`` cannot be encoded as canonical JSON."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if not MIN_INT <= item <= MAX_INT:
                raise CanonicalJsonError(f"Integer out of range: {item}")
        elif kind is dict or isinstance(item, Mapping):
            for key, child in item.items():
                if type(key) is not str and not isinstance(key, str):
                    raise CanonicalJsonError("Object keys must be strings")
                stack.append(child)
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif kind is float:
            raise CanonicalJsonError("Floats are not allowed in canonical JSON")
        elif isinstance(item, bool | str):
            continue
        elif isinstance(item, int):
            if not MIN_INT <= item <= MAX_INT:
                raise CanonicalJsonError(f"Integer out of range: {item}")
        elif isinstance(item, list | tuple):
            stack.extend(item)
        else:
            raise CanonicalJsonError(f"Value of type {kind.__name__} is not JSON")


def encode_canonical_json(value: Any) -> bytes:
    """Encode ``value`` as canonical JSON bytes; :class:`CanonicalJsonError` if it cannot be."""
    check_canonical(value)
    return _encode_unchecked(value)


def encode_canonical_json_checked(value: Any) -> bytes:
    """Canonical JSON of a value already known to pass :func:`check_canonical` (e.g. a part of
    a PDU whose whole was checked): the same bytes, without walking the value again."""
    return _encode_unchecked(value)


def _encode_unchecked(value: Any) -> bytes:
    try:
        return _encoder.encode(value).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CanonicalJsonError("Strings must not contain lone surrogates") from exc
    except RecursionError as exc:
        raise CanonicalJsonError("JSON value is nested too deeply") from exc
    except (TypeError, ValueError) as exc:
        raise CanonicalJsonError(str(exc)) from exc


def encode_json(value: Any) -> bytes:
    """Encode compact JSON for transport (no canonical checks; finite floats pass through)."""
    return _encode_unchecked(value)


def _reject_float(text: str) -> Any:
    raise CanonicalJsonError(f"Floats are not allowed: {text}")


def _reject_constant(text: str) -> Any:
    raise CanonicalJsonError(f"{text} is not allowed")


def _checked_int(text: str) -> int:
    if len(text) > 17:
        raise CanonicalJsonError("Integer out of range")
    number = int(text)
    if not MIN_INT <= number <= MAX_INT:
        raise CanonicalJsonError(f"Integer out of range: {text}")
    return number


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise CanonicalJsonError("Duplicate keys in object")
    return result


_strict_decoder = json.JSONDecoder(
    parse_float=_reject_float,
    parse_int=_checked_int,
    parse_constant=_reject_constant,
    object_pairs_hook=_no_duplicates,
)


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise CanonicalJsonError(f"Number out of range: {text}")
    return number


def _lenient_int(text: str) -> int:
    try:
        return int(text)
    except ValueError as exc:  # more digits than Python converts (sys.get_int_max_str_digits)
        raise CanonicalJsonError("Integer has too many digits") from exc


_lenient_decoder = json.JSONDecoder(
    parse_float=_finite_float, parse_int=_lenient_int, parse_constant=_reject_constant
)


def _text_of(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CanonicalJsonError("Body is not valid UTF-8", Errcode.NOT_JSON) from exc


def _check_no_lone_surrogates(value: Any) -> None:
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise CanonicalJsonError("Strings must not contain lone surrogates") from exc
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def decode_strict(data: bytes | str) -> Any:
    """Decode JSON under the rules of room versions 6+; raise :class:`CanonicalJsonError`.

    Malformed JSON raises with ``M_NOT_JSON``; well-formed JSON that breaks the canonical JSON
    rules raises with ``M_BAD_JSON``.
    """
    text = _text_of(data)
    try:
        value = _strict_decoder.decode(text)
    except CanonicalJsonError:
        raise
    except (json.JSONDecodeError, RecursionError) as exc:
        raise CanonicalJsonError(f"Malformed JSON: {exc}", Errcode.NOT_JSON) from exc
    if _SURROGATE.search(text):
        _check_no_lone_surrogates(value)
    return value


def decode_lenient(data: bytes | str) -> Any:
    """Decode JSON that need not be canonical (finite floats allowed; NaN/Infinity rejected)."""
    text = _text_of(data)
    try:
        return _lenient_decoder.decode(text)
    except CanonicalJsonError:
        raise
    except (json.JSONDecodeError, RecursionError) as exc:
        raise CanonicalJsonError(f"Malformed JSON: {exc}", Errcode.NOT_JSON) from exc
