"""The one client used against both implementations: plain aiohttp and the standard
client-server API only (register with UIA ``m.login.dummy``, createRoom, join with
``server_name``, send, joined_members, /sync with a filter).

:class:`TimelineWatcher` long-polls /sync without pause and notes the moment (``perf_counter``)
each message body first shows up in the room's timeline, so latency is "sent → visible in the
receiver's /sync", as a user would see it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import time
from collections.abc import Collection, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import quote

import aiohttp

V3 = "/_matrix/client/v3"
SYNC_TIMEOUT_MS = 30_000
TIMELINE_LIMIT = 1000  # RocketNode's largest accepted filter limit; Synapse is raised to 10,000


class ApiError(RuntimeError):
    """A non-200 answer."""

    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        errcode = body.get("errcode") if isinstance(body, dict) else None
        super().__init__(f"{method} {path}: {status} {errcode or body}")
        self.status = status
        self.errcode = errcode
        self.body = body


def new_session(max_connections: int = 0) -> aiohttp.ClientSession:
    """One session for every client of a benchmark (``0``: no connection limit; the
    workloads bound how many requests they have in flight themselves)."""
    connector = aiohttp.TCPConnector(limit=max_connections, limit_per_host=0,
                                     force_close=False)
    return aiohttp.ClientSession(connector=connector,
                                 timeout=aiohttp.ClientTimeout(total=None))


class Client:
    """One user on one server."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self._session = session
        self.base_url = base_url
        self.user_id = ""
        self._token = ""
        self._txn_prefix = secrets.token_hex(4)
        self._txn_counter = itertools.count()

    async def call(self, method: str, path: str, body: Any = None,
                   params: Sequence[tuple[str, str]] = (), timeout_s: float = 120.0) -> Any:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        async with self._session.request(
                method, self.base_url + path, json=body, params=list(params), headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            answer = json.loads(await response.read() or b"{}")
            if response.status != 200:
                raise ApiError(method, path, response.status, answer)
            return answer

    async def register(self, localpart: str, password: str | None = "bench-password") -> None:
        """POST /register: the first call opens a UIA session (401), the second completes the
        ``m.login.dummy`` stage. ``password=None`` registers without one (the spec allows it;
        Synapse refuses it)."""
        body: dict[str, Any] = {"username": localpart, "initial_device_display_name": "bench"}
        if password is not None:
            body["password"] = password
        path = f"{V3}/register"
        try:
            await self.call("POST", path, body)
            raise RuntimeError("registration answered 200 without user-interactive auth")
        except ApiError as error:
            if error.status != 401 or not isinstance(error.body, dict):
                raise
            session = error.body.get("session")
        body["auth"] = {"type": "m.login.dummy", "session": session}
        answer = await self.call("POST", path, body)
        self.user_id, self._token = answer["user_id"], answer["access_token"]

    async def create_room(self, **body: Any) -> str:
        answer = await self.call("POST", f"{V3}/createRoom", {"preset": "public_chat", **body})
        return str(answer["room_id"])

    async def join(self, room: str, via: Sequence[str] = (), timeout_s: float = 120.0) -> str:
        params = [("server_name", server) for server in via]
        answer = await self.call("POST", f"{V3}/join/{quote(room, safe='')}", {}, params,
                                 timeout_s)
        return str(answer["room_id"])

    async def send_text(self, room_id: str, text: str, timeout_s: float = 120.0) -> str:
        """PUT /rooms/{roomId}/send/m.room.message/{txnId}; the event ID."""
        txn_id = f"{self._txn_prefix}.{next(self._txn_counter)}"
        path = f"{V3}/rooms/{quote(room_id, safe='')}/send/m.room.message/{txn_id}"
        answer = await self.call("PUT", path, {"msgtype": "m.text", "body": text},
                                 timeout_s=timeout_s)
        return str(answer["event_id"])

    async def leave(self, room_id: str) -> None:
        await self.call("POST", f"{V3}/rooms/{quote(room_id, safe='')}/leave", {})

    async def membership(self, room_id: str, user_id: str) -> str | None:
        """The ``membership`` of ``user_id`` in the room's current state, if any."""
        path = (f"{V3}/rooms/{quote(room_id, safe='')}/state/m.room.member/"
                f"{quote(user_id, safe='')}")
        try:
            content = await self.call("GET", path)
        except ApiError as error:
            if error.status == 404:
                return None
            raise
        membership = content.get("membership")
        return membership if isinstance(membership, str) else None

    async def joined_members(self, room_id: str, timeout_s: float = 120.0) -> int:
        answer = await self.call("GET", f"{V3}/rooms/{quote(room_id, safe='')}/joined_members",
                                 timeout_s=timeout_s)
        return len(answer.get("joined", {}))

    async def sync(self, since: str | None, timeout_ms: int,
                   sync_filter: dict[str, Any]) -> tuple[dict[str, Any], float]:
        """GET /sync; the answer and the moment its body had been read."""
        params = [("timeout", str(timeout_ms)),
                  ("filter", json.dumps(sync_filter, separators=(",", ":")))]
        if since is not None:
            params.append(("since", since))
        headers = {"Authorization": f"Bearer {self._token}"}
        async with self._session.get(
                self.base_url + f"{V3}/sync", params=params, headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout_ms / 1000 + 60)) as response:
            raw = await response.read()
            received = time.perf_counter()
            answer = json.loads(raw)
            if response.status != 200:
                raise ApiError("GET", "/sync", response.status, answer)
            return answer, received


