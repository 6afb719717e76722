package promote_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promotebot/promotebot/promote"
)

// fakeProduction is the production history of the config repository:
// rollbacks add to it.
type fakeProduction struct {
	mu        sync.Mutex
	changes   []promote.ProductionChange // newest first
	rollbacks []promote.RollbackChange
	branches  []string
	// moved, when set, makes the next Rollback find production changed.
	moved bool
}

func (f *fakeProduction) promoted(b promote.Build) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changes = append([]promote.ProductionChange{{Image: b.Image, Commit: b.ProductionCommit, Build: b.ID}}, f.changes...)
}

func (f *fakeProduction) ProductionHistory(_ context.Context, _ promote.Project, limit int) ([]promote.ProductionChange, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]promote.ProductionChange(nil), f.changes[:min(limit, len(f.changes))]...), nil
}

func (f *fakeProduction) Rollback(_ context.Context, _ promote.Project, r promote.RollbackChange) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.moved {
		return "", fmt.Errorf("production pins something else: %w", promote.ErrProductionMoved)
	}
	commit := "rb-" + r.Of.ID
	for _, c := range f.changes {
		if c.Commit == commit {
			return commit, nil // landed already
		}
	}
	f.rollbacks = append(f.rollbacks, r)
	f.changes = append([]promote.ProductionChange{{Image: r.Image, Commit: commit, RollbackOf: r.Of.ID}}, f.changes...)
	return commit, nil
}

func (f *fakeProduction) RollbackBranch(_ context.Context, _ promote.Project, r promote.RollbackChange, branch string) (promote.PromotionCommit, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rollbacks = append(f.rollbacks, r)
	f.branches = append(f.branches, branch)
	return promote.PromotionCommit{SHA: "head-" + branch, Subject: "Roll back hello to " + r.Image,
		Trailers: "Promotebot-Rollback-Of: " + r.Of.ID + "\n"}, nil
}

// rollbackFlow has two builds promoted one after the other: production runs
// the second (b1), the first (b0) ran before.
type rollbackFlow struct {
	*flow
	prod   *fakeProduction
	b0, b1 promote.Build
}

func newRollbackFlow(t *testing.T, forge *fakeForge) *rollbackFlow {
	t.Helper()
	f := &rollbackFlow{flow: newFlow(t, ""), prod: &fakeProduction{}}
	f.s.Production = f.prod
	if forge != nil {
		f.s.Forge = forge
	}
	f.b0 = f.promoteImage(t, "registry.example.com/acme/hello:1", f.build)
	b, _, _, err := f.st.Create(context.Background(), promote.Build{Project: "hello", Image: "registry.example.com/acme/hello:2",
		Kind: promote.KindBranch, Target: "x"}, promote.Job{Kind: promote.JobDeployQA}, promote.Job{Kind: promote.JobNotify, Coalesce: true})
	if err != nil {
		t.Fatal(err)
	}
	drain(t, f.s)
	f.b1 = f.promoteImage(t, b.Image, get(t, f.st, b.ID))
	return f
}

// promoteImage approves and deploys b, a minute after what came before.
func (f *rollbackFlow) promoteImage(t *testing.T, image string, b promote.Build) promote.Build {
	t.Helper()
	f.clock.Add(time.Minute)
	for _, a := range []promote.Action{{Kind: promote.ActionApprove, User: "UQA1"}, {Kind: promote.ActionDeploy, User: "UOWN1"}} {
		a.BuildID = b.ID
		if _, err := f.s.Act(context.Background(), a); err != nil {
			t.Fatalf("%s %s: %v", a.Kind, image, err)
		}
		drain(t, f.s)
	}
	b = get(t, f.st, b.ID)
	if b.State != promote.StatePromoted {
		t.Fatalf("%s is %s, want promoted", image, b.State)
	}
	f.prod.promoted(b)
	return b
}

func (f *rollbackFlow) rollback(user, id, image, reason string) (promote.Build, error) {
	return f.s.Act(context.Background(), promote.Action{Kind: promote.ActionRollback, BuildID: id, User: user,
		Image: image, Reason: reason})
}

func wantRefused(t *testing.T, err error, contains string) {
	t.Helper()
	var r *promote.Refusal
	if !errors.As(err, &r) || !strings.Contains(r.Reason, contains) {
		t.Fatalf("got %v, want a refusal containing %q", err, contains)
	}
}

