"""The servers under test, each in its own process on 127.0.0.1, and what they cost.

- :class:`RocketNodeProcess`: ``python -m rocketnode.cli serve --data-dir D`` with a generated
  ``config.toml`` (loopback only, self-signed TLS accepted, open registration, no rate limits,
  short federation retry intervals);
- :class:`SynapseProcess`: a Synapse from ``tests/support/synapse.py`` (the interop tests'
  runner: rate limits raised, loopback federation), plus ``bcrypt_rounds: 4`` because the
  benchmark registers thousands of users and never times a registration;
- :func:`cluster`: N servers of one implementation, every one allowed to federate with the
  others (and with names reserved for servers started later).

Costs come from ``/proc/<pid>``: ``stat`` (utime + stime, all threads) and ``status`` (VmRSS,
VmHWM). Startup time is process start until ``GET /_matrix/client/versions`` answers 200,
polled every :data:`POLL_S` for both implementations. Each process is stopped through its own
PID: SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tests.support import processes
from tests.support.synapse import Synapse, SynapseConfig, free_port

from rocketnode.config import parse_config

IMPLEMENTATIONS = ("rocketnode", "synapse")
LABELS = "ABCDEFGH"
POLL_S = 0.02
START_TIMEOUT_S = 60.0
STOP_GRACE_S = 15.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


@dataclass(frozen=True, slots=True)
class ProcessSample:
    """CPU seconds used so far, resident and peak resident memory (MiB) of one process."""

    cpu_s: float
    rss_mib: float
    peak_rss_mib: float


def sample_process(pid: int) -> ProcessSample:
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    # after "pid (comm)": state is field 3, utime field 14, stime field 15 (1-based)
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    status: dict[str, str] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            status[key] = value.strip()
    return ProcessSample(cpu, _kib(status.get("VmRSS", "0 kB")) / 1024,
                         _kib(status.get("VmHWM", "0 kB")) / 1024)


def _kib(value: str) -> int:
    return int(value.split()[0])


class Server(Protocol):
    kind: str
    label: str
    startup_s: float

    @property
    def server_name(self) -> str: ...

    @property
    def client_url(self) -> str: ...

    @property
    def pid(self) -> int | None: ...

    @property
    def log_path(self) -> Path: ...

    @property
    def data_dir(self) -> Path: ...

    async def start(self) -> float: ...

    async def stop(self) -> None: ...


def sample(server: Server) -> ProcessSample:
    if server.pid is None:
        raise RuntimeError(f"{server.kind} {server.label} is not running")
    return sample_process(server.pid)


class RocketNodeProcess:
    """One RocketNode in its own process."""

    kind = "rocketnode"

    def __init__(self, data_dir: Path, label: str, federation_port: int, client_port: int,
                 synchronous: str = "NORMAL") -> None:
        self.label = label
        self._data_dir = data_dir
        self.federation_port = federation_port
        self.client_port = client_port
        self.synchronous = synchronous
        self.startup_s = float("nan")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def server_name(self) -> str:
        return f"127.0.0.1:{self.federation_port}"

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "stdout.log"

    @property
    def data_dir(self) -> Path:
        return self._data_dir

    def config_toml(self) -> str:
        return "\n".join([
            f'server_name = "{self.server_name}"',
            f'client_listen = "127.0.0.1:{self.client_port}"',
            f'federation_listen = "127.0.0.1:{self.federation_port}"',
            "open_registration = true",
            'log_level = "INFO"',
            "[database]",
            f'synchronous = "{self.synchronous}"',
            "[federation]",
            "verify_tls = false",
            "loopback_only = true",
            "retry_initial_ms = 200",
            "retry_max_ms = 2000",
            "[rate_limits]",
            "enabled = false",
            "",
        ])

    async def start(self) -> float:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        text = self.config_toml()
        parse_config(text, self.data_dir)  # refuse a key RocketNode does not know, now
        (self.data_dir / "config.toml").write_text(text, encoding="utf-8")
        started = time.perf_counter()
        with self.log_path.open("ab") as output:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "rocketnode.cli", "serve", "--data-dir",
                 str(self.data_dir)],
                stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        process = self._process
        try:
            await processes.wait_for_versions(self.client_url, lambda: process.poll() is None,
                                              START_TIMEOUT_S, POLL_S)
        except BaseException:
            self._kill()
            raise
        self.startup_s = time.perf_counter() - started
        return self.startup_s

    async def stop(self) -> None:
        process, self._process = self._process, None
        await asyncio.to_thread(processes.terminate, process, STOP_GRACE_S)

    def _kill(self) -> None:
        process, self._process = self._process, None
        processes.kill(process, STOP_GRACE_S)


class SynapseProcess:
    """One Synapse, run by ``tests.support.synapse.Synapse``."""

    kind = "synapse"

    def __init__(self, data_dir: Path, label: str, federation_port: int, client_port: int,
                 federation_whitelist: Sequence[str]) -> None:
        self.label = label
        self.startup_s = float("nan")
        self._synapse = Synapse(SynapseConfig(
            data_dir, federation_port=federation_port, client_port=client_port,
            federation_whitelist=tuple(federation_whitelist),
            extra={"bcrypt_rounds": 4}))
        self._synapse.poll_interval_s = POLL_S

    @property
    def server_name(self) -> str:
        return self._synapse.server_name

    @property
    def client_url(self) -> str:
        return self._synapse.client_url

    @property
    def pid(self) -> int | None:
        return self._synapse.pid

    @property
    def log_path(self) -> Path:
        return self._synapse.log_path

    @property
    def data_dir(self) -> Path:
        return self._synapse.config.data_dir

    async def start(self) -> float:
        await asyncio.to_thread(self._synapse.configure)  # keys and certificate: not timed
        started = time.perf_counter()
        await self._synapse.start()
        self.startup_s = time.perf_counter() - started
        return self.startup_s

    async def stop(self) -> None:
        await asyncio.to_thread(self._synapse.stop)


def make_server(kind: str, data_dir: Path, label: str, ports: tuple[int, int],
                everyone: Sequence[str], synchronous: str = "NORMAL") -> Server:
    """``synchronous``: RocketNode's ``[database] synchronous`` (Synapse has no such setting:
    on SQLite it keeps SQLite's default, FULL)."""
    federation_port, client_port = ports
    if kind == "rocketnode":
        return RocketNodeProcess(data_dir, label, federation_port, client_port, synchronous)
    if kind == "synapse":
        return SynapseProcess(data_dir, label, federation_port, client_port, everyone)
    raise ValueError(f"unknown implementation {kind!r}")


