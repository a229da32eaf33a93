"""Differential tests: our authorisation rules against Synapse's ``synapse.event_auth``.

Hypothesis generates rooms (create event, power levels with edge values, join rules, members,
third-party invites) and events (memberships, power level changes, messages, state), and every
verdict (allowed or ``AuthError``) must equal Synapse's. Hand-built adversarial cases follow.

Where Synapse and the spec disagree the spec wins: such cases are listed in ``DIVERGENCES``
with the spec section, our spec verdict is asserted, the disagreement itself is asserted (so a
Synapse upgrade that changes it shows up) and the comparison is skipped with the reason. In the
random tests an input that falls into a known divergence is classified *before* looking at any
verdict, and only the direction the divergence allows is checked; the count of such cases is
printed and bounded.
"""

from __future__ import annotations

import functools
import json
import warnings
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rocketnode.core import power_levels
from rocketnode.core.auth_rules import (
    auth_types_for_event,
    check_auth_rules,
)
from rocketnode.core.errors import AuthError
from rocketnode.core.ids import server_name_of
from rocketnode.core.pdu import Pdu, StateKey, compute_content_hash
from rocketnode.core.receipt import check_against_auth_events
from rocketnode.core.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from rocketnode.core.signing import SigningKey, encode_base64
from tests.unit.core.roombuilder import RoomBuilder, signing_key, third_party_signed

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # Twisted deprecations on import
    from synapse import event_auth as synapse_auth
    from synapse.api.errors import SynapseError
    from synapse.api.room_versions import KNOWN_ROOM_VERSIONS as SYNAPSE_ROOM_VERSIONS
    from synapse.events import EventBase, make_event_from_dict

ALL_VERSIONS = list(KNOWN_ROOM_VERSIONS.values())
CREATE_KEY: StateKey = ("m.room.create", "")
POWER_LEVELS_KEY: StateKey = ("m.room.power_levels", "")
JOIN_RULES_KEY: StateKey = ("m.room.join_rules", "")

CREATOR = "@creator:a.test"
LOCAL = "@local:a.test"
BOB = "@bob:b.test"
CAROL = "@carol:c.test"
DAVE = "@dave:b.test"
EVE = "@eve:e.test"
POOL = (CREATOR, LOCAL, BOB, CAROL, DAVE, EVE)
TOKEN = "tok"

ALLOWED = "allowed"
REJECTED = "rejected"


def by_id(version: RoomVersion) -> str:
    return f"v{version.identifier}"


# --- Bridging to Synapse ---------------------------------------------------------------------


_synapse_events: dict[tuple[str, str, bool], EventBase] = {}


def to_synapse(pdu: Pdu, rejected: bool = False) -> EventBase:
    """Synapse's event for ``pdu``, built from the same JSON; its event ID must be ours."""
    key = (pdu.room_version.identifier, pdu.event_id, rejected)  # same JSON in two versions
    event = _synapse_events.get(key)
    if event is None:
        event = make_event_from_dict(
            pdu.data,
            SYNAPSE_ROOM_VERSIONS[pdu.room_version.identifier],
            rejected_reason="rejected in this test" if rejected else None,
        )
        assert event.event_id == pdu.event_id, "Synapse computes another event ID"
        _synapse_events[key] = event
    return event


class InMemoryStore:
    """The one store method ``check_state_independent_auth_rules`` uses."""

    def __init__(self, events: Iterable[EventBase]) -> None:
        self._events = {event.event_id: event for event in events}

    async def get_events(
        self,
        event_ids: Iterable[str],
        redact_behaviour: Any = None,
        get_prev_content: bool = False,
        allow_rejected: bool = False,
    ) -> dict[str, EventBase]:
        return {e: self._events[e] for e in event_ids if e in self._events}


