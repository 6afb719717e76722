-- When CI built the image, when it said (builtAt): the lead time of a change
-- counts from it.
ALTER TABLE builds ADD COLUMN built_at INTEGER NULL;
