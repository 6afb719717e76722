package promote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Service drives accepted builds through their work: it claims durable jobs
// from the Store, runs them, and moves each build through the state machine.
// Several Services (one per replica) may share one Store: a job is leased to
// one worker at a time, and a lease that expires (a crash) hands it to another.
type Service struct {
	Config *Config
	Store  Store
	Repo   ConfigRepo
	Logger *slog.Logger
	// Worker names this replica in job leases.
	Worker string
	// Lease is how long a claimed job is this worker's (default 2 min).
	Lease time.Duration
	// Poll is how often an idle worker looks for due jobs (default 200 ms).
	Poll time.Duration
	// MaxAttempts bounds retries of a transient failure (default 10).
	MaxAttempts int
	// Concurrency is how many jobs run at once (default 32); the config-repo
	// writer puts the commits of jobs running together into one push.
	Concurrency int
	// Grace is how long jobs in progress may go on once Run's ctx ends
	// (default 10 s); those still running then are left to their leases.
	Grace time.Duration
	// Wake, when set, ends an idle wait early (the webhook signals new work).
	Wake <-chan struct{}
	// Signal, when set, is signalled (without blocking) when Act queues work
	// for the worker; it is usually the channel Wake receives from.
	Signal chan<- struct{}
	// Notifier shows builds in Slack; nil skips notifications.
	Notifier Notifier
	// Directory resolves Slack user groups and names; nil allows only user
	// ids in qa and owners.
	Directory Directory
	// CommitURL, when set, makes a web link to a config-repo commit.
	CommitURL func(sha string) string
	// Forge, when set, promotes through pull requests; nil commits to the
	// config branch directly.
	Forge Forge
	// Branch is the config branch pull requests go into (default main).
	Branch string
	// PollPR is how often a pull request GitHub will not merge yet is looked
	// at again when no webhook says it changed (default 30 s).
	PollPR time.Duration
	// Now returns the time (default time.Now).
	Now func() time.Time
	// Revisions reads revisions of the config repository for cluster
	// events (Observe); usually the same value as Repo.
	Revisions Revisions
	// Feedback tells that Argo CD or Flux report rollouts (an events secret
	// or argocd.apiURL is set): commits then get a rollout.timeout check,
	// and messages wait for, or speak of, what the cluster reports.
	Feedback bool
	// Metrics records rollout times and cluster events; nil records nothing.
	Metrics *Metrics
	// Production reads production's history and rolls it back (package
	// gitops); nil refuses rollbacks.
	Production ProductionRepo
	// QAEnvs removes QA environments from the config repository
	// (package gitops); nil leaves their folders in place.
	QAEnvs EnvironmentRepo
	// Deployments, when set, mirrors builds as GitHub Deployments on the
	// source repositories of the projects that name one; nil mirrors none.
	Deployments Deployments
	// SweepEvery is how often QA environments are looked at for expiry
	// (projects[].qaTTL; default 1 min).
	SweepEvery time.Duration
	// ReplicaGrace is how long another replica's heartbeat may be silent
	// before the jobs it held are taken up (default 15 s). This replica
	// beats every third of it, on its own, whatever its jobs are doing.
	ReplicaGrace time.Duration

	claims atomic.Int64
	dora   doraCache
}

