"""A sender killed with SIGKILL in the middle of a stream of messages: after it restarts on the
same data directory, every message whose send was acknowledged reaches the other server exactly
once and in order (the outbound queue is written with the event, in one transaction).

The sending node runs as a real ``rocketnode serve`` process so that it can be killed; the
receiving node runs in the test's process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import nio
import pytest

from tests.integration.federation.cluster import Cluster
from tests.nodes import ClientFactory
from tests.support.matrix import bodies, eventually, join, wait_for_membership
from tests.support.synapse import free_port

pytestmark = pytest.mark.slow
MESSAGES = 2000
KILL_AFTER = 900
START_TIMEOUT_S = 30.0


class ServeProcess:
    """``python -m rocketnode.cli serve`` on fixed ports, started and killed by PID."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.federation_port, self.client_port = free_port(), free_port()
        self.server_name = f"127.0.0.1:{self.federation_port}"
        self.client_url = f"http://127.0.0.1:{self.client_port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        data_dir.mkdir(parents=True)
        (data_dir / "config.toml").write_text(f"""\
server_name = "{self.server_name}"
client_listen = "127.0.0.1:{self.client_port}"
federation_listen = "127.0.0.1:{self.federation_port}"
open_registration = true

[federation]
verify_tls = false
loopback_only = true
retry_initial_ms = 200
retry_max_ms = 2000

[rate_limits]
enabled = false
""", encoding="utf-8")

    async def start(self) -> None:
        assert self.process is None
        self.starts += 1
        log = (self.data_dir / f"serve-{self.starts}.log").open("wb")
        with log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "rocketnode.cli", "serve", "--data-dir",
                 str(self.data_dir), "--server-name", self.server_name,
                 "--client-listen", f"127.0.0.1:{self.client_port}",
                 "--federation-listen", f"127.0.0.1:{self.federation_port}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        async with aiohttp.ClientSession() as session:
            while True:
                assert self.process.poll() is None, self.log_tail()
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{self.client_url}/_matrix/client/versions") as r:
                        if r.status == 200:
                            return
                assert time.monotonic() < deadline, "the node did not start\n" + self.log_tail()
                await asyncio.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL this process (by its own PID) and reap it."""
        if self.process is None:
            return
        process, self.process = self.process, None
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def log_tail(self) -> str:
        log = self.data_dir / f"serve-{self.starts}.log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else ""


@contextlib.asynccontextmanager
async def serve_process(data_dir: Path) -> AsyncIterator[ServeProcess]:
    node = ServeProcess(data_dir)
    try:
        await node.start()
        yield node
    finally:
        node.kill()


class Stream:
    """Sends numbered messages one after the other, retrying each (same transaction ID) until
    the server acknowledges it, and records which sends got a 200."""

    def __init__(self, base_url: str, token: str, room_id: str) -> None:
        self._url = f"{base_url}/_matrix/client/v3/rooms/{quote(room_id, safe='')}/send/" \
                    "m.room.message/"
        self._headers = {"Authorization": f"Bearer {token}"}
        self.acked: list[int] = []
        self.failed_attempts = 0

    async def run(self, count: int) -> None:
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout, headers=self._headers) as session:
            for i in range(count):
                await self._send(session, i)

    async def _send(self, session: aiohttp.ClientSession, i: int) -> None:
        body: dict[str, Any] = {"msgtype": "m.text", "body": f"crash {i:05d}"}
        deadline = time.monotonic() + 60
        while True:
            try:
                async with session.put(f"{self._url}txn{i}", json=body) as response:
                    if response.status == 200:
                        self.acked.append(i)
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            self.failed_attempts += 1
            assert time.monotonic() < deadline, f"message {i} never acknowledged"
            await asyncio.sleep(0.05)


async def test_sender_killed_mid_stream_loses_and_duplicates_nothing(
        tmp_path: Path, cluster: Cluster, make_client: ClientFactory) -> None:
    b = await cluster.start("b")
    bob = await make_client(b.node, "bob")
    async with serve_process(tmp_path / "a") as a:
        alice = nio.AsyncClient(a.client_url, "alice")
        try:
            registered = await alice.register("alice", "secret-pw")
            assert isinstance(registered, nio.RegisterResponse), registered
            created = await alice.room_create(preset=nio.RoomPreset.public_chat)
            assert isinstance(created, nio.RoomCreateResponse), created
            room_id = created.room_id
            await join(bob, room_id, via=[a.server_name])
            await wait_for_membership(alice, room_id, bob.user_id, "join")

            stream = Stream(a.client_url, alice.access_token, room_id)
            sending = asyncio.create_task(stream.run(MESSAGES))
            try:
                await eventually(_at_least(stream, KILL_AFTER), timeout=120, interval=0.01,
                                 what=f"{KILL_AFTER} acknowledged sends")
                a.kill()
                killed_at = len(stream.acked)
                await a.start()
                await asyncio.wait_for(sending, timeout=180)
            finally:
                sending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sending
            assert stream.failed_attempts > 0  # the kill really hit the stream
            assert KILL_AFTER <= killed_at < MESSAGES
        finally:
            await alice.close()

        expected = [f"crash {i:05d}" for i in range(MESSAGES)]
        assert stream.acked == list(range(MESSAGES))

        async def all_arrived() -> list[str]:
            seen = [body for body in await bodies(bob, room_id, limit=MESSAGES + 100, page=500)
                    if body.startswith("crash ")]
            assert len(seen) >= MESSAGES, f"{len(seen)} of {MESSAGES}"
            return seen
        seen = await eventually(all_arrived, timeout=120, interval=0.5,
                                what=f"{MESSAGES} messages on b")
        duplicates = sorted({body for body in seen if seen.count(body) > 1})
        assert not duplicates, duplicates[:10]
        assert seen == expected


def _at_least(stream: Stream, count: int) -> Any:
    async def check() -> None:
        assert len(stream.acked) >= count
    return check
