"""``python -m bench`` with no part: every part in turn, then the report.

Flags: ``--runs N`` and ``--implementations`` go to every live part; ``--quick`` makes every
part small (a check of the harness, minutes instead of most of an hour; its results and
report go to bench/results/quick/, never over a measurement);
``--big-join-synapse-runs N`` runs the 10,000-member join fewer times on Synapse, whose
joins of that room are slow; ``--skip PART`` leaves a part out (repeatable: state_res, pair,
five, join-1000, join-10000).
"""

from __future__ import annotations

import argparse
import time

from bench.progress import say

STEPS = ("state_res", "pair", "five", "join-1000", "join-10000")


def plan(args: argparse.Namespace) -> list[tuple[str, str, list[str]]]:
    """(step, part, argv) in order."""
    common: list[str] = []
    if args.runs is not None:
        common += ["--runs", str(args.runs)]
    if args.implementations:
        common += ["--implementations", args.implementations]
    if args.quick:
        common.append("--quick")
    state_res = ["--quick"] if args.quick else []
    small, big = ("100", "300") if args.quick else ("1000", "10000")
    big_join = [*common, "--members", big]
    if args.big_join_synapse_runs is not None:
        big_join += ["--synapse-runs", str(args.big_join_synapse_runs)]
    steps = [("state_res", "state_res", state_res), ("pair", "pair", common),
             ("five", "five", common), ("join-1000", "join", [*common, "--members", small]),
             ("join-10000", "join", big_join)]
    return [step for step in steps if step[0] not in args.skip]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--implementations")
    parser.add_argument("--big-join-synapse-runs", type=int, metavar="N")
    parser.add_argument("--skip", action="append", default=[], choices=STEPS)
    args = parser.parse_args(argv)
    from bench.__main__ import part

    worst = 0
    started = time.monotonic()
    for step, name, rest in plan(args):
        say(f"##### {step}: python -m bench {name} {' '.join(rest)}")
        step_started = time.monotonic()
        worst = max(worst, part(name)(rest))
        say(f"##### {step} done in {(time.monotonic() - step_started) / 60:.1f} min")
    where = "bench/results/quick/REPORT.md" if args.quick else "bench/results/REPORT.md"
    say(f"all done in {(time.monotonic() - started) / 60:.1f} min; see {where}")
    return worst
