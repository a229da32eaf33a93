"""Inbound transactions (server-server API "Transactions", ``PUT /send/{txnId}``) with a
scripted event intake: idempotency by ``(origin, txnId)``, the size limits, rooms processed
concurrently and each room in order, unknown rooms, failing PDUs and EDU handlers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from rocketnode.core.errors import Errcode, MatrixError, PduFormatError, RemoteServerError
from rocketnode.core.pdu import Pdu
from rocketnode.core.room_versions import V10, RoomVersion
from rocketnode.federation.inbound import (
    KEEP_ANSWERS_MS,
    MAX_EDUS,
    MAX_PDUS,
    PRUNE_EVERY_MS,
    TransactionHandler,
)
from rocketnode.storage.ports import Stores
from rocketnode.storage.records import RoomRecord, StoredEvent
from tests.unit.federation.fakes import FakeClock, sqlite_stores
from tests.unit.storage.builders import SERVER, RoomDag

ORIGIN = SERVER  # the builders sign as this server


class FakeIntake:
    """Parses PDUs for real; ``take`` records the order, can be held, or fail per event."""

    def __init__(self) -> None:
        self.taken: list[str] = []
        self.started: dict[str, asyncio.Event] = {}
        self.holds: dict[str, asyncio.Event] = {}
        self.failures: dict[str, BaseException] = {}
        self.rejected: dict[str, str] = {}

    def hold(self, event_id: str) -> asyncio.Event:
        return self.holds.setdefault(event_id, asyncio.Event())

    def started_event(self, event_id: str) -> asyncio.Event:
        return self.started.setdefault(event_id, asyncio.Event())

    async def parse_verified(self, room_version: RoomVersion, raw: Sequence[Any]
                             ) -> list[Pdu | MatrixError]:
        results: list[Pdu | MatrixError] = []
        for item in raw:
            try:
                results.append(Pdu.from_json(room_version, item))
            except PduFormatError as exc:
                results.append(exc)
        return results

    async def take(self, origin: str, pdu: Pdu, backfilled: bool = False
                   ) -> StoredEvent | None:
        assert origin == ORIGIN
        self.started_event(pdu.event_id).set()
        if pdu.event_id in self.holds:
            await self.holds[pdu.event_id].wait()
        if pdu.event_id in self.failures:
            raise self.failures[pdu.event_id]
        self.taken.append(pdu.event_id)
        reason = self.rejected.get(pdu.event_id)
        return StoredEvent(pdu, 1, 1, rejected=reason) if reason else None


class FakeRooms:
    """Rooms this server knows; ``joined`` lists those with a local user joined."""

    def __init__(self, *room_ids: str) -> None:
        self.rooms = {r: RoomRecord(r, V10, None, False, 0, None) for r in room_ids}
        self.joined = set(room_ids)

    async def get_room(self, room_id: str) -> RoomRecord | None:
        return self.rooms.get(room_id)

    async def local_users_in_room(self, room_id: str, membership: str = "join") -> list[str]:
        assert membership == "join"
        return [f"@local:{SERVER}"] if room_id in self.joined else []


class Edus:
    """EDU handlers that record what they got; ``bad`` EDUs make them raise."""

    def __init__(self) -> None:
        self.got: list[tuple[str, Any]] = []

    async def typing(self, origin: str, content: dict[str, Any]) -> None:
        if content.get("bad") == "matrix":
            raise MatrixError(Errcode.BAD_JSON, "bad typing EDU")
        if content.get("bad") == "crash":
            raise KeyError("a bug in a handler")
        self.got.append((origin, content["n"]))


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[Stores]:
    async with sqlite_stores(tmp_path) as opened:
        yield opened


@pytest.fixture
def room_a() -> RoomDag:
    return RoomDag()


@pytest.fixture
def room_b() -> RoomDag:
    return RoomDag()


@pytest.fixture
def intake() -> FakeIntake:
    return FakeIntake()


@pytest.fixture
def edus() -> Edus:
    return Edus()


@pytest.fixture
def rooms(room_a: RoomDag, room_b: RoomDag) -> FakeRooms:
    return FakeRooms(room_a.room_id, room_b.room_id)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def handler(intake: FakeIntake, stores: Stores, rooms: FakeRooms, edus: Edus, clock: FakeClock
            ) -> TransactionHandler:
    locks: dict[str, asyncio.Lock] = {}
    handler = TransactionHandler(
        intake, rooms, stores.federation,  # type: ignore[arg-type]
        clock, lambda room_id: locks.setdefault(room_id, asyncio.Lock()))
    handler.edu_handlers["m.typing"] = edus.typing
    return handler


def txn(*pdus: Pdu | dict[str, Any], edus: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    return {"origin": ORIGIN, "origin_server_ts": 1,
            "pdus": [p.data if isinstance(p, Pdu) else p for p in pdus], "edus": list(edus)}


def typing_edu(n: int, bad: str | None = None) -> dict[str, Any]:
    content: dict[str, Any] = {"n": n}
    if bad:
        content["bad"] = bad
    return {"edu_type": "m.typing", "content": content}


# -- idempotency ---------------------------------------------------------------------------------

async def test_a_repeated_transaction_is_answered_from_storage(
        handler: TransactionHandler, intake: FakeIntake, edus: Edus, stores: Stores,
        room_a: RoomDag) -> None:
    first, second = room_a.message("1"), room_a.message("2")
    intake.rejected[second.event_id] = "not allowed"
    body = txn(first, second, edus=[typing_edu(1)])
    answer = await handler.on_send(ORIGIN, "t1", body)
    assert answer == {"pdus": {first.event_id: {},
                               second.event_id: {"error": "rejected: not allowed"}}}
    await handler.close()  # the answer is recorded behind the PDUs' writes
    assert await stores.federation.get_transaction_response(ORIGIN, "t1") == answer

    assert await handler.on_send(ORIGIN, "t1", body) == answer
    assert intake.taken == [first.event_id, second.event_id]
    assert edus.got == [(ORIGIN, 1)]
    # the same ID from another server is another transaction
    assert await handler.on_send("other.test", "t1", {"pdus": [], "edus": []}) == {"pdus": {}}


async def test_answers_are_kept_for_a_day_then_pruned(
        handler: TransactionHandler, intake: FakeIntake, stores: Stores, clock: FakeClock,
        room_a: RoomDag) -> None:
    first, second, third = (room_a.message(str(i)) for i in range(3))
    answer = await handler.on_send(ORIGIN, "old", txn(first))
    clock.advance((KEEP_ANSWERS_MS - PRUNE_EVERY_MS) / 1000)
    await handler.on_send(ORIGIN, "recent", txn(second))
    await handler.close()
    federation = stores.federation
    assert await federation.get_transaction_response(ORIGIN, "old") == answer  # not due yet

    clock.advance(2 * PRUNE_EVERY_MS / 1000)  # "old" is a day and an hour old now
    await handler.on_send(ORIGIN, "new", txn(third))
    await handler.close()
    assert await federation.get_transaction_response(ORIGIN, "old") is None
    assert await federation.get_transaction_response(ORIGIN, "recent") is not None
    assert await federation.get_transaction_response(ORIGIN, "new") is not None
    # A replay of the forgotten transaction is processed again (its PDU is known: harmless).
    assert await handler.on_send(ORIGIN, "old", txn(first)) == answer


async def test_concurrent_duplicates_are_processed_once(
        handler: TransactionHandler, intake: FakeIntake, edus: Edus, room_a: RoomDag) -> None:
    pdu = room_a.message("1")
    release = intake.hold(pdu.event_id)
    body = txn(pdu, edus=[typing_edu(7)])
    calls = [asyncio.create_task(handler.on_send(ORIGIN, "dup", body)) for _ in range(3)]
    await asyncio.wait_for(intake.started_event(pdu.event_id).wait(), 5)
    await asyncio.sleep(0.02)
    release.set()
    answers = await asyncio.wait_for(asyncio.gather(*calls), 5)
    assert answers == [{"pdus": {pdu.event_id: {}}}] * 3
    assert intake.taken == [pdu.event_id]
    assert edus.got == [(ORIGIN, 7)]


class HeldDuplicateRead:
    """The federation store, with the second read of a transaction result held back until
    ``release`` is set (after reading the database): a duplicate that looked before the
    first answer was stored, and resumes after it was."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.reads = 0
        self.read_done = asyncio.Event()
        self.release = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def get_transaction_response(self, origin: str, txn_id: str) -> Any:
        self.reads += 1
        answer = await self._store.get_transaction_response(origin, txn_id)
        if self.reads == 2:
            self.read_done.set()
            await self.release.wait()
        return answer


