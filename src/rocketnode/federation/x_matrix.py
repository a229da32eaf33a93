"""X-Matrix request authentication (server-server API "Request Authentication").

The method, target URI, origin, destination and JSON body of a request are signed as one JSON
object; the signature travels in an ``Authorization: X-Matrix ...`` header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.core.ids import ServerName
from rocketnode.core.signing import SigningKey, sign_json

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
"""An RFC 9110 token: what a parameter name may be."""
_PARAM = re.compile(
    rf"""\s*({_TOKEN})\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s"]*))\s*(?:,|$)"""
)


@dataclass(frozen=True, slots=True)
class XMatrixAuth:
    origin: str
    destination: str | None
    key_id: str
    signature: str


def request_json(method: str, uri: str, origin: str, destination: str,
                 content: Any | None) -> dict[str, Any]:
    signed: dict[str, Any] = {"method": method, "uri": uri, "origin": origin,
                              "destination": destination}
    if content is not None:
        signed["content"] = content
    return signed


def authorization_header(
    method: str, uri: str, origin: str, destination: str, content: Any | None,
    key: SigningKey,
) -> str:
    signed = sign_json(request_json(method, uri, origin, destination, content), origin, key)
    signature = signed["signatures"][origin][key.key_id]
    return (
        f'X-Matrix origin="{origin}",destination="{destination}",'
        f'key="{key.key_id}",sig="{signature}"'
    )


def _unauthorized(message: str) -> MatrixError:
    return MatrixError(Errcode.UNAUTHORIZED, message, 401)


def parse_authorization(header: str) -> XMatrixAuth:
    """Parse an ``X-Matrix`` Authorization header; ``M_UNAUTHORIZED`` if it is malformed."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "x-matrix":
        raise _unauthorized("Missing X-Matrix authorization")
    params: dict[str, str] = {}
    position = 0
    rest = rest.strip()
    while position < len(rest):
        match = _PARAM.match(rest, position)
        if match is None or match.end() == position:
            raise _unauthorized("Malformed X-Matrix authorization header")
        quoted, bare = match.group(2), match.group(3)
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        params[match.group(1).lower()] = value
        position = match.end()
    try:
        origin, key_id, signature = params["origin"], params["key"], params["sig"]
    except KeyError as exc:
        raise _unauthorized(f"X-Matrix authorization lacks {exc.args[0]!r}") from exc
    try:
        ServerName.parse(origin)
    except MatrixError as exc:
        raise _unauthorized("X-Matrix origin is not a server name") from exc
    return XMatrixAuth(origin, params.get("destination"), key_id, signature)
