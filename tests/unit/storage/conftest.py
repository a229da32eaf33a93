"""The storage contract suite runs against every backend.

Each backend contributes one *opener*: an async function that opens (the first time: creates
and migrates) one database and returns its :class:`~rocketnode.storage.ports.Stores`. Calling
it again opens the same database again, which is how the suite checks that what was written
survives a close. To add a backend (PostgreSQL), add its name to :data:`BACKENDS` and a branch
in :func:`open_backend` that creates a fresh database for the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from rocketnode.storage.ports import Stores
from rocketnode.storage.sqlite import open_sqlite

BACKENDS = ["sqlite"]

Opener = Callable[[], Awaitable[Stores]]


@pytest.fixture(params=BACKENDS)
async def open_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    """Opens the test's database (again); every opened store is closed at the end."""
    opened: list[Stores] = []

    async def open_sqlite_stores() -> Stores:
        stores, _db = await open_sqlite(str(tmp_path / "contract.db"), readers=2)
        opened.append(stores)
        return stores

    openers: dict[str, Opener] = {"sqlite": open_sqlite_stores}
    yield openers[request.param]
    for stores in opened:
        await stores.close()


@pytest.fixture
async def backend(open_backend: Opener) -> Stores:
    """A fresh, empty database of the backend under test."""
    return await open_backend()


@pytest.fixture
async def reopen(open_backend: Opener) -> Callable[[Stores], Awaitable[Stores]]:
    """Close ``stores`` and open the same database again."""

    async def close_and_open(stores: Stores) -> Stores:
        await stores.close()
        return await open_backend()

    return close_and_open
