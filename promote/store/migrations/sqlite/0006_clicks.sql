-- The Slack clicks already handled, by a digest of what Slack signed, so that
-- a captured request replayed within its signature's window acts no more,
-- on any replica and after a restart. Rows older than an hour are deleted.
CREATE TABLE clicks (
    key TEXT PRIMARY KEY,
    at  INTEGER NOT NULL
) STRICT;
CREATE INDEX clicks_at ON clicks (at);
