"""Push rules through a real node: the spec's default ruleset, user rules and their order,
enabling and re-actioning rules, and the errors of each endpoint."""

from __future__ import annotations

from typing import Any

import nio

from rocketnode.app import Node
from tests.nodes import ClientFactory
from tests.unit.client_api.client_http import call, errcode, path

OVERRIDE = nio.PushRuleKind.override
CONTENT = nio.PushRuleKind.content

# The predefined rules of the spec (v1.16, "Predefined Rules"), in the order it lists them.
SPEC_OVERRIDE_IDS = [
    ".m.rule.master", ".m.rule.suppress_notices", ".m.rule.invite_for_me",
    ".m.rule.member_event", ".m.rule.is_user_mention", ".m.rule.contains_display_name",
    ".m.rule.is_room_mention", ".m.rule.roomnotif", ".m.rule.tombstone", ".m.rule.reaction",
    ".m.rule.room.server_acl", ".m.rule.suppress_edits",
]
SPEC_UNDERRIDE_IDS = [
    ".m.rule.call", ".m.rule.encrypted_room_one_to_one", ".m.rule.room_one_to_one",
    ".m.rule.message", ".m.rule.encrypted",
]


async def ruleset(node: Node, client: nio.AsyncClient) -> dict[str, list[dict[str, Any]]]:
    status, body = await call(node, "GET", "/_matrix/client/v3/pushrules/", client)
    assert status == 200
    assert list(body) == ["global"]
    rules: dict[str, list[dict[str, Any]]] = body["global"]
    return rules


def ids(rules: list[dict[str, Any]]) -> list[str]:
    return [rule["rule_id"] for rule in rules]


