"""Client-server API helpers that work against any homeserver (RocketNode or Synapse).

Requests go over raw HTTP with the access token of a matrix-nio client, so a test sees exactly
what each server answers; nio is used where its typed responses read better.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import nio

T = TypeVar("T")
V3 = "/_matrix/client/v3"
DEADLINE_S = 30.0
Query = dict[str, str] | list[tuple[str, str]]
StateRow = tuple[str, str, str]


async def eventually(check: Callable[[], Awaitable[T]], timeout: float = DEADLINE_S,
                     interval: float = 0.1, what: str = "condition") -> T:
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


async def api(client: nio.AsyncClient, method: str, path: str, body: Any = None,
              query: Query | None = None, timeout: float = DEADLINE_S) -> tuple[int, Any]:
    """One client-server request with the client's access token: ``(status, JSON body)``."""
    headers = {"Authorization": f"Bearer {client.access_token}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session, \
            session.request(method, client.homeserver + path, json=body, params=query,
                            headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def ok(client: nio.AsyncClient, method: str, path: str, body: Any = None,
             query: Query | None = None) -> Any:
    """Like :func:`api` but the answer must be 200."""
    status, answer = await api(client, method, path, body, query)
    assert status == 200, f"{method} {path} on {client.homeserver}: {status} {answer}"
    return answer


def room_path(room_id: str, *rest: str) -> str:
    return f"{V3}/rooms/{quote(room_id, safe='')}" + "".join(
        "/" + quote(part, safe="") for part in rest)


def server_of(user_id: str) -> str:
    return user_id.split(":", 1)[1]


# -- rooms -----------------------------------------------------------------------------------


async def create_room(client: nio.AsyncClient, **body: Any) -> str:
    """POST /createRoom (public chat unless told otherwise); the room ID."""
    answer = await ok(client, "POST", f"{V3}/createRoom", {"preset": "public_chat", **body})
    return str(answer["room_id"])


async def join(client: nio.AsyncClient, room: str, via: Sequence[str] = ()) -> str:
    """POST /join/{roomIdOrAlias} with ``server_name`` for each of ``via``; the room ID."""
    query = [("server_name", server) for server in via]
    answer = await ok(client, "POST", f"{V3}/join/{quote(room, safe='')}", {}, query)
    return str(answer["room_id"])


async def send_text(client: nio.AsyncClient, room_id: str, body: str) -> str:
    sent = await client.room_send(room_id, "m.room.message",
                                  {"msgtype": "m.text", "body": body})
    assert isinstance(sent, nio.RoomSendResponse), sent
    return str(sent.event_id)


async def put_state(client: nio.AsyncClient, room_id: str, event_type: str,
                    content: dict[str, Any], state_key: str = "") -> str:
    answer = await ok(client, "PUT", room_path(room_id, "state", event_type, state_key),
                      content)
    return str(answer["event_id"])


async def get_state_event(client: nio.AsyncClient, room_id: str, event_type: str,
                          state_key: str = "") -> dict[str, Any] | None:
    status, body = await api(client, "GET", room_path(room_id, "state", event_type, state_key))
    return body if status == 200 else None


async def room_state(client: nio.AsyncClient, room_id: str) -> list[StateRow]:
    """GET /rooms/{roomId}/state as sorted ``(type, state_key, event_id)``."""
    body = await ok(client, "GET", room_path(room_id, "state"))
    return sorted((e["type"], e["state_key"], e["event_id"]) for e in body)


async def membership_of(client: nio.AsyncClient, room_id: str, user_id: str) -> str | None:
    content = await get_state_event(client, room_id, "m.room.member", user_id)
    return content.get("membership") if content is not None else None


async def timeline(client: nio.AsyncClient, room_id: str, limit: int = 2000,
                   page: int = 100) -> list[dict[str, Any]]:
    """Every event of the room the client may see, oldest first (paginating /messages back,
    ``page`` events at a time, until the server has nothing more)."""
    events: list[dict[str, Any]] = []
    query: dict[str, str] = {"dir": "b", "limit": str(page)}
    for _ in range(200):
        body = await ok(client, "GET", room_path(room_id, "messages"), query=query)
        events.extend(body["chunk"])
        end = body.get("end")
        if end is None or len(events) >= limit:  # a page may be empty yet not the last
            break
        query["from"] = end
    return list(reversed(events))


def message_bodies(events: list[dict[str, Any]]) -> list[str]:
    return [e["content"].get("body", "") for e in events if e["type"] == "m.room.message"]


async def bodies(client: nio.AsyncClient, room_id: str, limit: int = 2000, page: int = 100
                 ) -> list[str]:
    """The bodies of the room's m.room.message events, oldest first."""
    return message_bodies(await timeline(client, room_id, limit, page))


# -- waiting for federation ------------------------------------------------------------------


async def wait_for_bodies(client: nio.AsyncClient, room_id: str, expected: list[str],
                          timeout: float = DEADLINE_S) -> None:
    """Wait until the room's message bodies, oldest first, end with ``expected``."""
    async def check() -> None:
        seen = await bodies(client, room_id)
        assert seen[-len(expected):] == expected, seen[-len(expected):]
    await eventually(check, timeout, interval=0.2,
                     what=f"{len(expected)} messages on {client.homeserver}")


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
    await eventually(check, timeout, what=f"{user_id} to be {membership} in {room_id} "
                                          f"on {client.homeserver}")


async def wait_for_event(client: nio.AsyncClient, room_id: str, event_id: str,
                         timeout: float = DEADLINE_S) -> dict[str, Any]:
    async def check() -> dict[str, Any]:
        status, body = await api(client, "GET", room_path(room_id, "event", event_id))
        assert status == 200, body
        return dict(body)
    return await eventually(check, timeout, what=f"{event_id} on {client.homeserver}")


async def wait_for_same_state(clients: Sequence[nio.AsyncClient], room_id: str,
                              timeout: float = DEADLINE_S) -> list[StateRow]:
    """Wait until GET /state answers the same on every client's server; return it."""
    async def check() -> list[StateRow]:
        states = [await room_state(c, room_id) for c in clients]
        for client, other in zip(clients[1:], states[1:], strict=True):
            missing = sorted(set(states[0]) - set(other))
            extra = sorted(set(other) - set(states[0]))
            assert other == states[0], (f"{client.homeserver} lacks {missing}, "
                                        f"has {extra} instead")
        return states[0]
    return await eventually(check, timeout, interval=0.2, what="identical room state")


async def converse(first: nio.AsyncClient, second: nio.AsyncClient, room_id: str,
                   expected: list[str], turns: int = 4) -> None:
    """A conversation: each side answers once it has seen the other's messages."""
    for turn in range(turns):
        sender = first if turn % 2 == 0 else second
        batch = [f"{sender.user_id} {len(expected)}.{i}" for i in range(2)]
        for body in batch:
            await send_text(sender, room_id, body)
        expected.extend(batch)
        for watcher in (first, second):
            await wait_for_bodies(watcher, room_id, expected)


async def same_timeline_from(clients: list[nio.AsyncClient], room_id: str,
                             start_event_id: str) -> list[str]:
    """Both servers' timelines (event IDs) from ``start_event_id`` on: they must be equal."""
    seen = []
    for client in clients:
        event_ids = [e["event_id"] for e in await timeline(client, room_id)]
        assert start_event_id in event_ids, (client.homeserver, start_event_id)
        seen.append(event_ids[event_ids.index(start_event_id):])
    for other in seen[1:]:
        assert other == seen[0]
    return seen[0]


async def invited_rooms(client: nio.AsyncClient) -> set[str]:
    body = await ok(client, "GET", f"{V3}/sync", query={"timeout": "0"})
    return set(body.get("rooms", {}).get("invite", {}))