def reserve_ports(count: int) -> list[tuple[int, int]]:
    """(federation, client) port pairs on 127.0.0.1, distinct from each other."""
    taken: set[int] = set()
    pairs: list[tuple[int, int]] = []
    while len(pairs) < count:
        pair = (free_port(), free_port())
        if pair[0] != pair[1] and not taken & set(pair):
            taken.update(pair)
            pairs.append(pair)
    return pairs


@dataclass
class Cluster:
    """Servers of one implementation sharing a temporary directory."""

    kind: str
    root: Path
    servers: list[Server]
    reserved: list[tuple[int, int]]
    """Ports of servers that may be added later (their names are already whitelisted)."""
    synchronous: str = "NORMAL"

    def __getitem__(self, index: int) -> Server:
        return self.servers[index]

    async def add(self, label: str, scratch: Path | None = None) -> Server:
        """Start one of the reserved servers with a fresh data directory; with ``scratch``
        (a directory on tmpfs), that directory is a symlink to it until :meth:`move_to_disk`."""
        ports = self.reserved.pop(0)
        data_dir = self.root / f"{label}-{ports[0]}"
        if scratch is not None:
            scratch.mkdir(parents=True)
            data_dir.symlink_to(scratch, target_is_directory=True)
        server = make_server(self.kind, data_dir, label, ports, _names(self.all_ports()),
                             self.synchronous)
        await server.start()
        self.servers.append(server)
        return server

    async def move_to_disk(self, server: Server) -> float:
        """Stop ``server``, move its data from tmpfs to disk at the same path, start it again
        (configuration and paths unchanged); its startup time."""
        link = server.data_dir
        scratch = link.resolve()
        await server.stop()
        staging = self.root / f".{link.name}.moving"
        await asyncio.to_thread(shutil.copytree, scratch, staging, symlinks=True)
        link.unlink()
        staging.rename(link)
        await asyncio.to_thread(shutil.rmtree, scratch, True)
        return await server.start()

    async def remove(self, server: Server) -> None:
        await server.stop()
        self.servers.remove(server)

    def all_ports(self) -> list[tuple[int, int]]:
        ports = [(_port(s.server_name), 0) for s in self.servers]
        return ports + self.reserved


def _port(server_name: str) -> int:
    return int(server_name.rsplit(":", 1)[1])


def _names(ports: Sequence[tuple[int, int]]) -> list[str]:
    return [f"127.0.0.1:{federation}" for federation, _ in ports]


@contextlib.asynccontextmanager
async def cluster(kind: str, count: int, spare: int = 0,
                  synchronous: str = "NORMAL") -> AsyncIterator[Cluster]:
    """Start ``count`` servers of ``kind`` one after the other (so that each startup time is
    measured on a quiet machine); stop them all and delete their data at the end."""
    root = Path(tempfile.mkdtemp(prefix=f"rocketnode-bench-{kind}-"))
    ports = reserve_ports(count + spare)
    everyone = _names(ports)
    started = Cluster(kind, root, [], ports[count:], synchronous)
    try:
        for index, pair in enumerate(ports[:count]):
            server = make_server(kind, root / LABELS[index], LABELS[index], pair, everyone,
                                 synchronous)
            await server.start()
            started.servers.append(server)
        yield started
    finally:
        for server in reversed(started.servers):
            with contextlib.suppress(Exception):
                await server.stop()
        for link in root.iterdir():
            if link.is_symlink():  # data still on tmpfs
                shutil.rmtree(link.resolve(), ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
