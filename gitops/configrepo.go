package gitops

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/promotebot/promotebot/promote"
)

// ConfigRepo is the config repository as the promote domain uses it: a Repo
// and the projects of the configuration.
type ConfigRepo struct {
	repo *Repo
}

var _ promote.ConfigRepo = (*ConfigRepo)(nil)

// NewConfigRepo adapts r to promote.ConfigRepo.
func NewConfigRepo(r *Repo) *ConfigRepo { return &ConfigRepo{repo: r} }

// ProjectOf is what the writer needs of a configured project.
func ProjectOf(p promote.Project) Project {
	return Project{ID: p.ID, Path: p.Path, Image: p.Image, Host: p.Host(), Service: p.Service}
}

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
	gp := ProjectOf(p)
	if _, err := QAOverlay(gp, Kind(kind), target, image, Meta{}); err != nil {
		return "", "", invalid(err)
	}
	env, err := EnvName(Kind(kind), target)
	if err != nil {
		return "", "", invalid(err)
	}
	return "qa/" + env, "https://" + QAHost(gp, Kind(kind), env), nil
}

// DeployQA implements promote.ConfigRepo.
func (c *ConfigRepo) DeployQA(ctx context.Context, p promote.Project, b promote.Build) (promote.QADeployment, error) {
	edit, err := QAOverlay(ProjectOf(p), Kind(b.Kind), b.Target, b.Image, Meta{Build: b.ID, Source: Source(b), Author: b.Author})
	if err != nil {
		return promote.QADeployment{}, invalid(err)
	}
	res, err := c.repo.Apply(ctx, edit)
	if err != nil {
		if terminal(err) {
			return promote.QADeployment{}, invalid(err)
		}
		return promote.QADeployment{}, err
	}
	commit := res.Commit
	if commit == "" {
		commit = res.Base // already deployed, by an earlier attempt of this build
	}
	return promote.QADeployment{Environment: res.Env, URL: res.URL, Commit: commit}, nil
}

// Promote implements promote.ConfigRepo: the production overlay's image
// entry is set to the build's image, in place, and committed to the config
// branch with the build, source, approvals and promoter in its trailers.
func (c *ConfigRepo) Promote(ctx context.Context, p promote.Project, b promote.Build, approvals []promote.Approval,
	promoter promote.Person) (string, error) {
	edit, err := promotion(p, b, approvals, promoter)
	if err != nil {
		return "", err
	}
	// An earlier attempt may have pushed and crashed before it could say
	// so, and another build may have gone to production since: the change
	// must not be made a second time on top of that one.
	once := productionOnce(b, approvals)
	res, err := c.repo.ApplyOnce(ctx, once, edit)
	if err != nil {
		return "", sortErr(err)
	}
	if res.Commit == "" {
		return res.Base, nil // already in production, by an earlier attempt
	}
	return res.Commit, nil
}

// productionOnce names build b's production commit; it cannot be older
// than the build, nor than its last approval.
func productionOnce(b promote.Build, approvals []promote.Approval) Once {
	since := b.CreatedAt
	for _, a := range approvals {
		if a.At.After(since) {
			since = a.At
		}
	}
	return Once{Since: since, Trailers: []Trailer{
		{Key: "Promotebot-Build", Value: b.ID},
		{Key: "Promotebot-Environment", Value: "production"},
	}}
}

// PromoteBranch implements promote.ConfigRepo: the same change as Promote,
// pushed to branch, rebuilt on the config branch's tip.
func (c *ConfigRepo) PromoteBranch(ctx context.Context, p promote.Project, b promote.Build, approvals []promote.Approval,
	promoter promote.Person, branch string) (promote.PromotionCommit, error) {
	edit, err := promotion(p, b, approvals, promoter)
	if err != nil {
		return promote.PromotionCommit{}, err
	}
	res, err := c.repo.ApplyToBranch(ctx, branch, edit)
	if err != nil {
		return promote.PromotionCommit{}, sortErr(err)
	}
	var trailers strings.Builder
	for _, t := range res.Trailers {
		fmt.Fprintf(&trailers, "%s: %s\n", t.Key, t.Value)
	}
	pc := promote.PromotionCommit{SHA: res.Commit, Subject: res.Subject, Trailers: trailers.String(), Diff: res.Diff}
	if !res.Changed {
		pc.SHA, pc.Unchanged = res.Base, true
	}
	return pc, nil
}

// promotion is the production edit of a build with its trailers.
func promotion(p promote.Project, b promote.Build, approvals []promote.Approval, promoter promote.Person) (Edit, error) {
	meta := Meta{Build: b.ID, Source: Source(b), Author: b.Author, PromotedBy: Person(promoter.Name, promoter.ID),
		RequiredApprovals: strconv.Itoa(p.RequiredApprovals)}
	for _, a := range approvals {
		meta.ApprovedBy = append(meta.ApprovedBy, Person(a.Name, a.User)+" "+a.At.UTC().Format(time.RFC3339))
	}
	edit, err := ProductionImage(ProjectOf(p), b.Image, meta)
	if err != nil {
		return nil, invalid(err)
	}
	return edit, nil
}

// sortErr marks the failures no retry can fix as promote.ErrInvalid.
func sortErr(err error) error {
	if terminal(err) {
		return invalid(err)
	}
	return err
}

// Person formats a person for the Approved-by and Promoted-by trailers:
// "<Slack name> <slack:U…>", the name left out when unknown. Line breaks and
// angle brackets in a name are dropped, so a name cannot forge a trailer.
func Person(name, id string) string {
	name = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '<' || r == '>' {
			return -1
		}
		return r
	}, strings.TrimSpace(name))
	if name == "" {
		return "<slack:" + id + ">"
	}
	return name + " <slack:" + id + ">"
}

// Source formats the Promotebot-Source trailer: "branch feature/login @ <commit> <CI URL>".
func Source(b promote.Build) string {
	parts := []string{string(b.Kind), b.Target}
	if b.Commit != "" {
		parts = append(parts, "@", b.Commit)
	}
	if b.BuildURL != "" {
		parts = append(parts, b.BuildURL)
	}
	return strings.Join(parts, " ")
}

// Terminal tells the failures of Open and Apply that no retry can fix (bad
// credentials, a missing repository, a refused push, an overlay that does
// not render, …); others are worth retrying.
func Terminal(err error) bool { return terminal(err) || isTerminal(err) }

// terminal tells the failures that no retry can fix.
func terminal(err error) bool {
	var render *RenderError
	var rejected *PushRejectedError
	return errors.As(err, &render) || errors.As(err, &rejected) ||
		errors.Is(err, ErrEnvCollision) || errors.Is(err, ErrInvalidPath) ||
		errors.Is(err, ErrNoService) || errors.Is(err, ErrImageMismatch) ||
		errors.Is(err, ErrRemoteReference) || errors.Is(err, ErrKustomization) ||
		errors.Is(err, ErrAmbiguousImage) || errors.Is(err, ErrNoOverlay)
}

func invalid(err error) error {
	return fmt.Errorf("%w: %w", promote.ErrInvalid, err)
}
