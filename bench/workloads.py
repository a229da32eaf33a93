"""The workloads on two servers, A (sending) and B (receiving), identical for both
implementations. Each adds its figures to ``pair.metrics`` (flat names, see bench/report.py)
and its latency samples to ``pair.samples`` (for the plots).

- ``paced``: 4, 10, 30 messages/s from A; latency until each is in B's /sync.
- ``fanout``: a second room with 20 users on B, all syncing; 200 messages at 10/s from A;
  latency per delivery, and until all 20 have a message.
- ``burst``: 200 and 1,000 messages as fast as one client can (1 request in flight), then with
  16 in flight; first send → last arrival at B, and how many never arrive.
- ``local``: on A alone: PUT /send round trip and local echo in the sender's own /sync
  (sequential), and messages/s with 1 and 16 requests in flight.
- ``sustained``: offered rate stepped up (15, 30, 60, ... msg/s) until B's p95 passes 1 s
  (a missing message counts as infinitely late) or the offered rate cannot be kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.client import Client, TimelineWatcher
from bench.meter import Meter
from bench.params import Params
from bench.progress import Progress, say
from bench.servers import Server
from bench.stats import latency_summary, percentile, with_missing
from bench.traffic import SendLog, last_arrival, latencies, send_burst, send_paced

WARM_UP_MESSAGES = 5
WARM_UP_TIMEOUT_S = 120.0


@dataclass
class Pair:
    params: Params
    session: aiohttp.ClientSession
    sending: Server
    receiving: Server
    meter: Meter
    sender: Client
    room_id: str
    watcher: TimelineWatcher
    metrics: dict[str, float] = field(default_factory=dict)
    samples: dict[str, Any] = field(default_factory=dict)


async def registered(session: aiohttp.ClientSession, server: Server, localpart: str,
                     password: str | None = "bench-password") -> Client:
    client = Client(session, server.client_url)
    await client.register(localpart, password)
    return client


async def gather_limited(jobs: Sequence[Callable[[], Awaitable[Any]]], limit: int,
                         label: str = "") -> list[Any]:
    """Run ``jobs`` with at most ``limit`` at a time (with a progress bar if labelled)."""
    results: list[Any] = [None] * len(jobs)
    slots = asyncio.Semaphore(limit)
    bar = Progress(label, len(jobs)) if label else None

    async def run(index: int) -> None:
        async with slots:
            results[index] = await jobs[index]()
        if bar is not None:
            bar.advance()

    async with asyncio.TaskGroup() as group:
        for index in range(len(jobs)):
            group.create_task(run(index))
    if bar is not None:
        bar.close()
    return results


async def warm_up(sender: Client, room_id: str, watchers: Sequence[TimelineWatcher],
                  tag: str) -> None:
    """A few messages that every watcher must see (federation connections, keys and caches
    are then in place before anything is timed)."""
    log = SendLog()
    for number in range(WARM_UP_MESSAGES):
        body = f"{tag} warm-up #{number}"
        await sender.send_text(room_id, body)
        log.done[body] = time.perf_counter()
    deadline = time.perf_counter() + WARM_UP_TIMEOUT_S
    for watcher in watchers:
        if await watcher.wait_for(log.sent, deadline):
            raise RuntimeError(f"warm-up messages did not reach {watcher.client.user_id}")


@contextlib.asynccontextmanager
async def pair_room(params: Params, session: aiohttp.ClientSession, sending: Server,
                    receiving: Server, meter: Meter) -> AsyncIterator[Pair]:
    """A room created on A, joined by one user on B who syncs it from then on."""
    sender = await registered(session, sending, "sender")
    receiver = await registered(session, receiving, "receiver")
    room_id = await sender.create_room(name="bench", room_version=params.room_version)
    await receiver.join(room_id, via=[sending.server_name])
    async with TimelineWatcher(receiver, room_id) as watcher:
        await warm_up(sender, room_id, [watcher], "pair")
        yield Pair(params, session, sending, receiving, meter, sender, room_id, watcher)


def _ms(values: Sequence[float]) -> list[float]:
    return [round(value * 1000, 3) for value in values]


async def _delivered(pair: Pair, watcher: TimelineWatcher, log: SendLog) -> int:
    """Wait for ``log``'s messages at ``watcher``; how many never came."""
    params = pair.params
    return await watcher.wait_for(log.sent, log.last_done + params.grace_s, params.idle_s)


