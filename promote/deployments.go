package promote

import (
	"context"
	"errors"
	"fmt"
)

// Deployments mirrors builds on their project's source repository
// (projects[].sourceRepository, "owner/name") as GitHub Deployments, so that
// the developer's pull request shows where its commit runs (package forge).
// Errors are classified like the Forge's: a *RetryAfterError says when to
// try again, a permanent one (IsPermanent) is a refusal no retry can fix
// (an unknown ref, a token without deployments: write), anything else is
// retried with backoff.
type Deployments interface {
	// CreateDeployment creates a deployment of r.Ref to r.Environment and
	// returns its id.
	CreateDeployment(ctx context.Context, repo string, r DeploymentRequest) (id int64, err error)
	// FindDeployment returns the deployment CreateDeployment made for r
	// (the same ref, environment and build); ok is false when there is none.
	FindDeployment(ctx context.Context, repo string, r DeploymentRequest) (id int64, ok bool, err error)
	// CreateDeploymentStatus posts a status of deployment id.
	CreateDeploymentStatus(ctx context.Context, repo string, id int64, st DeploymentStatus) error
}

// DeploymentRequest is a deployment to create.
type DeploymentRequest struct {
	// Ref is the source commit the build was made from (Build.Commit).
	Ref string
	// Environment is "qa/<env>" or "production".
	Environment string
	// Transient is set for a QA environment: it goes away (teardown).
	Transient bool
	// Production is set for production.
	Production bool
	// Description is the image.
	Description string
	// BuildID goes into the deployment's payload: FindDeployment looks for it.
	BuildID string
}

// DeploymentState is the state of a deployment status; the names are
// GitHub's.
type DeploymentState string

// The states the bot posts.
const (
	DeploymentInProgress DeploymentState = "in_progress"
	DeploymentSuccess    DeploymentState = "success"
	DeploymentFailure    DeploymentState = "failure"
	DeploymentInactive   DeploymentState = "inactive"
)

// DeploymentStatus is a status to post on a deployment.
type DeploymentStatus struct {
	State DeploymentState
	// EnvironmentURL is where the build runs: the QA URL, or the project's.
	EnvironmentURL string
	// LogURL links to the config-repository commit, when it has a web view.
	LogURL string
	// Description says why, for people (at most 140 characters).
	Description string
}

// Deployment is the record of one deployment mirroring a build in one
// environment, kept on the build so that each is created once and each
// status posted once.
type Deployment struct {
	// Environment is the deployment's: "qa/<env>" or "production".
	Environment string `json:"environment"`
	// ID is GitHub's; 0 from when creation begins until it is known (a
	// run that finds 0 looks the deployment up before it creates one), and
	// for one never made because it was no longer wanted (State inactive).
	ID int64 `json:"id,omitempty"`
	// State is the last status posted; "" before the first.
	State DeploymentState `json:"state,omitempty"`
	// Refused is why GitHub refused the deployment or a status of it for
	// good: the deployment is then left alone.
	Refused string `json:"refused,omitempty"`
}

// BuildDeployments are a build's deployment records: QA once its overlay was
// committed, production once its promotion was.
type BuildDeployments struct {
	QA         *Deployment `json:"qa,omitempty"`
	Production *Deployment `json:"production,omitempty"`
}

// Of returns the record for env, nil when there is none.
func (d BuildDeployments) Of(env RolloutEnv) *Deployment {
	if env == RolloutProduction {
		return d.Production
	}
	return d.QA
}

// with returns d with env's record replaced by r.
func (d BuildDeployments) with(env RolloutEnv, r *Deployment) BuildDeployments {
	if env == RolloutProduction {
		d.Production = r
	} else {
		d.QA = r
	}
	return d
}

// maxDescription is GitHub's limit on a deployment's or a status's
// description.
const maxDescription = 140

// errDeploymentMoved ends an Edit whose deployment record changed meanwhile:
// the job fails, and its retry looks afresh.
var errDeploymentMoved = errors.New("the deployment record changed meanwhile")

// deploymentStep is what one of a build's deployments should say now.
type deploymentStep struct {
	env    RolloutEnv
	req    DeploymentRequest
	status DeploymentStatus
}

// due reports whether the record rec does not say st yet and the bot
// still speaks for it: a refused deployment is left alone, and none is
// created only to be inactive.
func (st deploymentStep) due(rec *Deployment) bool {
	switch {
	case rec == nil:
		return st.status.State != DeploymentInactive
	case rec.Refused != "":
		return false
	}
	return rec.State != st.status.State
}

