-- The GitHub Deployments that mirror a build on its project's source
-- repository (promote.BuildDeployments as JSON; '' for none).
ALTER TABLE builds ADD COLUMN deployments TEXT NOT NULL DEFAULT '';
