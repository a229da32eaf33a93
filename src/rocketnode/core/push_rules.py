"""Push rules: the server-default rules as data, a user's full ruleset, and rule validation
(client-server API "Push Notifications": "Push Rules", "Predefined Rules", spec v1.16).

:data:`DEFAULT_RULES` lists the server-default rules of each kind in the order the spec gives
them, with placeholders for the user's ID and localpart; nothing about an individual rule is
written as code. The deprecated rules (``.m.rule.contains_display_name``, ``.m.rule.roomnotif``,
``.m.rule.contains_user_name``) are listed enabled, as the spec defines them: it is evaluation
that skips them for events carrying ``m.mentions``.

A user's stored rows are of two sorts: their own rules (a ``rule_id`` not starting with ``.``)
in priority order, and changes to a default rule (its ``actions`` and/or ``enabled``).
:func:`ruleset` merges them into the full ruleset, ordered as the spec requires: in each kind
``.m.rule.master`` first, then the user's rules, then the other server-default rules.

Pure: no I/O. Every refusal is a :class:`~rocketnode.core.errors.MatrixError`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.core.ids import RoomId, UserId

KINDS = ("override", "content", "room", "sender", "underride")
"""The kinds of rule, in the order they are checked."""

MASTER_RULE_ID = ".m.rule.master"
USER_ID = "[the user's Matrix ID]"
LOCALPART = "[the local part of the user's Matrix ID]"
"""Placeholders in :data:`DEFAULT_RULES`, filled in per user."""

_SOUND = {"set_tweak": "sound", "value": "default"}
_RING = {"set_tweak": "sound", "value": "ring"}
_HIGHLIGHT = {"set_tweak": "highlight"}

DEFAULT_RULES: Mapping[str, tuple[Mapping[str, Any], ...]] = {
    "override": (
        {"rule_id": ".m.rule.master", "enabled": False, "conditions": [], "actions": []},
        {"rule_id": ".m.rule.suppress_notices", "enabled": True,
         "conditions": [{"kind": "event_match", "key": "content.msgtype",
                         "pattern": "m.notice"}],
         "actions": []},
        {"rule_id": ".m.rule.invite_for_me", "enabled": True,
         "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.room.member"},
                        {"kind": "event_match", "key": "content.membership",
                         "pattern": "invite"},
                        {"kind": "event_match", "key": "state_key", "pattern": USER_ID}],
         "actions": ["notify", _SOUND]},
        {"rule_id": ".m.rule.member_event", "enabled": True,
         "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.room.member"}],
         "actions": []},
        {"rule_id": ".m.rule.is_user_mention", "enabled": True,
         "conditions": [{"kind": "event_property_contains",
                         "key": "content.m\\.mentions.user_ids", "value": USER_ID}],
         "actions": ["notify", _SOUND, _HIGHLIGHT]},
        {"rule_id": ".m.rule.contains_display_name", "enabled": True,
         "conditions": [{"kind": "contains_display_name"}],
         "actions": ["notify", _SOUND, _HIGHLIGHT]},
        {"rule_id": ".m.rule.is_room_mention", "enabled": True,
         "conditions": [{"kind": "event_property_is", "key": "content.m\\.mentions.room",
                         "value": True},
                        {"kind": "sender_notification_permission", "key": "room"}],
         "actions": ["notify", _HIGHLIGHT]},
        {"rule_id": ".m.rule.roomnotif", "enabled": True,
         "conditions": [{"kind": "event_match", "key": "content.body", "pattern": "@room"},
                        {"kind": "sender_notification_permission", "key": "room"}],
         "actions": ["notify", _HIGHLIGHT]},
        {"rule_id": ".m.rule.tombstone", "enabled": True,
         "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.room.tombstone"},
                        {"kind": "event_match", "key": "state_key", "pattern": ""}],
         "actions": ["notify", _HIGHLIGHT]},
        {"rule_id": ".m.rule.reaction", "enabled": True,
         "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.reaction"}],
         "actions": []},
        {"rule_id": ".m.rule.room.server_acl", "enabled": True,
         "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.room.server_acl"},
                        {"kind": "event_match", "key": "state_key", "pattern": ""}],
         "actions": []},
        {"rule_id": ".m.rule.suppress_edits", "enabled": True,
         "conditions": [{"kind": "event_property_is", "key": "content.m\\.relates_to.rel_type",
                         "value": "m.replace"}],
         "actions": []},
    ),
    "content": (
        {"rule_id": ".m.rule.contains_user_name", "enabled": True, "pattern": LOCALPART,
         "actions": ["notify", _SOUND, _HIGHLIGHT]},
    ),
    "room": (),
    "sender": (),
    "underride": (
        {"rule_id": ".m.rule.call", "enabled": True,
         "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.call.invite"}],
         "actions": ["notify", _RING]},
        {"rule_id": ".m.rule.encrypted_room_one_to_one", "enabled": True,
         "conditions": [{"kind": "room_member_count", "is": "2"},
                        {"kind": "event_match", "key": "type", "pattern": "m.room.encrypted"}],
         "actions": ["notify", _SOUND]},
        {"rule_id": ".m.rule.room_one_to_one", "enabled": True,
         "conditions": [{"kind": "room_member_count", "is": "2"},
                        {"kind": "event_match", "key": "type", "pattern": "m.room.message"}],
         "actions": ["notify", _SOUND]},
        {"rule_id": ".m.rule.message", "enabled": True,
         "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.room.message"}],
         "actions": ["notify"]},
        {"rule_id": ".m.rule.encrypted", "enabled": True,
         "conditions": [{"kind": "event_match", "key": "type", "pattern": "m.room.encrypted"}],
         "actions": ["notify"]},
    ),
}

_HISTORICAL_ACTIONS = frozenset({"dont_notify", "coalesce"})
"""Actions of older spec versions: ignored, i.e. stripped (spec "Historical Actions")."""

_CONDITION_PARAMS: Mapping[str, Mapping[str, tuple[type, ...]]] = {
    "event_match": {"key": (str,), "pattern": (str,)},
    "event_property_is": {"key": (str,), "value": (str, int, bool, type(None))},
    "event_property_contains": {"key": (str,), "value": (str, int, bool, type(None))},
    "contains_display_name": {},
    "room_member_count": {"is": (str,)},
    "sender_notification_permission": {"key": (str,)},
}
"""Required parameters of the conditions the spec defines; other kinds are kept as they are
(an unrecognised condition never matches, which the evaluator decides, not the API)."""

_CANONICAL_INT_LIMIT = 2**53 - 1


@dataclass(frozen=True, slots=True)
class StoredRule:
    """One stored row: a user rule (``rule`` holds it) or a change to a default rule (``rule``
    holds only ``actions``, or is None when only ``enabled`` changed)."""

    kind: str
    rule_id: str
    rule: Mapping[str, Any] | None
    enabled: bool | None


def is_default_rule_id(rule_id: str) -> bool:
    return rule_id.startswith(".")


def default_rule(kind: str, rule_id: str) -> Mapping[str, Any] | None:
    """The server-default rule ``rule_id`` of ``kind`` (placeholders not filled in)."""
    for rule in DEFAULT_RULES.get(kind, ()):
        if rule["rule_id"] == rule_id:
            return rule
    return None


def _fill(value: Any, user_id: str) -> Any:
    if value == USER_ID:
        return user_id
    if value == LOCALPART:
        return UserId.parse(user_id).localpart
    if isinstance(value, dict):
        return {key: _fill(item, user_id) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, user_id) for item in value]
    return value


def _default_json(rule: Mapping[str, Any], user_id: str, row: StoredRule | None) -> dict[str, Any]:
    result: dict[str, Any] = _fill(dict(rule), user_id)
    result["default"] = True
    if row is not None and row.rule is not None and isinstance(row.rule.get("actions"), list):
        result["actions"] = copy.deepcopy(row.rule["actions"])
    if row is not None and row.enabled is not None:
        result["enabled"] = row.enabled
    return result


def _user_json(kind: str, row: StoredRule) -> dict[str, Any]:
    rule = row.rule or {}
    result: dict[str, Any] = {
        "rule_id": row.rule_id,
        "default": False,
        "enabled": True if row.enabled is None else row.enabled,
        "actions": copy.deepcopy(rule.get("actions", [])),
    }
    if kind in ("override", "underride"):
        result["conditions"] = copy.deepcopy(rule.get("conditions", []))
    if kind == "content":
        result["pattern"] = rule.get("pattern", "")
    return result


def ruleset(user_id: str, rows: Iterable[StoredRule]) -> dict[str, list[dict[str, Any]]]:
    """The user's full ``global`` ruleset; ``rows`` in priority order, most important first."""
    default_changes: dict[tuple[str, str], StoredRule] = {}
    user_rules: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    for row in rows:
        if row.kind not in user_rules:
            continue
        if is_default_rule_id(row.rule_id):
            default_changes[(row.kind, row.rule_id)] = row
        elif row.rule is not None:
            user_rules[row.kind].append(_user_json(row.kind, row))
    result: dict[str, list[dict[str, Any]]] = {}
    for kind in KINDS:
        defaults = [
            _default_json(rule, user_id, default_changes.get((kind, rule["rule_id"])))
            for rule in DEFAULT_RULES[kind]
        ]
        master = [rule for rule in defaults if rule["rule_id"] == MASTER_RULE_ID]
        others = [rule for rule in defaults if rule["rule_id"] != MASTER_RULE_ID]
        result[kind] = [*master, *user_rules[kind], *others]
    return result


