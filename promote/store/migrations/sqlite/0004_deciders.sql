-- Who deployed or closed a build (Slack user ids).
ALTER TABLE builds ADD COLUMN promoted_by TEXT NOT NULL DEFAULT '';
ALTER TABLE builds ADD COLUMN closed_by TEXT NOT NULL DEFAULT '';
