"""The outbound sender: one transaction in flight per destination, PDUs dequeued only once a
transaction is answered, exponential backoff, catch-up after an outage, the queue surviving a
restart, EDUs kept across failures. Real SQLite queue, scripted remote server, real time with
short backoffs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from rocketnode.core.errors import RemoteServerError
from rocketnode.federation import sender as sender_module
from rocketnode.federation.sender import (
    MAX_EDUS_PER_TXN,
    MAX_PDUS_PER_TXN,
    Backoff,
    FederationSender,
)
from rocketnode.services.clock import SystemClock
from rocketnode.storage.ports import Stores
from rocketnode.storage.records import DestinationState, StoredEvent
from tests.unit.federation.fakes import FakeFederationClient, Sent, sqlite_stores, wait_until
from tests.unit.storage.builders import SERVER, LinearRoom

DEST = "remote.test"
FAST = Backoff(initial_ms=40, maximum_ms=160)


class RemoteServer:
    """Answers ``PUT /send`` for one destination; can hold transactions or fail them."""

    def __init__(self) -> None:
        self.attempts: list[dict[str, Any]] = []
        self.received: list[dict[str, Any]] = []
        self.attempt_times: list[float] = []
        self.failing = False
        self.gate = asyncio.Event()
        self.gate.set()
        self.in_flight = 0
        self.max_in_flight = 0
        self.store: Any = None
        """If set, the sender's store: each attempt notes the retry interval it follows."""
        self.intervals: list[int] = []

    async def __call__(self, sent: Sent) -> Any:
        assert sent.method == "PUT" and sent.path.startswith("/_matrix/federation/v1/send/")
        if self.store is not None:
            state = await self.store.get_destination(DEST)
            self.intervals.append(state.retry_interval_ms if state else 0)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.attempts.append(sent.body)
        self.attempt_times.append(asyncio.get_running_loop().time())
        try:
            await self.gate.wait()
            if self.failing:
                raise RemoteServerError(DEST, "HTTP 502", 502)
            self.received.append(sent.body)
            return {"pdus": {}}
        finally:
            self.in_flight -= 1

    def bodies(self, transactions: list[dict[str, Any]] | None = None) -> list[list[str]]:
        """The message bodies of the PDUs of each transaction."""
        return [[p["content"]["body"] for p in t["pdus"]]
                for t in (self.received if transactions is None else transactions)]

    def edus(self) -> list[int]:
        return [e["content"]["n"] for t in self.received for e in t["edus"]]


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[Stores]:
    async with sqlite_stores(tmp_path) as opened:
        yield opened


@pytest.fixture
def remote() -> RemoteServer:
    return RemoteServer()


@pytest.fixture
def client(remote: RemoteServer) -> FakeFederationClient:
    client = FakeFederationClient(SERVER)
    client.handlers[DEST] = remote
    return client


def make_sender(client: FakeFederationClient, stores: Stores, backoff: Backoff = FAST
                ) -> FederationSender:
    return FederationSender(SERVER, client, stores.federation, stores.events,  # type: ignore[arg-type]
                            SystemClock(), backoff)


@pytest.fixture
async def sender(client: FakeFederationClient, stores: Stores
                 ) -> AsyncIterator[FederationSender]:
    sender = make_sender(client, stores)
    await sender.start()
    yield sender
    await sender.stop()


async def new_room(stores: Stores) -> LinearRoom:
    room = LinearRoom(stores)
    await room.start()
    return room


async def queue(room: LinearRoom, *bodies: str, destinations: tuple[str, ...] = (DEST,)
                ) -> list[StoredEvent]:
    """Store messages as the room service does, queued for ``destinations``."""
    stored = []
    for body in bodies:
        pdu = room.dag.message(body)
        result = await room.add(pdu, outbound_destinations=destinations)
        stored.append(StoredEvent(pdu, result.stream_ordering, 0))
    return stored


def names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(count)]


async def depth(stores: Stores, destination: str = DEST) -> int:
    return (await stores.federation.queue_depths()).get(destination, 0)


async def drained(stores: Stores) -> bool:
    return await depth(stores) == 0


async def healthy(sender: FederationSender) -> bool:
    report = {r["destination"]: r for r in await sender.status()}[DEST]
    return bool(report["state"] == "ok" and report["failing_since_ts"] is None)


# -- batching ------------------------------------------------------------------------------------