def find_rule(
    rules: Mapping[str, list[dict[str, Any]]], kind: str, rule_id: str
) -> dict[str, Any]:
    """The rule ``rule_id`` of ``kind`` in a ruleset; ``M_NOT_FOUND`` if there is none."""
    for rule in rules.get(kind, []):
        if rule["rule_id"] == rule_id:
            return rule
    raise MatrixError(Errcode.NOT_FOUND, "The push rule was not found", 404)


# --- validation of what clients send -------------------------------------------------------


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise MatrixError(Errcode.INVALID_PARAM, f"Unknown push rule kind {kind!r}")


def check_new_rule_id(kind: str, rule_id: str) -> None:
    """A rule ID a client may create: not reserved, no slashes, a room/user ID where needed."""
    if not rule_id or is_default_rule_id(rule_id):
        raise MatrixError(Errcode.INVALID_PARAM, "Rule IDs starting with '.' are reserved")
    if "/" in rule_id or "\\" in rule_id:
        raise MatrixError(Errcode.INVALID_PARAM, "Rule IDs may not contain slashes")
    if kind == "room":
        RoomId.parse(rule_id)
    elif kind == "sender":
        UserId.parse(rule_id)


def parse_actions(value: object) -> list[Any]:
    """A list of actions: ``notify`` or ``{"set_tweak": ...}``; historical actions dropped."""
    if not isinstance(value, list):
        raise MatrixError(Errcode.BAD_JSON, "'actions' must be a list")
    actions: list[Any] = []
    for action in value:
        if isinstance(action, str):
            if action in _HISTORICAL_ACTIONS:
                continue
            if action != "notify":
                raise MatrixError(Errcode.BAD_JSON, f"Unknown push rule action {action!r}")
        elif not isinstance(action, dict) or not isinstance(action.get("set_tweak"), str):
            raise MatrixError(Errcode.BAD_JSON, "An action object needs a string 'set_tweak'")
        actions.append(action)
    return actions