func (s *Service) defaults() {
	if s.Lease <= 0 {
		s.Lease = 2 * time.Minute
	}
	if s.Poll <= 0 {
		s.Poll = 200 * time.Millisecond
	}
	if s.MaxAttempts <= 0 {
		s.MaxAttempts = 10
	}
	if s.Concurrency <= 0 {
		s.Concurrency = 32
	}
	if s.Grace <= 0 {
		s.Grace = 10 * time.Second
	}
	if s.Branch == "" {
		s.Branch = "main"
	}
	if s.PollPR <= 0 {
		s.PollPR = 30 * time.Second
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.SweepEvery <= 0 {
		s.SweepEvery = time.Minute
	}
	if s.ReplicaGrace <= 0 {
		s.ReplicaGrace = 15 * time.Second
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
}

// Run works through due jobs, up to Concurrency at once, until ctx ends; it
// then claims no more and gives the jobs in progress Grace to finish. A job
// still running after that is left to its lease: this or another worker
// takes it up again.
func (s *Service) Run(ctx context.Context) error {
	s.defaults()
	jobCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(s.Grace, cancel)
		context.AfterFunc(jobCtx, func() { t.Stop() })
	})
	defer stop()
	slots := make(chan struct{}, s.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { s.sweepLoop(ctx) })
	wg.Go(func() { s.beatLoop(ctx) })
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		j, lease, ok, err := s.claim(ctx)
		if ok {
			wg.Go(func() {
				defer func() { <-slots }()
				if err := s.runJob(jobCtx, j, lease); err != nil && jobCtx.Err() == nil {
					s.Logger.Error("job queue", "job", j.ID, "err", err)
				}
			})
			continue
		}
		<-slots
		if err != nil && ctx.Err() == nil {
			s.Logger.Error("job queue", "err", err)
		}
		t := time.NewTimer(s.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-s.Wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// beatLoop tells the store this replica is alive, every third of
// ReplicaGrace, and takes up the jobs of replicas whose heartbeat stopped.
// It runs apart from the jobs, so a replica busy with a long push or a GC
// pause keeps its jobs. Once ctx ends (a graceful stop: the jobs go back
// through their leases' hand-back) the replica leaves.
func (s *Service) beatLoop(ctx context.Context) {
	beat := func() {
		if err := s.Store.Beat(ctx, s.Worker, s.Now()); err != nil {
			if ctx.Err() == nil {
				s.Logger.Warn("replica heartbeat", "err", err)
			}
			return
		}
		n, err := s.Store.ReleaseDead(ctx, s.ReplicaGrace, s.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			s.Logger.Warn("take up the jobs of stopped replicas", "err", err)
		case n > 0:
			s.Logger.Warn("jobs of a stopped replica taken up", "jobs", n, "grace", s.ReplicaGrace)
			s.wake()
		}
	}
	beat()
	t := time.NewTicker(s.ReplicaGrace / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			leave, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := s.Store.Leave(leave, s.Worker); err != nil {
				s.Logger.Warn("replica leave", "err", err)
			}
			return
		case <-t.C:
			beat()
		}
	}
}

// sweepLoop runs Sweep every SweepEvery until ctx ends.
func (s *Service) sweepLoop(ctx context.Context) {
	t := time.NewTicker(s.SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
				s.Logger.Warn("qa environment sweep", "err", err)
			}
		}
	}
}

// RunOnce claims and runs one due job; worked is false when none was due.
func (s *Service) RunOnce(ctx context.Context) (worked bool, err error) {
	s.defaults()
	j, lease, ok, err := s.claim(ctx)
	if err != nil || !ok {
		return false, err
	}
	return true, s.runJob(ctx, j, lease)
}

// claim leases the oldest due job under a name of its own (Worker/n), so
// that a run whose lease ran out cannot end the job once it is claimed again,
// even by this same worker.
func (s *Service) claim(ctx context.Context) (j Job, lease string, ok bool, err error) {
	lease = fmt.Sprintf("%s/%d", s.Worker, s.claims.Add(1))
	j, ok, err = s.Store.Claim(ctx, lease, s.Lease, s.Now())
	return j, lease, ok, err
}

