"""Server discovery (server-server API "Resolving server names").

IP literals and names with an explicit port are connected to directly; otherwise
``/.well-known/matrix/server`` is asked (cached), then the ``_matrix-fed._tcp`` SRV record, then
port 8448. The result says where to connect and which names to present.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from rocketnode.core.canonical_json import decode_lenient
from rocketnode.core.errors import MatrixError
from rocketnode.core.ids import ServerName
from rocketnode.services.clock import Clock

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8448
WELL_KNOWN_DEFAULT_TTL_S = 24 * 3600
WELL_KNOWN_MAX_TTL_S = 48 * 3600
WELL_KNOWN_ERROR_TTL_S = 3600
MAX_WELL_KNOWN_BYTES = 50_000


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where to connect for a server name, and what to call it."""

    host: str
    """Hostname or IP to connect to (IPv6 without brackets)."""
    port: int
    host_header: str
    tls_name: str
    """The name the server's certificate must be valid for (and SNI)."""


@dataclass(frozen=True, slots=True)
class WellKnownAnswer:
    status: int
    body: bytes
    max_age_s: int | None


WellKnownFetcher = Callable[[str], Awaitable[WellKnownAnswer]]
"""Fetch ``https://<hostname>/.well-known/matrix/server`` (redirects followed)."""
SrvResolver = Callable[[str], Awaitable[list[tuple[int, int, int, str]]]]
"""Resolve SRV records: ``[(priority, weight, port, target)]``; empty if none."""


def _strip_brackets(host: str) -> str:
    return host[1:-1] if host.startswith("[") else host


class ServerDiscovery:
    def __init__(self, clock: Clock, fetch_well_known: WellKnownFetcher,
                 resolve_srv: SrvResolver) -> None:
        self._clock = clock
        self._fetch_well_known = fetch_well_known
        self._resolve_srv = resolve_srv
        self._well_known: dict[str, tuple[float, str | None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def resolve(self, server_name: str) -> Endpoint:
        parsed = ServerName.parse(server_name)
        host = _strip_brackets(parsed.host)
        if parsed.is_ip_literal or parsed.port is not None:
            return Endpoint(host, parsed.port or DEFAULT_PORT, server_name, host)
        delegated = await self._delegation(parsed.host)
        if delegated is not None:
            return await self._resolve_delegated(delegated)
        srv = await self._srv(parsed.host)
        if srv is not None:
            return Endpoint(srv[0], srv[1], parsed.host, parsed.host)
        return Endpoint(parsed.host, DEFAULT_PORT, parsed.host, parsed.host)

    async def _resolve_delegated(self, delegated: str) -> Endpoint:
        try:
            target = ServerName.parse(delegated)
        except MatrixError:
            raise
        host = _strip_brackets(target.host)
        if target.is_ip_literal:
            return Endpoint(host, target.port or DEFAULT_PORT, delegated, host)
        if target.port is not None:
            return Endpoint(host, target.port, delegated, host)
        srv = await self._srv(target.host)
        if srv is not None:
            return Endpoint(srv[0], srv[1], target.host, target.host)
        return Endpoint(host, DEFAULT_PORT, target.host, target.host)

    async def _srv(self, hostname: str) -> tuple[str, int] | None:
        for service in ("_matrix-fed._tcp.", "_matrix._tcp."):
            try:
                records = await self._resolve_srv(service + hostname)
            except Exception as exc:  # DNS failures mean "no record"
                logger.debug("SRV lookup for %s failed: %s", hostname, exc)
                records = []
            if records:
                return _pick_srv(records)
        return None

    async def _delegation(self, hostname: str) -> str | None:
        now = self._clock.monotonic()
        cached = self._well_known.get(hostname)
        if cached is not None and cached[0] > now:
            return cached[1]
        lock = self._locks.setdefault(hostname, asyncio.Lock())
        async with lock:
            cached = self._well_known.get(hostname)
            if cached is not None and cached[0] > self._clock.monotonic():
                return cached[1]
            delegated, ttl = await self._fetch_delegation(hostname)
            self._well_known[hostname] = (self._clock.monotonic() + ttl, delegated)
            return delegated

    async def _fetch_delegation(self, hostname: str) -> tuple[str | None, float]:
        try:
            answer = await self._fetch_well_known(hostname)
        except Exception as exc:
            logger.info("No .well-known for %s: %s", hostname, exc)
            return None, WELL_KNOWN_ERROR_TTL_S
        if answer.status != 200 or len(answer.body) > MAX_WELL_KNOWN_BYTES:
            return None, WELL_KNOWN_ERROR_TTL_S
        try:
            body = decode_lenient(answer.body)
            delegated = body["m.server"]
            ServerName.parse(delegated)
        except Exception:
            return None, WELL_KNOWN_ERROR_TTL_S
        ttl = answer.max_age_s if answer.max_age_s is not None else WELL_KNOWN_DEFAULT_TTL_S
        return str(delegated), float(min(max(ttl, 0), WELL_KNOWN_MAX_TTL_S))


def _pick_srv(records: list[tuple[int, int, int, str]]) -> tuple[str, int]:
    """RFC 2782: lowest priority, then weighted random choice."""
    best = min(r[0] for r in records)
    candidates = [r for r in records if r[0] == best]
    total = sum(r[1] for r in candidates)
    if total == 0:
        chosen = candidates[0]
    else:
        point = random.uniform(0, total)
        running = 0.0
        chosen = candidates[-1]
        for record in candidates:
            running += record[1]
            if point <= running:
                chosen = record
                break
    return chosen[3].rstrip("."), chosen[2]
