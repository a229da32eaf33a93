"""The published room directory through a real node: visibility, listing, filters, pages."""

from __future__ import annotations

from typing import Any

import nio
from nio.responses import PublicRoomsResponse

from rocketnode.app import Node
from tests.nodes import ClientFactory
from tests.unit.client_api.client_http import call, errcode, path


async def new_room(client: nio.AsyncClient, **kwargs: Any) -> str:
    created = await client.room_create(**kwargs)
    assert isinstance(created, nio.RoomCreateResponse), created
    return created.room_id


async def join_all(room_id: str, *clients: nio.AsyncClient) -> None:
    for client in clients:
        assert isinstance(await client.join(room_id), nio.JoinResponse)


async def test_visibility_get_and_set(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    public = await new_room(alice, visibility=nio.RoomVisibility.public)
    private = await new_room(alice, preset=nio.RoomPreset.public_chat)
    await join_all(private, bob)

    shown = await bob.room_get_visibility(public)
    assert isinstance(shown, nio.RoomGetVisibilityResponse), shown
    assert shown.visibility == "public"
    status, answer = await call(node, "GET", path("directory", "list", "room", private))
    assert (status, answer) == (200, {"visibility": "private"})

    list_path = path("directory", "list", "room", private)
    assert await errcode(node, "PUT", list_path, bob, {"visibility": "public"}) == (
        403, "M_FORBIDDEN")
    assert await errcode(node, "PUT", list_path, alice, {"visibility": "hidden"}) == (
        400, "M_BAD_JSON")
    assert await errcode(node, "PUT", list_path, None, {"visibility": "public"}) == (
        401, "M_MISSING_TOKEN")
    assert (await call(node, "GET", list_path))[1] == {"visibility": "private"}
    status, _ = await call(node, "PUT", list_path, alice, {})  # visibility defaults to public
    assert status == 200
    assert (await call(node, "GET", list_path))[1] == {"visibility": "public"}

    unknown = path("directory", "list", "room", f"!unknown:{node.config.server_name}")
    assert await errcode(node, "GET", unknown) == (404, "M_NOT_FOUND")
    assert await errcode(node, "PUT", unknown, alice, {"visibility": "public"}) == (
        404, "M_NOT_FOUND")


async def test_listing_orders_by_members_and_describes_rooms(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    carol = await make_client(node, "carol")
    small = await new_room(alice, visibility=nio.RoomVisibility.public, name="Small")
    big = await new_room(alice, visibility=nio.RoomVisibility.public, name="Big Room",
                         topic="Everything", alias="big")
    await new_room(alice, preset=nio.RoomPreset.public_chat, name="Unlisted")
    await join_all(big, bob, carol)

    listed = await bob.list_public_rooms()
    assert isinstance(listed, PublicRoomsResponse), listed
    assert [room.room_id for room in listed.public_rooms] == [big, small]
    assert listed.total_room_count_estimate == 2
    assert (listed.next_batch, listed.prev_batch) == (None, None)

    status, answer = await call(node, "GET", "/_matrix/client/v3/publicRooms")  # no token
    assert status == 200
    assert answer["chunk"][0] == {
        "room_id": big, "name": "Big Room", "topic": "Everything",
        "canonical_alias": f"#big:{node.config.server_name}", "num_joined_members": 3,
        "world_readable": False, "guest_can_join": False, "join_rule": "public",
    }
    assert answer["chunk"][1]["num_joined_members"] == 1


async def test_rooms_everyone_left_are_not_listed(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    room_id = await new_room(alice, visibility=nio.RoomVisibility.public)
    assert isinstance(await alice.room_leave(room_id), nio.RoomLeaveResponse)
    _, answer = await call(node, "GET", "/_matrix/client/v3/publicRooms")
    assert answer == {"chunk": [], "total_room_count_estimate": 0}


async def test_pagination_walks_every_room_once_both_ways(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    members = [await make_client(node, f"user{i}") for i in range(3)]
    rooms = [await new_room(alice, visibility=nio.RoomVisibility.public) for _ in range(5)]
    for index, room_id in enumerate(rooms[:3]):
        await join_all(room_id, *members[: 3 - index])
    # Largest first; rooms with the same count in room ID order.
    expected = [rooms[0], rooms[1], rooms[2], *sorted(rooms[3:])]

    seen: list[str] = []
    pages: list[dict[str, Any]] = []
    since: str | None = None
    for _ in range(10):
        params = {"limit": "2", **({"since": since} if since else {})}
        status, page = await call(node, "GET", "/_matrix/client/v3/publicRooms", params=params)
        assert status == 200
        assert page["total_room_count_estimate"] == 5
        pages.append(page)
        seen.extend(room["room_id"] for room in page["chunk"])
        since = page.get("next_batch")
        if since is None:
            break
    assert seen == expected
    assert [len(p["chunk"]) for p in pages] == [2, 2, 1]
    assert "prev_batch" not in pages[0]

    back = await alice.list_public_rooms(limit=2, since=pages[2]["prev_batch"])
    assert isinstance(back, PublicRoomsResponse), back
    assert [room.room_id for room in back.public_rooms] == expected[2:4]
    assert back.next_batch is not None and back.prev_batch is not None


async def test_filters(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    cheese = await new_room(alice, visibility=nio.RoomVisibility.public, name="Cheese Club")
    tea = await new_room(alice, visibility=nio.RoomVisibility.public, topic="All about CHEESE")
    space = await new_room(alice, visibility=nio.RoomVisibility.public, name="Space",
                           space=True)

    found = await alice.list_public_rooms(filter_generic_search_term="cheese")
    assert isinstance(found, PublicRoomsResponse), found
    assert {room.room_id for room in found.public_rooms} == {cheese, tea}
    assert found.total_room_count_estimate == 2

    spaces = await alice.list_public_rooms(filter_room_types=["m.space"])
    assert isinstance(spaces, PublicRoomsResponse), spaces
    assert [(room.room_id, room.room_type) for room in spaces.public_rooms] == [
        (space, "m.space")]
    plain = await alice.list_public_rooms(filter_room_types=[None])
    assert isinstance(plain, PublicRoomsResponse), plain
    assert {room.room_id for room in plain.public_rooms} == {cheese, tea}


async def test_bad_requests(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    rooms = "/_matrix/client/v3/publicRooms"
    assert await errcode(node, "POST", rooms, None, {}) == (401, "M_MISSING_TOKEN")
    assert await errcode(node, "GET", rooms, params={"since": "garbage"}) == (
        400, "M_INVALID_PARAM")
    assert await errcode(node, "GET", rooms, params={"limit": "-1"}) == (400, "M_INVALID_PARAM")
    assert await errcode(node, "POST", rooms, alice, {"limit": "ten"}) == (400, "M_BAD_JSON")
    assert await errcode(node, "POST", rooms, alice, {"filter": {"room_types": "m.space"}}) == (
        400, "M_BAD_JSON")
    assert await errcode(node, "POST", rooms, alice, raw_body=b"{") == (400, "M_NOT_JSON")
    # Another server's directory needs federation (and a token).
    assert await errcode(node, "GET", rooms, params={"server": "elsewhere.example"}) == (
        401, "M_MISSING_TOKEN")
    assert await errcode(node, "GET", rooms, alice, params={"server": "elsewhere.example"}) == (
        404, "M_NOT_FOUND")
