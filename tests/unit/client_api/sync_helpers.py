"""Helpers for the /sync, ephemeral and account data tests (driven by matrix-nio)."""

from __future__ import annotations

from typing import Any

import nio

from rocketnode.app import Node
from tests.unit.client_api.client_http import call, path


async def sync(
    client: nio.AsyncClient, since: str | None, timeout: int = 0,
    sync_filter: dict[str, Any] | str | None = None, full_state: bool | None = None,
) -> nio.SyncResponse:
    """One /sync through nio (which checks the response against its schema)."""
    if since is None:
        client.next_batch = None  # nio would otherwise continue from its last sync
        client.loaded_sync_token = None
    response = await client.sync(
        timeout=timeout, since=since, sync_filter=sync_filter, full_state=full_state
    )
    assert isinstance(response, nio.SyncResponse), response
    return response


async def raw_sync(
    node: Node, client: nio.AsyncClient, params: dict[str, str] | None = None
) -> dict[str, Any]:
    status, body = await call(node, "GET", path("sync"), client, params=params)
    assert status == 200, body
    return dict(body)


async def new_room(client: nio.AsyncClient, **kwargs: Any) -> str:
    created = await client.room_create(**kwargs)
    assert isinstance(created, nio.RoomCreateResponse), created
    return created.room_id


async def public_room(client: nio.AsyncClient, **kwargs: Any) -> str:
    return await new_room(client, preset=nio.RoomPreset.public_chat, **kwargs)


async def join(client: nio.AsyncClient, room_id: str) -> None:
    joined = await client.join(room_id)
    assert isinstance(joined, nio.JoinResponse), joined


async def send_text(client: nio.AsyncClient, room_id: str, body: str) -> str:
    sent = await client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": body})
    assert isinstance(sent, nio.RoomSendResponse), sent
    return sent.event_id


async def send_texts(client: nio.AsyncClient, room_id: str, count: int, prefix: str = "m"
                     ) -> list[str]:
    return [await send_text(client, room_id, f"{prefix}{i}") for i in range(count)]


def sources(events: list[Any]) -> list[dict[str, Any]]:
    return [event.source for event in events]


def ids(events: list[Any]) -> list[str]:
    return [event.source["event_id"] for event in events]


def texts(events: list[Any]) -> list[str]:
    return [
        e.source["content"]["body"] for e in events if e.source["type"] == "m.room.message"
    ]


def types(events: list[Any]) -> list[str]:
    return [event.source["type"] for event in events]


def typing_of(response: nio.SyncResponse, room_id: str) -> list[list[str]]:
    """The user lists of the ``m.typing`` events a sync returned for a room."""
    room = response.rooms.join.get(room_id)
    events = room.ephemeral if room is not None else []
    return [e.users for e in events if isinstance(e, nio.TypingNoticeEvent)]


def receipts_of(response: nio.SyncResponse, room_id: str) -> list[nio.Receipt]:
    room = response.rooms.join.get(room_id)
    events = room.ephemeral if room is not None else []
    return [r for e in events if isinstance(e, nio.ReceiptEvent) for r in e.receipts]
