"""State resolution v2 / v2.1: the spec's intent on named races, its definitions one by one
(read as Synapse reads them where the two part: "Reading of the spec" in
:mod:`rocketnode.core.state_res`), failure modes, and invariants over random forked rooms.

Spec: room versions, "State resolution" (v2 fragment) and room version 12 (v2.1).
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rocketnode.core.auth_chain import (
    MissingEvents,
    auth_chain,
    auth_difference,
    conflicted_subgraph,
    power_event_graph,
)
from rocketnode.core.errors import MatrixError
from rocketnode.core.pdu import Pdu, StateKey
from rocketnode.core.room_versions import V6, V7, V8, V9, V10, V11, V12, RoomVersion
from rocketnode.core.state_res import (
    _is_power_event,
    _reverse_topological_power_order,
    resolve_state,
)
from tests.unit.core.dag_builder import Fork, Room
from tests.unit.core.state_res_scenarios import (
    ADMIN,
    CREATOR,
    JOIN_RULES,
    MEMBERS,
    MOD1,
    MOD2,
    MOVE_KINDS,
    USERS,
    Move,
    Scenario,
    ban_by_moderator_who_left,
    ban_races_displayname_change,
    build_base,
    chain_of_grants,
    claimed_state_without_the_create_event,
    concurrent_topics,
    creator_demotes_admin_who_bans,
    demoted_moderator_bans,
    join_rule_flip_races_join,
    join_rules_under_another_state_key,
    kick_cites_a_rejoin_through_an_invite,
    leave_join_leave,
    play,
    power_levels_reset_claim,
    topic_after_power_change,
)

ALL_VERSIONS = [V6, V7, V8, V9, V10, V11, V12]
V2_VERSIONS = [V6, V7, V8, V9, V10, V11]
by_version = pytest.mark.parametrize("room_version", ALL_VERSIONS, ids=lambda v: f"v{v.identifier}")


def resolve(scenario: Scenario, room_version: RoomVersion) -> dict[StateKey, str]:
    return resolve_state(room_version, scenario.state_sets, scenario.room.events)


def holds(state: Mapping[StateKey, str], pdu: Pdu) -> bool:
    return state.get(pdu.state_tuple) == pdu.event_id


# --- The races the algorithm is designed for ----------------------------------------------


@by_version
def test_ban_beats_a_concurrent_change_by_the_banned_user(room_version: RoomVersion) -> None:
    """Bans are power events: replayed first, they make the banned user's own change fail."""
    scenario = ban_races_displayname_change(room_version)
    resolved = resolve(scenario, room_version)
    assert holds(resolved, scenario.named["ban"])


@by_version
def test_demotion_beats_a_concurrent_ban_by_the_demoted(room_version: RoomVersion) -> None:
    """The admin's power levels change sorts before the moderator's ban (greater sender power)
    and the ban then fails against the demoted level: the target stays joined."""
    scenario = demoted_moderator_bans(room_version)
    resolved = resolve(scenario, room_version)
    ban = scenario.named["ban"]
    assert holds(resolved, scenario.named["demotion"])
    assert not holds(resolved, ban)
    target = scenario.room.events[resolved[ban.state_tuple]]
    assert target.membership == "join"


@by_version
def test_join_rule_change_beats_a_concurrent_join(room_version: RoomVersion) -> None:
    scenario = join_rule_flip_races_join(room_version)
    resolved = resolve(scenario, room_version)
    assert holds(resolved, scenario.named["invite_only"])
    assert scenario.named["join"].state_tuple not in resolved


@by_version
def test_concurrent_topics_resolve_by_timestamp(room_version: RoomVersion) -> None:
    scenario = concurrent_topics(room_version)
    assert holds(resolve(scenario, room_version), scenario.named["later"])