def _cpu_figures(pair: Pair, phase: str, prefix: str) -> None:
    record = pair.meter.phases[phase]
    pair.metrics[f"{prefix}_cpu_sender_s_per_1000"] = record.cpu_per_1000(pair.sending.label)
    pair.metrics[f"{prefix}_cpu_receiver_s_per_1000"] = record.cpu_per_1000(
        pair.receiving.label)


async def paced(pair: Pair) -> None:
    params = pair.params
    with pair.meter.phase("paced") as record:
        for rate in params.paced_rates:
            count = max(2, round(rate * params.paced_seconds))
            with Progress(f"paced {rate}/s", count) as bar:
                log = await send_paced(pair.sender, pair.room_id, f"paced{rate}", count, rate,
                                       params.max_in_flight, bar.advance)
            missing = await _delivered(pair, pair.watcher, log)
            found = latencies(log, pair.watcher.arrivals)
            pair.metrics.update(latency_summary(found, f"paced_{rate}"))
            pair.metrics[f"paced_{rate}_missing"] = missing
            pair.metrics[f"paced_{rate}_send_errors"] = log.errors
            pair.samples[f"paced_{rate}_ms"] = _ms(found)
            record.messages += len(log.sent)
    _cpu_figures(pair, "paced", "paced")


async def fanout(pair: Pair) -> None:
    params = pair.params
    count = params.fanout_receivers
    users = await gather_limited(
        [functools.partial(registered, pair.session, pair.receiving, f"fan{n}")
         for n in range(count)], 4)
    room_id = await pair.sender.create_room(name="fan-out", room_version=params.room_version)
    await gather_limited(
        [functools.partial(u.join, room_id, via=[pair.sending.server_name]) for u in users],
        4, f"fanout: {count} users join")
    async with contextlib.AsyncExitStack() as stack:
        watchers = [await stack.enter_async_context(TimelineWatcher(u, room_id))
                    for u in users]
        await warm_up(pair.sender, room_id, watchers, "fanout")
        with pair.meter.phase("fanout") as record:
            with Progress(f"fanout {params.fanout_rate:g}/s to {count}",
                          params.fanout_messages) as bar:
                log = await send_paced(pair.sender, room_id, "fanout", params.fanout_messages,
                                       params.fanout_rate, params.max_in_flight, bar.advance)
            missing = sum([await _delivered(pair, w, log) for w in watchers])
            record.messages = len(log.sent)
    pair.metrics.update(spread_figures("fanout", log, watchers, pair.samples))
    pair.metrics["fanout_missing"] = missing
    _cpu_figures(pair, "fanout", "fanout")


def spread_figures(prefix: str, log: SendLog, watchers: Sequence[TimelineWatcher],
                   samples: dict[str, Any]) -> dict[str, float]:
    """Latency per delivery (each message at each watcher) and until every watcher has a
    message (``{prefix}_all_...``)."""
    deliveries = [value for w in watchers for value in latencies(log, w.arrivals)]
    everyone = [max(w.arrivals[body] for w in watchers) - log.due[body] for body in log.sent
                if all(body in w.arrivals for w in watchers)]
    samples[f"{prefix}_ms"] = _ms(deliveries)
    samples[f"{prefix}_all_ms"] = _ms(everyone)
    return {**latency_summary(deliveries, prefix),
            **latency_summary(everyone, f"{prefix}_all")}


async def burst(pair: Pair) -> None:
    params = pair.params
    for in_flight in params.burst_in_flight:
        for size in params.burst_sizes:
            name = f"burst_{size}x{in_flight}"
            with pair.meter.phase(name) as record:
                with Progress(f"burst {size}, {in_flight} in flight", size) as bar:
                    log = await send_burst(pair.sender, pair.room_id, name, size, in_flight,
                                           bar.advance)
                missing = await _delivered(pair, pair.watcher, log)
                record.messages = len(log.sent)
            arrived = len(log.sent) - missing
            span = last_arrival(log, pair.watcher.arrivals) - log.first_start
            pair.metrics[f"{name}_msg_s"] = arrived / span if arrived and span > 0 else 0.0
            pair.metrics[f"{name}_send_msg_s"] = log.completion_rate()
            pair.metrics[f"{name}_missing"] = missing
            pair.metrics[f"{name}_send_errors"] = log.errors
            pair.samples[f"{name}_ms"] = _ms(latencies(log, pair.watcher.arrivals))
            _cpu_figures(pair, name, name)
            if missing:
                say(f"  {name}: {missing} of {len(log.sent)} never reached B's /sync "
                    f"(sync answers with limited=true so far: {pair.watcher.limited})")
            await asyncio.sleep(1.0)