def run_now(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends (our store answers at once)."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    coroutine.close()
    raise AssertionError("the coroutine suspended")


def our_verdict(check: Callable[[], None]) -> str:
    try:
        check()
    except AuthError:
        return REJECTED
    return ALLOWED


def synapse_verdict(check: Callable[[], Any]) -> str:
    """``allowed``, ``rejected`` (any ``SynapseError``, ``AuthError`` included), or
    ``crash:<exception>`` when Synapse fails in a way that is no verdict."""
    try:
        check()
    except SynapseError:
        return REJECTED
    except Exception as exc:  # a crash is reported, not hidden
        return f"crash:{type(exc).__name__}"
    return ALLOWED


def synapse_state_dependent(pdu: Pdu, state: Mapping[StateKey, Pdu]) -> str:
    """Synapse's verdict on the rules against a state; for a create event (which those skip)
    its create rule, from the state-independent checks."""
    event = to_synapse(pdu)
    if pdu.type == "m.room.create":
        store = InMemoryStore([])
        return synapse_verdict(
            lambda: run_now(synapse_auth.check_state_independent_auth_rules(store, event))
        )
    auth_events = [to_synapse(p) for p in state.values()]
    return synapse_verdict(
        lambda: synapse_auth.check_state_dependent_auth_rules(event, auth_events)
    )


def synapse_on_auth_events(
    pdu: Pdu, auth_events: Mapping[str, Pdu], rejected: Iterable[str]
) -> str:
    """Synapse's checks against the event's auth events: state-independent rules, then the
    state-dependent rules against the auth events (as its ``_check_event_auth`` does)."""
    rejected = set(rejected)
    known = [to_synapse(p, p.event_id in rejected) for p in auth_events.values()]
    event = to_synapse(pdu)

    def check() -> None:
        store = InMemoryStore(known)
        run_now(synapse_auth.check_state_independent_auth_rules(store, event))
        by_id = {e.event_id: e for e in known}
        cited = [by_id[e] for e in event.auth_event_ids()]
        synapse_auth.check_state_dependent_auth_rules(event, cited)

    return synapse_verdict(check)


# --- Fast unsigned PDUs ----------------------------------------------------------------------


@functools.lru_cache(maxsize=200_000)
def _make_pdu(
    version_id: str,
    room_id: str | None,
    event_type: str,
    sender: str,
    state_key: str | None,
    content_json: str,
    prev_events: tuple[str, ...],
    auth_events: tuple[str, ...],
) -> Pdu:
    data: dict[str, Any] = {
        "type": event_type,
        "sender": sender,
        "content": json.loads(content_json),
        "prev_events": list(prev_events),
        "auth_events": list(auth_events),
        "depth": 2,
        "origin_server_ts": 1_700_000_000_000,
    }
    if room_id is not None:
        data["room_id"] = room_id
    if state_key is not None:
        data["state_key"] = state_key
    data["hashes"] = {"sha256": encode_base64(compute_content_hash(data))}
    data["signatures"] = {server_name_of(sender): {"ed25519:x": "c2ln"}}
    return Pdu.from_json(KNOWN_ROOM_VERSIONS[version_id], data)


def make_pdu(
    version: RoomVersion,
    room_id: str | None,
    event_type: str,
    sender: str,
    content: Mapping[str, Any],
    state_key: str | None = None,
    prev_events: Iterable[str] = ("$prev",),
    auth_events: Iterable[str] = (),
) -> Pdu:
    """An unsigned PDU (the auth rules do not read signatures), cached by its fields."""
    return _make_pdu(
        version.identifier,
        room_id,
        event_type,
        sender,
        state_key,
        json.dumps(content, sort_keys=True),
        tuple(prev_events),
        tuple(auth_events),
    )


def make_create(version: RoomVersion, content: Mapping[str, Any], **fields: Any) -> Pdu:
    full = dict(content)
    if not version.implicit_room_creator:
        full.setdefault("creator", CREATOR)
    full.setdefault("room_version", version.identifier)
    room_id = None if version.room_id_from_create_event else "!room:a.test"
    fields.setdefault("prev_events", ())
    return make_pdu(version, room_id, "m.room.create", CREATOR, full, "", **fields)


@functools.lru_cache(maxsize=64)
def third_party_block(mxid: str, token: str, valid: bool) -> str:
    key = signing_key("id.test") if valid else SigningKey("test", b"\x01" * 32)
    return json.dumps(third_party_signed(mxid, token, "id.test", key))


# --- Strategies ------------------------------------------------------------------------------


LEVELS = (-1, 0, 1, 10, 49, 50, 51, 99, 100, 101)
NAMED = tuple(power_levels.NAMED_LEVEL_DEFAULTS)
EVENT_TYPES = ("m.room.message", "m.room.topic", "m.room.power_levels", "m.room.name",
               "m.room.redaction", "m.room.third_party_invite", "m.custom")
JOIN_RULES = ("public", "invite", "knock", "restricted", "knock_restricted", "private")
MEMBERSHIPS = ("join", "invite", "leave", "ban", "knock")


@functools.cache
def pick(options: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    """``sampled_from``, built once per tuple: building strategies inside draws is slow."""
    return st.sampled_from(options)


@functools.cache
def ints(low: int, high: int) -> st.SearchStrategy[int]:
    return st.integers(low, high)


BOOLS = st.booleans()


def stringy(level: int, style: int) -> str:
    """A string form of ``level`` that the v1 "stringy power levels" grammar allows."""
    text = str(level)
    forms = [text, f" {text}", f"{text} ", f"\t{text}\n"]
    if level >= 0:
        forms += [f"+{text}", f"00{text}"]
    return forms[style % len(forms)]


@functools.cache
def level_values(version: RoomVersion) -> st.SearchStrategy[Any]:
    integers = st.sampled_from(LEVELS)
    if version.integer_power_levels:
        return integers
    strings = st.tuples(integers, st.integers(0, 5)).map(lambda t: stringy(*t))
    return st.one_of(integers, integers, strings)


@functools.cache
def level_maps(
    keys: tuple[str, ...], version: RoomVersion, max_size: int
) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(pick(keys), level_values(version), max_size=max_size)


@functools.cache
def invalid_values(version: RoomVersion) -> st.SearchStrategy[Any]:
    """Values the rules must refuse in a new power levels event. Before v10 Synapse crashes
    (ValueError from ``int()``) on these, so they are drawn rarely there."""
    common = st.sampled_from([True, None, "lots", [50], {"x": 1}, "1.5"])
    if version.integer_power_levels:
        return st.one_of(common, st.sampled_from(["50", " 0", "+1"]))
    return common


@dataclass(frozen=True)
class Room:
    """A generated room state."""

    version: RoomVersion
    create: Pdu
    state: dict[StateKey, Pdu]

    @property
    def room_id(self) -> str:
        return self.create.room_id

    @property
    def creators(self) -> frozenset[str]:
        return power_levels.room_creators(self.create)

    def event(self, event_type: str, sender: str, content: Mapping[str, Any],
              state_key: str | None = None, prev_events: Iterable[str] = ("$prev",)) -> Pdu:
        return make_pdu(self.version, self.room_id, event_type, sender, content, state_key,
                        prev_events)


@st.composite
def power_levels_contents(draw: st.DrawFn, version: RoomVersion,
                          creators: frozenset[str]) -> dict[str, Any]:
    values = level_values(version)
    content: dict[str, Any] = {}
    for name in NAMED:
        if draw(BOOLS):
            content[name] = draw(values)
    listable = tuple(u for u in POOL if not (version.privileged_creators and u in creators))
    users = draw(level_maps(listable, version, 4))
    if draw(BOOLS) or users:
        content["users"] = users
    events = draw(level_maps(EVENT_TYPES, version, 3))
    if draw(BOOLS) or events:
        content["events"] = events
    if draw(BOOLS):
        content["notifications"] = draw(level_maps(("room",), version, 1))
    return content


ADDITIONAL_CREATORS = st.lists(st.sampled_from(POOL[1:]), max_size=2, unique=True)


@st.composite
def rooms(draw: st.DrawFn, version: RoomVersion) -> Room:
    create_content: dict[str, Any] = {}
    federate = draw(pick((None, None, None, True, False)))
    if federate is not None:
        create_content["m.federate"] = federate
    if version.privileged_creators and draw(BOOLS):
        create_content["additional_creators"] = draw(ADDITIONAL_CREATORS)
    create = make_create(version, create_content)
    room = Room(version, create, {CREATE_KEY: create})

    def put(event_type: str, sender: str, content: Mapping[str, Any], state_key: str) -> None:
        room.state[(event_type, state_key)] = room.event(event_type, sender, content, state_key)

    if draw(ints(0, 4)):
        put("m.room.power_levels", CREATOR,
            draw(power_levels_contents(version, room.creators)), "")
    join_rule = draw(pick((None, *JOIN_RULES)))
    if join_rule is not None:
        put("m.room.join_rules", CREATOR, {"join_rule": join_rule}, "")
    for user_id in POOL:
        choices = ("join",) * 4 + ("leave", "ban", None) if user_id == CREATOR else (
            "join", "join", "join", "invite", "leave", "ban", "knock", None)
        membership = draw(pick(choices))
        if membership is not None:
            sender = CREATOR if membership in ("invite", "ban") else user_id
            put("m.room.member", sender, {"membership": membership}, user_id)
    if draw(ints(0, 3)) == 0:
        key = signing_key("id.test").verify_key.to_base64()
        put("m.room.third_party_invite", draw(pick(POOL)),
            {"display_name": "x", "public_key": key}, TOKEN)
    return room


@st.composite
def member_events(draw: st.DrawFn, room: Room) -> Pdu:
    sender = draw(pick(POOL))
    membership = draw(pick((*MEMBERSHIPS, *MEMBERSHIPS, "foo")))
    target = sender if draw(BOOLS) else draw(pick(POOL))
    content: dict[str, Any] = {"membership": membership}
    if draw(BOOLS if membership == "join" else ints(0, 3)) == 0:
        content["join_authorised_via_users_server"] = draw(pick(POOL))
    if membership == "invite" and draw(ints(0, 2)) == 0:
        mxid = target if draw(ints(0, 4)) else EVE
        token = TOKEN if draw(ints(0, 4)) else "other"
        signed = json.loads(third_party_block(mxid, token, draw(ints(0, 3)) > 0))
        content["third_party_invite"] = {"display_name": "x", "signed": signed}
    create_id = room.create.event_id
    prev_events = draw(pick((("$prev",),) * 5 + ((create_id,), (create_id, "$prev"),
                                                  ("$prev", create_id))))
    return room.event("m.room.member", sender, content, target, prev_events)


@st.composite
def power_levels_events(draw: st.DrawFn, room: Room) -> Pdu:
    version = room.version
    current = room.state.get(POWER_LEVELS_KEY)
    content = json.loads(json.dumps(current.content)) if current is not None else {}
    values = level_values(version)
    rare_invalid = version.integer_power_levels or draw(ints(0, 15)) == 0
    for _ in range(draw(ints(1, 3))):
        where = draw(pick(("named", "users", "events", "notifications")))
        value: Any = draw(invalid_values(version)) if rare_invalid and draw(
            ints(0, 5)) == 0 else draw(values)
        remove = draw(ints(0, 4)) == 0
        if where == "named":
            key, target = draw(pick(NAMED)), content
        else:
            target = content.setdefault(where, {})
            if not isinstance(target, dict):
                continue
            keys = {"users": (*POOL, "notauser", "@nocolon"), "events": EVENT_TYPES,
                    "notifications": ("room", "x")}[where]
            key = draw(pick(keys))
        if remove:
            target.pop(key, None)
        else:
            target[key] = value
    return room.event("m.room.power_levels", draw(pick(POOL)), content, "")


@st.composite
def other_events(draw: st.DrawFn, room: Room) -> Pdu:
    sender = draw(pick(POOL))
    kind = draw(pick(("message", "state", "third_party", "redaction", "join_rules")))
    if kind == "message":
        return room.event(draw(pick(("m.room.message", "m.custom"))), sender,
                          {"body": "x"})
    if kind == "redaction":
        return room.event("m.room.redaction", sender, {"redacts": "$target"})
    if kind == "join_rules":
        return room.event("m.room.join_rules", sender,
                          {"join_rule": draw(pick(JOIN_RULES))}, "")
    state_key = draw(pick(("", sender, BOB, "@nouser", "x")))
    if kind == "third_party":
        return room.event("m.room.third_party_invite", sender, {"public_key": "x"}, state_key)
    event_type = draw(pick(("m.room.topic", "m.room.name", "m.custom.state")))
    return room.event(event_type, sender, {"x": 1}, state_key)


@st.composite
def cases(draw: st.DrawFn, version: RoomVersion) -> tuple[Room, Pdu]:
    room = draw(rooms(version))
    kind = draw(ints(0, 9))
    if kind < 5:
        pdu = draw(member_events(room))
    elif kind < 7:
        pdu = draw(power_levels_events(room))
    else:
        pdu = draw(other_events(room))
    return room, pdu


# --- Known divergences, classified from the input only ---------------------------------------


def synapse_reads_garbage_levels(room: Room, pdu: Pdu) -> bool:
    """A power levels event before v10 with a value that is neither an integer nor a string
    of one: Synapse runs ``int()`` on it, which accepts ``True`` (as 1) and crashes with
    ValueError/TypeError on the rest. The spec validates only ``users`` before v10 and does not
    say how to compare the others; see DIVERGENCES and test_power_levels for our verdicts."""
    if pdu.type != "m.room.power_levels" or room.version.integer_power_levels:
        return False

    def bad(value: Any) -> bool:
        return power_levels.parse_power_level(value, room.version) is None

    content = pdu.content
    maps = [content.get(name, {}) for name in ("events", "notifications", "users")]
    return (
        any(bad(content[name]) for name in NAMED if name in content)
        or any(not isinstance(m, dict) or any(map(bad, m.values())) for m in maps)
    )


def compare(room: Room, pdu: Pdu, stats: Counter[str]) -> None:
    ours = our_verdict(lambda: check_auth_rules(pdu, room.state))
    theirs = synapse_state_dependent(pdu, room.state)
    stats[ours] += 1
    if synapse_reads_garbage_levels(room, pdu):
        stats["divergence: non-integer levels before v10"] += 1
        return
    stats["compared"] += 1
    assert ours == theirs, (pdu.data, {k: v.data for k, v in room.state.items()})


def check_stats(stats: Counter[str], min_share: float = 0.1, min_runs: int = 50) -> None:
    """The generator must stay useful: most cases compared, both verdicts well represented.
    (Hypothesis may run fewer examples than asked when it exhausts a small search space.)"""
    print(dict(stats))  # shown with pytest -s
    runs = stats[ALLOWED] + stats[REJECTED]
    assert runs >= min_runs, stats
    assert stats["compared"] >= 0.8 * runs, stats
    assert stats[ALLOWED] >= min_share * runs, stats
    assert stats[REJECTED] >= min_share * runs, stats


# --- Random differential tests ---------------------------------------------------------------

HEAVY = {"10", "11", "12"}


def examples_for(version: RoomVersion, heavy: int, light: int) -> int:
    return heavy if version.identifier in HEAVY else light


DIFF_SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow],
                         database=None)


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=by_id)
def test_rules_against_state_match_synapse(version: RoomVersion) -> None:
    examples = examples_for(version, heavy=700, light=250)
    stats: Counter[str] = Counter()

    @settings(DIFF_SETTINGS, max_examples=examples)
    @given(cases(version))
    def run(case: tuple[Room, Pdu]) -> None:
        compare(*case, stats)

    run()
    check_stats(stats)


