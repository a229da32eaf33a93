-- RocketNode schema, version 4: extended profile fields (client-server API v1.16 "Profiles").
-- displayname and avatar_url stay in users; every other field (m.tz, custom namespaced keys)
-- is one row here, its value kept as JSON.

CREATE TABLE profile_fields (
    user_id TEXT NOT NULL,
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (user_id, field)
) WITHOUT ROWID;
