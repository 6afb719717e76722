-- promotebot's schema for the embedded SQLite store.
-- Times are INTEGER Unix microseconds, UTC: they compare as numbers and keep
-- the microsecond precision PostgreSQL has. Absent text is '', not NULL.

CREATE TABLE builds (
    id                TEXT PRIMARY KEY,
    project           TEXT NOT NULL,
    image             TEXT NOT NULL,
    kind              TEXT NOT NULL,
    target            TEXT NOT NULL,
    commit_sha        TEXT NOT NULL DEFAULT '',
    author            TEXT NOT NULL DEFAULT '',
    build_url         TEXT NOT NULL DEFAULT '',
    state             TEXT NOT NULL,
    environment       TEXT NOT NULL DEFAULT '',
    url               TEXT NOT NULL DEFAULT '',
    qa_commit         TEXT NOT NULL DEFAULT '',
    pull_request      TEXT NOT NULL DEFAULT '',
    production_commit TEXT NOT NULL DEFAULT '',
    error_message     TEXT NOT NULL DEFAULT '',
    superseded_by     TEXT NOT NULL DEFAULT '',
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
) STRICT;

-- The same build reported twice is one build (promote.Build.Key).
CREATE UNIQUE INDEX builds_key ON builds (project, image, kind, target);
-- Finding the active builds a new one supersedes.
CREATE INDEX builds_target ON builds (project, kind, target, state);

CREATE TABLE transitions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    build_id   TEXT NOT NULL REFERENCES builds (id),
    from_state TEXT NOT NULL,
    to_state   TEXT NOT NULL,
    event      TEXT NOT NULL,
    at         INTEGER NOT NULL
) STRICT;

CREATE INDEX transitions_build ON transitions (build_id, id);

CREATE TABLE approvals (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    build_id TEXT NOT NULL REFERENCES builds (id),
    user_id  TEXT NOT NULL,
    name     TEXT NOT NULL DEFAULT '',
    verdict  TEXT NOT NULL CHECK (verdict IN ('approved', 'rejected')),
    reason   TEXT NOT NULL DEFAULT '',
    at       INTEGER NOT NULL,
    UNIQUE (build_id, user_id)
) STRICT;

-- Jobs are kept once ended (status done or failed) for the record; ids are
-- never reused, so a late worker cannot end someone else's job.
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL,
    build_id     TEXT REFERENCES builds (id),
    payload      TEXT NOT NULL DEFAULT '',
    run_at       INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    leased_by    TEXT,
    leased_until INTEGER,
    created_at   INTEGER NOT NULL,
    finished_at  INTEGER
) STRICT;

CREATE INDEX jobs_due ON jobs (run_at, id) WHERE status = 'pending';
CREATE INDEX jobs_build ON jobs (build_id);
