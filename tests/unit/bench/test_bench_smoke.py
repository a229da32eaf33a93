"""The benchmark harness runs end to end on RocketNode with tiny parameters (no Synapse), so
that it does not rot between benchmark runs. Nothing here checks a timing: a benchmark is not
a test. Results go nowhere near bench/results/."""

from __future__ import annotations

import io
import math
import os
from typing import Any

import pytest
from bench import figures, goals, report
from bench.join import join_implementation
from bench.params import Params
from bench.progress import Progress
from bench.runner import pair_session
from bench.servers import sample_process
from bench.stats import percentile
from bench.workloads import PAIR_WORKLOADS

pytestmark = pytest.mark.slow

TINY = Params(
    runs=1, implementations=("rocketnode",), settle_s=0.1, grace_s=10.0, idle_s=5.0,
    paced_rates=(5,), paced_seconds=1.0, sustained_rates=(20, 40), sustained_seconds=0.5,
    burst_sizes=(10,), burst_in_flight=(1, 4), fanout_receivers=2, fanout_messages=5,
    local_round_trips=10, local_messages=20, members=3, build_concurrency=2,
)


def _raw(records: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Records as bench/results.py would store them, for the report."""
    return {name: {"workload": name, "by_implementation": {"rocketnode": {
        "command": "python -m bench (smoke test)", "date": "now", "revision": "test",
        "params": {**vars(TINY), "paced_rates": [5], "burst_sizes": [10],
                   "burst_in_flight": [1, 4]},
        "runs": [{"implementation": "rocketnode", "run": 0, **record}]}}}
            for name, record in records.items()}


async def test_pair_and_join_run_on_rocketnode_and_make_a_report() -> None:
    records = await pair_session(list(PAIR_WORKLOADS), "rocketnode", TINY, 0)
    assert set(records) == set(PAIR_WORKLOADS)
    for name, record in records.items():
        assert "error" not in record, (name, record.get("error"), record.get("log_tails"))
        assert record["phases"], name
    metrics = {k: v for record in records.values() for k, v in record["metrics"].items()}
    for key in ("paced_5_p50_ms", "fanout_p95_ms", "burst_10x4_msg_s", "local_send_p99_ms",
                "local_16_msg_s", "paced_cpu_receiver_s_per_1000"):
        assert math.isfinite(metrics[key]) and metrics[key] >= 0, key
    assert len(records["paced"]["samples"]["paced_5_ms"]) + metrics["paced_5_missing"] == 5
    assert records["sustained"]["samples"]["sustained_steps"]
    servers = records["paced"]["servers"]
    assert set(servers["idle_rss_mib"]) == {"A", "B"}
    assert all(value > 0 for value in servers["startup_s"].values())

    joins = await join_implementation("rocketnode", TINY)
    assert [sorted(run) for run in joins if "error" in run] == []
    assert joins[0]["build"]["members_on_a"] == TINY.members + 1
    assert math.isfinite(joins[0]["metrics"]["first_message_s"])

    raw = _raw({**records, "join_3": joins[0]})
    text = "\n".join(report.render(raw, "(no plot)"))
    assert "| 5 msg/s: p50 (ms) |" in text
    assert "Joining, over federation, a room with 3 members" in text
    assert "| RSS idle after startup (MiB) |" in text
    assert report.summary(raw)["workloads"]["paced"]["figures"]["paced_5_p50_ms"]["rocketnode"]
    rows = list(goals.goal_rows(raw, {}))
    assert rows[0].status == "not measured"  # no Synapse figures to compare with


def test_figures_and_percentiles() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert math.isnan(percentile([], 95))
    ours = figures.Spread(10.0, 9.0, 11.0, 3)
    theirs = figures.Spread(100.0, 90.0, 110.0, 3)
    assert figures.advantage(ours, theirs, "lower") == 10.0
    assert figures.advantage(theirs, ours, "higher") == 10.0
    assert figures.advantage(ours, theirs, "") is None
    assert figures.cell(ours, "ms") == "10.0 (9.00–11.0)"


def test_progress_on_a_pipe_writes_lines() -> None:
    out = io.StringIO()
    with Progress("work", 4, out) as bar:
        for _ in range(4):
            bar.advance()
    assert out.getvalue().splitlines()[-1].startswith("  work: 4/4")


def test_process_sample_reads_proc() -> None:
    found = sample_process(os.getpid())
    assert found.rss_mib > 0 and found.peak_rss_mib >= found.rss_mib and found.cpu_s >= 0
