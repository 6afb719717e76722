-- A project's builds newest first (Find), read without sorting all of
-- them: a project with thousands of builds costs what its newest cost.
CREATE INDEX builds_project_created ON builds (project, created_at, id);