@by_version
def test_mainline_beats_timestamp(room_version: RoomVersion) -> None:
    """A topic citing the newer power levels event sorts after one citing the older, whatever
    their timestamps."""
    scenario = topic_after_power_change(room_version)
    older, newer = scenario.named["older_epoch"], scenario.named["newer_epoch"]
    assert older.origin_server_ts > newer.origin_server_ts
    resolved = resolve(scenario, room_version)
    assert holds(resolved, newer)
    assert holds(resolved, scenario.named["promotion"])


@by_version
def test_auth_difference_replays_the_grants_a_change_depends_on(
    room_version: RoomVersion,
) -> None:
    scenario = chain_of_grants(room_version)
    resolved = resolve(scenario, room_version)
    assert holds(resolved, scenario.named["ban_level"])
    assert holds(resolved, scenario.named["topic"])
    difference = auth_difference([set(s.values()) for s in scenario.state_sets],
                                 scenario.room.events)
    assert {scenario.named["grant_m1"].event_id, scenario.named["grant_m2"].event_id} <= difference


@by_version
def test_an_old_membership_is_not_resurrected(room_version: RoomVersion) -> None:
    scenario = leave_join_leave(room_version)
    assert holds(resolve(scenario, room_version), scenario.named["second_leave"])


@pytest.mark.parametrize("room_version", V2_VERSIONS, ids=lambda v: f"v{v.identifier}")
def test_v2_checks_power_events_against_the_unconflicted_state(
    room_version: RoomVersion,
) -> None:
    """v2 step 2 starts from the unconflicted state, where the banning moderator has left."""
    scenario = ban_by_moderator_who_left(room_version)
    assert holds(resolve(scenario, room_version), scenario.named["join"])


def test_v2_1_checks_power_events_from_an_empty_state() -> None:
    """v2.1 (room version 12) step 2 starts from an empty state map: the ban is checked
    against its own auth events, where the moderator had not left yet."""
    scenario = ban_by_moderator_who_left(V12)
    assert holds(resolve(scenario, V12), scenario.named["ban"])


@pytest.mark.parametrize("room_version", V2_VERSIONS, ids=lambda v: f"v{v.identifier}")
def test_v2_replays_only_the_conflicted_power_levels(room_version: RoomVersion) -> None:
    """Without the promotion in between, the raise fails against the original power levels:
    v2 lets the claimed old power levels win."""
    scenario = power_levels_reset_claim(room_version)
    assert holds(resolve(scenario, room_version), scenario.named["original"])


def test_v2_1_replays_the_conflicted_state_subgraph() -> None:
    """v2.1 adds the events on auth paths between conflicted events to the full conflicted
    set: the promotion is replayed between the two power levels events and the raise holds."""
    scenario = power_levels_reset_claim(V12)
    original, promotion, raise_ = (scenario.named[n] for n in ("original", "promotion", "raise"))
    events = scenario.room.events
    assert promotion.event_id not in auth_difference(
        [set(s.values()) for s in scenario.state_sets], events
    )
    subgraph = conflicted_subgraph({original.event_id, raise_.event_id}, events)
    assert {original.event_id, promotion.event_id, raise_.event_id} <= subgraph
    # On the way from the raise to the original: the moderator's and the admin's joins (both
    # cite the original power levels); not on it: the topic and other members' joins.
    senders = {events[e].sender for e in subgraph if events[e].type == "m.room.member"}
    assert senders == {MOD1, ADMIN}
    assert all(events[e].type != "m.room.topic" for e in subgraph)
    assert holds(resolve(scenario, V12), raise_)