@st.composite
def auth_event_cases(draw: st.DrawFn, version: RoomVersion) -> tuple[Pdu, dict[str, Pdu],
                                                                       set[str], Room]:
    room, pdu = draw(cases(version))
    wanted = auth_types_for_event(version, pdu.type, pdu.sender, pdu.state_key, pdu.content)
    chosen = [room.state[k] for k in sorted(wanted) if k in room.state]
    extras = [p for k, p in room.state.items() if k not in wanted and k != CREATE_KEY]
    rejected: set[str] = set()
    # Hypothesis draws small integers more often in big composite cases: 0 to 9 (most draws)
    # leave the selection alone, 10 to 14 break it one way each.
    mutation = draw(ints(0, 14))
    if mutation == 10 and chosen:
        chosen.pop(draw(ints(0, len(chosen) - 1)))
    elif mutation == 11 and extras:
        chosen.append(draw(st.sampled_from(extras)))
    elif mutation == 12 and chosen:
        rejected.add(draw(st.sampled_from(chosen)).event_id)
    elif mutation == 13 and chosen:
        twin = draw(st.sampled_from(chosen))
        if twin.type != "m.room.create":
            copy = room.event(twin.type, twin.sender, {**twin.content, "twin": 1},
                              twin.state_key)
            chosen.append(copy)
    elif mutation == 14 and chosen:
        foreign = draw(st.sampled_from(chosen))
        if foreign.type != "m.room.create":
            chosen.append(make_pdu(version, "!elsewhere:a.test", foreign.type, foreign.sender,
                                   foreign.content, foreign.state_key))
            chosen.remove(foreign)
    cited = make_pdu(version, room.room_id, pdu.type, pdu.sender, pdu.content, pdu.state_key,
                     pdu.prev_events, [p.event_id for p in chosen])
    known = {p.event_id: p for p in chosen}
    known[room.create.event_id] = room.create
    return cited, known, rejected, room


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=by_id)
def test_rules_against_auth_events_match_synapse(version: RoomVersion) -> None:
    examples = examples_for(version, heavy=300, light=100)
    stats: Counter[str] = Counter()

    @settings(DIFF_SETTINGS, max_examples=examples)
    @given(auth_event_cases(version))
    def run(case: tuple[Pdu, dict[str, Pdu], set[str], Room]) -> None:
        pdu, known, rejected, room = case
        ours = our_verdict(lambda: check_against_auth_events(pdu, known, rejected, room.create))
        stats[ours] += 1
        cited_state = {known[e].state_tuple: known[e] for e in pdu.auth_events}
        cited_state[CREATE_KEY] = room.create
        cited_room = Room(version, room.create, cited_state)
        if synapse_reads_garbage_levels(cited_room, pdu):
            stats["divergence (see test_rules_against_state_match_synapse)"] += 1
            return
        theirs = synapse_on_auth_events(pdu, known, rejected)
        stats["compared"] += 1
        assert ours == theirs, (pdu.data, [p.data for p in known.values()], rejected)

    run()
    check_stats(stats, min_share=0.04)  # broken auth events make rejections common


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=by_id)
def test_auth_types_match_synapse(version: RoomVersion) -> None:
    synapse_version = SYNAPSE_ROOM_VERSIONS[version.identifier]

    @settings(DIFF_SETTINGS, max_examples=examples_for(version, heavy=150, light=60))
    @given(cases(version))
    def run(case: tuple[Room, Pdu]) -> None:
        _, pdu = case
        ours = auth_types_for_event(version, pdu.type, pdu.sender, pdu.state_key, pdu.content)
        theirs = synapse_auth.auth_types_for_event(synapse_version, to_synapse(pdu))
        if version.room_id_from_create_event:
            # Synapse lists the create event, then adds it to every event's auth event IDs
            # itself; the spec (v12) says it MUST NOT be selected.
            assert CREATE_KEY in theirs
            theirs = theirs - {CREATE_KEY}
        assert ours == theirs

    run()


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=by_id)
def test_power_helpers_match_synapse(version: RoomVersion) -> None:
    @settings(DIFF_SETTINGS, max_examples=examples_for(version, heavy=120, light=50))
    @given(rooms(version), st.sampled_from(POOL), st.sampled_from(EVENT_TYPES), st.booleans())
    def run(room: Room, user_id: str, event_type: str, is_state: bool) -> None:
        synapse_state = {k: to_synapse(p) for k, p in room.state.items()}
        ours = power_levels.user_power_level(user_id, room.state)
        theirs = synapse_auth.get_user_power_level(user_id, synapse_state)
        if ours == float("inf"):
            assert theirs == 2**53  # Synapse's stand-in for an infinite creator level
        else:
            assert ours == theirs
        for name, default in power_levels.NAMED_LEVEL_DEFAULTS.items():
            assert power_levels.named_power_level(name, room.state, default) == (
                synapse_auth.get_named_level(synapse_state, name, default))
        power_event = synapse_state.get(POWER_LEVELS_KEY)
        assert power_levels.required_power_level(event_type, is_state, room.state) == (
            synapse_auth.get_send_level(event_type, "" if is_state else None, power_event))

    run()


