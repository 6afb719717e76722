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
    created_at   TIMESTAMPTZ NOT NULL,
    active_at    TIMESTAMPTZ NOT NULL,
    warned_at    TIMESTAMPTZ NULL,
    teardown     TEXT NOT NULL DEFAULT '', -- why it was torn down; '' while it lives
    torn_down_at TIMESTAMPTZ NULL,
    commit_sha   TEXT NOT NULL DEFAULT '',
    removed      BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (project, kind, target)
);
CREATE INDEX environments_live ON environments (project, teardown, active_at);