@pytest.mark.parametrize("room_version", V2_VERSIONS, ids=lambda v: f"v{v.identifier}")
def test_step_1_does_not_reach_through_events_outside_the_full_conflicted_set(
    room_version: RoomVersion,
) -> None:
    """The admin's first join is in the kick's auth chain only through the invite, which is
    not in the full conflicted set: step 1 does not take it (as in Synapse), step 3 sorts it
    after the admin's earlier-stamped rejoin, and the first join wins. (Were it replayed with
    the power events, the rejoin would win.)"""
    scenario = kick_cites_a_rejoin_through_an_invite(room_version)
    rejoin, first_join = scenario.named["rejoin"], scenario.named["first_join"]
    assert rejoin.origin_server_ts < first_join.origin_server_ts
    resolved = resolve(scenario, room_version)
    assert holds(resolved, first_join)
    assert holds(resolved, scenario.named["join"])


def test_v2_1_step_1_reaches_through_the_conflicted_state_subgraph() -> None:
    """In room version 12 the invite is on the auth path between the kick and the first join
    (both conflicted), so it is in the full conflicted set: step 1 reaches the first join and
    replays it before the rejoin, which wins."""
    scenario = kick_cites_a_rejoin_through_an_invite(V12)
    resolved = resolve(scenario, V12)
    assert holds(resolved, scenario.named["rejoin"])
    assert holds(resolved, scenario.named["join"])


@by_version
def test_join_rules_under_another_state_key_are_ordered_by_the_mainline(
    room_version: RoomVersion,
) -> None:
    """Join rules under the state key ``x`` are not power events: sorted by timestamp in step
    3, the admin's later event wins over the moderator's earlier one (as power events, sorted
    by power level, the admin's would be replayed first and lose)."""
    scenario = join_rules_under_another_state_key(room_version)
    admin, moderator = scenario.named["admin"], scenario.named["moderator"]
    assert moderator.origin_server_ts < admin.origin_server_ts
    assert holds(resolve(scenario, room_version), admin)


@by_version
def test_a_state_set_without_the_create_event(room_version: RoomVersion) -> None:
    """The member who joined while the room was public fails against the invite-only rule:
    before v12 because the replay starts from the unconflicted state, from v12 because the
    conflicted create event, implied as an auth event of every other event, brings every path
    down to it (through the join rules change) into the conflicted state subgraph."""
    scenario = claimed_state_without_the_create_event(room_version)
    resolved = resolve(scenario, room_version)
    assert scenario.named["old_join"].state_tuple not in resolved
    assert holds(resolved, scenario.named["join"])
    assert holds(resolved, scenario.named["invite_only"])
    assert resolved[("m.room.create", "")] == scenario.room.create_id


def test_creators_outrank_everyone_from_v12() -> None:
    """Creators have infinite power: the creator's demotion of the admin sorts first although
    the admin's ban is older, and the ban then fails."""
    scenario = creator_demotes_admin_who_bans(V12)
    ban, demotion = scenario.named["ban"], scenario.named["demotion"]
    assert ban.origin_server_ts < demotion.origin_server_ts
    resolved = resolve(scenario, V12)
    assert holds(resolved, demotion)
    assert not holds(resolved, ban)


# --- Definitions ---------------------------------------------------------------------------


def _base(room_version: RoomVersion = V11) -> tuple[Room, Fork]:
    base = build_base(room_version, "public", co_creator=False)
    return base.room, base.trunk


def test_power_events() -> None:
    """Power events as Synapse counts them: power levels, join rules and create events with an
    empty state key, and leaves and bans whose sender is not the target."""
    room, trunk = _base()
    m1, m2, m3 = MEMBERS
    power = [
        trunk.power_levels(ADMIN, lambda content: content.update(kick=40)),
        trunk.join_rule(ADMIN, "invite"),
        trunk.membership(MOD1, m1, "leave"),
        trunk.membership(MOD1, m2, "ban"),
        room.events[room.create_id],
    ]
    not_power = [
        trunk.membership(m3, m3, "leave"),
        trunk.membership(ADMIN, m1, "invite"),
        trunk.topic(MOD1, "topic"),
        # The spec names these types without a state key condition; Synapse asks for "".
        trunk.send(ADMIN, "m.room.join_rules", {"join_rule": "public"}, "other"),
        trunk.send(ADMIN, "m.room.power_levels", dict(trunk.room.events[
            trunk.state[("m.room.power_levels", "")]].content), "other"),
    ]
    assert all(pdu is not None and _is_power_event(pdu) for pdu in power)
    assert all(pdu is not None and not _is_power_event(pdu) for pdu in not_power)


