-- RocketNode schema, version 1: rooms, events and the room DAG, compact state, accounts,
-- client data (receipts, account data, filters, aliases, transaction IDs).

-- A single stream position orders everything a client syncs: events, receipts, account data.
-- Backfilled events (older history fetched later) get negative positions.

CREATE TABLE rooms (
    room_id TEXT PRIMARY KEY,
    room_version TEXT NOT NULL,
    creator TEXT,
    is_public INTEGER NOT NULL DEFAULT 0,
    created_ts INTEGER NOT NULL,
    current_state_group INTEGER
);

CREATE TABLE events (
    stream_ordering INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    room_id TEXT NOT NULL,
    type TEXT NOT NULL,
    state_key TEXT,
    sender TEXT NOT NULL,
    depth INTEGER NOT NULL,
    origin_server_ts INTEGER NOT NULL,
    received_ts INTEGER NOT NULL,
    json TEXT NOT NULL,
    rejected TEXT,
    outlier INTEGER NOT NULL DEFAULT 0,
    soft_failed INTEGER NOT NULL DEFAULT 0,
    redacts TEXT,
    txn_device TEXT,
    txn_id TEXT
);
CREATE INDEX events_room_stream ON events (room_id, stream_ordering);
CREATE INDEX events_room_type_state ON events (room_id, type, state_key);

CREATE TABLE event_edges (
    event_id TEXT NOT NULL,
    prev_event_id TEXT NOT NULL,
    PRIMARY KEY (event_id, prev_event_id)
) WITHOUT ROWID;
CREATE INDEX event_edges_prev ON event_edges (prev_event_id);

CREATE TABLE event_auth (
    event_id TEXT NOT NULL,
    auth_id TEXT NOT NULL,
    PRIMARY KEY (event_id, auth_id)
) WITHOUT ROWID;

CREATE TABLE forward_extremities (
    room_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (room_id, event_id)
) WITHOUT ROWID;

-- Redaction events that have been applied: redacts -> the redaction event.
CREATE TABLE redactions (
    redacts TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (redacts, event_id)
) WITHOUT ROWID;

-- State is stored as deltas: a group holds only the entries that differ from prev_group.
-- chain_length counts the deltas down to a full snapshot (prev_group IS NULL).
CREATE TABLE state_groups (
    id INTEGER PRIMARY KEY,
    room_id TEXT NOT NULL,
    prev_group INTEGER,
    chain_length INTEGER NOT NULL
);

CREATE TABLE state_group_entries (
    group_id INTEGER NOT NULL,
    type TEXT NOT NULL,
    state_key TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (group_id, type, state_key)
) WITHOUT ROWID;

-- The state before and after each event in the room graph (not for outliers).
CREATE TABLE event_state (
    event_id TEXT PRIMARY KEY,
    before_group INTEGER NOT NULL,
    after_group INTEGER NOT NULL
) WITHOUT ROWID;

-- The room's current state, materialised for fast lookups.
CREATE TABLE current_state (
    room_id TEXT NOT NULL,
    type TEXT NOT NULL,
    state_key TEXT NOT NULL,
    event_id TEXT NOT NULL,
    membership TEXT,
    PRIMARY KEY (room_id, type, state_key)
) WITHOUT ROWID;
CREATE INDEX current_state_member ON current_state (state_key, type);

-- Every change of a local user's membership, with its stream position (for /sync).
CREATE TABLE local_membership (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    membership TEXT NOT NULL,
    event_id TEXT NOT NULL,
    stream_ordering INTEGER NOT NULL,
    forgotten INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, room_id)
) WITHOUT ROWID;
CREATE INDEX local_membership_stream ON local_membership (user_id, stream_ordering);

CREATE TABLE users (
    user_id TEXT PRIMARY KEY,
    password_hash TEXT,
    is_admin INTEGER NOT NULL DEFAULT 0,
    created_ts INTEGER NOT NULL,
    deactivated INTEGER NOT NULL DEFAULT 0,
    displayname TEXT,
    avatar_url TEXT
);

CREATE TABLE devices (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    display_name TEXT,
    last_seen_ts INTEGER,
    PRIMARY KEY (user_id, device_id)
) WITHOUT ROWID;

-- Access tokens are stored as SHA-256 hashes, never in the clear.
CREATE TABLE access_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    created_ts INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX access_tokens_user ON access_tokens (user_id, device_id);

CREATE TABLE transaction_ids (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    created_ts INTEGER NOT NULL,
    PRIMARY KEY (user_id, device_id, txn_id)
) WITHOUT ROWID;

CREATE TABLE room_aliases (
    alias TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    creator TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX room_aliases_room ON room_aliases (room_id);

CREATE TABLE receipts (
    room_id TEXT NOT NULL,
    receipt_type TEXT NOT NULL,
    user_id TEXT NOT NULL,
    thread_id TEXT NOT NULL DEFAULT '',
    event_id TEXT NOT NULL,
    data TEXT NOT NULL,
    stream_ordering INTEGER NOT NULL,
    PRIMARY KEY (room_id, receipt_type, user_id, thread_id)
) WITHOUT ROWID;
CREATE INDEX receipts_stream ON receipts (stream_ordering);

CREATE TABLE account_data (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL DEFAULT '',
    type TEXT NOT NULL,
    content TEXT NOT NULL,
    stream_ordering INTEGER NOT NULL,
    PRIMARY KEY (user_id, room_id, type)
) WITHOUT ROWID;
CREATE INDEX account_data_stream ON account_data (user_id, stream_ordering);

CREATE TABLE filters (
    user_id TEXT NOT NULL,
    filter_id INTEGER NOT NULL,
    filter_json TEXT NOT NULL,
    PRIMARY KEY (user_id, filter_id)
) WITHOUT ROWID;

CREATE TABLE push_rules (
    user_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    kind TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    rule TEXT,
    enabled INTEGER,
    priority INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, scope, kind, rule_id)
) WITHOUT ROWID;
