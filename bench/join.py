"""``python -m bench join --members N``: joining, over federation, a room whose state holds N
members.

Per implementation, server A is started once and the room built on it: a creator makes a
public room, N users register on A and join it (``--build-concurrency`` at a time; RocketNode
users register without a password, which the spec allows and which skips password hashing;
Synapse refuses that, so its users have one, hashed with ``bcrypt_rounds: 4``). Building is
setup, reported only for information.

Then, per run, a fresh server B (empty data directory, started only now) and a fresh user on
it, and timed from the moment B's user asks to join:

- ``join_s``: until ``POST /join/{roomId}?server_name=A`` returns;
- ``first_message_s``: until the joiner's first message, sent right after, is in the creator's
  /sync on A;
- ``members_s``: until ``GET /joined_members`` on B lists every member (a server that joined
  with partial state, as Synapse does by default, answers with fewer members at first).

The joiner then leaves, so every run's server joins the same room from scratch. The earlier
runs' servers keep running (idle, out of the room): the room's state holds their signed
membership events, and a later joiner fetches their signing keys from them, as it would on the
real network (with no notary configured, a stopped server's events could not be verified).
"""

from __future__ import annotations

import asyncio
import functools
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench import params as bench_params
from bench.client import Client, TimelineWatcher, new_session
from bench.meter import Background, Meter
from bench.params import Params
from bench.progress import say
from bench.results import command, save_runs
from bench.runner import log_tails, parser_for, write_report
from bench.servers import Cluster, Server, cluster, sample
from bench.workloads import gather_limited, registered

JOIN_TIMEOUT_S = 1200.0
"""Longest wait for any step of a join (the join, the message, the full member list)."""
MEMBERS_POLL_S = 0.2
TMPFS = Path("/dev/shm")


async def build_room(session: Any, origin: Server, params: Params) -> tuple[Client, str]:
    """The room on A with ``params.members`` members besides its creator."""
    creator = await registered(session, origin, "creator")
    room_id = await creator.create_room(name=f"{params.members} members",
                                        room_version=params.room_version)
    password = None if origin.kind == "rocketnode" else "bench-password"

    async def member(number: int) -> None:
        client = Client(session, origin.client_url)
        await client.register(f"member{number}", password)
        await client.join(room_id)

    await gather_limited([functools.partial(member, n) for n in range(params.members)],
                         params.build_concurrency, f"build: {params.members} members join A")
    return creator, room_id


async def wait_for_members(client: Client, room_id: str, expected: int,
                           deadline: float) -> float:
    """Poll B's joined_members until it lists ``expected``; the moment it did (or NaN)."""
    while (left := deadline - time.perf_counter()) > 0:
        try:
            if await client.joined_members(room_id, timeout_s=left) >= expected:
                return time.perf_counter()
        except TimeoutError:
            break
        await asyncio.sleep(MEMBERS_POLL_S)
    return float("nan")


async def one_join(session: Any, servers: Cluster, creator: Client, watcher: TimelineWatcher,
                   room_id: str, params: Params, run_number: int) -> dict[str, Any]:
    origin = servers[0]
    joining = await servers.add(f"B{run_number}")
    info = {"startup_s": {joining.label: joining.startup_s},
            "idle_rss_mib": {joining.label: sample(joining).rss_mib}}
    try:
        return await _timed_join(session, servers, joining, creator, watcher, room_id,
                                 params, run_number, info)
    except Exception as error:
        error.add_note("".join(f"\n--- log of {label} ---\n{tail}"
                               for label, tail in log_tails([origin, joining]).items()))
        raise


