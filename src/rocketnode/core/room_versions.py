"""Room versions 6 to 12 as a table of rule flags (spec "Room Versions").

Each version is the previous one with :func:`dataclasses.replace`; code asks a flag, never a
version number.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass

from rocketnode.core.errors import Errcode, MatrixError


class StateResAlgorithm(enum.Enum):
    V2 = "v2"
    """State resolution v2 (room versions 2 to 11)."""
    V2_1 = "v2.1"
    """v2 starting from an empty state, with the conflicted state subgraph (room version 12)."""


@dataclass(frozen=True, slots=True)
class RoomVersion:
    identifier: str
    state_res: StateResAlgorithm = StateResAlgorithm.V2
    knock_join_rule: bool = False
    """v7: the ``knock`` join rule and ``knock`` membership."""
    restricted_join_rule: bool = False
    """v8: the ``restricted`` join rule, ``join_authorised_via_users_server``, and redaction
    keeping ``allow`` in ``m.room.join_rules``."""
    restricted_join_redaction_fix: bool = False
    """v9: redaction keeps ``join_authorised_via_users_server`` in ``m.room.member``."""
    knock_restricted_join_rule: bool = False
    """v10: the ``knock_restricted`` join rule."""
    integer_power_levels: bool = False
    """v10: power level values must be integers, not strings."""
    implicit_room_creator: bool = False
    """v11: the creator is the create event's sender; ``content.creator`` is not used."""
    updated_redaction_rules: bool = False
    """v11: MSC2176 redaction rules (``redacts`` in content, fewer top-level keys, ...)."""
    room_id_from_create_event: bool = False
    """v12: the room ID is the create event's ID; the create event is not an auth event."""
    privileged_creators: bool = False
    """v12: creators (sender plus ``additional_creators``) have infinite power."""


V6 = RoomVersion("6")
V7 = dataclasses.replace(V6, identifier="7", knock_join_rule=True)
V8 = dataclasses.replace(V7, identifier="8", restricted_join_rule=True)
V9 = dataclasses.replace(V8, identifier="9", restricted_join_redaction_fix=True)
V10 = dataclasses.replace(
    V9, identifier="10", knock_restricted_join_rule=True, integer_power_levels=True
)
V11 = dataclasses.replace(
    V10, identifier="11", implicit_room_creator=True, updated_redaction_rules=True
)
V12 = dataclasses.replace(
    V11,
    identifier="12",
    state_res=StateResAlgorithm.V2_1,
    room_id_from_create_event=True,
    privileged_creators=True,
)

KNOWN_ROOM_VERSIONS: dict[str, RoomVersion] = {
    v.identifier: v for v in (V6, V7, V8, V9, V10, V11, V12)
}
DEFAULT_ROOM_VERSION = V12


def room_version(identifier: object) -> RoomVersion:
    """The rules of a supported room version; ``M_UNSUPPORTED_ROOM_VERSION`` otherwise."""
    if isinstance(identifier, str):
        found = KNOWN_ROOM_VERSIONS.get(identifier)
        if found is not None:
            return found
    raise MatrixError(
        Errcode.UNSUPPORTED_ROOM_VERSION,
        f"Room version {identifier!r} is not supported",
        400,
    )