@st.composite
def create_events(draw: st.DrawFn, version: RoomVersion) -> Pdu:
    # Rarer (rejected) options come last: Hypothesis favours the first ones in big cases.
    content: dict[str, Any] = {}
    room_version = draw(pick((version.identifier, version.identifier, "6", "12", None, "999",
                              12)))
    if room_version is not None:
        content["room_version"] = room_version
    if not version.implicit_room_creator and draw(pick((True, True, True, False))):
        content["creator"] = draw(pick((CREATOR, BOB)))
    if version.privileged_creators and draw(BOOLS):
        content["additional_creators"] = draw(ADDITIONAL_CREATOR_VALUES)
    prev_events = draw(pick(((), (), (), ("$prev",))))
    sender = draw(pick((CREATOR, CREATOR, LOCAL, BOB)))
    room_id = None if version.room_id_from_create_event else "!room:a.test"
    return make_pdu(version, room_id, "m.room.create", sender, content, "", prev_events)


ADDITIONAL_CREATOR_VALUES: st.SearchStrategy[Any] = st.one_of(
    st.lists(st.sampled_from((BOB, CAROL, "@x:b.test:8448", "@x:[::1]", "@x:127.0.0.1",
                              "@x:bad host", "@x:", "x:b.test", "@nocolon", 5, None)),
             max_size=3),
    st.sampled_from(("@bob:b.test", {}, None)),
)


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=by_id)
def test_create_rules_match_synapse(version: RoomVersion) -> None:
    stats: Counter[str] = Counter()
    examples = examples_for(version, heavy=150, light=60)

    @settings(DIFF_SETTINGS, max_examples=examples)
    @given(create_events(version))
    def run(pdu: Pdu) -> None:
        ours = our_verdict(lambda: check_auth_rules(pdu, {}))
        theirs = synapse_state_dependent(pdu, {})
        stats[ours] += 1
        stats["compared"] += 1
        assert ours == theirs, pdu.data

    run()
    check_stats(stats, min_runs=20)  # a small space: Hypothesis may exhaust it