def test_auth_chain_is_the_union_of_auth_events_recursively() -> None:
    room, trunk = _base()
    ban = trunk.membership(MOD1, MEMBERS[0], "ban")
    assert ban is not None
    chain = auth_chain([ban.event_id], room.events)
    assert set(ban.auth_events) <= chain
    assert ban.event_id not in chain
    for event_id in chain:
        assert set(room.events[event_id].auth_events) <= chain
    assert room.create_id in chain
    kick = trunk.membership(MOD1, MEMBERS[1], "leave")
    assert kick is not None
    both = auth_chain([ban.event_id, kick.event_id], room.events)
    assert both == chain | auth_chain([kick.event_id], room.events)


def test_v12_auth_chains_hold_the_create_event_the_room_id_implies() -> None:
    """From room version 12 no event cites the create event in ``auth_events``; its room ID
    implies it instead, and auth chains hold it (as in Synapse)."""
    room, trunk = _base(V12)
    ban = trunk.membership(MOD1, MEMBERS[0], "ban")
    assert ban is not None
    assert all(room.create_id not in room.events[e].auth_events for e in room.events)
    assert room.create_id in auth_chain([ban.event_id], room.events)
    creator_join = room.events[trunk.state[("m.room.member", CREATOR)]]
    assert creator_join.auth_events == ()
    assert auth_chain([creator_join.event_id], room.events) == {room.create_id}
    assert auth_chain([room.create_id], room.events) == set()


def test_v12_auth_difference_with_a_state_set_lacking_the_create_event() -> None:
    """The create event is in the full auth chain of every state set that holds any event, so
    it is in the auth difference only against an empty state set."""
    room, trunk = _base(V12)
    full = dict(trunk.state)
    without_create = {k: v for k, v in full.items() if k != ("m.room.create", "")}
    events = room.events
    assert auth_difference([set(full.values()), set(without_create.values())], events) == set()
    assert room.create_id in auth_difference([set(full.values()), set()], events)


def test_auth_difference_counts_each_state_set_in_its_own_auth_chain() -> None:
    """Reading of "the full auth chain for each state S_i": the state set's events are part of
    it (as in Synapse). An event present in every state set is thus never in the auth
    difference, even if only one state set's other events cite it."""
    room, trunk = _base()
    first, second = trunk.fork(), trunk.fork()
    topic = first.topic(MOD1, "only on the first fork")
    assert topic is not None
    mod1_join = first.state[("m.room.member", MOD1)]
    assert mod1_join in topic.auth_events
    difference = auth_difference([set(first.state.values()), set(second.state.values())],
                                 room.events)
    assert difference == {topic.event_id}


def test_conflicted_subgraph_holds_the_paths_between_conflicted_events() -> None:
    scenario = leave_join_leave(V12)
    first_leave = scenario.named["first_leave"].event_id
    second_leave = scenario.named["second_leave"].event_id
    rejoin = scenario.named["rejoin"].event_id
    events = scenario.room.events
    assert conflicted_subgraph({first_leave, second_leave}, events) == {
        first_leave, rejoin, second_leave,
    }
    assert conflicted_subgraph({first_leave}, events) == {first_leave}


def test_a_conflicted_v12_create_event_puts_every_ancestor_in_the_conflicted_subgraph() -> None:
    """Every event of a room version 12 room other than the create event has an auth path
    down to it (the implied link), so with the create event conflicted the subgraph is every
    ancestor of the conflicted events."""
    scenario = leave_join_leave(V12)
    second_leave = scenario.named["second_leave"].event_id
    events = scenario.room.events
    create_id = scenario.room.create_id
    subgraph = conflicted_subgraph({second_leave, create_id}, events)
    assert subgraph == auth_chain([second_leave], events) | {second_leave}
    assert scenario.named["rejoin"].event_id in subgraph
    assert conflicted_subgraph({second_leave}, events) == {second_leave}


