"""Creating a room: the create event, the creator's join, power levels, presets, initial state,
name, topic, alias and invites, in the order the client-server spec gives ("Creation")."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rocketnode.core.errors import AuthError, Errcode, MatrixError
from rocketnode.core.ids import RoomAlias, UserId
from rocketnode.core.room_versions import DEFAULT_ROOM_VERSION, RoomVersion
from rocketnode.services.rooms import EventSpec, RoomService

PRESETS = ("private_chat", "trusted_private_chat", "public_chat")


@dataclass(frozen=True, slots=True)
class CreateRoomRequest:
    creator: str
    room_version: RoomVersion = DEFAULT_ROOM_VERSION
    preset: str | None = None
    visibility: str = "private"
    name: str | None = None
    topic: str | None = None
    invite: Sequence[str] = ()
    initial_state: Sequence[dict[str, Any]] = ()
    creation_content: dict[str, Any] = field(default_factory=dict)
    power_level_content_override: dict[str, Any] | None = None
    room_alias_name: str | None = None
    is_direct: bool = False


def _preset_of(request: CreateRoomRequest) -> str:
    if request.preset is None:
        return "public_chat" if request.visibility == "public" else "private_chat"
    if request.preset not in PRESETS:
        raise MatrixError(Errcode.BAD_JSON, f"Unknown preset {request.preset!r}")
    return request.preset


def default_power_levels(request: CreateRoomRequest, preset: str) -> dict[str, Any]:
    users: dict[str, int] = {}
    if not request.room_version.privileged_creators:
        users[request.creator] = 100
    if preset == "trusted_private_chat" and not request.room_version.privileged_creators:
        users.update({user_id: 100 for user_id in request.invite})
    content: dict[str, Any] = {
        "users": users,
        "users_default": 0,
        "events": {
            "m.room.name": 50,
            "m.room.power_levels": 100,
            "m.room.history_visibility": 100,
            "m.room.canonical_alias": 50,
            "m.room.avatar": 50,
            "m.room.tombstone": 100,
            "m.room.server_acl": 100,
            "m.room.encryption": 100,
        },
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": 50 if preset == "public_chat" else 0,
    }
    if request.power_level_content_override:
        content.update(request.power_level_content_override)
    return content


def _preset_state(preset: str) -> list[tuple[str, dict[str, Any]]]:
    join_rule = "public" if preset == "public_chat" else "invite"
    events = [
        ("m.room.join_rules", {"join_rule": join_rule}),
        ("m.room.history_visibility", {"history_visibility": "shared"}),
    ]
    guest_access = "forbidden" if preset == "public_chat" else "can_join"
    events.append(("m.room.guest_access", {"guest_access": guest_access}))
    return events


InviteFn = Callable[[str, str, str, bool], Awaitable[None]]
"""``(sender, room_id, invitee, is_direct)``: send an invite (local or over federation)."""
ProfileFn = Callable[[str], Awaitable[dict[str, Any]]]


class RoomCreation:
    def __init__(
        self, rooms: RoomService, alias_taken: Callable[[str], Awaitable[bool]],
        create_alias: Callable[[str, str, str], Awaitable[bool]], profile: ProfileFn,
        invite: InviteFn,
    ) -> None:
        self._rooms = rooms
        self._alias_taken = alias_taken
        self._create_alias = create_alias
        self._profile = profile
        self._invite = invite

    async def create(self, request: CreateRoomRequest) -> tuple[str, str | None]:
        """Create the room; return ``(room_id, alias or None)``.

        Every event of the request is built and authorised in memory first, then all are
        stored in one transaction: a refused event leaves nothing behind. Invites of remote
        users go out afterwards, over federation.
        """
        preset = _preset_of(request)
        alias = self._check_request(request)
        if alias is not None and await self._alias_taken(alias):
            raise MatrixError(Errcode.ROOM_IN_USE, f"Alias {alias} is already in use")
        local_invites = [u for u in request.invite if self._rooms.is_local(u)]
        specs = await self._event_specs(request, preset, alias, local_invites)
        try:
            pdus = await self._rooms.build_new_room(
                request.creator, request.room_version, self._create_content(request), specs
            )
        except AuthError as exc:
            raise MatrixError(Errcode.INVALID_PARAM,
                              f"The request asks for an event the room refuses: {exc.message}",
                              400) from exc
        room_id = pdus[0].room_id
        if alias is not None and not await self._create_alias(alias, room_id, request.creator):
            raise MatrixError(Errcode.ROOM_IN_USE, f"Alias {alias} is already in use")
        await self._rooms.store_new_room(pdus)
        for invitee in request.invite:
            if invitee not in local_invites:
                await self._invite(request.creator, room_id, invitee, request.is_direct)
        return room_id, alias

    async def _event_specs(self, request: CreateRoomRequest, preset: str, alias: str | None,
                           local_invites: list[str]) -> list[EventSpec]:
        creator = request.creator
        specs = [
            EventSpec(creator, "m.room.member",
                      {"membership": "join", **await self._profile(creator)}, creator),
            EventSpec(creator, "m.room.power_levels", default_power_levels(request, preset), ""),
        ]
        if alias is not None:
            specs.append(EventSpec(creator, "m.room.canonical_alias", {"alias": alias}, ""))
        initial = {(e["type"], e.get("state_key", "")): e for e in request.initial_state}
        specs += [EventSpec(creator, event_type, content, "")
                  for event_type, content in _preset_state(preset)
                  if (event_type, "") not in initial]
        specs += [EventSpec(creator, event_type, event["content"], state_key)
                  for (event_type, state_key), event in initial.items()]
        if request.name is not None:
            specs.append(EventSpec(creator, "m.room.name", {"name": request.name}, ""))
        if request.topic is not None:
            specs.append(EventSpec(creator, "m.room.topic", {"topic": request.topic}, ""))
        for invitee in local_invites:
            content = {"membership": "invite", **await self._profile(invitee)}
            if request.is_direct:
                content["is_direct"] = True
            specs.append(EventSpec(creator, "m.room.member", content, invitee))
        return specs

    def _check_request(self, request: CreateRoomRequest) -> str | None:
        for invitee in request.invite:
            UserId.parse(invitee)
        for event in request.initial_state:
            if not isinstance(event, dict) or not isinstance(event.get("type"), str) or \
                    not isinstance(event.get("content"), dict) or \
                    not isinstance(event.get("state_key", ""), str):
                raise MatrixError(Errcode.BAD_JSON, "initial_state entries need type and content")
        if request.room_alias_name is None:
            return None
        alias = f"#{request.room_alias_name}:{self._rooms.server_name}"
        if ":" in request.room_alias_name:
            raise MatrixError(Errcode.INVALID_PARAM, "room_alias_name must not contain ':'")
        RoomAlias.parse(alias)
        return alias

    @staticmethod
    def _create_content(request: CreateRoomRequest) -> dict[str, Any]:
        content = dict(request.creation_content)
        content["room_version"] = request.room_version.identifier
        if not request.room_version.implicit_room_creator:
            content["creator"] = request.creator
        if request.room_version.privileged_creators and request.preset == "trusted_private_chat":
            extra = content.get("additional_creators", [])
            content["additional_creators"] = sorted({*extra, *request.invite})
        return content
