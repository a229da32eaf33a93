"""Test doubles for the federation building blocks: a clock the test moves, a federation client
that records requests and answers from a script, signed key responses, and a real SQLite store
in a temporary directory."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rocketnode.core.errors import RemoteServerError
from rocketnode.core.signing import SigningKey, sign_json
from rocketnode.storage.ports import Stores
from rocketnode.storage.sqlite import open_sqlite

NOW_MS = 1_750_000_000_000
HOUR_S = 3600.0
DAY_MS = 24 * 3600 * 1000


class FakeClock:
    """Wall clock and monotonic clock that only move when the test says so."""

    def __init__(self, now_ms: int = NOW_MS, monotonic: float = 1000.0) -> None:
        self._now_ms = now_ms
        self._monotonic = monotonic

    def now_ms(self) -> int:
        return self._now_ms

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        self._now_ms += int(seconds * 1000)
        self._monotonic += seconds

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)


@dataclass(frozen=True)
class Sent:
    """One request a :class:`FakeFederationClient` was asked to make."""

    method: str
    destination: str
    path: str
    query: Mapping[str, str | list[str]] | None
    body: Any
    signed: bool


Answer = Any | BaseException | Callable[[Sent], Awaitable[Any]]


class FakeFederationClient:
    """Records requests; answers each from ``answers[(method, destination, path)]``.

    An answer is a JSON value (returned as a copy), an exception (raised) or an async function
    of the request. Unscripted requests fail like an unreachable server."""

    def __init__(self, server_name: str = "us.test") -> None:
        self.server_name = server_name
        self.sent: list[Sent] = []
        self.answers: dict[tuple[str, str, str], Answer] = {}
        self.handlers: dict[str, Callable[[Sent], Awaitable[Any]]] = {}
        """Per destination: answers every request not in ``answers``."""

    def answer(self, method: str, destination: str, path: str, answer: Answer) -> None:
        self.answers[(method, destination, path)] = answer

    def sent_to(self, destination: str, method: str | None = None) -> list[Sent]:
        return [s for s in self.sent
                if s.destination == destination and method in (None, s.method)]

    def check_allowed(self, destination: str) -> None:
        return None

    async def request(
        self, method: str, destination: str, path: str,
        query: Mapping[str, str | list[str]] | None = None, body: Any | None = None,
        timeout_s: float = 60.0, signed: bool = True,
    ) -> Any:
        sent = Sent(method, destination, path, query, copy.deepcopy(body), signed)
        self.sent.append(sent)
        answer = self.answers.get((method, destination, path), self.handlers.get(destination))
        if answer is None:
            raise RemoteServerError(destination, "connection refused (unscripted)")
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            return await answer(sent)
        return copy.deepcopy(answer)

    async def get(self, destination: str, path: str,
                  query: Mapping[str, str | list[str]] | None = None,
                  timeout_s: float = 60.0) -> Any:
        return await self.request("GET", destination, path, query=query)

    async def put(self, destination: str, path: str, body: Any,
                  query: Mapping[str, str | list[str]] | None = None,
                  timeout_s: float = 60.0) -> Any:
        return await self.request("PUT", destination, path, query=query, body=body)

    async def post(self, destination: str, path: str, body: Any,
                   query: Mapping[str, str | list[str]] | None = None,
                   timeout_s: float = 60.0) -> Any:
        return await self.request("POST", destination, path, query=query, body=body)


def server_key(version: str) -> SigningKey:
    """A deterministic signing key (distinct per version)."""
    return SigningKey(version, bytes((sum(map(ord, version)) + i) % 256 for i in range(32)))


def key_response(
    server_name: str, keys: list[SigningKey], valid_until_ts: int,
    old: Mapping[str, tuple[SigningKey, int]] | None = None,
    signers: list[SigningKey] | None = None,
) -> dict[str, Any]:
    """A ``/_matrix/key/v2/server`` body listing ``keys``, signed by ``signers`` (default:
    every listed key). ``old`` maps key IDs to ``(key, expired_ts)``."""
    body: dict[str, Any] = {
        "server_name": server_name,
        "valid_until_ts": valid_until_ts,
        "verify_keys": {k.key_id: {"key": k.verify_key.to_base64()} for k in keys},
        "old_verify_keys": {
            key_id: {"key": key.verify_key.to_base64(), "expired_ts": expired}
            for key_id, (key, expired) in (old or {}).items()
        },
    }
    for signer in keys if signers is None else signers:
        body = sign_json(body, server_name, signer)
    return body


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout_s: float = 5.0,
                     what: str = "condition") -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


@asynccontextmanager
async def sqlite_stores(directory: Path) -> AsyncIterator[Stores]:
    """The real SQLite stores in ``directory`` (created and migrated on first open)."""
    stores, _db = await open_sqlite(str(directory / "federation.db"), readers=2)
    try:
        yield stores
    finally:
        await stores.close()
