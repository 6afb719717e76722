// Package gitops plugs the config repository into promote: it turns the
// domain's builds, approvals and promotions into overlay edits (package
// overlay) with their trailers (package trailer) and applies them through
// the persistent clone (package clone).
package gitops

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/overlay"
	"github.com/promotebot/promotebot/gitops/trailer"
	"github.com/promotebot/promotebot/promote"
)

// ConfigRepo is the config repository as the promote domain uses it: the
// persistent clone, written with overlay edits and read for what a
// revision holds (promote.Revisions).
type ConfigRepo struct {
	repo     *clone.Repo
	ancestry answers // of Contains
}

var _ promote.ConfigRepo = (*ConfigRepo)(nil)

// NewConfigRepo adapts r to promote.ConfigRepo.
func NewConfigRepo(r *clone.Repo) *ConfigRepo { return &ConfigRepo{repo: r} }

// Check implements promote.ConfigRepo; see Checker.Check.
func (c *ConfigRepo) Check(p promote.Project, kind promote.Kind, target, image string) (string, string, error) {
	return Checker{}.Check(p, kind, target, image)
}

// Checker implements promote.BuildChecker without a clone.
type Checker struct{}

var _ promote.BuildChecker = Checker{}

// Check refuses images and targets the project may not deploy and predicts
// the environment. The prediction is the plain env name; a collision found
// at deploy time moves it to the hashed one.
func (Checker) Check(p promote.Project, kind promote.Kind, target, image string) (string, string, error) {
	if _, err := overlay.QAOverlay(p, kind, target, image, overlay.Meta{}); err != nil {
		return "", "", promote.Invalid(err)
	}
	env, err := overlay.EnvName(kind, target)
	if err != nil {
		return "", "", promote.Invalid(err)
	}
	return "qa/" + env, "https://" + overlay.QAHost(p, kind, env), nil
}

// Fallback implements promote.BuildChecker: the target's hashed name.
func (Checker) Fallback(p promote.Project, kind promote.Kind, target string) (string, string, error) {
	env, err := overlay.HashedEnvName(kind, target)
	if err != nil {
		return "", "", promote.Invalid(err)
	}
	return "qa/" + env, "https://" + overlay.QAHost(p, kind, env), nil
}

// Fallback implements promote.ConfigRepo; see Checker.Fallback.
func (c *ConfigRepo) Fallback(p promote.Project, kind promote.Kind, target string) (string, string, error) {
	return Checker{}.Fallback(p, kind, target)
}

// DeployQA implements promote.ConfigRepo.
func (c *ConfigRepo) DeployQA(ctx context.Context, p promote.Project, b promote.Build) (promote.QADeployment, error) {
	edit, err := overlay.QAOverlayIn(p, b.Kind, b.Target, b.Image, strings.TrimPrefix(b.Environment, "qa/"),
		overlay.Meta{Build: b.ID, Source: source(b), Author: b.Author, BuiltAt: stamp(b.BuiltAt), ReceivedAt: stamp(b.CreatedAt)})
	if err != nil {
		return promote.QADeployment{}, promote.Invalid(err)
	}
	res, err := c.repo.Apply(ctx, edit)
	if err != nil {
		return promote.QADeployment{}, err
	}
	commit := res.Commit
	if commit == "" {
		commit = res.Base // already deployed, by an earlier attempt of this build
	}
	env, url := overlay.Landed(p, b.Kind, res.Trailers)
	return promote.QADeployment{Environment: env, URL: url, Commit: commit}, nil
}

// Promote implements promote.ConfigRepo: the production overlay's image
// entry is set to the build's image, in place, and committed to the config
// branch with the build, source, approvals and promoter in its trailers.
func (c *ConfigRepo) Promote(ctx context.Context, p promote.Project, b promote.Build, approvals []promote.Approval,
	promoter promote.Person) (string, error) {
	edit, err := promotion(p, b, approvals, promoter, nil)
	if err != nil {
		return "", err
	}
	// An earlier attempt may have pushed and crashed before it could say
	// so, and another build may have gone to production since: the change
	// must not be made a second time on top of that one.
	once := productionOnce(b, approvals)
	res, err := c.repo.ApplyOnce(ctx, once, edit)
	if err != nil {
		return "", err
	}
	if res.Commit == "" {
		return res.Base, nil // already in production, by an earlier attempt
	}
	return res.Commit, nil
}

// productionOnce names build b's production commit; it cannot be older
// than the build, nor than its last approval.
func productionOnce(b promote.Build, approvals []promote.Approval) clone.Once {
	since := b.CreatedAt
	for _, a := range approvals {
		if a.At.After(since) {
			since = a.At
		}
	}
	return clone.Once{Since: since, Trailers: []trailer.Trailer{
		{Key: trailer.Build, Value: b.ID},
		{Key: trailer.Environment, Value: trailer.Production},
	}}
}

// PromoteBranch implements promote.ConfigRepo: the same change as Promote,
// pushed to branch, rebuilt on the config branch's tip.
func (c *ConfigRepo) PromoteBranch(ctx context.Context, p promote.Project, b promote.Build, approvals []promote.Approval,
	promoter promote.Person, branch string) (promote.PromotionCommit, error) {
	var diff string
	edit, err := promotion(p, b, approvals, promoter, &diff)
	if err != nil {
		return promote.PromotionCommit{}, err
	}
	res, err := c.repo.ApplyToBranch(ctx, branch, edit)
	if err != nil {
		return promote.PromotionCommit{}, err
	}
	return branchCommit(res, diff), nil
}

// branchCommit tells what ApplyToBranch did, for a pull request: the
// commit, or when nothing changed the tip it would have been made on.
func branchCommit(res clone.Result, diff string) promote.PromotionCommit {
	var trailers strings.Builder
	for _, t := range res.Trailers {
		fmt.Fprintf(&trailers, "%s: %s\n", t.Key, t.Value)
	}
	pc := promote.PromotionCommit{SHA: res.Commit, Subject: res.Subject, Trailers: trailers.String(), Diff: diff}
	if !res.Changed {
		pc.SHA, pc.Unchanged = res.Base, true
	}
	return pc
}

// promotion is the production edit of a build with its trailers; diff, when
// not nil, receives what it does to the rendered manifests.
func promotion(p promote.Project, b promote.Build, approvals []promote.Approval, promoter promote.Person,
	diff *string) (clone.Edit, error) {
	meta := overlay.Meta{Build: b.ID, Source: source(b), Author: b.Author, BuiltAt: stamp(b.BuiltAt), ReceivedAt: stamp(b.CreatedAt),
		PromotedBy:        trailer.Person(promoter.Name, promoter.ID),
		RequiredApprovals: strconv.Itoa(p.RequiredApprovals)}
	for _, a := range approvals {
		meta.ApprovedBy = append(meta.ApprovedBy, trailer.Approval(a.Name, a.User, a.At))
	}
	edit, err := overlay.ProductionImage(p, b.Image, meta, diff)
	if err != nil {
		return nil, promote.Invalid(err)
	}
	return edit, nil
}

// source formats the Promotebot-Source trailer: "branch feature/login @ <commit> <CI URL>".
func source(b promote.Build) string {
	parts := []string{string(b.Kind), b.Target}
	if b.Commit != "" {
		parts = append(parts, "@", b.Commit)
	}
	if b.BuildURL != "" {
		parts = append(parts, b.BuildURL)
	}
	return strings.Join(parts, " ")
}

// stamp formats a time for a trailer (RFC 3339, UTC); "" for none.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
