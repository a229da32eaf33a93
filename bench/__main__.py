"""Run benchmarks by name: ``python -m bench PART [flags]``; ``python -m bench --help``.

With no part (``python -m bench [--runs N] [--quick] ...``, what ``make bench`` runs), every
part runs in turn and the report is written: state_res, pair (paced, fanout, burst, local,
sustained), five, join --members 1000, join --members 10000.

Parts (``python -m bench PART --help`` for their flags):

  state_res   state resolution in process, RocketNode against Synapse's resolver
  pair        every two-server workload on one pair of servers per run
  paced       latency A -> B at 4, 10, 30 msg/s
  sustained   highest rate with p95 <= 1 s
  burst       200 and 1,000 messages, 1 and 16 in flight: throughput, missing
  fanout      200 messages to 20 users syncing on B
  local       one server: send round trip, local echo, messages/s
  five        one room on five servers
  join        join over federation a room with --members N members
  report      rewrite REPORT.md, results.json and bench.png from bench/results/raw/

Results: bench/results/REPORT.md (raw samples in bench/results/raw/, git-ignored); runs with
--quick (harness checks) write to bench/results/quick/ instead.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

PARTS = {
    "state_res": ("bench.state_res", "main"),
    "pair": ("bench.runner", "main"),
    "paced": ("bench.runner", "paced_main"),
    "sustained": ("bench.runner", "sustained_main"),
    "burst": ("bench.runner", "burst_main"),
    "fanout": ("bench.runner", "fanout_main"),
    "local": ("bench.runner", "local_main"),
    "five": ("bench.five", "main"),
    "join": ("bench.join", "main"),
    "report": ("bench.report", "main"),
}
BENCHMARKS = PARTS  # the name the first version of this dispatcher used


def part(name: str) -> Callable[[list[str]], int]:
    module, attribute = PARTS[name]
    found: Callable[[list[str]], int] = getattr(importlib.import_module(module), attribute)
    return found


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if not argv or argv[0].startswith("-"):
        from bench import suite

        return suite.main(argv)
    name, rest = argv[0], argv[1:]
    if name not in PARTS:
        print(f"Unknown part {name!r}; known: {', '.join(PARTS)}", file=sys.stderr)
        return 2
    return part(name)(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
