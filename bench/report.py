"""``python -m bench report [--quick]``: write ``bench/results/REPORT.md``, ``results.json``
(the summary, committed) and ``bench.png`` from the raw results in ``bench/results/raw/``
(every other part calls this when it finishes). ``--quick``: the same from the harness checks
in ``bench/results/quick/``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import measuring
from bench.figures import (
    IMPLEMENTATIONS,
    NAMES,
    Figure,
    advantage,
    cell,
    failed_runs,
    figures_for,
    good_runs,
    number,
    summarize,
    summarize_values,
    times,
)
from bench.goals import GoalRow, failures, goal_rows
from bench.resources import Resource, background_lines, resources
from bench.results import load_all, machine, now, output_dir
from bench.stats import spread

REPORT = "REPORT.md"
SUMMARY = "results.json"
PLOT = "bench.png"
SECTIONS = (
    ("paced", "Federated messages, paced: latency from send on A to B's /sync"),
    ("sustained", "Sustained rate A → B"),
    ("burst", "Bursts A → B"),
    ("fanout", "Fan-out: A to 20 users syncing on B"),
    ("local", "One server: send, local echo, messages/s"),
    ("five", "Five servers in one room: A to the four others"),
)
HEADER = "| Figure | RocketNode | Synapse | RocketNode better by |\n|---|---:|---:|---:|"


def _row(label: str, unit: str, ours: Any, theirs: Any, better: str) -> str:
    unit_text = f" ({unit})" if unit and unit != "count" else ""
    return (f"| {label}{unit_text} | {cell(ours, unit)} | {cell(theirs, unit)} | "
            f"{times(advantage(ours, theirs, better))} |")


def figure_rows(data: dict[str, Any], figures: list[Figure]) -> Iterator[str]:
    for figure in figures:
        ours, theirs = (summarize(data, "rocketnode", figure.key),
                        summarize(data, "synapse", figure.key))
        if ours is None and theirs is None:
            continue
        yield _row(figure.label, figure.unit, ours, theirs, figure.better)


def provenance(data: dict[str, Any]) -> Iterator[str]:
    """Which command produced the figures, when, with how many runs."""
    entries = data.get("by_implementation", {})
    seen: dict[str, list[str]] = {}
    for kind in IMPLEMENTATIONS:
        entry = entries.get(kind)
        if entry:
            runs = len(good_runs(data, kind))
            revision = (f", RocketNode revision {entry.get('revision', '?')}"
                        if kind == "rocketnode" else "")
            seen.setdefault(f"`{entry['command']}` ({entry['date']}{revision})", []).append(
                f"{NAMES[kind]}: {runs} run{'s' if runs != 1 else ''}")
    for text, kinds in seen.items():
        yield f"{', '.join(kinds)} — {text}"
    params = [{key: value for key, value in entries[k].get("params", {}).items()
               if key not in ("runs", "implementations")}
              for k in IMPLEMENTATIONS if entries.get(k)]
    for kind in IMPLEMENTATIONS:
        setting = (entries.get(kind) or {}).get("params", {}).get("rocketnode_synchronous")
        if kind == "rocketnode" and setting not in (None, "NORMAL"):
            yield f"RocketNode ran with `[database] synchronous = {setting}`."
    if any(p and p.get("quick") for p in params):
        yield "**--quick parameters: a harness check, not a measurement.**"
    if len(params) == 2 and params[0] != params[1]:
        yield ("**The two implementations ran with different parameters; their figures are "
               "not comparable.**")


def section(title: str, data: dict[str, Any], figures: list[Figure],
            extra: list[str] | None = None) -> list[str]:
    lines = [f"## {title}", ""]
    lines += [f"- {line}" for line in provenance(data)]
    lines += ["", HEADER, *figure_rows(data, figures), ""]
    return lines + (extra or [])


def sustained_notes(data: dict[str, Any]) -> list[str]:
    lines = []
    for kind in IMPLEMENTATIONS:
        for run in good_runs(data, kind):
            steps = run.get("samples", {}).get("sustained_steps", [])
            if not steps:
                continue
            last = steps[-1]
            p95 = last.get("p95_ms")
            how = (f"stopped at {last['rate']} msg/s: {last['failed']} (p95 "
                   f"{'∞' if p95 is None else number(p95)} ms, achieved "
                   f"{number(last.get('achieved') or 0)} msg/s, {last.get('missing', 0)} "
                   "missing)") if last.get("failed") else f"passed every step up to {last['rate']}"
            lines.append(f"- {NAMES[kind]} run {run['run'] + 1}: {how}")
    if lines:
        lines.append("- A rate of 0 means even the lowest step failed.")
    return [*lines, ""] if lines else []


def join_section(members: str, data: dict[str, Any]) -> list[str]:
    extra = []
    for kind in IMPLEMENTATIONS:
        builds = [run.get("build", {}) for run in good_runs(data, kind)]
        if builds and builds[0]:
            build = builds[0]
            extra.append(f"- Setup, not a figure of merit: {NAMES[kind]} built the room on A "
                         f"in {number(build['build_s'])} s ({build['members_on_a']} joined "
                         f"members; A's RSS then {number(build['resident_rss_mib'])} MiB).")
    title = f"Joining, over federation, a room with {int(members):,} members"
    return section(title, data, figures_for(f"join_{members}", data), [*extra, ""])


def resource_section(raw: dict[str, dict[str, Any]], rows: list[Resource]) -> list[str]:
    lines = ["## Resources", "",
             "From the two-server parts (startup, idle and peak RSS: one value per server "
             "session, the median or largest of A and B) and every phase of every part.", "",
             HEADER]
    for row in rows:
        ours, theirs = (summarize_values(row.values["rocketnode"]),
                        summarize_values(row.values["synapse"]))
        if ours is not None or theirs is not None:
            lines.append(_row(row.label, row.unit, ours, theirs, "lower"))
    return [*lines, "", *background_lines(raw), ""]


def state_res_section(data: dict[str, Any] | None) -> list[str]:
    if not data:
        return ["## State resolution", "", "Not run yet (`python -m bench state_res`).", ""]
    params = data.get("params", {})
    lines = ["## State resolution (in process, no servers)", "",
             f"- `{data['command']}` ({data['date']}): {params.get('conflicted')} conflicted "
             f"memberships, median of {params.get('runs')} timed runs after a warm-up, min–max "
             "in brackets. Both must return the same state.", "",
             "| Room version | RocketNode `resolve_state` (ms) | Synapse, in flight (ms) | "
             "Synapse, persisted (ms) | RocketNode better by (in flight / persisted) |",
             "|---|---:|---:|---:|---:|"]
    for version, found in sorted(data.get("versions", {}).items()):
        cells = {key: summarize_values(found.get(key, [])) for key in
                 ("rocketnode_ms", "synapse_in_flight_ms", "synapse_persisted_ms")}
        ours = cells["rocketnode_ms"]
        ratios = " / ".join(times(advantage(ours, cells[k], "lower"))
                            for k in ("synapse_in_flight_ms", "synapse_persisted_ms"))
        lines.append(f"| {version} | {cell(ours, 'ms')} | "
                     f"{cell(cells['synapse_in_flight_ms'], 'ms')} | "
                     f"{cell(cells['synapse_persisted_ms'], 'ms')} | {ratios} |")
    return [*lines, ""]


def goal_table(rows: list[GoalRow]) -> list[str]:
    lines = ["## Goals", "",
             "Reported, not asserted. Medians over runs; \"measured\" is RocketNode's "
             "advantage (see \"Reading the tables\").", "",
             "| Goal | RocketNode | Synapse | Measured | Status |", "|---|---:|---:|---:|---|"]
    lines += [f"| {r.goal} | {r.rocketnode} | {r.synapse} | {r.measured} | {r.status} |"
              for r in rows]
    return [*lines, ""]


def _machines(raw: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry["machine"] for data in raw.values()
            for entry in [*data.get("by_implementation", {}).values(), data]
            if isinstance(entry, dict) and isinstance(entry.get("machine"), dict)]


def _machine_line(raw: dict[str, dict[str, Any]]) -> str:
    machines = _machines(raw) or [machine()]
    found = machines[0]
    fsyncs = [m["fsync_ms"] for m in machines if isinstance(m.get("fsync_ms"), int | float)]
    fsync = (f"{number(min(fsyncs))}–{number(max(fsyncs))} ms" if len(set(fsyncs)) > 1
             else f"{number(fsyncs[0])} ms" if fsyncs else "not measured")
    return (f"{found['cpu']}, {found['cpus']} CPUs, {found['memory_gib']} GiB RAM; "
            f"{found['os']}, kernel {found['kernel']}; Python {found['python']}; "
            f"Synapse {found['synapse']}; aiohttp {found['aiohttp']}. A 4 KiB write + fsync "
            f"in the servers' temporary directory took {fsync} (median of 20, measured each "
            "time a part saved its results)")


def render(raw: dict[str, dict[str, Any]], plotted: str) -> list[str]:
    rows = resources(raw)
    by_key = {row.key: row for row in rows}
    goals = list(goal_rows(raw, by_key))
    lines = ["# RocketNode and Synapse, side by side", "",
             f"Written {now()} by `python -m bench report` from `bench/results/raw/` (the "
             "command of each table is given with it; `make bench` runs them all).", "",
             f"**Machine:** {_machine_line(raw)}. The servers and the benchmark client share "
             "this machine and talk over 127.0.0.1.", "",
             "**Reading the tables:** each cell is the median over runs, with the smallest "
             "and largest run in brackets. \"RocketNode better by\" is Synapse ÷ RocketNode "
             "for times, memory and CPU, RocketNode ÷ Synapse for rates: above 1× RocketNode "
             "is better, below 1× Synapse is. Counts of missing messages have no ratio.", "",
             *goal_table(goals), plotted, ""]
    for workload, title in SECTIONS:
        data = raw.get(workload)
        if not data:
            lines += [f"## {title}", "", f"Not run yet (`python -m bench {workload}`).", ""]
            continue
        extra = sustained_notes(data) if workload == "sustained" else None
        lines += section(title, data, figures_for(workload, data), extra)
    joins = sorted((k for k in raw if k.startswith("join_")), key=lambda k: int(k[5:]))
    for workload in joins:
        lines += join_section(workload[5:], raw[workload])
    lines += resource_section(raw, rows)
    lines += state_res_section(raw.get("state_res"))
    lines += [*measuring.TEXT.splitlines(), ""]
    failed = list(failures(raw))
    if failed:
        lines += ["## Failed runs", "", *[f"- {line}" for line in failed], ""]
    return lines


def summary(raw: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The committed summary: every reported figure with medians, ranges and run counts."""
    def entry(found: Any) -> dict[str, Any] | None:
        return None if found is None else {"median": found.median, "min": found.low,
                                           "max": found.high, "runs": found.runs}

    workloads: dict[str, Any] = {}
    for name, data in raw.items():
        if name == "state_res":
            continue
        figures = {}
        for figure in figures_for(name, data):
            ours, theirs = (summarize(data, "rocketnode", figure.key),
                            summarize(data, "synapse", figure.key))
            figures[figure.key] = {"label": figure.label, "unit": figure.unit,
                                   "rocketnode": entry(ours), "synapse": entry(theirs),
                                   "rocketnode_better_by": advantage(ours, theirs,
                                                                     figure.better)}
        workloads[name] = {
            "runs": {kind: {key: data["by_implementation"][kind][key]
                            for key in ("command", "date", "revision", "params")}
                     | {"good_runs": len(good_runs(data, kind)),
                        "failed_runs": len(failed_runs(data, kind))}
                     for kind in IMPLEMENTATIONS if kind in data.get("by_implementation", {})},
            "figures": figures}
    rows = resources(raw)
    state_res = raw.get("state_res")
    return {
        "generated": now(),
        "machine": _machine_line(raw),
        "goals": [vars(row) for row in goal_rows(raw, {row.key: row for row in rows})],
        "workloads": workloads,
        "resources": {row.key: {"label": row.label, "unit": row.unit,
                                **{kind: entry(summarize_values(row.values[kind]))
                                   for kind in IMPLEMENTATIONS}} for row in rows},
        "state_res": None if not state_res else {
            "command": state_res["command"], "date": state_res["date"],
            "versions": {version: {key: _median(values) for key, values in found.items()
                                   if isinstance(values, list)}
                         for version, found in state_res.get("versions", {}).items()}},
    }


def _median(values: list[float]) -> float | None:
    found = spread(values)
    return None if found is None else found[0]


def write(quick: bool = False) -> Path:
    directory = output_dir(quick)
    raw = load_all(quick)
    try:
        from bench import plot

        plot.draw(raw, directory / PLOT)
        plotted = f"![Latency distributions, throughput and join times]({PLOT})"
    except ImportError:
        plotted = ("(No plot: matplotlib is missing; `pip install -e '.[bench]'` and run "
                   "`python -m bench report`.)")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / REPORT).write_text("\n".join(render(raw, plotted)).rstrip() + "\n",
                                    encoding="utf-8")
    (directory / SUMMARY).write_text(json.dumps(summary(raw), indent=1, allow_nan=False) + "\n",
                                     encoding="utf-8")
    return directory / REPORT


def main(argv: list[str]) -> int:
    if argv not in ([], ["--quick"]):
        print(__doc__)
        return 0 if argv[0] in ("-h", "--help") else 2
    print(write(quick=argv == ["--quick"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
