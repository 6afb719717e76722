package promote_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/promotebot/promotebot/promote"
	"github.com/promotebot/promotebot/promote/store"
)

// fakeRepo is a ConfigRepo that records deploys and fails as told.
type fakeRepo struct {
	mu         sync.Mutex
	deploys    []string // build ids, in call order
	promotions []promotion
	fail       []error // returned by the next calls, in order
	// started, when set, is told of each call; the call then waits for
	// release or for its ctx to end.
	started chan struct{}
	release chan struct{}
}

func (f *fakeRepo) Check(promote.Project, promote.Kind, string, string) (string, string, error) {
	return "qa/branch-x", "https://x.branch.hello.example.com", nil
}

func (f *fakeRepo) Fallback(promote.Project, promote.Kind, string) (string, string, error) {
	return "qa/branch-x-h", "https://x-h.branch.hello.example.com", nil
}

func (f *fakeRepo) DeployQA(ctx context.Context, _ promote.Project, b promote.Build) (promote.QADeployment, error) {
	if f.started != nil {
		select {
		case f.started <- struct{}{}:
		default: // nobody listens: a second call, which the test will count
		}
		select {
		case <-f.release:
		case <-ctx.Done():
			return promote.QADeployment{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deploys = append(f.deploys, b.ID)
	if len(f.fail) > 0 {
		err := f.fail[0]
		f.fail = f.fail[1:]
		if err != nil {
			return promote.QADeployment{}, err
		}
	}
	if b.Target != "x" { // another environment, another commit
		return promote.QADeployment{Environment: "qa/branch-" + b.Target, URL: "https://" + b.Target + ".branch.hello.example.com",
			Commit: "c0ffee-" + b.Target}, nil
	}
	return promote.QADeployment{Environment: "qa/branch-x", URL: "https://x.branch.hello.example.com", Commit: "c0ffee"}, nil
}

func (f *fakeRepo) Promote(_ context.Context, _ promote.Project, b promote.Build, approvals []promote.Approval, promoter promote.Person) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.promotions = append(f.promotions, promotion{build: b.ID, approvals: approvals, promoter: promoter})
	return "beef" + b.ID, nil
}

func (f *fakeRepo) PromoteBranch(_ context.Context, _ promote.Project, b promote.Build, _ []promote.Approval, _ promote.Person, branch string) (promote.PromotionCommit, error) {
	return promote.PromotionCommit{SHA: "head-" + branch, Subject: "Promote " + b.ID, Trailers: "Promotebot-Build: " + b.ID + "\n"}, nil
}

type promotion struct {
	build     string
	approvals []promote.Approval
	promoter  promote.Person
}

func (f *fakeRepo) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.deploys)
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newService(t *testing.T, repo *fakeRepo) (*promote.Service, promote.Store, *clock) {
	t.Helper()
	st, err := store.Open(context.Background(), "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	cfg := &promote.Config{Projects: []promote.Project{{ID: "hello", URL: "https://hello.example.com",
		Image: "registry.example.com/acme/hello", Path: "apps/hello", Channel: "C0HELLO", QA: []string{"UQA1", "S0QA"},
		Owners: []string{"UOWN1", "UOWN2"}, RequiredApprovals: 1}}}
	// Ahead of the real clock, which stamps new jobs: they are due at once.
	c := &clock{now: time.Now().UTC().Add(time.Minute)}
	return &promote.Service{Config: cfg, Store: st, Repo: repo, Worker: "w1", Now: c.Now, MaxAttempts: 3, Lease: time.Minute}, st, c
}

func accept(t *testing.T, st promote.Store, image string) promote.Build {
	t.Helper()
	b, created, _, err := st.Create(context.Background(), promote.Build{Project: "hello", Image: image,
		Kind: promote.KindBranch, Target: "x"}, promote.Job{Kind: promote.JobDeployQA})
	if err != nil || !created {
		t.Fatalf("Create: %v %v", created, err)
	}
	return b
}