async def test_a_duplicate_racing_the_end_of_the_first_is_not_processed_again(
        intake: FakeIntake, stores: Stores, rooms: FakeRooms, edus: Edus,
        room_a: RoomDag) -> None:
    slow_store = HeldDuplicateRead(stores.federation)
    locks: dict[str, asyncio.Lock] = {}
    handler = TransactionHandler(
        intake, rooms, slow_store,  # type: ignore[arg-type]
        FakeClock(), lambda room_id: locks.setdefault(room_id, asyncio.Lock()))
    handler.edu_handlers["m.typing"] = edus.typing
    pdu = room_a.message("1")
    release = intake.hold(pdu.event_id)
    body = txn(pdu, edus=[typing_edu(1)])
    first = asyncio.create_task(handler.on_send(ORIGIN, "race", body))
    await asyncio.wait_for(intake.started_event(pdu.event_id).wait(), 5)
    duplicate = asyncio.create_task(handler.on_send(ORIGIN, "race", body))
    await asyncio.sleep(0.05)
    release.set()
    answer = await asyncio.wait_for(first, 5)
    slow_store.release.set()
    assert await asyncio.wait_for(duplicate, 5) == answer
    assert intake.taken == [pdu.event_id]
    assert edus.got == [(ORIGIN, 1)]