def _check_condition(condition: object) -> None:
    if not isinstance(condition, dict) or not isinstance(condition.get("kind"), str):
        raise MatrixError(Errcode.BAD_JSON, "A condition must be an object with a string 'kind'")
    for name, types in _CONDITION_PARAMS.get(condition["kind"], {}).items():
        value = condition.get(name)
        if name not in condition or not isinstance(value, types):
            raise MatrixError(
                Errcode.BAD_JSON, f"Condition {condition['kind']!r} needs a valid {name!r}"
            )
        if isinstance(value, int) and not isinstance(value, bool) and (
            abs(value) > _CANONICAL_INT_LIMIT
        ):
            raise MatrixError(Errcode.BAD_JSON, f"{name!r} is out of the canonical JSON range")


def parse_rule(kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The stored form of a user rule of ``kind`` from a ``PUT`` body."""
    if "actions" not in body:
        raise MatrixError(Errcode.MISSING_PARAM, "Missing 'actions'")
    rule: dict[str, Any] = {"actions": parse_actions(body["actions"])}
    if kind in ("override", "underride"):
        conditions = body.get("conditions", [])
        if not isinstance(conditions, list):
            raise MatrixError(Errcode.BAD_JSON, "'conditions' must be a list")
        for condition in conditions:
            _check_condition(condition)
        rule["conditions"] = conditions
    elif kind == "content":
        pattern = body.get("pattern")
        if pattern is None:
            raise MatrixError(Errcode.MISSING_PARAM, "Content rules need a 'pattern'")
        if not isinstance(pattern, str):
            raise MatrixError(Errcode.BAD_JSON, "'pattern' must be a string")
        rule["pattern"] = pattern
    return rule
