"""Raw client-server API requests for endpoints matrix-nio has no method for (or to see the
HTTP status and errcode exactly)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp
import nio
import yarl

from rocketnode.app import Node
from rocketnode.core.canonical_json import encode_json


def path(*parts: str) -> str:
    """``/_matrix/client/v3/<parts>``, each part percent-encoded (``#``, ``!``, ``@``...)."""
    return "/_matrix/client/v3/" + "/".join(quote(part, safe="") for part in parts)


async def call(
    node: Node,
    method: str,
    url_path: str,
    client: nio.AsyncClient | None = None,
    body: Any = None,
    raw_body: bytes | None = None,
    params: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One request to ``node``: ``(HTTP status, decoded JSON body)``.

    ``client`` supplies the access token (none if omitted); ``body`` is sent as JSON,
    ``raw_body`` as it is.
    """
    url = yarl.URL(node.client_url + url_path, encoded=True)
    if params:
        url = url.update_query(params)
    headers = {"Content-Type": "application/json"}
    if client is not None:
        headers["Authorization"] = f"Bearer {client.access_token}"
    data = raw_body if raw_body is not None else (
        encode_json(body) if body is not None else None
    )
    async with aiohttp.ClientSession() as session, session.request(
        method, url, data=data, headers=headers
    ) as response:
        return response.status, await response.json()


async def errcode(
    node: Node, method: str, url_path: str, client: nio.AsyncClient | None = None,
    body: Any = None, raw_body: bytes | None = None, params: dict[str, str] | None = None,
) -> tuple[int, str]:
    """``(HTTP status, errcode)`` of a request that must fail."""
    status, answer = await call(node, method, url_path, client, body, raw_body, params)
    assert status >= 400, (status, answer)
    return status, answer["errcode"]


def http_status(response: nio.Response) -> int:
    """The HTTP status behind a nio response (some nio responses, such as those of
    ``room_put_alias`` and ``room_delete_alias``, never turn into errors)."""
    assert response.transport_response is not None
    return int(response.transport_response.status)
