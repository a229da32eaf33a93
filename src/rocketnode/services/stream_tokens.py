"""Pagination and sync tokens (client-server API "Syncing", "Getting events for a room",
"Pagination").

Two orders, two kinds of position.

*Stream order* is the order this server received things in: one counter orders events,
receipts and account data. A stream position ``N`` sits just after the thing stored at stream
ordering ``N``. ``/sync`` works in stream order. Backfilled events have negative stream
orderings, so positions may be negative.

*Topological order* is a room's history as its event graph tells it: events sorted by
``(depth, stream_ordering)`` (depth first; the stream ordering breaks ties between events of the
same depth, i.e. concurrent ones). ``/messages`` and ``/context`` paginate in it, so that history
fetched late (backfill, a gap filled while paginating) appears where it happened, not where it
arrived. A topological position ``(d, s)`` sits just after the event whose key is ``(d, s)``:
paginating backwards from it returns that event and those before it; forwards, those after it.

Formats (opaque to clients, but stable):

* a stream room token ``s<stream>``, e.g. ``s42`` or ``s-7`` (``/sync`` ``prev_batch``);
* a sync token ``s<stream>_<typing>``, e.g. ``s42_3`` (``/sync`` ``next_batch``);
* a topological room token ``t<depth>_<stream>``, e.g. ``t17_42`` or ``t3_-9`` (``/messages``
  ``start``/``end``, ``/context`` ``start``/``end``).

Any sync token is also a stream room token: :meth:`RoomToken.parse` reads its stream part. A
``/sync`` ``prev_batch`` for a timeline whose first event has stream ordering ``S`` is
``RoomToken.before(S)``. ``/messages``, ``/context`` and ``/members?at=`` accept every kind
(:func:`parse_pagination_token`).

A stream token ``s<N>`` given to ``/messages`` (as ``from`` or ``to``) stands for the events this
server had at ``N``. Its topological position is the key of the *topologically latest* of the
room's timeline events with stream ordering ``<= N`` (:func:`topological_position`), or
:data:`ROOM_START` if there is none: the least position with every one of those events at or
before it. So paginating backwards from a ``/sync`` ``prev_batch`` misses none of the events
received before the timeline; where the room forked, it may repeat an event received later
that sits lower in the graph (the client already has it, from ``/sync``). Forwards from a
stream token returns the events topologically after all of those.
"""

from __future__ import annotations

from dataclasses import dataclass

from rocketnode.core.errors import Errcode, MatrixError

STREAM_LIMIT = 2**62
"""Positions stay well inside SQLite's 64-bit integers, with room for ``+ 1``."""
BEFORE_ALL = -(STREAM_LIMIT - 1)
"""The stream position before everything (e.g. an initial ``/sync``)."""


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
        return cls(SyncToken.parse(token).stream)

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


@dataclass(frozen=True, slots=True, order=True)
class TopologicalToken:
    """A position in a room's topological order: the gap just after the event whose
    ``(depth, stream_ordering)`` is ``(depth, stream)``."""

    depth: int
    stream: int

    @classmethod
    def before(cls, depth: int, stream_ordering: int) -> TopologicalToken:
        """The gap just before the event at ``(depth, stream_ordering)``."""
        return cls(depth, stream_ordering - 1)

    @classmethod
    def after(cls, depth: int, stream_ordering: int) -> TopologicalToken:
        """The gap just after the event at ``(depth, stream_ordering)``."""
        return cls(depth, stream_ordering)

    @classmethod
    def parse(cls, token: str) -> TopologicalToken:
        if not token.startswith("t"):
            raise _bad_token(token)
        depth_part, separator, stream_part = token[1:].partition("_")
        if not separator:
            raise _bad_token(token)
        return cls(_parse_int(depth_part, token, allow_negative=True),
                   _parse_int(stream_part, token, allow_negative=True))

    @property
    def key(self) -> tuple[int, int]:
        return (self.depth, self.stream)

    def __str__(self) -> str:
        return f"t{self.depth}_{self.stream}"


ROOM_START = TopologicalToken(-1, 0)
"""Before every event of a room (depths are never negative)."""
ROOM_END = TopologicalToken(STREAM_LIMIT - 1, STREAM_LIMIT - 1)
"""After every event of a room."""

PaginationToken = RoomToken | TopologicalToken


def parse_pagination_token(token: str) -> PaginationToken:
    """A topological token (``t…``), or a stream or sync token (``s…``)."""
    if token.startswith("t"):
        return TopologicalToken.parse(token)
    return RoomToken.parse(token)


def topological_position(latest: tuple[int, int] | None) -> TopologicalToken:
    """The topological position of a stream token, from the key of the topologically latest
    timeline event at or before it (``None``: the room had no event then)."""
    return ROOM_START if latest is None else TopologicalToken(*latest)
