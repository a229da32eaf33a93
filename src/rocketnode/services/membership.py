"""Membership changes: join, leave, invite, kick, ban, unban, knock, forget.

Rooms this server participates in are changed locally through the room service. Rooms it is not
in (joining a remote room, rejecting a remote invite, knocking) and invites of remote users go
through a :class:`RemoteMembership` that the federation layer provides; without federation the
node answers those with a clear error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.core.ids import RoomAlias, RoomId, UserId, server_name_of
from rocketnode.core.pdu import Pdu
from rocketnode.services.rooms import RoomService, Txn
from rocketnode.storage.ports import RoomStore, StateStore


class RemoteMembership(Protocol):
    async def join(
        self, user_id: str, room_id: str, servers: Sequence[str], content: dict[str, Any]
    ) -> None: ...
    async def leave(self, user_id: str, room_id: str, servers: Sequence[str],
                    content: dict[str, Any]) -> None: ...
    async def knock(
        self, user_id: str, room_id: str, servers: Sequence[str], content: dict[str, Any]
    ) -> None: ...
    async def invite(self, invite: Pdu) -> Pdu: ...
    async def resolve_alias(self, alias: str) -> tuple[str, list[str]]: ...


class NoFederation:
    """The :class:`RemoteMembership` of a node without federation."""

    async def join(self, user_id: str, room_id: str, servers: Sequence[str],
                   content: dict[str, Any]) -> None:
        raise MatrixError(Errcode.FORBIDDEN, "This server is not in the room", 403)

    async def leave(self, user_id: str, room_id: str, servers: Sequence[str],
                    content: dict[str, Any]) -> None:
        raise MatrixError(Errcode.NOT_FOUND, "This server is not in the room", 404)

    async def knock(self, user_id: str, room_id: str, servers: Sequence[str],
                    content: dict[str, Any]) -> None:
        raise MatrixError(Errcode.FORBIDDEN, "This server is not in the room", 403)

    async def invite(self, invite: Pdu) -> Pdu:
        raise MatrixError(Errcode.FORBIDDEN, "Federation is not enabled on this server", 403)

    async def resolve_alias(self, alias: str) -> tuple[str, list[str]]:
        raise MatrixError(Errcode.NOT_FOUND, f"Room alias {alias} not found", 404)


ProfileFn = Callable[[str], Awaitable[dict[str, Any]]]


class MembershipService:
    def __init__(
        self, rooms: RoomService, room_store: RoomStore, state: StateStore,
        profile: ProfileFn, remote: RemoteMembership,
    ) -> None:
        self._rooms = rooms
        self._room_store = room_store
        self._state = state
        self._profile = profile
        self.remote = remote

    async def resolve_room(
        self, room_id_or_alias: str, via: Sequence[str]
    ) -> tuple[str, list[str]]:
        """A room ID and servers to try, from a room ID or an alias."""
        if room_id_or_alias.startswith("#"):
            alias = RoomAlias.parse(room_id_or_alias)
            if alias.server_name == self._rooms.server_name:
                found = await self._room_store.get_alias(room_id_or_alias)
                if found is None:
                    raise MatrixError(Errcode.NOT_FOUND, f"Room alias {alias} not found", 404)
                return found[0], list(via)
            room_id, servers = await self.remote.resolve_alias(room_id_or_alias)
            return room_id, [*via, *(s for s in servers if s not in via)]
        room = RoomId.parse(room_id_or_alias)
        servers = list(via)
        if room.server_name is not None and room.server_name not in servers:
            servers.append(room.server_name)
        return str(room), servers

    async def server_in_room(self, room_id: str) -> bool:
        return self._rooms.server_name in await self._rooms.joined_servers(room_id)

    async def join(
        self, user_id: str, room_id_or_alias: str, via: Sequence[str] = (),
        reason: str | None = None, txn: Txn | None = None,
    ) -> str:
        room_id, servers = await self.resolve_room(room_id_or_alias, via)
        content = {"membership": "join", **await self._profile(user_id)}
        if reason:
            content["reason"] = reason
        if await self.server_in_room(room_id):
            await self._rooms.send(room_id, user_id, "m.room.member", content, user_id, txn)
            return room_id
        servers.extend(s for s in await self._pending_membership_servers(user_id, room_id)
                       if s not in servers)
        servers = [s for s in servers if s != self._rooms.server_name]
        await self.remote.join(user_id, room_id, servers, content)
        return room_id

    async def _pending_membership_servers(self, user_id: str, room_id: str) -> list[str]:
        """Servers in a room this server is not in, to go through when answering
        ``user_id``'s pending invite or retracting their knock, whatever servers the client
        names (a room ID names no server from room version 12 on): the inviting server, then
        those of the senders of the room state that came with the invite or knock."""
        membership = await self._room_store.local_membership(user_id, room_id)
        if membership is None or membership.membership not in ("invite", "knock"):
            return []
        servers: list[str] = []
        for event in (await self._rooms.states.events([membership.event_id])).values():
            servers.append(event.pdu.origin)
            unsigned = event.pdu.data.get("unsigned")
            for key in ("invite_room_state", "knock_room_state"):
                entries = unsigned.get(key) if isinstance(unsigned, dict) else None
                servers.extend(server_name_of(entry["sender"]) for entry in entries or ()
                               if isinstance(entry, dict) and isinstance(entry.get("sender"), str))
        return [s for s in dict.fromkeys(servers) if s and s != self._rooms.server_name]

    async def leave(self, user_id: str, room_id: str, reason: str | None = None) -> None:
        content: dict[str, Any] = {"membership": "leave"}
        if reason:
            content["reason"] = reason
        if await self.server_in_room(room_id):
            await self._rooms.send(room_id, user_id, "m.room.member", content, user_id)
            return
        membership = await self._room_store.local_membership(user_id, room_id)
        if membership is None or membership.membership not in ("invite", "knock"):
            raise MatrixError(Errcode.NOT_FOUND, "You are not in this room", 404)
        servers = await self._pending_membership_servers(user_id, room_id)
        await self.remote.leave(user_id, room_id, servers, content)

    async def knock(self, user_id: str, room_id_or_alias: str, via: Sequence[str] = (),
                    reason: str | None = None) -> str:
        room_id, servers = await self.resolve_room(room_id_or_alias, via)
        content: dict[str, Any] = {"membership": "knock", **await self._profile(user_id)}
        if reason:
            content["reason"] = reason
        if await self.server_in_room(room_id):
            await self._rooms.send(room_id, user_id, "m.room.member", content, user_id)
            return room_id
        await self.remote.knock(user_id, room_id, servers, content)
        return room_id

    async def invite(
        self, sender: str, room_id: str, target: str, reason: str | None = None,
        is_direct: bool = False,
    ) -> None:
        UserId.parse(target)
        content: dict[str, Any] = {"membership": "invite"}
        if is_direct:
            content["is_direct"] = True
        if reason:
            content["reason"] = reason
        if self._rooms.is_local(target):
            content.update(await self._profile(target))
            await self._rooms.send(room_id, sender, "m.room.member", content, target)
            return
        await self._send_remote_invite(sender, room_id, target, content)

    async def _send_remote_invite(
        self, sender: str, room_id: str, target: str, content: dict[str, Any]
    ) -> None:
        rooms = self._rooms
        async with rooms.room_lock(room_id):
            snapshot = await rooms.states.snapshot(room_id)
            if snapshot is None:
                raise MatrixError(Errcode.NOT_FOUND, f"Unknown room {room_id}", 404)
            pdu = await rooms.build_event(snapshot, sender, "m.room.member", content, target)
            await rooms.check_local(pdu, snapshot.state)
        signed = await self.remote.invite(pdu)
        await rooms.persist_local_signed(signed)

    async def kick(self, sender: str, room_id: str, target: str, reason: str | None) -> None:
        await self._set_membership(sender, room_id, target, "leave", reason)

    async def ban(self, sender: str, room_id: str, target: str, reason: str | None) -> None:
        await self._set_membership(sender, room_id, target, "ban", reason)

    async def unban(self, sender: str, room_id: str, target: str, reason: str | None) -> None:
        if await self._rooms.membership(room_id, target) != "ban":
            raise MatrixError(Errcode.FORBIDDEN, f"{target} is not banned", 403)
        await self._set_membership(sender, room_id, target, "leave", reason)

    async def _set_membership(
        self, sender: str, room_id: str, target: str, membership: str, reason: str | None
    ) -> None:
        UserId.parse(target)
        content: dict[str, Any] = {"membership": membership}
        if reason:
            content["reason"] = reason
        await self._rooms.send(room_id, sender, "m.room.member", content, target)

    async def forget(self, user_id: str, room_id: str) -> None:
        membership = await self._room_store.local_membership(user_id, room_id)
        if membership is None:
            raise MatrixError(Errcode.NOT_FOUND, "You have never been in this room", 404)
        if membership.membership in ("join", "invite", "knock"):
            raise MatrixError(Errcode.UNKNOWN, "You must leave the room before forgetting it", 400)
        await self._room_store.forget(user_id, room_id)
