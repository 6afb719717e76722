-- What Argo CD or Flux reported of a build's QA and production commits
-- (promote.Rollouts as JSON; '' for none).
ALTER TABLE builds ADD COLUMN rollout TEXT NOT NULL DEFAULT '';
