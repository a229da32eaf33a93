"""Signing keys of other servers: fetched, verified, cached, and served as a notary.

Server-server API "Retrieving server keys". A key a server lists under ``verify_keys`` is valid
until ``valid_until_ts`` (capped at seven days from when we fetched it, as room versions 5+
ask); an old key until its ``expired_ts``. Keys come from the server itself, or else from the
configured notary servers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from rocketnode.core.errors import Errcode, MatrixError, RemoteServerError, SignatureError
from rocketnode.core.pdu import Pdu, SignatureVerdict, signing_key_ids_needed, verify_pdu
from rocketnode.core.signing import SigningKey, VerifyKey, sign_json, verify_json
from rocketnode.federation.client import FederationClient, path_segment
from rocketnode.services.clock import Clock
from rocketnode.storage.ports import FederationStore

logger = logging.getLogger(__name__)

OWN_KEY_LIFETIME_MS = 24 * 3600 * 1000
MAX_KEY_VALIDITY_MS = 7 * 24 * 3600 * 1000
REFETCH_INTERVAL_S = 10.0

KeyMap = dict[str, tuple[VerifyKey, int]]


def parse_key_response(server_name: str, response: object, now_ms: int) -> KeyMap:
    """Verify a ``/_matrix/key/v2/server`` response; the keys it vouches for, with validity."""
    if not isinstance(response, dict) or response.get("server_name") != server_name:
        raise SignatureError(f"Key response is not for {server_name}")
    valid_until = response.get("valid_until_ts")
    if not isinstance(valid_until, int):
        raise SignatureError("Key response has no valid_until_ts")
    capped = min(valid_until, now_ms + MAX_KEY_VALIDITY_MS)
    keys: KeyMap = {}
    for key_id, entry in (response.get("verify_keys") or {}).items():
        if isinstance(entry, dict) and isinstance(entry.get("key"), str):
            keys[key_id] = (VerifyKey.from_base64(key_id, entry["key"]), capped)
    if not keys:
        raise SignatureError(f"Key response of {server_name} lists no verify keys")
    for verify_key, _ in keys.values():
        verify_json(response, server_name, verify_key)
    for key_id, entry in (response.get("old_verify_keys") or {}).items():
        if (isinstance(entry, dict) and isinstance(entry.get("key"), str)
                and isinstance(entry.get("expired_ts"), int)):
            keys.setdefault(key_id, (VerifyKey.from_base64(key_id, entry["key"]),
                                     entry["expired_ts"]))
    return keys


class Keyring:
    def __init__(
        self, server_name: str, signing_key: SigningKey, client: FederationClient,
        store: FederationStore, clock: Clock, notaries: tuple[str, ...] = (),
    ) -> None:
        self.server_name = server_name
        self._signing_key = signing_key
        self._client = client
        self._store = store
        self._clock = clock
        self._notaries = notaries
        own = signing_key.verify_key
        self._keys: dict[str, KeyMap] = {server_name: {own.key_id: (own, 2**62)}}
        self._last_fetch: dict[str, float] = {}
        # per server, one lock for fetches that may ask notaries and one for direct-only
        # fetches (a notary's own keys): holders of the latter wait for nothing, so no two
        # fetches can wait for each other
        self._locks: dict[tuple[str, bool], asyncio.Lock] = {}

    # -- our own keys ------------------------------------------------------------------------

    def own_key_response(self) -> dict[str, Any]:
        """The signed body of ``GET /_matrix/key/v2/server``."""
        verify_key = self._signing_key.verify_key
        body = {
            "server_name": self.server_name,
            "valid_until_ts": self._clock.now_ms() + OWN_KEY_LIFETIME_MS,
            "verify_keys": {verify_key.key_id: {"key": verify_key.to_base64()}},
            "old_verify_keys": {},
        }
        return sign_json(body, self.server_name, self._signing_key)

    # -- lookups -----------------------------------------------------------------------------

    def lookup(self, server_name: str, key_id: str) -> tuple[VerifyKey, int] | None:
        return self._keys.get(server_name, {}).get(key_id)

    def _known(self, server_name: str, key_ids: Iterable[str], valid_at_ms: int) -> bool:
        """Whether every key is known and valid at ``valid_at_ms``."""
        for key_id in key_ids:
            found = self.lookup(server_name, key_id)
            if found is None or found[1] < valid_at_ms:
                return False
        return True

    async def ensure_keys(self, needed: Iterable[tuple[str, str]], valid_at_ms: int = 0) -> None:
        """Make sure every ``(server_name, key_id)`` is known, fetching what is missing."""
        by_server: dict[str, set[str]] = {}
        for server_name, key_id in needed:
            if not self._known(server_name, [key_id], valid_at_ms):
                by_server.setdefault(server_name, set()).add(key_id)
        await asyncio.gather(*(self._fetch_server(s, ids, valid_at_ms)
                               for s, ids in by_server.items()))

    async def _fetch_server(self, server_name: str, key_ids: set[str], valid_at_ms: int,
                            use_notaries: bool = True) -> None:
        lock = self._locks.setdefault((server_name, use_notaries), asyncio.Lock())
        async with lock:
            if self._known(server_name, key_ids, valid_at_ms):
                return
            stored = await self._store.get_server_keys(server_name)
            for key_id, (key, until) in stored.items():
                self._remember(server_name, {key_id: (VerifyKey.from_base64(key_id, key), until)})
            if self._known(server_name, key_ids, valid_at_ms):
                return
            now = self._clock.monotonic()
            if now - self._last_fetch.get(server_name, -1e9) < REFETCH_INTERVAL_S:
                return
            self._last_fetch[server_name] = now
            await self._fetch_remote(server_name, use_notaries)

    async def _fetch_remote(self, server_name: str, use_notaries: bool = True) -> None:
        try:
            response = await self._client.request(
                "GET", server_name, "/_matrix/key/v2/server", signed=False, timeout_s=15
            )
            await self._accept_response(server_name, response)
            return
        except (RemoteServerError, SignatureError, MatrixError) as exc:
            logger.info("Fetching keys of %s directly failed: %s", server_name, exc)
        if not use_notaries:
            return
        for notary in self._notaries:
            if notary != server_name and await self._fetch_via_notary(notary, server_name):
                return

    async def _fetch_via_notary(self, notary: str, server_name: str) -> bool:
        try:
            await self._ensure_notary_keys(notary)
            answer = await self._client.post(
                notary, "/_matrix/key/v2/query", {"server_keys": {server_name: {}}}, timeout_s=15
            )
            for response in answer.get("server_keys", []):
                if isinstance(response, dict) and response.get("server_name") == server_name:
                    self._check_notary_signature(notary, response)
                    await self._accept_response(server_name, response)
                    return True
        except (RemoteServerError, SignatureError, MatrixError, AttributeError) as exc:
            logger.info("Fetching keys of %s via notary %s failed: %s", server_name, notary, exc)
        return False

    async def _ensure_notary_keys(self, notary: str) -> None:
        """Know some key of ``notary``, fetched from the notary itself (never through
        another notary)."""
        if not self._keys.get(notary):
            await self._fetch_server(notary, {"*"}, 0, use_notaries=False)

    def _check_notary_signature(self, notary: str, response: dict[str, Any]) -> None:
        for verify_key, _ in self._keys.get(notary, {}).values():
            try:
                verify_json(response, notary, verify_key)
                return
            except SignatureError:
                continue
        raise SignatureError(f"Notary {notary} did not sign the key response")

    async def _accept_response(self, server_name: str, response: Any) -> None:
        now = self._clock.now_ms()
        keys = parse_key_response(server_name, response, now)
        self._remember(server_name, keys)
        stored = {key_id: (vk.to_base64(), until) for key_id, (vk, until) in keys.items()}
        await self._store.store_server_keys(
            server_name, stored, response, response["valid_until_ts"], now
        )

    def _remember(self, server_name: str, keys: KeyMap) -> None:
        known = self._keys.setdefault(server_name, {})
        for key_id, (verify_key, until) in keys.items():
            previous = known.get(key_id)
            if previous is None or previous[1] < until:
                known[key_id] = (verify_key, until)

    # -- verification ------------------------------------------------------------------------

    async def verify_pdus(self, pdus: list[Pdu]) -> list[SignatureVerdict | SignatureError]:
        """Verify many PDUs after fetching every key they need in one go."""
        await self.ensure_keys(signing_key_ids_needed(pdus))
        results: list[SignatureVerdict | SignatureError] = []
        for pdu in pdus:
            try:
                results.append(verify_pdu(pdu, self.lookup))
            except SignatureError as exc:
                results.append(exc)
        return results

    async def verify_request_signature(self, origin: str, key_id: str,
                                       signed: dict[str, Any]) -> None:
        """Check an X-Matrix signature with a key valid now; ``M_UNAUTHORIZED`` if it fails."""
        now = self._clock.now_ms()
        await self.ensure_keys([(origin, key_id)], valid_at_ms=now)
        found = self.lookup(origin, key_id)
        if found is None:
            raise MatrixError(Errcode.UNAUTHORIZED, f"Unknown key {key_id} of {origin}", 401)
        verify_key, valid_until = found
        if valid_until < now:
            raise MatrixError(Errcode.UNAUTHORIZED, f"Key {key_id} of {origin} has expired", 401)
        try:
            verify_json(signed, origin, verify_key)
        except SignatureError as exc:
            raise MatrixError(Errcode.UNAUTHORIZED, "Invalid request signature", 401) from exc

    # -- notary ------------------------------------------------------------------------------

    async def notary_response(self, server_name: str, minimum_valid_until_ts: int
                              ) -> dict[str, Any] | None:
        """A key response for ``server_name``, countersigned by us (None if unknown)."""
        if server_name == self.server_name:
            return self.own_key_response()
        cached = await self._store.get_key_response(server_name)
        if cached is None or cached[1] < minimum_valid_until_ts:
            self._last_fetch.pop(server_name, None)
            await self._fetch_remote(server_name)
            cached = await self._store.get_key_response(server_name)
        if cached is None:
            return None
        return sign_json(cached[0], self.server_name, self._signing_key)


def key_query_path(server_name: str) -> str:
    return f"/_matrix/key/v2/query/{path_segment(server_name)}"
