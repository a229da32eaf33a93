"""Scenario 9: queries between the servers, both ways — a remote user's profile, a remote room
alias, and the remote server's public room directory.

Spec: server-server API "Querying for information" (GET /query/profile, /query/directory),
"Published Room Directory" (GET/POST /publicRooms); client-server API "Profiles",
"Room aliases" (GET /directory/room/{roomAlias}), "Listing rooms" (GET/POST /publicRooms with
``server``).

Where RocketNode disagreed with Synapse (fixed in RocketNode): server-server API "Query
profile" — for a field the user has not set, the answer is a 200 without the field (or with
null), a 404 only for an unknown user. RocketNode answered 404, so Synapse told its clients
"not found" for a RocketNode user's unset avatar while it answers ``200 {}`` for its own users.
"""

from __future__ import annotations

from urllib.parse import quote

import nio
import pytest

from tests.interop.conftest import Server, Servers
from tests.support.matrix import V3, api, create_room, ok

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

DIRECTIONS = ["rocketnode_asks_synapse", "synapse_asks_rocketnode"]


def pick(servers: Servers, direction: str) -> tuple[Server, Server]:
    return (servers.rocket, servers.synapse) if direction.startswith("rocketnode") \
        else (servers.synapse, servers.rocket)


@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_remote_profile(servers: Servers, direction: str) -> None:
    asker_home, answer_home = pick(servers, direction)
    asker = await servers.user(asker_home, f"asker_{direction[:5]}")
    subject = await servers.user(answer_home, f"subject_{direction[:5]}")
    name = f"Subject of {direction}"
    assert isinstance(await subject.set_displayname(name), nio.ProfileSetDisplayNameResponse)

    profile = await ok(asker, "GET", f"{V3}/profile/{quote(subject.user_id, safe='')}")
    assert profile.get("displayname") == name, profile
    field = await ok(asker, "GET",
                     f"{V3}/profile/{quote(subject.user_id, safe='')}/displayname")
    assert field == {"displayname": name}, field
    server_name = subject.user_id.split(":", 1)[1]
    status, body = await api(asker, "GET",
                             f"{V3}/profile/{quote(f'@nobody:{server_name}', safe='')}")
    assert status == 404 and body.get("errcode") == "M_NOT_FOUND", (status, body)

    # a field the user never set: the asking server answers about the remote user exactly as
    # it answers about one of its own users (which takes a 200 without the field, or a null
    # field, from the remote server: server-server API "Query profile")
    neighbour = await servers.user(asker_home, f"neighbour_{direction[:5]}")
    answers = [await api(asker, "GET", f"{V3}/profile/{quote(user_id, safe='')}/avatar_url")
               for user_id in (subject.user_id, neighbour.user_id)]
    assert answers[0] == answers[1], answers
    full = await ok(asker, "GET", f"{V3}/profile/{quote(subject.user_id, safe='')}")
    assert full.get("avatar_url") is None, full


@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_remote_alias_resolution(servers: Servers, direction: str) -> None:
    asker_home, answer_home = pick(servers, direction)
    asker = await servers.user(asker_home, f"aliasasker_{direction[:5]}")
    owner = await servers.user(answer_home, f"aliasowner_{direction[:5]}")
    server_name = owner.user_id.split(":", 1)[1]
    room_id = await create_room(owner, room_alias_name=f"square-{direction[:5]}")
    alias = f"#square-{direction[:5]}:{server_name}"

    resolved = await ok(asker, "GET", f"{V3}/directory/room/{quote(alias, safe='')}")
    assert resolved["room_id"] == room_id, resolved
    assert server_name in resolved["servers"], resolved
    status, body = await api(asker, "GET",
                             f"{V3}/directory/room/{quote(f'#nowhere:{server_name}', safe='')}")
    assert status == 404 and body.get("errcode") == "M_NOT_FOUND", (status, body)


@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_remote_public_rooms(servers: Servers, direction: str) -> None:
    asker_home, answer_home = pick(servers, direction)
    asker = await servers.user(asker_home, f"browser_{direction[:5]}")
    owner = await servers.user(answer_home, f"publisher_{direction[:5]}")
    server_name = owner.user_id.split(":", 1)[1]
    listed_name = f"Listed by {direction}"
    listed = await create_room(owner, visibility="public", name=listed_name,
                               topic="come in", room_alias_name=f"listed-{direction[:5]}")
    unlisted = await create_room(owner, visibility="private", name="Not listed")

    directory = await ok(asker, "GET", f"{V3}/publicRooms",
                         query={"server": server_name, "limit": "50"})
    rooms = {room["room_id"]: room for room in directory["chunk"]}
    assert listed in rooms and unlisted not in rooms, directory
    entry = rooms[listed]
    assert entry["name"] == listed_name and entry["topic"] == "come in", entry
    assert entry["num_joined_members"] == 1 and entry["world_readable"] is False, entry
    assert entry.get("canonical_alias") == f"#listed-{direction[:5]}:{server_name}", entry

    searched = await ok(asker, "POST", f"{V3}/publicRooms", {
        "limit": 10, "filter": {"generic_search_term": listed_name}},
        query={"server": server_name})
    assert [room["room_id"] for room in searched["chunk"]] == [listed], searched
