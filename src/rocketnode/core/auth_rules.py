"""The authorisation rules of room versions 6 to 12 and the auth events selection algorithm.

Spec: room versions 6 to 12, "Authorisation rules"; server-server API "Auth events selection".

- :func:`auth_types_for_event` is the selection algorithm: the state keys an event's
  ``auth_events`` should cite.
- :func:`check_auth_events_selection` applies the rules about the ``auth_events`` list itself
  (rule 3 in v12, rule 2 before); they need no state.
- :func:`check_auth_rules` applies every other rule to an event against a state map. That map
  must hold the create event under ``("m.room.create", "")`` in every room version: from v12 the
  create event is no longer an auth event, so the caller adds it.

Error messages name the rule that failed (``join``, ``m.federate``, ``required power level``,
...); rule numbers in comments are v12's (before v12 every top-level rule from 3 on is one
lower).

Enforced elsewhere, by :func:`rocketnode.core.pdu.verify_pdu`: "events must be signed by the
server denoted by the sender property" and, from v8, "if the event is not validly signed by the
homeserver of the user ID denoted by ``join_authorised_via_users_server``, reject" (see
:func:`rocketnode.core.pdu.servers_that_must_sign`). Here we only reject a value that is not a
user ID, since no homeserver could have signed for it.

The power level helpers (:func:`user_power_level`, :func:`required_power_level`,
:func:`named_power_level`, :func:`room_creators`) live in :mod:`rocketnode.core.power_levels`
and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from typing import Any

from rocketnode.core.errors import AuthError, InvalidIdentifier, SignatureError
from rocketnode.core.ids import UserId, server_name_of
from rocketnode.core.pdu import Pdu, StateKey
from rocketnode.core.power_levels import (
    CREATE_KEY,
    NAMED_LEVEL_DEFAULTS,
    POWER_LEVELS_KEY,
    check_power_levels_event,
    create_event_of,
    named_power_level,
    required_power_level,
    room_creators,
    user_power_level,
)
from rocketnode.core.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from rocketnode.core.signing import VerifyKey, verify_json

__all__ = [
    "CREATE_KEY",
    "JOIN_RULES_KEY",
    "POWER_LEVELS_KEY",
    "StateKey",
    "auth_types_for_event",
    "check_auth_events_selection",
    "check_auth_rules",
    "named_power_level",
    "required_power_level",
    "room_creators",
    "third_party_invite_public_keys",
    "user_power_level",
]

CREATE = "m.room.create"
MEMBER = "m.room.member"
POWER_LEVELS = "m.room.power_levels"
THIRD_PARTY_INVITE = "m.room.third_party_invite"
JOIN_RULES_KEY: StateKey = ("m.room.join_rules", "")
AUTHORISER = "join_authorised_via_users_server"


def _reject(pdu: Pdu, rule: str, detail: str) -> AuthError:
    return AuthError(f"{pdu.event_id} ({pdu.type}) rejected by auth rule '{rule}': {detail}")


# --- Auth events selection ----------------------------------------------------------------


def auth_types_for_event(
    room_version: RoomVersion,
    event_type: str,
    sender: str,
    state_key: str | None,
    content: Mapping[str, Any],
) -> set[StateKey]:
    """The state keys of the events an event's ``auth_events`` should cite.

    The create event is among them up to room version 11 and no longer from 12
    (``room_id_from_create_event``); the create event itself has no auth events.
    """
    if event_type == CREATE:
        return set()
    types = {POWER_LEVELS_KEY, (MEMBER, sender)}
    if not room_version.room_id_from_create_event:
        types.add(CREATE_KEY)
    if event_type == MEMBER:
        types |= _member_auth_types(room_version, state_key, content)
    return types


def _member_auth_types(
    room_version: RoomVersion, state_key: str | None, content: Mapping[str, Any]
) -> set[StateKey]:
    types: set[StateKey] = set()
    membership = content.get("membership")
    if state_key is not None:
        types.add((MEMBER, state_key))
    if membership in ("join", "invite", "knock"):
        types.add(JOIN_RULES_KEY)
    token = _third_party_token(content)
    if membership == "invite" and token is not None:
        types.add((THIRD_PARTY_INVITE, token))
    authoriser = content.get(AUTHORISER)
    if membership == "join" and room_version.restricted_join_rule and isinstance(authoriser, str):
        types.add((MEMBER, authoriser))
    return types


def _third_party_token(content: Mapping[str, Any]) -> str | None:
    invite = content.get("third_party_invite")
    signed = invite.get("signed") if isinstance(invite, dict) else None
    token = signed.get("token") if isinstance(signed, dict) else None
    return token if isinstance(token, str) else None


def check_auth_events_selection(
    pdu: Pdu, auth_events: Mapping[str, Pdu], rejected: Container[str] = frozenset()
) -> None:
    """The rules on ``pdu.auth_events`` (v12 rule 3, rule 2 before); :class:`AuthError` if broken.

    ``auth_events`` maps event IDs to events and must hold every auth event of ``pdu``;
    ``rejected`` holds the IDs of events that were rejected. Each auth event must be a state
    event of the same room, expected by the selection algorithm, unique per state key and not
    rejected; up to v11 the create event must be among them.
    """
    if pdu.type == CREATE:
        return
    expected = auth_types_for_event(
        pdu.room_version, pdu.type, pdu.sender, pdu.state_key, pdu.content
    )
    seen: set[StateKey] = set()
    for event_id in pdu.auth_events:
        auth_event = auth_events.get(event_id)
        if auth_event is None or auth_event.event_id != event_id:
            raise _reject(pdu, "auth events", f"auth event {event_id} is unknown")
        if auth_event.room_id != pdu.room_id:
            raise _reject(pdu, "auth events", f"auth event {event_id} is in another room")
        if not auth_event.is_state or auth_event.state_tuple not in expected:
            raise _reject(pdu, "auth events", f"auth event {event_id} is not expected")
        if auth_event.state_tuple in seen:
            raise _reject(pdu, "auth events", f"two auth events for {auth_event.state_tuple}")
        if event_id in rejected:
            raise _reject(pdu, "auth events", f"auth event {event_id} was rejected")
        seen.add(auth_event.state_tuple)
    if not pdu.room_version.room_id_from_create_event and CREATE_KEY not in seen:
        raise _reject(pdu, "auth events", "no m.room.create event among the auth events")


# --- The rules against a state ------------------------------------------------------------


def check_auth_rules(pdu: Pdu, state: Mapping[StateKey, Pdu]) -> None:
    """Raise :class:`AuthError` unless ``pdu`` is allowed by the rules against ``state``.

    ``state`` maps ``(type, state_key)`` to events and must hold the create event (it is not
    read for the create event itself). The rules on the ``auth_events`` list are
    :func:`check_auth_events_selection`'s job.
    """
    if pdu.type == CREATE:
        _check_create(pdu)
        return
    create = create_event_of(state)
    _check_room_id(pdu, create)
    _check_federation(pdu, create)
    if pdu.type == MEMBER:
        _check_membership(pdu, state)
        return
    if _membership(pdu.sender, state) != "join":
        raise _reject(pdu, "sender joined", f"{pdu.sender} is not joined")
    sender_level = user_power_level(pdu.sender, state)
    if pdu.type == THIRD_PARTY_INVITE:
        if sender_level < _level("invite", state):
            raise _reject(pdu, THIRD_PARTY_INVITE, "the sender is below the invite level")
        return
    if sender_level < required_power_level(pdu.type, pdu.is_state, state):
        raise _reject(pdu, "required power level", "the sender's level is too low")
    if pdu.state_key is not None and pdu.state_key.startswith("@") and pdu.state_key != pdu.sender:
        raise _reject(pdu, "state_key", "a state_key starting with '@' must be the sender")
    if pdu.type == POWER_LEVELS:
        check_power_levels_event(pdu, state)


def _check_create(pdu: Pdu) -> None:
    """Rule 1: the create event."""
    room_version = pdu.room_version
    content = pdu.content
    if pdu.prev_events:
        raise _reject(pdu, "create", "the create event has prev_events")
    if room_version.room_id_from_create_event:
        if "room_id" in pdu.data:
            raise _reject(pdu, "create", "the create event has a room_id")
    elif server_name_of(pdu.room_id) != server_name_of(pdu.sender):
        raise _reject(pdu, "create", "the room_id and sender are on different servers")
    if "room_version" in content and not _is_known_room_version(content["room_version"]):
        raise _reject(pdu, "create", f"unknown room version {content['room_version']!r}")
    if not room_version.implicit_room_creator and "creator" not in content:
        raise _reject(pdu, "create", "content has no creator")
    if room_version.privileged_creators and "additional_creators" in content:
        additional = content["additional_creators"]
        if not isinstance(additional, list) or not all(map(_is_user_id, additional)):
            raise _reject(pdu, "create", "additional_creators is not a list of user IDs")


def _is_known_room_version(identifier: object) -> bool:
    return isinstance(identifier, str) and identifier in KNOWN_ROOM_VERSIONS


def _is_user_id(value: object) -> bool:
    try:
        UserId.parse(value)
    except InvalidIdentifier:
        return False
    return True


def _check_room_id(pdu: Pdu, create: Pdu) -> None:
    """v12 rule 2: the room ID is the create event's ID with ``!``; before v12, the create
    event in the state must simply be in the same room."""
    if create.room_version.room_id_from_create_event:
        expected = "!" + create.event_id[1:]
    else:
        expected = create.room_id
    if pdu.room_id != expected:
        raise _reject(pdu, "room ID", f"{pdu.room_id} is not the room of {create.event_id}")


def _check_federation(pdu: Pdu, create: Pdu) -> None:
    """Rule 4: in a room that does not federate only the creator's server may send.

    Here we follow Synapse, which most of the network runs, where it is stricter than the
    spec's wording, so that servers agree on which events a room accepts: any ``m.federate``
    other than JSON true (or absent) means the room does not federate (the spec names only
    false), and a membership event's *target* must be on the creator's server too (the spec
    compares only the sender).
    """
    if create.content.get("m.federate", True) is True:
        return
    home = server_name_of(create.sender)
    if server_name_of(pdu.sender) != home:
        raise _reject(pdu, "m.federate", "the room is not federated and the sender is remote")
    if pdu.type == MEMBER and server_name_of(pdu.state_key or "") != home:
        raise _reject(pdu, "m.federate", "the room is not federated and the target is remote")


def _membership(user_id: str, state: Mapping[StateKey, Pdu]) -> str | None:
    event = state.get((MEMBER, user_id))
    return None if event is None else event.membership


def _join_rule(state: Mapping[StateKey, Pdu]) -> object:
    """The join rule; ``invite`` when the room has no join rules event, or one without
    ``join_rule`` (the spec does not say; Synapse reads both so, Ruma the first)."""
    event = state.get(JOIN_RULES_KEY)
    return "invite" if event is None else event.content.get("join_rule", "invite")


def _level(name: str, state: Mapping[StateKey, Pdu]) -> int:
    return named_power_level(name, state, NAMED_LEVEL_DEFAULTS[name])


# --- m.room.member (v12 rule 5) -----------------------------------------------------------


def _check_membership(pdu: Pdu, state: Mapping[StateKey, Pdu]) -> None:
    room_version = pdu.room_version
    if pdu.state_key is None or "membership" not in pdu.content:
        raise _reject(pdu, "member", "no state_key or no membership")
    authoriser = pdu.content.get(AUTHORISER)
    if room_version.restricted_join_rule and AUTHORISER in pdu.content and not _is_user_id(
        authoriser
    ):
        raise _reject(pdu, "member", f"{AUTHORISER} is not a user ID, so none signed for it")
    membership = pdu.content["membership"]
    checks: dict[str, Callable[[Pdu, str, Mapping[StateKey, Pdu]], None]] = {
        "join": _check_join,
        "invite": _check_invite,
        "leave": _check_leave,
        "ban": _check_ban,
    }
    if room_version.knock_join_rule:
        checks["knock"] = _check_knock
    check = checks.get(membership) if isinstance(membership, str) else None
    if check is None:
        raise _reject(pdu, "member", f"unknown membership {membership!r}")
    check(pdu, pdu.state_key, state)


def _check_join(pdu: Pdu, target: str, state: Mapping[StateKey, Pdu]) -> None:
    room_version = pdu.room_version
    create = create_event_of(state)
    if pdu.prev_events == (create.event_id,) and target == _first_joiner(create):
        return
    if pdu.sender != target:
        raise _reject(pdu, "join", "the sender is not the state_key")
    current = _membership(pdu.sender, state)
    if current == "ban":
        raise _reject(pdu, "join", f"{pdu.sender} is banned")
    join_rule = _join_rule(state)
    if join_rule == "invite" or (room_version.knock_join_rule and join_rule == "knock"):
        if current in ("invite", "join"):
            return
        raise _reject(pdu, "join", f"{pdu.sender} is not invited")
    if (room_version.restricted_join_rule and join_rule == "restricted") or (
        room_version.knock_restricted_join_rule and join_rule == "knock_restricted"
    ):
        if current in ("invite", "join"):
            return
        _check_authoriser(pdu, state)
        return
    if join_rule != "public":
        raise _reject(pdu, "join", f"the join rule {join_rule!r} does not let anyone join")


def _first_joiner(create: Pdu) -> object:
    """Who may join right after the create event: its sender from v11, ``content.creator``
    before."""
    if create.room_version.implicit_room_creator:
        return create.sender
    return create.content.get("creator")


def _check_authoriser(pdu: Pdu, state: Mapping[StateKey, Pdu]) -> None:
    """Restricted join: the authorising user must be joined and able to invite."""
    authoriser = pdu.content.get(AUTHORISER)
    if not isinstance(authoriser, str):
        raise _reject(pdu, "join", f"a restricted join needs {AUTHORISER}")
    if _membership(authoriser, state) != "join":
        raise _reject(pdu, "join", f"the authorising user {authoriser} is not joined")
    if user_power_level(authoriser, state) < _level("invite", state):
        raise _reject(pdu, "join", f"the authorising user {authoriser} may not invite")


def _check_invite(pdu: Pdu, target: str, state: Mapping[StateKey, Pdu]) -> None:
    if "third_party_invite" in pdu.content:
        _check_third_party_invite(pdu, target, state)
        return
    if _membership(pdu.sender, state) != "join":
        raise _reject(pdu, "invite", f"the sender {pdu.sender} is not joined")
    if _membership(target, state) in ("join", "ban"):
        raise _reject(pdu, "invite", f"{target} is joined or banned")
    if user_power_level(pdu.sender, state) < _level("invite", state):
        raise _reject(pdu, "invite", "the sender is below the invite level")


def _check_third_party_invite(pdu: Pdu, target: str, state: Mapping[StateKey, Pdu]) -> None:
    rule = "third-party invite"
    if _membership(target, state) == "ban":
        raise _reject(pdu, rule, f"{target} is banned")
    invite = pdu.content["third_party_invite"]
    signed = invite.get("signed") if isinstance(invite, dict) else None
    if not isinstance(signed, dict) or "mxid" not in signed or "token" not in signed:
        raise _reject(pdu, rule, "no signed block with mxid and token")
    if signed["mxid"] != target:
        raise _reject(pdu, rule, "mxid is not the state_key")
    token = signed["token"]
    original = state.get((THIRD_PARTY_INVITE, token)) if isinstance(token, str) else None
    if original is None:
        raise _reject(pdu, rule, "no m.room.third_party_invite with that token")
    if original.sender != pdu.sender:
        raise _reject(pdu, rule, "the sender did not send the m.room.third_party_invite")
    if not _signed_by_any(signed, third_party_invite_public_keys(original.content)):
        raise _reject(pdu, rule, "no signature of signed matches the invite's public keys")


def third_party_invite_public_keys(content: Mapping[str, Any]) -> list[str]:
    """The base64 public keys of an ``m.room.third_party_invite``: ``public_key`` and each
    ``public_keys[].public_key``."""
    keys = []
    if isinstance(content.get("public_key"), str):
        keys.append(content["public_key"])
    entries = content.get("public_keys")
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict) and isinstance(entry.get("public_key"), str):
            keys.append(entry["public_key"])
    return keys


def _signed_by_any(signed: Mapping[str, Any], public_keys: list[str]) -> bool:
    """Whether any ed25519 signature in ``signed`` verifies with any of ``public_keys``."""
    signatures = signed.get("signatures")
    if not isinstance(signatures, dict):
        return False
    for server_name, by_key in signatures.items():
        for key_id in by_key if isinstance(by_key, dict) else ():
            if not key_id.startswith("ed25519:"):
                continue
            for public_key in public_keys:
                try:
                    verify_json(signed, server_name, VerifyKey.from_base64(key_id, public_key))
                except SignatureError:
                    continue
                return True
    return False


def _check_leave(pdu: Pdu, target: str, state: Mapping[StateKey, Pdu]) -> None:
    sender_membership = _membership(pdu.sender, state)
    if pdu.sender == target:
        may_leave = {"invite", "join"}
        if pdu.room_version.knock_join_rule:
            may_leave.add("knock")
        if sender_membership not in may_leave:
            raise _reject(pdu, "leave", f"{pdu.sender} is not invited, joined or knocking")
        return
    if sender_membership != "join":
        raise _reject(pdu, "leave", f"the sender {pdu.sender} is not joined")
    sender_level = user_power_level(pdu.sender, state)
    target_level = user_power_level(target, state)
    if _membership(target, state) == "ban" and sender_level < _level("ban", state):
        raise _reject(pdu, "leave", "the sender is below the ban level and cannot unban")
    if sender_level < _level("kick", state) or target_level >= sender_level:
        raise _reject(pdu, "leave", "the sender is below the kick level or the target's level")


def _check_ban(pdu: Pdu, target: str, state: Mapping[StateKey, Pdu]) -> None:
    if _membership(pdu.sender, state) != "join":
        raise _reject(pdu, "ban", f"the sender {pdu.sender} is not joined")
    sender_level = user_power_level(pdu.sender, state)
    target_level = user_power_level(target, state)
    if sender_level < _level("ban", state) or target_level >= sender_level:
        raise _reject(pdu, "ban", "the sender is below the ban level or the target's level")


def _check_knock(pdu: Pdu, target: str, state: Mapping[StateKey, Pdu]) -> None:
    join_rule = _join_rule(state)
    if join_rule != "knock" and not (
        pdu.room_version.knock_restricted_join_rule and join_rule == "knock_restricted"
    ):
        raise _reject(pdu, "knock", f"the join rule {join_rule!r} does not allow knocking")
    if pdu.sender != target:
        raise _reject(pdu, "knock", "the sender is not the state_key")
    if _membership(pdu.sender, state) in ("ban", "invite", "join"):
        raise _reject(pdu, "knock", f"{pdu.sender} is banned, invited or joined")