def test_step_1_follows_auth_events_only_within_the_full_conflicted_set() -> None:
    """Step 1 takes an event of the full conflicted set into the power events' graph only
    through ``auth_events`` links between events of that set (as Synapse does), not through
    events outside it, even when it is in a power event's auth chain."""
    room, trunk = _base()
    outsider = USERS[-1]
    invite = trunk.membership(ADMIN, outsider, "invite")
    join = trunk.membership(outsider, outsider, "join")
    kick = trunk.membership(ADMIN, outsider, "leave")
    assert invite is not None and join is not None and kick is not None
    assert invite.event_id not in kick.auth_events
    assert invite.event_id in auth_chain([kick.event_id], room.events)
    through_outside = {kick.event_id, invite.event_id}
    graph = power_event_graph([kick.event_id], through_outside, room.events)
    assert graph == {kick.event_id: frozenset()}
    inside = {kick.event_id, join.event_id, invite.event_id}
    assert power_event_graph([kick.event_id], inside, room.events) == {
        kick.event_id: frozenset({join.event_id}),
        join.event_id: frozenset({invite.event_id}),
        invite.event_id: frozenset(),
    }


def test_step_1_links_every_v12_event_to_a_conflicted_create_event() -> None:
    room, trunk = _base(V12)
    kick = trunk.membership(ADMIN, MEMBERS[0], "leave")
    assert kick is not None
    graph = power_event_graph(
        [kick.event_id, room.create_id], {kick.event_id, room.create_id}, room.events
    )
    assert graph == {kick.event_id: frozenset({room.create_id}), room.create_id: frozenset()}


def test_reverse_topological_order_picks_the_smallest_ready_event_each_time() -> None:
    """Kahn's algorithm choosing among *all* ready events: a high-power event that becomes
    ready comes before an older low-power event that was ready all along."""
    room, trunk = _base()
    first = trunk.topic(MOD1, "first", 1)
    second = trunk.topic(MOD2, "second", 1)
    child = trunk.topic(ADMIN, "child", 1)
    assert first is not None and second is not None and child is not None
    power = {first.event_id: 0, second.event_id: 0, child.event_id: 100}
    graph = {
        first.event_id: frozenset(),
        second.event_id: frozenset(),
        child.event_id: frozenset({first.event_id}),
    }
    order = _reverse_topological_power_order(
        graph, room.events, lambda pdu: power[pdu.event_id]
    )
    assert order == [first.event_id, child.event_id, second.event_id]


# --- Rejected events -------------------------------------------------------------------------


def _racing_topics(room_version: RoomVersion) -> tuple[Room, list[dict[StateKey, str]], Pdu, Pdu]:
    """MOD2 sets the topic on one fork, later by the clock than MOD1 on the other."""
    room, trunk = _base(room_version)
    first, second = trunk.fork(), trunk.fork()
    later = first.topic(MOD2, "later", 5)
    earlier = second.topic(MOD1, "earlier", 1)
    assert later is not None and earlier is not None
    return room, [first.state, second.state], later, earlier


@pytest.mark.parametrize("room_version", [V11, V12], ids=lambda v: f"v{v.identifier}")
def test_rejected_events_do_not_authorise(room_version: RoomVersion) -> None:
    """Once MOD2's join is marked rejected, MOD2's topic fails: v2.1 would take the join from
    the topic's auth events, v2 from the unconflicted state; neither uses a rejected event."""
    room, state_sets, later, earlier = _racing_topics(room_version)
    assert holds(resolve_state(room_version, state_sets, room.events), later)
    mod2_join = state_sets[0][("m.room.member", MOD2)]
    resolved = resolve_state(room_version, state_sets, room.events, rejected={mod2_join})
    assert holds(resolved, earlier)
    assert resolved[("m.room.member", MOD2)] == mod2_join


