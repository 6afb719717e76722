package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"testing"
	"time"

	"github.com/promotebot/promotebot/promote"
)

// base is a time for jobs that is not now, with microseconds, so that the
// queue is driven by the times the test passes and precision is checked.
var base = time.Date(2031, 3, 14, 15, 9, 26, 535897000, time.UTC)

func claim(t *testing.T, s promote.Store, worker string, lease time.Duration, now time.Time) (promote.Job, bool) {
	t.Helper()
	j, ok, err := s.Claim(context.Background(), worker, lease, now)
	if err != nil {
		t.Fatalf("Claim(%s): %v", worker, err)
	}
	return j, ok
}

func testApprovals(t *testing.T, open opener) {
	ctx := context.Background()
	s := open.must(t)
	b := create(t, s, build("1.0.0"))
	other := create(t, s, build("1.1.0"))
	add := func(a promote.Approval) bool {
		t.Helper()
		added, err := s.AddApproval(ctx, a, promote.Job{Kind: promote.JobNotify, Payload: a.User})
		if err != nil {
			t.Fatalf("AddApproval(%+v): %v", a, err)
		}
		return added
	}
	first := promote.Approval{BuildID: b.ID, User: "UQA1", Name: "Ada", Verdict: promote.Approve, At: base}
	second := promote.Approval{BuildID: b.ID, User: "UQA2", Name: "Bob", Verdict: promote.Reject, Reason: "broken", At: base.Add(time.Second)}
	if !add(second) || !add(first) {
		t.Fatal("a first verdict was refused")
	}
	if add(promote.Approval{BuildID: b.ID, User: "UQA1", Name: "Ada", Verdict: promote.Reject, At: base.Add(time.Hour)}) {
		t.Error("a second verdict by UQA1 was added")
	}
	if !add(promote.Approval{BuildID: other.ID, User: "UQA1", Verdict: promote.Approve}) {
		t.Error("UQA1's verdict on another build was refused")
	}
	// Each added verdict enqueued its job; the refused one did not.
	if n := pending(t, s); n != 3 {
		t.Errorf("Pending = %d, want 3: one job per added verdict", n)
	}
	got, err := s.Approvals(ctx, b.ID)
	if err != nil {
		t.Fatalf("Approvals: %v", err)
	}
	want := []promote.Approval{first, second} // oldest first, the first verdict kept
	if len(got) != len(want) {
		t.Fatalf("Approvals = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] || got[i].At.Location() != time.UTC {
			t.Errorf("approval %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if as, err := s.Approvals(ctx, other.ID); err != nil || len(as) != 1 || as[0].At.IsZero() {
		t.Errorf("Approvals(other) = %+v, %v; want one, timed", as, err)
	}
	if _, err := s.AddApproval(ctx, promote.Approval{BuildID: "01ARZ3NDEKTSV4RRFFQ69G5FAV", User: "U", Verdict: promote.Approve}); !errors.Is(err, promote.ErrNotFound) {
		t.Errorf("AddApproval(unknown build) = %v, want ErrNotFound", err)
	}
	if _, err := s.AddApproval(ctx, promote.Approval{BuildID: b.ID, User: "UQA3", Verdict: "maybe"}); err == nil {
		t.Error("AddApproval(verdict maybe) succeeded")
	}
}

func testJobs(t *testing.T, open opener) {
	ctx := context.Background()
	s := open.must(t)
	create(t, s, build("1.0.0"),
		promote.Job{Kind: promote.JobDeployQA, RunAt: base.Add(2 * time.Second)},
		promote.Job{Kind: promote.JobNotify, RunAt: base},
		promote.Job{Kind: promote.JobPromote, RunAt: base.Add(time.Hour)},
	)
	if _, ok := claim(t, s, "w1", time.Minute, base.Add(-time.Second)); ok {
		t.Fatal("claimed a job before it was due")
	}
	notify, ok := claim(t, s, "w1", time.Minute, base.Add(5*time.Second))
	if !ok || notify.Kind != promote.JobNotify || !notify.RunAt.Equal(base) || notify.RunAt.Location() != time.UTC {
		t.Fatalf("Claim = %+v, %v; want the notify job due at %v", notify, ok, base)
	}
	deploy, ok := claim(t, s, "w1", time.Minute, base.Add(5*time.Second))
	if !ok || deploy.Kind != promote.JobDeployQA {
		t.Fatalf("second Claim = %+v, %v; want the deploy job", deploy, ok)
	}
	if j, ok := claim(t, s, "w2", time.Minute, base.Add(5*time.Second)); ok {
		t.Fatalf("third Claim = %+v; want none due and free", j)
	}
	if err := s.Complete(ctx, notify.ID, "w1"); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if err := s.Complete(ctx, notify.ID, "w1"); !errors.Is(err, promote.ErrLeaseLost) {
		t.Errorf("Complete twice = %v, want ErrLeaseLost", err)
	}
	retryAt := base.Add(10 * time.Minute)
	if err := s.Retry(ctx, deploy.ID, "w1", retryAt, "git push: connection reset"); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	if j, ok := claim(t, s, "w1", time.Minute, retryAt.Add(-time.Millisecond)); ok {
		t.Fatalf("claimed %+v before its retry was due", j)
	}
	again, ok := claim(t, s, "w2", time.Minute, retryAt)
	if !ok || again.ID != deploy.ID || again.Attempts != 1 || again.LastErr != "git push: connection reset" || !again.RunAt.Equal(retryAt) {
		t.Fatalf("Claim after Retry = %+v, %v; want the deploy job, 1 attempt, the reason, at %v", again, ok, retryAt)
	}
	if err := s.Fail(ctx, again.ID, "w2", "rejected by the remote"); err != nil {
		t.Fatalf("Fail: %v", err)
	}
	if n := pending(t, s); n != 1 {
		t.Errorf("Pending = %d, want 1 (the promote job)", n)
	}
	for name, err := range map[string]error{
		"Complete": s.Complete(ctx, 987654, "w1"),
		"Retry":    s.Retry(ctx, 987654, "w1", base, "x"),
		"Fail":     s.Fail(ctx, 987654, "w1", "x"),
	} {
		if !errors.Is(err, promote.ErrNotFound) {
			t.Errorf("%s(unknown job) = %v, want ErrNotFound", name, err)
		}
	}
	if _, _, err := s.Claim(ctx, "", time.Minute, base); err == nil {
		t.Error("Claim without a worker succeeded")
	}
}

func testLeaseExpiry(t *testing.T, open opener) {
	ctx := context.Background()
	s := open.must(t)
	create(t, s, build("1.0.0"), promote.Job{Kind: promote.JobDeployQA, RunAt: base})
	j, ok := claim(t, s, "w1", time.Minute, base)
	if !ok {
		t.Fatal("no job to claim")
	}
	if _, ok := claim(t, s, "w2", time.Minute, base.Add(59*time.Second)); ok {
		t.Fatal("w2 claimed a job w1 holds")
	}
	j2, ok := claim(t, s, "w2", time.Minute, base.Add(61*time.Second))
	if !ok || j2.ID != j.ID {
		t.Fatalf("w2 Claim after the lease expired = %+v, %v; want job %d", j2, ok, j.ID)
	}
	for name, err := range map[string]error{
		"Complete": s.Complete(ctx, j.ID, "w1"),
		"Retry":    s.Retry(ctx, j.ID, "w1", base, "late"),
		"Fail":     s.Fail(ctx, j.ID, "w1", "late"),
	} {
		if !errors.Is(err, promote.ErrLeaseLost) {
			t.Errorf("w1 %s = %v, want ErrLeaseLost", name, err)
		}
	}
	if err := s.Complete(ctx, j.ID, "w2"); err != nil {
		t.Errorf("w2 Complete: %v", err)
	}
	if n := pending(t, s); n != 0 {
		t.Errorf("Pending = %d, want 0", n)
	}
}

func testConcurrentClaims(t *testing.T, open opener) {
	ctx := context.Background()
	s := open.must(t)
	const n = 100
	for i := range n { // one job per build: jobs of one build and kind take turns
		b := build(fmt.Sprintf("1.0.%d", i))
		b.Target = fmt.Sprintf("t-%d", i)
		create(t, s, b, promote.Job{Kind: promote.JobNotify, RunAt: base, Payload: fmt.Sprint(i)})
	}
	var (
		mu     sync.Mutex
		holder = map[int64]string{}
		wg     sync.WaitGroup
		errs   = make(chan error, 4)
	)
	for w := range 4 { // two workers, each with two goroutines
		worker := fmt.Sprintf("worker-%d", w%2)
		wg.Go(func() {
			for {
				j, ok, err := s.Claim(ctx, worker, time.Hour, base)
				if err != nil || !ok {
					errs <- err
					return
				}
				mu.Lock()
				if h, dup := holder[j.ID]; dup {
					t.Errorf("job %d claimed by %s and again by %s", j.ID, h, worker)
				}
				holder[j.ID] = worker
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Claim: %v", err)
		}
	}
	if len(holder) != n {
		t.Errorf("%d distinct jobs claimed, want %d", len(holder), n)
	}
	for id, worker := range holder {
		if err := s.Complete(ctx, id, worker); err != nil {
			t.Fatalf("Complete(%d): %v", id, err)
		}
	}
	if p := pending(t, s); p != 0 {
		t.Errorf("Pending = %d, want 0", p)
	}
}

func testReopen(t *testing.T, open opener) {
	ctx := context.Background()
	s := open.must(t)
	b := create(t, s, build("1.0.0"), promote.Job{Kind: promote.JobDeployQA, RunAt: base})
	b = apply(t, s, b.ID, promote.EventDeploy)
	a := promote.Approval{BuildID: b.ID, User: "UQA1", Verdict: promote.Approve, At: base}
	if _, err := s.AddApproval(ctx, a); err != nil {
		t.Fatalf("AddApproval: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = open.must(t)
	sameBuild(t, get(t, s, b.ID), b)
	if h := history(t, s, b.ID); len(h) != 1 || h[0].Event != promote.EventDeploy {
		t.Errorf("History after reopen = %+v", h)
	}
	if as, err := s.Approvals(ctx, b.ID); err != nil || len(as) != 1 || as[0] != a {
		t.Errorf("Approvals after reopen = %+v, %v", as, err)
	}
	if j, ok := claim(t, s, "w1", time.Minute, base); !ok || j.BuildID != b.ID {
		t.Errorf("Claim after reopen = %+v, %v", j, ok)
	}
	if _, created, _, err := s.Create(ctx, build("1.0.0")); err != nil || created {
		t.Errorf("Create(same build) after reopen = created %v, %v", created, err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func testMigrations(t *testing.T, open opener) {
	stores := make([]promote.Store, 4)
	var wg sync.WaitGroup
	for i := range stores { // replicas starting at once on an empty database
		wg.Go(func() {
			var err error
			if stores[i], err = open(t); err != nil {
				t.Errorf("open #%d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	s := open.must(t) // and once more, on the migrated database
	create(t, s, build("1.0.0"))

	core, dir := storeDB(t, s)
	files, err := fs.ReadDir(migrations, dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := core.r.QueryRowContext(context.Background(), `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatalf("count migrations: %v", err)
	}
	if n != len(files) || n == 0 {
		t.Errorf("schema_migrations has %d rows, want %d", n, len(files))
	}
}

// storeDB returns the shared core of a Store and its migrations directory.
func storeDB(t *testing.T, s promote.Store) (*db, string) {
	t.Helper()
	switch s := s.(type) {
	case *SQLite:
		return s.db, "migrations/sqlite"
	case *Postgres:
		return s.db, "migrations/postgres"
	}
	t.Fatalf("unknown store %T", s)
	return nil, ""
}

// testJobsOfABuildTakeTurns: of the jobs of one build and kind, one is
// leased at a time; other kinds and other builds are not held up.
func testJobsOfABuildTakeTurns(t *testing.T, open opener) {
	ctx := context.Background()
	s := open.must(t)
	b := create(t, s, build("1.0.0"),
		promote.Job{Kind: promote.JobNotify, RunAt: base, Payload: "1"},
		promote.Job{Kind: promote.JobNotify, RunAt: base, Payload: "2"},
		promote.Job{Kind: promote.JobDeployQA, RunAt: base})
	first, ok, err := s.Claim(ctx, "w1", time.Minute, base)
	if err != nil || !ok || first.Kind != promote.JobNotify || first.Payload != "1" {
		t.Fatalf("first claim = %+v, %v, %v", first, ok, err)
	}
	second, ok, err := s.Claim(ctx, "w2", time.Minute, base)
	if err != nil || !ok || second.Kind != promote.JobDeployQA {
		t.Fatalf("second claim = %+v, %v, %v; want the deploy job, not the other notification", second, ok, err)
	}
	if j, ok, err := s.Claim(ctx, "w3", time.Minute, base); err != nil || ok {
		t.Fatalf("third claim = %+v, %v, %v; want none while the first notification runs", j, ok, err)
	}
	if err := s.Complete(ctx, first.ID, "w1"); err != nil {
		t.Fatal(err)
	}
	third, ok, err := s.Claim(ctx, "w3", time.Minute, base)
	if err != nil || !ok || third.Payload != "2" || third.BuildID != b.ID {
		t.Fatalf("claim after the first ended = %+v, %v, %v", third, ok, err)
	}
	// A lease that ran out no longer holds the others up.
	if _, err := s.Apply(ctx, b.ID, promote.EventDeploy, nil,
		promote.Job{Kind: promote.JobNotify, RunAt: base, Payload: "3"}); err != nil {
		t.Fatal(err)
	}
	if j, ok, err := s.Claim(ctx, "w4", time.Minute, base.Add(2*time.Minute)); err != nil || !ok || j.Payload != "2" {
		t.Fatalf("claim after the lease ran out = %+v, %v, %v; want the expired one again", j, ok, err)
	}
}

// testCoalesce: a coalescing job is not enqueued while one of its kind for
// the build waits to start, and is once that one runs.
func testCoalesce(t *testing.T, open opener) {
	ctx := context.Background()
	s := open.must(t)
	notify := promote.Job{Kind: promote.JobNotify, Coalesce: true}
	b := create(t, s, build("1.0.0"), notify)
	if _, err := s.Apply(ctx, b.ID, promote.EventDeploy, nil, notify); err != nil {
		t.Fatal(err)
	}
	if n := pending(t, s); n != 1 {
		t.Fatalf("Pending = %d, want 1: the second notification coalesced", n)
	}
	if _, ok, err := s.Claim(ctx, "w1", time.Minute, time.Now()); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if _, err := s.Apply(ctx, b.ID, promote.EventDeployed, nil, notify); err != nil {
		t.Fatal(err)
	}
	if n := pending(t, s); n != 2 {
		t.Fatalf("Pending = %d, want 2: the running one does not absorb a new one", n)
	}
}

// testSupersedeNotifies: the notification jobs of a new build are also
// enqueued for the builds it supersedes; its other jobs are not.
func testSupersedeNotifies(t *testing.T, open opener) {
	ctx := context.Background()
	s := open.must(t)
	old := create(t, s, build("1.0.0"))
	nb := create(t, s, build("1.0.1"), promote.Job{Kind: promote.JobDeployQA, RunAt: base},
		promote.Job{Kind: promote.JobNotify, RunAt: base, Coalesce: true})
	got := map[string][]promote.JobKind{}
	for {
		j, ok, err := s.Claim(ctx, "w", time.Minute, base)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		got[j.BuildID] = append(got[j.BuildID], j.Kind)
	}
	if len(got[old.ID]) != 1 || got[old.ID][0] != promote.JobNotify {
		t.Errorf("jobs of the superseded build = %v, want one notify", got[old.ID])
	}
	if len(got[nb.ID]) != 2 {
		t.Errorf("jobs of the new build = %v, want deploy and notify", got[nb.ID])
	}
}

// testEditPostponeHurry: Edit changes fields, not the state, and records no
// transition; Postpone counts no attempt; Hurry makes a waiting job due.
func testEditPostponeHurry(t *testing.T, open opener) {
	ctx := context.Background()
	s := open.must(t)
	b := create(t, s, build("1.0.0"), promote.Job{Kind: promote.JobPromote, RunAt: base})
	got, err := s.Edit(ctx, b.ID, func(nb *promote.Build) error {
		nb.PullRequest, nb.State = "https://github.example.com/acme/deploy/pull/7", promote.StatePromoted
		return nil
	}, promote.Job{Kind: promote.JobNotify, RunAt: base})
	if err != nil || got.PullRequest == "" || got.State != promote.StateReceived {
		t.Fatalf("Edit = %+v, %v", got, err)
	}
	if h := history(t, s, b.ID); len(h) != 0 {
		t.Fatalf("Edit recorded transitions %+v", h)
	}
	if n := pending(t, s); n != 2 {
		t.Fatalf("Pending = %d, want 2", n)
	}
	j, ok, err := s.Claim(ctx, "w", time.Minute, base)
	if err != nil || !ok || j.Kind != promote.JobPromote {
		t.Fatalf("claim = %+v %v %v", j, ok, err)
	}
	later := base.Add(time.Hour)
	if err := s.Postpone(ctx, j.ID, "w", later, "checks pending"); err != nil {
		t.Fatal(err)
	}
	if err := s.Postpone(ctx, j.ID, "w", later, "again"); !errors.Is(err, promote.ErrLeaseLost) {
		t.Fatalf("Postpone without the lease: %v", err)
	}
	if hurried, err := s.Hurry(ctx, b.ID, promote.JobPromote); err != nil || !hurried {
		t.Fatalf("Hurry = %v, %v", hurried, err)
	}
	j2, ok, err := s.Claim(ctx, "w", time.Minute, time.Now().Add(time.Second))
	for ok && err == nil && j2.Kind != promote.JobPromote {
		j2, ok, err = s.Claim(ctx, "w", time.Minute, time.Now().Add(time.Second))
	}
	if err != nil || !ok || j2.ID != j.ID || j2.Attempts != 0 || j2.LastErr != "checks pending" {
		t.Fatalf("claim after Hurry = %+v %v %v; want the job again, no attempt counted", j2, ok, err)
	}
	if hurried, err := s.Hurry(ctx, b.ID, promote.JobPromote); err != nil || hurried {
		t.Fatalf("Hurry of a running job = %v, %v; want false", hurried, err)
	}
	if _, err := s.Edit(ctx, "nope", nil); !errors.Is(err, promote.ErrNotFound) {
		t.Fatalf("Edit of an unknown build: %v", err)
	}
}

// testExtend: a heartbeat keeps a lease; only its holder can extend it.
func testExtend(t *testing.T, open opener) {
	ctx := context.Background()
	s := open.must(t)
	create(t, s, build("1.0.0"), promote.Job{Kind: promote.JobDeployQA, RunAt: base})
	j, ok, err := s.Claim(ctx, "w1", time.Minute, base)
	if err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if err := s.Extend(ctx, j.ID, "w1", base.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if j2, ok, err := s.Claim(ctx, "w2", time.Minute, base.Add(5*time.Minute)); err != nil || ok {
		t.Fatalf("claim of an extended lease = %+v %v %v", j2, ok, err)
	}
	if err := s.Extend(ctx, j.ID, "w2", base.Add(time.Hour)); !errors.Is(err, promote.ErrLeaseLost) {
		t.Fatalf("extend by another worker: %v, want ErrLeaseLost", err)
	}
	if j2, ok, err := s.Claim(ctx, "w2", time.Minute, base.Add(11*time.Minute)); err != nil || !ok || j2.ID != j.ID {
		t.Fatalf("claim after the extended lease = %+v %v %v", j2, ok, err)
	}
	if err := s.Extend(ctx, j.ID, "w1", base.Add(time.Hour)); !errors.Is(err, promote.ErrLeaseLost) {
		t.Fatalf("extend after losing the lease: %v, want ErrLeaseLost", err)
	}
}
