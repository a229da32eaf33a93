"""``python -m bench five``: a room on five servers of one implementation (five RocketNodes,
five Synapses). A user on A creates the room, one user on each of B–E joins it through A and
syncs; A sends ``--five-messages`` messages at ``five_rate``/s (open loop). Figures: latency
per delivery, and until all four other servers' users have a message (that message's slowest
delivery); A's CPU per 1,000 messages (it sends each to four servers).
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

from bench import params as bench_params
from bench.client import TimelineWatcher, new_session
from bench.meter import Background, Meter
from bench.params import Params
from bench.progress import Progress, say
from bench.runner import final_measure, parser_for, run_part, settle_and_measure
from bench.servers import cluster
from bench.traffic import send_paced
from bench.workloads import registered, spread_figures, warm_up

SERVERS = 5


async def five_session(kind: str, params: Params, run_number: int) -> dict[str, dict[str, Any]]:
    async with new_session() as session, cluster(
            kind, SERVERS, synchronous=params.rocketnode_synchronous) as servers:
        info = await settle_and_measure(servers, params)
        info["session"] = f"five-{kind}-{run_number}"
        origin, others = servers[0], servers.servers[1:]
        meter = Meter(servers.servers)
        background = Background(servers.servers)
        background.begin()
        sender = await registered(session, origin, "sender")
        room_id = await sender.create_room(name="five", room_version=params.room_version)
        members = [await registered(session, server, "member") for server in others]
        for member in members:
            await member.join(room_id, via=[origin.server_name])
        metrics: dict[str, float] = {}
        samples: dict[str, Any] = {}
        async with contextlib.AsyncExitStack() as stack:
            watchers = [await stack.enter_async_context(TimelineWatcher(m, room_id))
                        for m in members]
            await warm_up(sender, room_id, watchers, "five")
            say(f"{kind} run {run_number + 1}: five servers")
            with meter.phase("five") as record:
                with Progress(f"five servers, {params.five_rate:g}/s",
                              params.five_messages) as bar:
                    log = await send_paced(sender, room_id, "five", params.five_messages,
                                           params.five_rate, params.max_in_flight,
                                           bar.advance)
                missing = 0
                for watcher in watchers:
                    missing += await watcher.wait_for(
                        log.sent, log.last_done + params.grace_s, params.idle_s)
                record.messages = len(log.sent)
        metrics.update(spread_figures("five", log, watchers, samples))
        metrics["five_missing"] = missing
        metrics["five_cpu_sender_s_per_1000"] = record.cpu_per_1000(origin.label)
        receiving = [record.cpu_per_1000(server.label) for server in others]
        metrics["five_cpu_receiver_s_per_1000"] = sum(receiving) / len(receiving)
        info["cpu"] = background.end()
        final_measure(servers.servers, info)
        return {"five": {"metrics": metrics, "samples": samples,
                         "phases": meter.as_json(), "servers": info}}


def main(argv: list[str]) -> int:
    args = parser_for("five", __doc__).parse_args(argv)
    return run_part("five", argv, ["five"], five_session, bench_params.from_arguments(args))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
