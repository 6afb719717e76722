package promote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The reasons a QA environment is torn down (Promotebot-Teardown), besides
// "by <name> <slack:U…>" for an owner's button.
const (
	TeardownBranchDeleted = "branch-deleted"
	TeardownTagDeleted    = "tag-deleted"
	TeardownExpired       = "expired"
	// TeardownByCI is a DELETE /v1/environments call's.
	TeardownByCI = "by ci"
)

// teardownWait is how long a teardown waits for a promotion of its
// environment's build to end before it looks again.
const teardownWait = 30 * time.Second

// maxWarnBefore is how long before it expires an environment's owners and
// QA are warned, at most (a tenth of a shorter qaTTL).
const maxWarnBefore = 24 * time.Hour

// teardownJob is a JobTeardown's payload.
type teardownJob struct {
	Project string `json:"project"`
	Kind    Kind   `json:"kind"`
	Target  string `json:"target"`
}

// errEnvMoved ends an EditEnvironment whose environment changed meanwhile.
var errEnvMoved = errors.New("the environment changed meanwhile")

// TearDown asks for the removal of a project's QA environment of kind and
// target, for reason: the environment is marked torn down and a job
// removes its overlay and closes its active builds. ErrNotFound for an
// environment that never existed; one torn down already is returned as it
// is (a repeat changes nothing).
func (s *Service) TearDown(ctx context.Context, project string, kind Kind, target, reason string) (Environment, error) {
	e, err := s.Store.Environment(ctx, project, kind, target)
	if err != nil {
		return Environment{}, err
	}
	if !e.Live() {
		return e, nil
	}
	buildID := e.BuildID
	if buildID == "" { // reserved, its build not recorded (a crash between)
		bs, err := s.Store.FindTarget(ctx, project, kind, target, States, 1)
		if err != nil {
			return Environment{}, err
		}
		if len(bs) > 0 {
			buildID = bs[0].ID
		}
	}
	payload, err := json.Marshal(teardownJob{Project: project, Kind: kind, Target: target})
	if err != nil {
		return Environment{}, err
	}
	now := s.clock()
	var jobs []Job
	if buildID != "" {
		jobs = append(jobs, Job{Kind: JobTeardown, BuildID: buildID, Payload: string(payload)})
	}
	e, err = s.Store.EditEnvironment(ctx, project, kind, target, func(e *Environment) error {
		if !e.Live() {
			return errEnvMoved
		}
		e.Teardown, e.TornDownAt = reason, now
		e.Removed = buildID == "" // nothing deployed: nothing to remove
		return nil
	}, jobs...)
	if errors.Is(err, errEnvMoved) {
		return s.Store.Environment(ctx, project, kind, target)
	}
	if err != nil {
		return Environment{}, err
	}
	s.log().Info("qa environment teardown asked", "project", project, "env", e.Name, "reason", reason)
	s.wake()
	return e, nil
}

// unsettledStates are the states a teardown looks at: a build it closes
// (active) or waits for (promoting).
var unsettledStates = func() []State {
	var out []State
	for _, st := range States {
		if !st.Final() {
			out = append(out, st)
		}
	}
	return out
}()

// teardown removes a torn-down environment's overlay and closes its active
// builds. It waits while a build of the environment is being promoted, and
// does nothing for an environment a new build brought back meanwhile.
func (s *Service) teardown(ctx context.Context, payload string) error {
	var job teardownJob
	if err := json.Unmarshal([]byte(payload), &job); err != nil {
		s.Logger.Error("teardown job with a bad payload: dropped", "payload", payload, "err", err)
		return nil
	}
	e, err := s.Store.Environment(ctx, job.Project, job.Kind, job.Target)
	if err != nil || e.Live() || e.Removed {
		return err // brought back by a new build, or done
	}
	p, ok := s.Config.Project(job.Project)
	if !ok {
		return nil
	}
	// The target's own builds, however many other targets the project has.
	ofTarget, err := s.Store.FindTarget(ctx, p.ID, job.Kind, job.Target, unsettledStates, claimScan)
	if err != nil {
		return err
	}
	for _, b := range ofTarget {
		if b.State == StatePromoting {
			return &WaitError{After: teardownWait, Reason: fmt.Sprintf("%s is being promoted", b.ID)}
		}
	}
	commit := ""
	if s.QAEnvs != nil {
		commit, err = s.QAEnvs.TearDownQA(ctx, p, e, e.Teardown, e.TornDownAt)
		switch {
		case errors.Is(err, ErrNotOurs):
			s.Logger.Warn("qa environment left in place: its folder is not the bot's", "env", e.Name, "err", err)
		case IsPermanent(err):
			s.Logger.Error("qa environment teardown failed", "env", e.Name, "err", err)
		case err != nil:
			return fmt.Errorf("teardown %s: %w", e.Name, err)
		}
	}
	why := "QA environment torn down: " + e.Teardown
	for _, b := range ofTarget {
		if !b.State.Active() {
			continue
		}
		_, err := s.Store.Apply(ctx, b.ID, EventClose, func(nb *Build) error {
			nb.ClosedBy, nb.Error = "", why
			return nil
		}, notifyJob())
		if err := s.settled(err); err != nil {
			return err
		}
	}
	_, err = s.Store.EditEnvironment(ctx, job.Project, job.Kind, job.Target, func(ne *Environment) error {
		if ne.Live() {
			return errEnvMoved
		}
		ne.Removed, ne.Commit = true, commit
		return nil
	}, Job{Kind: JobNotify, BuildID: e.BuildID, Coalesce: true})
	if errors.Is(err, errEnvMoved) {
		return nil
	}
	if err == nil {
		s.Logger.Info("qa environment torn down", "project", p.ID, "env", e.Name, "commit", commit, "reason", e.Teardown)
	}
	return err
}

