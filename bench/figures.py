"""What each reported figure is (label, unit, which way is better) and how runs are combined:
the median over runs, with the smallest and largest run beside it."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bench.stats import spread

IMPLEMENTATIONS = ("rocketnode", "synapse")
NAMES = {"rocketnode": "RocketNode", "synapse": "Synapse"}
PAIR_WORKLOADS = ("paced", "fanout", "burst", "local", "sustained")  # run order


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    unit: str
    better: str
    """"lower", "higher", or "" when a ratio means nothing (counts of missing messages)."""


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float
    runs: int


def _latency(prefix: str, what: str, points: Iterable[str] = ("p50", "p95", "p99", "max")
             ) -> list[Figure]:
    return [Figure(f"{prefix}_{p}_ms", f"{what}: {p}", "ms", "lower") for p in points]


def _paced(params: dict[str, Any]) -> list[Figure]:
    rows: list[Figure] = []
    for rate in params.get("paced_rates", []):
        rows += _latency(f"paced_{rate}", f"{rate} msg/s")
        rows.append(Figure(f"paced_{rate}_missing", f"{rate} msg/s: missing", "count", ""))
    return rows


def _burst(params: dict[str, Any]) -> list[Figure]:
    rows: list[Figure] = []
    for in_flight in params.get("burst_in_flight", []):
        for size in params.get("burst_sizes", []):
            name, what = f"burst_{size}x{in_flight}", f"{size} msgs, {in_flight} in flight"
            rows += [
                Figure(f"{name}_msg_s", f"{what}: first send → last arrival", "msg/s",
                       "higher"),
                Figure(f"{name}_send_msg_s", f"{what}: sends answered", "msg/s", "higher"),
                Figure(f"{name}_missing", f"{what}: never in B's /sync", "count", ""),
            ]
    return rows


def _fanout(params: dict[str, Any]) -> list[Figure]:
    receivers = params.get("fanout_receivers", "?")
    return [*_latency("fanout", "per delivery"),
            *_latency("fanout_all", f"until all {receivers} have it", ("p50", "p95")),
            Figure("fanout_missing", "deliveries missing", "count", "")]


def _local(params: dict[str, Any]) -> list[Figure]:
    return [
        Figure("local_send_p50_ms", "PUT /send round trip: p50", "ms", "lower"),
        Figure("local_send_p99_ms", "PUT /send round trip: p99", "ms", "lower"),
        Figure("local_echo_p50_ms", "local echo in the sender's /sync: p50", "ms", "lower"),
        Figure("local_echo_p99_ms", "local echo in the sender's /sync: p99", "ms", "lower"),
        Figure("local_1_msg_s", "messages/s, 1 request in flight", "msg/s", "higher"),
        Figure("local_16_msg_s", "messages/s, 16 requests in flight", "msg/s", "higher"),
        Figure("local_missing", "echoes missing", "count", ""),
    ]


def _sustained(params: dict[str, Any]) -> list[Figure]:
    return [Figure("sustained_msg_s", "highest offered rate with p95 ≤ 1 s", "msg/s",
                   "higher")]


def _five(params: dict[str, Any]) -> list[Figure]:
    return [*_latency("five_all", "until all four others have it", ("p50", "p95", "max")),
            *_latency("five", "per delivery", ("p50", "p95")),
            Figure("five_missing", "deliveries missing", "count", "")]


def _join(params: dict[str, Any]) -> list[Figure]:
    return [
        Figure("join_s", "POST /join returns", "s", "lower"),
        Figure("first_message_s", "joiner's first message seen on A", "s", "lower"),
        Figure("members_s", "B lists every member (GET /joined_members)", "s", "lower"),
        Figure("joining_cpu_s", "CPU of the joining server", "s", "lower"),
        Figure("resident_cpu_s", "CPU of the room's server A", "s", "lower"),
        Figure("joining_peak_rss_mib", "peak RSS of the joining server", "MiB", "lower"),
    ]


ROWS = {"paced": _paced, "sustained": _sustained, "burst": _burst, "fanout": _fanout,
        "local": _local, "five": _five}


def figures_for(workload: str, data: dict[str, Any]) -> list[Figure]:
    params = first_params(data)
    if workload.startswith("join_"):
        return _join(params)
    rows = ROWS.get(workload)
    return [f for f in rows(params) if "_cpu_" not in f.key] if rows else []


def first_params(data: dict[str, Any]) -> dict[str, Any]:
    for kind in IMPLEMENTATIONS:
        entry = data.get("by_implementation", {}).get(kind)
        if entry:
            return dict(entry.get("params", {}))
    return {}


def good_runs(data: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    entry = data.get("by_implementation", {}).get(kind) or {}
    return [run for run in entry.get("runs", []) if "error" not in run]


def failed_runs(data: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    entry = data.get("by_implementation", {}).get(kind) or {}
    return [run for run in entry.get("runs", []) if "error" in run]


def _spread(values: Iterable[float | None]) -> Spread | None:
    listed = [v for v in values if v is not None]
    found = spread(listed)
    if found is None:
        return None
    return Spread(*found, runs=sum(math.isfinite(v) for v in listed))


def summarize(data: dict[str, Any], kind: str, key: str) -> Spread | None:
    return _spread(run.get("metrics", {}).get(key) for run in good_runs(data, kind))


def summarize_values(values: Iterable[float | None]) -> Spread | None:
    return _spread(values)


def advantage(ours: Spread | None, theirs: Spread | None, better: str) -> float | None:
    """How many times better RocketNode's median is (Synapse ÷ RocketNode for lower-is-better,
    RocketNode ÷ Synapse for higher-is-better); None when it means nothing."""
    if ours is None or theirs is None or not better:
        return None
    numerator, denominator = ((theirs.median, ours.median) if better == "lower"
                              else (ours.median, theirs.median))
    if denominator <= 0 or numerator <= 0:
        return None
    return numerator / denominator


def number(value: float, unit: str = "") -> str:
    if not math.isfinite(value):
        return "—"
    if unit == "count":
        return f"{value:,.0f}"
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if size >= 0.01 or size == 0 else f"{value:.3f}"


def cell(found: Spread | None, unit: str) -> str:
    if found is None:
        return "—"
    if found.runs <= 1 or found.low == found.high:
        return number(found.median, unit)
    return f"{number(found.median, unit)} ({number(found.low, unit)}–{number(found.high, unit)})"


def times(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f}×" if value >= 10 else f"{value:.1f}×"
