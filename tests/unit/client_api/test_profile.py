"""Profiles through a real node: reading, changing your own, v1.16 extended fields, and the
member events a change sends into the user's rooms."""

from __future__ import annotations

from typing import Any

import nio

from rocketnode.app import Node
from tests.nodes import ClientFactory
from tests.unit.client_api.client_http import call, errcode, path


async def member_content(node: Node, room_id: str, user_id: str) -> dict[str, Any]:
    state = await node.services.rooms.current_state_pdus(room_id)
    return dict(state[("m.room.member", user_id)].content)


async def test_set_and_get_displayname_and_avatar(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    assert isinstance(await alice.set_displayname("Alice W."), nio.ProfileSetDisplayNameResponse)
    assert isinstance(await alice.set_avatar("mxc://example.org/abc123"),
                      nio.ProfileSetAvatarResponse)
    name = await alice.get_displayname()
    assert isinstance(name, nio.ProfileGetDisplayNameResponse), name
    assert name.displayname == "Alice W."
    profile = await alice.get_profile()
    assert isinstance(profile, nio.ProfileGetResponse), profile
    assert (profile.displayname, profile.avatar_url) == ("Alice W.", "mxc://example.org/abc123")


async def test_registration_sets_localpart_as_displayname_and_lookup_needs_no_token(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    status, profile = await call(node, "GET", path("profile", alice.user_id))
    assert status == 200
    assert profile == {"displayname": "alice"}


async def test_cannot_change_someone_elses_profile(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    assert await errcode(node, "PUT", path("profile", alice.user_id, "displayname"), bob,
                         {"displayname": "Mallory"}) == (403, "M_FORBIDDEN")
    assert await errcode(node, "DELETE", path("profile", alice.user_id, "displayname"),
                         bob) == (403, "M_FORBIDDEN")
    _, profile = await call(node, "GET", path("profile", alice.user_id))
    assert profile["displayname"] == "alice"


async def test_unknown_users_have_no_profile(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    missing = await alice.get_profile(f"@nobody:{node.config.server_name}")
    assert isinstance(missing, nio.ProfileGetError)
    assert missing.status_code == "M_NOT_FOUND"
    # Remote profiles come from federation, which this node does not have.
    remote = await alice.get_profile("@someone:elsewhere.example")
    assert isinstance(remote, nio.ProfileGetError)
    assert remote.status_code == "M_NOT_FOUND"
    assert await errcode(node, "GET", path("profile", alice.user_id, "avatar_url")) == (
        404, "M_NOT_FOUND")


async def test_malformed_changes_are_refused(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    name_path = path("profile", alice.user_id, "displayname")
    avatar_path = path("profile", alice.user_id, "avatar_url")
    cases = [
        (name_path, {"displayname": 42}, None, "M_BAD_JSON"),
        (name_path, {"displayname": None}, None, "M_BAD_JSON"),
        (name_path, {"displayname": "x" * 300}, None, "M_BAD_JSON"),
        (avatar_path, {"avatar_url": "https://example.org/a.png"}, None, "M_BAD_JSON"),
        (name_path, {"avatar_url": "mxc://example.org/a"}, None, "M_MISSING_PARAM"),
        (name_path, None, b"{not json", "M_NOT_JSON"),
        (name_path, None, b"[1, 2]", "M_BAD_JSON"),
        (path("profile", alice.user_id, "Not A Key"), {"Not A Key": 1}, None, "M_INVALID_PARAM"),
        (path("profile", alice.user_id, "a." + "b" * 260), {"a." + "b" * 260: 1}, None,
         "M_KEY_TOO_LARGE"),
        (path("profile", alice.user_id, "m.tz"), {"m.tz": 1}, None, "M_BAD_JSON"),
    ]
    for url_path, body, raw, expected in cases:
        status, code = await errcode(node, "PUT", url_path, alice, body, raw)
        assert (status, code) == (400, expected), (url_path, body, raw)
    _, profile = await call(node, "GET", path("profile", alice.user_id))
    assert profile == {"displayname": "alice"}


async def test_extended_profile_fields(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    pronouns = {"en": "she/her"}
    for key, value in (("m.tz", "Europe/London"), ("org.example.pronouns", pronouns)):
        status, _ = await call(node, "PUT", path("profile", alice.user_id, key), alice,
                               {key: value})
        assert status == 200
    _, profile = await call(node, "GET", path("profile", alice.user_id))
    assert profile == {"displayname": "alice", "m.tz": "Europe/London",
                       "org.example.pronouns": pronouns}
    status, field = await call(node, "GET", path("profile", alice.user_id, "m.tz"))
    assert (status, field) == (200, {"m.tz": "Europe/London"})

    status, _ = await call(node, "DELETE", path("profile", alice.user_id, "m.tz"), alice)
    assert status == 200
    assert await errcode(node, "GET", path("profile", alice.user_id, "m.tz")) == (
        404, "M_NOT_FOUND")
    status, _ = await call(node, "DELETE", path("profile", alice.user_id, "m.tz"), alice)
    assert status == 200, "deleting a field that is not set succeeds"


async def test_profile_may_not_exceed_64_kib(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    half = "x" * 40_000
    status, _ = await call(node, "PUT", path("profile", alice.user_id, "org.example.one"),
                           alice, {"org.example.one": half})
    assert status == 200
    assert await errcode(node, "PUT", path("profile", alice.user_id, "org.example.two"), alice,
                         {"org.example.two": half}) == (400, "M_PROFILE_TOO_LARGE")
    _, profile = await call(node, "GET", path("profile", alice.user_id))
    assert "org.example.two" not in profile


async def test_profile_change_updates_member_events(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    lobby = await alice.room_create(preset=nio.RoomPreset.public_chat)
    left = await alice.room_create(preset=nio.RoomPreset.public_chat)
    assert isinstance(lobby, nio.RoomCreateResponse)
    assert isinstance(left, nio.RoomCreateResponse)
    assert isinstance(await bob.join(lobby.room_id), nio.JoinResponse)
    assert isinstance(await bob.join(left.room_id), nio.JoinResponse)
    assert isinstance(await alice.room_leave(left.room_id), nio.RoomLeaveResponse)

    assert isinstance(await alice.set_displayname("Alice W."), nio.ProfileSetDisplayNameResponse)
    assert isinstance(await alice.set_avatar("mxc://example.org/abc"),
                      nio.ProfileSetAvatarResponse)

    assert await member_content(node, lobby.room_id, alice.user_id) == {
        "membership": "join", "displayname": "Alice W.", "avatar_url": "mxc://example.org/abc"}
    assert await member_content(node, lobby.room_id, bob.user_id) == {
        "membership": "join", "displayname": "bob"}
    assert (await member_content(node, left.room_id, alice.user_id))["membership"] == "leave"

    # Clearing a field removes it from the member event too.
    status, _ = await call(node, "DELETE", path("profile", alice.user_id, "avatar_url"), alice)
    assert status == 200
    assert await member_content(node, lobby.room_id, alice.user_id) == {
        "membership": "join", "displayname": "Alice W."}
    status, _ = await call(node, "PUT", path("profile", alice.user_id, "displayname"), alice,
                           {"displayname": ""})
    assert status == 200
    assert await member_content(node, lobby.room_id, alice.user_id) == {"membership": "join"}


async def test_unchanged_profile_sends_no_member_event(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    room = await alice.room_create()
    assert isinstance(room, nio.RoomCreateResponse)
    before = await node.services.rooms.current_state_pdus(room.room_id)
    assert isinstance(await alice.set_displayname("alice"), nio.ProfileSetDisplayNameResponse)
    after = await node.services.rooms.current_state_pdus(room.room_id)
    key = ("m.room.member", alice.user_id)
    assert after[key].event_id == before[key].event_id


class _NullAvatarRemote:
    """A remote server answering profile queries with an explicit null for the unset avatar
    (which the server-server API allows)."""

    async def query(self, user_id: str, field: str | None) -> dict[str, Any]:
        profile: dict[str, Any] = {"displayname": "Remote Bob", "avatar_url": None}
        return profile if field is None else {field: profile.get(field)}


async def test_remote_null_field_reads_as_unset(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    node.services.profiles.remote = _NullAvatarRemote()
    bob = "@bob:remote.example"
    status, profile = await call(node, "GET", path("profile", bob), alice)
    assert (status, profile) == (200, {"displayname": "Remote Bob"})
    assert await errcode(node, "GET", path("profile", bob, "avatar_url"), alice) == \
        (404, "M_NOT_FOUND")
    status, name = await call(node, "GET", path("profile", bob, "displayname"), alice)
    assert (status, name) == (200, {"displayname": "Remote Bob"})
