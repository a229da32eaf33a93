"""Power levels: who the room creators are, what a user's level is, what an action requires,
and the authorisation rule for changing ``m.room.power_levels``.

Reading rules (client-server API ``m.room.power_levels``; server-server API "Definitions"):

- With no power levels event, the creators have 100 and everyone else 0; ``state_default`` is
  50, ``events_default`` 0, ``ban``/``kick``/``redact`` 50 and ``invite`` 0.
- From room version 12 (``privileged_creators``) the creators (the create event's sender plus
  ``additional_creators``) have an infinite level, with or without a power levels event.
- Before room version 10 (``integer_power_levels``) a level may be a string holding a base 10
  integer with optional sign and surrounding whitespace (spec fragment "m.room.power_levels
  events accept values as strings"); from version 10 only JSON integers count.

A value in the state that is not a valid level is read as if it were absent, so the default
applies. The authorisation rules never let such a value into the state from version 10 on;
before that only ``users`` is validated, so a room's first power levels event may carry one.

Everything here is pure: ``state`` is a map ``(event_type, state_key) -> Pdu`` that holds the
create event.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from rocketnode.core.errors import AuthError, InvalidIdentifier
from rocketnode.core.ids import UserId
from rocketnode.core.pdu import Pdu, StateKey
from rocketnode.core.room_versions import RoomVersion

CREATE_KEY: StateKey = ("m.room.create", "")
POWER_LEVELS_KEY: StateKey = ("m.room.power_levels", "")

NAMED_LEVEL_DEFAULTS: Mapping[str, int] = {
    "users_default": 0,
    "events_default": 0,
    "state_default": 50,
    "ban": 50,
    "kick": 50,
    "redact": 50,
    "invite": 0,
}
"""The top-level integer properties of ``m.room.power_levels`` and their defaults."""

CREATOR_WITHOUT_POWER_LEVELS = 100
"""The level of the creator before room version 12 when the room has no power levels event."""

_LEVEL_MAPS = ("events", "notifications")
_STRINGY_LEVEL = re.compile(r"\s*[+-]?[0-9]+\s*")


def parse_power_level(value: object, room_version: RoomVersion) -> int | None:
    """``value`` as a power level, or ``None`` if it is not one in ``room_version``.

    JSON integers always count (booleans do not). Before room version 10 a string that holds a
    base 10 integer counts too: ASCII digits, an optional ``+``/``-`` and surrounding whitespace.
    """
    if type(value) is int:
        return value
    if (
        isinstance(value, str)
        and not room_version.integer_power_levels
        and _STRINGY_LEVEL.fullmatch(value)
    ):
        try:
            return int(value)
        except ValueError:  # more digits than Python converts
            return None
    return None


def create_event_of(state: Mapping[StateKey, Pdu]) -> Pdu:
    """The ``m.room.create`` event of ``state``; :class:`AuthError` if there is none."""
    create = state.get(CREATE_KEY)
    if create is None:
        raise AuthError("The state holds no m.room.create event")
    return create


def room_creators(source: Mapping[StateKey, Pdu] | Pdu) -> frozenset[str]:
    """The room creators, from a state map or from the create event itself.

    Up to room version 10 this is ``content.creator``; from 11 the create event's ``sender``;
    from 12 also every user in ``content.additional_creators``.
    """
    create = source if isinstance(source, Pdu) else create_event_of(source)
    room_version = create.room_version
    if not room_version.implicit_room_creator:
        creator = create.content.get("creator")
        return frozenset((creator,)) if isinstance(creator, str) else frozenset()
    creators = {create.sender}
    additional = create.content.get("additional_creators")
    if room_version.privileged_creators and isinstance(additional, list):
        creators.update(user_id for user_id in additional if isinstance(user_id, str))
    return frozenset(creators)


def user_power_level(user_id: str, state: Mapping[StateKey, Pdu]) -> int | float:
    """The power level of ``user_id``: ``float('inf')`` for a creator from room version 12."""
    create = create_event_of(state)
    is_creator = user_id in room_creators(create)
    if is_creator and create.room_version.privileged_creators:
        return math.inf
    power_levels = state.get(POWER_LEVELS_KEY)
    if power_levels is None:
        return CREATOR_WITHOUT_POWER_LEVELS if is_creator else 0
    users = power_levels.content.get("users")
    if isinstance(users, dict) and user_id in users:
        level = parse_power_level(users[user_id], power_levels.room_version)
        if level is not None:
            return level
    return _named_level(power_levels, "users_default", NAMED_LEVEL_DEFAULTS["users_default"])


def required_power_level(event_type: str, is_state: bool, state: Mapping[StateKey, Pdu]) -> int:
    """The level needed to send an event of ``event_type`` (spec "Required Power Level")."""
    default_name = "state_default" if is_state else "events_default"
    default = NAMED_LEVEL_DEFAULTS[default_name]
    power_levels = state.get(POWER_LEVELS_KEY)
    if power_levels is None:
        return default
    events = power_levels.content.get("events")
    if isinstance(events, dict) and event_type in events:
        level = parse_power_level(events[event_type], power_levels.room_version)
        if level is not None:
            return level
    return _named_level(power_levels, default_name, default)


def named_power_level(name: str, state: Mapping[StateKey, Pdu], default: int) -> int:
    """A top-level level such as ``ban``, ``kick``, ``invite`` or ``redact`` (see
    :data:`NAMED_LEVEL_DEFAULTS` for the defaults the spec gives them)."""
    power_levels = state.get(POWER_LEVELS_KEY)
    if power_levels is None:
        return default
    return _named_level(power_levels, name, default)


def _named_level(power_levels: Pdu, name: str, default: int) -> int:
    if name not in power_levels.content:
        return default
    level = parse_power_level(power_levels.content[name], power_levels.room_version)
    return default if level is None else level


# --- The m.room.power_levels authorisation rule (v12 rule 10, rule 9 before) ----------------


def check_power_levels_event(pdu: Pdu, state: Mapping[StateKey, Pdu]) -> None:
    """Raise :class:`AuthError` unless ``pdu`` (an ``m.room.power_levels`` event that passed the
    earlier rules) is a change its sender may make."""
    _check_content_shape(pdu)
    _check_no_creators_listed(pdu, state)
    current = state.get(pdu.state_tuple)
    if current is None:
        return
    sender_level = user_power_level(pdu.sender, state)
    for name in NAMED_LEVEL_DEFAULTS:
        _check_alteration(pdu, name, current.content, pdu.content, sender_level)
    for map_name in _LEVEL_MAPS:
        _check_level_map(pdu, map_name, current.content, sender_level)
    _check_users(pdu, current.content, sender_level)


def _reject(pdu: Pdu, detail: str) -> AuthError:
    return AuthError(f"{pdu.event_id} rejected by the m.room.power_levels rule: {detail}")


def _check_content_shape(pdu: Pdu) -> None:
    content = pdu.content
    if pdu.room_version.integer_power_levels:
        for name in NAMED_LEVEL_DEFAULTS:
            if name in content and type(content[name]) is not int:
                raise _reject(pdu, f"{name!r} is not an integer")
        for map_name in _LEVEL_MAPS:
            value = content.get(map_name, {})
            if not isinstance(value, dict) or any(type(v) is not int for v in value.values()):
                raise _reject(pdu, f"{map_name!r} is not an object of integers")
    users = content.get("users", {})
    if not isinstance(users, dict):
        raise _reject(pdu, "'users' is not an object")
    for user_id, level in users.items():
        try:
            UserId.parse(user_id)
        except InvalidIdentifier as exc:
            raise _reject(pdu, f"'users' key {user_id!r} is not a user ID") from exc
        if parse_power_level(level, pdu.room_version) is None:
            raise _reject(pdu, f"level of {user_id} is not an integer")


def _check_no_creators_listed(pdu: Pdu, state: Mapping[StateKey, Pdu]) -> None:
    if not pdu.room_version.privileged_creators:
        return
    listed = room_creators(state).intersection(pdu.content.get("users", {}))
    if listed:
        raise _reject(pdu, f"room creators may not be listed in 'users': {sorted(listed)}")


def _check_alteration(
    pdu: Pdu,
    key: str,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    sender_level: int | float,
) -> None:
    """One entry of the top level or of ``events``/``notifications``: an entry that is added,
    changed or removed must be at most the sender's level before and after."""
    old_level = parse_power_level(old.get(key), pdu.room_version)
    new_level = None
    if key in new:
        new_level = parse_power_level(new[key], pdu.room_version)
        if new_level is None:
            if key in old and old[key] == new[key]:
                return  # an unchanged value the room already had
            raise _reject(pdu, f"{key!r} is not an integer")
        if new_level == old_level:
            return
    if old_level is not None and old_level > sender_level:
        raise _reject(pdu, f"the current level of {key!r} is above the sender's")
    if new_level is not None and new_level > sender_level:
        raise _reject(pdu, f"the new level of {key!r} is above the sender's")


def _check_level_map(
    pdu: Pdu, map_name: str, current: Mapping[str, Any], sender_level: int | float
) -> None:
    old = current.get(map_name, {})
    new = pdu.content.get(map_name, {})
    if not isinstance(new, dict):  # only reachable before room version 10
        if new == old:
            return
        raise _reject(pdu, f"{map_name!r} is not an object")
    if not isinstance(old, dict):
        old = {}
    for key in old.keys() | new.keys():
        _check_alteration(pdu, key, old, new, sender_level)


def _check_users(pdu: Pdu, current: Mapping[str, Any], sender_level: int | float) -> None:
    old = current.get("users", {})
    if not isinstance(old, dict):
        old = {}
    new = pdu.content.get("users", {})
    for user_id in old.keys() | new.keys():
        old_level = parse_power_level(old.get(user_id), pdu.room_version)
        new_level = parse_power_level(new.get(user_id), pdu.room_version)
        if old_level is not None and old_level == new_level:
            continue
        if user_id != pdu.sender and old_level is not None and old_level >= sender_level:
            raise _reject(pdu, f"cannot change the level of {user_id}, not below the sender's")
        if new_level is not None and new_level > sender_level:
            raise _reject(pdu, f"cannot give {user_id} a level above the sender's")
