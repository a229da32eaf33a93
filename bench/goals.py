"""The goals of the benchmark issue, evaluated on the medians (reported, never asserted)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bench.figures import (
    Spread,
    advantage,
    cell,
    failed_runs,
    first_params,
    good_runs,
    number,
    summarize,
    summarize_values,
    times,
)
from bench.resources import Resource

MISSING_WORKLOADS = ("paced", "burst", "fanout", "local", "five")


@dataclass(frozen=True)
class GoalRow:
    goal: str
    rocketnode: str
    synapse: str
    measured: str
    status: str


def _status(ok: bool | None) -> str:
    return "not measured" if ok is None else ("met" if ok else "**not met**")


def _ratio_goal(goal: str, data: dict[str, Any] | None, key: str, unit: str, better: str,
                target: float) -> GoalRow:
    if not data:
        return GoalRow(goal, "—", "—", "—", _status(None))
    ours, theirs = summarize(data, "rocketnode", key), summarize(data, "synapse", key)
    found = advantage(ours, theirs, better)
    ok = None if found is None else found >= target
    return GoalRow(goal, cell(ours, unit), cell(theirs, unit),
                   f"{times(found)} (goal ≥ {target:g}×)", _status(ok))


def _resource_goal(goal: str, row: Resource | None, target: float) -> GoalRow:
    if row is None:
        return GoalRow(goal, "—", "—", "—", _status(None))
    ours, theirs = (summarize_values(row.values["rocketnode"]),
                    summarize_values(row.values["synapse"]))
    found = advantage(ours, theirs, "lower")
    ok = None if found is None else found >= target
    return GoalRow(goal, cell(ours, row.unit), cell(theirs, row.unit),
                   f"{times(found)} (goal ≥ {target:g}×)", _status(ok))


def _missing(raw: dict[str, dict[str, Any]], kind: str) -> tuple[int, int] | None:
    """(messages missing over every run of every workload that counts them, runs looked at)."""
    total, runs = 0, 0
    for workload in MISSING_WORKLOADS:
        for run in good_runs(raw.get(workload, {}), kind):
            runs += 1
            total += int(sum(v for k, v in run.get("metrics", {}).items()
                             if k.endswith("_missing") and v))
    return (total, runs) if runs else None


def _missing_goal(raw: dict[str, dict[str, Any]]) -> GoalRow:
    ours, theirs = _missing(raw, "rocketnode"), _missing(raw, "synapse")
    text = {kind: "—" if found is None else f"{found[0]:,} (in {found[1]} workload runs)"
            for kind, found in (("rocketnode", ours), ("synapse", theirs))}
    ok = None if ours is None else ours[0] == 0
    return GoalRow("0 messages missing (paced, bursts, fan-out, one server, five servers)",
                   text["rocketnode"], text["synapse"], "RocketNode total", _status(ok))


def _fanout_goal(data: dict[str, Any] | None) -> GoalRow:
    goal = "Fan-out p50 ≤ 50 ms"
    if not data:
        return GoalRow(goal, "—", "—", "—", _status(None))
    ours: Spread | None = summarize(data, "rocketnode", "fanout_p50_ms")
    theirs = summarize(data, "synapse", "fanout_p50_ms")
    ok = None if ours is None else ours.median <= 50
    return GoalRow(goal, cell(ours, "ms"), cell(theirs, "ms"), "RocketNode ≤ 50 ms",
                   _status(ok))


def _sustained_goal(data: dict[str, Any] | None) -> GoalRow:
    """A rate of 0 means even the lowest step failed: the rate is below that step."""
    row = _ratio_goal("Sustained rate ≥ 30× Synapse's", data, "sustained_msg_s", "msg/s",
                      "higher", 30)
    if not data:
        return row
    rates = first_params(data).get("sustained_rates", [0])
    ours = summarize(data, "rocketnode", "sustained_msg_s")
    theirs = summarize(data, "synapse", "sustained_msg_s")
    rocketnode, synapse, measured, status = row.rocketnode, row.synapse, row.measured, row.status
    if any(run.get("metrics", {}).get("sustained_capped")
           for run in good_runs(data, "rocketnode")):
        rocketnode = f"{rocketnode} (reached the cap, {number(max(rates))})"
    if ours is not None and theirs is not None and theirs.median == 0:
        synapse = f"< {min(rates)}"
        at_least = ours.median / min(rates)
        measured = f"> {times(at_least)} (goal ≥ 30×)"
        status = _status(True) if at_least >= 30 else "undetermined"
    return GoalRow(row.goal, rocketnode, synapse, measured, status)


def goal_rows(raw: dict[str, dict[str, Any]],
              resources: dict[str, Resource]) -> Iterator[GoalRow]:
    paced = raw.get("paced")
    for rate in first_params(paced or {}).get("paced_rates", [4, 10, 30]):
        yield _ratio_goal(f"Latency A → B p50 at {rate} msg/s ≤ 1/10 of Synapse's", paced,
                          f"paced_{rate}_p50_ms", "ms", "lower", 10)
    yield _sustained_goal(raw.get("sustained"))
    burst = raw.get("burst")
    params = first_params(burst or {})
    for in_flight in params.get("burst_in_flight", [1, 16]):
        for size in params.get("burst_sizes", [200, 1000]):
            yield _ratio_goal(f"Burst of {size}, {in_flight} in flight: throughput ≥ 15×",
                              burst, f"burst_{size}x{in_flight}_msg_s", "msg/s", "higher", 15)
    yield _missing_goal(raw)
    yield _fanout_goal(raw.get("fanout"))
    yield _resource_goal("Idle RSS ≤ 1/3 of Synapse's", resources.get("idle_rss_mib"), 3)
    largest = max(params.get("burst_sizes", [1000]))
    for key, what in (("paced_cpu_sender_s_per_1000", "paced, sending server"),
                      ("paced_cpu_receiver_s_per_1000", "paced, receiving server"),
                      (f"burst_{largest}x1_cpu_sender_s_per_1000",
                       f"burst of {largest}, sending server"),
                      (f"burst_{largest}x1_cpu_receiver_s_per_1000",
                       f"burst of {largest}, receiving server")):
        yield _resource_goal(f"CPU per message ≤ 1/10 of Synapse's ({what})",
                             resources.get(key), 10)
    for what, key in (("POST /join returns", "join_s"),
                      ("first message seen", "first_message_s")):
        yield _ratio_goal(f"Join of a 10,000-member room ≤ 1/10 of Synapse's time ({what})",
                          raw.get("join_10000"), key, "s", "lower", 10)


def failures(raw: dict[str, dict[str, Any]]) -> Iterator[str]:
    """A line for each failed run, with its error."""
    for workload, data in raw.items():
        for kind in ("rocketnode", "synapse"):
            for run in failed_runs(data, kind):
                yield (f"{workload}, {kind} run {int(run.get('run', 0)) + 1}: "
                       f"{run.get('error')}")
