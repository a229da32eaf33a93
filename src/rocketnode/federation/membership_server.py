"""Membership handshakes as the resident (or invited) server: make/send join, leave and knock,
and receiving invites (server-server API "Joining Rooms", "Knocking upon a room", "Inviting to
a room", "Leaving Rooms")."""

from __future__ import annotations

import logging
from typing import Any

from rocketnode.core.errors import AuthError, Errcode, MatrixError, PduFormatError
from rocketnode.core.ids import server_name_of
from rocketnode.core.pdu import Pdu, SignatureVerdict, add_signature
from rocketnode.core.power_levels import NAMED_LEVEL_DEFAULTS, named_power_level, user_power_level
from rocketnode.core.room_versions import RoomVersion, room_version
from rocketnode.federation.event_intake import EventIntake
from rocketnode.federation.keyring import Keyring
from rocketnode.federation.room_state_views import invite_room_state, stripped_from_any
from rocketnode.services.room_state import RoomSnapshot
from rocketnode.services.rooms import RoomService
from rocketnode.storage.ports import RoomStore, StateStore
from rocketnode.storage.records import EventPersist, MembershipChange

logger = logging.getLogger(__name__)

_KINDS = {"join": "join", "leave": "leave", "knock": "knock"}


def _bad(message: str) -> MatrixError:
    return MatrixError(Errcode.BAD_JSON, message, 400)


