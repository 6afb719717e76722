package promote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strings"
	"time"
)

// qaDeployedStates are the states of a build whose image may be what its QA
// environment runs: the newest of them in each environment is.
var qaDeployedStates = []State{
	StateQAReady, StateApproved, StateRejected, StatePromoting, StatePromoteFailed, StatePromoted, StateClosed,
}

// productionCandidates bounds the promoted builds looked at for the one
// production runs (the one whose image went to production last).
const productionCandidates = 50

// qaCandidates bounds the builds looked at for what QA environments run.
const qaCandidates = 1000

// coverage is what a path a controller reconciles covers of one project.
type coverage struct {
	p          Project
	production bool
	allQA      bool
	qaEnv      string // "qa/<env>" when the path is one QA environment's folder
}

// candidate is a build whose commit is what an environment should run.
type candidate struct {
	b   Build
	env RolloutEnv
}

// errRolloutMoved ends an Edit whose build's rollout changed since it was read.
var errRolloutMoved = errors.New("the rollout record changed meanwhile")

// Observe records what a cluster event says of the builds whose commits
// the reported path holds. A build counts as synced, healthy or degraded in
// an environment only when the reported revision contains its commit and
// the overlay at that revision still pins its image; an older revision, a
// report older than the one recorded, or the same status again changes
// nothing. A path the bot does not deploy to is ignored.
func (s *Service) Observe(ctx context.Context, ev ClusterEvent) (Observation, error) {
	s.defaults()
	obs, err := s.observe(ctx, ev)
	if err != nil {
		s.Metrics.ClusterEvent(ev.Source, EventError)
		return Observation{}, err
	}
	s.Metrics.ClusterEvent(ev.Source, obs.Outcome)
	return obs, nil
}

func (s *Service) observe(ctx context.Context, ev ClusterEvent) (Observation, error) {
	log := s.Logger.With("source", ev.Source, "object", ev.Object, "path", ev.Path,
		"revision", ev.Revision, "status", ev.Status)
	if s.Revisions == nil {
		return Observation{}, errors.New("observe: no config repository to read revisions from")
	}
	if ev.Status != RolloutSynced && ev.Status != RolloutHealthy && ev.Status != RolloutDegraded {
		return Observation{}, fmt.Errorf("observe: status %q is not one a controller reports", ev.Status)
	}
	covers := s.covered(ev.Path)
	if len(covers) == 0 {
		log.Info("cluster event ignored: the bot deploys nothing below its path")
		return Observation{Outcome: OutcomeIgnored, Builds: []string{}}, nil
	}
	var cands []candidate
	for _, c := range covers {
		cs, err := s.candidates(ctx, c)
		if err != nil {
			return Observation{}, err
		}
		cands = append(cands, cs...)
	}
	if ev.Status == RolloutDegraded {
		cands = blamed(cands, ev.Message)
	}
	obs := Observation{Outcome: OutcomePending, Builds: []string{}}
	seen := map[string]bool{}
	for _, c := range cands {
		outcome, err := s.observeOne(ctx, c, ev, log)
		if errors.Is(err, ErrUnknownRevision) {
			log.Warn("cluster event ignored: the config repository has no such revision", "err", err)
			return Observation{Outcome: OutcomeIgnored, Builds: []string{}}, nil
		}
		if err != nil {
			return Observation{}, err
		}
		seen[outcome] = true
		if outcome == OutcomeApplied {
			obs.Builds = append(obs.Builds, c.b.ID)
		}
	}
	for _, o := range []string{OutcomeApplied, OutcomeStale, OutcomeRepeat} {
		if seen[o] {
			obs.Outcome = o
			break
		}
	}
	log.Info("cluster event", "outcome", obs.Outcome, "builds", obs.Builds, "candidates", len(cands))
	return obs, nil
}

// blamed narrows a degraded report over several QA environments (one Flux
// Kustomization over a whole overlays/qa folder) to those whose objects its
// message names, as Flux's health checks do ("Deployment/<namespace>/<name>",
// the namespace being "<project>-<env>"). A message that names none of them
// (a build or apply failure) concerns them all.
func blamed(cands []candidate, msg string) []candidate {
	var named []candidate
	for _, c := range cands {
		if c.env == RolloutQA && strings.Contains(msg, "/"+c.b.Project+"-"+strings.TrimPrefix(c.b.Environment, "qa/")+"/") {
			named = append(named, c)
		}
	}
	if len(named) == 0 {
		return cands
	}
	return named
}

