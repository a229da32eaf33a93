-- RocketNode schema, version 7: answers to inbound transactions are kept for replays for a day
-- (federation/inbound.py prunes older ones), found by when they were received.
CREATE INDEX inbound_transactions_received ON inbound_transactions (received_ts);
