"""Accounts, devices, access tokens (stored as hashes) and profiles in SQLite."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from rocketnode.core.canonical_json import encode_json
from rocketnode.storage.records import AccessToken, Account, Device
from rocketnode.storage.sqlite.database import SqliteDatabase

_ACCOUNT_COLUMNS = (
    "user_id, password_hash, is_admin, created_ts, deactivated, displayname, avatar_url"
)


class SqliteAccountStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def create_account(
        self, user_id: str, password_hash: str | None, is_admin: bool, created_ts: int,
        displayname: str | None = None,
    ) -> bool:
        """Create an account; False if the user ID is taken."""

        def write(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO users (user_id, password_hash, is_admin, created_ts,"
                " displayname) VALUES (?, ?, ?, ?, ?)",
                (user_id, password_hash, int(is_admin), created_ts, displayname),
            )
            return cursor.rowcount == 1

        return await self._db.write(write)

    async def get_account(self, user_id: str) -> Account | None:
        def query(conn: sqlite3.Connection) -> Account | None:
            row = conn.execute(
                f"SELECT {_ACCOUNT_COLUMNS} FROM users WHERE user_id = ?", (user_id,)
            ).fetchone()
            if row is None:
                return None
            return Account(row[0], row[1], bool(row[2]), row[3], bool(row[4]), row[5], row[6])

        return await self._db.read(query)

    async def set_admin(self, user_id: str, is_admin: bool) -> None:
        await self._db.write(
            lambda conn: conn.execute(
                "UPDATE users SET is_admin = ? WHERE user_id = ?", (int(is_admin), user_id)
            )
        )

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self._db.write(
            lambda conn: conn.execute(
                "UPDATE users SET password_hash = ? WHERE user_id = ?", (password_hash, user_id)
            )
        )

    async def set_profile_field(self, user_id: str, field: str, value: str | None) -> None:
        if field not in ("displayname", "avatar_url"):
            raise ValueError(f"Unknown profile field {field!r}")
        await self._db.write(
            lambda conn: conn.execute(
                f"UPDATE users SET {field} = ? WHERE user_id = ?", (value, user_id)
            )
        )

    async def get_extra_profile_fields(self, user_id: str) -> dict[str, Any]:
        """Profile fields other than ``displayname`` and ``avatar_url`` (decoded JSON)."""
        return await self._db.read(
            lambda conn: {
                row[0]: json.loads(row[1])
                for row in conn.execute(
                    "SELECT field, value FROM profile_fields WHERE user_id = ? ORDER BY field",
                    (user_id,),
                )
            }
        )

    async def set_extra_profile_field(self, user_id: str, field: str, value: Any) -> None:
        await self._db.write(
            lambda conn: conn.execute(
                "INSERT INTO profile_fields (user_id, field, value) VALUES (?, ?, ?)"
                " ON CONFLICT (user_id, field) DO UPDATE SET value = excluded.value",
                (user_id, field, encode_json(value).decode("utf-8")),
            )
        )

    async def delete_extra_profile_field(self, user_id: str, field: str) -> None:
        await self._db.write(
            lambda conn: conn.execute(
                "DELETE FROM profile_fields WHERE user_id = ? AND field = ?", (user_id, field)
            )
        )

    # -- devices and tokens ------------------------------------------------------------------

    async def add_login(
        self, user_id: str, device_id: str, display_name: str | None, token_hash: str,
        now_ts: int,
    ) -> None:
        """Create (or reuse) a device and attach a new access token to it."""

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO devices (user_id, device_id, display_name, last_seen_ts)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (user_id, device_id) DO UPDATE SET"
                " last_seen_ts = excluded.last_seen_ts,"
                " display_name = COALESCE(excluded.display_name, devices.display_name)",
                (user_id, device_id, display_name, now_ts),
            )
            conn.execute(
                "INSERT INTO access_tokens (token_hash, user_id, device_id, created_ts)"
                " VALUES (?, ?, ?, ?)",
                (token_hash, user_id, device_id, now_ts),
            )

        await self._db.write(write)

    async def get_access_token(self, token_hash: str) -> AccessToken | None:
        def query(conn: sqlite3.Connection) -> AccessToken | None:
            row = conn.execute(
                "SELECT t.user_id, t.device_id, u.is_admin FROM access_tokens t"
                " JOIN users u ON u.user_id = t.user_id"
                " WHERE t.token_hash = ? AND u.deactivated = 0",
                (token_hash,),
            ).fetchone()
            return AccessToken(row[0], row[1], bool(row[2])) if row else None

        return await self._db.read(query)

    async def delete_access_token(self, token_hash: str) -> None:
        """Log out one session: the token and its device go."""

        def write(conn: sqlite3.Connection) -> None:
            row = conn.execute(
                "SELECT user_id, device_id FROM access_tokens WHERE token_hash = ?", (token_hash,)
            ).fetchone()
            if row is None:
                return
            conn.execute("DELETE FROM access_tokens WHERE user_id = ? AND device_id = ?", row)
            conn.execute("DELETE FROM devices WHERE user_id = ? AND device_id = ?", row)

        await self._db.write(write)

    async def delete_all_access_tokens(self, user_id: str) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM access_tokens WHERE user_id = ?", (user_id,))
            conn.execute("DELETE FROM devices WHERE user_id = ?", (user_id,))

        await self._db.write(write)

    async def get_devices(self, user_id: str) -> list[Device]:
        return await self._db.read(
            lambda conn: [
                Device(*row)
                for row in conn.execute(
                    "SELECT user_id, device_id, display_name, last_seen_ts FROM devices"
                    " WHERE user_id = ? ORDER BY device_id",
                    (user_id,),
                )
            ]
        )

    async def update_device(self, user_id: str, device_id: str, display_name: str) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE devices SET display_name = ? WHERE user_id = ? AND device_id = ?",
                (display_name, user_id, device_id),
            )
            return cursor.rowcount == 1

        return await self._db.write(write)

    async def delete_device(self, user_id: str, device_id: str) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "DELETE FROM access_tokens WHERE user_id = ? AND device_id = ?",
                (user_id, device_id),
            )
            conn.execute(
                "DELETE FROM devices WHERE user_id = ? AND device_id = ?", (user_id, device_id)
            )

        await self._db.write(write)

    async def count_accounts(self) -> int:
        return await self._db.read(
            lambda conn: int(conn.execute("SELECT COUNT(*) FROM users").fetchone()[0])
        )
