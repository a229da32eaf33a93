"""Helpers for the room-reading tests: raw requests, sending, paginating a whole room."""

from __future__ import annotations

from typing import Any

import nio

from rocketnode.app import Node
from tests.unit.client_api.client_http import call, path
from tests.unit.client_api.sync_helpers import send_text

__all__ = ["send_text"]  # one definition, shared with the sync tests

MAX_PAGES = 50


async def raw_get(
    node: Node, client: nio.AsyncClient, path_parts: list[str],
    params: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """``GET /_matrix/client/v3/<parts>`` with ``client``'s token: ``(status, json body)``."""
    return await call(node, "GET", path(*path_parts), client, params=params)


async def send_texts(client: nio.AsyncClient, room_id: str, bodies: list[str]) -> list[str]:
    return [await send_text(client, room_id, body) for body in bodies]


async def set_state(
    client: nio.AsyncClient, room_id: str, event_type: str, content: dict[str, Any],
    state_key: str = "",
) -> str:
    sent = await client.room_put_state(room_id, event_type, content, state_key=state_key)
    assert isinstance(sent, nio.RoomPutStateResponse), sent
    return sent.event_id


def bodies(events: list[Any]) -> list[str]:
    """The bodies of the ``m.room.message`` events among nio events."""
    return [
        event.source["content"]["body"]
        for event in events
        if event.source["type"] == "m.room.message" and "body" in event.source["content"]
    ]


def event_ids(events: list[Any]) -> list[str]:
    return [event.event_id for event in events]


async def paginate_all(
    client: nio.AsyncClient, room_id: str, direction: nio.MessageDirection, limit: int,
    start: str | None = None, message_filter: dict[str, Any] | None = None,
) -> tuple[list[Any], int]:
    """Every event a client gets by paginating until ``end`` is absent; and the page count."""
    found: list[Any] = []
    token = start
    for page in range(1, MAX_PAGES + 1):
        response = await client.room_messages(
            room_id, start=token, direction=direction, limit=limit,
            message_filter=message_filter,
        )
        assert isinstance(response, nio.RoomMessagesResponse), response
        assert len(response.chunk) <= limit
        found.extend(response.chunk)
        if response.end is None:
            return found, page
        token = response.end
    raise AssertionError(f"pagination did not end within {MAX_PAGES} pages")


async def public_room(client: nio.AsyncClient, visibility: str | None = None) -> str:
    created = await client.room_create(preset=nio.RoomPreset.public_chat)
    assert isinstance(created, nio.RoomCreateResponse), created
    if visibility is not None:
        await set_state(
            client, created.room_id, "m.room.history_visibility",
            {"history_visibility": visibility},
        )
    return created.room_id
