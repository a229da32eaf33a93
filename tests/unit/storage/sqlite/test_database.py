"""The SQLite database: one batching writer thread, parallel readers, migrations, WAL."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from rocketnode.storage.sqlite import database
from rocketnode.storage.sqlite.database import SqliteDatabase, apply_migrations

WAIT_S = 5.0


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SqliteDatabase]:
    opened = await open_db(tmp_path / "test.db")
    await opened.write(lambda conn: conn.execute("CREATE TABLE items (name TEXT PRIMARY KEY)"))
    yield opened
    await opened.close()


async def open_db(path: Path, readers: int = 2) -> SqliteDatabase:
    opened = SqliteDatabase(str(path), readers=readers)
    await asyncio.to_thread(opened.open)
    return opened


def insert(name: str) -> Callable[[sqlite3.Connection], str]:
    def job(conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO items (name) VALUES (?)", (name,))
        return name

    return job


def names(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT name FROM items")}


class Gate:
    """A write job that holds the writer thread until released, so that others queue up."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, conn: sqlite3.Connection) -> None:
        self.entered.set()
        if not self.release.wait(WAIT_S):
            raise TimeoutError("gate was never released")

    async def hold(self, db: SqliteDatabase) -> asyncio.Future[None]:
        held = asyncio.ensure_future(db.write(self))
        assert await asyncio.to_thread(self.entered.wait, WAIT_S)
        return held


async def test_queued_writes_commit_together(db: SqliteDatabase) -> None:
    gate = Gate()
    held = await gate.hold(db)
    batches, jobs = db.batches_committed, db.jobs_committed
    writes = [asyncio.ensure_future(db.write(insert(f"n{i}"))) for i in range(50)]
    await asyncio.sleep(0)
    gate.release.set()
    await held
    assert await asyncio.gather(*writes) == [f"n{i}" for i in range(50)]
    assert db.batches_committed - batches == 2  # the gate alone, then all fifty at once
    assert db.jobs_committed - jobs == 51
    assert await db.read(names) == {f"n{i}" for i in range(50)}


async def test_a_failing_job_rolls_back_alone(db: SqliteDatabase) -> None:
    def insert_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO items (name) VALUES ('doomed')")
        raise ValueError("job failed")

    gate = Gate()
    held = await gate.hold(db)
    batches = db.batches_committed
    before = asyncio.ensure_future(db.write(insert("before")))
    failing = asyncio.ensure_future(db.write(insert_then_fail))
    duplicate = asyncio.ensure_future(db.write(insert("before")))  # a constraint violation
    after = asyncio.ensure_future(db.write(insert("after")))
    await asyncio.sleep(0)
    gate.release.set()
    await held
    assert await before == "before"
    assert await after == "after"
    with pytest.raises(ValueError, match="job failed"):
        await failing
    with pytest.raises(sqlite3.IntegrityError):
        await duplicate
    assert db.batches_committed - batches == 2
    assert await db.read(names) == {"before", "after"}


async def test_a_cancelled_write_does_not_stop_the_writer(db: SqliteDatabase) -> None:
    gate = Gate()
    held = await gate.hold(db)
    cancelled = asyncio.ensure_future(db.write(insert("cancelled")))
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0.05)  # the cancellation reaches the queued job through the loop
    gate.release.set()
    await held
    assert await asyncio.wait_for(db.write(insert("later")), WAIT_S) == "later"
    assert cancelled.cancelled()
    assert await db.read(names) == {"later"}


async def test_readers_see_committed_writes_and_run_in_parallel(db: SqliteDatabase) -> None:
    await db.write(insert("first"))
    assert await db.read(names) == {"first"}

    both_inside = threading.Barrier(2, timeout=WAIT_S)

    def read_together(conn: sqlite3.Connection) -> set[str]:
        found = names(conn)
        both_inside.wait()  # raises BrokenBarrierError unless two readers are in at once
        return found

    gate = Gate()
    held = await gate.hold(db)  # an open write transaction does not block readers (WAL)
    assert await asyncio.gather(db.read(read_together, heavy=True),
                                db.read(read_together, heavy=True)) == [{"first"}, {"first"}]
    assert await db.read(names) == {"first"}  # a small read, inline, is not blocked either
    gate.release.set()
    await held


async def test_small_reads_run_on_the_loop_thread_and_heavy_ones_do_not(
        db: SqliteDatabase) -> None:
    def thread_name(conn: sqlite3.Connection) -> str:
        return threading.current_thread().name

    loop_thread = threading.current_thread().name
    assert await db.read(thread_name) == loop_thread
    assert (await db.read(thread_name, heavy=True)).startswith("sqlite-reader")
    await db.write(insert("second"))
    assert await db.read(names) >= {"second"}  # inline reads see what was just committed