# --- Hand-built adversarial cases ------------------------------------------------------------

ALICE = "@alice:a.test"


@dataclass(frozen=True)
class Case:
    """One hand-built event and the state it is checked against."""

    pdu: Pdu
    state: dict[StateKey, Pdu]


def room(version: RoomVersion, *joined: str, **options: Any) -> RoomBuilder:
    built = RoomBuilder.create_room(version, ALICE, **options)
    for user_id in joined:
        built.join(user_id)
    return built


def changed_levels(built: RoomBuilder, changes: Mapping[str, Any]) -> dict[str, Any]:
    """The current power levels content with ``changes``: top-level keys, or user IDs."""
    content: dict[str, Any] = json.loads(json.dumps(built.state[POWER_LEVELS_KEY].content))
    for key, value in changes.items():
        if key.startswith("@"):
            content["users"][key] = value
        else:
            content[key] = value
    return content


def with_levels(built: RoomBuilder, **changes: Any) -> RoomBuilder:
    built.set_power_levels(ALICE, changed_levels(built, changes))
    return built


def levels_change(built: RoomBuilder, sender: str, **changes: Any) -> Case:
    pdu = built.set_power_levels(sender, changed_levels(built, changes), apply=False)
    return Case(pdu, built.snapshot())


def case(built: RoomBuilder, make: Callable[[RoomBuilder], Pdu]) -> Case:
    return Case(make(built), built.snapshot())


