"""Matrix identifiers (spec appendix "Identifier Grammar"), validated on parse.

``parse()`` accepts what must be accepted over federation (historical user IDs included);
``UserId.is_compliant`` tells whether a user ID follows the current, stricter grammar that new
accounts must use. Every failure raises :class:`~rocketnode.core.errors.InvalidIdentifier`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from rocketnode.core.errors import Errcode, InvalidIdentifier

MAX_ID_BYTES = 255

_DNS_NAME = re.compile(r"[A-Za-z0-9.\-]{1,255}\Z")
_IPV4 = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\Z")
_IPV6_CHARS = re.compile(r"[0-9A-Fa-f:.]{2,45}\Z")
_PORT = re.compile(r"[0-9]{1,5}\Z")
_COMPLIANT_LOCALPART = re.compile(r"[a-z0-9._=/+\-]+\Z")
_URLSAFE_B64 = re.compile(r"[A-Za-z0-9_\-]+\Z")


@dataclass(frozen=True, slots=True)
class ServerName:
    """A server name: hostname (DNS name, IPv4, or bracketed IPv6) and an optional port."""

    host: str
    port: int | None

    @classmethod
    def parse(cls, value: str) -> ServerName:
        if not isinstance(value, str) or not value:
            raise InvalidIdentifier("Server name must be a non-empty string")
        host, port = _split_host_port(value)
        if host.startswith("["):
            if not host.endswith("]") or not _IPV6_CHARS.match(host[1:-1]):
                raise InvalidIdentifier(f"Invalid IPv6 literal in server name: {value!r}")
            try:
                ipaddress.IPv6Address(host[1:-1])
            except ValueError as exc:
                raise InvalidIdentifier(f"Invalid IPv6 literal in server name: {value!r}") from exc
        elif _IPV4.match(host):
            try:
                ipaddress.IPv4Address(host)
            except ValueError as exc:
                raise InvalidIdentifier(f"Invalid IPv4 literal in server name: {value!r}") from exc
        elif not _DNS_NAME.match(host):
            raise InvalidIdentifier(f"Invalid server name: {value!r}")
        return cls(host, port)

    @property
    def is_ip_literal(self) -> bool:
        return self.host.startswith("[") or bool(_IPV4.match(self.host))

    def __str__(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"


def _split_host_port(value: str) -> tuple[str, int | None]:
    if value.startswith("["):
        end = value.find("]")
        if end == -1:
            raise InvalidIdentifier(f"Unterminated IPv6 literal in server name: {value!r}")
        host, rest = value[: end + 1], value[end + 1 :]
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise InvalidIdentifier(f"Invalid server name: {value!r}")
        return host, _parse_port(rest[1:], value)
    host, sep, port_text = value.partition(":")
    if not sep:
        return host, None
    return host, _parse_port(port_text, value)


def _parse_port(text: str, value: str) -> int:
    if not _PORT.match(text):
        raise InvalidIdentifier(f"Invalid port in server name: {value!r}")
    port = int(text)
    if not 0 < port < 65536:
        raise InvalidIdentifier(f"Port out of range in server name: {value!r}")
    return port


def is_valid_server_name(value: str) -> bool:
    try:
        ServerName.parse(value)
    except InvalidIdentifier:
        return False
    return True


def _check_length(value: str, what: str) -> None:
    if len(value.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:
        raise InvalidIdentifier(f"{what} is longer than {MAX_ID_BYTES} bytes")


def _split_sigil_id(value: object, sigil: str, what: str) -> tuple[str, str]:
    if not isinstance(value, str) or not value.startswith(sigil):
        raise InvalidIdentifier(f"{what} must start with {sigil!r}: {value!r}")
    _check_length(value, what)
    localpart, sep, server = value[1:].partition(":")
    if not sep:
        raise InvalidIdentifier(f"{what} has no server name: {value!r}")
    if "\x00" in localpart:
        raise InvalidIdentifier(f"{what} contains NUL: {value!r}")
    ServerName.parse(server)
    return localpart, server


@dataclass(frozen=True, slots=True)
class UserId:
    """``@localpart:server_name``."""

    localpart: str
    server_name: str

    @classmethod
    def parse(cls, value: object) -> UserId:
        """Parse a user ID, accepting historical localparts as federation must."""
        localpart, server = _split_sigil_id(value, "@", "User ID")
        return cls(localpart, server)

    @classmethod
    def parse_compliant(cls, value: object) -> UserId:
        """Parse a user ID that must follow the current grammar (new accounts)."""
        user_id = cls.parse(value)
        if not user_id.is_compliant:
            raise InvalidIdentifier(
                f"User ID localpart may only contain a-z, 0-9, . _ = - / +: {value!r}",
                Errcode.INVALID_USERNAME,
            )
        return user_id

    @property
    def is_compliant(self) -> bool:
        return bool(_COMPLIANT_LOCALPART.match(self.localpart))

    def __str__(self) -> str:
        return f"@{self.localpart}:{self.server_name}"


def is_valid_user_id(value: object) -> bool:
    try:
        UserId.parse(value)
    except InvalidIdentifier:
        return False
    return True


def server_name_of(user_or_room_id: str) -> str:
    """The server part of a ``&localpart:server`` identifier (no validation)."""
    return user_or_room_id.split(":", 1)[1] if ":" in user_or_room_id else ""


@dataclass(frozen=True, slots=True)
class RoomId:
    """``!opaque:server_name`` (room versions up to 11) or ``!hash`` (room version 12)."""

    opaque_id: str
    server_name: str | None

    @classmethod
    def parse(cls, value: object) -> RoomId:
        if not isinstance(value, str) or not value.startswith("!"):
            raise InvalidIdentifier(f"Room ID must start with '!': {value!r}")
        _check_length(value, "Room ID")
        opaque, sep, server = value[1:].partition(":")
        if "\x00" in opaque:
            raise InvalidIdentifier(f"Room ID contains NUL: {value!r}")
        if sep:
            ServerName.parse(server)
            return cls(opaque, server)
        if len(opaque) != 43 or not _URLSAFE_B64.match(opaque):
            raise InvalidIdentifier(f"Room ID without a server name must be a hash: {value!r}")
        return cls(opaque, None)

    @classmethod
    def from_create_event_id(cls, event_id: str) -> RoomId:
        """The room ID of a room version 12 room: the create event's ID with ``!``."""
        return cls.parse("!" + EventId.parse(event_id).opaque_id)

    def __str__(self) -> str:
        return f"!{self.opaque_id}" if self.server_name is None else (
            f"!{self.opaque_id}:{self.server_name}"
        )


@dataclass(frozen=True, slots=True)
class EventId:
    """``$`` followed by the URL-safe unpadded base64 reference hash (room versions 4+)."""

    opaque_id: str

    @classmethod
    def parse(cls, value: object) -> EventId:
        if not isinstance(value, str) or not value.startswith("$"):
            raise InvalidIdentifier(f"Event ID must start with '$': {value!r}")
        _check_length(value, "Event ID")
        opaque = value[1:]
        if not opaque or "\x00" in opaque:
            raise InvalidIdentifier(f"Invalid event ID: {value!r}")
        return cls(opaque)

    def __str__(self) -> str:
        return f"${self.opaque_id}"


@dataclass(frozen=True, slots=True)
class RoomAlias:
    """``#localpart:server_name``."""

    localpart: str
    server_name: str

    @classmethod
    def parse(cls, value: object) -> RoomAlias:
        localpart, server = _split_sigil_id(value, "#", "Room alias")
        return cls(localpart, server)

    def __str__(self) -> str:
        return f"#{self.localpart}:{self.server_name}"
