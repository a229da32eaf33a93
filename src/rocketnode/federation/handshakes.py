"""Membership handshakes as the joining side: join, leave (reject an invite), knock, invite a
remote user, resolve a remote alias (server-server API "Joining Rooms", "Knocking upon a room",
"Inviting to a room", "Leaving Rooms"). Implements ``services.membership.RemoteMembership``.

Joins, leaves and knocks try each candidate server in turn until one succeeds.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from rocketnode.core.errors import Errcode, MatrixError, RemoteServerError, SignatureError
from rocketnode.core.ids import server_name_of
from rocketnode.core.pdu import Pdu, SignatureVerdict, hash_and_sign
from rocketnode.core.redaction import redact
from rocketnode.core.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion, room_version
from rocketnode.core.signing import key_ids_signed_by, verify_json
from rocketnode.federation.client import FederationClient, path_segment
from rocketnode.federation.event_intake import EventIntake
from rocketnode.federation.keyring import Keyring
from rocketnode.federation.room_state_views import invite_room_state
from rocketnode.services.rooms import RoomService
from rocketnode.storage.ports import RoomStore
from rocketnode.storage.records import EventPersist, MembershipChange, NewStateGroup

logger = logging.getLogger(__name__)

T = TypeVar("T")
_TEMPLATE_KEYS = ("room_id", "type", "sender", "state_key", "content", "depth", "prev_events",
                  "auth_events", "origin")
_SUPPORTED = {"ver": list(KNOWN_ROOM_VERSIONS)}


def remote_error(exc: RemoteServerError) -> MatrixError:
    """What a client sees when the remote server said no."""
    if exc.remote_errcode and exc.remote_status and 400 <= exc.remote_status < 500:
        try:
            errcode = Errcode(exc.remote_errcode)
        except ValueError:
            errcode = Errcode.UNKNOWN
        return MatrixError(errcode, exc.message, exc.remote_status)
    return exc


class Handshakes:
    def __init__(self, rooms: RoomService, room_store: RoomStore, intake: EventIntake,
                 client: FederationClient, keyring: Keyring) -> None:
        self._rooms = rooms
        self._room_store = room_store
        self._intake = intake
        self._client = client
        self._keyring = keyring

    async def _try_servers(self, servers: Sequence[str], what: str,
                           attempt: Callable[[str], Awaitable[T]]) -> T:
        candidates = [s for s in dict.fromkeys(servers) if s != self._rooms.server_name]
        if not candidates:
            raise MatrixError(Errcode.NOT_FOUND, f"No server to {what} through", 404)
        last: MatrixError | None = None
        for server in candidates:
            try:
                return await attempt(server)
            except RemoteServerError as exc:
                logger.info("%s via %s failed: %s", what, server, exc)
                last = remote_error(exc)
            except (MatrixError, SignatureError) as exc:
                logger.info("%s via %s failed: %s", what, server, exc)
                last = exc
        assert last is not None
        raise last

    async def _template(self, server: str, kind: str, room_id: str, user_id: str,
                        membership: str) -> tuple[RoomVersion, dict[str, Any]]:
        path = f"/_matrix/federation/v1/make_{kind}/{path_segment(room_id)}/{path_segment(user_id)}"
        query = dict(_SUPPORTED) if kind != "leave" else None
        answer = await self._client.get(server, path, query)
        if not isinstance(answer, dict) or not isinstance(answer.get("event"), dict):
            raise RemoteServerError(server, f"invalid make_{kind} answer")
        version = room_version(answer.get("room_version", "1"))
        template = answer["event"]
        expected = {"type": "m.room.member", "room_id": room_id, "sender": user_id,
                    "state_key": user_id}
        for key, value in expected.items():
            if template.get(key) != value:
                raise RemoteServerError(server, f"make_{kind} template has a wrong {key}")
        if not isinstance(template.get("content"), dict) or \
                template["content"].get("membership") != membership:
            raise RemoteServerError(server, f"make_{kind} template has a wrong membership")
        return version, template

    def _sign(self, version: RoomVersion, template: dict[str, Any],
              content: dict[str, Any]) -> Pdu:
        data = {k: template[k] for k in _TEMPLATE_KEYS if k in template}
        data["content"] = {**template["content"], **content}
        data["origin_server_ts"] = self._rooms.now_ms()
        if version.updated_redaction_rules:
            data.pop("origin", None)
        else:
            data["origin"] = self._rooms.server_name
        return hash_and_sign(version, data, self._rooms.server_name, self._rooms.signing_key)

    # -- join --------------------------------------------------------------------------------

    async def join(self, user_id: str, room_id: str, servers: Sequence[str],
                   content: dict[str, Any]) -> None:
        async def attempt(server: str) -> None:
            version, template = await self._template(server, "join", room_id, user_id, "join")
            pdu = self._sign(version, template, content)
            path = (f"/_matrix/federation/v2/send_join/{path_segment(room_id)}/"
                    f"{path_segment(pdu.event_id)}")
            answer = await self._client.put(server, path, pdu.data, timeout_s=300)
            await self._complete_join(server, version, pdu, answer)

        await self._try_servers(servers, "join", attempt)

    async def _complete_join(self, server: str, version: RoomVersion, pdu: Pdu,
                             answer: Any) -> None:
        if not isinstance(answer, dict):
            raise RemoteServerError(server, "invalid send_join answer")
        raw_state, raw_chain = answer.get("state"), answer.get("auth_chain")
        if not isinstance(raw_state, list) or not isinstance(raw_chain, list):
            raise RemoteServerError(server, "send_join answer lacks state or auth_chain")
        signed = answer.get("event")
        if isinstance(signed, dict):
            pdu = await self._cosigned(server, version, pdu, signed)
        await self._room_store.store_room(pdu.room_id, version.identifier, None,
                                          self._rooms.now_ms())
        parsed = await self._intake.parse_verified(version, [*raw_chain, *raw_state])
        pdus = [p for p in parsed if isinstance(p, Pdu) and p.room_id == pdu.room_id]
        stored = await self._intake.store_outliers(server, pdus)
        state_ids = {p.event_id for p in parsed[len(raw_chain):] if isinstance(p, Pdu)}
        state = {e.pdu.state_tuple: i for i, e in stored.items()
                 if i in state_ids and e.pdu.is_state and e.rejected is None}
        async with self._rooms.room_lock(pdu.room_id):
            event = await self._intake.check_and_persist(
                server, pdu, NewStateGroup(None, state), state, destinations=set(),
                own_join=True)
        if event.rejected is not None:
            raise MatrixError(Errcode.FORBIDDEN, f"Join rejected: {event.rejected}", 403)

    async def _cosigned(self, server: str, version: RoomVersion, ours: Pdu,
                        signed: dict[str, Any]) -> Pdu:
        """The join as countersigned by the resident server (restricted rooms)."""
        pdu = Pdu.from_json(version, signed)
        if pdu.event_id != ours.event_id:
            raise RemoteServerError(server, "send_join returned a different event")
        verdicts = await self._keyring.verify_pdus([pdu])
        if verdicts[0] is not SignatureVerdict.VALID:
            raise RemoteServerError(server, "send_join returned a badly signed event")
        return pdu

    # -- leave and knock ---------------------------------------------------------------------

    async def leave(self, user_id: str, room_id: str, servers: Sequence[str],
                    content: dict[str, Any]) -> None:
        async def attempt(server: str) -> None:
            version, template = await self._template(server, "leave", room_id, user_id, "leave")
            pdu = self._sign(version, template, content)
            path = (f"/_matrix/federation/v2/send_leave/{path_segment(room_id)}/"
                    f"{path_segment(pdu.event_id)}")
            await self._client.put(server, path, pdu.data)
            await self._store_own_outlier(pdu, "leave")

        await self._try_servers(servers, "leave", attempt)

    async def knock(self, user_id: str, room_id: str, servers: Sequence[str],
                    content: dict[str, Any]) -> None:
        async def attempt(server: str) -> None:
            version, template = await self._template(server, "knock", room_id, user_id, "knock")
            pdu = self._sign(version, template, content)
            path = (f"/_matrix/federation/v1/send_knock/{path_segment(room_id)}/"
                    f"{path_segment(pdu.event_id)}")
            answer = await self._client.put(server, path, pdu.data)
            state = answer.get("knock_room_state") if isinstance(answer, dict) else None
            await self._room_store.store_room(room_id, version.identifier, None,
                                              self._rooms.now_ms())
            data = dict(pdu.data)
            if isinstance(state, list):
                data["unsigned"] = {"knock_room_state": state}
            await self._store_own_outlier(Pdu.from_json(version, data, pdu.event_id), "knock")

        await self._try_servers(servers, "knock", attempt)

    async def _store_own_outlier(self, pdu: Pdu, membership: str) -> None:
        change = MembershipChange(pdu.sender, pdu.room_id, membership, pdu.event_id)
        await self._rooms.persist_outliers([EventPersist(
            pdu, self._rooms.now_ms(), outlier=True, membership_changes=(change,))])

    # -- invite and alias --------------------------------------------------------------------

    async def invite(self, invite: Pdu) -> Pdu:
        """Have the invitee's server countersign an invite of one of its users."""
        target = invite.state_key or ""
        destination = server_name_of(target)
        stripped = await invite_room_state(self._rooms, invite)
        body = {"room_version": invite.room_version.identifier, "event": invite.data,
                "invite_room_state": stripped}
        path = (f"/_matrix/federation/v2/invite/{path_segment(invite.room_id)}/"
                f"{path_segment(invite.event_id)}")
        try:
            answer = await self._client.put(destination, path, body)
        except RemoteServerError as exc:
            raise remote_error(exc) from exc
        signed = answer.get("event") if isinstance(answer, dict) else None
        if not isinstance(signed, dict):
            raise RemoteServerError(destination, "invalid invite answer")
        pdu = Pdu.from_json(invite.room_version, signed)
        if pdu.event_id != invite.event_id:
            raise RemoteServerError(destination, "invite answer is a different event")
        verdict = (await self._keyring.verify_pdus([pdu]))[0]
        if verdict is not SignatureVerdict.VALID:
            raise RemoteServerError(destination, "invite answer is not properly signed")
        try:
            await self._check_signed_by(pdu, destination)
        except SignatureError as exc:
            raise RemoteServerError(destination, str(exc)) from exc
        return pdu

    async def _check_signed_by(self, pdu: Pdu, server_name: str) -> None:
        redacted = redact(pdu.room_version, pdu.data)
        key_ids = key_ids_signed_by(redacted, server_name)
        await self._keyring.ensure_keys((server_name, k) for k in key_ids)
        for key_id in key_ids:
            found = self._keyring.lookup(server_name, key_id)
            if found is not None:
                verify_json(redacted, server_name, found[0])
                return
        raise SignatureError(f"The invite is not signed by {server_name}")

    async def resolve_alias(self, alias: str) -> tuple[str, list[str]]:
        server = server_name_of(alias)
        try:
            answer = await self._client.get(server, "/_matrix/federation/v1/query/directory",
                                            {"room_alias": alias})
        except RemoteServerError as exc:
            if exc.remote_status is not None and 400 <= exc.remote_status < 500:
                raise remote_error(exc) from exc
            raise MatrixError(Errcode.NOT_FOUND,
                              f"Room alias {alias} not found: {server} did not answer",
                              404) from exc
        except MatrixError as exc:
            raise MatrixError(Errcode.NOT_FOUND, f"Room alias {alias} not found: {exc.message}",
                              404) from exc
        room_id = answer.get("room_id") if isinstance(answer, dict) else None
        servers = answer.get("servers") if isinstance(answer, dict) else None
        if not isinstance(room_id, str):
            raise MatrixError(Errcode.NOT_FOUND, f"Room alias {alias} not found", 404)
        listed = [s for s in servers if isinstance(s, str)] if isinstance(servers, list) else []
        return room_id, [server, *(s for s in listed if s != server)]
