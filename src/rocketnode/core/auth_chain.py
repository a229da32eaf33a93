"""Walks over the ``auth_events`` graph that state resolution needs.

Spec: room versions, state resolution v2, definitions "Auth chain", "Auth difference" and (room
version 12) "Conflicted state subgraph".

Every function takes the events as a mapping from event ID to :class:`Pdu` and raises
:class:`MissingEvents`, naming every absent event it ran into, when the mapping does not hold an
event it needs; the caller fetches those and tries again.

Exception tree::

    MatrixError
    └── MissingEvents            events needed by the computation are not in ``events``
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Set

from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.core.pdu import Pdu


class MissingEvents(MatrixError):
    """Events that state resolution needs are absent; ``event_ids`` names them all."""

    def __init__(self, event_ids: Iterable[str]) -> None:
        missing = frozenset(event_ids)
        shown = ", ".join(sorted(missing)[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        super().__init__(
            Errcode.NOT_FOUND, f"Events needed for state resolution are missing: {shown}{more}", 404
        )
        self.event_ids = missing


def require_events(event_ids: Iterable[str], events: Mapping[str, Pdu]) -> None:
    """Raise :class:`MissingEvents` unless ``events`` holds every one of ``event_ids``."""
    missing = [event_id for event_id in event_ids if event_id not in events]
    if missing:
        raise MissingEvents(missing)


def auth_chain(event_ids: Iterable[str], events: Mapping[str, Pdu]) -> set[str]:
    """The union of the auth chains of ``event_ids``.

    An event's auth chain is its auth events, their auth events, and so on; a starting event is
    in the result only if another starting event reaches it.
    """
    missing: set[str] = set()
    chain = _ancestors(event_ids, events, frozenset(), missing)
    if missing:
        raise MissingEvents(missing)
    return chain


def auth_difference(state_sets: Sequence[Set[str]], events: Mapping[str, Pdu]) -> set[str]:
    """Union minus intersection of the full auth chains of the state sets (event IDs only).

    The full auth chain of a state set is taken to hold the set's own events as well as their
    auth chains: see "Reading of the spec" in :mod:`rocketnode.core.state_res`.

    Events present in every state set, and their auth chains, are in every full auth chain, so
    they are walked once and the walks from each set's other events stop where they meet them.
    """
    if not state_sets:
        return set()
    missing: set[str] = set()
    in_every_set = set(state_sets[0]).intersection(*state_sets[1:])
    shared = _ancestors(in_every_set, events, frozenset(), missing) | in_every_set
    chains = []
    for state_set in state_sets:
        own = state_set - in_every_set
        chain = _ancestors(own, events, shared, missing)
        chain.update(own - shared)
        chains.append(chain)
    if missing:
        raise MissingEvents(missing)
    return set().union(*chains) - chains[0].intersection(*chains[1:])


def conflicted_subgraph(conflicted: Set[str], events: Mapping[str, Pdu]) -> set[str]:
    """The events on ``auth_events`` paths between two conflicted events, endpoints included.

    Such an event is an auth ancestor of a conflicted event from which a conflicted event can be
    reached: one walk down collects the ancestors, one walk back up from the conflicted events
    (along the reversed edges among those ancestors) finds the ones that reach them.
    """
    missing: set[str] = set()
    ancestors = _ancestors(conflicted, events, frozenset(), missing)
    if missing:
        raise MissingEvents(missing)
    cited_by: dict[str, list[str]] = {}
    for event_id in ancestors | conflicted:
        for auth_id in events[event_id].auth_events:
            cited_by.setdefault(auth_id, []).append(event_id)
    reaching = set(conflicted)
    todo = list(conflicted)
    while todo:
        for citing in cited_by.get(todo.pop(), ()):
            if citing not in reaching:
                reaching.add(citing)
                todo.append(citing)
    return (ancestors & reaching) | set(conflicted)


def power_event_graph(
    power_events: Iterable[str], full_conflicted_set: Set[str], events: Mapping[str, Pdu]
) -> dict[str, frozenset[str]]:
    """The graph that step 1 of the algorithm sorts by reverse topological power ordering.

    Its nodes are the power events and "the events in the auth chain of P which also belong to
    the full conflicted set" for each power event P. Each node maps to the nodes nearest to it
    in its own auth chain, found through events outside the full conflicted set too, so that
    every node comes after all the nodes in its auth chain.
    """
    below: dict[str, frozenset[str]] = {}
    graph: dict[str, frozenset[str]] = {}
    todo = list(power_events)
    while todo:
        event_id = todo.pop()
        if event_id not in graph:
            graph[event_id] = _nearest_members(event_id, full_conflicted_set, events, below)
            todo.extend(graph[event_id])
    return graph


def _ancestors(
    starts: Iterable[str], events: Mapping[str, Pdu], stop: Set[str], missing: set[str]
) -> set[str]:
    """Events reachable from ``starts`` through auth events, not entering ``stop``.

    Absent events are added to ``missing``, for the caller to report.
    """
    found: set[str] = set()
    stack: list[str] = []
    for event_id in starts:
        pdu = events.get(event_id)
        if pdu is None:
            missing.add(event_id)
        else:
            stack.extend(pdu.auth_events)
    while stack:
        event_id = stack.pop()
        if event_id in found or event_id in stop:
            continue
        found.add(event_id)
        pdu = events.get(event_id)
        if pdu is None:
            missing.add(event_id)
            continue
        stack.extend(pdu.auth_events)
    return found


_NONE: frozenset[str] = frozenset()


def _nearest_members(
    event_id: str, members: Set[str], events: Mapping[str, Pdu], below: dict[str, frozenset[str]]
) -> frozenset[str]:
    """The ``members`` in the auth chain of ``event_id`` reachable without passing another.

    ``below`` memoises the answer for each non-member walked through. The walk is a post-order
    depth-first search with an explicit stack (auth chains can be deeper than Python's
    recursion limit).
    """
    stack = [(event_id, _auth_events_of(event_id, events))]
    on_stack = {event_id}
    while True:
        current, auth_ids = stack[-1]
        pending = next((a for a in auth_ids if a not in members and a not in below), None)
        if pending is not None:
            if pending in on_stack:
                raise MatrixError(
                    Errcode.INVALID_PARAM, f"The auth events around {pending} form a cycle", 400
                )
            on_stack.add(pending)
            stack.append((pending, _auth_events_of(pending, events)))
            continue
        nearest = [a for a in auth_ids if a in members]
        for auth_id in auth_ids:
            if auth_id not in members:
                nearest.extend(below[auth_id])
        stack.pop()
        on_stack.discard(current)
        result = frozenset(nearest) if nearest else _NONE
        if not stack:
            return result
        below[current] = result


def _auth_events_of(event_id: str, events: Mapping[str, Pdu]) -> tuple[str, ...]:
    pdu = events.get(event_id)
    if pdu is None:
        raise MissingEvents([event_id])
    return pdu.auth_events
