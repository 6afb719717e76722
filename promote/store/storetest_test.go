package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/promotebot/promotebot/promote"
)

// opener opens a Store on one database; each call opens another Store on
// the same database, closed when the test ends. It may be called from any
// goroutine.
type opener func(t *testing.T) (promote.Store, error)

// must opens a Store or ends the test.
func (open opener) must(t *testing.T) promote.Store {
	t.Helper()
	s, err := open(t)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

// runConformance runs the promote.Store contract against one kind of
// database; fresh makes a new, empty database for each test.
func runConformance(t *testing.T, fresh func(t *testing.T) opener) {
	tests := []struct {
		name string
		run  func(t *testing.T, open opener)
	}{
		{"CreateGet", testCreateGet},
		{"CreateIdempotent", testCreateIdempotent},
		{"CreateConcurrent", testCreateConcurrent},
		{"Supersede", testSupersede},
		{"SupersedeConcurrent", testSupersedeConcurrent},
		{"Apply", testApply},
		{"ApplyConcurrent", testApplyConcurrent},
		{"ApplyRefused", testApplyRefused},
		{"History", testHistory},
		{"CountByState", testCountByState},
		{"Find", testFind},
		{"Approvals", testApprovals},
		{"Messages", testMessages},
		{"Clicks", testClicks},
		{"Jobs", testJobs},
		{"LeaseExpiry", testLeaseExpiry},
		{"ConcurrentClaims", testConcurrentClaims},
		{"JobsOfABuildTakeTurns", testJobsOfABuildTakeTurns},
		{"Coalesce", testCoalesce},
		{"SupersedeNotifies", testSupersedeNotifies},
		{"EditPostponeHurry", testEditPostponeHurry},
		{"Extend", testExtend},
		{"Reopen", testReopen},
		{"Migrations", testMigrations},
		{"Environments", testEnvironments},
		{"Replicas", testReplicas},
		{"CreateInEnvironment", testCreateInEnvironment},
		{"EnvironmentLimitConcurrent", testEnvironmentLimitConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, fresh(t))
		})
	}
}

// build is a build of the hello project's main branch.
func build(image string) promote.Build {
	return promote.Build{
		Project: "hello", Image: "registry.example.com/acme/hello:" + image,
		Kind: promote.KindBranch, Target: "main",
	}
}

func create(t *testing.T, s promote.Store, b promote.Build, jobs ...promote.Job) promote.Build {
	t.Helper()
	stored, created, _, err := s.Create(context.Background(), b, jobs...)
	if err != nil || !created {
		t.Fatalf("Create(%s) = created %v, %v; want a new build", b.Image, created, err)
	}
	return stored
}

func get(t *testing.T, s promote.Store, id string) promote.Build {
	t.Helper()
	b, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return b
}

func apply(t *testing.T, s promote.Store, id string, evs ...promote.Event) promote.Build {
	t.Helper()
	var b promote.Build
	for _, ev := range evs {
		var err error
		if b, err = s.Apply(context.Background(), id, ev, nil); err != nil {
			t.Fatalf("Apply(%s, %s): %v", id, ev, err)
		}
	}
	return b
}

func pending(t *testing.T, s promote.Store) int {
	t.Helper()
	n, err := s.Pending(context.Background())
	if err != nil {
		t.Fatalf("Pending: %v", err)
	}
	return n
}

func history(t *testing.T, s promote.Store, id string) []promote.Transition {
	t.Helper()
	ts, err := s.History(context.Background(), id)
	if err != nil {
		t.Fatalf("History(%s): %v", id, err)
	}
	return ts
}

// sameBuild fails unless got and want are equal, times by instant, and got's
// times are UTC.
func sameBuild(t *testing.T, got, want promote.Build) {
	t.Helper()
	for _, tm := range []time.Time{got.CreatedAt, got.UpdatedAt} {
		if tm.Location() != time.UTC {
			t.Errorf("build %s time %v is not UTC", got.ID, tm)
		}
	}
	if !got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("build %s times = %v, %v; want %v, %v", got.ID, got.CreatedAt, got.UpdatedAt, want.CreatedAt, want.UpdatedAt)
	}
	got.CreatedAt, got.UpdatedAt, want.CreatedAt, want.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("build = %+v\nwant    %+v", got, want)
	}
}