def not_applied(method: str, *args: Any, **kwargs: Any) -> Callable[[RoomBuilder], Pdu]:
    return lambda built: getattr(built, method)(*args, apply=False, **kwargs)


ADVERSARIAL: dict[str, Callable[[RoomVersion], Case]] = {
    "non-member message": lambda v: case(room(v), not_applied("message", BOB)),
    "non-member state": lambda v: case(
        room(v), not_applied("set_state", BOB, "m.room.topic", {"topic": "x"})),
    "ban without power": lambda v: case(room(v, BOB, CAROL), not_applied("ban", BOB, CAROL)),
    "ban of the creator by a 100": lambda v: case(
        with_levels(room(v, BOB), **{BOB: 100}), not_applied("ban", BOB, ALICE)),
    "unban without ban level": lambda v: case(
        with_levels(room(v, BOB), ban=60, **{BOB: 59}),
        lambda r: (r.ban(ALICE, CAROL), r.unban(BOB, CAROL, apply=False))[1]),
    "kick of a user who never joined": lambda v: case(
        with_levels(room(v, BOB), **{BOB: 50}), not_applied("kick", BOB, CAROL)),
    "ban at exactly the ban level": lambda v: case(
        with_levels(room(v, BOB, CAROL), ban=40, **{BOB: 40}), not_applied("ban", BOB, CAROL)),
    "ban just below the ban level": lambda v: case(
        with_levels(room(v, BOB, CAROL), ban=40, **{BOB: 39}), not_applied("ban", BOB, CAROL)),
    "kick at exactly the kick level": lambda v: case(
        with_levels(room(v, BOB, CAROL), kick=40, **{BOB: 40, CAROL: 39}),
        not_applied("kick", BOB, CAROL)),
    "unban at exactly the ban level": lambda v: case(
        with_levels(room(v, BOB), ban=40, kick=40, **{BOB: 40}),
        lambda r: (r.ban(ALICE, CAROL), r.unban(BOB, CAROL, apply=False))[1]),
    "invite at exactly the invite level": lambda v: case(
        with_levels(room(v, BOB), invite=30, **{BOB: 30}), not_applied("invite", BOB, CAROL)),
    "invite just below the invite level": lambda v: case(
        with_levels(room(v, BOB), invite=30, **{BOB: 29}), not_applied("invite", BOB, CAROL)),
    "message at exactly events_default": lambda v: case(
        with_levels(room(v, BOB), events_default=5, **{BOB: 5}), not_applied("message", BOB)),
    "give a user exactly one's own level": lambda v: levels_change(
        with_levels(room(v, BOB, CAROL), **{BOB: 50, CAROL: 10},
                    events={"m.room.power_levels": 50}), BOB, **{CAROL: 50}),
    "restricted join, authoriser below invite level": lambda v: case(
        with_levels(room(v, CAROL, join_rule="restricted"), invite=20, **{CAROL: 19}),
        not_applied("join", BOB, {"join_authorised_via_users_server": CAROL})),
    "restricted join, authoriser at invite level": lambda v: case(
        with_levels(room(v, CAROL, join_rule="restricted"), invite=20, **{CAROL: 20}),
        not_applied("join", BOB, {"join_authorised_via_users_server": CAROL})),
    "first join with two prev events": lambda v: _first_join(v, ALICE, extra_prev=True),
    "kick of a higher user": lambda v: case(
        with_levels(room(v, BOB, CAROL), **{BOB: 50, CAROL: 60}), not_applied("kick", BOB, CAROL)),
    "kick of an equal user": lambda v: case(
        with_levels(room(v, BOB, CAROL), **{BOB: 50, CAROL: 50}), not_applied("kick", BOB, CAROL)),
    "self-kick of a banned user": lambda v: case(
        with_levels(room(v, BOB), **{BOB: 50}), lambda r: (r.ban(ALICE, BOB), r.leave(
            BOB, apply=False))[1]),
    "raise own level": lambda v: levels_change(
        with_levels(room(v, BOB), **{BOB: 50}, events={"m.room.power_levels": 50}), BOB,
        **{BOB: 51}),
    "demote a peer": lambda v: levels_change(
        with_levels(room(v, BOB, CAROL), **{BOB: 50, CAROL: 50},
                    events={"m.room.power_levels": 50}), BOB, **{CAROL: 0}),
    "events map above own level": lambda v: levels_change(
        with_levels(room(v, BOB), **{BOB: 50}, events={"m.room.power_levels": 50}), BOB,
        events={"m.room.power_levels": 50, "m.room.name": 51}),
    "lower an events entry above own": lambda v: levels_change(
        with_levels(room(v, BOB), **{BOB: 50}), BOB, events={"m.room.power_levels": 0}),
    "notifications above own level": lambda v: levels_change(
        with_levels(room(v, BOB), **{BOB: 50}, events={"m.room.power_levels": 50}), BOB,
        notifications={"room": 60}),
    "string levels": lambda v: levels_change(room(v), ALICE, ban="50", kick=" +40 ",
                                             events={"m.room.name": "051"}),
    "string level in users": lambda v: levels_change(room(v), ALICE, **{BOB: "10"}),
    "null level": lambda v: levels_change(room(v), ALICE, redact=None),
    "knock": lambda v: case(room(v, join_rule="knock"), not_applied("knock", BOB)),
    "knock on knock_restricted": lambda v: case(
        room(v, join_rule="knock_restricted"), not_applied("knock", BOB)),
    "restricted join with authoriser": lambda v: case(
        room(v, CAROL, join_rule="restricted"),
        not_applied("join", BOB, {"join_authorised_via_users_server": CAROL})),
    "knock_restricted join with authoriser": lambda v: case(
        room(v, CAROL, join_rule="knock_restricted"),
        not_applied("join", BOB, {"join_authorised_via_users_server": CAROL})),
    "restricted join, authoriser left": lambda v: case(
        room(v, CAROL, join_rule="restricted"), lambda r: (r.leave(CAROL), r.join(
            BOB, {"join_authorised_via_users_server": CAROL}, apply=False))[1]),
    "users lists a creator": lambda v: levels_change(room(v), ALICE, **{ALICE: 100}),
    "users lists an additional creator": lambda v: levels_change(
        room(v, BOB, create_content={"additional_creators": [BOB]}), ALICE, **{BOB: 100}),
    "creator kicks additional creator": lambda v: case(
        room(v, BOB, create_content={"additional_creators": [BOB]}),
        not_applied("kick", ALICE, BOB)),
    "first join of the creator": lambda v: _first_join(v, ALICE),
    "first join of someone else": lambda v: _first_join(v, BOB),
    "remote sender in unfederated room": lambda v: case(
        room(v, create_content={"m.federate": False}), not_applied("join", BOB)),
    "remote target in unfederated room": lambda v: case(
        room(v, create_content={"m.federate": False}), not_applied("invite", ALICE, BOB)),
    "m.federate is the string 'false'": lambda v: case(
        room(v, create_content={"m.federate": "false"}), not_applied("join", BOB)),
    "m.federate is null": lambda v: case(
        room(v, create_content={"m.federate": None}), not_applied("join", BOB)),
    "third-party invite": lambda v: _third_party(v, valid=True),
    "third-party invite, wrong key": lambda v: _third_party(v, valid=False),
    "third-party invite event below invite level": lambda v: case(
        with_levels(room(v, BOB), invite=10), not_applied("third_party_invite", BOB, "t")),
    "state_key of another user": lambda v: case(
        room(v, BOB), not_applied("set_state", ALICE, "m.custom", {}, BOB)),
}