@pytest.mark.parametrize("room_version", [V11, V12], ids=lambda v: f"v{v.identifier}")
def test_rejected_events_never_enter_the_resolved_state(room_version: RoomVersion) -> None:
    """A rejected event in the conflicted state set is skipped by the iterative auth checks,
    though it would pass them (as in Synapse, not as the spec's "Rejected events" words it):
    the other topic wins."""
    room, state_sets, later, earlier = _racing_topics(room_version)
    assert holds(resolve_state(room_version, state_sets, room.events), later)
    resolved = resolve_state(room_version, state_sets, room.events, rejected={later.event_id})
    assert holds(resolved, earlier)


@pytest.mark.parametrize("room_version", [V11, V12], ids=lambda v: f"v{v.identifier}")
def test_rejected_events_of_the_unconflicted_state_map_stay(room_version: RoomVersion) -> None:
    """Step 5 puts the unconflicted state map back whatever the iterative auth checks did."""
    room, state_sets, _, _ = _racing_topics(room_version)
    join_rules = state_sets[0][("m.room.join_rules", "")]
    assert state_sets[1][("m.room.join_rules", "")] == join_rules
    resolved = resolve_state(room_version, state_sets, room.events, rejected={join_rules})
    assert resolved[("m.room.join_rules", "")] == join_rules


@pytest.mark.parametrize("room_version", [V11, V12], ids=lambda v: f"v{v.identifier}")
def test_a_rejected_power_event_neither_enters_the_state_nor_authorises(
    room_version: RoomVersion,
) -> None:
    """The chain of grants with the first grant marked rejected: it is skipped, so the second
    grant (by the member it promoted) fails against the original power levels, and so does
    the change of the ban level by the member the second grant promoted."""
    scenario = chain_of_grants(room_version)
    events = scenario.room.events
    original = scenario.state_sets[1][("m.room.power_levels", "")]
    assert holds(resolve(scenario, room_version), scenario.named["ban_level"])
    grant_m1 = scenario.named["grant_m1"].event_id
    resolved = resolve_state(room_version, scenario.state_sets, events, rejected={grant_m1})
    assert resolved[("m.room.power_levels", "")] == original
    assert holds(resolved, scenario.named["topic"])


@pytest.mark.parametrize("room_version", [V11, V12], ids=lambda v: f"v{v.identifier}")
def test_a_rejected_create_event_authorises_nothing(room_version: RoomVersion) -> None:
    """Cited in ``auth_events`` (before v12) or implied by the room ID (v12), a rejected create
    event authorises nothing: neither topic is allowed."""
    room, state_sets, later, _ = _racing_topics(room_version)
    assert holds(resolve_state(room_version, state_sets, room.events), later)
    resolved = resolve_state(room_version, state_sets, room.events, rejected={room.create_id})
    assert ("m.room.topic", "") not in resolved
    assert resolved[("m.room.create", "")] == room.create_id


# --- Failures ----------------------------------------------------------------------------------


def test_missing_events_are_all_named() -> None:
    room, state_sets, later, earlier = _racing_topics(V11)
    events = dict(room.events)
    del events[later.event_id]
    del events[earlier.event_id]
    with pytest.raises(MissingEvents) as raised:
        resolve_state(V11, state_sets, events)
    assert raised.value.event_ids == {later.event_id, earlier.event_id}


def test_missing_auth_events_are_named() -> None:
    room, state_sets, later, _ = _racing_topics(V11)
    events = dict(room.events)
    missing = room.events[later.auth_events[-1]]
    del events[missing.event_id]
    state_sets = [
        {k: v for k, v in s.items() if v != missing.event_id} for s in state_sets
    ]
    with pytest.raises(MissingEvents) as raised:
        resolve_state(V11, state_sets, events)
    assert missing.event_id in raised.value.event_ids


