"""State resolution, RocketNode against Synapse's implementation on the same signed DAGs.

Random rooms (hypothesis drives every choice) fork from a common base and race bans, kicks,
joins, invites, knocks, power level changes, join rule flips, join rules and power levels events
under a non-empty state key, and topic/name changes, with clocks that may run backwards; forks
are merged now and then. Every merge and the final states of all forks are resolved by both
implementations, and the final states once more with some events marked rejected, and once
more beside a state set that lacks some keys (the create event among them, at times), as a
faulty server might claim it. Synapse runs in-process: its resolver is a coroutine that, given
an in-memory store, never waits, so it is stepped to completion synchronously.

Every result must equal Synapse's exactly. Where we follow Synapse rather than the letter of the
spec (see "Reading of the spec" in :mod:`rocketnode.core.state_res`), a hand-built case below
pins the input on which the two readings differ, and that we give Synapse's answer.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Collection, Mapping, Sequence

import pytest
import synapse.event_auth  # noqa: F401  (imported first: synapse.state alone hits a cycle)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from synapse.api.room_versions import KNOWN_ROOM_VERSIONS as SYNAPSE_ROOM_VERSIONS
from synapse.events import EventBase, make_event_from_dict
from synapse.state.v2 import resolve_events_with_store

from rocketnode.core.pdu import Pdu, StateKey
from rocketnode.core.room_versions import V6, V7, V8, V9, V10, V11, V12, RoomVersion
from rocketnode.core.state_res import resolve_state
from tests.support.synapse_state_res import MemoryStateStore, NoWaitClock, run_to_end
from tests.unit.core.dag_builder import CREATE_KEY
from tests.unit.core.state_res_scenarios import (
    JOIN_RULES,
    MOD1,
    MOD2,
    MOVE_KINDS,
    NAMED_SCENARIOS,
    NAMED_SCENARIOS_FROM_V12,
    USERS,
    BaseRoom,
    Move,
    Scenario,
    build_base,
    claimed_state_without_the_create_event,
    join_rules_under_another_state_key,
    kick_cites_a_rejoin_through_an_invite,
    play,
)

# --- Running Synapse's resolver ---------------------------------------------------------


_converted: dict[tuple[str, str | None], EventBase] = {}


def synapse_event(pdu: Pdu, rejected_reason: str | None = None) -> EventBase:
    """Synapse's form of ``pdu``; Synapse must derive the same event ID from the JSON."""
    cache_key = (pdu.event_id, rejected_reason)
    event = _converted.get(cache_key)
    if event is None:
        event = make_event_from_dict(
            pdu.data, SYNAPSE_ROOM_VERSIONS[pdu.room_version.identifier], None, rejected_reason
        )
        assert event.event_id == pdu.event_id
        _converted[cache_key] = event
    return event


def synapse_resolve(
    room_version: RoomVersion,
    state_sets: Sequence[Mapping[StateKey, str]],
    events: Mapping[str, Pdu],
    rejected: Collection[str] = (),
) -> dict[StateKey, str]:
    """Synapse's resolution of ``state_sets``, with the events in ``rejected`` marked rejected."""
    converted = {
        event_id: synapse_event(pdu, "rejected in test" if event_id in rejected else None)
        for event_id, pdu in events.items()
    }
    room_id = next(iter(events.values())).room_id
    resolved = run_to_end(
        resolve_events_with_store(
            NoWaitClock(),
            room_id,
            SYNAPSE_ROOM_VERSIONS[room_version.identifier],
            [dict(state_set) for state_set in state_sets],
            dict(converted),
            MemoryStateStore(converted),
        )
    )
    return {(key[0], key[1]): event_id for key, event_id in resolved.items()}