def _first_join(version: RoomVersion, user_id: str, extra_prev: bool = False) -> Case:
    built = RoomBuilder(version)
    create = built.create(ALICE)
    prev_events = [create.event_id, "$elsewhere"] if extra_prev else [create.event_id]
    return Case(built.join(user_id, prev_events=prev_events, apply=False), built.snapshot())


def _third_party(version: RoomVersion, valid: bool) -> Case:
    built = room(version, BOB)
    built.third_party_invite(BOB, TOKEN)
    key = signing_key("id.test") if valid else SigningKey("test", b"\x02" * 32)
    signed = third_party_signed(CAROL, TOKEN, "id.test", key)
    content = {"third_party_invite": {"display_name": "c", "signed": signed}}
    return Case(built.member(BOB, CAROL, "invite", content, apply=False), built.snapshot())


# Cases that belong in DIVERGENCES for some versions run here for the others only.
ADVERSARIAL_VERSIONS: dict[str, tuple[str, ...]] = {"null level": ("10", "11", "12")}


@pytest.mark.parametrize(
    ("name", "version"),
    [
        pytest.param(name, version, id=f"{name}-v{version.identifier}")
        for name in ADVERSARIAL
        for version in ALL_VERSIONS
        if version.identifier in ADVERSARIAL_VERSIONS.get(name, KNOWN_ROOM_VERSIONS)
    ],
)
def test_adversarial_cases_match_synapse(name: str, version: RoomVersion) -> None:
    built = ADVERSARIAL[name](version)
    ours = our_verdict(lambda: check_auth_rules(built.pdu, built.state))
    theirs = synapse_state_dependent(built.pdu, built.state)
    assert ours == theirs


def _auth_events_case(version: RoomVersion, mutate: str) -> tuple[Pdu, dict[str, Pdu], set[str],
                                                                  Pdu | None]:
    built = room(version, BOB)
    proper = list(built.message(BOB).auth_events)
    rejected: set[str] = set()
    levels = built.state[POWER_LEVELS_KEY]
    if mutate == "duplicate":
        old = levels
        with_levels(built, ban=40)
        proper = [*built.message(BOB).auth_events, old.event_id]
    elif mutate == "unexpected":
        proper.append(built.state[JOIN_RULES_KEY].event_id)
    elif mutate == "rejected":
        rejected.add(levels.event_id)
    elif mutate == "foreign":
        other = RoomBuilder.create_room(version, ALICE, room_id="!other:a.test",
                                        create_content={"x": 1})
        built.events.update(other.events)
        proper = [e for e in proper if e != levels.event_id]
        proper.append(other.state[POWER_LEVELS_KEY].event_id)
    elif mutate == "no create" and built.create_event is not None:
        proper = [e for e in proper if e != built.create_event.event_id]
    pdu = built.message(BOB, auth_events=proper)
    return pdu, built.events, rejected, built.create_event


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=by_id)
@pytest.mark.parametrize("mutate", ["none", "duplicate", "unexpected", "rejected", "foreign",
                                    "no create"])
def test_auth_events_cases_match_synapse(mutate: str, version: RoomVersion) -> None:
    pdu, events, rejected, create = _auth_events_case(version, mutate)
    ours = our_verdict(lambda: check_against_auth_events(pdu, events, rejected, create))
    theirs = synapse_on_auth_events(pdu, events, rejected)
    assert ours == theirs
    assert ours == (ALLOWED if mutate == "none" or (
        mutate == "no create" and version.room_id_from_create_event) else REJECTED)