def messages_filter(room_id: str) -> dict[str, Any]:
    """Only the room's m.room.message timeline: no state, presence, ephemeral or account data."""
    nothing = {"not_types": ["*"]}
    return {
        "presence": nothing,
        "account_data": nothing,
        "room": {
            "rooms": [room_id],
            "timeline": {"limit": TIMELINE_LIMIT, "types": ["m.room.message"]},
            "state": {"lazy_load_members": True, **nothing},
            "ephemeral": nothing,
            "account_data": nothing,
        },
    }


class TimelineWatcher:
    """``async with TimelineWatcher(client, room_id) as watcher:`` long-polls /sync for the
    room from "now" on, recording when each m.room.message body first arrives."""

    def __init__(self, client: Client, room_id: str) -> None:
        self.client = client
        self.room_id = room_id
        self.arrivals: dict[str, float] = {}
        self.limited = 0
        """Sync answers that said ``limited: true`` (a gap in the timeline)."""
        self.errors = 0
        self._filter = messages_filter(room_id)
        self._since: str | None = None
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> TimelineWatcher:
        answer, _ = await self.client.sync(None, 0, self._filter)
        self._since = answer["next_batch"]
        self._task = asyncio.create_task(self._poll())
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _poll(self) -> None:
        while True:
            try:
                answer, received = await self.client.sync(self._since, SYNC_TIMEOUT_MS,
                                                          self._filter)
            except (ApiError, aiohttp.ClientError, OSError, TimeoutError, ValueError):
                self.errors += 1
                await asyncio.sleep(0.1)
                continue
            self._since = answer["next_batch"]
            room = answer.get("rooms", {}).get("join", {}).get(self.room_id)
            if not room:
                continue
            timeline = room.get("timeline", {})
            self.limited += bool(timeline.get("limited"))
            for event in timeline.get("events", []):
                body = event.get("content", {}).get("body")
                if event.get("type") == "m.room.message" and isinstance(body, str):
                    self.arrivals.setdefault(body, received)
            async with self._changed:
                self._changed.notify_all()

    async def wait_for(self, keys: Collection[str], deadline: float,
                       idle_s: float | None = None) -> int:
        """Wait until every body in ``keys`` has arrived, or ``deadline`` (``perf_counter``)
        passes, or (with ``idle_s``) nothing new arrived for that long; the number missing."""
        wanted = set(keys)
        last_count, last_change = -1, time.perf_counter()
        while True:
            missing = sum(key not in self.arrivals for key in wanted)
            now = time.perf_counter()
            if missing != last_count:
                last_count, last_change = missing, now
            if (missing == 0 or now >= deadline
                    or (idle_s is not None and now - last_change >= idle_s)):
                return missing
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(),
                                           min(1.0, max(0.01, deadline - now)))
