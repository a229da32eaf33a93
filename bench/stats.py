"""Percentiles of samples and medians over runs."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100), interpolating linearly between the two closest ranks;
    NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(latencies_s: Sequence[float], prefix: str) -> dict[str, float]:
    """p50/p95/p99/max of latencies given in seconds, as ``{prefix}_p50_ms``... in ms."""
    ms = [value * 1000 for value in latencies_s]
    return {
        f"{prefix}_p50_ms": percentile(ms, 50),
        f"{prefix}_p95_ms": percentile(ms, 95),
        f"{prefix}_p99_ms": percentile(ms, 99),
        f"{prefix}_max_ms": max(ms) if ms else math.nan,
    }


def with_missing(latencies_s: Sequence[float], missing: int) -> list[float]:
    """Latencies where each missing message counts as infinitely late (so a p95 over them is
    honest about losses)."""
    return [*latencies_s, *([math.inf] * missing)]


def spread(values: Iterable[float]) -> tuple[float, float, float] | None:
    """(median, min, max) of the finite values; None if there are none."""
    finite = [v for v in values if isinstance(v, int | float) and math.isfinite(v)]
    if not finite:
        return None
    return statistics.median(finite), min(finite), max(finite)
