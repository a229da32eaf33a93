"""Server discovery (server-server API "Resolving server names") with a scripted
``.well-known`` and SRV resolver and a clock the test moves: every step of the spec's
procedure, the Host header and certificate name it asks for, and the ``.well-known`` cache."""

from __future__ import annotations

import asyncio
import json

import pytest

from rocketnode.federation.discovery import (
    WELL_KNOWN_ERROR_TTL_S,
    WELL_KNOWN_MAX_TTL_S,
    Endpoint,
    ServerDiscovery,
    WellKnownAnswer,
)
from tests.unit.federation.fakes import HOUR_S, FakeClock

SrvRecords = list[tuple[int, int, int, str]]


class FakeDns:
    """Scripted ``.well-known`` answers and SRV records; every lookup is recorded."""

    def __init__(self) -> None:
        self.well_known: dict[str, WellKnownAnswer | Exception] = {}
        self.srv: dict[str, SrvRecords | Exception] = {}
        self.well_known_asked: list[str] = []
        self.srv_asked: list[str] = []
        self.release = asyncio.Event()
        self.release.set()

    def delegate(self, hostname: str, m_server: object, max_age_s: int | None = None) -> None:
        body = json.dumps({"m.server": m_server}).encode()
        self.well_known[hostname] = WellKnownAnswer(200, body, max_age_s)

    async def fetch_well_known(self, hostname: str) -> WellKnownAnswer:
        self.well_known_asked.append(hostname)
        await self.release.wait()
        answer = self.well_known.get(hostname, WellKnownAnswer(404, b"{}", None))
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def resolve_srv(self, name: str) -> SrvRecords:
        self.srv_asked.append(name)
        records = self.srv.get(name, [])
        if isinstance(records, Exception):
            raise records
        return records


@pytest.fixture
def dns() -> FakeDns:
    return FakeDns()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def discovery(dns: FakeDns, clock: FakeClock) -> ServerDiscovery:
    return ServerDiscovery(clock, dns.fetch_well_known, dns.resolve_srv)


# -- steps 1 and 2: IP literals and explicit ports -----------------------------------------------

@pytest.mark.parametrize(("server_name", "expected"), [
    ("1.2.3.4", Endpoint("1.2.3.4", 8448, "1.2.3.4", "1.2.3.4")),
    ("1.2.3.4:8000", Endpoint("1.2.3.4", 8000, "1.2.3.4:8000", "1.2.3.4")),
    ("[2001:db8::1]", Endpoint("2001:db8::1", 8448, "[2001:db8::1]", "2001:db8::1")),
    ("[::1]:9000", Endpoint("::1", 9000, "[::1]:9000", "::1")),
    ("example.org:8449", Endpoint("example.org", 8449, "example.org:8449", "example.org")),
    ("example.org:443", Endpoint("example.org", 443, "example.org:443", "example.org")),
])
async def test_ip_literals_and_explicit_ports_need_no_lookup(
        discovery: ServerDiscovery, dns: FakeDns, server_name: str, expected: Endpoint) -> None:
    dns.delegate("example.org", "elsewhere.test:1")  # must not be asked
    assert await discovery.resolve(server_name) == expected
    assert dns.well_known_asked == []
    assert dns.srv_asked == []


# -- step 3: .well-known delegation ----------------------------------------------------------

async def test_delegation_to_an_ip_literal(discovery: ServerDiscovery, dns: FakeDns) -> None:
    dns.delegate("example.org", "[2001:db8::5]:8443")
    assert await discovery.resolve("example.org") == Endpoint(
        "2001:db8::5", 8443, "[2001:db8::5]:8443", "2001:db8::5")
    dns.delegate("other.org", "10.0.0.7")
    assert await discovery.resolve("other.org") == Endpoint("10.0.0.7", 8448, "10.0.0.7",
                                                            "10.0.0.7")
    assert dns.srv_asked == []


async def test_delegation_to_host_and_port(discovery: ServerDiscovery, dns: FakeDns) -> None:
    dns.delegate("example.org", "matrix.example.net:443")
    dns.srv["_matrix-fed._tcp.matrix.example.net"] = [(0, 0, 1, "wrong.test.")]
    assert await discovery.resolve("example.org") == Endpoint(
        "matrix.example.net", 443, "matrix.example.net:443", "matrix.example.net")
    assert dns.well_known_asked == ["example.org"]
    assert dns.srv_asked == []


