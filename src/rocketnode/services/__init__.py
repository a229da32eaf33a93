"""Use cases: rooms (the one path by which any event enters a room), membership, sync,
accounts, directory, ephemeral data. Services depend on storage ports and the core only."""