// deploymentSteps returns the deployments of build id that do not say what
// they should yet, with the build and its source repository; none when the
// bot has no Deployments, the project names no source repository, or CI
// sent no commit.
func (s *Service) deploymentSteps(ctx context.Context, id string) (Build, string, []deploymentStep, error) {
	if s.Deployments == nil {
		return Build{}, "", nil, nil
	}
	b, err := s.Store.Get(ctx, id)
	if err != nil {
		return Build{}, "", nil, fmt.Errorf("deployments of %s: %w", id, err)
	}
	p, ok := s.Config.Project(b.Project)
	if !ok || p.SourceRepository == "" || b.QACommit == "" && b.ProductionCommit == "" {
		return b, "", nil, nil
	}
	if b.Commit == "" {
		s.Logger.Debug("no github deployment: CI sent no commit", "build", id, "repo", p.SourceRepository)
		return b, "", nil, nil
	}
	qa, err := s.qaStep(ctx, b)
	if err != nil {
		return Build{}, "", nil, err
	}
	var steps []deploymentStep
	for _, st := range []*deploymentStep{qa, s.productionStep(b, p)} {
		if st != nil && st.due(b.Deployments.Of(st.env)) {
			steps = append(steps, *st)
		}
	}
	return b, p.SourceRepository, steps, nil
}

// qaStep is what b's QA deployment should say: nil before its overlay was
// committed.
func (s *Service) qaStep(ctx context.Context, b Build) (*deploymentStep, error) {
	if b.QACommit == "" || b.Environment == "" {
		return nil, nil
	}
	st := &deploymentStep{env: RolloutQA,
		req: DeploymentRequest{Ref: b.Commit, Environment: b.Environment, Transient: true,
			Description: clip(b.Image, maxDescription), BuildID: b.ID},
		status: DeploymentStatus{EnvironmentURL: b.URL, LogURL: s.commitLink(b.QACommit)}}
	e, err := s.Store.Environment(ctx, b.Project, b.Kind, b.Target)
	switch {
	case errors.Is(err, ErrNotFound): // recorded before environments were
	case err != nil:
		return nil, fmt.Errorf("deployments of %s: %w", b.ID, err)
	case !e.Live():
		st.status.State, st.status.Description = DeploymentInactive, "QA environment torn down: "+e.Teardown
		return st, nil
	case e.BuildID != "" && e.BuildID != b.ID:
		st.status.State, st.status.Description = DeploymentInactive, "The QA environment runs a newer build"
		return st, nil
	}
	switch b.State {
	case StateSuperseded:
		st.status.State, st.status.Description = DeploymentInactive, "Superseded by a newer build"
	case StateClosed:
		st.status.State, st.status.Description = DeploymentInactive, "Closed"
	case StateQAFailed:
		st.status.State, st.status.Description = DeploymentFailure, "QA deploy failed: "+b.Error
	default:
		st.status.State, st.status.Description = s.rolloutState(b.Rollout.QA)
	}
	st.status.Description = clip(st.status.Description, maxDescription)
	return st, nil
}

// productionStep is what b's production deployment should say: nil before
// its promotion was committed.
func (s *Service) productionStep(b Build, p Project) *deploymentStep {
	if b.ProductionCommit == "" {
		return nil
	}
	commit := b.ProductionCommit
	if r := b.Rollout.Production; r != nil && r.Commit != "" {
		commit = r.Commit // a rollback restored it
	}
	st := &deploymentStep{env: RolloutProduction,
		req: DeploymentRequest{Ref: b.Commit, Environment: "production", Production: true,
			Description: clip(b.Image, maxDescription), BuildID: b.ID},
		status: DeploymentStatus{EnvironmentURL: p.URL, LogURL: s.commitLink(commit)}}
	if b.State == StateRolledBack {
		st.status.State, st.status.Description = DeploymentInactive, "Rolled back"
		if b.Rollback != nil {
			st.status.Description += " to " + b.Rollback.Image
		}
	} else {
		st.status.State, st.status.Description = s.rolloutState(b.Rollout.Production)
	}
	st.status.Description = clip(st.status.Description, maxDescription)
	return st
}

// rolloutState is the deployment state of a committed rollout r: what the
// cluster reported, or success at once without cluster feedback.
func (s *Service) rolloutState(r *Rollout) (DeploymentState, string) {
	switch {
	case r != nil && r.Status == RolloutDegraded:
		return DeploymentFailure, "Degraded: " + r.Message
	case r != nil && r.Status == RolloutHealthy:
		return DeploymentSuccess, "Healthy"
	case !s.Feedback:
		return DeploymentSuccess, "Committed to the config repository (no cluster feedback)"
	}
	return DeploymentInProgress, "Committed to the config repository; waiting for the cluster"
}

func (s *Service) commitLink(sha string) string {
	if s.CommitURL == nil || sha == "" {
		return ""
	}
	return s.CommitURL(sha)
}