# --- Known divergences -----------------------------------------------------------------------


@dataclass(frozen=True)
class Divergence:
    """A case where Synapse does not follow the spec; ``spec_verdict`` is the spec's."""

    reason: str
    build: Callable[[RoomVersion], Case]
    spec_verdict: str
    versions: tuple[str, ...] = tuple(KNOWN_ROOM_VERSIONS)


def _levels_with(version: RoomVersion, **changes: Any) -> Case:
    return levels_change(room(version, BOB), ALICE, **changes)


DIVERGENCES: dict[str, Divergence] = {
    "string level with an underscore": Divergence(
        "Synapse parses with int(), which accepts '1_0'; the v1 stringy power levels grammar "
        "allows only digits with optional sign and whitespace",
        lambda v: _levels_with(v, **{BOB: "1_0"}),
        REJECTED,
        ("6", "7", "8", "9"),
    ),
    "string level with non-ASCII digits": Divergence(
        "int() accepts Unicode digits; the spec's grammar is base 10 digits",
        lambda v: _levels_with(v, **{BOB: "\u0661\u0660"}),
        REJECTED,
        ("6", "7", "8", "9"),
    ),
    "boolean user level before v10": Divergence(
        "int(True) == 1 in Synapse; a JSON boolean is neither an integer nor a string",
        lambda v: _levels_with(v, **{BOB: True}),
        REJECTED,
        ("6", "7", "8", "9"),
    ),
    "users key with an invalid server name": Divergence(
        "Synapse only checks the '@' sigil and a ':'; rule 10.3 wants valid user IDs",
        lambda v: _levels_with(v, **{"@x:bad host": 10}),
        REJECTED,
    ),
    "null named level before v10": Divergence(
        "Synapse crashes (TypeError from int(None)) comparing the new value; we reject it as "
        "not an integer (from v10 the spec says so, and Synapse agrees there)",
        lambda v: _levels_with(v, redact=None),
        REJECTED,
        ("6", "7", "8", "9"),
    ),
    "garbage named level before v10": Divergence(
        "Synapse crashes (ValueError from int()) comparing 'lots' with the current value; the "
        "spec does not say how to compare it, and we reject what we cannot show is allowed",
        lambda v: _levels_with(v, ban="lots"),
        REJECTED,
        ("6", "7", "8", "9"),
    ),
    "authoriser that is not a user ID, on a leave": Divergence(
        "v8+ rule 5.2 (signature by the authoriser's server) applies to any m.room.member "
        "carrying join_authorised_via_users_server; no server can sign for 'nobody', and "
        "Synapse only looks at the key on joins",
        lambda v: case(room(v, BOB), not_applied(
            "member", BOB, BOB, "leave", {"join_authorised_via_users_server": "nobody"})),
        REJECTED,
        ("8", "9", "10", "11", "12"),
    ),
    "create event for room version 5": Divergence(
        "not a spec disagreement: 'a recognised version' is up to the server. Synapse knows "
        "versions 1 to 5 (and some MSC versions); we only run rooms of versions 6 to 12",
        lambda v: Case(RoomBuilder(v).create(ALICE, {"room_version": "5"}), {}),
        REJECTED,
    ),
    "third-party invite, second signature valid": Divergence(
        "Synapse tries only the first ed25519 signature for each public key; the spec allows "
        "if any signature in signed matches any public key",
        lambda v: _two_signatures(v),
        ALLOWED,
    ),
}


def _two_signatures(version: RoomVersion) -> Case:
    built = room(version, BOB)
    built.third_party_invite(BOB, TOKEN)
    bad = third_party_signed(CAROL, TOKEN, "aaa.test", SigningKey("test", b"\x03" * 32))
    good = third_party_signed(CAROL, TOKEN)
    signed = {**good, "signatures": {**bad["signatures"], **good["signatures"]}}
    content = {"third_party_invite": {"display_name": "c", "signed": signed}}
    return Case(built.member(BOB, CAROL, "invite", content, apply=False), built.snapshot())


def _divergence_params() -> list[Any]:
    return [
        pytest.param(name, KNOWN_ROOM_VERSIONS[v], id=f"{name}-v{v}")
        for name, divergence in DIVERGENCES.items()
        for v in divergence.versions
    ]


@pytest.mark.parametrize(("name", "version"), _divergence_params())
def test_known_divergences_from_synapse(name: str, version: RoomVersion) -> None:
    divergence = DIVERGENCES[name]
    built = divergence.build(version)
    ours = our_verdict(lambda: check_auth_rules(built.pdu, built.state))
    assert ours == divergence.spec_verdict
    theirs = synapse_state_dependent(built.pdu, built.state)
    assert theirs != ours, f"Synapse now agrees ({theirs}): move {name!r} to ADVERSARIAL"
    pytest.skip(f"Synapse: {theirs}, RocketNode: {ours}. {divergence.reason}")


def test_v12_create_in_auth_events_is_refused_by_both() -> None:
    # The v12 spec forbids selecting the create event; Synapse's event parser refuses such an
    # event outright (RuntimeError from its Rust auth_event_ids), which is its rejection.
    built = room(KNOWN_ROOM_VERSIONS["12"], BOB)
    assert built.create_event is not None
    pdu = built.message(BOB, auth_events=[*built.message(BOB).auth_events,
                                          built.create_event.event_id])
    ours = our_verdict(lambda: check_against_auth_events(pdu, built.events, (),
                                                         built.create_event))
    assert ours == REJECTED
    theirs = synapse_on_auth_events(pdu, built.events, ())
    assert theirs == "crash:RuntimeError"
