package promote

import (
	"context"
	"fmt"
)

// claimScan bounds how many of a project's builds, newest first, are looked
// at to settle a new build's environment.
const claimScan = 1000

// settleEnv gives the environment and URL a new build of kind and target
// will get, so that the answer to CI names what it will be deployed to:
// the environment the target's earlier builds had, else its plain name
// (env and url, from Check) unless a build of another target holds that,
// else the target's own hashed name (Fallback). DeployQA takes the name
// recorded on the build whichever target deploys first.
func (h *webhook) settleEnv(ctx context.Context, p Project, kind Kind, target, env, url string) (string, string, error) {
	builds, err := h.store.Find(ctx, p.ID, States, claimScan)
	if err != nil {
		return "", "", fmt.Errorf("find builds of %s: %w", p.ID, err)
	}
	taken := false
	for _, b := range builds { // newest first
		switch {
		case b.Environment == "":
		case b.Kind == kind && b.Target == target:
			return b.Environment, b.URL, nil
		case b.Environment == env:
			taken = true
		}
	}
	if !taken {
		return env, url, nil
	}
	return h.repo.Fallback(p, kind, target)
}

// yieldEnv is settleEnv's second look, once the build is stored: when a
// build of another target that holds the same name was stored at the same
// moment (two replicas, or two calls racing), the older build keeps the
// name and this one moves to its hashed name before anything deploys it.
func (h *webhook) yieldEnv(ctx context.Context, p Project, stored Build) (Build, error) {
	builds, err := h.store.Find(ctx, p.ID, States, claimScan)
	if err != nil {
		return stored, fmt.Errorf("find builds of %s: %w", p.ID, err)
	}
	for _, b := range builds {
		if b.Environment != stored.Environment || (b.Kind == stored.Kind && b.Target == stored.Target) || b.ID >= stored.ID {
			continue
		}
		env, url, err := h.repo.Fallback(p, stored.Kind, stored.Target)
		if err != nil {
			return stored, err
		}
		return h.store.Edit(ctx, stored.ID, func(b *Build) error {
			b.Environment, b.URL = env, url
			return nil
		})
	}
	return stored, nil
}
