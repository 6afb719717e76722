-- The QA environments: one per project, kind and target, with their last
-- activity (projects[].qaTTL counts from it) and, once torn down, why.
CREATE TABLE environments (
    project      TEXT NOT NULL,
    kind         TEXT NOT NULL,
    target       TEXT NOT NULL,
    name         TEXT NOT NULL,            -- qa/<env>
    url          TEXT NOT NULL DEFAULT '',
    build_id     TEXT NOT NULL DEFAULT '', -- the newest build
    image        TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    active_at    INTEGER NOT NULL,
    warned_at    INTEGER NULL,
    teardown     TEXT NOT NULL DEFAULT '', -- why it was torn down; '' while it lives
    torn_down_at INTEGER NULL,
    commit_sha   TEXT NOT NULL DEFAULT '',
    removed      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (project, kind, target)
) STRICT;
CREATE INDEX environments_live ON environments (project, teardown, active_at);
