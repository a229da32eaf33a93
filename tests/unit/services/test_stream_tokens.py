"""Pagination and sync tokens: formats, parsing, and what a bad token gets."""

from __future__ import annotations

import pytest

from rocketnode.core.errors import MatrixError
from rocketnode.services.stream_tokens import (
    BEFORE_ALL,
    ROOM_END,
    ROOM_START,
    STREAM_LIMIT,
    RoomToken,
    SyncToken,
    TopologicalToken,
    parse_pagination_token,
    topological_position,
)


def test_room_tokens_round_trip() -> None:
    for stream in (0, 1, 42, -7, STREAM_LIMIT - 1, BEFORE_ALL):
        token = RoomToken(stream)
        assert RoomToken.parse(str(token)) == token
    assert str(RoomToken(42)) == "s42"


def test_before_and_after_an_event() -> None:
    assert RoomToken.before(10) == RoomToken(9)
    assert RoomToken.after(10) == RoomToken(10)
    assert RoomToken.before(10) < RoomToken.after(10)


def test_a_sync_token_is_a_room_token() -> None:
    sync = SyncToken(42, 3)
    assert str(sync) == "s42_3"
    assert SyncToken.parse("s42_3") == sync
    assert SyncToken.parse("s42") == SyncToken(42, 0)
    assert RoomToken.parse(str(sync)) == sync.room == RoomToken(42)


@pytest.mark.parametrize(
    "token",
    ["", "s", "42", "t42", "s4x", "s+4", "s 4", "s٤٢", "s--1", f"s{STREAM_LIMIT}",
     "s" + "9" * 30, "s1_-2", "s1_x"],
)
def test_bad_tokens_are_invalid_param(token: str) -> None:
    with pytest.raises(MatrixError) as caught:
        SyncToken.parse(token)
    assert caught.value.errcode == "M_INVALID_PARAM"
    if not token.startswith("s1_"):
        with pytest.raises(MatrixError):
            RoomToken.parse(token)


def test_topological_tokens_round_trip_and_order() -> None:
    for depth, stream in ((1, 1), (17, 42), (3, -9), (0, BEFORE_ALL)):
        token = TopologicalToken(depth, stream)
        assert TopologicalToken.parse(str(token)) == token
        assert parse_pagination_token(str(token)) == token
    assert str(TopologicalToken(17, 42)) == "t17_42"
    # Depth first; the stream ordering breaks ties.
    assert TopologicalToken(2, 100) < TopologicalToken(3, -50) < TopologicalToken(3, -49)
    assert TopologicalToken.before(5, 10) < TopologicalToken.after(5, 10)
    assert TopologicalToken.before(5, 10) == TopologicalToken(5, 9)
    assert TopologicalToken(1, BEFORE_ALL) > ROOM_START
    assert TopologicalToken(10**9, 0) < ROOM_END


def test_stream_tokens_are_pagination_tokens_too() -> None:
    assert parse_pagination_token("s42") == RoomToken(42)
    assert parse_pagination_token("s42_3") == RoomToken(42)
    assert topological_position(None) == ROOM_START
    assert topological_position((7, 12)) == TopologicalToken(7, 12)


@pytest.mark.parametrize("token", ["t", "t1", "t1_", "t_1", "tx_1", "t1_x", "t1_2_3", "s1_2_3",
                                   "t" + "9" * 30 + "_1", "T1_2", ""])
def test_bad_pagination_tokens_are_invalid_param(token: str) -> None:
    with pytest.raises(MatrixError) as caught:
        parse_pagination_token(token)
    assert caught.value.errcode == "M_INVALID_PARAM"