func testCreateGet(t *testing.T, open opener) {
	ctx := context.Background()
	s := open.must(t)
	in := build("1.0.0")
	in.Commit, in.Author, in.BuildURL = "0123abc", "ada", "https://ci.example.com/1"
	in.BuiltAt = time.Date(2026, 12, 7, 9, 30, 0, 0, time.UTC)
	in.State, in.Environment = promote.StateClosed, "ignored" // Create starts every build as received
	before := time.Now()
	stored, created, superseded, err := s.Create(ctx, in, promote.Job{Kind: promote.JobDeployQA, Payload: `{"n":1}`})
	if err != nil || !created || len(superseded) != 0 {
		t.Fatalf("Create = created %v, superseded %v, %v", created, superseded, err)
	}
	if len(stored.ID) != idLen || stored.State != promote.StateReceived || stored.Commit != in.Commit ||
		!stored.BuiltAt.Equal(in.BuiltAt) {
		t.Errorf("stored = %+v", stored)
	}
	if stored.CreatedAt.Before(before.Add(-time.Millisecond)) || stored.CreatedAt.After(time.Now()) ||
		!stored.UpdatedAt.Equal(stored.CreatedAt) {
		t.Errorf("CreatedAt %v, UpdatedAt %v; want now", stored.CreatedAt, stored.UpdatedAt)
	}
	sameBuild(t, get(t, s, stored.ID), stored)

	if _, err := s.Get(ctx, "01ARZ3NDEKTSV4RRFFQ69G5FAV"); !errors.Is(err, promote.ErrNotFound) {
		t.Errorf("Get(unknown) = %v, want ErrNotFound", err)
	}
	j, ok, err := s.Claim(ctx, "w1", time.Minute, time.Now().Add(time.Second))
	if err != nil || !ok {
		t.Fatalf("Claim = %v, %v; want the job enqueued with the build", ok, err)
	}
	if j.BuildID != stored.ID || j.Kind != promote.JobDeployQA || j.Payload != `{"n":1}` || j.Attempts != 0 {
		t.Errorf("job = %+v", j)
	}
}

func testCreateIdempotent(t *testing.T, open opener) {
	ctx := context.Background()
	s := open.must(t)
	first := create(t, s, build("1.0.0"), promote.Job{Kind: promote.JobDeployQA})
	again := build("1.0.0")
	again.Commit = "different" // the key is project, image, kind and target
	stored, created, superseded, err := s.Create(ctx, again, promote.Job{Kind: promote.JobDeployQA})
	if err != nil || created || len(superseded) != 0 {
		t.Fatalf("second Create = created %v, superseded %v, %v; want the first build", created, superseded, err)
	}
	sameBuild(t, stored, first)
	if n := pending(t, s); n != 1 {
		t.Errorf("Pending = %d, want 1: a repeated build enqueues nothing", n)
	}
	other := build("1.0.0")
	other.Kind = promote.KindTag
	if _, created, _, err := s.Create(ctx, other); err != nil || !created {
		t.Errorf("Create(same image as a tag) = created %v, %v; want a new build", created, err)
	}
}

func testCreateConcurrent(t *testing.T, open opener) {
	ctx := context.Background()
	s := open.must(t)
	const n = 20
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		ids     = make([]string, n)
		created = make([]bool, n)
		errs    = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			b, c, _, err := s.Create(ctx, build("2.0.0"), promote.Job{Kind: promote.JobDeployQA})
			ids[i], created[i], errs[i] = b.ID, c, err
		})
	}
	close(start)
	wg.Wait()
	winners := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Create #%d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Errorf("Create #%d returned %s, #0 %s", i, ids[i], ids[0])
		}
		if created[i] {
			winners++
		}
	}
	if winners != 1 {
		t.Errorf("%d Creates created the build, want 1", winners)
	}
	if p := pending(t, s); p != 1 {
		t.Errorf("Pending = %d, want 1", p)
	}
}

