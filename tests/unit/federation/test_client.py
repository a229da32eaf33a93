"""The federation client against a local TLS server on 127.0.0.1: every request carries an
X-Matrix signature over exactly the path and query the server received, answers become JSON
or :class:`RemoteServerError`, and the whitelist and ``loopback_only`` refuse other
destinations before any network I/O."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from rocketnode.core.canonical_json import decode_lenient
from rocketnode.core.errors import Errcode, MatrixError, RemoteServerError
from rocketnode.core.signing import SigningKey, verify_json
from rocketnode.federation import client as client_module
from rocketnode.federation.client import FederationClient, path_segment
from rocketnode.federation.discovery import ServerDiscovery, WellKnownAnswer
from rocketnode.federation.x_matrix import parse_authorization, request_json
from rocketnode.keys import load_or_create_tls
from tests.unit.federation.fakes import FakeClock

ORIGIN = "origin.test"
KEY = SigningKey("client_1", bytes(range(1, 33)))
BIG_ITEMS = 40_000


@dataclass
class Received:
    method: str
    raw_path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LocalServer:
    destination: str
    received: list[Received] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)


async def _handle(request: web.Request) -> web.StreamResponse:
    server: LocalServer = request.app["server"]
    server.received.append(Received(request.method, request.raw_path, dict(request.headers),
                                    await request.read()))
    tail = request.path.rsplit("/", 1)[-1]
    if tail.startswith("forbidden"):
        return web.json_response({"errcode": "M_FORBIDDEN", "error": "not you"}, status=403)
    if tail.startswith("broken"):
        return web.Response(status=500, text="<html>oops</html>")
    if tail.startswith("not_json"):
        return web.Response(status=200, text="{not json")
    if tail.startswith("redirect"):
        raise web.HTTPFound("/_matrix/federation/v1/echo")
    if tail.startswith("big"):
        return web.json_response({"items": [{"n": i, "pad": "x" * 40} for i in range(BIG_ITEMS)]})
    if tail.startswith("slow"):
        await asyncio.wait_for(server.stop.wait(), 5)
    return web.json_response({"ok": True})


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LocalServer]:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    load_or_create_tls(cert, key, "127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    local = LocalServer(f"127.0.0.1:{port}")
    app["server"] = local
    yield local
    local.stop.set()
    await runner.cleanup()


class NoLookups:
    """Discovery back-ends that must not be used: every test destination is an IP literal."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def fetch_well_known(self, hostname: str) -> WellKnownAnswer:
        self.asked.append(hostname)
        raise AssertionError(f"well-known of {hostname} asked")

    async def resolve_srv(self, name: str) -> list[tuple[int, int, int, str]]:
        self.asked.append(name)
        raise AssertionError(f"SRV of {name} asked")