async def test_wal_mode_busy_timeout_and_read_only_readers(db: SqliteDatabase) -> None:
    def pragmas(conn: sqlite3.Connection) -> tuple[str, int]:
        return (conn.execute("PRAGMA journal_mode").fetchone()[0],
                conn.execute("PRAGMA busy_timeout").fetchone()[0])

    assert await db.read(pragmas) == ("wal", database.BUSY_TIMEOUT_MS)
    assert await db.write(pragmas) == ("wal", database.BUSY_TIMEOUT_MS)
    with pytest.raises(sqlite3.OperationalError):
        await db.read(insert("sneaky"))
    assert Path(db.path + "-wal").exists()


async def test_migrations_are_applied_once_and_recorded(tmp_path: Path) -> None:
    shipped = database._migration_files()
    assert shipped[0][:2] == (1, "0001_initial.sql")
    assert len({version for version, _, _ in shipped}) == len(shipped)
    path = tmp_path / "migrated.db"
    first = await open_db(path)
    await first.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute(
            "SELECT version, name FROM schema_migrations ORDER BY version"
        ).fetchall() == [(version, name) for version, name, _ in shipped]
        assert apply_migrations(conn) == []
    finally:
        conn.close()
    second = await open_db(path)  # would fail on CREATE TABLE if 0001 ran again
    await second.close()


async def test_a_new_migration_is_applied_at_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "migrated.db"
    await (await open_db(path)).close()
    shipped = database._migration_files()
    extra = (9001, "9001_test.sql", "-- a comment\nCREATE TABLE extra (x INTEGER);\n"
             "INSERT INTO extra VALUES (7);\n")
    broken = (9002, "9002_broken.sql", "CREATE TABLE half (x INTEGER);\nNOT SQL AT ALL;\n")
    monkeypatch.setattr(database, "_migration_files", lambda: [*shipped, extra, broken])

    with pytest.raises(sqlite3.OperationalError):
        await open_db(path)
    conn = sqlite3.connect(path)
    try:
        recorded = [row[0] for row in conn.execute("SELECT version FROM schema_migrations")]
        assert sorted(recorded) == [version for version, _, _ in shipped] + [9001]
        assert conn.execute("SELECT x FROM extra").fetchall() == [(7,)]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert "half" not in tables  # the failed migration left nothing behind
    finally:
        conn.close()

    monkeypatch.setattr(database, "_migration_files", lambda: [*shipped, extra])
    reopened = await open_db(path)
    assert await reopened.read(lambda c: c.execute("SELECT COUNT(*) FROM extra").fetchone()[0]) \
        == 1
    await reopened.close()


async def test_close_finishes_queued_writes_then_refuses_more(tmp_path: Path) -> None:
    path = tmp_path / "closing.db"
    db = await open_db(path)
    await db.write(lambda conn: conn.execute("CREATE TABLE items (name TEXT PRIMARY KEY)"))
    gate = Gate()
    held = await gate.hold(db)
    queued = [asyncio.ensure_future(db.write(insert(f"q{i}"))) for i in range(20)]
    await asyncio.sleep(0)
    closing = asyncio.ensure_future(db.close())
    await asyncio.sleep(0.01)
    with pytest.raises(RuntimeError):
        await asyncio.wait_for(db.write(insert("too late")), WAIT_S)
    gate.release.set()
    await closing
    await held
    assert len(await asyncio.gather(*queued)) == 20
    with pytest.raises(RuntimeError):
        await db.read(names)

    conn = sqlite3.connect(path)
    try:
        assert names(conn) == {f"q{i}" for i in range(20)}
    finally:
        conn.close()
    assert not Path(str(path) + "-wal").exists() or Path(str(path) + "-wal").stat().st_size == 0


async def test_two_databases_on_one_file_do_not_lock_each_other_out(tmp_path: Path) -> None:
    """A second process (``rocketnode register`` next to ``serve``) waits, never fails."""
    path = tmp_path / "shared.db"
    first = await open_db(path)
    await first.write(lambda conn: conn.execute("CREATE TABLE items (name TEXT PRIMARY KEY)"))
    second = await open_db(path)
    try:
        await asyncio.gather(
            *(first.write(insert(f"a{i}")) for i in range(100)),
            *(second.write(insert(f"b{i}")) for i in range(100)),
        )
        assert len(await first.read(names)) == 200
        assert len(await second.read(names)) == 200
    finally:
        await second.close()
        await first.close()


def test_statements_split_on_complete_statements() -> None:
    sql = (
        "-- header\nCREATE TABLE a (x TEXT DEFAULT ';');\n\n"
        "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n  DELETE FROM a;\nEND;\nSELECT 1;"
    )
    assert [s.split()[0:2] for s in database._split_statements(sql)] == [
        ["CREATE", "TABLE"], ["CREATE", "TRIGGER"], ["SELECT", "1;"]
    ]


async def test_write_and_read_before_open_are_refused(tmp_path: Path) -> None:
    unopened = SqliteDatabase(str(tmp_path / "never.db"))
    with pytest.raises(RuntimeError):
        await unopened.write(insert("x"))
    with pytest.raises(RuntimeError):
        await unopened.read(names)
    with pytest.raises(ValueError):
        SqliteDatabase(str(tmp_path / "x.db"), synchronous="OFF")