func testSupersede(t *testing.T, open opener) {
	ctx := context.Background()
	s := open.must(t)
	promoting := create(t, s, build("0.9.0"))
	apply(t, s, promoting.ID, promote.EventDeploy, promote.EventDeployed, promote.EventApproved, promote.EventPromote)
	closed := create(t, s, build("0.9.1"))
	apply(t, s, closed.ID, promote.EventClose)

	older := create(t, s, build("1.0.0"))
	older = apply(t, s, older.ID, promote.EventDeploy)
	feature := build("1.0.0-feature")
	feature.Target = "feature/login"
	feature = create(t, s, feature)
	tag := build("1.0.0")
	tag.Kind, tag.Target = promote.KindTag, "main"
	tag = create(t, s, tag)

	newer, created, superseded, err := s.Create(ctx, build("1.1.0"))
	if err != nil || !created {
		t.Fatalf("Create(newer) = created %v, %v", created, err)
	}
	if len(superseded) != 1 || superseded[0].ID != older.ID {
		t.Fatalf("superseded = %+v, want only %s", superseded, older.ID)
	}
	want := older
	want.State, want.SupersededBy, want.UpdatedAt = promote.StateSuperseded, newer.ID, newer.CreatedAt
	sameBuild(t, superseded[0], want)
	sameBuild(t, get(t, s, older.ID), want)
	wantHist := []promote.Transition{
		{From: promote.StateReceived, To: promote.StateDeploying, Event: promote.EventDeploy},
		{From: promote.StateDeploying, To: promote.StateSuperseded, Event: promote.EventSupersede, At: newer.CreatedAt},
	}
	if h := history(t, s, older.ID); len(h) != 2 || h[0].To != wantHist[0].To || h[1] != wantHist[1] {
		t.Errorf("History(older) = %+v, want %+v", h, wantHist)
	}
	for id, st := range map[string]promote.State{
		promoting.ID: promote.StatePromoting, closed.ID: promote.StateClosed,
		feature.ID: promote.StateReceived, tag.ID: promote.StateReceived,
	} {
		if b := get(t, s, id); b.State != st || b.SupersededBy != "" {
			t.Errorf("build %s is %s superseded by %q, want %s and untouched", b.Image, b.State, b.SupersededBy, st)
		}
	}

	newest, _, superseded, err := s.Create(ctx, build("1.2.0"))
	if err != nil || len(superseded) != 1 || superseded[0].ID != newer.ID || superseded[0].SupersededBy != newest.ID {
		t.Errorf("Create(newest) superseded %+v, %v; want %s", superseded, err, newer.ID)
	}
}

// testSupersedeConcurrent creates builds of different images for one target
// at once, in several rounds: whatever the order, exactly one build of each
// target, the last created, stays active.
func testSupersedeConcurrent(t *testing.T, open opener) {
	ctx := context.Background()
	s := open.must(t)
	const rounds, n = 5, 8
	for r := range rounds {
		target := fmt.Sprintf("round-%d", r)
		var wg sync.WaitGroup
		start := make(chan struct{})
		ids := make([]string, n)
		for i := range n {
			wg.Go(func() {
				b := build(fmt.Sprintf("3.%d.%d", r, i))
				b.Target = target
				<-start
				stored, _, _, err := s.Create(ctx, b)
				if err != nil {
					t.Errorf("Create %s: %v", b.Image, err)
				}
				ids[i] = stored.ID
			})
		}
		close(start)
		wg.Wait()
		active := 0
		for _, id := range ids {
			b := get(t, s, id)
			switch {
			case b.State.Active():
				active++
			// Creates of one target take turns and ids are made in turn,
			// so the newer build has the greater id.
			case b.State != promote.StateSuperseded || b.SupersededBy <= b.ID:
				t.Errorf("build %s is %s, superseded by %q: want superseded by a newer build", b.ID, b.State, b.SupersededBy)
			}
		}
		if active != 1 {
			t.Fatalf("round %d: %d builds of one target are active, want 1", r, active)
		}
	}
}