// cleanEventPath makes a reported path comparable with a project's
// folders: no "./", no leading or trailing "/", "" for the root.
func cleanEventPath(p string) string {
	p = path.Clean("/" + strings.TrimSpace(p))
	return strings.TrimPrefix(p, "/")
}

// covered lists what each project has below (or at) the reported path.
func (s *Service) covered(reported string) []coverage {
	rp := cleanEventPath(reported)
	under := func(dir string) bool {
		return rp == "" || dir == rp || strings.HasPrefix(dir, rp+"/")
	}
	var out []coverage
	for _, p := range s.Config.Projects {
		base := cleanEventPath(p.Path)
		qa := path.Join(base, "overlays", "qa")
		c := coverage{p: p, production: under(path.Join(base, "overlays", "production")), allQA: under(qa)}
		if !c.allQA {
			if rest, ok := strings.CutPrefix(rp, qa+"/"); ok {
				env, _, _ := strings.Cut(rest, "/")
				c.qaEnv = "qa/" + env
			}
		}
		if c.production || c.allQA || c.qaEnv != "" {
			out = append(out, c)
		}
	}
	return out
}

// candidates are the builds whose commits the covered environments should
// run: the newest deployed build of each QA environment, and the build
// whose production commit is the latest.
func (s *Service) candidates(ctx context.Context, c coverage) ([]candidate, error) {
	var out []candidate
	if c.allQA || c.qaEnv != "" {
		bs, err := s.Store.Find(ctx, c.p.ID, qaDeployedStates, qaCandidates)
		if err != nil {
			return nil, fmt.Errorf("observe: builds of %s: %w", c.p.ID, err)
		}
		envs := map[string]bool{}
		for _, b := range bs { // newest first
			if b.QACommit == "" || b.Environment == "" || envs[b.Environment] {
				continue
			}
			envs[b.Environment] = true
			if c.allQA || b.Environment == c.qaEnv {
				out = append(out, candidate{b: b, env: RolloutQA})
			}
		}
	}
	if c.production {
		cur, err := s.currentProduction(ctx, c.p)
		if err != nil {
			return nil, err
		}
		if cur != nil && cur.ProductionCommit != "" {
			out = append(out, candidate{b: *cur, env: RolloutProduction})
		}
	}
	return out, nil
}

// observeOne applies ev to one candidate and says what came of it.
func (s *Service) observeOne(ctx context.Context, c candidate, ev ClusterEvent, log *slog.Logger) (string, error) {
	b := c.b
	r := b.Rollout.Of(c.env)
	if r == nil { // a build committed before rollouts were recorded
		r = &Rollout{Status: RolloutPending, Since: b.UpdatedAt}
	}
	if r.Status == ev.Status || ev.Status == RolloutSynced && r.Status != RolloutPending {
		return OutcomeRepeat, nil // synced after a result tells nothing new
	}
	if !ev.At.IsZero() && ev.At.Before(r.Reported) {
		return OutcomeStale, nil
	}
	if r.Revision != "" && r.Revision != ev.Revision {
		newer, err := s.Revisions.Contains(ctx, ev.Revision, r.Revision)
		if err != nil {
			return "", fmt.Errorf("observe %s: %w", b.ID, err)
		}
		if !newer {
			return OutcomeStale, nil
		}
	}
	commit, env := b.QACommit, b.Environment
	if c.env == RolloutProduction {
		commit, env = b.ProductionCommit, "production"
	}
	if r.Commit != "" {
		commit = r.Commit
	}
	holds, err := s.Revisions.Contains(ctx, ev.Revision, commit)
	if err != nil {
		return "", fmt.Errorf("observe %s: %w", b.ID, err)
	}
	if holds {
		p, _ := s.Config.Project(b.Project)
		if holds, err = s.Revisions.Pins(ctx, p, ev.Revision, env, b.Image); err != nil {
			return "", fmt.Errorf("observe %s: %w", b.ID, err)
		}
	}
	if !holds {
		return OutcomePending, nil // an older revision, or the overlay moved on
	}
	now := s.Now()
	var first bool
	jobs := []Job{notifyJob()}
	if p, _ := s.Config.Project(b.Project); c.env == RolloutProduction && ev.Status == RolloutDegraded && p.AutoRollback {
		jobs = append(jobs, Job{Kind: JobAutoRollback, RunAt: now.Add(s.Config.Rollout.DegradedFor)})
	}
	_, err = s.Store.Edit(ctx, b.ID, func(nb *Build) error {
		cur := nb.Rollout.Of(c.env)
		if cur != nil && (cur.Status != r.Status || cur.Revision != r.Revision) {
			return errRolloutMoved
		}
		next := r.record(ev, now)
		first = !r.resulted()
		if c.env == RolloutProduction {
			nb.Rollout.Production = next
		} else {
			nb.Rollout.QA = next
		}
		return nil
	}, jobs...)
	if errors.Is(err, errRolloutMoved) {
		return OutcomeRepeat, nil
	}
	if err != nil {
		return "", fmt.Errorf("observe %s: %w", b.ID, err)
	}
	if first && ev.Status != RolloutSynced {
		s.Metrics.rollout(c.env, ev.Status, now.Sub(r.Since))
	}
	log.Info("rollout", "build", b.ID, "env", env, "from", r.Status, "to", ev.Status)
	return OutcomeApplied, nil
}

