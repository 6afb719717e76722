-- Who merged a build's pull request on GitHub, when a person did (a login).
ALTER TABLE builds ADD COLUMN merged_by TEXT NOT NULL DEFAULT '';