// testApplyConcurrent applies one event to a build from many goroutines:
// the row lock lets exactly one through.
func testApplyConcurrent(t *testing.T, open opener) {
	ctx := context.Background()
	s := open.must(t)
	b := create(t, s, build("1.0.0"))
	const n = 10
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		applied int
		start   = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-start
			_, err := s.Apply(ctx, b.ID, promote.EventDeploy, func(*promote.Build) error {
				time.Sleep(20 * time.Millisecond) // others read the build now, unless it is locked
				return nil
			}, promote.Job{Kind: promote.JobDeployQA})
			var te *promote.TransitionError
			switch {
			case err == nil:
				mu.Lock()
				applied++
				mu.Unlock()
			case !errors.As(err, &te):
				t.Errorf("Apply #%d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if applied != 1 {
		t.Errorf("%d Applies of deploy succeeded, want 1", applied)
	}
	if h := history(t, s, b.ID); len(h) != 1 {
		t.Errorf("History = %+v, want one deploy", h)
	}
	if p := pending(t, s); p != 1 {
		t.Errorf("Pending = %d, want 1", p)
	}
}

func testApply(t *testing.T, open opener) {
	ctx := context.Background()
	s := open.must(t)
	b := create(t, s, build("1.0.0"), promote.Job{Kind: promote.JobDeployQA})
	if b.Rollout.QA != nil || b.Rollout.Production != nil {
		t.Errorf("a new build has rollout records: %+v", b.Rollout)
	}
	if b.Deployments.QA != nil || b.Deployments.Production != nil {
		t.Errorf("a new build has deployment records: %+v", b.Deployments)
	}
	at := time.Date(2026, 12, 7, 10, 0, 0, 123456000, time.UTC)
	rollout := promote.Rollouts{QA: &promote.Rollout{Status: promote.RolloutDegraded, Revision: "abc", Message: `"quoted" ✓`,
		At: at, Since: at.Add(-time.Minute), Reported: at, TimedOut: true, Steps: []promote.RolloutStep{
			{Status: promote.RolloutPending, At: at.Add(-time.Minute)},
			{Status: promote.RolloutDegraded, Revision: "abc", Message: `"quoted" ✓`, Source: "flux", At: at},
		}}}
	rollback := &promote.Rollback{Image: "registry.example.com/acme/hello:0.9.0", By: "UOWN1", ByName: "Olga",
		Reason: "latency ×3", At: at, PullRequest: "https://github.com/acme/deploy-config/pull/7", Error: "x"}
	deployments := promote.BuildDeployments{
		QA:         &promote.Deployment{Environment: "qa/branch-main", ID: 1 << 40, State: promote.DeploymentSuccess},
		Production: &promote.Deployment{Environment: "production", Refused: `github: 422 "No ref found" ✓`},
	}
	time.Sleep(2 * time.Millisecond) // UpdatedAt moves
	got, err := s.Apply(ctx, b.ID, promote.EventDeploy, func(nb *promote.Build) error {
		if nb.State != promote.StateDeploying {
			t.Errorf("change sees state %s, want deploying", nb.State)
		}
		nb.Environment, nb.URL = "qa/branch-main", "https://main.branch.hello.example.com"
		nb.PromotedBy, nb.ClosedBy, nb.MergedBy = "UOWN1", "UOWN2", "octocat"
		nb.Rollout, nb.Rollback, nb.Deployments = rollout, rollback, deployments
		nb.Project, nb.State, nb.CreatedAt = "evil", promote.StatePromoted, time.Time{} // not the change's to make
		return nil
	}, promote.Job{Kind: promote.JobNotify, Payload: `{"say":"deploying"}`})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	want := b
	want.State, want.Environment, want.URL = promote.StateDeploying, "qa/branch-main", "https://main.branch.hello.example.com"
	want.PromotedBy, want.ClosedBy, want.MergedBy = "UOWN1", "UOWN2", "octocat"
	want.Rollout, want.Rollback, want.Deployments = rollout, rollback, deployments
	want.UpdatedAt = got.UpdatedAt
	sameBuild(t, got, want)
	if !got.UpdatedAt.After(b.UpdatedAt) {
		t.Errorf("UpdatedAt %v, not after %v", got.UpdatedAt, b.UpdatedAt)
	}
	sameBuild(t, get(t, s, b.ID), got)
	if n := pending(t, s); n != 2 {
		t.Errorf("Pending = %d, want 2: Apply enqueues its job", n)
	}
	h := history(t, s, b.ID)
	if len(h) != 1 || !h[0].At.Equal(got.UpdatedAt) || h[0].At.Location() != time.UTC {
		t.Errorf("History = %+v, want one transition at %v", h, got.UpdatedAt)
	}
	if _, err := s.Apply(ctx, "01ARZ3NDEKTSV4RRFFQ69G5FAV", promote.EventDeploy, nil); !errors.Is(err, promote.ErrNotFound) {
		t.Errorf("Apply(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := s.Edit(ctx, b.ID, func(nb *promote.Build) error {
		nb.Deployments.Production = nil
		return nil
	}); err != nil {
		t.Fatalf("Edit: %v", err)
	}
	if d := get(t, s, b.ID).Deployments; d.Production != nil || d.QA == nil || *d.QA != *deployments.QA {
		t.Errorf("deployments after dropping production: %+v", d)
	}
}

func testApplyRefused(t *testing.T, open opener) {
	ctx := context.Background()
	s := open.must(t)
	b := create(t, s, build("1.0.0"), promote.Job{Kind: promote.JobDeployQA})
	b = apply(t, s, b.ID, promote.EventDeploy)

	called := false
	_, err := s.Apply(ctx, b.ID, promote.EventPromote, func(*promote.Build) error {
		called = true
		return nil
	}, promote.Job{Kind: promote.JobPromote})
	var te *promote.TransitionError
	if !errors.As(err, &te) || te.From != promote.StateDeploying || te.Event != promote.EventPromote {
		t.Errorf("Apply(promote) on deploying = %v, want a *TransitionError", err)
	}
	if called {
		t.Error("change ran for an illegal event")
	}

	boom := errors.New("boom")
	_, err = s.Apply(ctx, b.ID, promote.EventDeployed, func(nb *promote.Build) error {
		nb.QACommit = "written before the failure"
		return boom
	}, promote.Job{Kind: promote.JobNotify})
	if !errors.Is(err, boom) {
		t.Errorf("Apply with a failing change = %v, want boom", err)
	}

	sameBuild(t, get(t, s, b.ID), b)
	if h := history(t, s, b.ID); len(h) != 1 {
		t.Errorf("History = %+v, want only the deploy", h)
	}
	if n := pending(t, s); n != 1 {
		t.Errorf("Pending = %d, want 1: refused Applies enqueue nothing", n)
	}
}

func testHistory(t *testing.T, open opener) {
	s := open.must(t)
	b := create(t, s, build("1.0.0"))
	path := []promote.Event{
		promote.EventDeploy, promote.EventDeployed, promote.EventApproved,
		promote.EventPromote, promote.EventPromoteFailed, promote.EventPromote, promote.EventPromoted,
	}
	apply(t, s, b.ID, path...)
	h := history(t, s, b.ID)
	if len(h) != len(path) {
		t.Fatalf("History has %d transitions, want %d: %+v", len(h), len(path), h)
	}
	from := promote.StateReceived
	for i, tr := range h {
		to, err := promote.Next(from, path[i])
		if err != nil || tr.From != from || tr.To != to || tr.Event != path[i] {
			t.Errorf("transition %d = %+v, want %s -%s-> %s", i, tr, from, path[i], to)
		}
		if i > 0 && tr.At.Before(h[i-1].At) {
			t.Errorf("transition %d at %v is before the one before it at %v", i, tr.At, h[i-1].At)
		}
		from = to
	}
	if h := history(t, s, "01ARZ3NDEKTSV4RRFFQ69G5FAV"); len(h) != 0 {
		t.Errorf("History(unknown) = %+v, want none", h)
	}
	if b := get(t, s, b.ID); b.State != promote.StatePromoted {
		t.Errorf("state = %s, want promoted", b.State)
	}
	_, err := s.Apply(context.Background(), b.ID, promote.EventClose, nil)
	if te := (*promote.TransitionError)(nil); !errors.As(err, &te) {
		t.Errorf("Apply(close) on promoted = %v, want a *TransitionError", err)
	}
	if err == nil || len(history(t, s, b.ID)) != len(path) {
		t.Error("a refused event was recorded")
	}
}

func testCountByState(t *testing.T, open opener) {
	s := open.must(t)
	ctx := context.Background()
	counts, err := s.CountByState(ctx)
	if err != nil || len(counts) != 0 {
		t.Fatalf("empty store: CountByState = %v, %v; want no states", counts, err)
	}
	create(t, s, build("1.0.0"))
	create(t, s, build("1.0.1")) // supersedes 1.0.0
	other := build("2.0.0")
	other.Target = "feature/x"
	b := create(t, s, other)
	if _, err := s.Apply(ctx, b.ID, promote.EventDeploy, nil); err != nil {
		t.Fatal(err)
	}
	counts, err = s.CountByState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[promote.State]int{promote.StateSuperseded: 1, promote.StateReceived: 1, promote.StateDeploying: 1}
	if !maps.Equal(counts, want) {
		t.Errorf("CountByState = %v, want %v", counts, want)
	}
}

func testMessages(t *testing.T, open opener) {
	s := open.must(t)
	ctx := context.Background()
	b := create(t, s, build("1.0.0"))
	ch := promote.Message{BuildID: b.ID, Role: promote.MessageChannel, Channel: "C0HELLO", TS: "1700000000.000100"}
	dm := promote.Message{BuildID: b.ID, Role: promote.MessageOwner, Recipient: "UOWN1", Channel: "D0OWN1", TS: "1700000000.000200"}
	for _, m := range []promote.Message{ch, dm} {
		stored, added, err := s.SaveMessage(ctx, m)
		if err != nil || !added || stored.TS != m.TS || stored.At.IsZero() {
			t.Fatalf("SaveMessage(%s) = %+v, %v, %v", m.Role, stored, added, err)
		}
	}
	// A second post's record for the same recipient keeps the first.
	again := dm
	again.TS = "1700000000.000999"
	stored, added, err := s.SaveMessage(ctx, again)
	if err != nil || added || stored.TS != dm.TS || stored.Channel != "D0OWN1" {
		t.Fatalf("SaveMessage again = %+v, %v, %v; want the first record", stored, added, err)
	}
	ms, err := s.Messages(ctx, b.ID)
	if err != nil || len(ms) != 2 {
		t.Fatalf("Messages = %+v, %v", ms, err)
	}
	got := map[promote.MessageRole]string{}
	for _, m := range ms {
		got[m.Role] = m.Recipient + "@" + m.Channel + "/" + m.TS
	}
	want := map[promote.MessageRole]string{
		promote.MessageChannel: "@C0HELLO/1700000000.000100",
		promote.MessageOwner:   "UOWN1@D0OWN1/1700000000.000200",
	}
	if !maps.Equal(got, want) {
		t.Errorf("Messages = %v, want %v", got, want)
	}
	if _, _, err := s.SaveMessage(ctx, promote.Message{BuildID: "nope", Role: promote.MessageQA, Channel: "D1", TS: "1"}); !errors.Is(err, promote.ErrNotFound) {
		t.Errorf("SaveMessage for an unknown build: %v, want ErrNotFound", err)
	}
	if _, _, err := s.SaveMessage(ctx, promote.Message{BuildID: b.ID, Role: promote.MessageQA}); err == nil {
		t.Error("SaveMessage without channel and ts was accepted")
	}
	if ms, err := s.Messages(ctx, "nope"); err != nil || len(ms) != 0 {
		t.Errorf("Messages of an unknown build = %v, %v", ms, err)
	}
}

func testFind(t *testing.T, open opener) {
	s := open.must(t)
	ctx := context.Background()
	old := create(t, s, build("1.0.0"))
	newer := create(t, s, build("1.0.1")) // supersedes old
	other := build("2.0.0")
	other.Target = "feature/x"
	x := create(t, s, other)
	elsewhere := build("3.0.0")
	elsewhere.Project = "other"
	create(t, s, elsewhere)
	got, err := s.Find(ctx, "hello", []promote.State{promote.StateReceived}, 10)
	if err != nil || len(got) != 2 || got[0].ID != x.ID || got[1].ID != newer.ID {
		t.Fatalf("Find received = %+v, %v; want %s then %s", got, err, x.ID, newer.ID)
	}
	got, err = s.Find(ctx, "hello", []promote.State{promote.StateReceived, promote.StateSuperseded}, 2)
	if err != nil || len(got) != 2 || got[1].ID != newer.ID {
		t.Fatalf("Find with limit 2 = %+v, %v", got, err)
	}
	got, err = s.Find(ctx, "hello", []promote.State{promote.StateSuperseded}, 10)
	if err != nil || len(got) != 1 || got[0].ID != old.ID {
		t.Fatalf("Find superseded = %+v, %v", got, err)
	}
	if got, err := s.Find(ctx, "hello", []promote.State{promote.StatePromoted}, 10); err != nil || len(got) != 0 {
		t.Fatalf("Find promoted = %+v, %v; want none", got, err)
	}
	// FindTarget: the target's builds only, newest first.
	got, err = s.FindTarget(ctx, "hello", old.Kind, old.Target, promote.States, 10)
	if err != nil || len(got) != 2 || got[0].ID != newer.ID || got[1].ID != old.ID {
		t.Fatalf("FindTarget = %+v, %v; want %s then %s", got, err, newer.ID, old.ID)
	}
	got, err = s.FindTarget(ctx, "hello", old.Kind, old.Target, []promote.State{promote.StateSuperseded}, 10)
	if err != nil || len(got) != 1 || got[0].ID != old.ID {
		t.Fatalf("FindTarget superseded = %+v, %v", got, err)
	}
	if got, err := s.FindTarget(ctx, "hello", old.Kind, old.Target, promote.States, 1); err != nil || len(got) != 1 || got[0].ID != newer.ID {
		t.Fatalf("FindTarget with limit 1 = %+v, %v", got, err)
	}
	if got, err := s.FindTarget(ctx, "other", old.Kind, old.Target, []promote.State{promote.StateSuperseded}, 10); err != nil || len(got) != 0 {
		t.Fatalf("FindTarget of another project = %+v, %v; want none", got, err)
	}
}

func env(target string) promote.Environment {
	return promote.Environment{Project: "hello", Kind: promote.KindBranch, Target: target, Name: "qa/branch-" + target,
		URL: "https://" + target + ".branch.hello.example.com", BuildID: "B" + target, Image: "registry.example.com/acme/hello:1"}
}

func testEnvironments(t *testing.T, open opener) {
	ctx := context.Background()
	s := open.must(t)
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for i, target := range []string{"a", "b"} {
		if _, err := s.ReserveEnvironment(ctx, env(target), 2, t0.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatalf("reserve %s: %v", target, err)
		}
	}
	// At the limit: a new target is refused with the idle ones listed, an
	// existing one passes and becomes the most recently active.
	_, err := s.ReserveEnvironment(ctx, env("c"), 2, t0.Add(time.Hour))
	var limit *promote.EnvLimitError
	if !errors.As(err, &limit) || limit.Limit != 2 || len(limit.Idle) != 2 || limit.Idle[0].Target != "a" {
		t.Fatalf("a third environment at limit 2: %v %+v", err, limit)
	}
	a := env("a")
	a.BuildID, a.Image = "Ba2", "registry.example.com/acme/hello:2"
	got, err := s.ReserveEnvironment(ctx, a, 2, t0.Add(2*time.Hour))
	if err != nil || got.BuildID != "Ba2" || !got.CreatedAt.Equal(t0) || !got.ActiveAt.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("a new build of an existing environment: %+v %v", got, err)
	}
	live, err := s.Environments(ctx, "hello")
	if err != nil || len(live) != 2 || live[0].Target != "b" || live[1].Target != "a" {
		t.Fatalf("live environments, idle longest first: %+v %v", live, err)
	}
	// Torn down: no longer live, so a new target fits; the record stays.
	bb := create(t, s, build("1.0.0"))
	td, err := s.EditEnvironment(ctx, "hello", promote.KindBranch, "b", func(e *promote.Environment) error {
		e.Teardown, e.TornDownAt = "branch-deleted", t0.Add(3*time.Hour)
		return nil
	}, promote.Job{Kind: promote.JobTeardown, BuildID: bb.ID, Payload: `{"kind":"branch","target":"b"}`})
	if err != nil || td.Live() {
		t.Fatalf("teardown: %+v %v", td, err)
	}
	if n := pending(t, s); n != 1 {
		t.Errorf("Pending = %d, want the teardown job", n)
	}
	got, err = s.Environment(ctx, "hello", promote.KindBranch, "b")
	if err != nil || got.Teardown != "branch-deleted" || !got.TornDownAt.Equal(t0.Add(3*time.Hour)) || !got.WarnedAt.IsZero() {
		t.Fatalf("torn-down environment: %+v %v", got, err)
	}
	if _, err := s.ReserveEnvironment(ctx, env("c"), 2, t0.Add(4*time.Hour)); err != nil {
		t.Fatalf("a new target after a teardown: %v", err)
	}
	// A torn-down target built again comes back, as a new environment.
	_, err = s.ReserveEnvironment(ctx, env("b"), 2, t0.Add(5*time.Hour))
	if !errors.As(err, &limit) {
		t.Fatalf("a torn-down target past the limit: %v", err)
	}
	back, err := s.ReserveEnvironment(ctx, env("b"), 0, t0.Add(5*time.Hour))
	if err != nil || !back.Live() || !back.CreatedAt.Equal(t0.Add(5*time.Hour)) {
		t.Fatalf("a torn-down target built again, no limit: %+v %v", back, err)
	}
	if _, err := s.Environment(ctx, "hello", promote.KindTag, "a"); !errors.Is(err, promote.ErrNotFound) {
		t.Errorf("unknown environment: %v", err)
	}
	if _, err := s.EditEnvironment(ctx, "hello", promote.KindTag, "a", func(*promote.Environment) error { return nil }); !errors.Is(err, promote.ErrNotFound) {
		t.Errorf("edit of an unknown environment: %v", err)
	}
	all, err := s.Environments(ctx, "")
	if err != nil || len(all) != 3 {
		t.Errorf("every project's live environments: %d %v", len(all), err)
	}
	first, err := s.FirstEnvironments(ctx, "hello", 2)
	if err != nil || len(first) != 2 || first[0].Target != all[0].Target || first[1].Target != all[1].Target {
		t.Errorf("the first 2 live environments: %+v %v; want the idlest of %+v", first, err, all)
	}
	if counts, err := s.CountEnvironments(ctx, ""); err != nil || len(counts) != 1 || counts["hello"] != 3 {
		t.Errorf("CountEnvironments = %v, %v; want hello: 3", counts, err)
	}
	if counts, err := s.CountEnvironments(ctx, "other"); err != nil || len(counts) != 0 {
		t.Errorf("CountEnvironments of a project without any = %v, %v", counts, err)
	}
	// A build of a recorded target becomes its environment's build.
	nb := build("2.0.0")
	nb.Kind, nb.Target, nb.Environment, nb.URL = promote.KindBranch, "c", "qa/branch-c2", "https://c2.example.com"
	created := create(t, s, nb)
	if e, err := s.Environment(ctx, "hello", promote.KindBranch, "c"); err != nil || e.BuildID != created.ID ||
		e.Name != "qa/branch-c2" || e.Image != nb.Image || e.URL != nb.URL {
		t.Errorf("the environment after a build of its target: %+v %v", e, err)
	}
}

