"""Signed HTTPS requests to other servers (server-server API).

Every request carries an X-Matrix signature. Failures of any kind (unreachable, TLS, timeouts,
error statuses, unusable bodies) become :class:`RemoteServerError`, never our own 500.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from yarl import URL

from rocketnode.core.canonical_json import decode_lenient, encode_json
from rocketnode.core.errors import Errcode, MatrixError, RemoteServerError
from rocketnode.core.ids import ServerName
from rocketnode.core.signing import SigningKey
from rocketnode.federation.discovery import (
    Endpoint,
    ServerDiscovery,
    WellKnownAnswer,
)
from rocketnode.federation.x_matrix import authorization_header

logger = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 64 * 1024 * 1024
DEFAULT_TIMEOUT_S = 60.0
_MAX_AGE = re.compile(r"max-age\s*=\s*(\d+)")


def path_segment(value: str) -> str:
    """Percent-encode one path segment (room IDs, event IDs, user IDs...)."""
    return quote(value, safe="")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class FederationClient:
    def __init__(
        self,
        server_name: str,
        signing_key: SigningKey,
        verify_tls: bool,
        whitelist: tuple[str, ...] = (),
        loopback_only: bool = False,
    ) -> None:
        self.server_name = server_name
        self._key = signing_key
        self._whitelist = frozenset(whitelist)
        self._loopback_only = loopback_only
        self._ssl: ssl.SSLContext | bool = verify_tls
        self._session: aiohttp.ClientSession | None = None
        self.discovery: ServerDiscovery | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=200, limit_per_host=16, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": "RocketNode"},
                timeout=aiohttp.ClientTimeout(total=DEFAULT_TIMEOUT_S, connect=10),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def check_allowed(self, destination: str) -> None:
        """Refuse destinations outside the whitelist (and, for test setups, off loopback)."""
        if self._whitelist and destination not in self._whitelist:
            raise MatrixError(Errcode.FORBIDDEN,
                              f"Federation with {destination} is not allowed here", 403)
        if self._loopback_only and not _is_loopback_name(destination):
            raise MatrixError(Errcode.FORBIDDEN,
                              f"{destination} is not on loopback (loopback_only is set)", 403)

    async def request(
        self,
        method: str,
        destination: str,
        path: str,
        query: Mapping[str, str | list[str]] | None = None,
        body: Any | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        signed: bool = True,
    ) -> Any:
        """Send a request and return the decoded JSON body of a 2xx answer."""
        self.check_allowed(destination)
        if self.discovery is None:
            raise RuntimeError("FederationClient has no discovery")
        uri = path + ("?" + urlencode(query, doseq=True) if query else "")
        try:
            endpoint = await self.discovery.resolve(destination)
        except MatrixError as exc:
            raise RemoteServerError(destination, f"cannot resolve: {exc.message}") from exc
        if self._loopback_only and not _is_loopback_host(endpoint.host):
            raise MatrixError(Errcode.FORBIDDEN,
                              f"{destination} is delegated off loopback (loopback_only is set)",
                              403)
        headers = {"Host": endpoint.host_header}
        data = None
        if body is not None:
            data = encode_json(body)
            headers["Content-Type"] = "application/json"
        if signed:
            headers["Authorization"] = authorization_header(
                method, uri, self.server_name, destination, body, self._key
            )
        return await self._send(method, destination, endpoint, uri, headers, data, timeout_s)

    async def _send(
        self, method: str, destination: str, endpoint: Endpoint, uri: str,
        headers: dict[str, str], data: bytes | None, timeout_s: float,
    ) -> Any:
        url = URL(f"https://{_url_host(endpoint.host)}:{endpoint.port}{uri}", encoded=True)
        try:
            async with self._http().request(
                method, url, data=data, headers=headers, ssl=self._ssl,
                server_hostname=endpoint.tls_name if self._ssl else None,
                timeout=aiohttp.ClientTimeout(total=timeout_s, connect=10),
                allow_redirects=False,
            ) as response:
                raw = await _read_body(response, MAX_RESPONSE_BYTES)
                status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise RemoteServerError(destination, f"{type(exc).__name__}: {exc}") from exc
        if len(raw) > MAX_RESPONSE_BYTES:
            raise RemoteServerError(destination, "response too large", status)
        return _decode(destination, status, raw)

    async def get(self, destination: str, path: str,
                  query: Mapping[str, str | list[str]] | None = None,
                  timeout_s: float = DEFAULT_TIMEOUT_S) -> Any:
        return await self.request("GET", destination, path, query=query, timeout_s=timeout_s)

    async def put(self, destination: str, path: str, body: Any,
                  query: Mapping[str, str | list[str]] | None = None,
                  timeout_s: float = DEFAULT_TIMEOUT_S) -> Any:
        return await self.request("PUT", destination, path, query=query, body=body,
                                  timeout_s=timeout_s)

    async def post(self, destination: str, path: str, body: Any,
                   query: Mapping[str, str | list[str]] | None = None,
                   timeout_s: float = DEFAULT_TIMEOUT_S) -> Any:
        return await self.request("POST", destination, path, query=query, body=body,
                                  timeout_s=timeout_s)

    async def fetch_well_known(self, hostname: str) -> WellKnownAnswer:
        """GET ``https://<hostname>/.well-known/matrix/server`` (discovery's fetcher)."""
        url = f"https://{_url_host(hostname)}/.well-known/matrix/server"
        async with self._http().get(
            url, ssl=self._ssl, max_redirects=5,
            timeout=aiohttp.ClientTimeout(total=15, connect=10),
        ) as response:
            body = await _read_body(response, 64 * 1024)
            match = _MAX_AGE.search(response.headers.get("Cache-Control", ""))
            max_age = int(match.group(1)) if match else None
            return WellKnownAnswer(response.status, body, max_age)


async def _read_body(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body of ``response``, whole unless longer than ``limit`` (then a little more than
    ``limit`` bytes of it, for the caller to refuse)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(chunks)


@functools.lru_cache(maxsize=4096)
def _is_loopback_name(server_name: str) -> bool:
    try:
        host = ServerName.parse(server_name).host.strip("[]")
    except MatrixError:
        return False
    return _is_loopback_host(host)


def _is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback IP address (IPv6 without brackets)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _decode(destination: str, status: int, raw: bytes) -> Any:
    try:
        body = decode_lenient(raw) if raw else {}
    except MatrixError:
        body = None
    if 200 <= status < 300:
        if body is None:
            raise RemoteServerError(destination, "answered with invalid JSON", status)
        return body
    errcode = body.get("errcode") if isinstance(body, dict) else None
    message = body.get("error") if isinstance(body, dict) else None
    raise RemoteServerError(
        destination, f"HTTP {status} {errcode or ''} {message or ''}".strip(), status,
        errcode if isinstance(errcode, str) else None,
    )


async def resolve_srv(name: str) -> list[tuple[int, int, int, str]]:
    """SRV records for ``name`` through the system's resolver (dnspython)."""
    import dns.asyncresolver
    import dns.exception

    try:
        answer = await dns.asyncresolver.resolve(name, "SRV", lifetime=5.0)
    except dns.exception.DNSException:
        return []
    return [(r.priority, r.weight, r.port, r.target.to_text()) for r in answer]
