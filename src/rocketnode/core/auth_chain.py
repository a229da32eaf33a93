"""Walks over the ``auth_events`` graph that state resolution needs.

Spec: room versions, state resolution v2, definitions "Auth chain", "Auth difference" and (room
version 12) "Conflicted state subgraph".

Every function takes the events as a mapping from event ID to :class:`Pdu` and raises
:class:`MissingEvents`, naming every absent event it ran into, when the mapping does not hold an
event it needs; the caller fetches those and tries again.

From room version 12 an event's ``auth_events`` no longer cite the create event: "The room_id
(being the m.room.create event's ID) implies this instead" (room version 12, authorisation
rules). The walks here follow that implied link as well, as Synapse does: every event of such a
room other than the create event itself counts the create event among its auth events.

Exception tree::

    MatrixError
    └── MissingEvents            events needed by the computation are not in ``events``
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Set

from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.core.pdu import Pdu

CREATE = "m.room.create"


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


def _implied_create_event(pdu: Pdu) -> str | None:
    """The create event that ``pdu``'s room ID implies as an auth event (room version 12 on),
    or ``None``: before room version 12, and for the create event itself."""
    if pdu.type == CREATE:
        return None
    return _create_event_of_room(pdu)


def _create_event_of_room(pdu: Pdu) -> str | None:
    """The ID of the create event of ``pdu``'s room, when the room ID names it (room version
    12 on; for the create event itself, its own ID)."""
    if pdu.room_version.room_id_from_create_event:
        return "$" + pdu.room_id[1:]
    return None


def auth_chain(event_ids: Iterable[str], events: Mapping[str, Pdu]) -> set[str]:
    """The union of the auth chains of ``event_ids``.

    An event's auth chain is its auth events (with, from room version 12, the create event its
    room ID implies), their auth events, and so on; a starting event is in the result only if
    another starting event reaches it.
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
    (along the reversed edges among those ancestors) finds the ones that reach them. When the
    create event that room version 12 events imply is itself conflicted, every ancestor reaches
    it, and the walk back up is not needed.
    """
    missing: set[str] = set()
    ancestors = _ancestors(conflicted, events, frozenset(), missing)
    if missing:
        raise MissingEvents(missing)
    create_id = next((_create_event_of_room(events[e]) for e in conflicted), None)
    if create_id is not None and create_id in conflicted:
        return ancestors | set(conflicted)
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

    Its nodes are the power events and the events of the full conflicted set reached from them
    by following ``auth_events`` links between events of that set; each node maps to its own
    auth events in that set. A path that leaves the full conflicted set is not followed: see
    "Reading of the spec" in :mod:`rocketnode.core.state_res`.
    """
    graph: dict[str, frozenset[str]] = {}
    todo = list(power_events)
    create_id: str | None = None
    if todo:
        create_id = _create_event_of_room(_event(todo[0], events))
        if create_id not in full_conflicted_set:
            create_id = None
    while todo:
        event_id = todo.pop()
        if event_id in graph:
            continue
        pdu = _event(event_id, events)
        parents = frozenset(a for a in pdu.auth_events if a in full_conflicted_set)
        if create_id is not None and pdu.type != CREATE:
            parents |= {create_id}
        graph[event_id] = parents
        todo.extend(parents)
    return graph


def _event(event_id: str, events: Mapping[str, Pdu]) -> Pdu:
    pdu = events.get(event_id)
    if pdu is None:
        raise MissingEvents([event_id])
    return pdu


def _ancestors(
    starts: Iterable[str], events: Mapping[str, Pdu], stop: Set[str], missing: set[str]
) -> set[str]:
    """Events reachable from ``starts`` through auth events, not entering ``stop``.

    The create event that room version 12 events imply is reached from any start other than the
    create event; it has no auth events, so it is added once at the end. Absent events are added
    to ``missing``, for the caller to report.
    """
    found: set[str] = set()
    stack: list[str] = []
    implied: str | None = None
    looking = True
    for event_id in starts:
        pdu = events.get(event_id)
        if pdu is None:
            missing.add(event_id)
            continue
        stack.extend(pdu.auth_events)
        if looking and pdu.type != CREATE:
            implied = _implied_create_event(pdu)
            looking = False
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
    if implied is not None and implied not in stop and implied not in found:
        found.add(implied)
        if implied not in events:
            missing.add(implied)
    return found