func TestRollbackDirect(t *testing.T) {
	f := newRollbackFlow(t, nil)
	ctx := context.Background()
	if v, err := f.s.View(ctx, f.b1.ID); err != nil || v.RollbackTo != f.b0.Image {
		t.Fatalf("the build production runs offers to roll back to %q (%v), want %s", v.RollbackTo, err, f.b0.Image)
	}
	if v, _ := f.s.View(ctx, f.b0.ID); v.RollbackTo != "" {
		t.Errorf("a build a later deploy replaced offers a rollback to %q", v.RollbackTo)
	}
	opts, err := f.s.RollbackOptions(ctx, "hello", "UOWN1")
	if err != nil || opts.Current == nil || opts.Current.ID != f.b1.ID || len(opts.Choices) != 1 || opts.Choices[0].Image != f.b0.Image {
		t.Fatalf("RollbackOptions = %+v, %v", opts, err)
	}
	_, err = f.s.RollbackOptions(ctx, "hello", "UQA1")
	wantRefused(t, err, "Only owners")

	_, err = f.rollback("UQA1", f.b1.ID, "", "")
	wantRefused(t, err, "Only owners")
	_, err = f.rollback("UOWN1", f.b1.ID, "registry.example.com/acme/hello:9", "")
	wantRefused(t, err, "was not in production")
	_, err = f.rollback("UOWN1", f.b0.ID, "", "")
	wantRefused(t, err, "A later deploy replaced this build")

	f.clock.Add(time.Minute)
	if _, err := f.rollback("UOWN1", f.b1.ID, "", "latency doubled"); err != nil {
		t.Fatal(err)
	}
	// A second owner, or a double click, while it is under way.
	_, err = f.rollback("UOWN2", f.b1.ID, "", "")
	wantRefused(t, err, "rolling this build back already")
	drain(t, f.s)

	b1 := get(t, f.st, f.b1.ID)
	if b1.State != promote.StateRolledBack || b1.Rollback.Commit != "rb-"+f.b1.ID || b1.Rollback.Reason != "latency doubled" {
		t.Fatalf("after the rollback: %s %+v", b1.State, b1.Rollback)
	}
	if len(f.prod.rollbacks) != 1 {
		t.Fatalf("rolled back %d times", len(f.prod.rollbacks))
	}
	r := f.prod.rollbacks[0]
	if r.Of.ID != f.b1.ID || r.Image != f.b0.Image || r.By.ID != "UOWN1" || r.Reason != "latency doubled" {
		t.Errorf("the change asked of the config repository: %+v", r)
	}
	st, err := f.s.Status(ctx, "hello")
	if err != nil || st.Production == nil || st.Production.ID != f.b0.ID {
		t.Fatalf("status shows %+v in production (%v), want the restored %s", st.Production, err, f.b0.ID)
	}
	if b0 := get(t, f.st, f.b0.ID); b0.Rollout.Production == nil || b0.Rollout.Production.Status != promote.RolloutPending {
		t.Errorf("the restored build's production rollout: %+v", b0.Rollout.Production)
	}
	posts, _ := f.slack.recorded()
	n := 0
	for _, p := range posts {
		if strings.HasPrefix(p, string(promote.MessageRollback)+" ") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the channel heard of the rollback %d times: %v", n, posts)
	}
	// The job running again changes nothing.
	if _, err := f.s.Act(ctx, promote.Action{Kind: promote.ActionRollback, BuildID: f.b1.ID, User: "UOWN1"}); err == nil {
		t.Error("a rolled-back build was rolled back again")
	}
}