async def test_one_transaction_in_flight_batches_what_queued_meanwhile(
        sender: FederationSender, stores: Stores, remote: RemoteServer) -> None:
    room = await new_room(stores)
    remote.gate.clear()
    await queue(room, "first")
    sender.pdus_queued([DEST])
    await wait_until(lambda: _true(len(remote.attempts) == 1), what="first PUT")

    meanwhile = names("m", 30)
    for body in meanwhile:  # many wake-ups while the first PUT is pending
        await queue(room, body)
        sender.pdus_queued([DEST])
    for n in range(7):
        sender.send_edu(DEST, "m.typing", {"n": n})
    await asyncio.sleep(0.05)
    assert len(remote.attempts) == 1
    remote.gate.set()
    await wait_until(lambda: drained(stores), what="queue drained")
    await wait_until(lambda: _true(len(remote.received) == 2), what="second transaction")
    await asyncio.sleep(0.05)
    assert remote.bodies() == [["first"], meanwhile]
    assert remote.edus() == list(range(7))
    assert remote.max_in_flight == 1
    assert len(remote.received) == 2


async def test_transactions_hold_at_most_50_pdus_and_100_edus(
        sender: FederationSender, stores: Stores, remote: RemoteServer) -> None:
    room, other_room = await new_room(stores), await new_room(stores)
    remote.gate.clear()
    await queue(room, "first")
    sender.pdus_queued([DEST])
    await wait_until(lambda: _true(len(remote.attempts) == 1), what="first PUT")
    bodies = names("p", 120)
    for i, body in enumerate(bodies):
        await queue(room if i % 3 else other_room, body)
    sender.pdus_queued([DEST])
    for n in range(250):
        sender.send_edu(DEST, "m.receipt", {"n": n})
    remote.gate.set()
    await wait_until(lambda: drained(stores), what="queue drained")
    await wait_until(lambda: _true(remote.edus() == list(range(250))), what="EDUs sent")
    sizes = [(len(t["pdus"]), len(t["edus"])) for t in remote.received]
    assert sizes == [(1, 0), (50, 100), (50, 100), (20, 50)]
    assert [b for t in remote.bodies() for b in t] == ["first", *bodies]
    assert remote.max_in_flight == 1
    assert MAX_PDUS_PER_TXN == 50 and MAX_EDUS_PER_TXN == 100
    txn = remote.received[1]
    assert txn["origin"] == SERVER and isinstance(txn["origin_server_ts"], int)
    assert all("unsigned" not in p for t in remote.received for p in t["pdus"])


async def test_destinations_are_independent_and_we_never_send_to_ourselves(
        sender: FederationSender, stores: Stores, client: FakeFederationClient,
        remote: RemoteServer) -> None:
    other = RemoteServer()
    client.handlers["other.test"] = other
    room = await new_room(stores)
    remote.gate.clear()  # DEST hangs
    await queue(room, "a", destinations=(DEST, "other.test", SERVER))
    sender.pdus_queued([DEST, "other.test", SERVER])
    sender.send_edu(SERVER, "m.typing", {"n": 0})
    await wait_until(lambda: _true(len(other.received) == 1), what="other.test served")
    await wait_until(lambda: _true(len(remote.attempts) == 1), what="DEST attempted")
    assert other.bodies() == [["a"]]
    assert remote.received == []  # still hanging, without holding other.test up
    remote.gate.set()
    await wait_until(lambda: _true(len(remote.received) == 1), what="DEST served")
    assert {s.destination for s in client.sent} == {DEST, "other.test"}


# -- failures ------------------------------------------------------------------------------------

async def test_pdus_leave_the_queue_only_after_a_200(
        sender: FederationSender, stores: Stores, remote: RemoteServer) -> None:
    room = await new_room(stores)
    remote.failing = True
    await queue(room, "a", "b")
    sender.pdus_queued([DEST])
    await wait_until(lambda: _true(len(remote.attempts) >= 2), what="two attempts")
    assert await depth(stores) == 2
    assert remote.received == []
    remote.failing = False
    await wait_until(lambda: drained(stores), what="queue drained")
    assert remote.bodies() == [["a", "b"]]