async def test_delegation_without_port_uses_srv_of_the_delegated_name(
        discovery: ServerDiscovery, dns: FakeDns) -> None:
    dns.delegate("example.org", "matrix.example.net")
    dns.srv["_matrix-fed._tcp.matrix.example.net"] = [(10, 0, 8500, "fed1.example.net.")]
    dns.srv["_matrix-fed._tcp.example.org"] = [(10, 0, 1, "wrong.test.")]
    assert await discovery.resolve("example.org") == Endpoint(
        "fed1.example.net", 8500, "matrix.example.net", "matrix.example.net")
    assert dns.srv_asked == ["_matrix-fed._tcp.matrix.example.net"]


async def test_delegation_without_port_falls_back_to_legacy_srv_then_8448(
        discovery: ServerDiscovery, dns: FakeDns) -> None:
    dns.delegate("example.org", "matrix.example.net")
    dns.srv["_matrix._tcp.matrix.example.net"] = [(10, 0, 8600, "old.example.net")]
    assert await discovery.resolve("example.org") == Endpoint(
        "old.example.net", 8600, "matrix.example.net", "matrix.example.net")
    assert dns.srv_asked == ["_matrix-fed._tcp.matrix.example.net",
                             "_matrix._tcp.matrix.example.net"]

    dns.delegate("plain.org", "matrix.plain.net")
    assert await discovery.resolve("plain.org") == Endpoint(
        "matrix.plain.net", 8448, "matrix.plain.net", "matrix.plain.net")


# -- steps 4 to 6: no usable .well-known -----------------------------------------------------

_BAD_WELL_KNOWN: list[WellKnownAnswer | Exception] = [
    WellKnownAnswer(404, b'{"errcode": "M_NOT_FOUND"}', None),
    WellKnownAnswer(500, b'{"m.server": "matrix.example.net:443"}', None),
    WellKnownAnswer(200, b"not json", None),
    WellKnownAnswer(200, b"[1, 2]", None),
    WellKnownAnswer(200, b'{"m.homeserver": "x.test"}', None),
    WellKnownAnswer(200, b'{"m.server": 8448}', None),
    WellKnownAnswer(200, b'{"m.server": "bad name!"}', None),
    WellKnownAnswer(200, b'{"m.server": "host:99999"}', None),
    WellKnownAnswer(200, b'{"m.server": "a.test:1", "pad": "' + b"x" * 60_000 + b'"}', None),
    OSError("connection refused"),
]


@pytest.mark.parametrize("answer", _BAD_WELL_KNOWN)
async def test_bad_well_known_falls_back_to_srv_then_8448(
        discovery: ServerDiscovery, dns: FakeDns, answer: WellKnownAnswer | Exception) -> None:
    dns.well_known["example.org"] = answer
    dns.srv["_matrix-fed._tcp.example.org"] = [(1, 0, 8700, "fed.example.org.")]
    assert await discovery.resolve("example.org") == Endpoint(
        "fed.example.org", 8700, "example.org", "example.org")

    dns.well_known["plain.org"] = answer
    assert await discovery.resolve("plain.org") == Endpoint(
        "plain.org", 8448, "plain.org", "plain.org")
    assert dns.srv_asked[-2:] == ["_matrix-fed._tcp.plain.org", "_matrix._tcp.plain.org"]


async def test_matrix_fed_srv_is_preferred_over_legacy(
        discovery: ServerDiscovery, dns: FakeDns) -> None:
    dns.srv["_matrix._tcp.example.org"] = [(0, 0, 1111, "legacy.example.org")]
    dns.srv["_matrix-fed._tcp.example.org"] = [(5, 0, 2222, "fed.example.org")]
    assert (await discovery.resolve("example.org")).port == 2222
    assert dns.srv_asked == ["_matrix-fed._tcp.example.org"]

    dns.srv["_matrix._tcp.legacy.org"] = [(0, 0, 1111, "legacy.example.org")]
    dns.srv["_matrix-fed._tcp.legacy.org"] = OSError("SERVFAIL")
    assert await discovery.resolve("legacy.org") == Endpoint(
        "legacy.example.org", 1111, "legacy.org", "legacy.org")


