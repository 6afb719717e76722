-- Counting builds by state (the promotebot_builds gauge, read at every
-- scrape) from the index instead of the table.
CREATE INDEX builds_state ON builds (state);