def both_resolve(
    room_version: RoomVersion,
    state_sets: Sequence[Mapping[StateKey, str]],
    events: Mapping[str, Pdu],
    rejected: Collection[str] = frozenset(),
) -> dict[StateKey, str]:
    """Resolve with both implementations, fail on any difference, return ours."""
    ours = resolve_state(room_version, state_sets, events, frozenset(rejected))
    theirs = synapse_resolve(room_version, state_sets, events, rejected)
    if ours != theirs:
        differing = {
            key: (ours.get(key), theirs.get(key))
            for key in ours.keys() | theirs.keys()
            if ours.get(key) != theirs.get(key)
        }
        pytest.fail(
            f"room v{room_version.identifier}: ours vs Synapse differ at {differing}"
            f" (rejected: {sorted(rejected)})"
        )
    return ours


# --- Random rooms ------------------------------------------------------------------------

_moves = st.builds(
    Move,
    kind=st.sampled_from(MOVE_KINDS),
    fork=st.integers(0, 3),
    actor=st.integers(0, len(USERS) - 1),
    target=st.integers(0, len(USERS) - 1),
    value=st.integers(0, 4),
    ts_step=st.sampled_from((-3, 0, 1, 1, 2, 7)),
)


@functools.cache
def _base(room_version: RoomVersion, join_rule: str, co_creator: bool) -> BaseRoom:
    return build_base(room_version, join_rule, co_creator)


def _check_random_room(
    room_version: RoomVersion,
    join_rule: str,
    co_creator: bool,
    moves: list[Move],
    rejected_picks: Collection[int] = (),
    dropped_picks: Collection[int] = (),
    drop_create: bool = False,
) -> int:
    """Play ``moves``, comparing every merge and the final states; return how many
    resolutions had a conflict.

    The final states are then resolved once more with some events of the room marked rejected
    (``rejected_picks`` index them, in event ID order: conflicted events, events every state
    holds, auth events), and once more beside a copy of the first final state without some
    keys (``dropped_picks`` index them in key order; ``drop_create`` drops the create event).
    """
    conflicts = 0

    def resolve(state_sets: list[dict[StateKey, str]], events: Mapping[str, Pdu]) -> dict[
        StateKey, str
    ]:
        nonlocal conflicts
        conflicts += any(state_sets[0] != other for other in state_sets[1:])
        return both_resolve(room_version, state_sets, events)

    room, forks = play(_base(room_version, join_rule, co_creator), moves, resolve)
    final_states = [fork.state for fork in forks]
    resolve(final_states, room.events)
    if rejected_picks:
        event_ids = sorted(room.events)
        rejected = {event_ids[pick % len(event_ids)] for pick in rejected_picks}
        both_resolve(room_version, final_states, room.events, rejected)
    if dropped_picks or drop_create:
        keys = sorted(final_states[0])
        dropped = {keys[pick % len(keys)] for pick in dropped_picks}
        if drop_create:
            dropped.add(CREATE_KEY)
        claimed = {k: v for k, v in final_states[0].items() if k not in dropped}
        resolve([*final_states, claimed], room.events)
    return conflicts


_EXAMPLES = 1000


@pytest.mark.parametrize("room_version", [V10, V11, V12], ids=lambda v: f"v{v.identifier}")
@settings(max_examples=_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    join_rule=st.sampled_from(JOIN_RULES),
    co_creator=st.booleans(),
    moves=st.lists(_moves, min_size=8, max_size=40),
    rejected_picks=st.sets(st.integers(0, 999), max_size=3),
    dropped_picks=st.sets(st.integers(0, 99), max_size=3),
    drop_create=st.booleans(),
)
def test_random_forks_resolve_as_synapse_does(
    room_version: RoomVersion,
    join_rule: str,
    co_creator: bool,
    moves: list[Move],
    rejected_picks: set[int],
    dropped_picks: set[int],
    drop_create: bool,
) -> None:
    _check_random_room(
        room_version, join_rule, co_creator, moves, rejected_picks, dropped_picks, drop_create
    )