# -- limits and origin ---------------------------------------------------------------------------

@pytest.mark.parametrize(("pdu_count", "edu_count"), [(MAX_PDUS + 1, 0), (0, MAX_EDUS + 1)])
async def test_oversized_transactions_are_refused_and_nothing_is_stored(
        handler: TransactionHandler, intake: FakeIntake, edus: Edus, stores: Stores,
        room_a: RoomDag, pdu_count: int, edu_count: int) -> None:
    body = txn(*(room_a.message(str(i)) for i in range(pdu_count)),
               edus=[typing_edu(i) for i in range(edu_count)])
    with pytest.raises(MatrixError) as caught:
        await handler.on_send(ORIGIN, "big", body)
    assert (caught.value.errcode, caught.value.status) == (Errcode.BAD_JSON, 400)
    assert intake.taken == [] and edus.got == []
    assert await stores.federation.get_transaction_response(ORIGIN, "big") is None
    assert (MAX_PDUS, MAX_EDUS) == (50, 100)


async def test_the_limits_themselves_are_accepted(
        handler: TransactionHandler, intake: FakeIntake, edus: Edus, room_a: RoomDag) -> None:
    pdus = [room_a.message(str(i)) for i in range(MAX_PDUS)]
    await handler.on_send(ORIGIN, "full", txn(*pdus, edus=[typing_edu(i)
                                                           for i in range(MAX_EDUS)]))
    assert intake.taken == [p.event_id for p in pdus]
    assert len(edus.got) == MAX_EDUS


@pytest.mark.parametrize("body", [
    [], "txn", {"pdus": {}, "edus": []}, {"pdus": [], "edus": "x"},
])
async def test_malformed_transactions_are_bad_json(handler: TransactionHandler,
                                                   body: Any) -> None:
    with pytest.raises(MatrixError) as caught:
        await handler.on_send(ORIGIN, "bad", body)
    assert caught.value.errcode is Errcode.BAD_JSON


async def test_a_transaction_claiming_another_origin_is_forbidden(
        handler: TransactionHandler, intake: FakeIntake, stores: Stores,
        room_a: RoomDag) -> None:
    body = {**txn(room_a.message("1")), "origin": "someone-else.test"}
    with pytest.raises(MatrixError) as caught:
        await handler.on_send(ORIGIN, "forged", body)
    assert (caught.value.errcode, caught.value.status) == (Errcode.FORBIDDEN, 403)
    assert intake.taken == []
    assert await stores.federation.get_transaction_response(ORIGIN, "forged") is None


# -- ordering and concurrency --------------------------------------------------------------------

