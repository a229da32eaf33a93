"""State resolution: RocketNode's ``resolve_state`` against Synapse's v2 resolver, same input.

The room (``--conflicted N``, default 10,000; all events signed, with the auth events the
selection algorithm picks):

- base: create, the creator's join, power levels (an admin, two moderators), public join rules,
  the staff's joins, then N/4 "target" members and N/10 bystanders join;
- fork A: each target changes their display name (N/4 events), N/2 newcomers join, and halfway
  through the admin changes the power levels (so the mainline has two epochs);
- fork B: the moderators ban or kick every target (N/4 power events).

Resolving the two forks' states makes N membership events conflicted (plus the power levels).

Timed, as the median of ``--runs`` runs after one warm-up, garbage collected before each:

- RocketNode: ``resolve_state`` from the state maps and the PDUs, auth difference included;
- Synapse, in flight: ``resolve_events_with_store`` with every event in its ``event_map``, so it
  also computes the auth difference itself, in Python, as RocketNode does;
- Synapse, persisted: ``event_map=None`` and a store that answers ``get_auth_chain_difference``
  with the answer computed beforehand, outside the timing (in production Synapse's database
  chain cover index does that part). This is Synapse's best case.

Both implementations must return the same state, or the benchmark fails. Synapse's events are
built from our PDUs' JSON before timing.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import statistics
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import synapse.event_auth  # noqa: F401  (imported first: synapse.state alone hits a cycle)
from synapse.api.room_versions import KNOWN_ROOM_VERSIONS as SYNAPSE_ROOM_VERSIONS
from synapse.events import make_event_from_dict
from synapse.state.v2 import _get_auth_chain_difference, resolve_events_with_store
from tests.support.synapse_state_res import MemoryStateStore, NoWaitClock, run_to_end

from bench.results import command
from rocketnode.core.pdu import Pdu, StateKey, hash_and_sign
from rocketnode.core.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from rocketnode.core.signing import SigningKey
from rocketnode.core.state_res import resolve_state

CREATE_KEY: StateKey = ("m.room.create", "")
POWER_LEVELS_KEY: StateKey = ("m.room.power_levels", "")
JOIN_RULES_KEY: StateKey = ("m.room.join_rules", "")
SERVERS = 20
CREATOR = "@creator:s0.test"
ADMIN = "@admin:s1.test"
MODERATORS = ("@mod1:s2.test", "@mod2:s3.test")


# --- Building the room ---------------------------------------------------------------------


class _Line:
    """One line of history: signs events citing its head and the auth events its state
    selects, and applies them to its state."""

    def __init__(self, room_version: RoomVersion, events: dict[str, Pdu]) -> None:
        self.room_version = room_version
        self.events = events
        self.state: dict[StateKey, str] = {}
        self.head: list[str] = []
        self.depth = 0
        self.ts = 1_700_000_000_000
        self.room_id = ""
        self._keys: dict[str, SigningKey] = {}

    def fork(self) -> _Line:
        line = _Line(self.room_version, self.events)
        line.state, line.head, line.depth = dict(self.state), list(self.head), self.depth
        line.ts, line.room_id, line._keys = self.ts, self.room_id, self._keys
        return line

    def send(self, sender: str, event_type: str, state_key: str, content: dict[str, Any]) -> Pdu:
        self.ts += 1
        data: dict[str, Any] = {
            "type": event_type,
            "state_key": state_key,
            "sender": sender,
            "content": content,
            "prev_events": self.head,
            "auth_events": self._auth_events(sender, event_type, state_key, content),
            "depth": self.depth + 1,
            "origin_server_ts": self.ts,
        }
        if event_type != "m.room.create" or not self.room_version.room_id_from_create_event:
            data["room_id"] = self.room_id or "!bench:s0.test"
        server_name = sender.split(":", 1)[1]
        key = self._keys.get(server_name)
        if key is None:
            key = SigningKey("bench", hashlib.sha256(server_name.encode()).digest())
            self._keys[server_name] = key
        pdu = hash_and_sign(self.room_version, data, server_name, key)
        self.events[pdu.event_id] = pdu
        self.room_id = pdu.room_id
        self.state[(event_type, state_key)] = pdu.event_id
        self.head = [pdu.event_id]
        self.depth += 1
        return pdu

    def join(self, user_id: str, **content: Any) -> Pdu:
        return self.send(user_id, "m.room.member", user_id, {"membership": "join", **content})

    def _auth_events(
        self, sender: str, event_type: str, state_key: str, content: Mapping[str, Any]
    ) -> list[str]:
        if event_type == "m.room.create":
            return []
        keys = [POWER_LEVELS_KEY, ("m.room.member", sender)]
        if not self.room_version.room_id_from_create_event:
            keys.insert(0, CREATE_KEY)
        if event_type == "m.room.member":
            keys.append(("m.room.member", state_key))
            if content.get("membership") in ("join", "invite", "knock"):
                keys.append(JOIN_RULES_KEY)
        found = [self.state[key] for key in keys if key in self.state]
        return list(dict.fromkeys(found))


def _user(kind: str, number: int) -> str:
    return f"@{kind}{number}:s{number % SERVERS}.test"


def build_room(
    room_version: RoomVersion, conflicted: int
) -> tuple[dict[str, Pdu], list[dict[StateKey, str]]]:
    """The room described in the module docstring: its events and the two forks' states."""
    events: dict[str, Pdu] = {}
    base = _Line(room_version, events)
    create_content: dict[str, Any] = {"room_version": room_version.identifier}
    if not room_version.implicit_room_creator:
        create_content["creator"] = CREATOR
    base.send(CREATOR, "m.room.create", "", create_content)
    base.join(CREATOR)
    users = {ADMIN: 100, MODERATORS[0]: 50, MODERATORS[1]: 50}
    if not room_version.privileged_creators:
        users[CREATOR] = 100
    base.send(CREATOR, "m.room.power_levels", "", {"users": users})
    base.send(CREATOR, "m.room.join_rules", "", {"join_rule": "public"})
    for user_id in (ADMIN, *MODERATORS):
        base.join(user_id)
    targets = [_user("target", i) for i in range(conflicted // 4)]
    for user_id in [*targets, *(_user("bystander", i) for i in range(conflicted // 10))]:
        base.join(user_id)

    renames, bans = base.fork(), base.fork()
    for number, target in enumerate(targets):
        renames.join(target, displayname=f"Target {number}")
        moderator = MODERATORS[number % 2]
        membership = "ban" if number % 3 else "leave"
        bans.send(moderator, "m.room.member", target, {"membership": membership})
    newcomers = conflicted - 2 * len(targets)
    for number in range(newcomers):
        if number == newcomers // 2:
            raised = {**users, MODERATORS[1]: 60}
            renames.send(ADMIN, "m.room.power_levels", "", {"users": raised})
        renames.join(_user("newcomer", number))
    return events, [renames.state, bans.state]


# --- Running Synapse ---------------------------------------------------------------------------


def _timed(
    calls: Mapping[str, Callable[[], Callable[[], object]]], runs: int
) -> dict[str, tuple[list[float], object]]:
    """Wall times of ``runs`` calls of each contender, and its result.

    Rounds alternate the contenders (one warm-up round first), so that a busy machine slows
    them alike.
    """
    times: dict[str, list[float]] = {name: [] for name in calls}
    results: dict[str, object] = {}
    for round_number in range(runs + 1):
        for name, make_call in calls.items():
            call = make_call()
            gc.collect()
            start = time.perf_counter()
            results[name] = call()
            if round_number:
                times[name].append(time.perf_counter() - start)
    return {name: (times[name], results[name]) for name in calls}


def bench_version(room_version: RoomVersion, conflicted: int, runs: int) -> dict[str, Any]:
    started = time.perf_counter()
    events, state_sets = build_room(room_version, conflicted)
    built = time.perf_counter() - started
    synapse_version = SYNAPSE_ROOM_VERSIONS[room_version.identifier]
    synapse_events = {
        event_id: make_event_from_dict(pdu.data, synapse_version)
        for event_id, pdu in events.items()
    }
    room_id = next(iter(events.values())).room_id
    in_conflict = {
        e for key in state_sets[0].keys() | state_sets[1].keys()
        if state_sets[0].get(key) != state_sets[1].get(key)
        for e in (state_sets[0].get(key), state_sets[1].get(key)) if e is not None
    }
    members_in_conflict = sum(events[e].type == "m.room.member" for e in in_conflict)
    difference = run_to_end(
        _get_auth_chain_difference(
            room_id, state_sets, dict(synapse_events), MemoryStateStore(synapse_events, None),
            in_conflict if room_version.identifier == "12" else None,
        )
    )

    def ours() -> Callable[[], object]:
        return lambda: resolve_state(room_version, state_sets, events)

    def synapse(in_flight: bool) -> Callable[[], Callable[[], object]]:
        def make_call() -> Callable[[], object]:
            event_map = dict(synapse_events) if in_flight else None
            store = MemoryStateStore(synapse_events, None if in_flight else difference)
            return lambda: dict(run_to_end(resolve_events_with_store(
                NoWaitClock(), room_id, synapse_version, state_sets, event_map, store
            )))
        return make_call

    timings = _timed(
        {"ours": ours, "in flight": synapse(in_flight=True),
         "persisted": synapse(in_flight=False)},
        runs,
    )
    (ours_times, ours_result), (flight_times, flight_result), (
        persisted_times, persisted_result) = (
        timings["ours"], timings["in flight"], timings["persisted"]
    )
    ours_time, flight_time, persisted_time = (
        statistics.median(ours_times), statistics.median(flight_times),
        statistics.median(persisted_times))
    if not ours_result == flight_result == persisted_result:
        raise SystemExit("RocketNode and Synapse resolved the state differently")
    assert isinstance(ours_result, dict)
    memberships = Counter(
        events[event_id].membership for key, event_id in ours_result.items()
        if key[0] == "m.room.member"
    )
    print(f"room version {room_version.identifier}: {len(events)} events "
          f"(built and signed in {built:.1f} s), {members_in_conflict} membership events in "
          f"conflict, resolved memberships {dict(sorted(memberships.items()))}")
    print(f"  {'RocketNode resolve_state':<44}{ours_time * 1000:9.1f} ms")
    for label, seconds in (("Synapse, in flight (auth difference in Python)", flight_time),
                           ("Synapse, persisted (auth difference given)", persisted_time)):
        print(f"  {label:<44}{seconds * 1000:9.1f} ms   Synapse / RocketNode = "
              f"{seconds / ours_time:.2f}x")
    return {"events": len(events), "conflicted_memberships": members_in_conflict,
            "rocketnode_ms": [t * 1000 for t in ours_times],
            "synapse_in_flight_ms": [t * 1000 for t in flight_times],
            "synapse_persisted_ms": [t * 1000 for t in persisted_times]}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench state_res", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conflicted", type=int, default=10_000,
                        help="membership events in conflict (default 10000)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs each (default 5)")
    parser.add_argument("--room-version", action="append", dest="room_versions",
                        choices=sorted(KNOWN_ROOM_VERSIONS), help="default: 11 and 12")
    parser.add_argument("--no-save", action="store_true",
                        help="do not write bench/results/raw/state_res.json and the report")
    parser.add_argument("--quick", action="store_true",
                        help="1,000 conflicted, 1 run; saved apart, in bench/results/quick/")
    args = parser.parse_args(argv)
    if args.quick:
        args.conflicted, args.runs = 1000, 1
    versions = {identifier: bench_version(KNOWN_ROOM_VERSIONS[identifier], args.conflicted,
                                          args.runs)
                for identifier in args.room_versions or ["11", "12"]}
    if not args.no_save:
        from bench.results import save_state_res
        from bench.runner import write_report

        save_state_res(versions, {"conflicted": args.conflicted, "runs": args.runs,
                                  "quick": args.quick}, command("state_res", argv))
        write_report(args.quick)
    return 0
