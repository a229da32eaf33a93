"""Matrix identifiers (spec appendix "Identifier Grammar"), validated on parse.

``parse()`` accepts what must be accepted over federation (historical user IDs included);
``UserId.is_compliant`` tells whether a user ID follows the current, stricter grammar that new
accounts must use. Every failure raises :class:`~rocketnode.core.errors.InvalidIdentifier`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from rocketnode.core.errors import Errcode, InvalidIdentifier

MAX_ID_BYTES = 255

# Spec "Server Name": dns-name = 1*255dns-char, with the prose rule that it is a series of
# labels (letters, digits, hyphens) separated by "." -- so no empty label, no trailing dot.
_DNS_NAME = re.compile(r"[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\Z")
_MAX_DNS_NAME = 255
# Four dot-separated numbers are an IPv4 literal, never a DNS name (RFC 1123 section 2.1, which
# the spec's grammar follows): "1.2.3.256" is an invalid literal, not a host name.
_IPV4_FORM = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+\Z")
_IPV4_PART = re.compile(r"(?:0|[1-9][0-9]{0,2})\Z")
_IPV6_CHARS = re.compile(r"[0-9A-Fa-f:.]{2,45}\Z")
_PORT = re.compile(r"[0-9]{1,5}\Z")
_COMPLIANT_LOCALPART = re.compile(r"[a-z0-9._=/+\-]+\Z")
_URLSAFE_B64 = re.compile(r"[A-Za-z0-9_\-]+\Z")
_FORBIDDEN_IN_ID = re.compile(r"[\x00\ud800-\udfff]")
"""NUL and lone surrogates: no identifier may contain them."""


@dataclass(frozen=True, slots=True)
class ServerName:
    """A server name: hostname (DNS name, IPv4, or bracketed IPv6) and an optional port.

    Server names are compared as strings, so ``port_text`` keeps the port as written
    (``h:08448`` and ``h:8448`` are two names, both with ``port`` 8448).
    """

    host: str
    port: int | None
    port_text: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.port is None:
            if self.port_text is not None:
                raise ValueError("port_text without a port")
        elif self.port_text is None:
            object.__setattr__(self, "port_text", str(self.port))
        elif not _PORT.match(self.port_text) or int(self.port_text) != self.port:
            raise ValueError(f"port_text {self.port_text!r} does not spell port {self.port}")

    @classmethod
    def parse(cls, value: object) -> ServerName:
        if not isinstance(value, str) or not value:
            raise InvalidIdentifier("Server name must be a non-empty string")
        host, port_text = _split_host_port(value)
        if host.startswith("["):
            _check_ipv6_literal(host, value)
        elif _IPV4_FORM.match(host):
            _check_ipv4_literal(host, value)
        elif len(host) > _MAX_DNS_NAME or not _DNS_NAME.match(host):
            raise InvalidIdentifier(f"Invalid server name: {value!r}")
        if port_text is None:
            return cls(host, None)
        return cls(host, _parse_port(port_text, value), port_text)

    @property
    def is_ip_literal(self) -> bool:
        return self.host.startswith("[") or bool(_IPV4_FORM.match(self.host))

    def __str__(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port_text}"


def _split_host_port(value: str) -> tuple[str, str | None]:
    if value.startswith("["):
        end = value.find("]")
        if end == -1:
            raise InvalidIdentifier(f"Unterminated IPv6 literal in server name: {value!r}")
        host, rest = value[: end + 1], value[end + 1 :]
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise InvalidIdentifier(f"Invalid server name: {value!r}")
        return host, rest[1:]
    host, sep, port_text = value.partition(":")
    return host, port_text if sep else None


def _check_ipv6_literal(host: str, value: str) -> None:
    """``"[" IPv6address "]"``: 2 to 45 of ``0-9A-Fa-f:.``, in the text form of RFC 3513 2.2."""
    if not host.endswith("]") or not _IPV6_CHARS.match(host[1:-1]):
        raise InvalidIdentifier(f"Invalid IPv6 literal in server name: {value!r}")
    try:
        ipaddress.IPv6Address(host[1:-1])
    except ValueError as exc:
        raise InvalidIdentifier(f"Invalid IPv6 literal in server name: {value!r}") from exc


def _check_ipv4_literal(host: str, value: str) -> None:
    """Four decimal numbers 0 to 255. Leading zeros are refused: resolvers read ``010`` as octal."""
    for part in host.split("."):
        if not _IPV4_PART.match(part) or int(part) > 255:
            raise InvalidIdentifier(f"Invalid IPv4 literal in server name: {value!r}")


def _parse_port(text: str, value: str) -> int:
    """``port = 1*5DIGIT``, and a port a server can be reached at (1 to 65535)."""
    if not _PORT.match(text):
        raise InvalidIdentifier(f"Invalid port in server name: {value!r}")
    port = int(text)
    if not 0 < port < 65536:
        raise InvalidIdentifier(f"Port out of range in server name: {value!r}")
    return port


def is_valid_server_name(value: object) -> bool:
    try:
        ServerName.parse(value)
    except InvalidIdentifier:
        return False
    return True


def _check_length(value: str, what: str) -> None:
    if len(value.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:
        raise InvalidIdentifier(f"{what} is longer than {MAX_ID_BYTES} bytes")


def _check_code_points(opaque: str, value: str, what: str) -> None:
    """Any non-surrogate code point but NUL (spec: historical user IDs, room IDs, aliases)."""
    if _FORBIDDEN_IN_ID.search(opaque):
        raise InvalidIdentifier(f"{what} contains NUL or a lone surrogate: {value!r}")


def _split_sigil_id(value: object, sigil: str, what: str) -> tuple[str, str]:
    if not isinstance(value, str) or not value.startswith(sigil):
        raise InvalidIdentifier(f"{what} must start with {sigil!r}: {value!r}")
    _check_length(value, what)
    localpart, sep, server = value[1:].partition(":")
    if not sep:
        raise InvalidIdentifier(f"{what} has no server name: {value!r}")
    _check_code_points(localpart, value, what)
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
        _check_code_points(opaque, value, "Room ID")
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
        if not opaque:
            raise InvalidIdentifier(f"Invalid event ID: {value!r}")
        _check_code_points(opaque, value, "Event ID")
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