async def test_backoff_doubles_up_to_the_cap_and_shows_in_status(
        sender: FederationSender, stores: Stores, remote: RemoteServer) -> None:
    room = await new_room(stores)
    remote.failing = True
    remote.store = stores.federation
    await queue(room, "a")
    sender.pdus_queued([DEST])
    await wait_until(lambda: _true(len(remote.attempts) >= 6), what="six attempts")
    assert remote.intervals[:6] == [0, 40, 80, 160, 160, 160]  # doubling, capped
    gaps = [b - a for a, b in zip(remote.attempt_times, remote.attempt_times[1:], strict=False)]
    assert gaps[0] >= 0.035 and gaps[1] >= 0.075 and min(gaps[2:5]) >= 0.15

    report = {r["destination"]: r for r in await sender.status()}[DEST]
    assert report["state"] in ("backing_off", "failing")
    assert report["queue_depth"] == 1
    assert report["last_error"] == f"{DEST}: HTTP 502"
    assert report["failing_since_ts"] is not None and report["last_success_ts"] is None

    remote.failing = False
    await wait_until(lambda: drained(stores), what="queue drained")
    await wait_until(lambda: healthy(sender), what="destination ok")
    report = {r["destination"]: r for r in await sender.status()}[DEST]
    assert report["queue_depth"] == 0
    assert report["failing_since_ts"] is None and report["retry_after_ts"] is None
    assert isinstance(report["last_success_ts"], int)


async def test_status_states(stores: Stores, client: FakeFederationClient) -> None:
    sender = make_sender(client, stores)  # not started: status only reads the store
    now = SystemClock().now_ms()
    await stores.federation.set_destination(DestinationState(
        "backing.test", retry_after_ts=now + 60_000, retry_interval_ms=1000,
        failing_since_ts=now - 5000, last_error="HTTP 500", last_error_ts=now - 5000))
    await stores.federation.set_destination(DestinationState(
        "failing.test", retry_after_ts=now - 1, retry_interval_ms=1000,
        failing_since_ts=now - 5000, last_error="refused"))
    await stores.federation.set_destination(DestinationState(
        "fine.test", last_success_ts=now - 10))
    room = await new_room(stores)
    await queue(room, "x", "y", destinations=("fine.test", "new.test"))
    sender.send_edu("new.test", "m.typing", {"n": 1})
    report = {r["destination"]: r for r in await sender.status()}
    assert {d: (r["state"], r["queue_depth"]) for d, r in report.items()} == {
        "backing.test": ("backing_off", 0), "failing.test": ("failing", 0),
        "fine.test": ("ok", 2), "new.test": ("ok", 2)}
    assert report["backing.test"]["retry_after_ts"] == now + 60_000
    assert report["backing.test"]["last_error"] == "HTTP 500"
    assert report["failing.test"]["last_error"] == "refused"
    assert report["fine.test"]["last_success_ts"] == now - 10
    assert report["new.test"]["pending_edus"] == 1


async def send_two_in_quick_succession(
        sender: FederationSender, stores: Stores, remote: RemoteServer) -> None:
    """Send "a", then "b" at once: "b" is sent but still in the database queue after."""
    room = await new_room(stores)
    [first] = await queue(room, "a")
    sender.pdus_queued([DEST], first)
    await wait_until(lambda: drained(stores), what="first forgotten at once")
    [second] = await queue(room, "b")
    sender.pdus_queued([DEST], second)
    await wait_until(lambda: _true(len(remote.received) == 2), what="second sent")


async def test_sent_pdus_leave_the_database_queue_in_deferred_writes(
        sender: FederationSender, stores: Stores, remote: RemoteServer) -> None:
    await send_two_in_quick_succession(sender, stores, remote)
    assert await depth(stores) == 1  # sent, and still listed for up to a second
    started = asyncio.get_running_loop().time()
    await wait_until(lambda: drained(stores), timeout_s=3, what="second forgotten")
    assert asyncio.get_running_loop().time() - started <= sender_module.FORGET_SENT_AFTER_S + 1
    assert remote.bodies() == [["a"], ["b"]]


async def test_status_counts_only_pdus_still_waiting(
        sender: FederationSender, stores: Stores, remote: RemoteServer) -> None:
    await send_two_in_quick_succession(sender, stores, remote)
    assert await depth(stores) == 1  # sent; the database forgets it later
    report = {r["destination"]: r for r in await sender.status()}[DEST]
    assert report["queue_depth"] == 0
    assert await depth(stores) == 0


