"""Event filters (client-server API "Filtering"): parsed strictly, applied to client events.

A filter that does not fit the spec's shape is ``M_BAD_JSON``; unknown keys are ignored.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from rocketnode.core.errors import Errcode, MatrixError

DEFAULT_TIMELINE_LIMIT = 10
MAX_LIMIT = 1000


def _bad(message: str) -> MatrixError:
    return MatrixError(Errcode.BAD_JSON, f"Invalid filter: {message}")


def _str_list(raw: dict[str, Any], name: str) -> tuple[str, ...] | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(f"'{name}' must be a list of strings")
    return tuple(value)


def _bool(raw: dict[str, Any], name: str, default: bool = False) -> bool:
    value = raw.get(name, default)
    if not isinstance(value, bool):
        raise _bad(f"'{name}' must be a boolean")
    return value


def _object(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise _bad(f"'{name}' must be an object")
    return value


@lru_cache(maxsize=1024)
def _pattern(glob: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(glob))


def _matches_any(value: str, patterns: tuple[str, ...]) -> bool:
    return any(p == value or ("*" in p and _pattern(p).match(value)) for p in patterns)


@dataclass(frozen=True, slots=True)
class EventFilter:
    """``EventFilter`` / ``RoomEventFilter`` / ``StateFilter`` of the spec."""

    limit: int | None = None
    types: tuple[str, ...] | None = None
    not_types: tuple[str, ...] = ()
    senders: tuple[str, ...] | None = None
    not_senders: tuple[str, ...] = ()
    rooms: tuple[str, ...] | None = None
    not_rooms: tuple[str, ...] = ()
    contains_url: bool | None = None
    lazy_load_members: bool = False
    include_redundant_members: bool = False

    @classmethod
    def parse(cls, raw: object) -> EventFilter:
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise _bad("event filters must be objects")
        limit = raw.get("limit")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)
                                  or limit < 0):
            raise _bad("'limit' must be a non-negative integer")
        contains_url = raw.get("contains_url")
        if contains_url is not None and not isinstance(contains_url, bool):
            raise _bad("'contains_url' must be a boolean")
        return cls(
            limit=min(limit, MAX_LIMIT) if limit is not None else None,
            types=_str_list(raw, "types"),
            not_types=_str_list(raw, "not_types") or (),
            senders=_str_list(raw, "senders"),
            not_senders=_str_list(raw, "not_senders") or (),
            rooms=_str_list(raw, "rooms"),
            not_rooms=_str_list(raw, "not_rooms") or (),
            contains_url=contains_url,
            lazy_load_members=_bool(raw, "lazy_load_members"),
            include_redundant_members=_bool(raw, "include_redundant_members"),
        )

    def allows_room(self, room_id: str) -> bool:
        if room_id in self.not_rooms:
            return False
        return self.rooms is None or room_id in self.rooms

    def allows(self, event: dict[str, Any]) -> bool:
        """Whether a client-format event passes this filter."""
        event_type = event.get("type", "")
        if self.not_types and _matches_any(event_type, self.not_types):
            return False
        if self.types is not None and not _matches_any(event_type, self.types):
            return False
        sender = event.get("sender", "")
        if sender in self.not_senders:
            return False
        if self.senders is not None and sender not in self.senders:
            return False
        room_id = event.get("room_id")
        if room_id is not None and not self.allows_room(room_id):
            return False
        if self.contains_url is not None:
            content = event.get("content")
            has_url = isinstance(content, dict) and isinstance(content.get("url"), str)
            if has_url != self.contains_url:
                return False
        return True

    @property
    def blocks_everything(self) -> bool:
        return (self.limit == 0 or self.types == () or "*" in self.not_types
                or self.senders == ())


@dataclass(frozen=True, slots=True)
class RoomFilter:
    rooms: tuple[str, ...] | None = None
    not_rooms: tuple[str, ...] = ()
    include_leave: bool = False
    timeline: EventFilter = field(default_factory=EventFilter)
    state: EventFilter = field(default_factory=EventFilter)
    ephemeral: EventFilter = field(default_factory=EventFilter)
    account_data: EventFilter = field(default_factory=EventFilter)

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> RoomFilter:
        return cls(
            rooms=_str_list(raw, "rooms"),
            not_rooms=_str_list(raw, "not_rooms") or (),
            include_leave=_bool(raw, "include_leave"),
            timeline=EventFilter.parse(raw.get("timeline")),
            state=EventFilter.parse(raw.get("state")),
            ephemeral=EventFilter.parse(raw.get("ephemeral")),
            account_data=EventFilter.parse(raw.get("account_data")),
        )

    def allows_room(self, room_id: str) -> bool:
        if room_id in self.not_rooms:
            return False
        return self.rooms is None or room_id in self.rooms

    @property
    def timeline_limit(self) -> int:
        limit = self.timeline.limit
        return DEFAULT_TIMELINE_LIMIT if limit is None else limit


@dataclass(frozen=True, slots=True)
class Filter:
    """The top-level ``Filter`` of the spec."""

    event_fields: tuple[str, ...] | None = None
    event_format: str = "client"
    presence: EventFilter = field(default_factory=EventFilter)
    account_data: EventFilter = field(default_factory=EventFilter)
    room: RoomFilter = field(default_factory=RoomFilter)

    @classmethod
    def parse(cls, raw: object) -> Filter:
        if not isinstance(raw, dict):
            raise _bad("a filter must be a JSON object")
        event_format = raw.get("event_format", "client")
        if event_format not in ("client", "federation"):
            raise _bad("'event_format' must be 'client' or 'federation'")
        return cls(
            event_fields=_str_list(raw, "event_fields"),
            event_format=event_format,
            presence=EventFilter.parse(raw.get("presence")),
            account_data=EventFilter.parse(raw.get("account_data")),
            room=RoomFilter.parse(_object(raw, "room")),
        )


def apply_event_fields(event: dict[str, Any], fields: tuple[str, ...] | None) -> dict[str, Any]:
    """Keep only the dotted ``event_fields`` of a client event (spec "Filtering")."""
    if fields is None:
        return event
    result: dict[str, Any] = {}
    for path in fields:
        parts = re.split(r"(?<!\\)\.", path)
        parts = [p.replace("\\.", ".") for p in parts]
        source: Any = event
        for part in parts:
            if not isinstance(source, dict) or part not in source:
                break
            source = source[part]
        else:
            target = result
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = source
    return result