// resulted reports whether the rollout was ever healthy or degraded.
func (r *Rollout) resulted() bool {
	return slices.ContainsFunc(r.Steps, func(st RolloutStep) bool {
		return st.Status == RolloutHealthy || st.Status == RolloutDegraded
	}) || r.Status == RolloutHealthy || r.Status == RolloutDegraded
}

// record returns r moved to what ev reports, at now.
func (r *Rollout) record(ev ClusterEvent, now time.Time) *Rollout {
	next := *r
	next.Status, next.Revision, next.At = ev.Status, ev.Revision, now
	next.Message = ""
	if ev.Status == RolloutDegraded {
		next.Message = ev.Message
	}
	if !ev.At.IsZero() {
		next.Reported = ev.At
	}
	next.Steps = append(slices.Clip(r.Steps), RolloutStep{
		Status: ev.Status, Revision: ev.Revision, Message: next.Message, Source: ev.Source, At: now,
	})
	if len(next.Steps) > maxRolloutSteps { // keep the first (pending) and the latest
		next.Steps = append(next.Steps[:1:1], next.Steps[len(next.Steps)-maxRolloutSteps+1:]...)
	}
	return &next
}

// pendingRollout is the record a commit starts: pending since now.
func pendingRollout(now time.Time) *Rollout {
	return &Rollout{Status: RolloutPending, At: now, Since: now,
		Steps: []RolloutStep{{Status: RolloutPending, At: now}}}
}

// committedJobs are the jobs queued with a commit to env: the notification,
// and with cluster feedback, the check rollout.timeout later.
func (s *Service) committedJobs(env RolloutEnv, now time.Time, committed bool) []Job {
	jobs := []Job{notifyJob()}
	if committed && s.Feedback {
		jobs = append(jobs, Job{Kind: JobRolloutTimeout, Payload: string(env), RunAt: now.Add(s.Config.Rollout.Timeout)})
	}
	return jobs
}

// rolloutTimeout marks a rollout that went rollout.timeout without a
// healthy report, so that the channel and owners are told (and, with
// rollout.waitForHealthy, QA is asked anyway).
func (s *Service) rolloutTimeout(ctx context.Context, id string, env RolloutEnv) error {
	late := func(b Build) bool {
		r := b.Rollout.Of(env)
		return r != nil && r.Status != RolloutHealthy && !r.TimedOut && b.State != StateSuperseded
	}
	b, err := s.Store.Get(ctx, id)
	if err != nil || !late(b) {
		return err
	}
	_, err = s.Store.Edit(ctx, id, func(nb *Build) error {
		if !late(*nb) {
			return errRolloutMoved
		}
		nb.Rollout.Of(env).TimedOut = true
		return nil
	}, notifyJob())
	if errors.Is(err, errRolloutMoved) {
		return nil
	}
	if err == nil {
		s.Logger.Warn("rollout timed out", "build", id, "env", env, "after", s.Config.Rollout.Timeout)
	}
	return err
}

// awaitWindow bounds how long after its commit a rollout that never became
// healthy keeps the Argo CD poller asking.
const awaitWindow = 24 * time.Hour

// AwaitingRollout reports whether a QA or production rollout committed in
// the last day is not healthy yet: the Argo CD poller asks only then.
func (s *Service) AwaitingRollout(ctx context.Context) (bool, error) {
	s.defaults()
	since := s.Now().Add(-awaitWindow)
	for _, p := range s.Config.Projects {
		bs, err := s.candidates(ctx, coverage{p: p, production: true, allQA: true})
		if err != nil {
			return false, err
		}
		for _, c := range bs {
			r := c.b.Rollout.Of(c.env)
			if r != nil && r.Status != RolloutHealthy && r.Since.After(since) {
				return true, nil
			}
		}
	}
	return false, nil
}
