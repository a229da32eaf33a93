"""Accounts: passwords, and the access token cache (invalidated by logouts, bounded in time)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rocketnode.core.errors import MatrixError
from rocketnode.services.accounts import (
    TOKEN_CACHE_SECONDS,
    AccountService,
    check_password,
    hash_password,
)
from rocketnode.storage.ports import Stores
from rocketnode.storage.sqlite import open_sqlite


class SteppingClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def now_ms(self) -> int:
        return int(self.now * 1000)

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[Stores]:
    opened, _db = await open_sqlite(str(tmp_path / "db.sqlite"))
    yield opened
    await opened.close()


def test_password_hashes_check_only_the_right_password() -> None:
    stored = hash_password("correct horse")
    assert check_password("correct horse", stored)
    assert not check_password("correct hors", stored)
    assert hash_password("correct horse") != stored  # salted


async def test_logout_invalidates_a_cached_token_at_once(stores: Stores) -> None:
    accounts = AccountService("example.org", stores.accounts, SteppingClock())
    user_id = await accounts.register("alice", "pw")
    first = await accounts.create_login(user_id)
    second = await accounts.create_login(user_id)
    assert (await accounts.authenticate(first.access_token)).user_id == user_id
    assert (await accounts.authenticate(second.access_token)).device_id == second.device_id
    await accounts.logout(first.access_token)
    with pytest.raises(MatrixError) as caught:
        await accounts.authenticate(first.access_token)
    assert caught.value.errcode == "M_UNKNOWN_TOKEN"
    assert (await accounts.authenticate(second.access_token)).user_id == user_id
    await accounts.logout_all(user_id)
    with pytest.raises(MatrixError):
        await accounts.authenticate(second.access_token)


async def test_a_token_removed_behind_the_cache_expires_with_the_cache(stores: Stores) -> None:
    clock = SteppingClock()
    accounts = AccountService("example.org", stores.accounts, clock)
    user_id = await accounts.register("bob", "pw")
    login = await accounts.create_login(user_id)
    await accounts.authenticate(login.access_token)
    other_process = AccountService("example.org", stores.accounts, clock)
    await other_process.logout_all(user_id)
    assert (await accounts.authenticate(login.access_token)).user_id == user_id
    clock.now += TOKEN_CACHE_SECONDS + 1
    with pytest.raises(MatrixError):
        await accounts.authenticate(login.access_token)
