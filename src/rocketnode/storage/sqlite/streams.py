"""Allocation of stream positions, done only in the writer thread.

One sequence orders everything a client syncs (events, receipts, account data); backfilled
events count down from zero so that they sort before everything already seen.
"""

from __future__ import annotations

import sqlite3

_STREAM_TABLES = ("events", "receipts", "account_data")


class StreamIds:
    def __init__(self) -> None:
        self._last = 0
        self._lowest = 0
        self._loaded = False

    def load(self, conn: sqlite3.Connection) -> None:
        highest, lowest = 0, 0
        for table in _STREAM_TABLES:
            top, bottom = conn.execute(
                f"SELECT MAX(stream_ordering), MIN(stream_ordering) FROM {table}"
            ).fetchone()
            highest = max(highest, top or 0)
            lowest = min(lowest, bottom or 0)
        self._last, self._lowest, self._loaded = highest, lowest, True

    def next(self, conn: sqlite3.Connection) -> int:
        if not self._loaded:
            self.load(conn)
        self._last += 1
        return self._last

    def reserve_backfill(self, conn: sqlite3.Connection, count: int) -> list[int]:
        """``count`` positions below everything, ascending (oldest event first)."""
        if not self._loaded:
            self.load(conn)
        self._lowest -= count
        return list(range(self._lowest, self._lowest + count))

    def next_backfill(self, conn: sqlite3.Connection) -> int:
        if not self._loaded:
            self.load(conn)
        self._lowest -= 1
        return self._lowest



def committed_position(conn: sqlite3.Connection) -> int:
    """The highest stream position visible to ``conn``'s transaction."""
    highest = 0
    for table in _STREAM_TABLES:
        top = conn.execute(f"SELECT MAX(stream_ordering) FROM {table}").fetchone()[0]
        highest = max(highest, top or 0)
    return highest