async def test_default_ruleset_is_the_spec_list(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    rules = await ruleset(node, alice)
    assert set(rules) == {"override", "content", "room", "sender", "underride"}
    assert ids(rules["override"]) == SPEC_OVERRIDE_IDS
    assert ids(rules["content"]) == [".m.rule.contains_user_name"]
    assert ids(rules["underride"]) == SPEC_UNDERRIDE_IDS
    assert rules["room"] == rules["sender"] == []
    every = [rule for kind in rules.values() for rule in kind]
    assert all(rule["default"] for rule in every)
    assert [rule["rule_id"] for rule in every if not rule["enabled"]] == [".m.rule.master"]
    # The placeholders are filled in for the user.
    assert rules["content"][0]["pattern"] == "alice"
    by_id = {rule["rule_id"]: rule for rule in every}
    assert {"kind": "event_match", "key": "state_key", "pattern": alice.user_id} in by_id[
        ".m.rule.invite_for_me"]["conditions"]
    assert by_id[".m.rule.is_user_mention"]["conditions"] == [
        {"kind": "event_property_contains", "key": "content.m\\.mentions.user_ids",
         "value": alice.user_id}]
    assert by_id[".m.rule.call"]["actions"] == ["notify", {"set_tweak": "sound", "value": "ring"}]
    # nio's model of a ruleset reads it; the only conditions it does not know are the ones
    # newer than nio (spec v1.7).
    parsed = nio.PushRuleset.from_dict(rules)
    assert ids([{"rule_id": rule.id} for rule in parsed.override]) == SPEC_OVERRIDE_IDS
    unknown = {c.condition["kind"] for rule in parsed.override + parsed.underride
               for c in rule.conditions if isinstance(c, nio.PushUnknownCondition)}
    assert unknown == {"event_property_is", "event_property_contains"}
    assert not any(isinstance(a, nio.PushUnknownAction)
                   for rule in parsed.override + parsed.underride for a in rule.actions)

    status, global_only = await call(node, "GET", "/_matrix/client/v3/pushrules/global/", alice)
    assert (status, global_only) == (200, rules)


async def test_get_one_rule(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    status, rule = await call(node, "GET", path("pushrules", "global", "override",
                                                ".m.rule.suppress_notices"), alice)
    assert status == 200
    assert rule == {
        "rule_id": ".m.rule.suppress_notices", "default": True, "enabled": True,
        "conditions": [{"kind": "event_match", "key": "content.msgtype", "pattern": "m.notice"}],
        "actions": [],
    }
    assert await errcode(node, "GET", path("pushrules", "global", "override", "nope"),
                         alice) == (404, "M_NOT_FOUND")
    assert await errcode(node, "GET", path("pushrules", "global", "content",
                                           ".m.rule.master"), alice) == (404, "M_NOT_FOUND")
    assert await errcode(node, "GET", path("pushrules", "global", "sideways", "x"),
                         alice) == (400, "M_INVALID_PARAM")
    assert await errcode(node, "GET", "/_matrix/client/v3/pushrules/") == (
        401, "M_MISSING_TOKEN")


async def test_user_rules_and_their_order(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    bob = await make_client(node, "bob")
    conditions = [nio.PushEventMatch("content.body", "beer")]
    for rule_id in ("a", "b"):  # no position given: each new rule goes first
        answer = await alice.set_pushrule("global", OVERRIDE, rule_id,
                                          actions=[nio.PushNotify()], conditions=conditions)
        assert isinstance(answer, nio.SetPushRuleResponse), answer
    assert isinstance(await alice.set_pushrule("global", OVERRIDE, "c", after="a",
                                               actions=[]), nio.SetPushRuleResponse)
    assert isinstance(await alice.set_pushrule("global", OVERRIDE, "d", before="b",
                                               actions=[]), nio.SetPushRuleResponse)
    rules = await ruleset(node, alice)
    assert ids(rules["override"]) == [
        ".m.rule.master", "d", "b", "a", "c", *SPEC_OVERRIDE_IDS[1:]]
    assert rules["override"][3] == {
        "rule_id": "a", "default": False, "enabled": True, "actions": ["notify"],
        "conditions": [{"kind": "event_match", "key": "content.body", "pattern": "beer"}],
    }
    # Replacing a rule keeps its place unless it is moved.
    assert isinstance(await alice.set_pushrule("global", OVERRIDE, "b", actions=[]),
                      nio.SetPushRuleResponse)
    assert isinstance(await alice.set_pushrule("global", OVERRIDE, "d", after="c", actions=[]),
                      nio.SetPushRuleResponse)
    assert ids((await ruleset(node, alice))["override"])[1:5] == ["b", "a", "c", "d"]

    assert isinstance(await alice.set_pushrule("global", CONTENT, "cake", pattern="cake*lie",
                                               actions=[nio.PushNotify()]),
                      nio.SetPushRuleResponse)
    room_rule = path("pushrules", "global", "room", "!somewhere:example.org")
    status, _ = await call(node, "PUT", room_rule, alice, {"actions": ["dont_notify"]})
    assert status == 200
    rules = await ruleset(node, alice)
    assert rules["content"][0] == {"rule_id": "cake", "default": False, "enabled": True,
                                   "pattern": "cake*lie", "actions": ["notify"]}
    assert rules["room"] == [{"rule_id": "!somewhere:example.org", "default": False,
                              "enabled": True, "actions": []}]
    # Rules are per user.
    assert ids((await ruleset(node, bob))["override"]) == SPEC_OVERRIDE_IDS


async def test_malformed_rules_are_refused(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    override = path("pushrules", "global", "override", "mine")
    cases = [
        (path("pushrules", "global", "override", ".m.rule.mine"), {"actions": []}, None, None,
         "M_INVALID_PARAM"),
        (path("pushrules", "global", "override", ".m.rule.message"), {"actions": []}, None,
         None, "M_INVALID_PARAM"),
        (path("pushrules", "global", "override", "a\\b"), {"actions": []}, None, None,
         "M_INVALID_PARAM"),
        (path("pushrules", "global", "room", "not-a-room"), {"actions": []}, None, None,
         "M_INVALID_PARAM"),
        (path("pushrules", "global", "sender", "not-a-user"), {"actions": []}, None, None,
         "M_INVALID_PARAM"),
        (override, {}, None, None, "M_MISSING_PARAM"),
        (override, {"actions": "notify"}, None, None, "M_BAD_JSON"),
        (override, {"actions": ["explode"]}, None, None, "M_BAD_JSON"),
        (override, {"actions": [{"value": 1}]}, None, None, "M_BAD_JSON"),
        (override, {"actions": [], "conditions": [{"key": "type"}]}, None, None, "M_BAD_JSON"),
        (override, {"actions": [], "conditions": [{"kind": "event_match", "key": "type"}]},
         None, None, "M_BAD_JSON"),
        (override, None, b"actions", None, "M_NOT_JSON"),
        (path("pushrules", "global", "content", "nopattern"), {"actions": []}, None, None,
         "M_MISSING_PARAM"),
        (override, {"actions": []}, None, {"before": "missing"}, "M_UNKNOWN"),
        (override, {"actions": []}, None, {"after": ".m.rule.message"}, "M_UNKNOWN"),
    ]
    for url_path, body, raw, params, expected in cases:
        assert await errcode(node, "PUT", url_path, alice, body, raw, params) == (
            400, expected), (url_path, body, params)
    rules = await ruleset(node, alice)
    assert all(rule["default"] for kind in rules.values() for rule in kind)


async def test_enable_and_set_actions(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    enabled = await alice.enable_pushrule("global", OVERRIDE, ".m.rule.master", True)
    assert isinstance(enabled, nio.EnablePushRuleResponse), enabled
    master = path("pushrules", "global", "override", ".m.rule.master")
    assert (await call(node, "GET", master + "/enabled", alice)) == (200, {"enabled": True})

    message = path("pushrules", "global", "underride", ".m.rule.message")
    tweaks = [nio.PushNotify(), nio.PushSetTweak("sound", "bing")]
    changed = await alice.set_pushrule_actions("global", nio.PushRuleKind.underride,
                                               ".m.rule.message", tweaks)
    assert isinstance(changed, nio.SetPushRuleActionsResponse), changed
    expected = ["notify", {"set_tweak": "sound", "value": "bing"}]
    assert (await call(node, "GET", message + "/actions", alice)) == (200, {"actions": expected})
    # Changing the actions kept the rule enabled and its conditions; and vice versa.
    status, _ = await call(node, "PUT", message + "/enabled", alice, {"enabled": False})
    assert status == 200
    status, rule = await call(node, "GET", message, alice)
    assert (status, rule["enabled"], rule["actions"]) == (200, False, expected)
    assert rule["conditions"] == [{"kind": "event_match", "key": "type",
                                   "pattern": "m.room.message"}]

    assert isinstance(await alice.set_pushrule("global", OVERRIDE, "mine", actions=[],
                                               conditions=[nio.PushContainsDisplayName()]),
                      nio.SetPushRuleResponse)
    mine = path("pushrules", "global", "override", "mine")
    status, _ = await call(node, "PUT", mine + "/actions", alice, {"actions": ["notify"]})
    assert status == 200
    status, rule = await call(node, "GET", mine, alice)
    assert (status, rule["actions"]) == (200, ["notify"])
    assert rule["conditions"] == [{"kind": "contains_display_name"}]

    assert await errcode(node, "PUT", message + "/enabled", alice, {"enabled": "no"}) == (
        400, "M_BAD_JSON")
    assert await errcode(node, "PUT", message + "/enabled", alice, {}) == (
        400, "M_MISSING_PARAM")
    assert await errcode(node, "PUT", message + "/actions", alice, {"actions": ["boom"]}) == (
        400, "M_BAD_JSON")
    missing = path("pushrules", "global", "override", "missing")
    assert await errcode(node, "PUT", missing + "/enabled", alice, {"enabled": True}) == (
        404, "M_NOT_FOUND")
    assert await errcode(node, "GET", missing + "/actions", alice) == (404, "M_NOT_FOUND")


async def test_delete(node: Node, make_client: ClientFactory) -> None:
    alice = await make_client(node, "alice")
    assert isinstance(await alice.set_pushrule("global", OVERRIDE, "temp", actions=[]),
                      nio.SetPushRuleResponse)
    deleted = await alice.delete_pushrule("global", OVERRIDE, "temp")
    assert isinstance(deleted, nio.DeletePushRuleResponse), deleted
    assert await errcode(node, "GET", path("pushrules", "global", "override", "temp"),
                         alice) == (404, "M_NOT_FOUND")
    assert await errcode(node, "DELETE", path("pushrules", "global", "override", "temp"),
                         alice) == (404, "M_NOT_FOUND")
    assert await errcode(node, "DELETE", path("pushrules", "global", "override",
                                              ".m.rule.master"), alice) == (
        400, "M_INVALID_PARAM")
    assert ids((await ruleset(node, alice))["override"]) == SPEC_OVERRIDE_IDS


async def test_changes_reach_account_data_for_sync(
    node: Node, make_client: ClientFactory
) -> None:
    alice = await make_client(node, "alice")
    client_data = node.services.stores.client_data
    assert await client_data.get_account_data(alice.user_id, "", "m.push_rules") is None
    before = node.services.notifier.position
    assert isinstance(await alice.enable_pushrule("global", OVERRIDE, ".m.rule.master", True),
                      nio.EnablePushRuleResponse)
    stored = await client_data.get_account_data(alice.user_id, "", "m.push_rules")
    assert stored == {"global": await ruleset(node, alice)}
    assert stored["global"]["override"][0]["enabled"] is True
    assert node.services.notifier.position > before
