"""Scenarios for state resolution tests, built with :mod:`tests.unit.core.dag_builder`.

- Random scenarios: a base room (:func:`build_base`), then :func:`play` runs a list of
  :class:`Move` values (drawn by hypothesis) on forks of it, merging forks now and then.
- Named scenarios: the races the algorithm is designed for. Each returns the room, the state
  sets to resolve and the events a test wants to name; the expectations live in the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rocketnode.core.pdu import Pdu, StateKey
from rocketnode.core.room_versions import RoomVersion
from tests.unit.core.dag_builder import CREATE_KEY, POWER_LEVELS_KEY, Fork, Room

# Random scenarios: a base room, then forks that race changes, merged now and then.

CREATOR = "@creator:a.test"
CO_CREATOR = "@cocreator:c.test"
ADMIN = "@admin:b.test"
MOD1 = "@mod1:a.test"
MOD2 = "@mod2:c.test"
MEMBERS = ("@m1:b.test", "@m2:c.test", "@m3:a.test")
INVITED = "@inv:d.test"
OUTSIDER = "@out:d.test"
USERS = (CREATOR, CO_CREATOR, ADMIN, MOD1, MOD2, *MEMBERS, INVITED, OUTSIDER)
"""Everyone who acts in random scenarios; ``CO_CREATOR`` is only a creator in room v12 bases
made with ``co_creator``, and otherwise starts outside the room like ``OUTSIDER``."""

LEVELS = (0, 25, 50, 75, 100)
JOIN_RULES = ("public", "invite", "knock")
KEYED_TYPES = ("m.room.join_rules", "m.room.power_levels")
"""Types of power events when their state key is empty; the ``keyed_state`` move sends them
with the state key ``x``, which makes them ordinary state events (see ``_is_power_event``)."""
NAMED_LEVELS = ("ban", "kick", "invite", "state_default", "events_default", "redact")
MAX_FORKS = 4

Resolve = Callable[[list[dict[StateKey, str]], Mapping[str, Pdu]], dict[StateKey, str]]
"""Resolves the states of forks being merged: ``(state_sets, events) -> state``."""


@dataclass(frozen=True, slots=True)
class Move:
    """One step of a random scenario; indexes wrap around what they index."""

    kind: str
    fork: int = 0
    actor: int = 0
    target: int = 0
    value: int = 0
    ts_step: int = 1


MOVE_KINDS = (
    "join", "leave", "invite", "kick", "ban", "knock", "level", "named_level", "join_rule",
    "keyed_state", "topic", "name", "fork", "merge",
)


@dataclass(frozen=True, slots=True)
class BaseRoom:
    """A room's first events, kept to start many scenarios from."""

    room: Room
    trunk: Fork


def build_base(room_version: RoomVersion, join_rule: str, co_creator: bool) -> BaseRoom:
    """Create, power levels (an admin at 100, two moderators at 50), join rules, members
    joined, one user invited."""
    room = Room(room_version)
    extra = [CO_CREATOR] if co_creator and room_version.privileged_creators else []
    trunk = room.create(CREATOR, additional_creators=extra)
    users = {ADMIN: 100, MOD1: 50, MOD2: 50}
    if not room_version.privileged_creators:
        users[CREATOR] = 100
    steps = [
        trunk.power_levels(CREATOR, lambda content: content.update(users=users)),
        trunk.join_rule(CREATOR, "public"),
        *(trunk.membership(user, user, "join") for user in (*extra, ADMIN, MOD1, MOD2, *MEMBERS)),
        trunk.membership(ADMIN, INVITED, "invite"),
        trunk.join_rule(ADMIN, join_rule) if join_rule != "public" else True,
    ]
    if not all(steps):
        raise AssertionError("the base room could not be built")
    return BaseRoom(room, trunk)


def play(base: BaseRoom, moves: Iterable[Move], resolve: Resolve) -> tuple[Room, list[Fork]]:
    """Run ``moves`` from two forks of ``base``; return the room and the forks at the end.

    Moves the authorisation rules refuse are skipped. A merge resolves the states of two forks
    with ``resolve`` and continues one of them from the result.
    """
    room = base.room.copy()
    forks = [base.trunk.fork(room), base.trunk.fork(room)]
    for move in moves:
        fork = forks[move.fork % len(forks)]
        if move.kind == "fork":
            if len(forks) < MAX_FORKS:
                forks.append(fork.fork())
        elif move.kind == "merge":
            other = forks[move.target % len(forks)]
            if other is not fork:
                fork.merge([other], resolve([fork.state, other.state], room.events))
        else:
            _act(fork, move)
    return room, forks


