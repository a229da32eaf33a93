"""The server-server API endpoints: thin handlers over the federation components.

Every ``/_matrix/federation/*`` request must carry a valid X-Matrix signature (``M_UNAUTHORIZED``
otherwise); the key endpoints are public. Any authenticated request also tells the outbound
sender that its origin is reachable again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from rocketnode import __version__
from rocketnode.core.canonical_json import decode_lenient, encode_json
from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.core.ids import RoomAlias, UserId
from rocketnode.federation.client import FederationClient
from rocketnode.federation.inbound import TransactionHandler
from rocketnode.federation.keyring import Keyring
from rocketnode.federation.membership_server import MembershipServer
from rocketnode.federation.serving import RoomServing
from rocketnode.federation.x_matrix import parse_authorization, request_json

FED = "/_matrix/federation"


class FederationQueries(Protocol):
    """What other servers may ask about this server's users, aliases and rooms."""

    async def profile(self, user_id: str, field: str | None) -> dict[str, Any]: ...
    async def directory(self, alias: str) -> dict[str, Any]: ...
    async def public_rooms(self, limit: int | None, since: str | None,
                           search: str | None) -> dict[str, Any]: ...
    async def devices(self, user_id: str) -> dict[str, Any]: ...


class FederationApi:
    def __init__(
        self, server_name: str, keyring: Keyring, client: FederationClient,
        transactions: TransactionHandler, membership: MembershipServer, serving: RoomServing,
        queries: FederationQueries, origin_seen: Callable[[str], Awaitable[None]],
        well_known_server: str = "",
    ) -> None:
        self._server_name = server_name
        self._keyring = keyring
        self._client = client
        self._transactions = transactions
        self._membership = membership
        self._serving = serving
        self._queries = queries
        self._origin_seen = origin_seen
        self._well_known_server = well_known_server

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/.well-known/matrix/server", self.well_known),
            web.get("/_matrix/key/v2/server", self.key_server),
            web.get("/_matrix/key/v2/server/{key_id}", self.key_server),
            web.get("/_matrix/key/v2/query/{server_name}", self.key_query_one),
            web.post("/_matrix/key/v2/query", self.key_query),
            web.get(f"{FED}/v1/version", self.version),
            web.put(f"{FED}/v1/send/{{txn_id}}", self.send_transaction),
            web.get(f"{FED}/v1/make_join/{{room_id}}/{{user_id}}", self.make_join),
            web.put(f"{FED}/v2/send_join/{{room_id}}/{{event_id}}", self.send_join),
            web.put(f"{FED}/v1/send_join/{{room_id}}/{{event_id}}", self.send_join_v1),
            web.get(f"{FED}/v1/make_leave/{{room_id}}/{{user_id}}", self.make_leave),
            web.put(f"{FED}/v2/send_leave/{{room_id}}/{{event_id}}", self.send_leave),
            web.put(f"{FED}/v1/send_leave/{{room_id}}/{{event_id}}", self.send_leave_v1),
            web.get(f"{FED}/v1/make_knock/{{room_id}}/{{user_id}}", self.make_knock),
            web.put(f"{FED}/v1/send_knock/{{room_id}}/{{event_id}}", self.send_knock),
            web.put(f"{FED}/v2/invite/{{room_id}}/{{event_id}}", self.invite),
            web.get(f"{FED}/v1/event/{{event_id}}", self.get_event),
            web.get(f"{FED}/v1/state/{{room_id}}", self.get_state),
            web.get(f"{FED}/v1/state_ids/{{room_id}}", self.get_state_ids),
            web.get(f"{FED}/v1/event_auth/{{room_id}}/{{event_id}}", self.get_event_auth),
            web.get(f"{FED}/v1/backfill/{{room_id}}", self.backfill),
            web.post(f"{FED}/v1/get_missing_events/{{room_id}}", self.get_missing_events),
            web.get(f"{FED}/v1/query/profile", self.query_profile),
            web.get(f"{FED}/v1/query/directory", self.query_directory),
            web.get(f"{FED}/v1/publicRooms", self.public_rooms),
            web.post(f"{FED}/v1/publicRooms", self.public_rooms_post),
            web.get(f"{FED}/v1/user/devices/{{user_id}}", self.user_devices),
        ]

    # -- authentication ----------------------------------------------------------------------

    async def _authenticate(self, request: web.Request) -> tuple[str, Any]:
        """The verified origin of a request, and its decoded JSON body (or None)."""
        header = request.headers.get("Authorization")
        if header is None:
            raise MatrixError(Errcode.UNAUTHORIZED, "Missing X-Matrix authorization", 401)
        auth = parse_authorization(header)
        if auth.destination is not None and auth.destination != self._server_name:
            raise MatrixError(Errcode.UNAUTHORIZED, "Request is for another destination", 401)
        raw = await request.read()
        body = decode_lenient(raw) if raw else None
        signed = request_json(request.method, request.raw_path, auth.origin, self._server_name,
                              body)
        signed["signatures"] = {auth.origin: {auth.key_id: auth.signature}}
        self._client.check_allowed(auth.origin)
        await self._keyring.verify_request_signature(auth.origin, auth.key_id, signed)
        await self._origin_seen(auth.origin)
        return auth.origin, body

    # -- discovery and keys ------------------------------------------------------------------

    async def well_known(self, request: web.Request) -> web.Response:
        """GET /.well-known/matrix/server — "Server discovery"."""
        if not self._well_known_server:
            raise MatrixError(Errcode.NOT_FOUND, "No .well-known configured", 404)
        return json_response({"m.server": self._well_known_server})

    async def key_server(self, request: web.Request) -> web.Response:
        """GET /_matrix/key/v2/server — "Publishing Keys"."""
        return json_response(self._keyring.own_key_response())

    async def key_query_one(self, request: web.Request) -> web.Response:
        """GET /_matrix/key/v2/query/{serverName} — "Querying Keys Through Another Server"."""
        minimum = query_int(request, "minimum_valid_until_ts", 0, maximum=2**62)
        found = await self._keyring.notary_response(request.match_info["server_name"], minimum)
        return json_response({"server_keys": [found] if found else []})

    async def key_query(self, request: web.Request) -> web.Response:
        """POST /_matrix/key/v2/query — "Querying Keys Through Another Server"."""
        body = decode_lenient(await request.read())
        wanted = body.get("server_keys") if isinstance(body, dict) else None
        if not isinstance(wanted, dict):
            raise MatrixError(Errcode.BAD_JSON, "server_keys must be an object")
        answers = []
        for server_name, keys in wanted.items():
            minimum = 0
            if isinstance(keys, dict):
                minimum = max((k.get("minimum_valid_until_ts", 0) for k in keys.values()
                               if isinstance(k, dict) and isinstance(
                                   k.get("minimum_valid_until_ts", 0), int)), default=0)
            found = await self._keyring.notary_response(server_name, minimum)
            if found is not None:
                answers.append(found)
        return json_response({"server_keys": answers})

    async def version(self, request: web.Request) -> web.Response:
        """GET /_matrix/federation/v1/version — "Server implementation"."""
        return json_response({"server": {"name": "RocketNode", "version": __version__}})

    # -- transactions and handshakes ---------------------------------------------------------

    async def send_transaction(self, request: web.Request) -> web.Response:
        """PUT /_matrix/federation/v1/send/{txnId} — "Transactions"."""
        origin, body = await self._authenticate(request)
        result = await self._transactions.on_send(origin, request.match_info["txn_id"], body)
        return json_response(result)

    async def _make(self, request: web.Request, kind: str) -> web.Response:
        origin, _ = await self._authenticate(request)
        versions = request.query.getall("ver", None)
        if kind != "leave" and versions is None:
            versions = ["1"]
        result = await self._membership.make_membership(
            origin, kind, request.match_info["room_id"], request.match_info["user_id"],
            versions)
        return json_response(result)

    async def make_join(self, request: web.Request) -> web.Response:
        """GET /_matrix/federation/v1/make_join/{roomId}/{userId} — "Joining Rooms"."""
        return await self._make(request, "join")

    async def make_leave(self, request: web.Request) -> web.Response:
        """GET /_matrix/federation/v1/make_leave/{roomId}/{userId} — "Leaving Rooms"."""
        return await self._make(request, "leave")

    async def make_knock(self, request: web.Request) -> web.Response:
        """GET /_matrix/federation/v1/make_knock/{roomId}/{userId} — "Knocking upon a room"."""
        return await self._make(request, "knock")

    async def _send_membership(self, request: web.Request, kind: str) -> Any:
        origin, body = await self._authenticate(request)
        pdu, _ = await self._membership.send_membership(
            origin, kind, request.match_info["room_id"], request.match_info["event_id"], body)
        if kind == "join":
            omit = request.query.get("omit_members", "false").lower() == "true"
            return await self._membership.join_response(pdu, omit)
        if kind == "knock":
            return await self._membership.knock_response(pdu)
        return {}

    async def send_join(self, request: web.Request) -> web.Response:
        """PUT /_matrix/federation/v2/send_join/{roomId}/{eventId} — "Joining Rooms"."""
        return json_response(await self._send_membership(request, "join"))

    async def send_join_v1(self, request: web.Request) -> web.Response:
        """PUT /_matrix/federation/v1/send_join/{roomId}/{eventId} — "Joining Rooms" (v1)."""
        return json_response([200, await self._send_membership(request, "join")])

    async def send_leave(self, request: web.Request) -> web.Response:
        """PUT /_matrix/federation/v2/send_leave/{roomId}/{eventId} — "Leaving Rooms"."""
        return json_response(await self._send_membership(request, "leave"))

    async def send_leave_v1(self, request: web.Request) -> web.Response:
        """PUT /_matrix/federation/v1/send_leave/{roomId}/{eventId} — "Leaving Rooms" (v1)."""
        return json_response([200, await self._send_membership(request, "leave")])

    async def send_knock(self, request: web.Request) -> web.Response:
        """PUT /_matrix/federation/v1/send_knock/{roomId}/{eventId} — "Knocking upon a room"."""
        return json_response(await self._send_membership(request, "knock"))

    async def invite(self, request: web.Request) -> web.Response:
        """PUT /_matrix/federation/v2/invite/{roomId}/{eventId} — "Inviting to a room"."""
        origin, body = await self._authenticate(request)
        result = await self._membership.receive_invite(
            origin, request.match_info["room_id"], request.match_info["event_id"], body)
        return json_response(result)

    # -- reading rooms -----------------------------------------------------------------------

    async def get_event(self, request: web.Request) -> web.Response:
        """GET /_matrix/federation/v1/event/{eventId} — "Retrieving events"."""
        origin, _ = await self._authenticate(request)
        return json_response(await self._serving.get_event(origin, request.match_info["event_id"]))

    def _event_id_param(self, request: web.Request) -> str:
        event_id = request.query.get("event_id")
        if not event_id:
            raise MatrixError(Errcode.MISSING_PARAM, "Missing event_id")
        return event_id

    async def get_state(self, request: web.Request) -> web.Response:
        """GET /_matrix/federation/v1/state/{roomId} — "Retrieving events"."""
        origin, _ = await self._authenticate(request)
        return json_response(await self._serving.state(
            origin, request.match_info["room_id"], self._event_id_param(request)))

    async def get_state_ids(self, request: web.Request) -> web.Response:
        """GET /_matrix/federation/v1/state_ids/{roomId} — "Retrieving events"."""
        origin, _ = await self._authenticate(request)
        return json_response(await self._serving.state_ids(
            origin, request.match_info["room_id"], self._event_id_param(request)))

    async def get_event_auth(self, request: web.Request) -> web.Response:
        """GET /_matrix/federation/v1/event_auth/{roomId}/{eventId}."""
        origin, _ = await self._authenticate(request)
        return json_response(await self._serving.event_auth(
            origin, request.match_info["room_id"], request.match_info["event_id"]))

    async def backfill(self, request: web.Request) -> web.Response:
        """GET /_matrix/federation/v1/backfill/{roomId} — "Backfilling"."""
        origin, _ = await self._authenticate(request)
        starts = request.query.getall("v", [])
        if not starts:
            raise MatrixError(Errcode.MISSING_PARAM, "Missing v")
        limit = query_int(request, "limit", 10, minimum=1, maximum=100)
        return json_response(await self._serving.backfill(
            origin, request.match_info["room_id"], starts, limit))

    async def get_missing_events(self, request: web.Request) -> web.Response:
        """POST /_matrix/federation/v1/get_missing_events/{roomId}."""
        origin, body = await self._authenticate(request)
        if not isinstance(body, dict):
            raise MatrixError(Errcode.BAD_JSON, "Body must be an object")
        earliest, latest = body.get("earliest_events", []), body.get("latest_events", [])
        limit, min_depth = body.get("limit", 10), body.get("min_depth", 0)
        if not _str_list(earliest) or not _str_list(latest) or not isinstance(limit, int) \
                or not isinstance(min_depth, int):
            raise MatrixError(Errcode.BAD_JSON, "Malformed get_missing_events request")
        return json_response(await self._serving.missing_events(
            origin, request.match_info["room_id"], earliest, latest, limit, min_depth))

    # -- queries -----------------------------------------------------------------------------

    async def query_profile(self, request: web.Request) -> web.Response:
        """GET /_matrix/federation/v1/query/profile — "Querying for information"."""
        await self._authenticate(request)
        user_id = request.query.get("user_id", "")
        UserId.parse(user_id)
        return json_response(await self._queries.profile(user_id, request.query.get("field")))

    async def query_directory(self, request: web.Request) -> web.Response:
        """GET /_matrix/federation/v1/query/directory — "Querying for information"."""
        await self._authenticate(request)
        alias = request.query.get("room_alias", "")
        RoomAlias.parse(alias)
        return json_response(await self._queries.directory(alias))

    async def public_rooms(self, request: web.Request) -> web.Response:
        """GET /_matrix/federation/v1/publicRooms — "Published Room Directory"."""
        await self._authenticate(request)
        limit = query_int(request, "limit", 0, minimum=0, maximum=500) or None
        return json_response(await self._queries.public_rooms(
            limit, request.query.get("since"), None))

    async def public_rooms_post(self, request: web.Request) -> web.Response:
        """POST /_matrix/federation/v1/publicRooms — "Published Room Directory"."""
        _, raw = await self._authenticate(request)
        body: dict[str, Any] = raw if isinstance(raw, dict) else {}
        limit = body.get("limit") if isinstance(body.get("limit"), int) else None
        since = body.get("since") if isinstance(body.get("since"), str) else None
        search_filter = body.get("filter")
        term = search_filter.get("generic_search_term") if isinstance(search_filter, dict) \
            else None
        return json_response(await self._queries.public_rooms(
            limit, since, term if isinstance(term, str) else None))

    async def user_devices(self, request: web.Request) -> web.Response:
        """GET /_matrix/federation/v1/user/devices/{userId} — "Device Management"."""
        await self._authenticate(request)
        return json_response(await self._queries.devices(request.match_info["user_id"]))


def json_response(body: object) -> web.Response:
    return web.Response(body=encode_json(body), content_type="application/json")


def query_int(request: web.Request, name: str, default: int, minimum: int = 0,
              maximum: int = 2**62) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return max(minimum, min(int(raw), maximum))
    except ValueError as exc:
        raise MatrixError(Errcode.INVALID_PARAM, f"'{name}' must be an integer") from exc


def _str_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)
