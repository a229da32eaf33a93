"""Pagination and sync tokens: formats, parsing, and what a bad token gets."""

from __future__ import annotations

import pytest

from rocketnode.core.errors import MatrixError
from rocketnode.services.stream_tokens import BEFORE_ALL, STREAM_LIMIT, RoomToken, SyncToken


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
