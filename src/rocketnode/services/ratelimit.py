"""Per-key token buckets (``M_LIMIT_EXCEEDED`` with ``retry_after_ms`` when empty)."""

from __future__ import annotations

from dataclasses import dataclass

from rocketnode.core.errors import LimitExceeded
from rocketnode.services.clock import Clock

MAX_KEYS = 100_000


@dataclass(frozen=True, slots=True)
class RateLimit:
    per_second: float
    burst: int


class RateLimiter:
    """Allows ``burst`` actions at once per key, refilled at ``per_second``."""

    def __init__(self, clock: Clock, limit: RateLimit, enabled: bool = True) -> None:
        self._clock = clock
        self._limit = limit
        self._enabled = enabled
        self._buckets: dict[str, tuple[float, float]] = {}

    def check(self, key: str) -> None:
        """Take one token for ``key`` or raise :class:`LimitExceeded`."""
        if not self._enabled:
            return
        now = self._clock.monotonic()
        tokens, updated = self._buckets.get(key, (float(self._limit.burst), now))
        tokens = min(float(self._limit.burst), tokens + (now - updated) * self._limit.per_second)
        if tokens < 1.0:
            wait_ms = int((1.0 - tokens) / self._limit.per_second * 1000) + 1
            self._buckets[key] = (tokens, now)
            raise LimitExceeded(wait_ms)
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > MAX_KEYS:
            self._prune(now)

    def _prune(self, now: float) -> None:
        full_after = self._limit.burst / self._limit.per_second
        self._buckets = {
            key: value for key, value in self._buckets.items() if now - value[1] < full_after
        }
