"""Requests and responses of client endpoints: bodies read strictly (malformed JSON is
``M_NOT_JSON``, the wrong shape ``M_BAD_JSON``; nothing reaches a service that does not fit),
query parameters checked, JSON answers."""

from __future__ import annotations

from typing import Any, TypeVar

from aiohttp import web

from rocketnode.core.canonical_json import decode_lenient, encode_json
from rocketnode.core.errors import Errcode, MatrixError

T = TypeVar("T")


async def read_json_object(request: web.Request, allow_empty: bool = False) -> dict[str, Any]:
    """The request body as a JSON object."""
    raw = await request.read()
    if not raw.strip():
        if allow_empty:
            return {}
        raise MatrixError(Errcode.NOT_JSON, "Request body is empty; a JSON object is required")
    value = decode_lenient(raw)
    if not isinstance(value, dict):
        raise MatrixError(Errcode.BAD_JSON, "Request body must be a JSON object")
    return value


def field(body: dict[str, Any], name: str, kind: type[T], required: bool = True,
          default: T | None = None) -> T:
    """``body[name]`` checked to be of type ``kind`` (bool is not an int here)."""
    if name not in body or body[name] is None:
        if required:
            raise MatrixError(Errcode.MISSING_PARAM, f"Missing '{name}'")
        return default  # type: ignore[return-value]
    value = body[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise MatrixError(Errcode.BAD_JSON, f"'{name}' must be of type {kind.__name__}")
    return value


def optional_str(body: dict[str, Any], name: str) -> str | None:
    return field(body, name, str, required=False)


def query_int(request: web.Request, name: str, default: int, minimum: int = 0,
              maximum: int = 2**31) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise MatrixError(Errcode.INVALID_PARAM, f"'{name}' must be an integer") from exc
    return max(minimum, min(value, maximum))


def json_response(body: object, status: int = 200) -> web.Response:
    return web.Response(body=encode_json(body), status=status, content_type="application/json")
