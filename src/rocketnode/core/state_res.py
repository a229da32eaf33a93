"""State resolution v2 (room versions 6 to 11) and v2.1 (room version 12).

Spec: room versions, "State resolution" (``rooms/fragments/v2-state-res.md``) and room version 12,
whose v2.1 starts the first pass of iterative auth checks from an empty state map and adds the
conflicted state subgraph to the full conflicted set. The room version's ``state_res`` flag picks
the variant. Graph walks over ``auth_events`` live in :mod:`rocketnode.core.auth_chain`.

:func:`resolve_state` is pure: the caller passes every event it may need (those in the state
sets and in their auth chains) and gets :class:`MissingEvents` naming what to fetch otherwise.

Reading of the spec. State resolution is the consensus between servers: if two servers resolve
the same states differently, the room splits between them. Most of the network runs Synapse, so
where the words of the spec and Synapse's implementation part, we follow Synapse (Ruma, hence
conduwuit, reads step 1 as Synapse does too), and the differential tests
(``tests/unit/core/test_state_res_vs_synapse.py``) require every result to equal Synapse's.
Each departure below is pinned there by a hand-built case, with the spec text it departs from:

- "The full auth chain for each state S_i" holds S_i's own events as well as their auth
  chains, as in Synapse (and the algorithm's reference implementation). Read as only the auth
  chains, an event present in every state set would join the auth difference whenever just
  one state set's other events cite it.
- Step 1: the spec has, for each power event P, "the events in the auth chain of P which also
  belong to the full conflicted set", and sorts them by the DAG of auth events. We, like
  Synapse, follow only ``auth_events`` links from one event of the full conflicted set to
  another: an event reached only through events outside the set is not taken in step 1 (it is
  left to the mainline ordering of step 3), and such a path does not order two events of step 1.
- Power events: the spec names the ``m.room.power_levels`` and ``m.room.join_rules`` types with
  no condition on the state key. Synapse counts them only with an empty state key (the only one
  the auth rules read), and counts the create event as a power event too; so do we. Under
  another state key such an event is sorted by the mainline, not by power level, which can
  change which one wins. Counting the create event changes no result we know of (every other
  event has it in its auth chain, so it comes first anyway), and keeps step 1's graph Synapse's.
- Room version 12: "The m.room.create event MUST NOT be selected for auth_events on events.
  The room_id (being the m.room.create event's ID) implies this instead." We treat that implied
  create event as an auth event of every other event, as Synapse does, wherever the algorithm
  follows ``auth_events`` (auth chains, auth difference, conflicted state subgraph, step 1)
  and in the iterative auth checks. It matters when a state set lacks the create event: the
  create event is then conflicted and every path down to it is in the conflicted state subgraph.
- Rejected events: the spec's "Rejected events" section has events rejected for failing auth
  against the state before them "handled as usual by the algorithm", so that one could enter
  the resolved state if it passed the iterative auth checks. Synapse never lets a previously
  rejected event into the state there (its own source admits that this departs from the spec;
  matrix-org/synapse#13797, #13723), and neither do we: the iterative auth checks skip rejected
  events, and never authorise an event with one, whether cited in its ``auth_events`` or found
  in the state being built (the spec excludes rejected auth events). A rejected event of the
  unconflicted state map stays, as step 5 puts that map back.

Cost, for ``n`` events in the full conflicted set and ``a`` events in the auth chains: the
auth difference and the conflicted state subgraph are linear walks over ``a``, step 1's graph a
walk over ``n``; the power events are ordered by Kahn's algorithm with a heap (``n log n``), the
sender's power level computed once per event from its own auth events; mainline depths are
memoised per power levels event; the iterative auth checks update one state dict in place and
hand the auth rules a map of only the keys they ask for.

Exception tree::

    MatrixError
    ├── MissingEvents            events needed by the computation are not in ``events``
    └── (plain)                  events of several rooms, or auth events forming a cycle
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Container, Iterable, Mapping, Sequence, Set

from rocketnode.core.auth_chain import (
    MissingEvents,
    auth_chain,
    auth_difference,
    conflicted_subgraph,
    power_event_graph,
    require_events,
)
from rocketnode.core.auth_rules import auth_types_for_event, check_auth_rules, user_power_level
from rocketnode.core.errors import AuthError, Errcode, MatrixError
from rocketnode.core.pdu import Pdu, StateKey
from rocketnode.core.room_versions import RoomVersion, StateResAlgorithm

__all__ = ["MissingEvents", "auth_chain", "resolve_state"]

CREATE_KEY: StateKey = ("m.room.create", "")
POWER_LEVELS_KEY: StateKey = ("m.room.power_levels", "")
_POWER_TYPES = frozenset({"m.room.power_levels", "m.room.join_rules", "m.room.create"})


def resolve_state(
    room_version: RoomVersion,
    state_sets: Sequence[Mapping[StateKey, str]],
    events: Mapping[str, Pdu],
    rejected: Container[str] = frozenset(),
) -> dict[StateKey, str]:
    """Resolve ``state_sets`` (maps of state key to event ID) into one state map.

    ``events`` must hold every event of the state sets and of their auth chains. Events in
    ``rejected`` were rejected on receipt: the iterative auth checks skip them and never
    authorise another event with them (see "Reading of the spec").
    """
    unconflicted, conflicted = _split(state_sets)
    if not conflicted:
        return unconflicted
    v2_1 = room_version.state_res is StateResAlgorithm.V2_1
    # The auth difference walks every auth chain of the state sets and raises MissingEvents
    # for any absent event: from there on, every event the steps read is in ``events``.
    full_conflicted_set = auth_difference([set(s.values()) for s in state_sets], events)
    full_conflicted_set.update(conflicted)
    if v2_1:
        full_conflicted_set.update(conflicted_subgraph(conflicted, events))
    create = _create_event(full_conflicted_set, room_version, events)
    checker = _AuthChecker(room_version, events, rejected, create)

    # 1. The power events and the events of the full conflicted set they reach, sorted.
    power_events = [e for e in full_conflicted_set if _is_power_event(events[e])]
    graph = power_event_graph(power_events, full_conflicted_set, events)
    ordered = _reverse_topological_power_order(graph, events, checker.sender_power)
    # 2. Iterative auth checks from the unconflicted state map (v2) or an empty one (v2.1).
    state = {} if v2_1 else dict(unconflicted)
    checker.apply(ordered, state)
    # 3. and 4. The other events by mainline order, on top of the partially resolved state.
    remaining = [e for e in full_conflicted_set if e not in graph]
    checker.apply(_mainline_order(remaining, state.get(POWER_LEVELS_KEY), events), state)
    # 5. The unconflicted state map wins.
    state.update(unconflicted)
    return state


def _split(
    state_sets: Sequence[Mapping[StateKey, str]],
) -> tuple[dict[StateKey, str], set[str]]:
    """The unconflicted state map and the conflicted state set (as event IDs).

    A key is unconflicted when every state set maps it to the same event; the events of every
    other key, in any state set, are conflicted.
    """
    if not state_sets:
        return {}, set()
    shared: Set[tuple[StateKey, str]] = state_sets[0].items()
    for other in state_sets[1:]:
        shared = shared & other.items()
    unconflicted = dict(shared)
    conflicted: set[str] = set()
    for state_set in state_sets:
        if len(state_set) != len(unconflicted):
            conflicted.update(e for key, e in state_set.items() if key not in unconflicted)
    return unconflicted, conflicted


def _is_power_event(pdu: Pdu) -> bool:
    """Power events as Synapse counts them (see "Reading of the spec"): the power levels, join
    rules and create events (empty state key), and kicks and bans of someone else."""
    if pdu.type == "m.room.member":
        return (
            pdu.state_key is not None
            and pdu.membership in ("leave", "ban")
            and pdu.sender != pdu.state_key
        )
    return pdu.state_key == "" and pdu.type in _POWER_TYPES


def _create_event(
    full_conflicted_set: Iterable[str], room_version: RoomVersion, events: Mapping[str, Pdu]
) -> Pdu | None:
    """The create event, for room versions whose events do not cite it as an auth event.

    Every event of the full conflicted set must belong to the same room.
    """
    room_id: str | None = None
    for event_id in full_conflicted_set:
        event_room_id = events[event_id].room_id
        if room_id is None:
            room_id = event_room_id
        elif event_room_id != room_id:
            raise MatrixError(
                Errcode.INVALID_PARAM,
                f"State resolution mixes rooms: {event_id} is in {event_room_id}, not {room_id}",
                400,
            )
    if room_id is None or not room_version.room_id_from_create_event:
        return None
    create_id = "$" + room_id[1:]
    require_events([create_id], events)
    return events[create_id]


class _AuthChecker:
    """The authorisation rules as state resolution applies them."""

    __slots__ = ("_create", "_events", "_rejected", "_room_version")

    def __init__(
        self,
        room_version: RoomVersion,
        events: Mapping[str, Pdu],
        rejected: Container[str],
        create: Pdu | None,
    ) -> None:
        self._room_version = room_version
        self._events = events
        self._rejected = rejected
        self._create = create

    def sender_power(self, pdu: Pdu) -> int | float:
        """The sender's power level according to the event's own auth events (0 if they do
        not hold the create event, as for the create event itself)."""
        events = self._events
        state = {events[a].state_tuple: events[a] for a in pdu.auth_events}
        create = self._implied_create(pdu)
        if create is not None:
            state[CREATE_KEY] = create
        return user_power_level(pdu.sender, state) if CREATE_KEY in state else 0

    def apply(self, ordered: Iterable[str], state: dict[StateKey, str]) -> None:
        """Spec "Iterative auth checks": apply each event to ``state`` if it is allowed.

        Rejected events are skipped, and never authorise another event, whether cited in its
        ``auth_events`` or found in ``state`` (see "Reading of the spec").
        """
        events = self._events
        rejected = self._rejected
        for event_id in ordered:
            if event_id in rejected:
                continue
            pdu = events[event_id]
            cited = {
                events[a].state_tuple: events[a] for a in pdu.auth_events if a not in rejected
            }
            keys = auth_types_for_event(
                self._room_version, pdu.type, pdu.sender, pdu.state_key, pdu.content
            )
            auth_state: dict[StateKey, Pdu] = {}
            for key in keys:
                current = state.get(key)
                if current is not None and current not in rejected:
                    auth_state[key] = events[current]
                elif key in cited:
                    auth_state[key] = cited[key]
            create = self._implied_create(pdu)
            if create is not None and create.event_id not in rejected:
                auth_state[CREATE_KEY] = create
            try:
                check_auth_rules(pdu, auth_state)
            except AuthError:
                continue
            state[pdu.state_tuple] = event_id

    def _implied_create(self, pdu: Pdu) -> Pdu | None:
        """The create event that the room ID of ``pdu`` implies as an auth event (room version
        12 on; not for the create event itself)."""
        if self._create is None or pdu.type == "m.room.create":
            return None
        return self._create


def _reverse_topological_power_order(
    graph: Mapping[str, frozenset[str]],
    events: Mapping[str, Pdu],
    sender_power: Callable[[Pdu], int | float],
) -> list[str]:
    """Spec "Reverse topological power ordering", by Kahn's algorithm with a heap.

    ``graph`` maps each event to the events it must come after.
    """
    keys: dict[str, tuple[int | float, int, str]] = {}
    for event_id in graph:
        pdu = events[event_id]
        keys[event_id] = (-sender_power(pdu), pdu.origin_server_ts, event_id)
    unplaced_parents = {event_id: len(parents) for event_id, parents in graph.items()}
    children: dict[str, list[str]] = {}
    for event_id, parents in graph.items():
        for parent in parents:
            children.setdefault(parent, []).append(event_id)
    ready = [keys[event_id] for event_id, count in unplaced_parents.items() if count == 0]
    heapq.heapify(ready)
    ordered: list[str] = []
    while ready:
        event_id = heapq.heappop(ready)[2]
        ordered.append(event_id)
        for child in children.get(event_id, ()):
            unplaced_parents[child] -= 1
            if unplaced_parents[child] == 0:
                heapq.heappush(ready, keys[child])
    if len(ordered) != len(graph):
        raise _cycle(next(e for e, count in unplaced_parents.items() if count))
    return ordered


def _mainline_order(
    event_ids: list[str], power_levels_id: str | None, events: Mapping[str, Pdu]
) -> list[str]:
    """Spec "Mainline ordering" of ``event_ids`` based on the power levels event given.

    Sorts by mainline depth (1 for the oldest event of the mainline, 0 when an event's power
    levels chain never meets it), then ``origin_server_ts``, then event ID; this is the spec's
    order with the position counted from the other end of the mainline.
    """
    mainline: dict[str, None] = {}
    current = power_levels_id
    while current is not None:
        if current in mainline:
            raise _cycle(current)
        mainline[current] = None
        current = _power_levels_auth_event(current, events)
    depth_of = {event_id: depth for depth, event_id in enumerate(reversed(mainline), 1)}

    def sort_key(event_id: str) -> tuple[int, int, str]:
        pdu = events[event_id]
        return (_mainline_depth(event_id, depth_of, events), pdu.origin_server_ts, event_id)

    return sorted(event_ids, key=sort_key)


def _mainline_depth(event_id: str, depth_of: dict[str, int], events: Mapping[str, Pdu]) -> int:
    """Depth of the first mainline event in the power levels chain above ``event_id``.

    ``depth_of`` starts as the mainline's depths and memoises every power levels event walked.
    """
    walked: dict[str, None] = {}
    current = _power_levels_auth_event(event_id, events)
    while current is not None and current not in depth_of:
        if current in walked:
            raise _cycle(current)
        walked[current] = None
        current = _power_levels_auth_event(current, events)
    depth = 0 if current is None else depth_of[current]
    for power_levels_id in walked:
        depth_of[power_levels_id] = depth
    return depth


def _power_levels_auth_event(event_id: str, events: Mapping[str, Pdu]) -> str | None:
    """The first ``m.room.power_levels`` event among the auth events of ``event_id``."""
    pdu = events.get(event_id)
    if pdu is None:
        raise MissingEvents([event_id])
    for auth_id in pdu.auth_events:
        auth_pdu = events.get(auth_id)
        if auth_pdu is None:
            raise MissingEvents([auth_id])
        if auth_pdu.type == "m.room.power_levels" and auth_pdu.state_key == "":
            return auth_id
    return None


def _cycle(event_id: str) -> MatrixError:
    """Auth events cannot form a cycle between events whose IDs are hashes; refuse input where
    they do rather than loop or drop events."""
    return MatrixError(
        Errcode.INVALID_PARAM, f"The auth events around {event_id} form a cycle", 400
    )
