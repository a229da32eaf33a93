"""Progress on stderr, with no dependency: a bar redrawn in place on a terminal; on a pipe or a
log file (``nohup python -m bench > log``), one line per tenth of the way instead, so the log
stays readable.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

BAR_WIDTH = 28


def say(message: str, stream: TextIO | None = None) -> None:
    """One line of narration on stderr, stamped with the wall-clock time."""
    out = stream or sys.stderr
    out.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")
    out.flush()


class Progress:
    """``with Progress("burst 1000", 1000) as bar: ... bar.advance()``."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = max(total, 1)
        self.done = 0
        self._stream = stream or sys.stderr
        self._live = self._stream.isatty()
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._last_tenth = -1

    def __enter__(self) -> Progress:
        self._draw(force=True)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def advance(self, count: int = 1) -> None:
        self.done = min(self.total, self.done + count)
        self._draw()

    def close(self) -> None:
        self._draw(force=True)
        if self._live:
            self._stream.write("\n")
            self._stream.flush()

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        fraction = self.done / self.total
        elapsed = now - self._started
        if self._live:
            if not force and now - self._last_draw < 0.1:
                return
            filled = round(fraction * BAR_WIDTH)
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            self._stream.write(f"\r  {self.label:<34} [{bar}] {self.done}/{self.total} "
                               f"{elapsed:6.1f}s")
            self._stream.flush()
            self._last_draw = now
            return
        tenth = int(fraction * 10)
        finished = self.done == self.total
        if tenth != self._last_tenth and (finished or now - self._last_draw >= 5.0):
            self._last_tenth, self._last_draw = tenth, now
            self._stream.write(f"  {self.label}: {self.done}/{self.total} "
                               f"({elapsed:.1f}s)\n")
            self._stream.flush()
