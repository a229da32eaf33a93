"""Queries between servers (server-server API "Querying for information", "Published Room
Directory", "Device Management"): answering other servers, and asking them."""

from __future__ import annotations

from typing import Any

from rocketnode.core.errors import Errcode, MatrixError, RemoteServerError
from rocketnode.core.ids import server_name_of
from rocketnode.federation.client import FederationClient, path_segment
from rocketnode.federation.handshakes import remote_error
from rocketnode.services.profile import ProfileService
from rocketnode.services.public_rooms import PublicRoomsQuery, PublicRoomsService
from rocketnode.services.rooms import RoomService
from rocketnode.storage.ports import AccountStore, RoomStore, StateStore


class LocalQueries:
    """Answers to other servers about this server's users, aliases and rooms."""

    def __init__(self, rooms: RoomService, room_store: RoomStore, state: StateStore,
                 accounts: AccountStore, profiles: ProfileService,
                 public_rooms: PublicRoomsService) -> None:
        self._rooms = rooms
        self._room_store = room_store
        self._state = state
        self._accounts = accounts
        self._profiles = profiles
        self._public_rooms = public_rooms

    def _require_local(self, user_id: str) -> None:
        if not self._rooms.is_local(user_id):
            raise MatrixError(Errcode.INVALID_PARAM, "The user is not on this server")

    async def profile(self, user_id: str, field: str | None) -> dict[str, Any]:
        """GET /query/profile: ``M_NOT_FOUND`` only for an unknown user; a field the user has
        not set is left out of a 200 answer ("Query profile": exclude it or give null)."""
        self._require_local(user_id)
        profile = await self._profiles.profile(user_id)
        if field is None:
            return profile
        return {field: profile[field]} if field in profile else {}

    async def directory(self, alias: str) -> dict[str, Any]:
        if server_name_of(alias) != self._rooms.server_name:
            raise MatrixError(Errcode.INVALID_PARAM, "The alias is not on this server")
        found = await self._room_store.get_alias(alias)
        if found is None:
            raise MatrixError(Errcode.NOT_FOUND, f"Room alias {alias} not found", 404)
        servers = await self._rooms.joined_servers(found[0])
        ordered = [self._rooms.server_name, *sorted(servers - {self._rooms.server_name})]
        return {"room_id": found[0], "servers": ordered}

    async def public_rooms(self, limit: int | None, since: str | None,
                           search: str | None) -> dict[str, Any]:
        return await self._public_rooms.list_rooms(
            None, PublicRoomsQuery(limit=limit, since=since, search_term=search))

    async def devices(self, user_id: str) -> dict[str, Any]:
        self._require_local(user_id)
        devices = await self._accounts.get_devices(user_id)
        return {
            "user_id": user_id,
            "stream_id": 0,
            "devices": [
                {"device_id": d.device_id, "keys": {},
                 **({"device_display_name": d.display_name} if d.display_name else {})}
                for d in devices
            ],
        }


def _as_not_found(exc: MatrixError, what: str) -> MatrixError:
    """A remote refusal passes through; an unreachable or refused destination is "not found"."""
    if isinstance(exc, RemoteServerError) and exc.remote_status is not None \
            and 400 <= exc.remote_status < 500:
        return remote_error(exc)
    return MatrixError(Errcode.NOT_FOUND, f"{what} not found: {exc.message}", 404)


class RemoteQueries:
    """Asking other servers (implements the services' remote profile and directory hooks)."""

    def __init__(self, client: FederationClient) -> None:
        self._client = client

    async def query(self, user_id: str, field: str | None) -> dict[str, Any]:
        query = {"user_id": user_id}
        if field is not None:
            query["field"] = field
        try:
            answer = await self._client.get(server_name_of(user_id),
                                            "/_matrix/federation/v1/query/profile", query)
        except MatrixError as exc:
            raise _as_not_found(exc, "Profile") from exc
        if not isinstance(answer, dict):
            raise MatrixError(Errcode.NOT_FOUND, "Profile not found", 404)
        return answer

    async def public_rooms(self, server_name: str, query: PublicRoomsQuery) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if query.limit is not None:
            body["limit"] = query.limit
        if query.since is not None:
            body["since"] = query.since
        if query.search_term is not None:
            body["filter"] = {"generic_search_term": query.search_term}
        try:
            answer = await self._client.post(server_name, "/_matrix/federation/v1/publicRooms",
                                             body)
        except MatrixError as exc:
            raise _as_not_found(exc, f"The room directory of {server_name}") from exc
        if not isinstance(answer, dict) or not isinstance(answer.get("chunk"), list):
            raise RemoteServerError(server_name, "invalid publicRooms answer")
        return answer

    async def devices(self, user_id: str) -> dict[str, Any]:
        path = f"/_matrix/federation/v1/user/devices/{path_segment(user_id)}"
        answer = await self._client.get(server_name_of(user_id), path)
        return answer if isinstance(answer, dict) else {}
