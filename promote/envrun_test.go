package promote_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promotebot/promotebot/promote"
)

// fakeQAEnvs records the environments the config repository was asked to
// remove.
type fakeQAEnvs struct {
	mu      sync.Mutex
	removed []string // "<env> <reason>"
	err     error
}

func (f *fakeQAEnvs) TearDownQA(_ context.Context, _ promote.Project, e promote.Environment, reason string, _ time.Time) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return "", f.err
	}
	f.removed = append(f.removed, e.Name+" "+reason)
	return "td-" + e.Name, nil
}

func (f *fakeQAEnvs) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.removed...)
}

// envFlow is a flow whose build's environment is recorded, as the webhook
// records it, with a qaTTL of ttl.
type envFlow struct {
	*flow
	envs *fakeQAEnvs
}

func newEnvFlow(t *testing.T, ttl time.Duration) *envFlow {
	t.Helper()
	f := &envFlow{flow: newFlow(t, ""), envs: &fakeQAEnvs{}}
	f.s.QAEnvs = f.envs
	f.s.Config.Projects[0].QATTL = ttl
	b := f.build
	if _, err := f.st.ReserveEnvironment(context.Background(), promote.Environment{Project: b.Project, Kind: b.Kind,
		Target: b.Target, Name: b.Environment, URL: b.URL, BuildID: b.ID, Image: b.Image}, 20, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *envFlow) env(t *testing.T) promote.Environment {
	t.Helper()
	e, err := f.st.Environment(context.Background(), "hello", promote.KindBranch, "x")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestTearDown(t *testing.T) {
	f := newEnvFlow(t, 0)
	ctx := context.Background()
	if _, err := f.s.TearDown(ctx, "hello", promote.KindBranch, "nope", promote.TeardownByCI); !errors.Is(err, promote.ErrNotFound) {
		t.Fatalf("teardown of an unknown environment: %v", err)
	}
	// QA may not tear down; owners may.
	_, err := f.act(promote.ActionTeardown, "UQA1")
	wantRefused(t, err, "Only owners")
	if _, err := f.act(promote.ActionTeardown, "UOWN1"); err != nil {
		t.Fatal(err)
	}
	drain(t, f.s)
	e := f.env(t)
	if e.Live() || !e.Removed || e.Commit != "td-qa/branch-x" || !strings.HasPrefix(e.Teardown, "by ") ||
		!strings.Contains(e.Teardown, "<slack:UOWN1>") {
		t.Fatalf("after the teardown: %+v", e)
	}
	if got := f.envs.calls(); len(got) != 1 || !strings.HasPrefix(got[0], "qa/branch-x by ") {
		t.Fatalf("removals: %v", got)
	}
	b := get(t, f.st, f.build.ID)
	if b.State != promote.StateClosed || b.ClosedBy != "" || !strings.Contains(b.Error, "QA environment torn down") {
		t.Fatalf("the environment's build: %s by %q: %q", b.State, b.ClosedBy, b.Error)
	}
	// A repeat changes nothing.
	again, err := f.s.TearDown(ctx, "hello", promote.KindBranch, "x", promote.TeardownByCI)
	drain(t, f.s)
	if err != nil || again.Teardown != e.Teardown || len(f.envs.calls()) != 1 {
		t.Errorf("a second teardown: %+v %v, %d removals", again, err, len(f.envs.calls()))
	}
	_, err = f.act(promote.ActionTeardown, "UOWN1")
	wantRefused(t, err, "")
}

func TestTearDownWaitsForAPromotion(t *testing.T) {
	f := newEnvFlow(t, 0)
	f.s.Forge = newForge()
	f.s.Forge.(*fakeForge).mergeErrs = []error{promote.ErrNotMergeable}
	if _, err := f.act(promote.ActionApprove, "UQA1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.act(promote.ActionDeploy, "UOWN1"); err != nil {
		t.Fatal(err)
	}
	drain(t, f.s) // the pull request waits for GitHub
	if b := get(t, f.st, f.build.ID); b.State != promote.StatePromoting {
		t.Fatalf("build is %s, want promoting", b.State)
	}
	if _, err := f.s.TearDown(context.Background(), "hello", promote.KindBranch, "x", promote.TeardownBranchDeleted); err != nil {
		t.Fatal(err)
	}
	drain(t, f.s)
	if got := f.envs.calls(); len(got) != 0 {
		t.Fatalf("torn down while its build was being promoted: %v", got)
	}
	f.clock.Add(time.Minute) // GitHub merges; the teardown goes on
	drain(t, f.s)
	if b := get(t, f.st, f.build.ID); b.State != promote.StatePromoted {
		t.Fatalf("build is %s, want promoted", b.State)
	}
	if got := f.envs.calls(); len(got) != 1 || got[0] != "qa/branch-x branch-deleted" {
		t.Fatalf("removals after the promotion: %v", got)
	}
	if b := get(t, f.st, f.build.ID); b.State != promote.StatePromoted {
		t.Errorf("a teardown closed a promoted build: %s", b.State)
	}
}

func TestExpiry(t *testing.T) {
	f := newEnvFlow(t, 48*time.Hour)
	ctx := context.Background()
	recipients := func() map[string]int {
		posts, _ := f.slack.recorded()
		to := map[string]int{}
		for _, p := range posts {
			if fields := strings.Fields(p); fields[0] == string(promote.MessageExpiry) {
				to[fields[1]]++
			}
		}
		return to
	}
	expiryDMs := func() int {
		n := 0
		for _, c := range recipients() {
			n += c
		}
		return n
	}
	sweep := func() {
		t.Helper()
		if err := f.s.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		drain(t, f.s)
	}
	f.clock.Add(40 * time.Hour)
	sweep()
	if n := expiryDMs(); n != 0 || !f.env(t).WarnedAt.IsZero() {
		t.Fatalf("warned 8 h before the warning time: %d DMs", n)
	}
	f.clock.Add(4*time.Hour + time.Minute) // 4 h 59 m before it expires: a tenth of 48 h
	sweep()
	to := recipients()
	for _, who := range []string{"UOWN1", "UOWN2", "UQA1"} {
		if to[who] != 1 {
			t.Fatalf("expiry DMs %v: want one to each owner and QA member", to)
		}
	}
	warned := expiryDMs()
	sweep()
	if n := expiryDMs(); n != warned {
		t.Fatalf("warned twice: %d DMs, then %d", warned, n)
	}
	// QA keeps it: the clock starts again, the warning says so.
	if _, err := f.act(promote.ActionKeep, "UQA1"); err != nil {
		t.Fatal(err)
	}
	drain(t, f.s)
	if e := f.env(t); !e.WarnedAt.IsZero() || f.clock.Now().Sub(e.ActiveAt) > time.Millisecond {
		t.Fatalf("after Keep: %+v", e)
	}
	f.clock.Add(47 * time.Hour)
	sweep()
	if !f.env(t).Live() {
		t.Fatal("torn down before its new expiry")
	}
	f.clock.Add(2 * time.Hour)
	sweep()
	if e := f.env(t); e.Live() || e.Teardown != promote.TeardownExpired {
		t.Fatalf("after its expiry: %+v", e)
	}
	if got := f.envs.calls(); len(got) != 1 || got[0] != "qa/branch-x expired" {
		t.Errorf("removals: %v", got)
	}
	_, err := f.act(promote.ActionKeep, "UOWN1")
	wantRefused(t, err, "torn down already")
}