def test_v12_needs_the_create_event() -> None:
    room, state_sets, _, _ = _racing_topics(V12)
    events = {k: v for k, v in room.events.items() if k != room.create_id}
    without_create = [{k: v for k, v in s.items() if v != room.create_id} for s in state_sets]
    with pytest.raises(MissingEvents) as raised:
        resolve_state(V12, without_create, events)
    assert raised.value.event_ids == {room.create_id}


def test_events_of_another_room_are_refused() -> None:
    room, state_sets, _, _ = _racing_topics(V11)
    other_room, other_trunk = _base(V12)
    stray = other_trunk.topic(MOD1, "elsewhere")
    assert stray is not None
    events = {**room.events, **other_room.events}
    mixed = [dict(state_sets[0]), {**state_sets[1], ("m.room.topic", ""): stray.event_id}]
    with pytest.raises(MatrixError, match="mixes rooms"):
        resolve_state(V11, mixed, events)


def test_no_state_sets_resolve_to_nothing() -> None:
    assert resolve_state(V11, [], {}) == {}


# --- Invariants over random rooms ----------------------------------------------------------

_moves = st.lists(
    st.builds(
        Move,
        kind=st.sampled_from(MOVE_KINDS),
        fork=st.integers(0, 3),
        actor=st.integers(0, len(USERS) - 1),
        target=st.integers(0, len(USERS) - 1),
        value=st.integers(0, 4),
        ts_step=st.sampled_from((-3, 0, 1, 2, 7)),
    ),
    min_size=4,
    max_size=30,
)
_random_rooms = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _random_states(
    room_version: RoomVersion, join_rule: str, moves: list[Move]
) -> tuple[Room, list[dict[StateKey, str]]]:
    base = build_base(room_version, join_rule, co_creator=False)

    def merge(state_sets: list[dict[StateKey, str]], events: Mapping[str, Pdu]) -> dict[
        StateKey, str
    ]:
        return resolve_state(room_version, state_sets, events)

    room, forks = play(base, moves, merge)
    return room, [fork.state for fork in forks]


@_random_rooms
@given(
    room_version=st.sampled_from([V10, V11, V12]),
    join_rule=st.sampled_from(JOIN_RULES),
    moves=_moves,
    data=st.data(),
)
def test_order_of_state_sets_does_not_matter(
    room_version: RoomVersion, join_rule: str, moves: list[Move], data: st.DataObject
) -> None:
    room, state_sets = _random_states(room_version, join_rule, moves)
    expected = resolve_state(room_version, state_sets, room.events)
    shuffled = data.draw(st.permutations(state_sets))
    assert resolve_state(room_version, shuffled, room.events) == expected
    repeated = [*state_sets, state_sets[0]]
    assert resolve_state(room_version, repeated, room.events) == expected


@_random_rooms
@given(room_version=st.sampled_from([V10, V11, V12]), moves=_moves)
def test_resolving_one_state_or_copies_of_it_gives_it_back(
    room_version: RoomVersion, moves: list[Move]
) -> None:
    room, state_sets = _random_states(room_version, "public", moves)
    for state in state_sets:
        assert resolve_state(room_version, [state], room.events) == state
        assert resolve_state(room_version, [state, dict(state), state], room.events) == state


@_random_rooms
@given(room_version=st.sampled_from([V10, V11, V12]), moves=_moves)
def test_unconflicted_state_is_kept(room_version: RoomVersion, moves: list[Move]) -> None:
    room, state_sets = _random_states(room_version, "public", moves)
    resolved = resolve_state(room_version, state_sets, room.events)
    for key, event_id in state_sets[0].items():
        if all(other.get(key) == event_id for other in state_sets[1:]):
            assert resolved[key] == event_id