// queueDeployments queues the job that brings build id's deployments up to
// date, when one of them is behind. The notify job calls it: every change
// people can see queues that job, and the deployments follow the same
// changes in a job of their own, so that GitHub's failures and rate limits
// hold up neither Slack nor the other builds.
func (s *Service) queueDeployments(ctx context.Context, id string) error {
	_, _, steps, err := s.deploymentSteps(ctx, id)
	if err != nil || len(steps) == 0 {
		return err
	}
	_, err = s.Store.Edit(ctx, id, nil, Job{Kind: JobDeployments, Coalesce: true})
	return err
}

// syncDeployments brings build id's deployments up to date (JobDeployments).
// Each deployment is created once, even across a crash between GitHub's
// answer and the record of it: the record is made first, and a run that
// finds one without an id looks the deployment up before creating one.
// Each status is posted once per change of state; a run that stops between
// a status and its record posts that status again.
func (s *Service) syncDeployments(ctx context.Context, id string) error {
	b, repo, steps, err := s.deploymentSteps(ctx, id)
	if err != nil {
		return err
	}
	for _, st := range steps {
		if b, err = s.syncDeployment(ctx, b, repo, st); err != nil {
			return err
		}
	}
	return nil
}

// syncDeployment creates st's deployment if need be and posts its status.
// A refusal (IsPermanent) is recorded and ends that deployment's mirror;
// any other failure is returned, for the job to be retried.
func (s *Service) syncDeployment(ctx context.Context, b Build, repo string, st deploymentStep) (Build, error) {
	rec := b.Deployments.Of(st.env)
	fresh := rec == nil
	if fresh { // recorded before GitHub is asked: see syncDeployments
		rec = &Deployment{Environment: st.req.Environment}
		nb, err := s.recordDeployment(ctx, b.ID, st.env, nil, rec)
		if err != nil {
			return b, err
		}
		b = nb
	}
	log := s.Logger.With("build", b.ID, "repo", repo, "env", st.req.Environment)
	if rec.ID == 0 {
		var id int64
		found := false
		if !fresh { // an earlier run may have created it, then stopped
			var err error
			if id, found, err = s.Deployments.FindDeployment(ctx, repo, st.req); err != nil {
				return s.deploymentRefused(ctx, b, st.env, rec, err)
			}
		}
		if !found && st.status.State == DeploymentInactive {
			next := *rec // never made, and no longer wanted
			next.State = DeploymentInactive
			return s.recordDeployment(ctx, b.ID, st.env, rec, &next)
		}
		if !found {
			var err error
			if id, err = s.Deployments.CreateDeployment(ctx, repo, st.req); err != nil {
				return s.deploymentRefused(ctx, b, st.env, rec, err)
			}
			log.Info("github deployment created", "deployment", id, "ref", st.req.Ref)
		}
		next := *rec
		next.ID = id
		nb, err := s.recordDeployment(ctx, b.ID, st.env, rec, &next)
		if err != nil {
			return b, err
		}
		b, rec = nb, &next
	}
	if rec.State == st.status.State {
		return b, nil
	}
	if err := s.Deployments.CreateDeploymentStatus(ctx, repo, rec.ID, st.status); err != nil {
		return s.deploymentRefused(ctx, b, st.env, rec, err)
	}
	log.Info("github deployment status", "deployment", rec.ID, "state", st.status.State)
	next := *rec
	next.State = st.status.State
	return s.recordDeployment(ctx, b.ID, st.env, rec, &next)
}

// deploymentRefused records a refusal of GitHub's (IsPermanent) on rec and
// goes on; any other failure is returned.
func (s *Service) deploymentRefused(ctx context.Context, b Build, env RolloutEnv, rec *Deployment, err error) (Build, error) {
	if !IsPermanent(err) {
		return b, fmt.Errorf("github deployment of %s to %s: %w", b.ID, rec.Environment, err)
	}
	s.Logger.Warn("github refused a deployment: it is no longer mirrored", "build", b.ID, "env", rec.Environment, "err", err)
	next := *rec
	next.Refused = clip(err.Error(), maxDescription)
	return s.recordDeployment(ctx, b.ID, env, rec, &next)
}

// recordDeployment replaces build id's record of env, which must still be
// old, by rec.
func (s *Service) recordDeployment(ctx context.Context, id string, env RolloutEnv, old, rec *Deployment) (Build, error) {
	return s.Store.Edit(ctx, id, func(nb *Build) error {
		cur := nb.Deployments.Of(env)
		if (cur == nil) != (old == nil) || cur != nil && *cur != *old {
			return errDeploymentMoved
		}
		nb.Deployments = nb.Deployments.with(env, rec)
		return nil
	})
}

// clip shortens s to at most n runes, ending it with "…" when cut.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