// runJob runs a claimed job and records what became of it.
func (s *Service) runJob(ctx context.Context, j Job, lease string) error {
	log := s.Logger.With("job", j.ID, "kind", j.Kind, "build", j.BuildID, "attempt", j.Attempts+1)
	stop := s.heartbeat(ctx, j.ID, lease, log)
	runErr := s.run(ctx, j)
	stop()
	var err error
	var wait *WaitError
	switch {
	case runErr == nil:
		err = s.Store.Complete(ctx, j.ID, lease)
	case ctx.Err() != nil:
		return nil // shutting down: the lease hands the job back
	case errors.As(runErr, &wait):
		// Waiting on GitHub is no failure: no attempt is counted.
		log.Info("job waits", "reason", wait.Reason, "until", s.Now().Add(wait.After))
		err = s.Store.Postpone(ctx, j.ID, lease, s.Now().Add(wait.After), wait.Reason)
	case j.Attempts+1 >= s.MaxAttempts:
		log.Error("job failed for good", "err", runErr)
		if ferr := s.giveUp(ctx, j, runErr); ferr != nil {
			log.Error("record failure", "err", ferr)
		}
		err = s.Store.Fail(ctx, j.ID, lease, runErr.Error())
	default:
		at := s.Now().Add(backoff(j.Attempts))
		var ra *RetryAfterError
		if errors.As(runErr, &ra) {
			at = s.Now().Add(ra.After)
		}

		log.Warn("job will be retried", "err", runErr, "at", at)
		if j.Kind == JobDeployQA || j.Kind == JobPromote {
			// People see the build is being retried, and why; the success
			// that follows clears it. Only a new note is written (and shown).
			note := fmt.Sprintf("retrying: %v (next attempt at %s)", runErr, at.UTC().Format("15:04:05 MST"))
			working := func(b Build) bool {
				deploying := b.State == StateReceived || b.State == StateDeploying
				return b.Error != note && (j.Kind == JobDeployQA && deploying || j.Kind == JobPromote && b.State == StatePromoting)
			}
			var jobs []Job // without Slack, no notification to queue per retry
			if s.Notifier != nil {
				jobs = append(jobs, notifyJob())
			}
			unchanged := errors.New("no new retry note")
			b, nerr := s.Store.Get(ctx, j.BuildID)
			if nerr == nil && working(b) {
				_, nerr = s.Store.Edit(ctx, j.BuildID, func(b *Build) error {
					if !working(*b) { // it moved on meanwhile
						return unchanged
					}
					b.Error = note
					return nil
				}, jobs...)
			}
			if nerr != nil && !errors.Is(nerr, unchanged) {
				log.Warn("record retry on the build", "err", nerr)
			}
		}
		err = s.Store.Retry(ctx, j.ID, lease, at, runErr.Error())
	}
	if errors.Is(err, ErrLeaseLost) {
		log.Warn("lease lost while working: another worker has the job")
		return nil
	}
	return err
}

