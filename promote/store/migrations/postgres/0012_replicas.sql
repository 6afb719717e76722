-- The bot's processes sharing the store, each with its last heartbeat: the
-- jobs of one whose heartbeat stopped are taken up without waiting for
-- their leases.
CREATE TABLE replicas (
    name    TEXT PRIMARY KEY,
    beat_at TIMESTAMPTZ NOT NULL
);