class NoNetwork:
    """Stands in for the client's HTTP session where no connection may be made: a request
    fails the test instead of reaching any address."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    def request(self, method: str, url: Any, **options: Any) -> Any:
        self.attempts.append(f"{method} {url}")
        raise AssertionError(f"network I/O attempted: {method} {url}")

    async def close(self) -> None:
        return None


def guard_network(client: FederationClient) -> NoNetwork:
    guard = NoNetwork()
    client._session = guard  # type: ignore[assignment]
    return guard


def make_client(lookups: NoLookups, **options: Any) -> FederationClient:
    client = FederationClient(ORIGIN, KEY, verify_tls=False, loopback_only=True, **options)
    client.discovery = ServerDiscovery(FakeClock(), lookups.fetch_well_known,
                                       lookups.resolve_srv)
    return client


@pytest.fixture
async def client() -> AsyncIterator[FederationClient]:
    client = make_client(NoLookups())
    yield client
    await client.close()


def assert_signed(received: Received, destination: str, content: Any | None) -> None:
    """The X-Matrix header verifies over what the server received, as a receiver checks."""
    auth = parse_authorization(received.headers["Authorization"])
    assert (auth.origin, auth.destination, auth.key_id) == (ORIGIN, destination, KEY.key_id)
    signed = request_json(received.method, received.raw_path, ORIGIN, destination, content)
    signed["signatures"] = {ORIGIN: {auth.key_id: auth.signature}}
    verify_json(signed, ORIGIN, KEY.verify_key)


# -- signing -------------------------------------------------------------------------------------

async def test_get_is_signed_over_the_raw_path_and_query(
        client: FederationClient, server: LocalServer) -> None:
    room_id, user_id, event_id = "!abc:host", "@u:host.test", "$ab/cd+ef=="
    path = (f"/_matrix/federation/v1/make_join/{path_segment(room_id)}/{path_segment(user_id)}"
            f"/{path_segment(event_id)}")
    answer = await client.get(server.destination, path,
                              {"ver": ["10", "11"], "user": user_id, "q": "a b&c"})
    assert answer == {"ok": True}
    [received] = server.received
    assert received.raw_path == (
        "/_matrix/federation/v1/make_join/%21abc%3Ahost/%40u%3Ahost.test/%24ab%2Fcd%2Bef%3D%3D"
        "?ver=10&ver=11&user=%40u%3Ahost.test&q=a+b%26c")
    assert received.method == "GET" and received.body == b""
    assert received.headers["Host"] == server.destination
    assert_signed(received, server.destination, None)


@pytest.mark.parametrize("method", ["PUT", "POST"])
async def test_a_body_is_signed_as_content(client: FederationClient, server: LocalServer,
                                           method: str) -> None:
    body = {"pdus": [], "edus": [{"edu_type": "m.typing", "content": {"é": "ü"}}], "n": 1}
    path = f"/_matrix/federation/v1/send/{path_segment('txn/1')}"
    send = client.put if method == "PUT" else client.post
    assert await send(server.destination, path, body) == {"ok": True}
    [received] = server.received
    assert received.raw_path == "/_matrix/federation/v1/send/txn%2F1"
    assert received.headers["Content-Type"] == "application/json"
    assert decode_lenient(received.body) == body
    assert_signed(received, server.destination, body)


async def test_unsigned_requests_carry_no_authorization(
        client: FederationClient, server: LocalServer) -> None:
    await client.request("GET", server.destination, "/_matrix/key/v2/server", signed=False)
    [received] = server.received
    assert "Authorization" not in received.headers


# -- answers -------------------------------------------------------------------------------------

async def test_a_large_answer_is_read_whole(client: FederationClient,
                                            server: LocalServer) -> None:
    answer = await client.get(server.destination, "/_matrix/federation/v1/big")
    assert len(answer["items"]) == BIG_ITEMS
    assert answer["items"][-1]["n"] == BIG_ITEMS - 1


async def test_an_answer_over_the_limit_is_refused(
        client: FederationClient, server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "MAX_RESPONSE_BYTES", 100_000)
    with pytest.raises(RemoteServerError) as caught:
        await client.get(server.destination, "/_matrix/federation/v1/big")
    assert "too large" in caught.value.message
    assert caught.value.remote_status == 200


@pytest.mark.parametrize(("tail", "status", "errcode"), [
    ("forbidden", 403, "M_FORBIDDEN"),
    ("broken", 500, None),
    ("not_json", 200, None),
    ("redirect", 302, None),
])
async def test_bad_answers_become_remote_server_errors(
        client: FederationClient, server: LocalServer, tail: str, status: int,
        errcode: str | None) -> None:
    with pytest.raises(RemoteServerError) as caught:
        await client.get(server.destination, f"/_matrix/federation/v1/{tail}")
    error = caught.value
    assert (error.remote_status, error.remote_errcode) == (status, errcode)
    assert error.server_name == server.destination
    assert error.status == 502 and error.errcode is Errcode.UNKNOWN
    assert len(server.received) == 1  # redirects are not followed


async def test_timeouts_become_remote_server_errors(client: FederationClient,
                                                    server: LocalServer) -> None:
    with pytest.raises(RemoteServerError) as caught:
        await client.get(server.destination, "/_matrix/federation/v1/slow", timeout_s=0.3)
    assert caught.value.remote_status is None


async def test_connection_refused_becomes_a_remote_server_error(
        client: FederationClient) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RemoteServerError) as caught:
        await client.get(f"127.0.0.1:{port}", "/_matrix/federation/v1/version")
    assert caught.value.server_name == f"127.0.0.1:{port}"
    assert caught.value.remote_status is None


# -- refusing destinations -----------------------------------------------------------------------

@pytest.mark.parametrize("destination", [
    "example.org", "example.org:8448", "8.8.8.8", "[2001:db8::1]:8448", "10.0.0.1:443",
    "localhost.example.org", "not a name",
])
async def test_loopback_only_refuses_other_destinations_before_any_io(
        server: LocalServer, destination: str) -> None:
    lookups = NoLookups()
    client = make_client(lookups)
    guard = guard_network(client)
    with pytest.raises(MatrixError) as caught:
        await client.get(destination, "/_matrix/federation/v1/version")
    assert (caught.value.errcode, caught.value.status) == (Errcode.FORBIDDEN, 403)
    assert lookups.asked == []
    assert guard.attempts == []
    assert server.received == []


@pytest.mark.parametrize("destination", ["127.0.0.1:1", "127.5.6.7:1", "[::1]:1",
                                         "localhost:1"])
async def test_loopback_destinations_are_let_through(destination: str) -> None:
    """Allowed, so the client connects — and finds nobody on port 1."""
    client = make_client(NoLookups())
    try:
        with pytest.raises(RemoteServerError) as caught:
            await client.get(destination, "/_matrix/federation/v1/version", timeout_s=5)
    finally:
        await client.close()
    assert caught.value.server_name == destination


async def test_the_whitelist_refuses_other_destinations_before_any_io(
        server: LocalServer) -> None:
    lookups = NoLookups()
    client = make_client(lookups, whitelist=(server.destination,))
    guard = guard_network(client)
    with pytest.raises(MatrixError) as caught:
        await client.post("127.0.0.1:1", "/_matrix/federation/v1/x", {})
    assert (caught.value.errcode, caught.value.status) == (Errcode.FORBIDDEN, 403)
    assert guard.attempts == []
    client._session = None  # the whitelisted destination is reached for real
    try:
        assert await client.get(server.destination, "/_matrix/federation/v1/ok") == {"ok": True}
    finally:
        await client.close()
    assert lookups.asked == []
    assert [r.raw_path for r in server.received] == ["/_matrix/federation/v1/ok"]


class Delegating(NoLookups):
    """``localhost`` delegates (by ``.well-known``) to ``target``."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    async def fetch_well_known(self, hostname: str) -> WellKnownAnswer:
        self.asked.append(hostname)
        return WellKnownAnswer(200, f'{{"m.server": "{self.target}"}}'.encode(), None)


async def test_loopback_only_refuses_a_delegation_off_loopback(server: LocalServer) -> None:
    lookups = Delegating("matrix.example.org:8448")
    client = make_client(lookups)
    guard = guard_network(client)
    with pytest.raises(MatrixError) as caught:
        await client.get("localhost", "/_matrix/federation/v1/version")
    assert caught.value.errcode is Errcode.FORBIDDEN
    assert guard.attempts == []
    assert lookups.asked == ["localhost"]


async def test_a_delegated_request_is_signed_for_the_server_name(server: LocalServer) -> None:
    """"Request Authentication": the names from before delegation are signed; the Host header
    is the delegated name."""
    client = make_client(Delegating(server.destination))
    try:
        assert await client.get("localhost", "/_matrix/federation/v1/version") == {"ok": True}
    finally:
        await client.close()
    [received] = server.received
    assert received.headers["Host"] == server.destination
    assert_signed(received, "localhost", None)
