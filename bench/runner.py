"""The parts on two servers: ``python -m bench pair`` runs every workload of
bench/workloads.py on one pair of servers per run; ``python -m bench paced`` (``fanout``,
``burst``, ``local``, ``sustained``) runs one.

Each run starts fresh servers (new data directories) for one implementation, records their
startup time and idle RSS (after ``settle_s`` of quiet), runs the workloads, then stops them;
runs alternate which implementation goes first. Every workload's figures go to
``bench/results/raw/<workload>.json`` and the report is rewritten.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
import time
import traceback
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from bench import params as bench_params
from bench.client import new_session
from bench.meter import Background, Meter
from bench.params import Params
from bench.progress import say
from bench.results import command, save_runs
from bench.servers import Cluster, Server, cluster, sample
from bench.workloads import PAIR_WORKLOADS, pair_room

LOG_TAIL_CHARS = 3000
Records = dict[str, dict[str, Any]]
Session = Callable[[str, Params, int], Coroutine[Any, Any, Records]]


def run_order(implementations: Sequence[str], run_number: int) -> list[str]:
    """Alternate which implementation goes first, so slow drift of the machine evens out."""
    names = list(implementations)
    return names if run_number % 2 == 0 else names[::-1]


def log_tails(servers: Sequence[Server]) -> dict[str, str]:
    tails: dict[str, str] = {}
    for server in servers:
        try:
            text = server.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        tails[server.label] = text[-LOG_TAIL_CHARS:]
    return tails


async def settle_and_measure(servers: Cluster, params: Params) -> dict[str, Any]:
    """Startup time and idle RSS of freshly started servers."""
    await asyncio.sleep(params.settle_s)
    return {
        "startup_s": {s.label: s.startup_s for s in servers.servers},
        "idle_rss_mib": {s.label: sample(s).rss_mib for s in servers.servers},
    }


def final_measure(servers: Sequence[Server], info: dict[str, Any]) -> None:
    samples = {s.label: sample(s) for s in servers if s.pid is not None}
    info["final_rss_mib"] = {label: value.rss_mib for label, value in samples.items()}
    info["peak_rss_mib"] = {label: value.peak_rss_mib for label, value in samples.items()}


async def pair_session(names: Sequence[str], kind: str, params: Params,
                       run_number: int) -> dict[str, dict[str, Any]]:
    """One run of ``names`` on a fresh pair of ``kind`` servers: a record per workload."""
    records: dict[str, dict[str, Any]] = {}
    async with new_session() as session, cluster(
            kind, 2, synchronous=params.rocketnode_synchronous) as servers:
        info = await settle_and_measure(servers, params)
        info["session"] = f"{kind}-{run_number}-{int(time.time())}"
        meter = Meter(servers.servers)
        background = Background(servers.servers)
        background.begin()
        try:
            async with pair_room(params, session, servers[0], servers[1], meter) as pair:
                for name in names:
                    say(f"{kind} run {run_number + 1}: {name}")
                    pair.metrics, pair.samples = {}, {}
                    before = set(meter.phases)
                    await PAIR_WORKLOADS[name](pair)
                    phases = {k: v.as_json() for k, v in meter.phases.items()
                              if k not in before}
                    records[name] = {"metrics": pair.metrics, "samples": pair.samples,
                                     "phases": phases, "servers": info}
        except Exception as error:  # one failed run must not lose the others
            failed = next((n for n in names if n not in records), names[0])
            say(f"{kind} run {run_number + 1}: {failed} failed: {error!r}")
            traceback.print_exc()
            for name in names:
                if name not in records:
                    records[name] = {"error": repr(error), "servers": info,
                                     "log_tails": log_tails(servers.servers)}
        info["cpu"] = background.end()
        final_measure(servers.servers, info)
    return records


def run_part(part: str, argv: list[str], names: Sequence[str], session: Session,
             params: Params) -> int:
    """Run ``session`` ``params.runs`` times per implementation; save each workload's runs
    after every run (so an interrupted benchmark keeps what it measured)."""
    collected: dict[str, dict[str, list[dict[str, Any]]]] = {
        name: {kind: [] for kind in params.implementations} for name in names}
    failures = 0
    for run_number in range(params.runs):
        for kind in run_order(params.implementations, run_number):
            say(f"== {part}: {kind}, run {run_number + 1} of {params.runs}")
            try:
                records: Records = asyncio.run(session(kind, params, run_number))
            except Exception as error:  # e.g. a server that does not start
                say(f"{kind} run {run_number + 1} failed: {error!r}")
                traceback.print_exc()
                records = {name: {"error": repr(error)} for name in names}
            for name in names:
                record = records[name]
                failures += "error" in record
                collected[name][kind].append({"implementation": kind, "run": run_number,
                                              **record})
                save_runs(name, kind, collected[name][kind], bench_params.describe(params),
                          command(part, argv))
    write_report(params.quick)
    return 1 if failures else 0


def write_report(quick: bool) -> None:
    from bench import report

    path = report.write(quick)
    say(f"report: {path}")


def parser_for(part: str, description: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m bench {part}", description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    bench_params.add_arguments(parser)
    return parser


def main(argv: list[str], part: str = "pair") -> int:
    parser = parser_for(part, __doc__)
    if part == "pair":
        parser.add_argument("--workloads", default=",".join(PAIR_WORKLOADS),
                            help="comma-separated subset of: " + ", ".join(PAIR_WORKLOADS))
    args = parser.parse_args(argv)
    names = args.workloads.split(",") if part == "pair" else [part]
    unknown = [name for name in names if name not in PAIR_WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s): {', '.join(unknown)}")
    params = bench_params.from_arguments(args)
    session = functools.partial(pair_session, names)
    return run_part(part, argv, names, session, params)


paced_main = functools.partial(main, part="paced")
fanout_main = functools.partial(main, part="fanout")
burst_main = functools.partial(main, part="burst")
local_main = functools.partial(main, part="local")
sustained_main = functools.partial(main, part="sustained")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
