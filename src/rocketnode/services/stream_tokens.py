"""Pagination and sync tokens (client-server API "Syncing", "Getting events for a room").

Every token names a *gap* in the server's single stream: position ``N`` sits just after the
thing stored at stream ordering ``N``. Paginating backwards from ``N`` returns what is at ``N``
and before it; paginating forwards returns what is after ``N``. Backfilled events have negative
stream orderings, so positions may be negative.

Formats (opaque to clients, but stable):

* a room token ``s<stream>``, e.g. ``s42`` or ``s-7`` (``/messages`` ``start``/``end``,
  ``/context``, ``/sync`` ``prev_batch``);
* a sync token ``s<stream>_<typing>``, e.g. ``s42_3`` (``/sync`` ``next_batch``).

Any sync token is also a room token: :meth:`RoomToken.parse` reads its stream part, so a
``/sync`` ``next_batch`` may be passed to ``/messages`` or ``/members?at=``. A ``/sync``
``prev_batch`` for a timeline whose first event has stream ordering ``S`` is
``RoomToken.before(S)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rocketnode.core.errors import Errcode, MatrixError

STREAM_LIMIT = 2**62
"""Positions stay well inside SQLite's 64-bit integers, with room for ``+ 1``."""
BEFORE_ALL = -(STREAM_LIMIT - 1)
"""The position before everything (e.g. ``/messages`` forwards without ``from``)."""


def _bad_token(token: str) -> MatrixError:
    return MatrixError(Errcode.INVALID_PARAM, f"Invalid pagination token {token[:40]!r}")


def _parse_int(text: str, token: str, allow_negative: bool) -> int:
    digits = text[1:] if allow_negative and text.startswith("-") else text
    if not digits.isascii() or not digits.isdigit() or len(digits) > 19:
        raise _bad_token(token)
    value = int(text)
    if not -STREAM_LIMIT < value < STREAM_LIMIT:
        raise _bad_token(token)
    return value


@dataclass(frozen=True, slots=True, order=True)
class RoomToken:
    """A position in the event stream: the gap just after stream ordering ``stream``."""

    stream: int

    @classmethod
    def before(cls, stream_ordering: int) -> RoomToken:
        """The gap just before the event at ``stream_ordering``."""
        return cls(stream_ordering - 1)

    @classmethod
    def after(cls, stream_ordering: int) -> RoomToken:
        """The gap just after the event at ``stream_ordering``."""
        return cls(stream_ordering)

    @classmethod
    def parse(cls, token: str) -> RoomToken:
        """A room token, or the stream part of a sync token; ``M_INVALID_PARAM`` otherwise."""
        if not token.startswith("s"):
            raise _bad_token(token)
        stream_part, _, _rest = token[1:].partition("_")
        return cls(_parse_int(stream_part, token, allow_negative=True))

    def __str__(self) -> str:
        return f"s{self.stream}"


@dataclass(frozen=True, slots=True)
class SyncToken:
    """Where a ``/sync`` left off: the event stream and the in-memory typing stream."""

    stream: int
    typing: int = 0

    @classmethod
    def parse(cls, token: str) -> SyncToken:
        if not token.startswith("s"):
            raise _bad_token(token)
        stream_part, separator, typing_part = token[1:].partition("_")
        stream = _parse_int(stream_part, token, allow_negative=True)
        typing = _parse_int(typing_part, token, allow_negative=False) if separator else 0
        return cls(stream, typing)

    @property
    def room(self) -> RoomToken:
        return RoomToken(self.stream)

    def __str__(self) -> str:
        return f"s{self.stream}_{self.typing}"
