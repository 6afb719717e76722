package forge

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	gh "github.com/google/go-github/v60/github"

	"github.com/promotebot/promotebot/promote"
)

// The Client mirrors builds as deployments on any repository its token (or
// its App installation) reaches with deployments: write, not only on the
// config repository: a project's source repository is named in each call.
var _ promote.Deployments = (*Client)(nil)

// deploymentPayload is a deployment's payload: the build it mirrors, which
// FindDeployment looks for.
type deploymentPayload struct {
	Build string `json:"build"`
}

// CreateDeployment implements promote.Deployments: a deployment of r.Ref
// that merges nothing (auto_merge false) and waits for no status check
// (required_contexts []): the build was made and deployed already.
func (c *Client) CreateDeployment(ctx context.Context, repo string, r promote.DeploymentRequest) (int64, error) {
	owner, name, err := splitRepository(repo)
	if err != nil {
		return 0, promote.Permanent(err)
	}
	noMerge, contexts := false, []string{}
	d, _, err := c.api.Repositories.CreateDeployment(ctx, owner, name, &gh.DeploymentRequest{
		Ref: &r.Ref, Environment: &r.Environment, Description: &r.Description,
		TransientEnvironment: &r.Transient, ProductionEnvironment: &r.Production,
		AutoMerge: &noMerge, RequiredContexts: &contexts, Payload: deploymentPayload{Build: r.BuildID},
	})
	what := fmt.Sprintf("create deployment of %s to %s on %s", r.Ref, r.Environment, repo)
	if err != nil {
		return 0, apiError(what, err)
	}
	if d.GetID() == 0 {
		return 0, fmt.Errorf("github %s: the answer names no deployment", what)
	}
	return d.GetID(), nil
}

// FindDeployment implements promote.Deployments: of the deployments of
// r.Ref to r.Environment (the newest hundred), the one whose payload names
// r.BuildID.
func (c *Client) FindDeployment(ctx context.Context, repo string, r promote.DeploymentRequest) (int64, bool, error) {
	owner, name, err := splitRepository(repo)
	if err != nil {
		return 0, false, promote.Permanent(err)
	}
	ds, _, err := c.api.Repositories.ListDeployments(ctx, owner, name, &gh.DeploymentsListOptions{
		Ref: r.Ref, Environment: r.Environment, ListOptions: gh.ListOptions{PerPage: 100},
	})
	if err != nil {
		return 0, false, apiError(fmt.Sprintf("list deployments of %s to %s on %s", r.Ref, r.Environment, repo), err)
	}
	for _, d := range ds {
		var p deploymentPayload
		if json.Unmarshal(d.Payload, &p) == nil && p.Build == r.BuildID {
			return d.GetID(), true, nil
		}
	}
	return 0, false, nil
}

// CreateDeploymentStatus implements promote.Deployments. auto_inactive is
// false: the bot says itself when a deployment is no longer live.
func (c *Client) CreateDeploymentStatus(ctx context.Context, repo string, id int64, st promote.DeploymentStatus) error {
	owner, name, err := splitRepository(repo)
	if err != nil {
		return promote.Permanent(err)
	}
	state, autoInactive := string(st.State), false
	_, _, err = c.api.Repositories.CreateDeploymentStatus(ctx, owner, name, id, &gh.DeploymentStatusRequest{
		State: &state, EnvironmentURL: optional(st.EnvironmentURL), LogURL: optional(st.LogURL),
		Description: optional(st.Description), AutoInactive: &autoInactive,
	})
	if err != nil {
		return apiError(fmt.Sprintf("post %s status of deployment %d on %s", state, id, repo), err)
	}
	return nil
}

// splitRepository reads "owner/name".
func splitRepository(full string) (owner, name string, err error) {
	owner, name, ok := strings.Cut(full, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("github repository %q: want owner/name", full)
	}
	return owner, name, nil
}

// optional is s, or nil for "" (the field is then left out).
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