def _seeded_moves(seed: int, count: int) -> list[Move]:
    rng = random.Random(seed)
    return [
        Move(
            kind=rng.choice(MOVE_KINDS),
            fork=rng.randrange(4),
            actor=rng.randrange(len(USERS)),
            target=rng.randrange(len(USERS)),
            value=rng.randrange(5),
            ts_step=rng.choice((-3, 0, 1, 1, 2, 7)),
        )
        for _ in range(count)
    ]


def test_random_rooms_do_conflict() -> None:
    """The generator is worth something only if most rooms end with real conflicts."""
    rooms_with_conflicts = sum(
        _check_random_room(V11, "public", False, _seeded_moves(seed, 20)) > 0
        for seed in range(40)
    )
    assert rooms_with_conflicts >= 30


# --- Named scenarios -----------------------------------------------------------------------

_named_cases = [
    pytest.param(scenario, version, id=f"{scenario.__name__}-v{version.identifier}")
    for scenario in NAMED_SCENARIOS
    for version in (V6, V7, V8, V9, V10, V11, V12)
] + [
    pytest.param(scenario, V12, id=f"{scenario.__name__}-v12")
    for scenario in NAMED_SCENARIOS_FROM_V12
]


@pytest.mark.parametrize(("scenario", "room_version"), _named_cases)
def test_named_scenarios_resolve_as_synapse_does(
    scenario: Callable[[RoomVersion], Scenario], room_version: RoomVersion
) -> None:
    built = scenario(room_version)
    assert built.state_sets[0] != built.state_sets[1]
    both_resolve(room_version, built.state_sets, built.room.events)


# --- Where we follow Synapse rather than the letter of the spec ------------------------------


@pytest.mark.parametrize("room_version", [V6, V9, V10, V11], ids=lambda v: f"v{v.identifier}")
def test_step_1_follows_auth_events_within_the_full_conflicted_set_as_synapse_does(
    room_version: RoomVersion,
) -> None:
    """Spec, room versions, state resolution, "Algorithm" step 1: "For each such power event P,
    enlarge X by adding the events in the auth chain of P which also belong to the full
    conflicted set." We follow Synapse, which reaches such events only through ``auth_events``
    links between events of the full conflicted set.

    The admin's first join is in the kick's auth chain only through the invite, which is
    outside the full conflicted set. Word for word, step 1 would replay that first join with
    the power events and the admin's later (but earlier-stamped) rejoin would then win in
    step 4; as Synapse reads it, the first join is left to step 3, where the timestamps put it
    last, and the admin's membership goes back to it.
    """
    built = kick_cites_a_rejoin_through_an_invite(room_version)
    events = built.room.events
    ours = both_resolve(room_version, built.state_sets, events)
    first_join = built.named["first_join"]
    assert ours[first_join.state_tuple] == first_join.event_id


def test_step_1_reaches_the_rejoin_through_the_conflicted_state_subgraph_in_v12() -> None:
    """In room version 12 the invite is on an auth path between two conflicted events (the
    kick and the first join), so the conflicted state subgraph puts it in the full conflicted
    set and step 1 reaches the first join through it: the rejoin, replayed after it, stays."""
    built = kick_cites_a_rejoin_through_an_invite(V12)
    ours = both_resolve(V12, built.state_sets, built.room.events)
    assert ours[built.named["rejoin"].state_tuple] == built.named["rejoin"].event_id


@pytest.mark.parametrize("room_version", [V6, V11, V12], ids=lambda v: f"v{v.identifier}")
def test_power_events_have_an_empty_state_key_as_in_synapse(room_version: RoomVersion) -> None:
    """Spec, "Power events": "a state event with type m.room.power_levels or
    m.room.join_rules" names no state key. Synapse counts those types as power events only with
    an empty state key (the only key the auth rules read). Under the key ``x`` the two join rules
    events are ordered by the mainline, hence by timestamp, and the admin's later one wins; as
    power events the admin's would be replayed first, by power level, and lose."""
    built = join_rules_under_another_state_key(room_version)
    ours = both_resolve(room_version, built.state_sets, built.room.events)
    admin = built.named["admin"]
    assert ours[admin.state_tuple] == admin.event_id