def _act(fork: Fork, move: Move) -> Pdu | None:
    actor = USERS[move.actor % len(USERS)]
    target = USERS[move.target % len(USERS)]
    level = LEVELS[move.value % len(LEVELS)]
    step = move.ts_step
    kind = move.kind
    if kind in ("join", "leave", "knock"):
        return fork.membership(actor, actor, kind, step)
    if kind in ("invite", "ban"):
        return fork.membership(actor, target, kind, step)
    if kind == "kick":
        return fork.membership(actor, target, "leave", step)
    if kind == "level":
        return fork.power_levels(
            actor, lambda content: content.setdefault("users", {}).update({target: level}), step
        )
    if kind == "named_level":
        name = NAMED_LEVELS[move.target % len(NAMED_LEVELS)]
        return fork.power_levels(actor, lambda content: content.update({name: level}), step)
    if kind == "join_rule":
        return fork.join_rule(actor, JOIN_RULES[move.value % len(JOIN_RULES)], step)
    if kind == "keyed_state":
        return _keyed_state(fork, actor, KEYED_TYPES[move.target % 2], move.value, step)
    if kind == "topic":
        return fork.topic(actor, f"topic {move.value}", step)
    if kind == "name":
        return fork.name(actor, f"name {move.value}", step)
    raise ValueError(f"unknown move {kind!r}")


def _keyed_state(fork: Fork, actor: str, event_type: str, value: int, step: int) -> Pdu | None:
    """Under the state key ``x``: a join rules event with the rule ``value`` picks, or a copy of
    the current power levels (which passes the power levels auth rule)."""
    if event_type == "m.room.join_rules":
        content: dict[str, Any] = {"join_rule": JOIN_RULES[value % len(JOIN_RULES)]}
    else:
        current = fork.state.get(POWER_LEVELS_KEY)
        content = dict(fork.room.events[current].content) if current is not None else {}
    return fork.send(actor, event_type, content, "x", step)


# Named scenarios: the races the algorithm is designed for. Each returns the room, the state
# sets to resolve and the events a test wants to name; the expectations live in the tests.


@dataclass(frozen=True, slots=True)
class Scenario:
    room: Room
    state_sets: list[dict[StateKey, str]]
    named: dict[str, Pdu]


def _two_forks(room_version: RoomVersion, join_rule: str = "public") -> tuple[Fork, Fork]:
    base = build_base(room_version, join_rule, co_creator=False)
    return base.trunk.fork(), base.trunk.fork()


def _finish(first: Fork, second: Fork, **named: Pdu | None) -> Scenario:
    missing = [name for name, pdu in named.items() if pdu is None]
    if missing:
        raise AssertionError(f"scenario events refused by the auth rules: {missing}")
    return Scenario(
        first.room,
        [dict(first.state), dict(second.state)],
        {name: pdu for name, pdu in named.items() if pdu is not None},
    )


def ban_races_displayname_change(room_version: RoomVersion) -> Scenario:
    """A moderator bans a member while, on another fork, the member changes their name."""
    first, second = _two_forks(room_version)
    ban = first.membership(MOD1, MEMBERS[0], "ban")
    rename = second.membership(MEMBERS[0], MEMBERS[0], "join", 5, displayname="new name")
    return _finish(first, second, ban=ban, rename=rename)


def demoted_moderator_bans(room_version: RoomVersion) -> Scenario:
    """The admin demotes a moderator on one fork; the moderator bans someone on the other."""
    first, second = _two_forks(room_version)
    demotion = first.power_levels(ADMIN, lambda content: content["users"].update({MOD1: 0}))
    ban = second.membership(MOD1, MEMBERS[0], "ban")
    return _finish(first, second, demotion=demotion, ban=ban)


def join_rule_flip_races_join(room_version: RoomVersion) -> Scenario:
    """The admin makes the room invite-only while, elsewhere, an outsider joins."""
    first, second = _two_forks(room_version)
    invite_only = first.join_rule(ADMIN, "invite", 5)
    join = second.membership(OUTSIDER, OUTSIDER, "join", 1)
    return _finish(first, second, invite_only=invite_only, join=join)


def concurrent_topics(room_version: RoomVersion) -> Scenario:
    """Two moderators set the topic at the same time; the later ``origin_server_ts`` is last."""
    first, second = _two_forks(room_version)
    earlier = first.topic(MOD1, "earlier", 1)
    later = second.topic(MOD2, "later", 5)
    return _finish(first, second, earlier=earlier, later=later)


