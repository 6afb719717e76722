-- The Slack messages posted about a build, so that they are updated in place
-- and never posted twice: one per build, role and recipient.
CREATE TABLE messages (
    build_id  TEXT NOT NULL REFERENCES builds (id),
    role      TEXT NOT NULL,            -- channel, owner, qa, …
    recipient TEXT NOT NULL DEFAULT '', -- the user of a DM; empty for the channel
    channel   TEXT NOT NULL,            -- the conversation the message is in
    ts        TEXT NOT NULL,            -- Slack's message timestamp (its id)
    at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (build_id, role, recipient)
);
