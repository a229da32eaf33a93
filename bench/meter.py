"""What each phase of a benchmark costs the servers: CPU seconds (utime + stime deltas from
``/proc/<pid>/stat``), RSS after the phase and peak RSS so far (``/proc/<pid>/status``); and
how much CPU everything else on the machine took meanwhile (:class:`Background`)."""

from __future__ import annotations

import contextlib
import resource
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.servers import CLOCK_TICKS, Server, sample


@dataclass
class PhaseRecord:
    messages: int = 0
    """Messages the phase sent (set by the workload), for CPU per 1,000 messages."""
    seconds: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)
    rss_mib: dict[str, float] = field(default_factory=dict)
    peak_rss_mib: dict[str, float] = field(default_factory=dict)

    def cpu_per_1000(self, label: str) -> float:
        if not self.messages or label not in self.cpu_s:
            return float("nan")
        return self.cpu_s[label] / self.messages * 1000

    def as_json(self) -> dict[str, Any]:
        return {"messages": self.messages, "seconds": self.seconds, "cpu_s": self.cpu_s,
                "rss_mib": self.rss_mib, "peak_rss_mib": self.peak_rss_mib}


class Meter:
    """``with meter.phase("burst 1000x1") as record: ...; record.messages = 1000``."""

    def __init__(self, servers: Sequence[Server]) -> None:
        self.servers = list(servers)
        self.phases: dict[str, PhaseRecord] = {}

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[PhaseRecord]:
        record = PhaseRecord()
        before = {s.label: sample(s).cpu_s for s in self.servers}
        started = time.perf_counter()
        yield record
        record.seconds = time.perf_counter() - started
        for server in self.servers:
            now = sample(server)
            record.cpu_s[server.label] = now.cpu_s - before[server.label]
            record.rss_mib[server.label] = now.rss_mib
            record.peak_rss_mib[server.label] = now.peak_rss_mib
        self.phases[name] = record

    def as_json(self) -> dict[str, Any]:
        return {name: record.as_json() for name, record in self.phases.items()}


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (all CPUs; /proc/stat, idle and iowait
    left out)."""
    with open("/proc/stat", encoding="ascii") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def own_cpu_s() -> float:
    """CPU seconds of this process (the benchmark client)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Background:
    """CPU used by everything else on the machine while a run measured (neither the servers
    under test nor the client): if it is large, the run was disturbed."""

    servers: Sequence[Server]
    start: tuple[float, float, float] = (0.0, 0.0, 0.0)
    started_at: float = 0.0

    def _now(self) -> tuple[float, float, float]:
        return (machine_busy_s(), sum(sample(s).cpu_s for s in self.servers if s.pid),
                own_cpu_s())

    def begin(self) -> None:
        self.start, self.started_at = self._now(), time.monotonic()

    def end(self) -> dict[str, float]:
        busy, servers, client = (b - a for a, b in zip(self.start, self._now(), strict=True))
        return {"wall_s": time.monotonic() - self.started_at, "servers_cpu_s": servers,
                "client_cpu_s": client, "other_cpu_s": max(0.0, busy - servers - client)}