async def test_peers_are_greeted_once_at_start(
        client: FakeFederationClient, stores: Stores, remote: RemoteServer) -> None:
    sender = make_sender(client, stores)
    await sender.start(peers=[DEST, SERVER])
    try:
        await wait_until(lambda: _true(len(remote.received) == 1), what="greeting")
        assert remote.received[0]["pdus"] == [] and remote.received[0]["edus"] == []
        await asyncio.sleep(0.1)
        assert len(remote.received) == 1  # once, and never to ourselves
        assert all(t.destination == DEST for t in client.sent)
    finally:
        await sender.stop()


async def test_a_destination_that_comes_back_is_sent_to_at_once(
        client: FakeFederationClient, stores: Stores, remote: RemoteServer) -> None:
    sender = make_sender(client, stores, Backoff(initial_ms=60_000, maximum_ms=600_000))
    await sender.start()
    try:
        room = await new_room(stores)
        remote.failing = True
        await queue(room, "a")
        sender.pdus_queued([DEST])
        await wait_until(lambda: _true(len(remote.attempts) == 1), what="first attempt")
        await wait_until(lambda: _retry_set(stores), what="backoff recorded")
        await queue(room, "b")
        sender.pdus_queued([DEST])  # backing off: not sent yet
        await asyncio.sleep(0.05)
        assert len(remote.attempts) == 1

        remote.failing = False
        await sender.destination_came_back(DEST)
        state = await stores.federation.get_destination(DEST)
        assert state is not None and (state.retry_after_ts, state.retry_interval_ms) == (0, 0)
        await wait_until(lambda: drained(stores), timeout_s=2, what="sent at once")
        assert remote.bodies() == [["a", "b"]]
    finally:
        await sender.stop()


class CountingQueueReads:
    """The federation store, counting reads of the outbound queue."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.queue_reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def queued_pdus(self, destination: str, limit: int) -> Any:
        self.queue_reads += 1
        return await self._store.queued_pdus(destination, limit)


async def test_once_the_queue_is_known_new_pdus_are_sent_from_memory(
        client: FakeFederationClient, stores: Stores, remote: RemoteServer) -> None:
    store = CountingQueueReads(stores.federation)
    sender = FederationSender(SERVER, client, store, stores.events,  # type: ignore[arg-type]
                              SystemClock(), Backoff(initial_ms=200, maximum_ms=1000))
    await sender.start()
    try:
        room = await new_room(stores)
        await queue(room, "a")
        sender.pdus_queued([DEST])  # not told which event: the queue is read
        await wait_until(lambda: drained(stores), what="first sent")
        reads = store.queue_reads
        assert reads >= 1
        for body in ("b", "c", "d"):
            [event] = await queue(room, body)
            sender.pdus_queued([DEST], event)
            await wait_until(lambda: drained(stores), what=f"{body} sent")
        assert store.queue_reads == reads
        assert [b for t in remote.bodies() for b in t] == ["a", "b", "c", "d"]
        await queue(room, "e")
        sender.pdus_queued([DEST])  # an unreported PDU: memory is no longer trusted
        await wait_until(lambda: drained(stores), what="e sent")
        assert store.queue_reads > reads
        assert [b for t in remote.bodies() for b in t][-1] == "e"
    finally:
        await sender.stop()


async def _retry_set(stores: Stores) -> bool:
    state = await stores.federation.get_destination(DEST)
    return state is not None and state.retry_after_ts > 0


async def _true(value: bool) -> bool:
    return value


# -- catch-up ------------------------------------------------------------------------------------

async def test_catch_up_sends_the_newest_pdu_per_room(
        sender: FederationSender, stores: Stores, remote: RemoteServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sender_module, "CATCH_UP_THRESHOLD", 5)
    rooms = [await new_room(stores) for _ in range(3)]
    remote.failing = True
    await queue(rooms[0], "r0-a")
    sender.pdus_queued([DEST])
    await wait_until(lambda: _true(len(remote.attempts) == 1), what="first attempt")
    await queue(rooms[1], "r1-a", "r1-b")
    await queue(rooms[0], "r0-b", "r0-c")
    await queue(rooms[2], "r2-a")
    await queue(rooms[1], "r1-c")
    sender.pdus_queued([DEST])
    await wait_until(lambda: _true(len(remote.attempts) == 3), what="catch-up attempts")
    assert remote.bodies(remote.attempts[1:]) == [["r0-c", "r2-a", "r1-c"]] * 2
    assert await depth(stores) == 7  # nothing dropped while failing

    remote.failing = False
    await wait_until(lambda: drained(stores), what="queue drained")
    assert remote.bodies() == [["r0-c", "r2-a", "r1-c"]]


async def test_catch_up_applies_when_the_destination_comes_back(
        client: FakeFederationClient, stores: Stores, remote: RemoteServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The usual end of an outage is the remote server contacting us: resetting its backoff
    must not forget that it missed a long backlog."""
    monkeypatch.setattr(sender_module, "CATCH_UP_THRESHOLD", 5)
    sender = make_sender(client, stores, Backoff(initial_ms=60_000, maximum_ms=600_000))
    await sender.start()
    try:
        rooms = [await new_room(stores) for _ in range(2)]
        remote.failing = True
        await queue(rooms[0], "a0", "a1", "a2", "a3")
        await queue(rooms[1], "b0", "b1", "b2")
        sender.pdus_queued([DEST])
        await wait_until(lambda: _retry_set(stores), what="backoff recorded")
        remote.failing = False
        await sender.destination_came_back(DEST)
        await wait_until(lambda: drained(stores), timeout_s=2, what="caught up")
        assert remote.bodies() == [["a3", "b2"]]
        await wait_until(lambda: healthy(sender), what="destination ok")
    finally:
        await sender.stop()


