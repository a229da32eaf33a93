"""Several RocketNodes federating on loopback, and helpers to drive and compare them.

Each node's server name is ``127.0.0.1:<federation port>``. Ports are picked once (bind to
port 0, read the port, close) and kept, so a node can be stopped and started again on the same
data directory and ports, and clients pointed at it keep working across the restart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import nio

from rocketnode.config import Listen
from tests.nodes import ClientFactory, node_config
from tests.support.rocketnode import NodeHandle
from tests.support.synapse import free_port

T = TypeVar("T")
V3 = "/_matrix/client/v3"
DEADLINE_S = 20.0


class Cluster:
    """Starts named nodes under one directory and stops them all at the end."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self.handles: dict[str, NodeHandle] = {}

    def configure(self, name: str, **overrides: Any) -> NodeHandle:
        federation_port, client_port = free_port(), free_port()
        config = node_config(
            self._root / name, server_name=f"127.0.0.1:{federation_port}",
            federation_listen=Listen("127.0.0.1", federation_port),
            client_listen=Listen("127.0.0.1", client_port), **overrides)
        handle = self.handles[name] = NodeHandle(name, config)
        return handle

    async def start(self, name: str, **overrides: Any) -> NodeHandle:
        handle = self.configure(name, **overrides)
        await handle.start()
        return handle

    async def close(self) -> None:
        """Stop every node, even when stopping one of them fails."""
        failures: list[BaseException] = []
        for handle in reversed(list(self.handles.values())):
            try:
                await handle.stop()
            except Exception as exc:
                failures.append(exc)
        if failures:
            raise failures[0]


# -- waiting -----------------------------------------------------------------------------------


async def eventually(check: Callable[[], Awaitable[T]], timeout: float = DEADLINE_S,
                     interval: float = 0.05, what: str = "condition") -> T:
    """Await ``check()`` until it returns without an AssertionError; re-raise the last one
    once ``timeout`` has passed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await check()
        except AssertionError as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {exc}") from exc
        await asyncio.sleep(interval)


# -- client API helpers (raw HTTP, so the tests see exactly what the server says) --------------


Query = dict[str, str] | list[tuple[str, str]]


async def api(client: nio.AsyncClient, method: str, path: str, body: Any = None,
              query: Query | None = None) -> tuple[int, Any]:
    """One client-server request with the client's access token: ``(status, JSON body)``."""
    headers = {"Authorization": f"Bearer {client.access_token}"}
    timeout = aiohttp.ClientTimeout(total=DEADLINE_S)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.request(
            method, client.homeserver + path, json=body, params=query,
            headers=headers) as response:
        return response.status, await response.json(content_type=None)


def room_path(room_id: str, *rest: str) -> str:
    return f"{V3}/rooms/{quote(room_id, safe='')}" + "".join(
        "/" + quote(part, safe="") for part in rest)


async def room_state(client: nio.AsyncClient, room_id: str) -> list[tuple[str, str, str]]:
    """GET /rooms/{roomId}/state as sorted ``(type, state_key, event_id)``."""
    status, body = await api(client, "GET", room_path(room_id, "state"))
    assert status == 200, body
    return sorted((e["type"], e["state_key"], e["event_id"]) for e in body)


async def membership_of(client: nio.AsyncClient, room_id: str, user_id: str) -> str | None:
    status, body = await api(client, "GET", room_path(room_id, "state", "m.room.member",
                                                      user_id))
    return body.get("membership") if status == 200 else None


async def timeline(client: nio.AsyncClient, room_id: str, limit: int = 1000, page: int = 500
                   ) -> list[dict[str, Any]]:
    """Every event of the room the client may see, oldest first (paginating /messages,
    ``page`` events at a time)."""
    events: list[dict[str, Any]] = []
    query: dict[str, str] = {"dir": "b", "limit": str(min(limit, page))}
    for _ in range(100):
        status, body = await api(client, "GET", room_path(room_id, "messages"), query=query)
        assert status == 200, body
        events.extend(body["chunk"])
        end = body.get("end")
        if end is None or len(events) >= limit:  # a page may be empty yet not the last
            break
        query["from"] = end
    return list(reversed(events))


async def bodies(client: nio.AsyncClient, room_id: str, limit: int = 1000, page: int = 500
                 ) -> list[str]:
    """The bodies of the room's m.room.message events, oldest first."""
    return [e["content"].get("body", "") for e in await timeline(client, room_id, limit, page)
            if e["type"] == "m.room.message"]


async def send_text(client: nio.AsyncClient, room_id: str, body: str) -> str:
    sent = await client.room_send(room_id, "m.room.message",
                                  {"msgtype": "m.text", "body": body})
    assert isinstance(sent, nio.RoomSendResponse), sent
    return str(sent.event_id)


async def wait_for_bodies(client: nio.AsyncClient, room_id: str, expected: list[str],
                          timeout: float = DEADLINE_S) -> None:
    """Wait until the room's message bodies, oldest first, end with ``expected``."""
    async def check() -> None:
        seen = await bodies(client, room_id)
        assert seen[-len(expected):] == expected, seen[-len(expected):]
    await eventually(check, timeout, what=f"{len(expected)} messages on {client.homeserver}")


async def wait_for_body(client: nio.AsyncClient, room_id: str, body: str,
                        timeout: float = DEADLINE_S) -> None:
    """Wait until a message with ``body`` is in the room's timeline."""
    async def check() -> None:
        assert body in await bodies(client, room_id)
    await eventually(check, timeout, what=f"{body!r} on {client.homeserver}")


async def wait_for_membership(client: nio.AsyncClient, room_id: str, user_id: str,
                              membership: str | None, timeout: float = DEADLINE_S) -> None:
    async def check() -> None:
        assert await membership_of(client, room_id, user_id) == membership
    await eventually(check, timeout, what=f"{user_id} to be {membership}")


async def wait_for_same_state(clients: list[nio.AsyncClient], room_id: str,
                              timeout: float = DEADLINE_S) -> list[tuple[str, str, str]]:
    """Wait until GET /state answers the same on every client's server; return it."""
    async def check() -> list[tuple[str, str, str]]:
        states = [await room_state(c, room_id) for c in clients]
        for other in states[1:]:
            assert other == states[0], (states[0], other)
        return states[0]
    return await eventually(check, timeout, what="identical room state")


async def join(client: nio.AsyncClient, room: str, via: list[str] | None = None) -> str:
    query = [("server_name", server) for server in via or ()]
    status, body = await api(client, "POST", f"{V3}/join/{quote(room, safe='')}", {},
                             query=query)
    assert status == 200, body
    return str(body["room_id"])


async def register_admin(handle: NodeHandle, localpart: str,
                         password: str = "admin-pw") -> nio.AsyncClient:
    await handle.node.services.accounts.register(localpart, password, is_admin=True)
    client = nio.AsyncClient(handle.client_url, handle.user_id(localpart))
    login = await client.login(password)
    assert isinstance(login, nio.LoginResponse), login
    return client


__all__ = ["ClientFactory", "Cluster", "NodeHandle"]