// Concurrent builds for new targets cannot pass the limit together.
func testEnvironmentLimitConcurrent(t *testing.T, open opener) {
	ctx := context.Background()
	s := open.must(t)
	now := time.Now()
	if _, err := s.ReserveEnvironment(ctx, env("first"), 3, now); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused := 0, 0
	for i := range 6 {
		wg.Go(func() {
			_, err := s.ReserveEnvironment(ctx, env(fmt.Sprintf("t%d", i)), 3, now)
			mu.Lock()
			defer mu.Unlock()
			var limit *promote.EnvLimitError
			switch {
			case err == nil:
				ok++
			case errors.As(err, &limit):
				refused++
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok != 2 || refused != 4 {
		t.Errorf("%d reserved, %d refused; want 2 and 4", ok, refused)
	}
}

// testReplicas: the jobs of a replica whose heartbeat stopped are released
// after the grace; a replica that beats keeps its jobs, and one whose name
// only starts like the dead one's is not taken for it.
func testReplicas(t *testing.T, open opener) {
	ctx := context.Background()
	s := open.must(t)
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for _, tag := range []string{"1.0.0", "1.0.1", "1.0.2"} {
		create(t, s, build(tag), promote.Job{Kind: promote.JobDeployQA, RunAt: t0})
	}
	held := map[string]int64{}
	for _, w := range []string{"a", "ab", "b"} {
		if err := s.Beat(ctx, w, t0); err != nil {
			t.Fatal(err)
		}
		j, ok, err := s.Claim(ctx, w+"/1", time.Hour, t0)
		if err != nil || !ok {
			t.Fatalf("claim for %s: %v %v", w, ok, err)
		}
		held[w] = j.ID
	}
	// b and ab beat on; a stopped.
	now := t0.Add(20 * time.Second)
	for _, w := range []string{"ab", "b"} {
		if err := s.Beat(ctx, w, now); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.ReleaseDead(ctx, 30*time.Second, now); err != nil || n != 0 {
		t.Fatalf("within the grace: released %d, %v", n, err)
	}
	if n, err := s.ReleaseDead(ctx, 15*time.Second, now); err != nil || n != 1 {
		t.Fatalf("past the grace: released %d, %v; want a's job", n, err)
	}
	j, ok, err := s.Claim(ctx, "b/2", time.Hour, now)
	if err != nil || !ok || j.ID != held["a"] {
		t.Fatalf("the dead replica's job: %+v %v %v", j, ok, err)
	}
	if _, ok, _ := s.Claim(ctx, "b/3", time.Hour, now); ok {
		t.Error("a live replica's job was claimed")
	}
	if err := s.Extend(ctx, held["a"], "a/1", now.Add(time.Hour)); !errors.Is(err, promote.ErrLeaseLost) {
		t.Errorf("the dead replica ending its old job: %v, want ErrLeaseLost", err)
	}
	if err := s.Leave(ctx, "ab"); err != nil {
		t.Fatal(err)
	}
	// Half an hour later b is silent too: its two jobs go; ab left (a
	// graceful stop hands its jobs back itself) and is not b's prefix.
	if n, err := s.ReleaseDead(ctx, 15*time.Second, now.Add(30*time.Minute)); err != nil || n != 2 {
		t.Errorf("half an hour later: released %d, %v; want b's two", n, err)
	}
}

// testCreateInEnvironment: a build and its environment are stored together;
// past the limit neither is.
func testCreateInEnvironment(t *testing.T, open opener) {
	ctx := context.Background()
	s := open.must(t)
	first := build("1.0.0")
	first.Environment, first.URL = "qa/branch-main", "https://main.example.com"
	stored, created, _, err := s.CreateInEnvironment(ctx, first, 1, promote.Job{Kind: promote.JobDeployQA})
	if err != nil || !created {
		t.Fatalf("first build: %v %v", created, err)
	}
	e, err := s.Environment(ctx, "hello", promote.KindBranch, "main")
	if err != nil || e.BuildID != stored.ID || e.Name != "qa/branch-main" || !e.Live() {
		t.Fatalf("its environment: %+v %v", e, err)
	}
	// The same target again passes; a new one is past the limit.
	again := build("1.0.1")
	if _, created, _, err := s.CreateInEnvironment(ctx, again, 1, promote.Job{Kind: promote.JobDeployQA}); err != nil || !created {
		t.Fatalf("a new build of the same target: %v %v", created, err)
	}
	other := build("1.0.2")
	other.Target = "feature"
	_, _, _, err = s.CreateInEnvironment(ctx, other, 1, promote.Job{Kind: promote.JobDeployQA})
	var limit *promote.EnvLimitError
	if !errors.As(err, &limit) || limit.Limit != 1 || len(limit.Idle) != 1 {
		t.Fatalf("past the limit: %v", err)
	}
	if bs, err := s.Find(ctx, "hello", promote.States, 10); err != nil || len(bs) != 2 {
		t.Errorf("builds stored: %d %v; the refused one must not be", len(bs), err)
	}
	if _, err := s.Environment(ctx, "hello", promote.KindBranch, "feature"); !errors.Is(err, promote.ErrNotFound) {
		t.Errorf("the refused build's environment: %v", err)
	}
	if n := pending(t, s); n != 2 {
		t.Errorf("Pending = %d, want the two accepted builds' jobs", n)
	}
}
