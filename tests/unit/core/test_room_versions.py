"""Room versions 6 to 12 as a table of flags (spec "Room Versions")."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.core.room_versions import (
    DEFAULT_ROOM_VERSION,
    KNOWN_ROOM_VERSIONS,
    RoomVersion,
    StateResAlgorithm,
    room_version,
)

# The version that introduced each rule, from the spec's room version pages.
INTRODUCED_IN = {
    "knock_join_rule": 7,  # v7: knocking
    "restricted_join_rule": 8,  # v8: restricted join rule, join_rules `allow` kept on redaction
    "restricted_join_redaction_fix": 9,  # v9: join_authorised_via_users_server kept on redaction
    "knock_restricted_join_rule": 10,  # v10: knock_restricted
    "integer_power_levels": 10,  # v10: power levels must be integers
    "implicit_room_creator": 11,  # v11: creator is the create event's sender
    "updated_redaction_rules": 11,  # v11: new redaction algorithm
    "room_id_from_create_event": 12,  # v12: room ID is the create event's hash
    "privileged_creators": 12,  # v12: creators have infinite power
}


def test_known_versions_are_6_to_12() -> None:
    assert list(KNOWN_ROOM_VERSIONS) == ["6", "7", "8", "9", "10", "11", "12"]
    for identifier, version in KNOWN_ROOM_VERSIONS.items():
        assert version.identifier == identifier
        assert room_version(identifier) is version


def test_new_rooms_default_to_12() -> None:
    assert DEFAULT_ROOM_VERSION is KNOWN_ROOM_VERSIONS["12"]


@pytest.mark.parametrize("identifier", list(KNOWN_ROOM_VERSIONS))
def test_flags(identifier: str) -> None:
    version = KNOWN_ROOM_VERSIONS[identifier]
    flags = {
        f.name: getattr(version, f.name)
        for f in dataclasses.fields(RoomVersion)
        if f.name not in ("identifier", "state_res")
    }
    assert set(flags) == set(INTRODUCED_IN), "every flag needs an entry in INTRODUCED_IN"
    for name, since in INTRODUCED_IN.items():
        assert flags[name] is (int(identifier) >= since), name
    expected_state_res = StateResAlgorithm.V2_1 if int(identifier) >= 12 else StateResAlgorithm.V2
    assert version.state_res is expected_state_res


def test_versions_are_frozen_data() -> None:
    version = KNOWN_ROOM_VERSIONS["12"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        version.identifier = "13"  # type: ignore[misc]
    assert dataclasses.replace(version) == version
    assert hash(version) == hash(dataclasses.replace(version))


@pytest.mark.parametrize("identifier", ["1", "5", "13", "", " 12", "12.0", "v12", None, 12, 6.0])
def test_unsupported_versions(identifier: Any) -> None:
    with pytest.raises(MatrixError) as info:
        room_version(identifier)
    assert info.value.errcode == Errcode.UNSUPPORTED_ROOM_VERSION
    assert info.value.status == 400
