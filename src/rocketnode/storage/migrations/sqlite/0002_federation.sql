-- RocketNode schema, version 2: federation. Remote signing keys, the durable outbound queue
-- per destination, destination health, and inbound transaction results (idempotency).

-- Verify keys of remote servers. valid_until_ts bounds the events a key may verify;
-- expired_ts is set for keys a server lists as old.
CREATE TABLE server_keys (
    server_name TEXT NOT NULL,
    key_id TEXT NOT NULL,
    verify_key TEXT NOT NULL,
    valid_until_ts INTEGER NOT NULL,
    fetched_ts INTEGER NOT NULL,
    PRIMARY KEY (server_name, key_id)
) WITHOUT ROWID;

-- The last signed /_matrix/key/v2/server response of each server (served as a notary).
CREATE TABLE server_key_responses (
    server_name TEXT PRIMARY KEY,
    response TEXT NOT NULL,
    valid_until_ts INTEGER NOT NULL,
    fetched_ts INTEGER NOT NULL
) WITHOUT ROWID;

-- PDUs waiting to be sent to a destination, queued in the transaction that stored the event.
CREATE TABLE outbound_pdus (
    destination TEXT NOT NULL,
    stream_ordering INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    PRIMARY KEY (destination, stream_ordering)
) WITHOUT ROWID;

CREATE TABLE destinations (
    destination TEXT PRIMARY KEY,
    retry_after_ts INTEGER NOT NULL DEFAULT 0,
    retry_interval_ms INTEGER NOT NULL DEFAULT 0,
    failing_since_ts INTEGER,
    last_success_ts INTEGER,
    last_error TEXT,
    last_error_ts INTEGER
) WITHOUT ROWID;

CREATE TABLE inbound_transactions (
    origin TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    response TEXT NOT NULL,
    received_ts INTEGER NOT NULL,
    PRIMARY KEY (origin, txn_id)
) WITHOUT ROWID;