async def test_rooms_are_processed_concurrently(
        handler: TransactionHandler, intake: FakeIntake, room_a: RoomDag,
        room_b: RoomDag) -> None:
    slow, fast = room_a.message("slow"), room_b.message("fast")
    release = intake.hold(slow.event_id)
    call = asyncio.create_task(handler.on_send(ORIGIN, "t", txn(slow, fast)))
    await asyncio.wait_for(intake.started_event(slow.event_id).wait(), 5)
    for _ in range(100):  # the other room finishes while the slow one is held
        if fast.event_id in intake.taken:
            break
        await asyncio.sleep(0.005)
    assert intake.taken == [fast.event_id]
    assert not call.done()
    release.set()
    assert await asyncio.wait_for(call, 5) == {"pdus": {slow.event_id: {}, fast.event_id: {}}}
    assert intake.taken == [fast.event_id, slow.event_id]


async def test_pdus_of_one_room_are_processed_in_order(
        handler: TransactionHandler, intake: FakeIntake, room_a: RoomDag,
        room_b: RoomDag) -> None:
    a1, a2, a3 = (room_a.message(f"a{i}") for i in range(3))
    b1 = room_b.message("b1")
    release = intake.hold(a1.event_id)
    call = asyncio.create_task(handler.on_send(ORIGIN, "t", txn(a1, b1, a2, a3)))
    await asyncio.wait_for(intake.started_event(a1.event_id).wait(), 5)
    await asyncio.sleep(0.02)
    assert not intake.started_event(a2.event_id).is_set()
    release.set()
    await asyncio.wait_for(call, 5)
    assert [e for e in intake.taken if e != b1.event_id] == [a1.event_id, a2.event_id,
                                                            a3.event_id]


# -- bad PDUs and EDUs ---------------------------------------------------------------------------

async def test_pdus_of_unknown_rooms_are_dropped(
        handler: TransactionHandler, intake: FakeIntake, rooms: FakeRooms, room_a: RoomDag,
        room_b: RoomDag) -> None:
    stranger = RoomDag().message("elsewhere")
    left = room_b.message("we left")
    rooms.joined.discard(room_b.room_id)
    known = room_a.message("here")
    answer = await handler.on_send(ORIGIN, "t", txn(stranger, known, left, {"no": "room"}))
    assert answer == {"pdus": {known.event_id: {}}}
    assert intake.taken == [known.event_id]


async def test_each_pdu_gets_its_own_result(
        handler: TransactionHandler, intake: FakeIntake, room_a: RoomDag,
        room_b: RoomDag) -> None:
    refused, unreachable, crashing = (room_a.message(str(i)) for i in range(3))
    fine_a, fine_b = room_a.message("fine"), room_b.message("fine")
    malformed = {**room_a.message("m").data, "depth": "deep", "event_id": "$malformed"}
    intake.failures[refused.event_id] = MatrixError(Errcode.FORBIDDEN, "no", 403)
    intake.failures[unreachable.event_id] = RemoteServerError("x.test", "down")
    intake.failures[crashing.event_id] = ZeroDivisionError("a bug")
    answer = await handler.on_send(
        ORIGIN, "t", txn(refused, unreachable, crashing, fine_a, malformed, fine_b))
    results = answer["pdus"]
    assert set(results) == {refused.event_id, unreachable.event_id, crashing.event_id,
                            fine_a.event_id, fine_b.event_id, "$malformed"}
    assert all("error" in results[e] for e in
               (refused.event_id, unreachable.event_id, crashing.event_id, "$malformed"))
    assert results[fine_a.event_id] == results[fine_b.event_id] == {}
    assert intake.taken == [fine_a.event_id, fine_b.event_id] or intake.taken == [
        fine_b.event_id, fine_a.event_id]


async def test_edu_handler_errors_do_not_fail_the_transaction(
        handler: TransactionHandler, edus: Edus, intake: FakeIntake, stores: Stores,
        room_a: RoomDag) -> None:
    pdu = room_a.message("1")
    body = txn(pdu, edus=[
        typing_edu(1), typing_edu(2, bad="matrix"), typing_edu(3, bad="crash"),
        {"edu_type": "m.unknown", "content": {}}, {"edu_type": "m.typing"}, "junk",
        typing_edu(4)])
    answer = await handler.on_send(ORIGIN, "t", body)
    assert answer == {"pdus": {pdu.event_id: {}}}
    assert edus.got == [(ORIGIN, 1), (ORIGIN, 4)]
    await handler.close()
    assert await stores.federation.get_transaction_response(ORIGIN, "t") == answer
