"""Contract of the ``AccountStore`` port: accounts, profiles, devices and access tokens."""

from __future__ import annotations

import pytest

from rocketnode.storage.ports import Stores
from tests.unit.storage.builders import ALICE, BOB


async def test_accounts_are_created_once(backend: Stores) -> None:
    accounts = backend.accounts
    assert await accounts.count_accounts() == 0
    assert await accounts.get_account(ALICE) is None
    assert await accounts.create_account(ALICE, "hash-a", False, 100, displayname="alice")
    assert not await accounts.create_account(ALICE, "other", True, 200)
    assert await accounts.create_account(BOB, None, True, 300)
    assert await accounts.count_accounts() == 2

    alice = await accounts.get_account(ALICE)
    assert alice is not None
    assert (alice.user_id, alice.password_hash, alice.is_admin, alice.created_ts) == (
        ALICE, "hash-a", False, 100
    )
    assert (alice.deactivated, alice.displayname, alice.avatar_url) == (False, "alice", None)
    bob = await accounts.get_account(BOB)
    assert bob is not None and bob.password_hash is None and bob.is_admin


async def test_account_fields_change(backend: Stores) -> None:
    accounts = backend.accounts
    await accounts.create_account(ALICE, "old", False, 1)
    await accounts.set_admin(ALICE, True)
    await accounts.set_password_hash(ALICE, "new")
    await accounts.set_profile_field(ALICE, "displayname", "Alice")
    await accounts.set_profile_field(ALICE, "avatar_url", "mxc://storage.test/a")
    alice = await accounts.get_account(ALICE)
    assert alice is not None
    assert (alice.is_admin, alice.password_hash) == (True, "new")
    assert (alice.displayname, alice.avatar_url) == ("Alice", "mxc://storage.test/a")
    await accounts.set_profile_field(ALICE, "displayname", None)
    alice = await accounts.get_account(ALICE)
    assert alice is not None and alice.displayname is None
    with pytest.raises(ValueError):
        await accounts.set_profile_field(ALICE, "password_hash", "sneaky")
    alice = await accounts.get_account(ALICE)
    assert alice is not None and alice.password_hash == "new"


async def test_logins_devices_and_tokens(backend: Stores) -> None:
    accounts = backend.accounts
    await accounts.create_account(ALICE, None, True, 1)
    await accounts.create_account(BOB, None, False, 1)
    await accounts.add_login(ALICE, "PHONE", "Phone", "hash-1", 1000)
    await accounts.add_login(ALICE, "LAPTOP", None, "hash-2", 2000)
    await accounts.add_login(ALICE, "PHONE", None, "hash-3", 3000)  # same device, new token
    await accounts.add_login(BOB, "PHONE", "Bob's", "hash-4", 4000)

    token = await accounts.get_access_token("hash-3")
    assert token is not None
    assert (token.user_id, token.device_id, token.is_admin) == (ALICE, "PHONE", True)
    assert await accounts.get_access_token("hash-unknown") is None
    devices = await accounts.get_devices(ALICE)
    assert [(d.device_id, d.display_name, d.last_seen_ts) for d in devices] == [
        ("LAPTOP", None, 2000), ("PHONE", "Phone", 3000)
    ]

    assert await accounts.update_device(ALICE, "LAPTOP", "Laptop")
    assert not await accounts.update_device(ALICE, "NOPE", "x")
    assert [d.display_name for d in await accounts.get_devices(ALICE)] == ["Laptop", "Phone"]

    await accounts.delete_access_token("hash-1")  # logging out ends the device's session
    assert await accounts.get_access_token("hash-1") is None
    assert await accounts.get_access_token("hash-3") is None
    assert [d.device_id for d in await accounts.get_devices(ALICE)] == ["LAPTOP"]
    await accounts.delete_access_token("hash-unknown")

    await accounts.add_login(ALICE, "TABLET", None, "hash-5", 5000)
    await accounts.delete_device(ALICE, "TABLET")
    assert await accounts.get_access_token("hash-5") is None
    assert [d.device_id for d in await accounts.get_devices(ALICE)] == ["LAPTOP"]

    await accounts.delete_all_access_tokens(ALICE)
    assert await accounts.get_access_token("hash-2") is None
    assert await accounts.get_devices(ALICE) == []
    bob_token = await accounts.get_access_token("hash-4")
    assert bob_token is not None and bob_token.user_id == BOB
    assert [d.device_id for d in await accounts.get_devices(BOB)] == ["PHONE"]