func TestRollbackRaces(t *testing.T) {
	t.Run("a deploy while a rollback is under way", func(t *testing.T) {
		f := newRollbackFlow(t, nil)
		b2, _, _, err := f.st.Create(context.Background(), promote.Build{Project: "hello", Image: "registry.example.com/acme/hello:3",
			Kind: promote.KindBranch, Target: "x"}, promote.Job{Kind: promote.JobDeployQA})
		if err != nil {
			t.Fatal(err)
		}
		drain(t, f.s)
		if _, err := f.s.Act(context.Background(), promote.Action{Kind: promote.ActionApprove, BuildID: b2.ID, User: "UQA1"}); err != nil {
			t.Fatal(err)
		}
		drain(t, f.s)
		if _, err := f.rollback("UOWN1", f.b1.ID, "", ""); err != nil {
			t.Fatal(err)
		}
		_, err = f.s.Act(context.Background(), promote.Action{Kind: promote.ActionDeploy, BuildID: b2.ID, User: "UOWN2"})
		wantRefused(t, err, "deploy once it is done")
		drain(t, f.s)
		if _, err := f.s.Act(context.Background(), promote.Action{Kind: promote.ActionDeploy, BuildID: b2.ID, User: "UOWN2"}); err != nil {
			t.Fatalf("deploy after the rollback: %v", err)
		}
	})
	t.Run("a rollback while a deploy is under way", func(t *testing.T) {
		f := newRollbackFlow(t, newForge())
		b2, _, _, err := f.st.Create(context.Background(), promote.Build{Project: "hello", Image: "registry.example.com/acme/hello:3",
			Kind: promote.KindBranch, Target: "x"}, promote.Job{Kind: promote.JobDeployQA})
		if err != nil {
			t.Fatal(err)
		}
		drain(t, f.s)
		for _, a := range []promote.Action{{Kind: promote.ActionApprove, User: "UQA1"}, {Kind: promote.ActionDeploy, User: "UOWN1"}} {
			a.BuildID = b2.ID
			if _, err := f.s.Act(context.Background(), a); err != nil {
				t.Fatal(err)
			}
		}
		_, err = f.rollback("UOWN2", f.b1.ID, "", "")
		wantRefused(t, err, "deploy of `registry.example.com/acme/hello:3` to production is under way")
	})
	t.Run("production moved before the rollback landed", func(t *testing.T) {
		f := newRollbackFlow(t, nil)
		if _, err := f.rollback("UOWN1", f.b1.ID, "", ""); err != nil {
			t.Fatal(err)
		}
		f.prod.moved = true
		drain(t, f.s)
		b1 := get(t, f.st, f.b1.ID)
		if b1.State != promote.StatePromoted || b1.Rollback == nil || !strings.Contains(b1.Rollback.Error, "a later change replaced") {
			t.Fatalf("after a rollback that lost the race: %s %+v", b1.State, b1.Rollback)
		}
		// The owner is told, and may ask again.
		f.prod.moved = false
		if _, err := f.rollback("UOWN1", f.b1.ID, "", ""); err != nil {
			t.Fatalf("a second rollback after a failed one: %v", err)
		}
		drain(t, f.s)
		if got := get(t, f.st, f.b1.ID).State; got != promote.StateRolledBack {
			t.Errorf("after the second rollback: %s", got)
		}
	})
}

func TestRollbackThroughPullRequest(t *testing.T) {
	forge := newForge()
	f := newRollbackFlow(t, forge)
	if _, err := f.rollback("UOWN1", f.b1.ID, "", "broken checkout"); err != nil {
		t.Fatal(err)
	}
	drain(t, f.s)
	b1 := get(t, f.st, f.b1.ID)
	if b1.State != promote.StateRolledBack || !strings.Contains(b1.Rollback.PullRequest, "/pull/") ||
		!strings.HasPrefix(b1.Rollback.Commit, "merge-head-promotebot/hello/rollback-") {
		t.Fatalf("after the rollback: %s %+v", b1.State, b1.Rollback)
	}
	if got := f.prod.branches; len(got) != 1 || got[0] != promote.RollbackBranch(f.b1) {
		t.Errorf("branches pushed: %v", got)
	}
}