@pytest.mark.parametrize("room_version", [V6, V11, V12], ids=lambda v: f"v{v.identifier}")
def test_the_create_event_implied_by_v12_room_ids_is_in_auth_chains_as_in_synapse(
    room_version: RoomVersion,
) -> None:
    """Spec, room version 12, authorisation rules: the create event "MUST NOT be selected for
    auth_events on events. The room_id (being the m.room.create event's ID) implies this
    instead." The definitions of state resolution speak of ``auth_events`` links only; we
    follow the implied link too, as Synapse does. It matters when a state set lacks the create
    event: from room version 12 every path down to the (conflicted) create event is in the
    conflicted state subgraph, so the invite-only join rules are replayed and the old join
    fails against them, as it does before room version 12 (where the replay starts from the
    unconflicted state, which holds them)."""
    built = claimed_state_without_the_create_event(room_version)
    ours = both_resolve(room_version, built.state_sets, built.room.events)
    assert built.named["old_join"].state_tuple not in ours
    assert ours[built.named["join"].state_tuple] == built.named["join"].event_id


# --- Rejected events -----------------------------------------------------------------------


def _racing_topics(room_version: RoomVersion) -> tuple[list[dict[StateKey, str]], dict[str, Pdu],
                                                       Pdu, Pdu]:
    base = _base(room_version, "public", False)
    room = base.room.copy()
    first, second = base.trunk.fork(room), base.trunk.fork(room)
    later = first.topic(MOD2, "later", 5)
    earlier = second.topic(MOD1, "earlier", 1)
    assert later is not None and earlier is not None
    return [first.state, second.state], room.events, later, earlier


@pytest.mark.parametrize("room_version", [V10, V11, V12], ids=lambda v: f"v{v.identifier}")
def test_rejected_auth_events_are_ignored_as_synapse_does(room_version: RoomVersion) -> None:
    """A rejected event never authorises another in the iterative auth checks, whether an
    auth event (v2.1 here) or in the unconflicted state (v2 here): with MOD2's join marked
    rejected, MOD2's topic fails and MOD1's stays."""
    state_sets, events, later, earlier = _racing_topics(room_version)
    mod2_join = state_sets[0][("m.room.member", MOD2)]
    ours = resolve_state(room_version, state_sets, events, rejected={mod2_join})
    assert ours == synapse_resolve(room_version, state_sets, events, rejected={mod2_join})
    assert ours[("m.room.topic", "")] == earlier.event_id
    assert resolve_state(room_version, state_sets, events)[("m.room.topic", "")] == (
        later.event_id
    )


@pytest.mark.parametrize("room_version", [V10, V11, V12], ids=lambda v: f"v{v.identifier}")
def test_rejected_events_in_the_state_sets_are_dropped_as_synapse_does(
    room_version: RoomVersion,
) -> None:
    """Spec, room versions, state resolution, "Rejected events": "Events that have been rejected
    due to failing auth based on the state at the event (rather than based on their auth
    chain) are handled as usual by the algorithm". Synapse never admits a previously rejected
    event into the resolved state (it skips them in the iterative auth checks, and its own
    source admits that this departs from the spec: matrix-org/synapse#13797, #13723); we do the
    same.

    Here the topic that would win is marked rejected (as when a remote server's state holds an
    event we rejected): it is skipped and the other topic stays, as in Synapse.
    """
    state_sets, events, later, earlier = _racing_topics(room_version)
    assert both_resolve(room_version, state_sets, events)[("m.room.topic", "")] == (
        later.event_id
    )
    ours = both_resolve(room_version, state_sets, events, rejected={later.event_id})
    assert ours[("m.room.topic", "")] == earlier.event_id
