"""The outbound sender: one durable queue and one transaction in flight per destination.

PDUs are queued in the database in the same transaction that stores them (see
``storage.sqlite.federation.queue_outbound``); EDUs (typing, receipts) wait in memory. Each
destination has a task that sends everything waiting — at most 50 PDUs and 100 EDUs per
transaction — as soon as the previous transaction is answered, so batches grow with load.

A failing destination backs off exponentially up to a cap; success or any request from that
server resets it. After an outage with a long backlog, the destination gets the newest PDU of
each room and pulls the gap itself with ``get_missing_events`` (catch-up).

Hot path: each destination's health lives in memory (written through to the database), and
each queue keeps in memory the PDUs stored since it was last read from the database; once a
read has shown the whole queue, transactions are built from memory alone and the database is
only told what was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from rocketnode.core.errors import MatrixError, RemoteServerError
from rocketnode.federation.client import FederationClient, path_segment
from rocketnode.services.clock import Clock
from rocketnode.storage.ports import EventStore, FederationStore
from rocketnode.storage.records import DestinationState, QueuedPdu, StoredEvent

logger = logging.getLogger(__name__)

MAX_PDUS_PER_TXN = 50
MAX_EDUS_PER_TXN = 100
CATCH_UP_THRESHOLD = 200
"""A failing destination with more queued PDUs than this is caught up (newest per room)."""
MAX_PENDING_EDUS = 5000
FORGET_SENT_AFTER_S = 1.0
"""Sent PDUs leave the database queue in one write at most this long after being sent (a crash
in between only means they are sent again; receivers take each event once)."""
MAX_MEMORY_QUEUE = 1000
"""Beyond this many PDUs waiting in memory for one destination, the queue is read from the
database again instead (a long outage must not hold the backlog in memory)."""


@dataclass(frozen=True, slots=True)
class Backoff:
    initial_ms: int = 1000
    maximum_ms: int = 5 * 60 * 1000


@dataclass(slots=True)
class _Queue:
    destination: str
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    edus: list[dict[str, Any]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    pdus: dict[int, StoredEvent] = field(default_factory=dict)
    """PDUs queued for this destination, by stream ordering (a superset of none, some or
    all of the database queue, see ``complete``)."""
    complete: bool = False
    """Whether ``pdus`` holds every PDU of the database queue."""
    sent_up_to: int | None = None
    """PDUs up to this stream ordering were sent but are still in the database queue."""
    forgotten_at: float = 0.0
    greet: bool = False
    """Send one transaction even if empty: tells a peer we are back (servers that back off
    from us retry at once when we contact them)."""

    def remember(self, event: StoredEvent) -> None:
        if len(self.pdus) >= MAX_MEMORY_QUEUE:
            self.pdus.clear()
            self.complete = False
        self.pdus[event.stream_ordering] = event


def _put_back(queue: _Queue, edus: list[dict[str, Any]]) -> None:
    """Return the EDUs of a failed transaction to the front of the queue (oldest dropped
    beyond the bound)."""
    queue.edus[:0] = edus
    del queue.edus[:-MAX_PENDING_EDUS]


class FederationSender:
    def __init__(
        self, server_name: str, client: FederationClient, store: FederationStore,
        events: EventStore, clock: Clock, backoff: Backoff = Backoff(),
    ) -> None:
        self._server_name = server_name
        self._client = client
        self._store = store
        self._events = events
        self._clock = clock
        self._backoff = backoff
        self._queues: dict[str, _Queue] = {}
        self._health: dict[str, DestinationState] = {}
        """Every destination's health, loaded at start and written through."""
        self._txn_ids = itertools.count()
        self._txn_prefix = str(clock.now_ms())
        self._running = False
        self.transactions_sent = 0

    # -- lifecycle (app.py) ------------------------------------------------------------------

    async def start(self, peers: Iterable[str] = ()) -> None:
        """Start sending; ``peers`` (the servers we share rooms with) are greeted once, so
        that their own queues for us, backed off while we were away, resume at once."""
        self._health = {s.destination: s for s in await self._store.all_destinations()}
        self._running = True
        for peer in peers:
            if peer != self._server_name:
                self._queues.setdefault(peer, _Queue(peer)).greet = True
        waiting = {*self._queues, *await self._store.destinations_with_queue()}
        for destination in sorted(waiting):  # EDUs may have been queued before start
            self._queue(destination).wake.set()

    async def stop(self) -> None:
        self._running = False
        tasks = [q.task for q in self._queues.values() if q.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for queue in self._queues.values():
            with contextlib.suppress(Exception):
                await self._forget_sent_in_database(queue)
        self._queues.clear()

    def _queue(self, destination: str) -> _Queue:
        queue = self._queues.get(destination)
        if queue is None:
            queue = self._queues[destination] = _Queue(destination)
        if self._running and (queue.task is None or queue.task.done()):
            queue.task = asyncio.create_task(self._run(queue), name=f"send:{destination}")
        return queue

    # -- what to send ------------------------------------------------------------------------

    def pdus_queued(self, destinations: Iterable[str], event: StoredEvent | None = None) -> None:
        """A PDU was queued in the database for these destinations (called after commit)."""
        for destination in destinations:
            if destination != self._server_name:
                queue = self._queue(destination)
                if event is not None:
                    queue.remember(event)
                else:  # something unseen was queued: read the database queue again
                    queue.complete = False
                queue.wake.set()

    def send_edu(self, destination: str, edu_type: str, content: dict[str, Any]) -> None:
        if destination == self._server_name:
            return
        queue = self._queue(destination)
        if len(queue.edus) >= MAX_PENDING_EDUS:
            queue.edus.pop(0)
        queue.edus.append({"edu_type": edu_type, "content": content})
        queue.wake.set()

    async def destination_came_back(self, destination: str) -> None:
        """Any request from ``destination`` resets its backoff and retries at once (still
        as a failing destination, so that a long backlog is caught up)."""
        state = self._health.get(destination)
        if state is not None and (state.retry_after_ts or state.retry_interval_ms):
            await self._set_health(replace(state, retry_after_ts=0, retry_interval_ms=0))
        if destination in self._queues or state is not None:
            self._queue(destination).wake.set()

    # -- the per-destination loop ------------------------------------------------------------

    async def _run(self, queue: _Queue) -> None:
        while self._running:
            await self._wait_until_due(queue)
            queue.wake.clear()
            try:
                sent_something = await self._send_one(queue)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Sender for %s failed unexpectedly", queue.destination)
                sent_something = False
                await self._record_failure(queue.destination, "internal error")
            if not sent_something:
                await self._idle(queue)

    async def _idle(self, queue: _Queue) -> None:
        """Wait for something to send; meanwhile drop what was sent from the database."""
        while queue.sent_up_to is not None and not queue.wake.is_set():
            delay = FORGET_SENT_AFTER_S - (self._clock.monotonic() - queue.forgotten_at)
            if delay <= 0:
                await self._forget_sent_in_database(queue)
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(queue.wake.wait(), delay)
        await queue.wake.wait()

    async def _forget_sent_in_database(self, queue: _Queue) -> None:
        if queue.sent_up_to is not None:
            top, queue.sent_up_to = queue.sent_up_to, None
            await self._store.dequeue_pdus(queue.destination, top, None)
        queue.forgotten_at = self._clock.monotonic()

    async def _wait_until_due(self, queue: _Queue) -> None:
        while True:
            queue.wake.clear()
            state = self._health.get(queue.destination)
            if state is None or state.retry_after_ts <= self._clock.now_ms():
                return
            delay = (state.retry_after_ts - self._clock.now_ms()) / 1000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(queue.wake.wait(), timeout=max(delay, 0.01))

    async def _send_one(self, queue: _Queue) -> bool:
        """Send one transaction; True if there was something to send (sent or not)."""
        destination = queue.destination
        queued, catch_up = await self._next_pdus(queue)
        if not queued and not queue.edus and not queue.greet:
            return False
        queue.greet = False
        pdus = [{k: v for k, v in e.pdu.data.items() if k != "unsigned"} for e in queued]
        edus = queue.edus[:MAX_EDUS_PER_TXN]
        del queue.edus[:len(edus)]  # new EDUs may arrive (and overflow) while in flight
        try:
            await self._put_transaction(destination, pdus, edus)
        except (RemoteServerError, MatrixError) as exc:
            _put_back(queue, edus)
            await self._record_failure(destination, exc.message)
            return True
        except BaseException:
            _put_back(queue, edus)
            raise
        if queued:
            top = max(e.stream_ordering for e in queued)
            rooms = sorted({e.pdu.room_id for e in queued}) if catch_up else None
            self._forget_sent(queue, top, rooms)
            if catch_up:
                await self._store.dequeue_pdus(destination, top, rooms)
            else:
                queue.sent_up_to = max(top, queue.sent_up_to or top)
                if self._clock.monotonic() - queue.forgotten_at >= FORGET_SENT_AFTER_S:
                    await self._forget_sent_in_database(queue)
        await self._record_success(destination)
        return True

    async def _next_pdus(self, queue: _Queue) -> tuple[list[StoredEvent], bool]:
        """The PDUs of the next transaction, oldest first, and whether it is a catch-up."""
        state = self._health.get(queue.destination)
        failing = state is not None and state.failing_since_ts is not None
        if queue.complete and not failing:
            return [queue.pdus[s] for s in sorted(queue.pdus)[:MAX_PDUS_PER_TXN]], False
        await self._forget_sent_in_database(queue)  # the database must not offer them again
        queued = await self._store.queued_pdus(queue.destination, CATCH_UP_THRESHOLD + 1)
        if failing and len(queued) > CATCH_UP_THRESHOLD:
            newest = await self._store.newest_queued_per_room(queue.destination)
            return await self._events_of(newest[:MAX_PDUS_PER_TXN]), True
        events = await self._events_of(queued)
        if len(queued) <= CATCH_UP_THRESHOLD:  # the whole queue: memory can take over
            queue.pdus.update((e.stream_ordering, e) for e in events)
            queue.complete = len(queue.pdus) < MAX_MEMORY_QUEUE
        return events[:MAX_PDUS_PER_TXN], False

    async def _events_of(self, queued: list[QueuedPdu]) -> list[StoredEvent]:
        found = await self._events.get_events(q.event_id for q in queued)
        events = [replace(found[q.event_id], stream_ordering=q.stream_ordering)
                  for q in queued if q.event_id in found]
        return sorted(events, key=lambda e: e.stream_ordering)

    @staticmethod
    def _forget_sent(queue: _Queue, top: int, rooms: list[str] | None) -> None:
        queue.pdus = {
            stream: event for stream, event in queue.pdus.items()
            if stream > top or (rooms is not None and event.pdu.room_id not in rooms)
        }

    async def _put_transaction(self, destination: str, pdus: list[dict[str, Any]],
                               edus: list[dict[str, Any]]) -> None:
        txn_id = f"{self._txn_prefix}_{next(self._txn_ids)}"
        body = {"origin": self._server_name, "origin_server_ts": self._clock.now_ms(),
                "pdus": pdus, "edus": edus}
        answer = await self._client.put(
            destination, f"/_matrix/federation/v1/send/{path_segment(txn_id)}", body)
        self.transactions_sent += 1
        for event_id, result in (answer.get("pdus") or {}).items() if isinstance(
                answer, dict) else ():
            if isinstance(result, dict) and result.get("error"):
                logger.info("%s refused %s: %s", destination, event_id, result["error"])

    # -- destination health ------------------------------------------------------------------

    async def _set_health(self, state: DestinationState) -> None:
        self._health[state.destination] = state
        await self._store.set_destination(state)

    async def _record_success(self, destination: str) -> None:
        state = self._health.get(destination) or DestinationState(destination)
        if (state.last_success_ts is not None and not state.failing_since_ts
                and not state.retry_after_ts and self._clock.now_ms() - state.last_success_ts
                < 10_000):
            return
        await self._set_health(replace(
            state, retry_after_ts=0, retry_interval_ms=0, failing_since_ts=None,
            last_success_ts=self._clock.now_ms()))

    async def _record_failure(self, destination: str, error: str) -> None:
        now = self._clock.now_ms()
        state = self._health.get(destination) or DestinationState(destination)
        interval = min(max(state.retry_interval_ms * 2, self._backoff.initial_ms),
                       self._backoff.maximum_ms)
        logger.info("Sending to %s failed (%s); retrying in %d ms", destination, error, interval)
        await self._set_health(replace(
            state, retry_after_ts=now + interval, retry_interval_ms=interval,
            failing_since_ts=state.failing_since_ts or now, last_error=error[:500],
            last_error_ts=now))

    async def status(self) -> list[dict[str, Any]]:
        """Every destination's health and queue depth (the admin API). PDUs already sent
        leave the database queue first, so a depth counts only PDUs still waiting."""
        for queue in list(self._queues.values()):
            if queue.sent_up_to is not None:
                await self._forget_sent_in_database(queue)
        now = self._clock.now_ms()
        depths = await self._store.queue_depths()
        states = {s.destination: s for s in await self._store.all_destinations()}
        states.update(self._health)
        for destination in depths:
            states.setdefault(destination, DestinationState(destination))
        report = []
        for destination, state in sorted(states.items()):
            if state.retry_after_ts > now:
                health = "backing_off"
            elif state.failing_since_ts is not None:
                health = "failing"
            else:
                health = "ok"
            report.append({
                "destination": destination, "state": health,
                "retry_after_ts": state.retry_after_ts or None,
                "failing_since_ts": state.failing_since_ts,
                "queue_depth": depths.get(destination, 0),
                "pending_edus": len(self._queues[destination].edus)
                if destination in self._queues else 0,
                "last_success_ts": state.last_success_ts, "last_error": state.last_error,
                "last_error_ts": state.last_error_ts,
            })
        return report
