"""The embedded SQLite backend (the default)."""

from __future__ import annotations

import asyncio

from rocketnode.storage.ports import Stores
from rocketnode.storage.sqlite.accounts import SqliteAccountStore
from rocketnode.storage.sqlite.client_data import SqliteClientDataStore
from rocketnode.storage.sqlite.database import SqliteDatabase
from rocketnode.storage.sqlite.events import SqliteEventStore
from rocketnode.storage.sqlite.federation import SqliteFederationStore, queue_outbound
from rocketnode.storage.sqlite.rooms import SqliteRoomStore
from rocketnode.storage.sqlite.state import SqliteStateStore
from rocketnode.storage.sqlite.streams import StreamIds


async def open_sqlite(path: str, readers: int = 4, synchronous: str = "NORMAL") -> tuple[
    Stores, SqliteDatabase
]:
    """Open (creating and migrating if needed) the database at ``path``."""
    db = SqliteDatabase(path, readers=readers, synchronous=synchronous)
    await asyncio.get_running_loop().run_in_executor(None, db.open)
    streams = StreamIds()
    await db.write(streams.load)
    events = SqliteEventStore(db, streams)
    events.add_outbound_hook(queue_outbound)
    stores = Stores(
        events=events,
        state=SqliteStateStore(db),
        rooms=SqliteRoomStore(db),
        accounts=SqliteAccountStore(db),
        client_data=SqliteClientDataStore(db, streams),
        federation=SqliteFederationStore(db),
        close=db.close,
    )
    return stores, db
