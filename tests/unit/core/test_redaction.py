"""The redaction algorithm of room versions 6 to 12, checked against the spec's lists.

The expected keys below are transcribed from the spec (content/rooms/v6.md ... v12.md and the
fragments v6-redactions, v9-redactions, v11-redactions; room version 8 has its own list).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rocketnode.core.redaction import redact
from rocketnode.core.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion

TOP_LEVEL_V6 = {
    "event_id", "type", "room_id", "sender", "state_key", "content", "hashes", "signatures",
    "depth", "prev_events", "prev_state", "auth_events", "origin", "origin_server_ts", "membership",
}
TOP_LEVEL_V11 = TOP_LEVEL_V6 - {"prev_state", "origin", "membership"}

_POWER_LEVELS = {"ban", "events", "events_default", "kick", "redact", "state_default", "users",
                 "users_default"}
ALL = None  # every content key survives
CONTENT_V6 = {
    "m.room.member": {"membership"},
    "m.room.create": {"creator"},
    "m.room.join_rules": {"join_rule"},
    "m.room.power_levels": _POWER_LEVELS,
    "m.room.history_visibility": {"history_visibility"},
}
CONTENT_V8 = {**CONTENT_V6, "m.room.join_rules": {"join_rule", "allow"}}
CONTENT_V9 = {
    **CONTENT_V8,
    "m.room.member": {"membership", "join_authorised_via_users_server"},
}
CONTENT_V11 = {
    **CONTENT_V9,
    "m.room.create": ALL,
    "m.room.power_levels": _POWER_LEVELS | {"invite"},
    "m.room.redaction": {"redacts"},
}
SPEC: dict[str, tuple[set[str], dict[str, set[str] | None]]] = {
    "6": (TOP_LEVEL_V6, CONTENT_V6),
    "7": (TOP_LEVEL_V6, CONTENT_V6),
    "8": (TOP_LEVEL_V6, CONTENT_V8),
    "9": (TOP_LEVEL_V6, CONTENT_V9),
    "10": (TOP_LEVEL_V6, CONTENT_V9),
    "11": (TOP_LEVEL_V11, CONTENT_V11),
    "12": (TOP_LEVEL_V11, CONTENT_V11),
}
VERSIONS = [KNOWN_ROOM_VERSIONS[v] for v in SPEC]
EVENT_TYPES = [*CONTENT_V11, "m.room.message", "m.room.name", "m.room.aliases", "m.room.topic",
               "m.room.third_party_invite", "m.room.canonical_alias", "org.example.custom"]
CONTENT_KEYS = sorted(
    {k for table in (CONTENT_V6, CONTENT_V11) for keys in table.values() if keys for k in keys}
    | {"body", "aliases", "name", "notifications", "third_party_invite", "reason", "room_version",
       "predecessor", "additional_creators", "m.federate", "displayname", "avatar_url"}
)


def _full_pdu(event_type: str) -> dict[str, Any]:
    """A PDU carrying every top-level key the spec mentions, extra ones, and a full content."""
    content = {key: f"value of {key}" for key in CONTENT_KEYS}
    content["third_party_invite"] = {"display_name": "x", "signed": {"mxid": "@a:b", "token": "t"}}
    pdu = {key: f"value of {key}" for key in TOP_LEVEL_V6}
    pdu.update(content=content, type=event_type, redacts="$top-level", unsigned={"age_ts": 1},
               custom_key=True, age_ts=5, outlier=False, destinations={})
    return pdu


def _expected(version: str, pdu: dict[str, Any]) -> dict[str, Any]:
    top_level, content_table = SPEC[version]
    expected = {k: v for k, v in pdu.items() if k in top_level}
    kept = content_table.get(pdu["type"], set())
    content = pdu["content"]
    expected["content"] = (
        dict(content) if kept is ALL else {k: v for k, v in content.items() if k in kept}
    )
    third_party_invite = content.get("third_party_invite")
    if (version in ("11", "12") and pdu["type"] == "m.room.member"
            and isinstance(third_party_invite, dict)):
        # v11: m.room.member "allows the `signed` key of the `third_party_invite` key"; MSC3821
        # (which the rule comes from) preserves "a portion of third_party_invite ..., if
        # present", so an object without `signed` stays as an empty object.
        expected["content"]["third_party_invite"] = {
            k: v for k, v in third_party_invite.items() if k == "signed"
        }
    return expected


@pytest.mark.parametrize("event_type", EVENT_TYPES)
@pytest.mark.parametrize("room_version", VERSIONS, ids=lambda v: f"v{v.identifier}")
def test_redaction_follows_the_spec(room_version: RoomVersion, event_type: str) -> None:
    pdu = _full_pdu(event_type)
    snapshot = copy.deepcopy(pdu)
    assert redact(room_version, pdu) == _expected(room_version.identifier, pdu)
    assert pdu == snapshot, "redact must not change its input"


def test_join_rules_allow_survives_from_room_version_8() -> None:
    # Room version 8: "m.room.join_rules events now keep allow in addition to other keys".
    pdu = {"type": "m.room.join_rules", "content": {"join_rule": "restricted", "allow": [{}]}}
    assert redact(KNOWN_ROOM_VERSIONS["7"], pdu)["content"] == {"join_rule": "restricted"}
    for version in ("8", "9", "10", "11", "12"):
        assert redact(KNOWN_ROOM_VERSIONS[version], pdu)["content"] == pdu["content"]


def test_authorising_user_survives_from_room_version_9() -> None:
    pdu = {"type": "m.room.member",
           "content": {"membership": "join", "join_authorised_via_users_server": "@a:b"}}
    for version in ("6", "7", "8"):
        assert redact(KNOWN_ROOM_VERSIONS[version], pdu)["content"] == {"membership": "join"}
    for version in ("9", "10", "11", "12"):
        assert redact(KNOWN_ROOM_VERSIONS[version], pdu)["content"] == pdu["content"]


@pytest.mark.parametrize(
    "third_party_invite",
    ["a string", ["signed"], {"no_signed": 1}, {}, None, {"signed": None},
     {"signed": "x", "y": 1}],
)
def test_third_party_invite_shapes(third_party_invite: Any) -> None:
    pdu = {"type": "m.room.member",
           "content": {"membership": "invite", "third_party_invite": third_party_invite}}
    for room_version in VERSIONS:
        content = redact(room_version, pdu)["content"]
        if room_version.updated_redaction_rules and isinstance(third_party_invite, dict):
            kept = {k: v for k, v in third_party_invite.items() if k == "signed"}
            assert content == {"membership": "invite", "third_party_invite": kept}
        else:
            assert content == {"membership": "invite"}


@pytest.mark.parametrize("content", [None, "text", 5, [1, 2], True])
def test_non_object_content_becomes_empty(content: Any) -> None:
    for room_version in VERSIONS:
        assert redact(room_version, {"type": "m.room.create", "content": content}) == {
            "type": "m.room.create", "content": {}}
        assert redact(room_version, {"type": "m.room.create"}) == {
            "type": "m.room.create", "content": {}}


def test_unsigned_is_dropped() -> None:
    # The spec's list has no `unsigned`. (Synapse keeps unsigned.age_ts and replaces_state:
    # see test_core_vs_synapse.py.)
    for room_version in VERSIONS:
        assert "unsigned" not in redact(room_version, {"type": "x", "unsigned": {"age_ts": 1}})


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.text(max_size=4),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
    max_leaves=8,
)


@settings(max_examples=400)
@given(
    st.sampled_from(VERSIONS),
    st.sampled_from(EVENT_TYPES) | st.text(max_size=10),
    st.dictionaries(st.sampled_from(CONTENT_KEYS) | st.text(max_size=6), _json, max_size=8),
    st.dictionaries(st.sampled_from(sorted(TOP_LEVEL_V6 | {"redacts", "unsigned"}))
                    | st.text(max_size=6), _json, max_size=8),
)
def test_redaction_properties(
    room_version: RoomVersion, event_type: str, content: dict[str, Any], top: dict[str, Any]
) -> None:
    pdu = {**top, "type": event_type, "content": content}
    redacted = redact(room_version, pdu)
    assert redacted == _expected(room_version.identifier, pdu)
    assert redact(room_version, redacted) == redacted  # idempotent
