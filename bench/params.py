"""The knobs of the live benchmarks, their defaults, ``--quick`` values and command-line flags."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import Any

from bench.servers import IMPLEMENTATIONS


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part)


def _names(text: str) -> tuple[str, ...]:
    names = tuple(part for part in text.split(",") if part)
    unknown = set(names) - set(IMPLEMENTATIONS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown implementation(s): {sorted(unknown)}")
    return names


@dataclass(frozen=True)
class Params:
    runs: int = 3
    implementations: tuple[str, ...] = IMPLEMENTATIONS
    room_version: str = "12"
    rocketnode_synchronous: str = "NORMAL"
    """RocketNode's ``[database] synchronous`` (its default). Synapse on SQLite always runs
    with SQLite's default, FULL: an fsync per commit."""
    settle_s: float = 5.0
    """Idle time after startup before the idle RSS is read."""
    grace_s: float = 30.0
    """How long after the last send a message may still arrive before it counts as missing."""
    idle_s: float = 15.0
    """...unless nothing at all arrived for this long."""
    paced_rates: tuple[int, ...] = (4, 10, 30)
    paced_seconds: float = 10.0
    sustained_rates: tuple[int, ...] = (15, 30, 60, 120, 240, 480, 960, 1920, 3840)
    sustained_seconds: float = 5.0
    sustained_p95_limit_ms: float = 1000.0
    max_in_flight: int = 256
    """Open-loop sends (paced, sustained) waiting on the server beyond this wait client-side
    (their latency still counts from the scheduled send time)."""
    burst_sizes: tuple[int, ...] = (200, 1000)
    burst_in_flight: tuple[int, ...] = (1, 16)
    fanout_receivers: int = 20
    fanout_messages: int = 200
    fanout_rate: float = 10.0
    local_round_trips: int = 300
    local_messages: int = 1000
    five_messages: int = 100
    five_rate: float = 5.0
    members: int = 1000
    build_concurrency: int = 16
    build_on_tmpfs: bool = True
    """Build the big room with A's data on /dev/shm, then move it to disk before any join."""
    quick: bool = False


QUICK = {
    "runs": 1, "settle_s": 1.0, "grace_s": 10.0, "idle_s": 5.0, "paced_seconds": 2.0,
    "sustained_rates": (30, 60, 120, 240), "sustained_seconds": 2.0, "burst_sizes": (50, 200),
    "fanout_receivers": 4, "fanout_messages": 20, "local_round_trips": 50,
    "local_messages": 200, "five_messages": 10, "members": 100,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    default = Params()
    add = parser.add_argument
    add("--runs", type=int, help=f"runs per implementation; the median is reported "
                                 f"(default {default.runs}; --quick: {QUICK['runs']})")
    add("--quick", action="store_true",
        help="small parameters for trying the harness (figures not comparable)")
    add("--implementations", type=_names, metavar="LIST",
        help="comma-separated: rocketnode,synapse (default both)")
    add("--room-version", help=f"room version of every room (default {default.room_version})")
    add("--rocketnode-synchronous", choices=["NORMAL", "FULL"],
        help="RocketNode's SQLite synchronous setting (default NORMAL, its default; FULL "
             "fsyncs every commit, as Synapse on SQLite does)")
    add("--grace", dest="grace_s", type=float, metavar="S",
        help=f"wait after the last send before a message counts as missing "
             f"(default {default.grace_s:g})")
    add("--rates", dest="paced_rates", type=_ints, metavar="LIST",
        help="paced: messages/s (default 4,10,30)")
    add("--paced-seconds", type=float, metavar="S", help="paced: seconds per rate (default 10)")
    add("--steps", dest="sustained_rates", type=_ints, metavar="LIST",
        help="sustained: offered rates tried in order (default 15,30,...,3840)")
    add("--step-seconds", dest="sustained_seconds", type=float, metavar="S",
        help="sustained: seconds per step (default 5)")
    add("--burst-sizes", type=_ints, metavar="LIST", help="burst: sizes (default 200,1000)")
    add("--in-flight", dest="burst_in_flight", type=_ints, metavar="LIST",
        help="burst: requests in flight (default 1,16)")
    add("--receivers", dest="fanout_receivers", type=int, metavar="N",
        help="fanout: users syncing on the receiving server (default 20)")
    add("--fanout-messages", type=int, metavar="N", help="fanout: messages (default 200)")
    add("--fanout-rate", type=float, metavar="R", help="fanout: messages/s (default 10)")
    add("--local-messages", type=int, metavar="N",
        help="local: messages per throughput run (default 1000)")
    add("--five-messages", type=int, metavar="N", help="five: messages (default 100)")
    add("--members", type=int, metavar="N", help="join: members of the room (default 1000)")
    add("--build-concurrency", type=int, metavar="N",
        help="join: registrations/joins in flight while building the room (default 16)")
    add("--build-on-disk", dest="build_on_tmpfs", action="store_false", default=None,
        help="join: build the room with A's data on disk too (default: on /dev/shm, moved to "
             "disk before the joins)")


def from_arguments(args: argparse.Namespace) -> Params:
    values: dict[str, Any] = dict(QUICK) if args.quick else {}
    values["quick"] = bool(args.quick)
    names = {f.name for f in dataclasses.fields(Params)}
    for name, value in vars(args).items():
        if name in names and value is not None and name != "quick":
            values[name] = value
    return Params(**values)


def describe(params: Params) -> dict[str, Any]:
    """The parameters as JSON-friendly data (for the raw results)."""
    data = dataclasses.asdict(params)
    return {key: list(value) if isinstance(value, tuple) else value
            for key, value in data.items()}


def replace(params: Params, **changes: Any) -> Params:
    return dataclasses.replace(params, **changes)