class MembershipServer:
    def __init__(self, rooms: RoomService, room_store: RoomStore, state: StateStore,
                 intake: EventIntake, keyring: Keyring) -> None:
        self._rooms = rooms
        self._room_store = room_store
        self._state = state
        self._intake = intake
        self._keyring = keyring

    async def _resident_snapshot(self, room_id: str) -> RoomSnapshot:
        snapshot = await self._rooms.states.snapshot(room_id)
        servers = await self._rooms.joined_servers(room_id) if snapshot else set()
        if snapshot is None or self._rooms.server_name not in servers:
            raise MatrixError(Errcode.NOT_FOUND, f"This server is not in {room_id}", 404)
        return snapshot

    # -- make_* ------------------------------------------------------------------------------

    async def make_membership(self, origin: str, kind: str, room_id: str, user_id: str,
                              versions: list[str] | None) -> dict[str, Any]:
        """GET /make_join|make_leave|make_knock: an event template the joining server signs."""
        if server_name_of(user_id) != origin:
            raise MatrixError(Errcode.FORBIDDEN, "The user is not on the requesting server", 403)
        snapshot = await self._resident_snapshot(room_id)
        version = snapshot.room_version
        if versions is not None and version.identifier not in versions:
            raise MatrixError(Errcode.INCOMPATIBLE_ROOM_VERSION,
                              f"The room is version {version.identifier}", 400)
        if kind == "knock" and not version.knock_join_rule:
            raise MatrixError(Errcode.FORBIDDEN, "This room version does not allow knocking", 403)
        content: dict[str, Any] = {"membership": _KINDS[kind]}
        if kind == "join":
            authoriser = await self._authoriser(snapshot, user_id)
            if authoriser is not None:
                content["join_authorised_via_users_server"] = authoriser
        async with self._rooms.room_lock(room_id):
            pdu = await self._rooms.build_event(snapshot, user_id, "m.room.member", content,
                                                user_id, self._origin_field(version, origin))
            try:
                await self._rooms.check_local(pdu, snapshot.state)
            except AuthError as exc:
                raise MatrixError(Errcode.FORBIDDEN, exc.message, 403) from exc
        template = {k: v for k, v in pdu.data.items()
                    if k not in ("hashes", "signatures", "origin_server_ts", "unsigned")}
        template["origin_server_ts"] = pdu.origin_server_ts
        return {"event": template, "room_version": version.identifier}

    @staticmethod
    def _origin_field(version: RoomVersion, origin: str) -> dict[str, Any] | None:
        return None if version.updated_redaction_rules else {"origin": origin}

    async def _authoriser(self, snapshot: RoomSnapshot, user_id: str) -> str | None:
        """For restricted rooms: a local joined user who may invite, to vouch for the join."""
        version = snapshot.room_version
        if not version.restricted_join_rule:
            return None
        rules = await self._rooms.states.state_pdus(snapshot.state, [("m.room.join_rules", "")])
        join_rule = rules.get(("m.room.join_rules", ""))
        if join_rule is None or join_rule.content.get("join_rule") not in (
                "restricted", "knock_restricted"):
            return None
        if await self._rooms.membership(snapshot.room_id, user_id) in ("join", "invite"):
            return None
        state = await self._rooms.current_state_pdus(snapshot.room_id)
        invite_level = named_power_level("invite", state, NAMED_LEVEL_DEFAULTS["invite"])
        for (event_type, member), pdu in sorted(state.items()):
            if event_type == "m.room.member" and pdu.membership == "join" and \
                    self._rooms.is_local(member) and \
                    user_power_level(member, state) >= invite_level:
                return member
        raise MatrixError(Errcode.UNABLE_TO_GRANT_JOIN, "No local user may authorise the join")

    # -- send_* ------------------------------------------------------------------------------

    async def send_membership(self, origin: str, kind: str, room_id: str, event_id: str,
                              body: Any) -> tuple[Pdu, RoomSnapshot]:
        """PUT /send_join|send_leave|send_knock: check, sign if needed, store and relay."""
        snapshot = await self._resident_snapshot(room_id)
        pdu = await self._verified(snapshot.room_version, body, room_id, event_id)
        if pdu.type != "m.room.member" or pdu.state_key != pdu.sender or \
                pdu.membership != _KINDS[kind] or server_name_of(pdu.sender) != origin:
            raise _bad(f"Not a {kind} event of a user of {origin}")
        authoriser = pdu.content.get("join_authorised_via_users_server")
        if kind == "join" and isinstance(authoriser, str) and self._rooms.is_local(authoriser):
            pdu = add_signature(pdu, self._rooms.server_name, self._rooms.signing_key)
        async with self._rooms.room_lock(room_id):
            before_ref, state_before = await self._rooms.state_before(pdu)
            stored = await self._intake.check_and_persist(origin, pdu, before_ref, state_before,
                                                          relay=True)
        if stored.rejected is not None or stored.soft_failed:
            raise MatrixError(Errcode.FORBIDDEN, f"The {kind} is not allowed", 403)
        return pdu, snapshot

    async def _verified(self, version: RoomVersion, body: Any, room_id: str,
                        event_id: str) -> Pdu:
        if not isinstance(body, dict):
            raise _bad("The body must be an event")
        try:
            pdu = Pdu.from_json(version, body)
        except PduFormatError as exc:
            raise _bad(exc.message) from exc
        if pdu.event_id != event_id or pdu.room_id != room_id:
            raise _bad("The event does not match the path")
        verdict = (await self._keyring.verify_pdus([pdu]))[0]
        if verdict is not SignatureVerdict.VALID:
            raise MatrixError(Errcode.FORBIDDEN, "The event is not properly signed", 403)
        return pdu

    async def join_response(self, pdu: Pdu, omit_members: bool) -> dict[str, Any]:
        """The send_join v2 answer: the state before the join and its auth chain."""
        _, state = await self._rooms.states.state_before(pdu.event_id)
        if omit_members:
            state = {k: v for k, v in state.items() if k[0] != "m.room.member"}
        chain_ids = await self._rooms.auth_chain_ids([*state.values(), pdu.event_id])
        events = await self._rooms.states.events([*state.values(), *chain_ids])
        servers = await self._rooms.joined_servers(pdu.room_id)
        return {
            "origin": self._rooms.server_name,
            "state": [_federation_json(events[e].pdu) for e in state.values() if e in events],
            "auth_chain": [_federation_json(events[e].pdu) for e in chain_ids if e in events],
            "event": _federation_json(pdu),
            "members_omitted": omit_members,
            "servers_in_room": sorted(servers),
        }

    async def knock_response(self, pdu: Pdu) -> dict[str, Any]:
        return {"knock_room_state": await invite_room_state(self._rooms, pdu)}

    # -- invites -----------------------------------------------------------------------------

    async def receive_invite(self, origin: str, room_id: str, event_id: str,
                             body: Any) -> dict[str, Any]:
        """PUT /v2/invite: countersign an invite of one of our users and keep it for them."""
        if not isinstance(body, dict) or not isinstance(body.get("event"), dict):
            raise MatrixError(Errcode.INVALID_PARAM, "The body must hold the invite event")
        try:
            version = room_version(body.get("room_version", "1"))
        except MatrixError as exc:
            raise MatrixError(Errcode.INCOMPATIBLE_ROOM_VERSION, exc.message, 400) from exc
        try:
            pdu = await self._verified(version, body["event"], room_id, event_id)
        except MatrixError as exc:
            raise MatrixError(Errcode.INVALID_PARAM, exc.message, 400) from exc
        target = pdu.state_key or ""
        if pdu.type != "m.room.member" or pdu.membership != "invite" or \
                server_name_of(pdu.sender) != origin or not self._rooms.is_local(target):
            raise MatrixError(Errcode.INVALID_PARAM, "Not an invite of a local user from origin")
        signed = add_signature(pdu, self._rooms.server_name, self._rooms.signing_key)
        await self._room_store.store_room(room_id, version.identifier, None,
                                          self._rooms.now_ms())
        data = dict(signed.data)
        data["unsigned"] = {"invite_room_state": stripped_from_any(
            body.get("invite_room_state"))}
        kept = Pdu.from_json(version, data, signed.event_id)
        if await self._rooms.membership(room_id, target) not in ("join", "ban"):
            change = MembershipChange(target, room_id, "invite", kept.event_id)
            await self._rooms.persist_outliers([EventPersist(
                kept, self._rooms.now_ms(), outlier=True, membership_changes=(change,))])
        return {"event": _federation_json(signed)}


def _federation_json(pdu: Pdu) -> dict[str, Any]:
    return {k: v for k, v in pdu.data.items() if k != "unsigned"}
