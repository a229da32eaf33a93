"""Homeserver processes that tests and benchmarks start (RocketNode, Synapse): waiting until
one answers, stopping it gracefully, killing it."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import time
from collections.abc import Callable

import aiohttp


class ServerDidNotStart(RuntimeError):
    """The process exited, or its client API did not answer in time."""


async def wait_for_versions(client_url: str, alive: Callable[[], bool], timeout_s: float,
                            interval_s: float = 0.05) -> None:
    """Poll ``GET /_matrix/client/versions`` every ``interval_s`` until it answers 200."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while time.monotonic() < deadline:
            if not alive():
                raise ServerDidNotStart(f"the server at {client_url} exited while starting")
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with session.get(f"{client_url}/_matrix/client/versions") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(interval_s)
    raise ServerDidNotStart(f"the server at {client_url} did not answer in {timeout_s:.0f} s")


def terminate(process: subprocess.Popen[bytes] | None, grace_s: float) -> None:
    """SIGTERM (a graceful stop); SIGKILL if it has not exited after ``grace_s``."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(grace_s)


def kill(process: subprocess.Popen[bytes] | None, grace_s: float) -> None:
    """SIGKILL: the process dies at once, mid-write or mid-request."""
    if process is not None and process.poll() is None:
        process.kill()
        process.wait(grace_s)
