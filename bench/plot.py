"""The figure linked from the report (matplotlib, from the ``bench`` extra): latency
distributions, burst throughput, the sustained-rate steps and join times."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.figures import IMPLEMENTATIONS, NAMES, first_params, good_runs, summarize

STYLE = {"rocketnode": "-", "synapse": "--"}


def _plain_numbers(axis: Any, which: str) -> None:
    """Log axes labelled 20, 50, 100 rather than 2×10¹."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ticks = axis.xaxis if which == "x" else axis.yaxis
    ticks.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ticks.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ticks.set_minor_formatter(NullFormatter())


def _empty(axis: Any, title: str, part: str) -> None:
    axis.set_title(title)
    axis.text(0.5, 0.5, f"not run yet\n(python -m bench {part})", ha="center", va="center",
              transform=axis.transAxes, color="grey")
    axis.set_xticks([])
    axis.set_yticks([])
COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]


def _samples(data: dict[str, Any] | None, kind: str, key: str) -> list[float]:
    return [v for run in good_runs(data or {}, kind) for v in run.get("samples", {}).get(key, [])
            if v is not None and v > 0]


def _ecdf(axis: Any, series: list[tuple[str, str, str, list[float]]], title: str) -> None:
    for label, kind, colour, values in series:
        if not values:
            continue
        ordered = sorted(values)
        fractions = [(i + 1) / len(ordered) for i in range(len(ordered))]
        axis.step(ordered, fractions, where="post", linestyle=STYLE[kind], color=colour,
                  label=f"{NAMES[kind]} {label}")
    axis.set_xscale("log")
    _plain_numbers(axis, "x")
    axis.set_xlabel("latency (ms, log scale)")
    axis.set_ylabel("fraction of messages")
    axis.set_title(title)
    axis.grid(True, which="both", alpha=0.3)
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=7)


def _bars(axis: Any, groups: list[tuple[str, dict[str, Any], str]], unit: str,
          title: str, part: str) -> None:
    if not groups:
        _empty(axis, title, part)
        return
    width = 0.38
    for offset, kind in enumerate(IMPLEMENTATIONS):
        xs, heights, lows, highs = [], [], [], []
        for index, (_, data, key) in enumerate(groups):
            found = summarize(data, kind, key)
            if found is None or found.median <= 0:
                continue
            xs.append(index + (offset - 0.5) * width)
            heights.append(found.median)
            lows.append(found.median - found.low)
            highs.append(found.high - found.median)
        axis.bar(xs, heights, width, yerr=[lows, highs], capsize=3, label=NAMES[kind],
                 color=COLOURS[offset], alpha=0.85)
    axis.set_xticks(range(len(groups)), [label for label, _, _ in groups], fontsize=7)
    axis.set_yscale("log")
    _plain_numbers(axis, "y")
    axis.set_ylabel(unit + " (log scale; bars: median, whiskers: min–max)")
    axis.set_title(title)
    axis.grid(True, axis="y", which="both", alpha=0.3)
    axis.legend(fontsize=7)


def _sustained(axis: Any, data: dict[str, Any] | None) -> None:
    for offset, kind in enumerate(IMPLEMENTATIONS):
        for number, run in enumerate(good_runs(data or {}, kind)):
            steps = run.get("samples", {}).get("sustained_steps", [])
            points = [(s["rate"], s["p95_ms"]) for s in steps if s.get("p95_ms")]
            if points:
                axis.plot(*zip(*points, strict=True), marker="o", linestyle=STYLE[kind],
                          color=COLOURS[offset],
                          label=NAMES[kind] if number == 0 else None)
    axis.axhline(1000, color="grey", linewidth=1)
    axis.set_xscale("log")
    axis.set_yscale("log")
    _plain_numbers(axis, "x")
    _plain_numbers(axis, "y")
    axis.set_xlabel("offered rate (msg/s, log scale)")
    axis.set_ylabel("p95 latency A → B (ms, log scale)")
    axis.set_title("Sustained rate: p95 per step (line: 1 s)")
    axis.grid(True, which="both", alpha=0.3)
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=7)


def draw(raw: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 3, figsize=(17, 9.5))
    paced = raw.get("paced")
    rates = first_params(paced or {}).get("paced_rates", [])
    _ecdf(axes[0][0], [(f"{rate}/s", kind, COLOURS[i % len(COLOURS)],
                        _samples(paced, kind, f"paced_{rate}_ms"))
                       for i, rate in enumerate(rates) for kind in IMPLEMENTATIONS],
          "Latency A → B /sync, paced")
    _ecdf(axes[0][1], [(label, kind, colour, _samples(raw.get(workload), kind, key))
                       for label, workload, key, colour in (
                           ("fan-out, per delivery", "fanout", "fanout_ms", COLOURS[0]),
                           ("five servers, per delivery", "five", "five_ms", COLOURS[1]),
                           ("five servers, all four", "five", "five_all_ms", COLOURS[2]))
                       for kind in IMPLEMENTATIONS],
          "Fan-out (20 users on B) and five servers")
    _ecdf(axes[0][2], [(label, kind, colour, _samples(raw.get("local"), kind, key))
                       for label, key, colour in (("PUT /send", "local_send_ms", COLOURS[0]),
                                                  ("local echo", "local_echo_ms", COLOURS[1]))
                       for kind in IMPLEMENTATIONS],
          "One server: send round trip and local echo")
    burst = raw.get("burst") or {}
    params = first_params(burst)
    _bars(axes[1][0], [(f"{size} × {flight}", burst, f"burst_{size}x{flight}_msg_s")
                       for flight in params.get("burst_in_flight", [])
                       for size in params.get("burst_sizes", [])],
          "msg/s", "Burst throughput A → B (size × in flight)", "burst")
    _sustained(axes[1][1], raw.get("sustained"))
    joins = sorted((k for k in raw if k.startswith("join_")), key=lambda k: int(k[5:]))
    _bars(axes[1][2], [(f"{k[5:]} members: {what}", raw[k], key) for k in joins
                       for what, key in (("join", "join_s"), ("message", "first_message_s"),
                                         ("all members", "members_s"))],
          "seconds", "Joining a big room over federation", "join")
    figure.suptitle("RocketNode (solid) and Synapse (dashed) on the same machine")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
