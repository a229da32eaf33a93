-- RocketNode schema, version 5: the state event a state event replaced (for clients'
-- unsigned.replaces_state and prev_content).
ALTER TABLE events ADD COLUMN replaces_state TEXT;