async def local(pair: Pair) -> None:
    params = pair.params
    client = await registered(pair.session, pair.sending, "local")
    room_id = await client.create_room(name="local", preset="private_chat",
                                       room_version=params.room_version)
    async with TimelineWatcher(client, room_id) as watcher:
        await warm_up(client, room_id, [watcher], "local")
        with pair.meter.phase("local") as record:
            with Progress("local round trips", params.local_round_trips) as bar:
                log = await send_burst(client, room_id, "local-rtt", params.local_round_trips,
                                       1, bar.advance)
            pair.metrics["local_missing"] = await _delivered(pair, watcher, log)
            round_trips = list(log.round_trips.values())
            echoes = latencies(log, watcher.arrivals)
            pair.metrics.update({
                "local_send_p50_ms": percentile(round_trips, 50) * 1000,
                "local_send_p99_ms": percentile(round_trips, 99) * 1000,
                "local_echo_p50_ms": percentile(echoes, 50) * 1000,
                "local_echo_p99_ms": percentile(echoes, 99) * 1000,
            })
            pair.samples["local_send_ms"] = _ms(round_trips)
            pair.samples["local_echo_ms"] = _ms(echoes)
            record.messages = len(log.sent)
            for in_flight in (1, 16):
                with Progress(f"local, {in_flight} in flight", params.local_messages) as bar:
                    log = await send_burst(client, room_id, f"local{in_flight}",
                                           params.local_messages, in_flight, bar.advance)
                pair.metrics[f"local_{in_flight}_msg_s"] = log.completion_rate()
                pair.metrics["local_missing"] += await _delivered(pair, watcher, log)
                record.messages += len(log.sent)
    pair.metrics["local_cpu_s_per_1000"] = record.cpu_per_1000(pair.sending.label)


async def sustained(pair: Pair) -> None:
    params = pair.params
    steps: list[dict[str, Any]] = []
    best = 0.0
    with pair.meter.phase("sustained") as record:
        for rate in params.sustained_rates:
            count = max(10, round(rate * params.sustained_seconds))
            with Progress(f"sustained {rate}/s", count) as bar:
                log = await send_paced(pair.sender, pair.room_id, f"rate{rate}", count, rate,
                                       params.max_in_flight, bar.advance)
            missing = await _delivered(pair, pair.watcher, log)
            record.messages += len(log.sent)
            found = latencies(log, pair.watcher.arrivals)
            p95 = percentile(with_missing(found, missing + log.errors), 95) * 1000
            achieved = log.achieved_rate()
            reason = ""
            if p95 > params.sustained_p95_limit_ms:
                reason = "p95 over the limit"
            elif achieved < 0.9 * rate:
                reason = "offered rate not reached"
            steps.append({"rate": rate, "achieved": achieved, "missing": missing,
                          "errors": log.errors, "p50_ms": percentile(found, 50) * 1000,
                          "p95_ms": p95 if math.isfinite(p95) else None, "failed": reason})
            say(f"  sustained {rate}/s: achieved {achieved:.0f}/s, p95 "
                f"{p95:.0f} ms, {missing} missing{', ' + reason if reason else ''}")
            if reason:
                break
            best = rate
    pair.metrics["sustained_msg_s"] = best
    pair.metrics["sustained_capped"] = float(not steps[-1]["failed"])
    pair.samples["sustained_steps"] = steps
    _cpu_figures(pair, "sustained", "sustained")


PAIR_WORKLOADS: dict[str, Callable[[Pair], Awaitable[None]]] = {
    "paced": paced,
    "fanout": fanout,
    "burst": burst,
    "local": local,
    "sustained": sustained,
}
"""In the order the pair part runs them (the heaviest last)."""
