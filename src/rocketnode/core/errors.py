"""The one error type of RocketNode, and the protocol verdicts built on it.

Every error that can reach a client or a remote server is a :class:`MatrixError`: it carries the
Matrix ``errcode``, a human-readable message and the HTTP status it maps to. Only the ``http``
layer turns these into ``{"errcode", "error"}`` responses.

Exception tree::

    MatrixError                      errcode + message + HTTP status
    ├── LimitExceeded                M_LIMIT_EXCEEDED, carries retry_after_ms
    ├── InvalidIdentifier            a user/room/event ID, alias or server name that does not parse
    ├── CanonicalJsonError           JSON that is not canonical (floats, big ints, dup keys...)
    ├── PduFormatError               a PDU with missing/ill-typed keys or over the size limits
    ├── SignatureError               a signature or content hash that does not verify
    ├── AuthError                    an event rejected by the authorisation rules
    │   └── SoftFailed               an event that passes its auth events but not current state
    └── RemoteServerError            a remote server answered badly or not at all

Subclasses exist only to carry data or to let callers tell protocol verdicts apart; they never
change how an error is rendered.
"""

from __future__ import annotations

import enum


class Errcode(enum.StrEnum):
    """Matrix error codes (client-server API, "Standard error response")."""

    FORBIDDEN = "M_FORBIDDEN"
    UNKNOWN_TOKEN = "M_UNKNOWN_TOKEN"
    MISSING_TOKEN = "M_MISSING_TOKEN"
    USER_LOCKED = "M_USER_LOCKED"
    BAD_JSON = "M_BAD_JSON"
    NOT_JSON = "M_NOT_JSON"
    NOT_FOUND = "M_NOT_FOUND"
    LIMIT_EXCEEDED = "M_LIMIT_EXCEEDED"
    UNRECOGNIZED = "M_UNRECOGNIZED"
    UNKNOWN = "M_UNKNOWN"
    UNAUTHORIZED = "M_UNAUTHORIZED"
    USER_DEACTIVATED = "M_USER_DEACTIVATED"
    USER_IN_USE = "M_USER_IN_USE"
    INVALID_USERNAME = "M_INVALID_USERNAME"
    ROOM_IN_USE = "M_ROOM_IN_USE"
    INVALID_ROOM_STATE = "M_INVALID_ROOM_STATE"
    UNSUPPORTED_ROOM_VERSION = "M_UNSUPPORTED_ROOM_VERSION"
    INCOMPATIBLE_ROOM_VERSION = "M_INCOMPATIBLE_ROOM_VERSION"
    BAD_STATE = "M_BAD_STATE"
    GUEST_ACCESS_FORBIDDEN = "M_GUEST_ACCESS_FORBIDDEN"
    MISSING_PARAM = "M_MISSING_PARAM"
    INVALID_PARAM = "M_INVALID_PARAM"
    TOO_LARGE = "M_TOO_LARGE"
    EXCLUSIVE = "M_EXCLUSIVE"
    UNABLE_TO_AUTHORISE_JOIN = "M_UNABLE_TO_AUTHORISE_JOIN"
    UNABLE_TO_GRANT_JOIN = "M_UNABLE_TO_GRANT_JOIN"
    SERVER_NOT_TRUSTED = "M_SERVER_NOT_TRUSTED"
    WEAK_PASSWORD = "M_WEAK_PASSWORD"
    UNKNOWN_POS = "M_UNKNOWN_POS"
    PROFILE_TOO_LARGE = "M_PROFILE_TOO_LARGE"
    KEY_TOO_LARGE = "M_KEY_TOO_LARGE"


class MatrixError(Exception):
    """An error with a Matrix errcode, a message and the HTTP status it maps to."""

    def __init__(self, errcode: Errcode, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.errcode = errcode
        self.message = message
        self.status = status

    def to_json(self) -> dict[str, object]:
        """The body of the error response."""
        return {"errcode": str(self.errcode), "error": self.message}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.errcode!s}, {self.message!r}, {self.status})"


class LimitExceeded(MatrixError):
    """A rate limit was hit; the client may retry after ``retry_after_ms``."""

    def __init__(self, retry_after_ms: int, message: str = "Too many requests") -> None:
        super().__init__(Errcode.LIMIT_EXCEEDED, message, 429)
        self.retry_after_ms = retry_after_ms

    def to_json(self) -> dict[str, object]:
        body = super().to_json()
        body["retry_after_ms"] = self.retry_after_ms
        return body


class InvalidIdentifier(MatrixError):
    """An identifier that does not follow the spec grammar."""

    def __init__(self, message: str, errcode: Errcode = Errcode.INVALID_PARAM) -> None:
        super().__init__(errcode, message, 400)


class CanonicalJsonError(MatrixError):
    """Input that is not (or cannot be encoded as) canonical JSON."""

    def __init__(self, message: str, errcode: Errcode = Errcode.BAD_JSON) -> None:
        super().__init__(errcode, message, 400)


class PduFormatError(MatrixError):
    """A PDU whose shape is wrong: missing or ill-typed keys, or too large."""

    def __init__(self, message: str, errcode: Errcode = Errcode.BAD_JSON) -> None:
        super().__init__(errcode, message, 400)


class SignatureError(MatrixError):
    """A signature or hash that does not verify."""

    def __init__(self, message: str) -> None:
        super().__init__(Errcode.FORBIDDEN, message, 403)


class AuthError(MatrixError):
    """An event rejected by the room's authorisation rules."""

    def __init__(self, message: str) -> None:
        super().__init__(Errcode.FORBIDDEN, message, 403)


class SoftFailed(AuthError):
    """An event that passes auth against its auth events but fails against current state."""


class RemoteServerError(MatrixError):
    """A remote server could not be reached or answered with something unusable."""

    def __init__(
        self,
        server_name: str,
        message: str,
        remote_status: int | None = None,
        remote_errcode: str | None = None,
    ) -> None:
        super().__init__(Errcode.UNKNOWN, f"{server_name}: {message}", 502)
        self.server_name = server_name
        self.remote_status = remote_status
        self.remote_errcode = remote_errcode
