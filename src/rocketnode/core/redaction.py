"""The redaction algorithm of each room version (spec: room versions, "Redactions").

Redaction strips a PDU down to the keys the protocol needs: it is applied when a redaction is
honoured, when computing reference hashes, and to events whose content hash does not match.
"""

from __future__ import annotations

from typing import Any

from rocketnode.core.room_versions import RoomVersion

_TOP_LEVEL_KEYS = frozenset(
    {
        "event_id",
        "type",
        "room_id",
        "sender",
        "state_key",
        "content",
        "hashes",
        "signatures",
        "depth",
        "prev_events",
        "auth_events",
        "origin_server_ts",
    }
)
_TOP_LEVEL_KEYS_BEFORE_V11 = _TOP_LEVEL_KEYS | {"prev_state", "origin", "membership"}

_POWER_LEVEL_KEYS = (
    "ban",
    "events",
    "events_default",
    "kick",
    "redact",
    "state_default",
    "users",
    "users_default",
)


def _kept_content_keys(room_version: RoomVersion, event_type: object) -> tuple[str, ...] | None:
    """The content keys that survive redaction; ``None`` means all of them."""
    v11 = room_version.updated_redaction_rules
    if event_type == "m.room.member":
        if room_version.restricted_join_redaction_fix:
            return ("membership", "join_authorised_via_users_server")
        return ("membership",)
    if event_type == "m.room.create":
        return None if v11 else ("creator",)
    if event_type == "m.room.join_rules":
        # Room version 8 introduced `allow` and already kept it; v9 fixed only m.room.member.
        return ("join_rule", "allow") if room_version.restricted_join_rule else ("join_rule",)
    if event_type == "m.room.power_levels":
        return (*_POWER_LEVEL_KEYS, "invite") if v11 else _POWER_LEVEL_KEYS
    if event_type == "m.room.history_visibility":
        return ("history_visibility",)
    if event_type == "m.room.redaction" and v11:
        return ("redacts",)
    return ()


def redact(room_version: RoomVersion, pdu: dict[str, Any]) -> dict[str, Any]:
    """Return the redacted form of ``pdu`` (a new dict; the input is not changed)."""
    keys = _TOP_LEVEL_KEYS if room_version.updated_redaction_rules else _TOP_LEVEL_KEYS_BEFORE_V11
    redacted = {key: value for key, value in pdu.items() if key in keys}
    content = pdu.get("content")
    if not isinstance(content, dict):
        redacted["content"] = {}
        return redacted
    event_type = pdu.get("type")
    kept = _kept_content_keys(room_version, event_type)
    if kept is None:
        new_content = dict(content)
    else:
        new_content = {key: content[key] for key in kept if key in content}
    third_party_invite = content.get("third_party_invite")
    if (
        event_type == "m.room.member"
        and room_version.updated_redaction_rules
        and isinstance(third_party_invite, dict)
    ):
        # v11 keeps "the `signed` key of the `third_party_invite` key". MSC3821 words it as
        # preserving "a portion of third_party_invite ..., if present": an object stays an
        # object, emptied down to `signed` -- so `{}` when it has none, as Synapse does.
        new_content["third_party_invite"] = (
            {"signed": third_party_invite["signed"]} if "signed" in third_party_invite else {}
        )
    redacted["content"] = new_content
    return redacted
