"""A user's push rules: reading the full ruleset, adding, moving, changing and deleting rules
(client-server API "Push Rules: API").

Rules are stored per user as rows of the client data store (see
:mod:`rocketnode.core.push_rules` for what a row means); the server-default rules are never
stored, only a user's changes to their ``actions`` or ``enabled`` flag.

After every change the full ruleset is written as the user's global ``m.push_rules`` account
data (spec "Push Rules: Events": clients receive it in the ``account_data`` of their next
``/sync``) and the user's waiting ``/sync`` requests are woken. A user who never changed a rule
has no such account data: ``/sync`` takes the ruleset from :meth:`PushRulesService.ruleset`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from rocketnode.core import push_rules
from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.core.push_rules import StoredRule
from rocketnode.services.notifier import Notifier
from rocketnode.storage.ports import ClientDataStore

SCOPE = "global"
PUSH_RULES_ACCOUNT_DATA = "m.push_rules"


class PushRulesService:
    def __init__(self, client_data: ClientDataStore, notifier: Notifier) -> None:
        self._client_data = client_data
        self._notifier = notifier
        self._write_lock = asyncio.Lock()
        """Serialises changes, so a rule's new position is computed from the current order."""

    async def ruleset(self, user_id: str) -> dict[str, Any]:
        """``{"global": ruleset}``: the body of ``GET /pushrules/`` and of ``m.push_rules``."""
        return {SCOPE: await self._global(user_id)}

    async def _global(self, user_id: str) -> dict[str, list[dict[str, Any]]]:
        rows = await self._client_data.get_push_rule_overrides(user_id)
        return push_rules.ruleset(
            user_id,
            (StoredRule(kind, rule_id, rule, enabled)
             for scope, kind, rule_id, rule, enabled in rows if scope == SCOPE),
        )

    async def rule(self, user_id: str, kind: str, rule_id: str) -> dict[str, Any]:
        """One rule as ``GET /pushrules/global/{kind}/{ruleId}`` shows it."""
        push_rules.check_kind(kind)
        return push_rules.find_rule(await self._global(user_id), kind, rule_id)

    async def put_rule(
        self, user_id: str, kind: str, rule_id: str, body: Mapping[str, Any],
        before: str | None = None, after: str | None = None,
    ) -> None:
        """Create or replace a user-defined rule, placed next to ``before`` or ``after``."""
        push_rules.check_kind(kind)
        push_rules.check_new_rule_id(kind, rule_id)
        rule = push_rules.parse_rule(kind, body)
        async with self._write_lock:
            current = [
                r["rule_id"] for r in (await self._global(user_id))[kind]
                if not r["default"]
            ]
            order = _placed(current, rule_id, before, after)
            await self._client_data.put_user_push_rule(
                user_id, SCOPE, kind, rule_id, rule, order
            )
            await self._changed(user_id)

    async def delete_rule(self, user_id: str, kind: str, rule_id: str) -> None:
        push_rules.check_kind(kind)
        if push_rules.default_rule(kind, rule_id) is not None:
            raise MatrixError(Errcode.INVALID_PARAM, "Server-default rules cannot be deleted")
        async with self._write_lock:
            if push_rules.is_default_rule_id(rule_id) or not await (
                self._client_data.delete_push_rule(user_id, SCOPE, kind, rule_id)
            ):
                raise MatrixError(Errcode.NOT_FOUND, "The push rule was not found", 404)
            await self._changed(user_id)

    async def set_enabled(self, user_id: str, kind: str, rule_id: str, enabled: bool) -> None:
        async with self._write_lock:
            await self.rule(user_id, kind, rule_id)
            await self._client_data.put_push_rule(user_id, SCOPE, kind, rule_id, None, enabled)
            await self._changed(user_id)

    async def set_actions(self, user_id: str, kind: str, rule_id: str, actions: object) -> None:
        parsed = push_rules.parse_actions(actions)
        async with self._write_lock:
            current = await self.rule(user_id, kind, rule_id)
            if current["default"]:
                stored: dict[str, Any] = {"actions": parsed}
            else:
                stored = {k: v for k, v in current.items()
                          if k in ("conditions", "pattern")}
                stored["actions"] = parsed
            await self._client_data.put_push_rule(user_id, SCOPE, kind, rule_id, stored, None)
            await self._changed(user_id)

    async def _changed(self, user_id: str) -> None:
        position = await self._client_data.put_account_data(
            user_id, "", PUSH_RULES_ACCOUNT_DATA, await self.ruleset(user_id)
        )
        self._notifier.notify(position, user_ids=[user_id])


def _placed(current: list[str], rule_id: str, before: str | None, after: str | None) -> list[str]:
    """The user rules of a kind, most important first, once ``rule_id`` is (re)placed.

    ``before`` wins when both are given (spec: the rule becomes the next most important with
    respect to ``before``). With neither, a new rule goes first and an existing one stays.
    """
    anchor = before if before is not None else after
    if anchor is None:
        return current if rule_id in current else [rule_id, *current]
    if push_rules.is_default_rule_id(anchor):
        raise MatrixError(
            Errcode.UNKNOWN, "A rule cannot be placed relative to a server-default rule"
        )
    others = [other for other in current if other != rule_id]
    if anchor not in others:
        raise MatrixError(Errcode.UNKNOWN, f"before/after rule not found: {anchor}")
    index = others.index(anchor) + (0 if before is not None else 1)
    return [*others[:index], rule_id, *others[index:]]
