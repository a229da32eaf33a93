"""A RocketNode as a separate process (``python -m rocketnode.cli serve``), for tests that
kill it (-9) and for benchmarks. Its ``config.toml`` is written from a :class:`Config` the same
way an operator would write it; its output goes to ``<data dir>/rocketnode.log``."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys

from rocketnode.app import Node
from rocketnode.config import Config
from tests.support import processes

START_TIMEOUT_S = 30.0
NODE_DEADLINE_S = 30.0
STOP_GRACE_S = 15.0


def config_toml(config: Config) -> str:
    """The ``config.toml`` of a test node (loopback, no TLS verification, fast retries, no
    rate limits, open registration)."""
    def text(value: object) -> str:
        return json.dumps(value)  # a JSON string or list of strings is valid TOML

    return "\n".join([
        f"server_name = {text(config.server_name)}",
        f"client_listen = {text(str(config.client_listen))}",
        f"federation_listen = {text(str(config.federation_listen))}",
        f"open_registration = {str(config.open_registration).lower()}",
        f"log_level = {text(config.log_level)}",
        "[federation]",
        f"verify_tls = {str(config.federation_verify_tls).lower()}",
        f"loopback_only = {str(config.federation_loopback_only).lower()}",
        f"domain_whitelist = {text(list(config.federation_domain_whitelist))}",
        f"retry_initial_ms = {config.federation_retry_initial_ms}",
        f"retry_max_ms = {config.federation_retry_max_ms}",
        "[rate_limits]",
        f"enabled = {str(config.rate_limits_enabled).lower()}",
        "",
    ])


class RocketNodeProcess:
    """``rocketnode serve`` in its own process group, stopped or killed through its own PID."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def server_name(self) -> str:
        return self.config.server_name

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.config.client_listen.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def user_id(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"

    async def start(self) -> None:
        data_dir = self.config.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "config.toml").write_text(config_toml(self.config), encoding="utf-8")
        with (data_dir / "rocketnode.log").open("ab") as output:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "rocketnode.cli", "serve", "--data-dir", str(data_dir)],
                stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        try:
            await self._wait_until_up()
        except BaseException:
            self.kill()
            raise

    def _running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    async def _wait_until_up(self) -> None:
        try:
            await processes.wait_for_versions(self.client_url, self._running, START_TIMEOUT_S)
        except processes.ServerDidNotStart as exc:
            raise RuntimeError(f"rocketnode: {exc}:\n{self.log_tail()}") from exc

    def stop(self) -> None:
        """SIGTERM (a graceful stop), SIGKILL if it has not exited after a grace period."""
        process, self._process = self._process, None
        processes.terminate(process, STOP_GRACE_S)

    def kill(self) -> None:
        """SIGKILL: the process dies at once, mid-write or mid-request."""
        process, self._process = self._process, None
        processes.kill(process, STOP_GRACE_S)

    def log_tail(self, size: int = 6000) -> str:
        path = self.config.data_dir / "rocketnode.log"
        if not path.exists():
            return ""
        return path.read_bytes()[-size:].decode("utf-8", "replace")


@dataclasses.dataclass
class NodeHandle:
    """An in-process RocketNode that can be stopped and started again on the same data
    directory and ports."""

    name: str
    config: Config
    running: Node | None = None

    @property
    def server_name(self) -> str:
        return self.config.server_name

    @property
    def node(self) -> Node:
        assert self.running is not None, f"{self.name} is stopped"
        return self.running

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.config.client_listen.port}"

    def user_id(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"

    async def start(self) -> Node:
        assert self.running is None, f"{self.name} is already running"
        node = Node(self.config)
        await asyncio.wait_for(node.start(), NODE_DEADLINE_S)
        self.running = node
        return node

    async def stop(self) -> None:
        if self.running is not None:
            node, self.running = self.running, None
            await asyncio.wait_for(node.stop(), NODE_DEADLINE_S)
