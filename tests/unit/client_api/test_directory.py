"""Room aliases through a real node: create, resolve, list and delete, and who may do what."""

from __future__ import annotations

import nio
import pytest

from rocketnode.app import Node
from rocketnode.core.errors import Errcode, MatrixError
from tests.nodes import ClientFactory
from tests.unit.client_api.client_http import call, errcode, http_status, path


async def new_room(client: nio.AsyncClient, **kwargs: object) -> str:
    created = await client.room_create(**kwargs)  # type: ignore[arg-type]
    assert isinstance(created, nio.RoomCreateResponse), created
    return created.room_id


async def test_create_resolve_list_delete(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    room_id = await new_room(alice)
    alias = f"#lobby:{node.config.server_name}"
    assert http_status(await alice.room_put_alias(alias, room_id)) == 200

    resolved = await alice.room_resolve_alias(alias)
    assert isinstance(resolved, nio.RoomResolveAliasResponse), resolved
    assert (resolved.room_id, resolved.servers) == (room_id, [node.config.server_name])
    status, listed = await call(node, "GET", path("rooms", room_id, "aliases"), alice)
    assert (status, listed) == (200, {"aliases": [alias]})

    assert http_status(await alice.room_delete_alias(alias)) == 200
    gone = await alice.room_resolve_alias(alias)
    assert isinstance(gone, nio.RoomResolveAliasError)
    assert gone.status_code == "M_NOT_FOUND"
    _, listed = await call(node, "GET", path("rooms", room_id, "aliases"), alice)
    assert listed == {"aliases": []}


async def test_alias_resolves_without_a_token(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    room_id = await new_room(alice, alias="hall")
    status, answer = await call(
        node, "GET", path("directory", "room", f"#hall:{node.config.server_name}")
    )
    assert (status, answer["room_id"]) == (200, room_id)


async def test_duplicate_alias_is_a_conflict(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    first, second = await new_room(alice), await new_room(alice)
    alias = f"#taken:{node.config.server_name}"
    alias_path = path("directory", "room", alias)
    status, _ = await call(node, "PUT", alias_path, alice, {"room_id": first})
    assert status == 200
    assert await errcode(node, "PUT", alias_path, alice, {"room_id": second}) == (
        409, "M_UNKNOWN")
    _, answer = await call(node, "GET", alias_path)
    assert answer["room_id"] == first


async def test_bad_alias_requests(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    room_id = await new_room(alice)
    server = node.config.server_name
    cases = [
        ("#elsewhere:other.example", alice, {"room_id": room_id}, None, (400, "M_INVALID_PARAM")),
        ("lobby", alice, {"room_id": room_id}, None, (400, "M_INVALID_PARAM")),
        (f"#x:{server}", alice, {"room_id": "not-a-room"}, None, (400, "M_INVALID_PARAM")),
        (f"#x:{server}", alice, {"room_id": f"!unknown:{server}"}, None, (404, "M_NOT_FOUND")),
        (f"#x:{server}", alice, {}, None, (400, "M_MISSING_PARAM")),
        (f"#x:{server}", alice, {"room_id": 7}, None, (400, "M_BAD_JSON")),
        (f"#x:{server}", alice, None, b"room_id=1", (400, "M_NOT_JSON")),
        (f"#x:{server}", bob, {"room_id": room_id}, None, (403, "M_FORBIDDEN")),
        (f"#x:{server}", None, {"room_id": room_id}, None, (401, "M_MISSING_TOKEN")),
    ]
    for alias, client, body, raw, expected in cases:
        assert await errcode(node, "PUT", path("directory", "room", alias), client, body,
                             raw) == expected, (alias, body, raw)
    assert await errcode(node, "DELETE", path("directory", "room", "#x:other.example"),
                         alice) == (400, "M_INVALID_PARAM")
    _, listed = await call(node, "GET", path("rooms", room_id, "aliases"), alice)
    assert listed == {"aliases": []}


async def test_delete_needs_creator_or_power(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    carol = await make_client(node, "carol")
    room_id = await new_room(alice, preset=nio.RoomPreset.public_chat)
    for member in (bob, carol):
        assert isinstance(await member.join(room_id), nio.JoinResponse)
    server = node.config.server_name
    by_alice, by_bob = f"#alices:{server}", f"#bobs:{server}"
    assert http_status(await alice.room_put_alias(by_alice, room_id)) == 200
    assert http_status(await bob.room_put_alias(by_bob, room_id)) == 200

    # bob created neither the alias nor has the power to send m.room.canonical_alias.
    assert http_status(await bob.room_delete_alias(by_alice)) == 403
    assert await errcode(node, "DELETE", path("directory", "room", by_alice), bob) == (
        403, "M_FORBIDDEN")
    assert await errcode(node, "DELETE", path("directory", "room", by_bob), carol) == (
        403, "M_FORBIDDEN")
    # Its creator may delete it; so may a room admin who did not create it.
    assert http_status(await bob.room_delete_alias(by_bob)) == 200
    assert http_status(await bob.room_put_alias(by_bob, room_id)) == 200
    assert http_status(await alice.room_delete_alias(by_bob)) == 200
    _, listed = await call(node, "GET", path("rooms", room_id, "aliases"), alice)
    assert listed == {"aliases": [by_alice]}
    assert await errcode(node, "DELETE", path("directory", "room", by_bob), alice) == (
        404, "M_NOT_FOUND")


async def test_delete_drops_alias_from_canonical_alias(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    room_id = await new_room(alice, alias="main")
    alias = f"#main:{node.config.server_name}"
    key = ("m.room.canonical_alias", "")
    before = await node.services.rooms.current_state_pdus(room_id, [key])
    assert before[key].content == {"alias": alias}
    assert http_status(await alice.room_delete_alias(alias)) == 200
    after = await node.services.rooms.current_state_pdus(room_id, [key])
    assert after[key].content == {}


async def test_local_aliases_are_for_members(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    eve = await make_client(node, "eve")
    room_id = await new_room(alice, alias="private")
    assert await errcode(node, "GET", path("rooms", room_id, "aliases"), eve) == (
        403, "M_FORBIDDEN")
    assert await errcode(node, "GET", path("rooms", "!nowhere:" + node.config.server_name,
                                           "aliases"), eve) == (403, "M_FORBIDDEN")
    readable = await new_room(alice, alias="open", initial_state=[
        {"type": "m.room.history_visibility", "content": {"history_visibility": "world_readable"}}
    ])
    status, listed = await call(node, "GET", path("rooms", readable, "aliases"), eve)
    assert (status, listed) == (200, {"aliases": [f"#open:{node.config.server_name}"]})


async def test_remote_alias_goes_to_the_membership_resolver(
    node: Node, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await make_client(node, "alice")
    remote_alias = "#lounge:elsewhere.example"
    missing = await alice.room_resolve_alias(remote_alias)
    assert isinstance(missing, nio.RoomResolveAliasError)
    assert missing.status_code == "M_NOT_FOUND"

    asked: list[str] = []

    async def resolve_alias(alias: str) -> tuple[str, list[str]]:
        asked.append(alias)
        if alias != remote_alias:
            raise MatrixError(Errcode.NOT_FOUND, "no", 404)
        return "!lounge:elsewhere.example", ["elsewhere.example"]

    monkeypatch.setattr(node.services.membership.remote, "resolve_alias", resolve_alias)
    resolved = await alice.room_resolve_alias(remote_alias)
    assert isinstance(resolved, nio.RoomResolveAliasResponse), resolved
    assert (resolved.room_id, resolved.servers) == (
        "!lounge:elsewhere.example", ["elsewhere.example"])
    assert asked == [remote_alias]
