-- RocketNode schema, version 6: the topological order of a room's timeline, (depth,
-- stream_ordering), which /messages and /context paginate in (client-server API "Pagination").
-- stream_ordering is the rowid, so the index ends with it implicitly; it is named for clarity.
CREATE INDEX events_room_topological ON events (room_id, depth, stream_ordering);
