"""Resource figures gathered from the runs of every workload: startup time, idle and peak RSS
(per server session of the two-server parts), RSS after each phase, CPU per 1,000 messages."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bench.figures import IMPLEMENTATIONS, NAMES, PAIR_WORKLOADS, good_runs

PHASE_NAMES = {"paced": "paced 4–30 msg/s", "fanout": "fan-out", "local": "one server",
               "sustained": "sustained-rate steps", "five": "five servers"}
ROLES = {"sender": "sending server", "receiver": "receiving server"}


@dataclass(frozen=True)
class Resource:
    key: str
    label: str
    unit: str
    values: dict[str, list[float]]
    """Per implementation: one value per run (or per server session)."""


def _sessions(raw: dict[str, dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The distinct server sessions of the two-server parts."""
    found: dict[str, dict[str, Any]] = {}
    for workload in PAIR_WORKLOADS:
        for run in good_runs(raw.get(workload, {}), kind):
            info = run.get("servers", {})
            found.setdefault(str(info.get("session")), info)
    return list(found.values())


def _per_session(raw: dict[str, dict[str, Any]], field: str, combine: Any
                 ) -> dict[str, list[float]]:
    values: dict[str, list[float]] = {}
    for kind in IMPLEMENTATIONS:
        values[kind] = [combine(info[field].values()) for info in _sessions(raw, kind)
                        if info.get(field)]
    return values


def phase_label(phase: str) -> str:
    if phase.startswith("burst_"):
        size, in_flight = phase.removeprefix("burst_").split("x")
        return f"burst of {size}, {in_flight} in flight"
    return PHASE_NAMES.get(phase, phase)


def _rss_after_phases(raw: dict[str, dict[str, Any]]) -> Iterator[Resource]:
    """RSS of the sending server A and the receiving server B after each two-server phase;
    of the largest server after the five-server phase."""
    rows: dict[tuple[str, str], dict[str, list[float]]] = {}
    for workload in (*PAIR_WORKLOADS, "five"):
        for kind in IMPLEMENTATIONS:
            for run in good_runs(raw.get(workload, {}), kind):
                for phase, record in run.get("phases", {}).items():
                    rss: dict[str, float] = record.get("rss_mib") or {}
                    if not rss:
                        continue
                    found = ({"A": rss["A"], "B": rss["B"]} if set(rss) == {"A", "B"}
                             else {"largest": max(rss.values())})
                    for server, value in found.items():
                        slot = rows.setdefault((phase, server),
                                               {k: [] for k in IMPLEMENTATIONS})
                        slot[kind].append(value)
    names = {"A": "sending server A", "B": "receiving server B", "largest": "largest server"}
    for (phase, server), values in rows.items():
        yield Resource(f"rss_after_{phase}_{server}",
                       f"RSS after the {phase_label(phase)} phase: {names[server]}", "MiB",
                       values)


def _cpu(raw: dict[str, dict[str, Any]]) -> Iterator[Resource]:
    keys: dict[str, None] = {}
    for workload in (*PAIR_WORKLOADS, "five"):
        for kind in IMPLEMENTATIONS:
            for run in good_runs(raw.get(workload, {}), kind):
                keys.update((k, None) for k in run.get("metrics", {}) if "_cpu_" in k)
    for key in keys:
        phase, _, rest = key.partition("_cpu_")
        role = next((label for name, label in ROLES.items() if rest.startswith(name)),
                    "the server")
        values = {kind: [run["metrics"][key] for workload in (*PAIR_WORKLOADS, "five")
                         for run in good_runs(raw.get(workload, {}), kind)
                         if run.get("metrics", {}).get(key) is not None]
                  for kind in IMPLEMENTATIONS}
        yield Resource(key, f"CPU s per 1,000 messages, {phase_label(phase)}: {role}",
                       "s", values)


def background_lines(raw: dict[str, dict[str, Any]]) -> list[str]:
    """How busy the rest of the machine was during the runs (see servers.Background)."""
    lines = []
    for kind in IMPLEMENTATIONS:
        sessions = [info["cpu"] for info in _sessions(raw, kind) if info.get("cpu")]
        for workload in ("five", *(name for name in raw if name.startswith("join_"))):
            sessions += [run["servers"]["cpu"] for run in good_runs(raw.get(workload, {}), kind)
                         if run.get("servers", {}).get("cpu")]
        sessions = [s for s in sessions if s.get("wall_s", 0) > 0]
        if not sessions:
            continue
        shares = [s["other_cpu_s"] / s["wall_s"] * 100 for s in sessions]
        client = [s["client_cpu_s"] / s["wall_s"] * 100 for s in sessions]
        lines.append(
            f"- While {NAMES[kind]} was measured ({len(sessions)} measured sessions: two-server "
            f"runs, five-server runs, timed joins), other processes on the machine used "
            f"{statistics.median(shares):.0f}% of one CPU (median; largest "
            f"{max(shares):.0f}%), the benchmark client {statistics.median(client):.0f}%.")
    return lines


def resources(raw: dict[str, dict[str, Any]]) -> list[Resource]:
    rows = [
        Resource("startup_s", "startup: process start → /versions answers (fresh data)", "s",
                 _per_session(raw, "startup_s", statistics.median)),
        Resource("idle_rss_mib", "RSS idle after startup", "MiB",
                 _per_session(raw, "idle_rss_mib", statistics.median)),
        Resource("peak_rss_mib", "peak RSS over a whole two-server run (largest server)",
                 "MiB", _per_session(raw, "peak_rss_mib", max)),
    ]
    return [*rows, *_rss_after_phases(raw), *_cpu(raw)]
