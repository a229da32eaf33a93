"""Synapse's state resolution (v2, and v2.1 for room version 12) run in process over events
held in memory: the oracle of the differential tests (tests/unit/core) and the comparison of
the state-resolution benchmark (bench/state_res.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Collection, Mapping
from typing import TypeVar

import synapse.event_auth  # noqa: F401  (imported first: synapse.state alone hits a cycle)
from synapse.events import EventBase
from synapse.storage.databases.main.event_federation import StateDifference
from synapse.util.duration import Duration

T = TypeVar("T")


class NoWaitClock:
    """Synapse's resolver only ever sleeps for zero seconds, to yield to its reactor."""

    async def sleep(self, duration: Duration) -> None:
        return None


class MemoryStateStore:
    """A ``StateResolutionStore`` over events held in memory.

    Without ``difference``, every event is handed to Synapse as "in flight" (``event_map``), so
    Synapse computes the auth difference and the conflicted subgraph itself and asks the store
    only about persisted events, of which there are none. With it, the events count as
    persisted and the store answers that auth difference, as a database would.
    """

    def __init__(self, events: Mapping[str, EventBase],
                 difference: Collection[str] | None = None) -> None:
        self._events = events
        self._difference = difference

    async def get_events(
        self, event_ids: Collection[str], allow_rejected: bool = False
    ) -> dict[str, EventBase]:
        return {e: self._events[e] for e in event_ids if e in self._events}

    async def get_auth_chain_difference(
        self,
        room_id: str,
        state_sets: list[set[str]],
        conflicted_state: set[str] | None,
        additional_backwards_reachable_conflicted_events: set[str] | None,
    ) -> StateDifference:
        if self._difference is None and any(state_sets):
            raise AssertionError("every event should have been passed as in flight")
        return StateDifference(set(self._difference or ()),
                               None if conflicted_state is None else set())


def run_to_end(awaitable: Awaitable[T]) -> T:
    """Step a coroutine that never really waits (the resolver over memory) to its end."""
    coroutine = awaitable.__await__()
    try:
        next(coroutine)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    raise AssertionError("Synapse's resolver waited on something")