async def _timed_join(session: Any, servers: Cluster, joining: Server, creator: Client,
                      watcher: TimelineWatcher, room_id: str, params: Params, run_number: int,
                      info: dict[str, Any]) -> dict[str, Any]:
    origin = servers[0]
    joiner = await registered(session, joining, f"joiner{run_number}")
    meter = Meter([origin, joining])
    background = Background([origin, joining])
    background.begin()
    body = f"joiner {run_number} says hello"
    with meter.phase("join") as record:
        started = time.perf_counter()
        await joiner.join(room_id, via=[origin.server_name], timeout_s=JOIN_TIMEOUT_S)
        joined = time.perf_counter()
        await joiner.send_text(room_id, body, timeout_s=JOIN_TIMEOUT_S)
        sent = time.perf_counter()
        missing = await watcher.wait_for([body], sent + JOIN_TIMEOUT_S)
        seen = watcher.arrivals.get(body, float("nan"))
        everyone = await wait_for_members(joiner, room_id, params.members + 2,
                                          time.perf_counter() + JOIN_TIMEOUT_S)
    info["cpu"] = background.end()
    metrics = {
        "join_s": joined - started,
        "send_after_join_s": sent - joined,
        "first_message_s": seen - started,
        "members_s": everyone - started,
        "message_missing": missing,
        "joining_cpu_s": record.cpu_s[joining.label],
        "resident_cpu_s": record.cpu_s[origin.label],
        "joining_peak_rss_mib": record.peak_rss_mib[joining.label],
    }
    say(f"  join {run_number + 1}: returned after {metrics['join_s']:.2f} s, message seen on "
        f"A after {metrics['first_message_s']:.2f} s, all members on B after "
        f"{metrics['members_s']:.2f} s")
    await joiner.leave(room_id)
    deadline = time.perf_counter() + 120
    while (time.perf_counter() < deadline
           and await creator.membership(room_id, joiner.user_id) != "leave"):
        await asyncio.sleep(0.2)
    return {"metrics": metrics, "phases": meter.as_json(), "servers": info}


async def join_implementation(kind: str, params: Params) -> list[dict[str, Any]]:
    """Build the room once, then ``params.runs`` joins from fresh servers."""
    records: list[dict[str, Any]] = []
    scratch = (Path(tempfile.mkdtemp(prefix="rocketnode-bench-build-", dir=TMPFS))
               if params.build_on_tmpfs and TMPFS.is_dir() else None)
    async with new_session() as session, cluster(
            kind, 0, spare=params.runs + 1,
            synchronous=params.rocketnode_synchronous) as servers:
        try:
            origin = await servers.add("A", None if scratch is None else scratch / "A")
            say(f"{kind}: building a room with {params.members} members on A"
                f"{' (data on tmpfs)' if scratch else ''}")
            started = time.perf_counter()
            creator, room_id = await build_room(session, origin, params)
            build_s = time.perf_counter() - started
            if scratch is not None:
                restart_s = await servers.move_to_disk(origin)
                say(f"{kind}: A's data moved to disk; restarted in {restart_s:.1f} s")
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
        members = await creator.joined_members(room_id)
        say(f"{kind}: room built in {build_s:.1f} s ({members} joined members on A, "
            f"RSS {sample(origin).rss_mib:.0f} MiB)")
        async with TimelineWatcher(creator, room_id) as watcher:
            for run_number in range(params.runs):
                say(f"== join {params.members}: {kind}, run {run_number + 1} of {params.runs}")
                try:
                    record = await one_join(session, servers, creator, watcher, room_id,
                                            params, run_number)
                except Exception as error:
                    traceback.print_exc()
                    record = {"error": repr(error),
                              "notes": [str(note) for note in getattr(error, "__notes__", [])]}
                record["build"] = {"build_s": build_s, "members_on_a": members,
                                   "resident_rss_mib": sample(origin).rss_mib}
                records.append({"implementation": kind, "run": run_number, **record})
    return records


def main(argv: list[str]) -> int:
    parser = parser_for("join", __doc__)
    parser.add_argument("--synapse-runs", type=int, metavar="N",
                        help="runs for Synapse only (default: --runs), for the slow big room")
    args = parser.parse_args(argv)
    params = bench_params.from_arguments(args)
    workload = f"join_{params.members}"
    failures = 0
    for kind in params.implementations:
        runs = args.synapse_runs if kind == "synapse" and args.synapse_runs else params.runs
        kind_params = bench_params.replace(params, runs=runs)
        try:
            records = asyncio.run(join_implementation(kind, kind_params))
        except Exception as error:
            traceback.print_exc()
            records = [{"implementation": kind, "run": 0, "error": repr(error)}]
        failures += sum("error" in record for record in records)
        save_runs(workload, kind, records, bench_params.describe(kind_params),
                  command("join", argv))
    write_report(params.quick)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