// heartbeat extends the job's lease every third of it while the job runs,
// so that a long job (a slow git server, GitHub's checks) is not taken up by
// another worker; stop ends it. Once the lease is lost it stops trying.
func (s *Service) heartbeat(ctx context.Context, id int64, lease string, log *slog.Logger) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(s.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				err := s.Store.Extend(ctx, id, lease, s.Now().Add(s.Lease))
				if errors.Is(err, ErrLeaseLost) {
					log.Warn("lease lost while working")
					return
				}
				if err != nil && ctx.Err() == nil {
					log.Warn("extend lease", "err", err)
				}
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// wake signals the worker that work was queued.
func (s *Service) wake() {
	if s.Signal == nil {
		return
	}
	select {
	case s.Signal <- struct{}{}:
	default:
	}
}

// backoff is capped exponential with jitter: 1 s, 2 s, 4 s … up to 5 min.
func backoff(attempts int) time.Duration {
	d := time.Second << min(attempts, 9)
	d = min(d, 5*time.Minute)
	return d/2 + rand.N(d/2+1)
}

// run does one job. Terminal failures are recorded on the build and end the
// job (nil); transient ones are returned, to be retried.
func (s *Service) run(ctx context.Context, j Job) error {
	switch j.Kind {
	case JobDeployQA:
		return s.deployQA(ctx, j.BuildID)
	case JobNotify:
		if err := s.settle(ctx, j.BuildID); err != nil {
			return err
		}
		if err := s.queueDeployments(ctx, j.BuildID); err != nil {
			return err
		}
		return s.notify(ctx, j.BuildID)
	case JobDeployments:
		return s.syncDeployments(ctx, j.BuildID)
	case JobPromote:
		return s.promote(ctx, j.BuildID)
	case JobRolloutTimeout:
		return s.rolloutTimeout(ctx, j.BuildID, RolloutEnv(j.Payload))
	case JobRollback:
		return s.rollback(ctx, j.BuildID)
	case JobAutoRollback:
		return s.autoRollback(ctx, j.BuildID)
	case JobTeardown:
		return s.teardown(ctx, j.Payload)
	default:
		s.Logger.Error("unknown job kind: dropped", "kind", j.Kind, "job", j.ID)
		return nil
	}
}

// deployQA writes a build's QA overlay. It is safe to run again at any point
// (a crash, a lost lease): the overlay edit is idempotent and the state
// machine refuses a second transition.
func (s *Service) deployQA(ctx context.Context, id string) error {
	b, err := s.Store.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("deploy %s: %w", id, err)
	}
	if b.State == StateReceived {
		if b, err = s.Store.Apply(ctx, id, EventDeploy, nil); err != nil {
			return s.settled(err)
		}
	}
	if b.State != StateDeploying {
		return nil // superseded or closed meanwhile: nothing to do
	}
	p, ok := s.Config.Project(b.Project)
	if !ok {
		return s.fail(ctx, id, EventDeployFailed, fmt.Errorf("project %s is no longer configured", b.Project))
	}
	d, err := s.Repo.DeployQA(ctx, p, b)
	if IsPermanent(err) {
		return s.fail(ctx, id, EventDeployFailed, err)
	}
	if err != nil {
		return fmt.Errorf("deploy %s: %w", id, err)
	}
	now := s.Now()
	_, err = s.Store.Apply(ctx, id, EventDeployed, func(b *Build) error {
		b.Environment, b.URL, b.QACommit, b.Error = d.Environment, d.URL, d.Commit, ""
		if d.Commit != "" {
			b.Rollout.QA = pendingRollout(now)
		}
		return nil
	}, s.committedJobs(RolloutQA, now, d.Commit != "")...)
	s.Logger.Info("qa deployed", "build", id, "env", d.Environment, "commit", d.Commit)
	if err := s.settled(err); err != nil {
		return err
	}
	// A project that needs no approval is approved at once.
	_, err = s.applyPolicy(ctx, id, p)
	return err
}

// settle applies the approval policy to a build waiting for QA. A verdict
// and the deploy to QA are each recorded with a notification job, then the
// policy is applied in a second step; a crash between the two would leave
// the build waiting for a decision already made. The job finishes that step.
func (s *Service) settle(ctx context.Context, id string) error {
	b, err := s.Store.Get(ctx, id)
	if err != nil || b.State != StateQAReady {
		return err
	}
	p, ok := s.Config.Project(b.Project)
	if !ok {
		return nil
	}
	_, err = s.applyPolicy(ctx, id, p)
	return err
}

// fail records a terminal failure on the build.
func (s *Service) fail(ctx context.Context, id string, ev Event, cause error) error {
	_, err := s.Store.Apply(ctx, id, ev, func(b *Build) error {
		b.Error = cause.Error()
		return nil
	}, notifyJob())
	s.Logger.Warn("build failed", "build", id, "event", ev, "err", cause)
	return s.settled(err)
}

// giveUp records on the build that its job ran out of attempts.
func (s *Service) giveUp(ctx context.Context, j Job, cause error) error {
	cause = fmt.Errorf("gave up after %d attempts: %w", j.Attempts+1, cause)
	switch j.Kind {
	case JobDeployQA:
		return s.fail(ctx, j.BuildID, EventDeployFailed, cause)
	case JobPromote:
		return s.fail(ctx, j.BuildID, EventPromoteFailed, cause)
	case JobRollback:
		b, err := s.Store.Get(ctx, j.BuildID)
		if err != nil {
			return err
		}
		return s.rollbackFailed(ctx, b, cause)
	}
	return nil
}

// settled treats a refused transition as done: the build moved on (it was
// superseded, closed, or another worker finished the job first).
func (s *Service) settled(err error) error {
	var te *TransitionError
	if errors.As(err, &te) {
		s.Logger.Info("build moved on", "from", te.From, "event", te.Event)
		return nil
	}
	return err
}