// touch records activity on a build's environment (a click): its expiry
// clock starts again.
func (s *Service) touch(ctx context.Context, b Build) {
	if b.Environment == "" {
		return
	}
	now := s.clock()
	var jobs []Job
	e, err := s.Store.Environment(ctx, b.Project, b.Kind, b.Target)
	if err != nil || !e.Live() {
		return
	}
	if !e.WarnedAt.IsZero() && e.BuildID != "" { // its warning says it was kept
		jobs = append(jobs, Job{Kind: JobNotify, BuildID: e.BuildID, Coalesce: true})
	}
	_, err = s.Store.EditEnvironment(ctx, b.Project, b.Kind, b.Target, func(e *Environment) error {
		if !e.Live() {
			return errEnvMoved
		}
		e.ActiveAt, e.WarnedAt = now, time.Time{}
		return nil
	}, jobs...)
	if err != nil && !errors.Is(err, errEnvMoved) {
		s.log().Warn("record activity on the qa environment", "build", b.ID, "err", err)
	}
}

// keep is the Keep button: the environment's expiry clock starts again.
func (s *Service) keep(ctx context.Context, a Action, b Build) (Build, error) {
	e, err := s.Store.Environment(ctx, b.Project, b.Kind, b.Target)
	if errors.Is(err, ErrNotFound) || err == nil && !e.Live() {
		return Build{}, refusef("This QA environment was torn down already.")
	}
	if err != nil {
		return Build{}, err
	}
	s.touch(ctx, b)
	s.log().Info("qa environment kept", "build", b.ID, "env", e.Name, "user", a.User)
	return b, nil
}

// tearDownByOwner is the Tear down QA environment button.
func (s *Service) tearDownByOwner(ctx context.Context, a Action, b Build) (Build, error) {
	e, err := s.Store.Environment(ctx, b.Project, b.Kind, b.Target)
	if errors.Is(err, ErrNotFound) {
		return Build{}, refusef("This build has no QA environment.")
	}
	if err != nil {
		return Build{}, err
	}
	if !e.Live() {
		return Build{}, refusef("This QA environment was torn down already (%s).", Plain(e.Teardown))
	}
	who := s.person(ctx, a.User)
	if _, err := s.TearDown(ctx, b.Project, b.Kind, b.Target, "by "+personTrailer(who)); err != nil {
		return Build{}, err
	}
	return b, nil
}

// personTrailer is how a person is named in a trailer value: "<name>
// <slack:U…>".
func personTrailer(p Person) string {
	if p.Name == "" {
		return "<slack:" + p.ID + ">"
	}
	return p.Name + " <slack:" + p.ID + ">"
}

// Environments is what `/promote envs <project>` shows. An unknown project
// is a *Refusal.
func (s *Service) Environments(ctx context.Context, projectID string) (EnvironmentsView, error) {
	p, ok := s.Config.Project(projectID)
	if !ok {
		return EnvironmentsView{}, refusef("No project %q.", Plain(projectID))
	}
	// The idlest are listed and the rest counted, not read.
	envs, err := s.Store.FirstEnvironments(ctx, p.ID, ListedEnvironments)
	if err != nil {
		return EnvironmentsView{}, err
	}
	counts, err := s.Store.CountEnvironments(ctx, p.ID)
	if err != nil {
		return EnvironmentsView{}, err
	}
	return EnvironmentsView{Project: p, Environments: envs, Total: max(counts[p.ID], len(envs)), TTL: p.QATTL}, nil
}

// warnBefore is how long before its expiry an environment's people are
// warned: 24 h, or a tenth of a shorter TTL.
func warnBefore(ttl time.Duration) time.Duration { return min(maxWarnBefore, ttl/10) }

// Sweep tears down the QA environments idle past their project's qaTTL and
// warns the people of those about to be. It acts only on what the store
// says of each environment: a failed listing skips the round, and nothing
// is torn down for being absent from one.
func (s *Service) Sweep(ctx context.Context) error {
	now := s.clock()
	for _, p := range s.Config.Projects {
		if p.QATTL <= 0 {
			continue
		}
		envs, err := s.Store.Environments(ctx, p.ID)
		if err != nil {
			return fmt.Errorf("sweep %s: %w", p.ID, err)
		}
		for _, e := range envs {
			expires := e.Expires(p.QATTL)
			switch {
			case !now.Before(expires):
				if _, err := s.TearDown(ctx, p.ID, e.Kind, e.Target, TeardownExpired); err != nil {
					return err
				}
			case !now.Before(expires.Add(-warnBefore(p.QATTL))) && e.WarnedAt.IsZero() && e.BuildID != "":
				_, err := s.Store.EditEnvironment(ctx, p.ID, e.Kind, e.Target, func(ne *Environment) error {
					if !ne.Live() || !ne.WarnedAt.IsZero() || !ne.ActiveAt.Equal(e.ActiveAt) {
						return errEnvMoved
					}
					ne.WarnedAt = now
					return nil
				}, Job{Kind: JobNotify, BuildID: e.BuildID, Coalesce: true})
				if err != nil && !errors.Is(err, errEnvMoved) {
					return err
				}
				s.log().Info("qa environment expires soon", "project", p.ID, "env", e.Name, "at", expires)
			}
		}
	}
	return nil
}
