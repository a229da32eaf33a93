"""``rocketnode demo``: two federating nodes on loopback, a conversation between them, then both
left running for you to use.

Alice on the first node creates a room; Bob on the second joins it over federation; they
exchange a few messages, and the demo prints what each side received and how long each message
took to appear in the other side's /sync. The nodes keep running until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import signal
import socket
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from rocketnode.app import Node
from rocketnode.config import Config, Listen

DEMO_PORTS = ((18448, 18008), (28448, 28008))
MESSAGES = (
    ("alice", "Hello Bob, welcome to RocketNode!"),
    ("bob", "Hi Alice, greetings from the other server."),
    ("alice", "Messages are signed PDUs, federated over TLS."),
    ("bob", "And each arrives through a durable queue."),
)


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def demo_config(data_dir: Path, federation_port: int, client_port: int) -> Config:
    """A node config for the demo: loopback only, self-signed TLS accepted, open registration."""
    return dataclasses.replace(
        Config(),
        server_name=f"127.0.0.1:{federation_port}",
        data_dir=data_dir,
        client_listen=Listen("127.0.0.1", client_port),
        federation_listen=Listen("127.0.0.1", federation_port),
        open_registration=True,
        federation_verify_tls=False,
        federation_loopback_only=True,
        federation_retry_initial_ms=500,
        federation_retry_max_ms=5000,
    )


class DemoClient:
    """Just enough of the client-server API for the demo (register, rooms, send, sync)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self._session = session
        self._base = base_url + "/_matrix/client/v3"
        self.token = ""
        self.user_id = ""
        self.since: str | None = None

    async def _call(self, method: str, path: str, body: Any = None,
                    params: dict[str, str] | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with self._session.request(method, self._base + path, json=body, params=params,
                                         headers=headers) as response:
            answer: dict[str, Any] = await response.json()
            if response.status != 200:
                raise RuntimeError(f"{method} {path}: {response.status} {answer}")
            return answer

    async def register(self, username: str, password: str) -> None:
        body = {"username": username, "password": password, "auth": {"type": "m.login.dummy"}}
        answer = await self._call("POST", "/register", body)
        self.token, self.user_id = answer["access_token"], answer["user_id"]

    async def create_room(self, name: str, alias: str) -> str:
        body = {"name": name, "preset": "public_chat", "room_alias_name": alias}
        return str((await self._call("POST", "/createRoom", body))["room_id"])

    async def join(self, room: str) -> str:
        return str((await self._call("POST", f"/join/{quote(room, safe='')}", {}))["room_id"])

    async def send(self, room_id: str, body: str) -> str:
        txn = secrets.token_hex(8)
        path = f"/rooms/{quote(room_id, safe='')}/send/m.room.message/{txn}"
        answer = await self._call("PUT", path, {"msgtype": "m.text", "body": body})
        return str(answer["event_id"])

    async def messages_since(self, room_id: str, timeout_ms: int = 10_000) -> list[dict[str, Any]]:
        params = {"timeout": str(timeout_ms)}
        if self.since is not None:
            params["since"] = self.since
        answer = await self._call("GET", "/sync", params=params)
        self.since = answer["next_batch"]
        room = answer.get("rooms", {}).get("join", {}).get(room_id, {})
        return [e for e in room.get("timeline", {}).get("events", [])
                if e.get("type") == "m.room.message"]


async def _wait_for(client: DemoClient, room_id: str, event_id: str, deadline: float
                    ) -> dict[str, Any] | None:
    while time.monotonic() < deadline:
        for event in await client.messages_since(room_id, timeout_ms=5000):
            if event.get("event_id") == event_id:
                return event
    return None


@contextlib.asynccontextmanager
async def two_nodes(base: Path) -> AsyncIterator[tuple[Node, Node]]:
    nodes: list[Node] = []
    try:
        for index, (federation_port, client_port) in enumerate(DEMO_PORTS):
            if not (_port_free(federation_port) and _port_free(client_port)):
                federation_port, client_port = _free_port(), _free_port()
            node = Node(demo_config(base / f"node{index + 1}", federation_port, client_port))
            await node.start()
            nodes.append(node)
        yield nodes[0], nodes[1]
    finally:
        for node in reversed(nodes):
            await node.stop()


async def converse(first: Node, second: Node, out: Any = print) -> list[float]:
    """Alice (first) and Bob (second) talk; return each message's delivery time in ms."""
    timings: list[float] = []
    async with aiohttp.ClientSession() as session:
        alice, bob = DemoClient(session, first.client_url), DemoClient(session, second.client_url)
        password = secrets.token_urlsafe(9)
        await alice.register("alice", password)
        await bob.register("bob", password)
        room_id = await alice.create_room("RocketNode demo", "demo")
        alias = f"#demo:{first.config.server_name}"
        started = time.perf_counter()
        await bob.join(alias)
        out(f"bob joined {alias} over federation in "
            f"{(time.perf_counter() - started) * 1000:.0f} ms")
        for client in (alice, bob):
            await client.messages_since(room_id, timeout_ms=0)
        clients = {"alice": (alice, bob), "bob": (bob, alice)}
        for sender_name, text in MESSAGES:
            sender, receiver = clients[sender_name]
            started = time.perf_counter()
            event_id = await sender.send(room_id, text)
            event = await _wait_for(receiver, room_id, event_id, time.monotonic() + 30)
            elapsed = (time.perf_counter() - started) * 1000
            if event is None:
                raise RuntimeError(f"{receiver.user_id} never received {event_id}")
            timings.append(elapsed)
            out(f"{receiver.user_id} received from {event['sender']} in {elapsed:.1f} ms: "
                f"{event['content']['body']!r}")
        out(f"accounts: alice on {first.config.server_name}, bob on "
            f"{second.config.server_name}, password {password}")
    return timings


async def run_demo(keep_running: bool = True) -> None:
    with tempfile.TemporaryDirectory(prefix="rocketnode-demo-") as tmp:
        async with two_nodes(Path(tmp)) as (first, second):
            print(f"node 1: {first.config.server_name}  clients: {first.client_url}")
            print(f"node 2: {second.config.server_name}  clients: {second.client_url}")
            await converse(first, second)
            if not keep_running:
                return
            print(f"\nBoth nodes keep running. Web client: {first.client_url}/ and "
                  f"{second.client_url}/ ; any Matrix client works too. Ctrl-C to stop.")
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
            print("Stopping.")