func TestAutoRollback(t *testing.T) {
	setup := func(t *testing.T) (*rollbackFlow, *fakeRevisions) {
		f := newRollbackFlow(t, nil)
		f.s.Config.Projects[0].AutoRollback = true
		f.s.Config.Rollout.DegradedFor = 5 * time.Minute
		revs := newRevisions()
		revs.commit(f.b1.ProductionCommit, []string{"root"}, "production", f.b1.Image)
		f.s.Revisions, f.s.Feedback = revs, true
		return f, revs
	}
	degrade := func(t *testing.T, f *rollbackFlow, rev string) {
		t.Helper()
		obs, err := f.s.Observe(context.Background(), promote.ClusterEvent{Source: "flux", Path: "apps/hello/overlays/production",
			Revision: rev, Status: promote.RolloutDegraded, Message: "CrashLoopBackOff"})
		if err != nil || obs.Outcome != promote.OutcomeApplied {
			t.Fatalf("degraded: %+v %v", obs, err)
		}
		drain(t, f.s)
	}
	t.Run("degraded for long enough", func(t *testing.T) {
		f, revs := setup(t)
		degrade(t, f, f.b1.ProductionCommit)
		f.clock.Add(4 * time.Minute)
		drain(t, f.s)
		if got := get(t, f.st, f.b1.ID).State; got != promote.StatePromoted {
			t.Fatalf("rolled back before rollout.degradedFor: %s", got)
		}
		f.clock.Add(2 * time.Minute)
		drain(t, f.s)
		b1 := get(t, f.st, f.b1.ID)
		if b1.State != promote.StateRolledBack || !b1.Rollback.Auto || !strings.Contains(b1.Rollback.Reason, "CrashLoopBackOff") {
			t.Fatalf("after rollout.degradedFor: %s %+v", b1.State, b1.Rollback)
		}
		// The restored build degrading is left to the owners: never twice
		// in a row.
		b0 := get(t, f.st, f.b0.ID)
		if !b0.Rollout.Production.AutoRestored {
			t.Fatalf("the restored build's rollout does not say an automatic rollback began it: %+v", b0.Rollout.Production)
		}
		revs.commit(b1.Rollback.Commit, []string{f.b1.ProductionCommit}, "production", f.b0.Image)
		degrade(t, f, b1.Rollback.Commit)
		f.clock.Add(6 * time.Minute)
		drain(t, f.s)
		if got := get(t, f.st, f.b0.ID).State; got != promote.StatePromoted || len(f.prod.rollbacks) != 1 {
			t.Errorf("an automatic rollback acted twice in a row: %s, %d rollbacks", got, len(f.prod.rollbacks))
		}
	})
	t.Run("recovered meanwhile", func(t *testing.T) {
		f, _ := setup(t)
		degrade(t, f, f.b1.ProductionCommit)
		if _, err := f.s.Observe(context.Background(), promote.ClusterEvent{Source: "flux", Path: "apps/hello/overlays/production",
			Revision: f.b1.ProductionCommit, Status: promote.RolloutHealthy}); err != nil {
			t.Fatal(err)
		}
		f.clock.Add(6 * time.Minute)
		drain(t, f.s)
		if got := get(t, f.st, f.b1.ID).State; got != promote.StatePromoted {
			t.Errorf("a recovered production was rolled back: %s", got)
		}
	})
	t.Run("a manual deploy afterwards is not undone", func(t *testing.T) {
		f, _ := setup(t)
		degrade(t, f, f.b1.ProductionCommit)
		b2, _, _, err := f.st.Create(context.Background(), promote.Build{Project: "hello", Image: "registry.example.com/acme/hello:3",
			Kind: promote.KindBranch, Target: "x"}, promote.Job{Kind: promote.JobDeployQA})
		if err != nil {
			t.Fatal(err)
		}
		drain(t, f.s)
		f.promoteImage(t, b2.Image, get(t, f.st, b2.ID))
		f.clock.Add(6 * time.Minute)
		drain(t, f.s)
		if len(f.prod.rollbacks) != 0 {
			t.Errorf("an automatic rollback undid a later deploy: %+v", f.prod.rollbacks)
		}
	})
}

// Two owners click Roll back at the same moment: one rollback is recorded,
// the other owner is told who was first.
func TestRollbackTwoOwnersAtOnce(t *testing.T) {
	f := newRollbackFlow(t, nil)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, user := range []string{"UOWN1", "UOWN2"} {
		wg.Go(func() { _, errs[i] = f.rollback(user, f.b1.ID, "", "") })
	}
	wg.Wait()
	var refused int
	for _, err := range errs {
		var r *promote.Refusal
		switch {
		case err == nil:
		case errors.As(err, &r) && strings.Contains(r.Reason, "rolling this build back already"):
			refused++
		default:
			t.Fatalf("unexpected: %v", err)
		}
	}
	if refused != 1 {
		t.Fatalf("%d of 2 concurrent rollbacks were refused, want 1: %v", refused, errs)
	}
	drain(t, f.s)
	if len(f.prod.rollbacks) != 1 {
		t.Errorf("rolled back %d times", len(f.prod.rollbacks))
	}
}

func TestDORAFromTheStore(t *testing.T) {
	f := newRollbackFlow(t, nil)
	ctx := context.Background()
	figs, err := f.s.DORA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := figs["hello"]; d.Deploys != 2 || d.Failures != 0 || d.FailureRate != 0 || d.PerWeek != 0.5 || d.LeadTime <= 0 {
		t.Fatalf("before a rollback: %+v", d)
	}
	if _, err := f.rollback("UOWN1", f.b1.ID, "", ""); err != nil {
		t.Fatal(err)
	}
	drain(t, f.s)
	figs, _ = f.s.DORA(ctx)
	if figs["hello"].Failures != 0 {
		t.Fatal("the figures were not cached")
	}
	f.clock.Add(6 * time.Minute)
	figs, err = f.s.DORA(ctx)
	// The rollback is a production change too; one promotion of two failed.
	if d := figs["hello"]; err != nil || d.Deploys != 3 || d.Failures != 1 || d.FailureRate != 0.5 || d.Restore <= 0 {
		t.Fatalf("after a rollback: %+v %v", d, err)
	}
	m := promote.NewMetrics(promote.WithDORA(f.s.DORA))
	out := scrape(t, m)
	for _, want := range []string{
		`promotebot_dora_deployments{project="hello"} 3`,
		`promotebot_dora_deployments_per_week{project="hello"} 0.75`,
		`promotebot_dora_change_failure_ratio{project="hello"} 0.5`,
		`promotebot_dora_time_to_restore_seconds{project="hello"}`,
		`promotebot_dora_lead_time_seconds{project="hello"}`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