# -- restart and EDUs ----------------------------------------------------------------------------

async def test_pdus_queued_before_start_are_sent_after_start(
        client: FakeFederationClient, stores: Stores, remote: RemoteServer) -> None:
    room = await new_room(stores)
    await queue(room, "before-1", "before-2")
    first = make_sender(client, stores)
    first.pdus_queued([DEST])  # not started yet: nothing is sent
    await asyncio.sleep(0.05)
    assert remote.attempts == []

    restarted = make_sender(client, stores)
    await restarted.start()
    try:
        await wait_until(lambda: drained(stores), what="sent after start")
        assert remote.bodies() == [["before-1", "before-2"]]
    finally:
        await restarted.stop()


async def test_edus_are_kept_across_failures(
        sender: FederationSender, remote: RemoteServer) -> None:
    remote.failing = True
    for n in range(3):
        sender.send_edu(DEST, "m.typing", {"n": n})
    await wait_until(lambda: _true(len(remote.attempts) >= 2), what="failed attempts")
    sender.send_edu(DEST, "m.typing", {"n": 3})
    remote.failing = False
    await wait_until(lambda: _true(len(remote.edus()) == 4), what="EDUs delivered")
    assert remote.edus() == [0, 1, 2, 3]


async def test_pending_edus_are_bounded(
        sender: FederationSender, remote: RemoteServer, monkeypatch: pytest.MonkeyPatch
        ) -> None:
    monkeypatch.setattr(sender_module, "MAX_PENDING_EDUS", 10)
    remote.failing = True
    for n in range(25):
        sender.send_edu(DEST, "m.typing", {"n": n})
    report = {r["destination"]: r for r in await sender.status()}.get(DEST)
    assert report is None or report["pending_edus"] <= 10
    remote.failing = False
    await wait_until(lambda: _true(bool(remote.received)), what="delivery")
    assert remote.edus() == list(range(15, 25))


async def test_edus_arriving_during_a_transaction_are_not_lost(
        sender: FederationSender, remote: RemoteServer, monkeypatch: pytest.MonkeyPatch
        ) -> None:
    """New EDUs that push the oldest out of a full buffer while a transaction is in flight
    must not be mistaken for the ones that transaction carried."""
    monkeypatch.setattr(sender_module, "MAX_PENDING_EDUS", 10)
    remote.gate.clear()
    for n in range(5):
        sender.send_edu(DEST, "m.typing", {"n": n})
    await wait_until(lambda: _true(len(remote.attempts) == 1), what="first PUT")
    for n in range(5, 15):
        sender.send_edu(DEST, "m.typing", {"n": n})
    remote.gate.set()
    await wait_until(lambda: _true(len(remote.received) == 2), what="second transaction")
    assert remote.edus() == list(range(15))


async def test_edus_waiting_before_start_are_sent_after_start(
        client: FakeFederationClient, stores: Stores, remote: RemoteServer) -> None:
    """E.g. a typing notification, or a destination that contacted us, between the
    federation listener starting and the sender starting."""
    sender = make_sender(client, stores)
    sender.send_edu(DEST, "m.typing", {"n": 1})
    await sender.destination_came_back("other.test")
    await sender.start()
    try:
        await wait_until(lambda: _true(remote.edus() == [1]), what="EDU sent")
    finally:
        await sender.stop()
