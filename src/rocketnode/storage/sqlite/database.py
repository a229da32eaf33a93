"""The embedded SQLite database: one writer thread with batched commits, parallel readers.

* WAL mode: readers never block the writer nor each other.
* One writer connection in its own thread. Write jobs queue up; the writer takes every job
  waiting (up to ``MAX_BATCH``), runs each inside its own SAVEPOINT (a failing job rolls back
  alone) and commits them together, so throughput grows with load and there is never a second
  writer to meet "database is locked".
* Reads are small by default and run at once on the event loop's own read-only connection:
  a point query takes microseconds, far less than a hop to another thread and back. Reads
  that may be large (whole room states, auth chains, long ID lists) pass ``heavy=True`` and
  run on a small thread pool, one read-only connection per thread, without blocking the loop.
* A job is a plain function taking a :class:`sqlite3.Connection`; a whole transaction costs
  at most one hop from the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from importlib import resources
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], T]

MAX_BATCH = 256
BUSY_TIMEOUT_MS = 10_000
HEAVY_READ_ROWS = 200
"""Reads expected to touch more rows than this go to the reader threads."""
IN_LIST_CHUNK = 500
MAX_VARIABLES = 999
"""Bind parameters allowed per statement: the smallest limit of any SQLite build, so that a
query with an unchunked ``IN`` list fails in every test run, not on a user's older SQLite."""


def chunked(items: Iterable[T], size: int = IN_LIST_CHUNK) -> Iterator[list[T]]:
    """Split ``items`` into lists of at most ``size`` (for ``IN (...)`` lists)."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def placeholders(count: int) -> str:
    return ",".join("?" * count)


def _connect(path: str, read_only: bool, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, MAX_VARIABLES)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA cache_size = -16000")
    conn.execute("PRAGMA temp_store = MEMORY")
    if read_only:
        conn.execute("PRAGMA query_only = 1")
    return conn


class _WriteJob:
    __slots__ = ("fn", "future")

    def __init__(self, fn: Job[Any], future: Future[Any]) -> None:
        self.fn = fn
        self.future = future


_STOP = object()


class SqliteDatabase:
    """Owns the SQLite connections and the writer thread."""

    def __init__(self, path: str, readers: int = 4, synchronous: str = "NORMAL") -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError("synchronous must be NORMAL or FULL")
        self.path = path
        self._synchronous = synchronous
        self._reader_count = readers
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_conn: sqlite3.Connection | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._reader_conns: list[sqlite3.Connection] = []
        self._inline_conn: sqlite3.Connection | None = None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._closing = False
        self.batches_committed = 0
        self.jobs_committed = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self) -> None:
        """Open the writer, apply migrations, start the reader pool (blocking, call once)."""
        conn = _connect(self.path, read_only=False, synchronous=self._synchronous)
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal" and self.path != ":memory:":
                raise RuntimeError(f"SQLite refused WAL mode (got {mode})")
            apply_migrations(conn)
        except BaseException:
            conn.close()
            raise
        self._writer_conn = conn
        self._closing = False
        self._writer = threading.Thread(target=self._write_loop, name="sqlite-writer", daemon=True)
        self._writer.start()
        self._readers = ThreadPoolExecutor(
            max_workers=self._reader_count,
            thread_name_prefix="sqlite-reader",
            initializer=self._open_reader,
        )
        self._inline_conn = _connect(self.path, read_only=True, synchronous=self._synchronous)

    def _open_reader(self) -> None:
        conn = _connect(self.path, read_only=True, synchronous=self._synchronous)
        self._local.conn = conn
        with self._lock:
            self._reader_conns.append(conn)

    async def close(self) -> None:
        """Finish queued writes, then close every connection; later writes are refused."""
        loop = asyncio.get_running_loop()
        self._closing = True
        if self._writer is not None:
            self._queue.put(_STOP)
            await loop.run_in_executor(None, self._writer.join)
            self._writer = None
        if self._readers is not None:
            readers, self._readers = self._readers, None
            await loop.run_in_executor(None, readers.shutdown)
        with self._lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()
        if self._inline_conn is not None:
            self._inline_conn.close()
            self._inline_conn = None
        if self._writer_conn is not None:
            self._writer_conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._writer_conn.close()
            self._writer_conn = None

    # -- running jobs ------------------------------------------------------------------------

    async def write(self, fn: Job[T]) -> T:
        """Run ``fn`` in the writer thread inside a transaction; return once committed."""
        if self._writer is None or self._closing:
            raise RuntimeError("Database is not open")
        future: Future[T] = Future()
        self._queue.put(_WriteJob(fn, future))
        return await asyncio.wrap_future(future)

    async def read(self, fn: Job[T], heavy: bool = False) -> T:
        """Run ``fn`` in a read transaction (it sees every committed write).

        Small reads run at once on the loop's connection; ``heavy`` ones on the reader pool.
        """
        if self._readers is None or self._inline_conn is None:
            raise RuntimeError("Database is not open")
        if not heavy:
            return self._run_read(fn, self._inline_conn)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._run_read, fn, None)

    def _run_read(self, fn: Job[T], conn: sqlite3.Connection | None) -> T:
        if conn is None:
            conn = self._local.conn
        conn.execute("BEGIN")
        try:
            return fn(conn)
        finally:
            conn.execute("COMMIT")

    def _write_loop(self) -> None:
        conn = self._writer_conn
        assert conn is not None
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            jobs: list[_WriteJob] = [first]
            while len(jobs) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                jobs.append(item)
            # A caller that was cancelled while its job waited gets no write.
            jobs = [job for job in jobs if job.future.set_running_or_notify_cancel()]
            if jobs:
                self._run_batch(conn, jobs)
        self._refuse_leftovers()

    def _refuse_leftovers(self) -> None:
        """Fail any job queued behind the stop marker, so that no caller waits forever."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _WriteJob) and item.future.set_running_or_notify_cancel():
                item.future.set_exception(RuntimeError("Database is closed"))

    def _run_batch(self, conn: sqlite3.Connection, jobs: Sequence[_WriteJob]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in jobs:
                conn.execute("SAVEPOINT job")
                try:
                    result = job.fn(conn)
                except BaseException as exc:  # the job's own failure, reported to its caller
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    outcomes.append((False, exc))
                else:
                    conn.execute("RELEASE job")
                    outcomes.append((True, result))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            logger.exception("SQLite batch of %d jobs failed to commit", len(jobs))
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        self.batches_committed += 1
        self.jobs_committed += len(jobs)
        for job, (ok, value) in zip(jobs, outcomes, strict=True):
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)


def _migration_files() -> list[tuple[int, str, str]]:
    folder = resources.files("rocketnode.storage.migrations") / "sqlite"
    found = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def apply_migrations(conn: sqlite3.Connection) -> list[str]:
    """Apply every numbered migration not yet applied, each in its own transaction."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT)"
    )
    applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    done = []
    for version, name, sql in _migration_files():
        if version in applied:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _split_statements(sql):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, name))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        logger.info("Applied migration %s", name)
        done.append(name)
    return done


def _split_statements(sql: str) -> list[str]:
    statements, current = [], []
    for line in sql.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("--"):
            continue
        current.append(line)
        if stripped.endswith(";") and sqlite3.complete_statement("\n".join(current)):
            statements.append("\n".join(current))
            current = []
    if current:
        statements.append("\n".join(current))
    return statements