async def test_srv_lowest_priority_wins(discovery: ServerDiscovery, dns: FakeDns) -> None:
    chosen = set()
    for i in range(30):
        dns.srv[f"_matrix-fed._tcp.h{i}.example.org"] = [
            (20, 100, 1, "backup.test."), (10, 0, 2, "zero.test."), (10, 50, 3, "main.test.")]
        endpoint = await discovery.resolve(f"h{i}.example.org")
        chosen.add((endpoint.host, endpoint.port))
    assert chosen <= {("zero.test", 2), ("main.test", 3)}
    assert ("main.test", 3) in chosen


# -- the .well-known cache -------------------------------------------------------------------

async def test_well_known_is_cached_for_its_max_age(
        discovery: ServerDiscovery, dns: FakeDns, clock: FakeClock) -> None:
    dns.delegate("example.org", "a.example.net:443", max_age_s=600)
    assert (await discovery.resolve("example.org")).host == "a.example.net"
    dns.delegate("example.org", "b.example.net:443", max_age_s=600)
    clock.advance(599)
    assert (await discovery.resolve("example.org")).host == "a.example.net"
    assert dns.well_known_asked == ["example.org"]
    clock.advance(2)
    assert (await discovery.resolve("example.org")).host == "b.example.net"
    assert dns.well_known_asked == ["example.org"] * 2


async def test_well_known_without_cache_headers_is_kept_a_day(
        discovery: ServerDiscovery, dns: FakeDns, clock: FakeClock) -> None:
    dns.delegate("example.org", "a.example.net:443")
    await discovery.resolve("example.org")
    clock.advance(24 * HOUR_S - 1)
    await discovery.resolve("example.org")
    assert len(dns.well_known_asked) == 1
    clock.advance(2)
    await discovery.resolve("example.org")
    assert len(dns.well_known_asked) == 2


async def test_well_known_cache_is_bounded_to_48_hours(
        discovery: ServerDiscovery, dns: FakeDns, clock: FakeClock) -> None:
    dns.delegate("example.org", "a.example.net:443", max_age_s=365 * 24 * 3600)
    await discovery.resolve("example.org")
    clock.advance(WELL_KNOWN_MAX_TTL_S - 1)
    await discovery.resolve("example.org")
    assert len(dns.well_known_asked) == 1
    clock.advance(2)
    await discovery.resolve("example.org")
    assert len(dns.well_known_asked) == 2
    assert WELL_KNOWN_MAX_TTL_S == 48 * HOUR_S


@pytest.mark.parametrize("answer", [_BAD_WELL_KNOWN[0], _BAD_WELL_KNOWN[2], OSError("down")])
async def test_well_known_errors_are_cached_for_an_hour(
        discovery: ServerDiscovery, dns: FakeDns, clock: FakeClock,
        answer: WellKnownAnswer | Exception) -> None:
    dns.well_known["example.org"] = answer
    assert (await discovery.resolve("example.org")).port == 8448
    dns.delegate("example.org", "fixed.example.net:443")
    clock.advance(WELL_KNOWN_ERROR_TTL_S - 1)
    assert (await discovery.resolve("example.org")).port == 8448
    assert len(dns.well_known_asked) == 1
    clock.advance(2)
    assert await discovery.resolve("example.org") == Endpoint(
        "fixed.example.net", 443, "fixed.example.net:443", "fixed.example.net")
    assert WELL_KNOWN_ERROR_TTL_S == HOUR_S


async def test_concurrent_resolutions_fetch_well_known_once(
        discovery: ServerDiscovery, dns: FakeDns) -> None:
    dns.delegate("example.org", "a.example.net:443")
    dns.release.clear()
    tasks = [asyncio.create_task(discovery.resolve("example.org")) for _ in range(10)]
    await asyncio.sleep(0.01)
    assert dns.well_known_asked == ["example.org"]
    dns.release.set()
    results = await asyncio.gather(*tasks)
    assert {r.host for r in results} == {"a.example.net"}
    assert dns.well_known_asked == ["example.org"]


async def test_cache_is_per_hostname(discovery: ServerDiscovery, dns: FakeDns) -> None:
    dns.delegate("a.org", "x.example.net:1")
    dns.delegate("b.org", "y.example.net:2")
    assert (await discovery.resolve("a.org")).host == "x.example.net"
    assert (await discovery.resolve("b.org")).host == "y.example.net"
    assert (await discovery.resolve("a.org")).port == 1
    assert dns.well_known_asked == ["a.org", "b.org"]
