"""Push rules (client-server API "Push Notifications", "Push Rules: API")."""

from __future__ import annotations

from aiohttp import web

from rocketnode.client_api.auth import Authenticator
from rocketnode.client_api.paths import client_route
from rocketnode.client_api.request import field, json_response, read_json_object
from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.services.push_rules import PushRulesService

_RULE = "/pushrules/global/{kind}/{rule_id}"


class PushRulesApi:
    def __init__(self, auth: Authenticator, push_rules: PushRulesService) -> None:
        self._auth = auth
        self._push_rules = push_rules

    def routes(self) -> list[web.RouteDef]:
        return [
            *client_route("GET", "/pushrules/", self.get_push_rules),
            *client_route("GET", "/pushrules", self.get_push_rules),
            *client_route("GET", "/pushrules/global/", self.get_push_rules_global),
            *client_route("GET", _RULE, self.get_push_rule),
            *client_route("PUT", _RULE, self.set_push_rule),
            *client_route("DELETE", _RULE, self.delete_push_rule),
            *client_route("GET", _RULE + "/enabled", self.is_push_rule_enabled),
            *client_route("PUT", _RULE + "/enabled", self.set_push_rule_enabled),
            *client_route("GET", _RULE + "/actions", self.get_push_rule_actions),
            *client_route("PUT", _RULE + "/actions", self.set_push_rule_actions),
        ]

    async def get_push_rules(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/v3/pushrules/ — "Push Rules: API" (all rulesets)."""
        requester = await self._auth.user(request)
        return json_response(await self._push_rules.ruleset(requester.user_id))

    async def get_push_rules_global(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/v3/pushrules/global/ — "Push Rules: API" (the global ruleset)."""
        requester = await self._auth.user(request)
        return json_response((await self._push_rules.ruleset(requester.user_id))["global"])

    async def get_push_rule(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId} — "Push Rules: API"."""
        requester = await self._auth.user(request)
        kind, rule_id = _rule_path(request)
        return json_response(await self._push_rules.rule(requester.user_id, kind, rule_id))

    async def set_push_rule(self, request: web.Request) -> web.Response:
        """PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId} — "Push Rules: API"."""
        requester = await self._auth.user(request)
        kind, rule_id = _rule_path(request)
        body = await read_json_object(request)
        await self._push_rules.put_rule(
            requester.user_id, kind, rule_id, body,
            before=request.query.get("before") or None, after=request.query.get("after") or None,
        )
        return json_response({})

    async def delete_push_rule(self, request: web.Request) -> web.Response:
        """DELETE /_matrix/client/v3/pushrules/global/{kind}/{ruleId} — "Push Rules: API"."""
        requester = await self._auth.user(request)
        kind, rule_id = _rule_path(request)
        await self._push_rules.delete_rule(requester.user_id, kind, rule_id)
        return json_response({})

    async def is_push_rule_enabled(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled."""
        requester = await self._auth.user(request)
        kind, rule_id = _rule_path(request)
        rule = await self._push_rules.rule(requester.user_id, kind, rule_id)
        return json_response({"enabled": rule["enabled"]})

    async def set_push_rule_enabled(self, request: web.Request) -> web.Response:
        """PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/enabled."""
        requester = await self._auth.user(request)
        kind, rule_id = _rule_path(request)
        body = await read_json_object(request)
        enabled = field(body, "enabled", bool)
        await self._push_rules.set_enabled(requester.user_id, kind, rule_id, enabled)
        return json_response({})

    async def get_push_rule_actions(self, request: web.Request) -> web.Response:
        """GET /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/actions."""
        requester = await self._auth.user(request)
        kind, rule_id = _rule_path(request)
        rule = await self._push_rules.rule(requester.user_id, kind, rule_id)
        return json_response({"actions": rule["actions"]})

    async def set_push_rule_actions(self, request: web.Request) -> web.Response:
        """PUT /_matrix/client/v3/pushrules/global/{kind}/{ruleId}/actions."""
        requester = await self._auth.user(request)
        kind, rule_id = _rule_path(request)
        body = await read_json_object(request)
        if "actions" not in body:
            raise MatrixError(Errcode.MISSING_PARAM, "Missing 'actions'")
        await self._push_rules.set_actions(requester.user_id, kind, rule_id, body["actions"])
        return json_response({})


def _rule_path(request: web.Request) -> tuple[str, str]:
    return request.match_info["kind"], request.match_info["rule_id"]
