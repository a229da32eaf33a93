"""Sending messages the two ways the workloads need, and reading off their delivery.

- :func:`send_paced` is open-loop: message *i* is due at ``start + i / rate`` whatever the server
  does, and its latency counts from that due time (a slow server cannot slow the clock that
  measures it). At most ``max_in_flight`` requests are outstanding; the rest queue client-side.
- :func:`send_burst` is closed-loop: ``in_flight`` senders each send their next message as soon
  as the previous one is answered (``in_flight=1``: one client sending as fast as it can).

Every message body is unique (``"<tag> #<n>"``), which is how arrivals are matched to sends.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import aiohttp

from bench.client import ApiError, Client

Tick = Callable[[int], None]


def _nothing(count: int) -> None:
    return None


@dataclass
class SendLog:
    """When each message was due, started and answered (``perf_counter``); failed sends."""

    due: dict[str, float] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)
    done: dict[str, float] = field(default_factory=dict)
    round_trips: dict[str, float] = field(default_factory=dict)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    @property
    def sent(self) -> list[str]:
        """Bodies of the messages the server accepted."""
        return list(self.done)

    @property
    def first_start(self) -> float:
        return min(self.started.values())

    @property
    def last_done(self) -> float:
        return max(self.done.values(), default=self.first_start)

    def achieved_rate(self) -> float:
        """Sends started per second, first to last (the offered load actually delivered)."""
        if len(self.started) < 2:
            return float("nan")
        span = max(self.started.values()) - self.first_start
        return (len(self.started) - 1) / span if span > 0 else float("inf")

    def completion_rate(self) -> float:
        """Sends answered per second, from the first start to the last answer."""
        span = self.last_done - self.first_start
        return len(self.done) / span if span > 0 else float("nan")


async def _send_one(client: Client, room_id: str, body: str, log: SendLog) -> None:
    started = time.perf_counter()
    log.started[body] = started
    try:
        await client.send_text(room_id, body)
    except (ApiError, aiohttp.ClientError, OSError, TimeoutError) as error:
        log.errors += 1
        if len(log.error_samples) < 5:
            log.error_samples.append(str(error) or type(error).__name__)
        return
    done = time.perf_counter()
    log.done[body] = done
    log.round_trips[body] = done - started


async def send_paced(client: Client, room_id: str, tag: str, count: int, rate: float,
                     max_in_flight: int = 256, tick: Tick = _nothing) -> SendLog:
    log = SendLog()
    slots = asyncio.Semaphore(max_in_flight)

    async def send(body: str) -> None:
        async with slots:
            await _send_one(client, room_id, body, log)
        tick(1)

    start = time.perf_counter() + 0.01
    async with asyncio.TaskGroup() as group:
        for number in range(count):
            due = start + number / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            body = f"{tag} #{number}"
            log.due[body] = due
            group.create_task(send(body))
    return log


async def send_burst(client: Client, room_id: str, tag: str, count: int, in_flight: int = 1,
                     tick: Tick = _nothing) -> SendLog:
    log = SendLog()
    numbers = itertools.count()

    async def sender() -> None:
        while (number := next(numbers)) < count:
            body = f"{tag} #{number}"
            log.due[body] = time.perf_counter()
            await _send_one(client, room_id, body, log)
            tick(1)

    async with asyncio.TaskGroup() as group:
        for _ in range(in_flight):
            group.create_task(sender())
    return log


def latencies(log: SendLog, arrivals: Mapping[str, float]) -> list[float]:
    """Seconds from each accepted message's due time to its arrival, for those that arrived."""
    return [arrivals[body] - log.due[body] for body in log.sent if body in arrivals]


def last_arrival(log: SendLog, arrivals: Mapping[str, float]) -> float:
    return max((arrivals[body] for body in log.sent if body in arrivals), default=float("nan"))