def topic_after_power_change(room_version: RoomVersion) -> Scenario:
    """A topic sent after a power levels change beats a topic that cites the older power
    levels, even though the latter has a later ``origin_server_ts`` (mainline ordering)."""
    first, second = _two_forks(room_version)
    promotion = first.power_levels(ADMIN, lambda content: content["users"].update({MOD2: 75}))
    newer_epoch = first.topic(MOD1, "after the change", 1)
    older_epoch = second.topic(MOD2, "before the change", 50)
    return _finish(
        first, second, promotion=promotion, newer_epoch=newer_epoch, older_epoch=older_epoch
    )


def chain_of_grants(room_version: RoomVersion) -> Scenario:
    """admin promotes m1, m1 promotes m2, m2 lowers the ban level: the last change only passes
    if the two grants before it, found in the auth difference, are replayed."""
    first, second = _two_forks(room_version)
    m1, m2 = MEMBERS[0], MEMBERS[1]
    grant_m1 = first.power_levels(ADMIN, lambda content: content["users"].update({m1: 50}))
    grant_m2 = first.power_levels(m1, lambda content: content["users"].update({m2: 50}))
    ban_level = first.power_levels(m2, lambda content: content.update(ban=25))
    topic = second.topic(MOD1, "meanwhile")
    return _finish(
        first, second, grant_m1=grant_m1, grant_m2=grant_m2, ban_level=ban_level, topic=topic
    )


def leave_join_leave(room_version: RoomVersion) -> Scenario:
    """A member leaves; on one fork they come back and leave again. The rejoin in the middle
    must not be resurrected (MSC1442's "Hotel California")."""
    base = build_base(room_version, "public", co_creator=False)
    m1 = MEMBERS[0]
    first_leave = base.trunk.membership(m1, m1, "leave")
    first, second = base.trunk.fork(), base.trunk.fork()
    rejoin = second.membership(m1, m1, "join")
    second_leave = second.membership(m1, m1, "leave")
    return _finish(
        first, second, first_leave=first_leave, rejoin=rejoin, second_leave=second_leave
    )


def ban_by_moderator_who_left(room_version: RoomVersion) -> Scenario:
    """A moderator bans a member, then leaves. The second state set is the first with the
    member's join instead of the ban (as a remote server might claim). From room version 12
    the ban is checked against its own auth events (the first pass of iterative auth checks
    starts from an empty state), before that against the unconflicted state, in which the
    moderator has left."""
    first, _ = _two_forks(room_version)
    m1 = MEMBERS[0]
    join = first.room.events[first.state[("m.room.member", m1)]]
    ban = first.membership(MOD1, m1, "ban")
    leave = first.membership(MOD1, MOD1, "leave")
    if ban is None or leave is None:
        raise AssertionError("scenario events refused by the auth rules")
    claimed = dict(first.state)
    claimed[("m.room.member", m1)] = join.event_id
    return Scenario(first.room, [dict(first.state), claimed], {"ban": ban, "join": join})


def power_levels_reset_claim(room_version: RoomVersion) -> Scenario:
    """The admin promotes a moderator to 100 (``promotion``), who then raises a member to 75
    (``raise``). The second state set claims the power levels are still the first ones
    (``original``), as a faulty server might. ``promotion`` is in every full auth chain (other
    state cites it), so only v2.1's conflicted state subgraph brings it into the replay, and
    without it ``raise`` fails against ``original``."""
    base = build_base(room_version, "public", co_creator=False)
    trunk = base.trunk
    original = trunk.room.events[trunk.state[POWER_LEVELS_KEY]]
    promotion = trunk.power_levels(ADMIN, lambda content: content["users"].update({MOD1: 100}))
    topic = trunk.topic(MOD2, "cites the promotion")
    raise_ = trunk.power_levels(MOD1, lambda content: content["users"].update({MEMBERS[0]: 75}))
    if promotion is None or topic is None or raise_ is None:
        raise AssertionError("scenario events refused by the auth rules")
    claimed = {**trunk.state, POWER_LEVELS_KEY: original.event_id}
    return Scenario(
        trunk.room,
        [dict(trunk.state), claimed],
        {"original": original, "promotion": promotion, "raise": raise_},
    )