func runOnce(t *testing.T, s *promote.Service) bool {
	t.Helper()
	worked, err := s.RunOnce(context.Background())
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	return worked
}

// drain runs due jobs until none is left and returns how many ran.
func drain(t *testing.T, s *promote.Service) int {
	t.Helper()
	n := 0
	for runOnce(t, s) {
		n++
	}
	return n
}

func get(t *testing.T, st promote.Store, id string) promote.Build {
	t.Helper()
	b, err := st.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestServiceDeploysQA(t *testing.T) {
	repo := &fakeRepo{}
	s, st, _ := newService(t, repo)
	b := accept(t, st, "registry.example.com/acme/hello:1")
	if !runOnce(t, s) {
		t.Fatal("no job ran")
	}
	got := get(t, st, b.ID)
	if got.State != promote.StateQAReady || got.QACommit != "c0ffee" || got.Environment != "qa/branch-x" {
		t.Fatalf("build %+v", got)
	}
	if n, err := st.Pending(context.Background()); err != nil || n != 1 {
		t.Fatalf("pending %d %v, want the notification", n, err)
	}
	if drain(t, s) != 1 || repo.calls() != 1 {
		t.Fatalf("ran again: %d deploys", repo.calls())
	}
	h, err := st.History(context.Background(), b.ID)
	if err != nil || len(h) != 2 || h[0].To != promote.StateDeploying || h[1].To != promote.StateQAReady {
		t.Fatalf("history %+v %v", h, err)
	}
}

func TestServiceRetriesTransientFailures(t *testing.T) {
	repo := &fakeRepo{fail: []error{errors.New("push: connection refused")}}
	s, st, c := newService(t, repo)
	b := accept(t, st, "registry.example.com/acme/hello:1")
	runOnce(t, s)
	if got := get(t, st, b.ID); got.State != promote.StateDeploying {
		t.Fatalf("after a transient failure: %s", got.State)
	}
	if runOnce(t, s) {
		t.Fatal("the retry ran before its backoff")
	}
	c.Add(10 * time.Minute)
	runOnce(t, s)
	if got := get(t, st, b.ID); got.State != promote.StateQAReady || repo.calls() != 2 {
		t.Fatalf("after the retry: %s, %d deploys", got.State, repo.calls())
	}
}

func TestServiceTerminalFailures(t *testing.T) {
	for name, fail := range map[string][]error{
		"invalid":      {fmt.Errorf("%w: render failed", promote.ErrInvalid)},
		"permanent":    {promote.Permanent(errors.New("push refused by a hook"))},
		"new sentinel": {fmt.Errorf("qa/x: %w", promote.NewPermanent("a new kind of final failure"))},
		"out of tries": {errors.New("down"), errors.New("down"), errors.New("down")},
	} {
		t.Run(name, func(t *testing.T) {
			repo := &fakeRepo{fail: fail}
			s, st, c := newService(t, repo)
			b := accept(t, st, "registry.example.com/acme/hello:1")
			for range fail {
				runOnce(t, s)
				c.Add(10 * time.Minute)
			}
			got := get(t, st, b.ID)
			if got.State != promote.StateQAFailed || got.Error == "" {
				t.Fatalf("build %+v", got)
			}
			drain(t, s) // the notification
			if n, err := st.Pending(context.Background()); err != nil || n != 0 {
				t.Fatalf("pending %d %v", n, err)
			}
		})
	}
}

func TestServiceSkipsSupersededBuilds(t *testing.T) {
	repo := &fakeRepo{}
	s, st, _ := newService(t, repo)
	old := accept(t, st, "registry.example.com/acme/hello:1")
	newer := accept(t, st, "registry.example.com/acme/hello:2")
	runOnce(t, s)
	runOnce(t, s)
	if got := get(t, st, old.ID); got.State != promote.StateSuperseded || got.SupersededBy != newer.ID {
		t.Fatalf("old build %+v", got)
	}
	if repo.calls() != 1 || repo.deploys[0] != newer.ID {
		t.Fatalf("deploys %v, want only the newer build", repo.deploys)
	}
}

// TestServiceTakesOverAfterACrash: a worker claims the job and dies before
// recording anything; once its lease ends another worker finishes the build.
func TestServiceTakesOverAfterACrash(t *testing.T) {
	repo := &fakeRepo{}
	s, st, c := newService(t, repo)
	b := accept(t, st, "registry.example.com/acme/hello:1")
	if _, ok, err := st.Claim(context.Background(), "crashed", time.Minute, c.Now()); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if runOnce(t, s) {
		t.Fatal("took a job whose lease is held")
	}
	c.Add(2 * time.Minute)
	runOnce(t, s)
	if got := get(t, st, b.ID); got.State != promote.StateQAReady {
		t.Fatalf("after takeover: %s", got.State)
	}
	if err := st.Complete(context.Background(), 1, "crashed"); !errors.Is(err, promote.ErrLeaseLost) {
		t.Fatalf("the crashed worker completing: %v, want ErrLeaseLost", err)
	}
}

// TestServiceShutdownFinishesJobs: when Run's ctx ends, the job in progress
// is given Grace to finish, and finishes.
func TestServiceShutdownFinishesJobs(t *testing.T) {
	repo := &fakeRepo{started: make(chan struct{}, 1), release: make(chan struct{})}
	s, st, _ := newService(t, repo)
	s.Grace = 5 * time.Second
	b := accept(t, st, "registry.example.com/acme/hello:1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	<-repo.started
	cancel()
	time.Sleep(50 * time.Millisecond)
	close(repo.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := get(t, st, b.ID); got.State != promote.StateQAReady {
		t.Fatalf("after shutdown: %s, want qa-ready", got.State)
	}
	// Only the notification the deploy queued is left, for the next start.
	if n, err := st.Pending(context.Background()); err != nil || n != 1 {
		t.Fatalf("pending jobs: %d %v, want 1", n, err)
	}
}

// TestServiceShutdownGraceEnds: a job that outlasts Grace is stopped and
// left to its lease, to run again.
func TestServiceShutdownGraceEnds(t *testing.T) {
	repo := &fakeRepo{started: make(chan struct{}, 1), release: make(chan struct{})}
	s, st, _ := newService(t, repo)
	s.Grace = 100 * time.Millisecond
	b := accept(t, st, "registry.example.com/acme/hello:1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	<-repo.started
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not end after its grace")
	}
	if took := time.Since(start); took < s.Grace {
		t.Errorf("Run ended %v after ctx, before its grace of %v", took, s.Grace)
	}
	if got := get(t, st, b.ID); got.State != promote.StateDeploying {
		t.Fatalf("after shutdown: %s, want deploying (to be taken up again)", got.State)
	}
	if n, err := st.Pending(context.Background()); err != nil || n != 1 {
		t.Fatalf("pending jobs: %d %v, want the job still queued", n, err)
	}
}

// TestServiceHeartbeat: a job that runs longer than its lease keeps it: a
// second worker polling meanwhile does not run it again.
func TestServiceHeartbeat(t *testing.T) {
	repo := &fakeRepo{started: make(chan struct{}, 1), release: make(chan struct{})}
	s, st, _ := newService(t, repo)
	s.Now, s.Lease, s.Poll = nil, 300*time.Millisecond, 20*time.Millisecond
	accept(t, st, "registry.example.com/acme/hello:1")
	other := &promote.Service{Config: s.Config, Store: st, Repo: repo, Worker: "w2", Lease: s.Lease, Poll: s.Poll}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 2)
	go func() { done <- s.Run(ctx) }()
	<-repo.started
	go func() { done <- other.Run(ctx) }()
	time.Sleep(4 * s.Lease) // the lease would have run out three times over
	close(repo.release)
	deadline := time.Now().Add(5 * time.Second)
	for repo.calls() < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	<-done
	if n := repo.calls(); n != 1 {
		t.Fatalf("%d deploys, want 1: the heartbeat kept the lease", n)
	}
}
