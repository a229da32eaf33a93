"""Errors at the HTTP edge: the spec's errcodes and statuses, limits, the request log.

Bad input is answered with a Matrix error, never a 500, and never changes what is stored.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import nio
import pytest

from rocketnode.app import Node
from rocketnode.config import RateLimitConfig
from tests.nodes import ClientFactory, node_config, running_node

V3 = "/_matrix/client/v3"


@dataclass
class Answer:
    status: int
    body: Any
    headers: Any

    @property
    def errcode(self) -> str | None:
        return self.body.get("errcode") if isinstance(self.body, dict) else None


class Http:
    """Raw requests to a node, to send what no well-behaved client library would."""

    def __init__(self, node: Node, session: aiohttp.ClientSession) -> None:
        self.node = node
        self.session = session

    async def call(
        self, method: str, path: str, token: str | None = None, body: Any = None,
        raw: bytes | None = None, headers: dict[str, str] | None = None,
    ) -> Answer:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        async with self.session.request(
            method, self.node.client_url + path, data=data, headers=sent
        ) as response:
            text = await response.text()
            try:
                parsed = json.loads(text) if text else None
            except ValueError:
                parsed = text
            return Answer(response.status, parsed, response.headers)


@pytest.fixture
async def http(node: Node) -> AsyncIterator[Http]:
    async with aiohttp.ClientSession() as session:
        yield Http(node, session)


async def registered(make_client: ClientFactory, node: Node, name: str) -> nio.AsyncClient:
    client = await make_client(node, name)
    assert client.access_token
    return client


async def new_room(client: nio.AsyncClient) -> str:
    created = await client.room_create(name="Errors")
    assert isinstance(created, nio.RoomCreateResponse), created
    return created.room_id


async def timeline_ids(node: Node, room_id: str) -> list[str]:
    events = node.services.stores.events
    found, _ = await events.room_events_between(
        room_id, 0, await events.current_stream_ordering(), 10_000
    )
    return [e.event_id for e in found]


# -- routing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [
    f"{V3}/no_such_endpoint", "/_matrix/client/v3/rooms", "/not/matrix/at/all",
    "/_matrix/client/r0/rooms/!r:s/sendd/m.room.message/1",
])
async def test_unknown_endpoint_is_unrecognized(http: Http, path: str) -> None:
    answer = await http.call("GET", path)
    assert (answer.status, answer.errcode) == (404, "M_UNRECOGNIZED")


async def test_wrong_method_is_unrecognized(http: Http) -> None:
    answer = await http.call("DELETE", f"{V3}/createRoom")
    assert (answer.status, answer.errcode) == (405, "M_UNRECOGNIZED")
    answer = await http.call("GET", f"{V3}/rooms/!r:s/send/m.room.message/1")
    assert (answer.status, answer.errcode) == (405, "M_UNRECOGNIZED")


# -- bodies -------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"{not json", b'{"a": 1', b"\xff\xfe\x00", b"", b"   "])
async def test_malformed_json_is_not_json(
    http: Http, make_client: ClientFactory, node: Node, raw: bytes
) -> None:
    alice = await registered(make_client, node, "alice")
    answer = await http.call("POST", f"{V3}/rooms/!r:s/invite", alice.access_token, raw=raw)
    assert (answer.status, answer.errcode) == (400, "M_NOT_JSON")
    answer = await http.call("POST", f"{V3}/login", raw=raw)
    assert (answer.status, answer.errcode) == (400, "M_NOT_JSON")


@pytest.mark.parametrize("body", [[], [{"name": "x"}], "a string", 42, None])
async def test_a_body_that_is_not_an_object_is_bad_json(
    http: Http, make_client: ClientFactory, node: Node, body: Any
) -> None:
    alice = await registered(make_client, node, "alice")
    raw = json.dumps(body).encode()
    answer = await http.call("POST", f"{V3}/createRoom", alice.access_token, raw=raw)
    assert (answer.status, answer.errcode) == (400, "M_BAD_JSON")
    assert await node.services.stores.rooms.local_memberships(alice.user_id) == []


@pytest.mark.parametrize("body", [
    {"name": 5},
    {"topic": ["x"]},
    {"visibility": True},
    {"invite": "@bob:x"},
    {"invite": [1]},
    {"is_direct": "yes"},
    {"creation_content": []},
    {"initial_state": {}},
    {"preset": "nonsense"},
])
async def test_fields_of_the_wrong_type_are_bad_json(
    http: Http, make_client: ClientFactory, node: Node, body: dict[str, Any]
) -> None:
    alice = await registered(make_client, node, "alice")
    answer = await http.call("POST", f"{V3}/createRoom", alice.access_token, body)
    assert (answer.status, answer.errcode) == (400, "M_BAD_JSON")
    assert await node.services.stores.rooms.local_memberships(alice.user_id) == []


async def test_login_with_wrong_types_is_bad_json(http: Http) -> None:
    answer = await http.call("POST", f"{V3}/login", body={"type": "m.login.password",
                                                          "user": 7, "password": "x"})
    assert (answer.status, answer.errcode) == (400, "M_BAD_JSON")


async def test_floats_in_event_content_are_refused_and_nothing_is_stored(
    http: Http, make_client: ClientFactory, node: Node
) -> None:
    alice = await registered(make_client, node, "alice")
    room_id = await new_room(alice)
    before = await timeline_ids(node, room_id)
    extremities = await node.services.stores.events.get_forward_extremities(room_id)
    for path, body in [
        (f"{V3}/rooms/{room_id}/send/m.room.message/f1", {"body": "pi", "value": 3.14}),
        (f"{V3}/rooms/{room_id}/state/m.room.topic", {"topic": "t", "nested": {"x": [1.5]}}),
        (f"{V3}/rooms/{room_id}/send/m.room.message/f2", {"body": "big", "n": 2**60}),
    ]:
        answer = await http.call("PUT", path, alice.access_token, body)
        assert (answer.status, answer.errcode) == (400, "M_BAD_JSON"), (path, answer)
    assert await timeline_ids(node, room_id) == before
    assert await node.services.stores.events.get_forward_extremities(room_id) == extremities
    events = node.services.stores.events
    assert await events.get_txn_event_id(alice.user_id, alice.device_id, "f1") is None
    # The same transaction IDs still work with good content.
    answer = await http.call("PUT", f"{V3}/rooms/{room_id}/send/m.room.message/f1",
                             alice.access_token, {"body": "pi", "value": 314})
    assert answer.status == 200, answer


async def test_oversized_body_is_too_large(
    http: Http, make_client: ClientFactory, node: Node
) -> None:
    alice = await registered(make_client, node, "alice")
    room_id = await new_room(alice)
    before = await timeline_ids(node, room_id)
    huge = json.dumps({"body": "x" * (node.config.max_request_bytes + 10)}).encode()
    answer = await http.call(
        "PUT", f"{V3}/rooms/{room_id}/send/m.room.message/big", alice.access_token, raw=huge
    )
    assert (answer.status, answer.errcode) == (413, "M_TOO_LARGE")
    assert await timeline_ids(node, room_id) == before


async def test_an_event_over_the_pdu_size_limit_is_too_large(
    http: Http, make_client: ClientFactory, node: Node
) -> None:
    alice = await registered(make_client, node, "alice")
    room_id = await new_room(alice)
    before = await timeline_ids(node, room_id)
    answer = await http.call(
        "PUT", f"{V3}/rooms/{room_id}/send/m.room.message/big", alice.access_token,
        {"body": "x" * 70_000},
    )
    assert 400 <= answer.status <= 413 and answer.errcode == "M_TOO_LARGE", answer
    assert await timeline_ids(node, room_id) == before


# -- authentication -----------------------------------------------------------------------------


async def test_missing_and_unknown_tokens(http: Http) -> None:
    path = f"{V3}/account/whoami"
    answer = await http.call("GET", path)
    assert (answer.status, answer.errcode) == (401, "M_MISSING_TOKEN")
    answer = await http.call("GET", path, token="rnt_not_a_real_token")
    assert (answer.status, answer.errcode) == (401, "M_UNKNOWN_TOKEN")
    answer = await http.call("GET", path + "?access_token=rnt_not_a_real_token")
    assert (answer.status, answer.errcode) == (401, "M_UNKNOWN_TOKEN")
    answer = await http.call("GET", path, headers={"Authorization": "Basic abc"})
    assert (answer.status, answer.errcode) == (401, "M_MISSING_TOKEN")
    answer = await http.call("POST", f"{V3}/createRoom", body={})
    assert (answer.status, answer.errcode) == (401, "M_MISSING_TOKEN")


async def test_logged_out_token_is_unknown(
    http: Http, make_client: ClientFactory, node: Node
) -> None:
    alice = await registered(make_client, node, "alice")
    token = alice.access_token
    assert (await http.call("GET", f"{V3}/account/whoami", token)).status == 200
    assert (await http.call("POST", f"{V3}/logout", token, {})).status == 200
    answer = await http.call("GET", f"{V3}/account/whoami", token)
    assert (answer.status, answer.errcode) == (401, "M_UNKNOWN_TOKEN")


# -- rate limits --------------------------------------------------------------------------------


@pytest.fixture
async def limited_node(tmp_path: Path) -> AsyncIterator[Node]:
    config = node_config(
        tmp_path / "limited", rate_limits_enabled=True,
        rate_limit_messages=RateLimitConfig(per_second=0.5, burst=3),
    )
    async with running_node(config) as started:
        yield started


async def test_rate_limit_answers_429_with_retry_after_and_stores_nothing(
    limited_node: Node, make_client: ClientFactory
) -> None:
    node = limited_node
    alice = await registered(make_client, node, "alice")
    async with aiohttp.ClientSession() as session:
        http = Http(node, session)
        room_id = await new_room(alice)  # one message-limited action
        sent = 0
        answer = None
        for i in range(10):
            answer = await http.call(
                "PUT", f"{V3}/rooms/{room_id}/send/m.room.message/t{i}", alice.access_token,
                {"msgtype": "m.text", "body": f"n{i}"},
            )
            if answer.status != 200:
                break
            sent += 1
        assert answer is not None
        assert (answer.status, answer.errcode) == (429, "M_LIMIT_EXCEEDED")
        assert sent == 2
        retry = answer.body["retry_after_ms"]
        assert isinstance(retry, int) and 0 < retry <= 2100
        assert int(answer.headers["Retry-After"]) >= 1
        events = node.services.stores.events
        assert await events.get_txn_event_id(alice.user_id, alice.device_id, "t2") is None
        stored = await events.get_events(await timeline_ids(node, room_id))
        bodies = sorted(e.pdu.content["body"] for e in stored.values()
                        if e.pdu.type == "m.room.message")
        assert bodies == ["n0", "n1"]
        # Another user has their own budget.
        bob = await registered(make_client, node, "bob")
        answer = await http.call("POST", f"{V3}/createRoom", bob.access_token, {})
        assert answer.status == 200


def test_rate_limits_are_on_by_default() -> None:
    from rocketnode.config import Config

    assert Config().rate_limits_enabled


# -- no 500 for bad input, and no change ----------------------------------------------------------


async def test_bad_input_never_yields_500_and_changes_nothing(
    http: Http, make_client: ClientFactory, node: Node
) -> None:
    alice = await registered(make_client, node, "alice")
    room_id = await new_room(alice)
    token = alice.access_token
    events = node.services.stores.events
    position = await events.current_stream_ordering()
    bad: list[tuple[str, str, Any]] = [
        ("PUT", "/rooms/not-a-room/send/m.room.message/1", {"body": "x"}),
        ("PUT", "/rooms/!unknown:nowhere/send/m.room.message/1", {"body": "x"}),
        ("PUT", f"/rooms/{room_id}/state/m.room.member/not-a-user", {"membership": "join"}),
        ("PUT", f"/rooms/{room_id}/state/m.room.member/@ghost:elsewhere", {"membership": 5}),
        ("PUT", f"/rooms/{room_id}/state/m.room.power_levels", {"users": "all"}),
        ("PUT", f"/rooms/{room_id}/state/m.room.power_levels", {"ban": "x" * 10}),
        ("PUT", f"/rooms/{room_id}/state/m.room.create", {}),
        ("PUT", f"/rooms/{room_id}/redact/not-an-event/1", {}),
        ("PUT", f"/rooms/{room_id}/redact/$unknown:nowhere/1", {"reason": 5}),
        ("POST", f"/rooms/{room_id}/invite", {"user_id": "not-a-user"}),
        ("POST", f"/rooms/{room_id}/invite", {}),
        ("POST", f"/rooms/{room_id}/kick", {"user_id": alice.user_id, "reason": []}),
        ("POST", f"/rooms/{room_id}/ban", {"user_id": 12}),
        ("POST", "/join/not-an-alias-or-room", {}),
        ("POST", "/join/#nobody:nowhere", {}),
        ("POST", "/createRoom", {"room_version": "999"}),
        ("POST", "/createRoom", {"room_version": 10}),
        ("POST", "/createRoom", {"initial_state": [1]}),
        ("POST", "/createRoom", {"initial_state": [{"type": 1}]}),
        ("POST", "/createRoom", {"initial_state": [{"content": {}}]}),
        ("POST", "/createRoom", {"invite": ["not-a-user"]}),
        ("POST", "/createRoom", {"room_alias_name": "bad alias:with colon"}),
        ("POST", "/rooms/!unknown:nowhere/leave", {}),
        ("POST", "/rooms/!unknown:nowhere/forget", {}),
        ("PUT", "/devices/NOPE", {"display_name": 5}),
        ("GET", "/devices/NOPE", None),
        ("POST", "/login", {"type": "m.login.password", "identifier": {"type": "m.id.phone"}}),
        ("POST", "/login", {"type": "m.login.token"}),
        ("POST", "/login", {"type": "m.login.password", "user": "alice", "password": 1}),
        ("POST", "/register", {"username": "bad name!", "auth": {"type": "m.login.dummy"}}),
        ("POST", "/register", {"username": "x", "password": 7}),
        ("POST", "/register", {"auth": {"type": "m.login.dummy", "session": 5}}),
        ("GET", "/register/available?username=" + "%00", None),
    ]
    wrong = []
    for method, path, body in bad:
        answer = await http.call(method, V3 + path, token, body)
        if not (400 <= answer.status < 500 and str(answer.errcode).startswith("M_")):
            wrong.append((method, path, body, answer.status, answer.body))
        if await events.current_stream_ordering() != position:
            wrong.append((method, path, body, "changed state", answer.body))
            position = await events.current_stream_ordering()
    assert wrong == []
    assert len(await node.services.stores.rooms.local_memberships(alice.user_id)) == 1
    assert await node.services.stores.accounts.count_accounts() == 1


@pytest.mark.parametrize("body", [
    {"power_level_content_override": {"users": 3}},
    {"initial_state": [{"type": "m.room.member", "state_key": "@bob:elsewhere",
                        "content": {"membership": "join"}}]},
])
async def test_a_refused_create_room_creates_nothing(
    http: Http, make_client: ClientFactory, node: Node, body: dict[str, Any]
) -> None:
    alice = await registered(make_client, node, "alice")
    position = await node.services.stores.events.current_stream_ordering()
    answer = await http.call("POST", f"{V3}/createRoom", alice.access_token, body)
    assert answer.status == 400, answer
    assert await node.services.stores.events.current_stream_ordering() == position
    assert await node.services.stores.rooms.local_memberships(alice.user_id) == []


# -- the request log ----------------------------------------------------------------------------


async def test_one_access_log_line_per_request_without_secrets(
    http: Http, make_client: ClientFactory, node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    alice = await registered(make_client, node, "alice")
    token = alice.access_token
    room_id = await new_room(alice)
    secret_body = "the secret body 8c1e"
    caplog.clear()

    requests = [
        ("PUT", f"{V3}/rooms/{room_id}/send/m.room.message/log1", token,
         {"msgtype": "m.text", "body": secret_body}, 200),
        ("GET", f"{V3}/account/whoami?access_token={token}", None, None, 200),
        ("GET", f"{V3}/account/whoami", "rnt_wrong_token_4242", None, 401),
        ("GET", f"{V3}/nowhere", token, None, 404),
        ("POST", f"{V3}/login", None, {"type": "m.login.password", "user": "alice",
                                       "password": "hunter2-secret"}, 403),
    ]
    for method, path, used_token, body, status in requests:
        answer = await http.call(method, path, used_token, body)
        assert answer.status == status, (path, answer)

    access = [r for r in caplog.records if r.name == "rocketnode.access"]
    assert len(access) == len(requests)
    for record, (method, path, _, _, status) in zip(access, requests, strict=True):
        assert record.levelno == logging.INFO
        line = record.getMessage()
        words = line.split()
        assert words[0] == method
        assert words[1] == path.split("?")[0]
        assert words[2] == str(status)
        assert words[3].endswith("ms") and float(words[3][:-2]) >= 0
    everything = "\n".join(
        r.getMessage() + (r.exc_text or "") + str(r.args) for r in caplog.records
    )
    for secret in (token, "rnt_wrong_token_4242", secret_body, "hunter2-secret"):
        assert secret not in everything


async def test_unexpected_errors_are_500_m_unknown_and_logged_once(
    http: Http, node: Node, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(_: str) -> bool:
        raise RuntimeError("a bug in a service")

    monkeypatch.setattr(node.services.accounts, "username_available", broken)
    caplog.set_level(logging.INFO)
    answer = await http.call("GET", f"{V3}/register/available?username=someone")
    assert (answer.status, answer.errcode) == (500, "M_UNKNOWN")
    assert "a bug in a service" not in json.dumps(answer.body)
    tracebacks = [r for r in caplog.records if r.exc_info is not None]
    assert len(tracebacks) == 1
    access = [r.getMessage() for r in caplog.records if r.name == "rocketnode.access"]
    assert access and access[-1].startswith("GET /_matrix/client/v3/register/available 500 ")
