-- The latest request to put an earlier image back in production in place
-- of a build's (promote.Rollback as JSON; '' for none).
ALTER TABLE builds ADD COLUMN rollback TEXT NOT NULL DEFAULT '';
