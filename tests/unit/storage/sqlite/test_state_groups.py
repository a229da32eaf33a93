"""How SQLite stores state groups: deltas, with a full snapshot after a bounded chain."""

from __future__ import annotations

from pathlib import Path

from rocketnode.storage.records import NewStateGroup
from rocketnode.storage.sqlite import open_sqlite
from rocketnode.storage.sqlite.state import MAX_CHAIN_LENGTH

ROOM = "!chain:storage.test"


async def test_deltas_are_small_and_chains_are_cut_by_a_snapshot(tmp_path: Path) -> None:
    stores, db = await open_sqlite(str(tmp_path / "state.db"), readers=1)
    try:
        base_state = {("m.room.member", f"@u{i}:s.test"): f"$m{i}" for i in range(20)}
        group = await stores.state.store_state_group(ROOM, NewStateGroup(None, base_state))
        groups = [group]
        for i in range(MAX_CHAIN_LENGTH + 1):
            group = await stores.state.store_state_group(
                ROOM, NewStateGroup(group, {("m.room.name", ""): f"$name{i}"})
            )
            groups.append(group)

        rows = await db.read(lambda conn: conn.execute(
            "SELECT g.id, g.prev_group, g.chain_length, COUNT(e.group_id)"
            " FROM state_groups g LEFT JOIN state_group_entries e ON e.group_id = g.id"
            " GROUP BY g.id ORDER BY g.id"
        ).fetchall())
        by_id = {row[0]: row[1:] for row in rows}
        assert by_id[groups[0]] == (None, 0, 20)
        for index in range(1, MAX_CHAIN_LENGTH + 1):  # one-entry deltas up to the limit
            assert by_id[groups[index]] == (groups[index - 1], index, 1)
        assert by_id[groups[-1]] == (None, 0, 21)  # then a full snapshot
        expected = {**base_state, ("m.room.name", ""): f"$name{MAX_CHAIN_LENGTH}"}
        assert await stores.state.get_state_group(groups[-1]) == expected
    finally:
        await stores.close()