def kick_cites_a_rejoin_through_an_invite(room_version: RoomVersion) -> Scenario:
    """The creator revokes the invite of the invited user on one fork (``kick``). On the other,
    the invited user joins and the admin changes their display name (``rejoin``) with a clock
    that runs behind: ``rejoin`` is older by ``origin_server_ts`` than the admin's first join
    (``first_join``). ``first_join`` is in the kick's auth chain (the kick cites the invite,
    which the admin sent), but the invite is in no state set's conflicted state nor in the auth
    difference. Step 1 follows auth events only within the full conflicted set (as Synapse
    does), so before room version 12 it does not reach ``first_join``, which is then sorted by
    timestamp after ``rejoin`` in step 3; from room version 12 the invite is on the conflicted
    state subgraph (between the kick and ``first_join``) and step 1 reaches it."""
    first, second = _two_forks(room_version)
    first_join = first.room.events[first.state[("m.room.member", ADMIN)]]
    kick = first.membership(CREATOR, INVITED, "leave")
    join = second.membership(INVITED, INVITED, "join")
    behind = first_join.origin_server_ts - second.ts - 5
    rejoin = second.membership(ADMIN, ADMIN, "join", behind, displayname="Admin")
    scenario = _finish(first, second, kick=kick, join=join, rejoin=rejoin)
    scenario.named["first_join"] = first_join
    return scenario


def join_rules_under_another_state_key(room_version: RoomVersion) -> Scenario:
    """The admin and, earlier by the clock, a moderator each send an ``m.room.join_rules`` event
    with the state key ``x`` on their own fork. Such events are not power events (Synapse asks
    for an empty state key), so the mainline ordering sorts them by timestamp and the admin's
    later one is applied last; as power events the admin's would sort first, by power level."""
    first, second = _two_forks(room_version)
    admin = first.send(ADMIN, "m.room.join_rules", {"join_rule": "invite"}, "x", 10)
    moderator = second.send(MOD1, "m.room.join_rules", {"join_rule": "knock"}, "x", 1)
    return _finish(first, second, admin=admin, moderator=moderator)


def claimed_state_without_the_create_event(room_version: RoomVersion) -> Scenario:
    """The admin makes the room invite-only (``invite_only``), then the invited user joins
    (``join``). The second state set, as a faulty server might claim it, lacks the create event,
    the invited user's membership, and that of a member who joined while the room was public
    (``old_join``). Replayed against the invite-only rule, ``old_join`` fails.

    Before room version 12 the replay starts from the unconflicted state, which holds
    ``invite_only``. From room version 12 it starts empty, and ``invite_only`` is replayed
    because the create event, conflicted here, is an implied auth event of every other event:
    the paths from ``join`` down to it, through ``invite_only``, are in the conflicted state
    subgraph. Without that implied link ``old_join`` would be checked against the join rules
    it cites, which were public, and would stay."""
    base = build_base(room_version, "public", co_creator=False)
    trunk = base.trunk
    old_join = trunk.room.events[trunk.state[("m.room.member", MEMBERS[1])]]
    invite_only = trunk.join_rule(ADMIN, "invite")
    join = trunk.membership(INVITED, INVITED, "join")
    if invite_only is None or join is None:
        raise AssertionError("scenario events refused by the auth rules")
    dropped = {CREATE_KEY, old_join.state_tuple, join.state_tuple}
    claimed = {key: event_id for key, event_id in trunk.state.items() if key not in dropped}
    return Scenario(
        trunk.room,
        [dict(trunk.state), claimed],
        {"old_join": old_join, "invite_only": invite_only, "join": join},
    )


def creator_demotes_admin_who_bans(room_version: RoomVersion) -> Scenario:
    """Room version 12: the creator (infinite power) demotes the admin on one fork while the
    admin, earlier by the clock, bans a moderator on the other."""
    if not room_version.privileged_creators:
        raise ValueError("creators have infinite power only from room version 12")
    first, second = _two_forks(room_version)
    ban = second.membership(ADMIN, MOD1, "ban", 1)
    demotion = first.power_levels(
        CREATOR, lambda content: content["users"].update({ADMIN: 0}), 10
    )
    return _finish(first, second, ban=ban, demotion=demotion)


NAMED_SCENARIOS: tuple[Callable[[RoomVersion], Scenario], ...] = (
    ban_races_displayname_change,
    demoted_moderator_bans,
    join_rule_flip_races_join,
    concurrent_topics,
    topic_after_power_change,
    chain_of_grants,
    leave_join_leave,
    ban_by_moderator_who_left,
    power_levels_reset_claim,
    kick_cites_a_rejoin_through_an_invite,
    join_rules_under_another_state_key,
    claimed_state_without_the_create_event,
)
"""Scenarios for every room version."""

NAMED_SCENARIOS_FROM_V12: tuple[Callable[[RoomVersion], Scenario], ...] = (
    creator_demotes_admin_who_bans,
)
"""Scenarios that need room version 12 (``privileged_creators``)."""
