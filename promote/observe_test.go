package promote_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promotebot/promotebot/promote"
)

// fakeRevisions is a config repository history: each commit's parents, and
// what each overlay pins at each commit (inherited from the first parent).
type fakeRevisions struct {
	mu      sync.Mutex
	parents map[string][]string
	pins    map[string]map[string]string // commit -> env -> image
	calls   int
}

func newRevisions() *fakeRevisions {
	return &fakeRevisions{parents: map[string][]string{"root": nil},
		pins: map[string]map[string]string{"root": {}}}
}

// commit adds sha on top of parents, setting env's image when env is not "".
func (f *fakeRevisions) commit(sha string, parents []string, env, image string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.parents[sha] = parents
	pins := map[string]string{}
	for k, v := range f.pins[parents[0]] {
		pins[k] = v
	}
	if env != "" {
		pins[env] = image
	}
	f.pins[sha] = pins
}

func (f *fakeRevisions) Contains(_ context.Context, revision, commit string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if _, ok := f.parents[revision]; !ok {
		return false, fmt.Errorf("contains %s: %w", revision, promote.ErrUnknownRevision)
	}
	todo := []string{revision}
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		if c == commit {
			return true, nil
		}
		todo = append(todo, f.parents[c]...)
	}
	return false, nil
}

func (f *fakeRevisions) Pins(_ context.Context, _ promote.Project, revision, env, image string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.pins[revision][env] == image, nil
}

// feedbackFlow is a service with cluster feedback and Slack fakes, and a
// build deployed to QA as commit c0ffee.
type feedbackFlow struct {
	*flow
	revs    *fakeRevisions
	metrics *promote.Metrics
}

func newFeedbackFlow(t *testing.T, wait bool) *feedbackFlow {
	t.Helper()
	repo := &fakeRepo{}
	s, st, c := newService(t, repo)
	f := &feedbackFlow{flow: &flow{s: s, st: st, repo: repo, slack: &fakeNotifier{}, clock: c},
		revs: newRevisions(), metrics: promote.NewMetrics()}
	s.Notifier, s.Directory = f.slack, newDirectory()
	s.Revisions, s.Feedback, s.Metrics = f.revs, true, f.metrics
	s.Config.Rollout = promote.RolloutConfig{WaitForHealthy: wait, Timeout: 10 * time.Minute}
	image := "registry.example.com/acme/hello:1"
	f.revs.commit("c0ffee", []string{"root"}, "qa/branch-x", image)
	b, _, _, err := st.Create(context.Background(), promote.Build{Project: "hello", Image: image,
		Kind: promote.KindBranch, Target: "x"}, promote.Job{Kind: promote.JobDeployQA}, promote.Job{Kind: promote.JobNotify, Coalesce: true})
	if err != nil {
		t.Fatal(err)
	}
	drain(t, s)
	f.build = get(t, st, b.ID)
	if f.build.State != promote.StateQAReady || f.build.QACommit != "c0ffee" {
		t.Fatalf("build is %s at %q after deploy", f.build.State, f.build.QACommit)
	}
	return f
}

func (f *feedbackFlow) observe(t *testing.T, path, rev string, status promote.RolloutStatus, msg string) promote.Observation {
	t.Helper()
	obs, err := f.s.Observe(context.Background(), promote.ClusterEvent{Source: "flux", Object: "flux-system/hello-qa",
		Path: path, Revision: rev, Status: status, Message: msg})
	if err != nil {
		t.Fatalf("Observe(%s %s %s): %v", path, rev, status, err)
	}
	drain(t, f.s)
	return obs
}

func (f *feedbackFlow) qa(t *testing.T) promote.Rollout {
	t.Helper()
	r := get(t, f.st, f.build.ID).Rollout.QA
	if r == nil {
		t.Fatal("no QA rollout record")
	}
	return *r
}

func wantObservation(t *testing.T, got promote.Observation, outcome string, builds ...string) {
	t.Helper()
	if builds == nil {
		builds = []string{}
	}
	if got.Outcome != outcome || !slices.Equal(got.Builds, builds) {
		t.Errorf("observation = %+v, want %s %v", got, outcome, builds)
	}
}

func TestObserveQARollout(t *testing.T) {
	f := newFeedbackFlow(t, false)
	if r := f.qa(t); r.Status != promote.RolloutPending || r.Since.IsZero() {
		t.Fatalf("after the QA commit the rollout is %+v, want pending since the commit", r)
	}
	f.revs.commit("base", []string{"root"}, "", "")
	f.revs.commit("r1", []string{"c0ffee"}, "", "")
	f.revs.commit("side", []string{"root"}, "", "")
	f.revs.commit("r2", []string{"r1", "side"}, "", "") // a merge
	id := f.build.ID

	// A revision without the build's commit marks nothing.
	wantObservation(t, f.observe(t, "apps/hello/overlays/qa", "base", promote.RolloutHealthy, ""), promote.OutcomePending)
	// A path the bot deploys nothing below is ignored.
	wantObservation(t, f.observe(t, "apps/other/overlays/qa", "r1", promote.RolloutHealthy, ""), promote.OutcomeIgnored)
	// A revision the repository does not have is ignored.
	wantObservation(t, f.observe(t, "apps/hello", "f00d", promote.RolloutHealthy, ""), promote.OutcomeIgnored)
	if r := f.qa(t); r.Status != promote.RolloutPending {
		t.Fatalf("rollout is %s after events that do not count", r.Status)
	}

	_, editsBefore := f.slack.recorded()
	// One Flux Kustomization over the whole QA folder, with "./".
	wantObservation(t, f.observe(t, "./apps/hello/overlays/qa/", "r1", promote.RolloutSynced, ""), promote.OutcomeApplied, id)
	if r := f.qa(t); r.Status != promote.RolloutSynced || r.Revision != "r1" {
		t.Fatalf("rollout = %+v, want synced at r1", r)
	}
	_, edits := f.slack.recorded()
	if len(edits) == len(editsBefore) {
		t.Error("the messages were not updated when the rollout was synced")
	}
	// Flux re-sends on every reconcile: nothing changes, nothing is posted.
	posts, edits := f.slack.recorded()
	wantObservation(t, f.observe(t, "apps/hello/overlays/qa", "r1", promote.RolloutSynced, ""), promote.OutcomeRepeat)
	if p2, e2 := f.slack.recorded(); len(p2) != len(posts) || len(e2) != len(edits) {
		t.Errorf("a repeated event changed Slack: posts %d→%d, edits %d→%d", len(posts), len(p2), len(edits), len(e2))
	}

	// Degraded at a descendant through a merge, then healthy.
	wantObservation(t, f.observe(t, "apps/hello/overlays/qa/branch-x", "r2", promote.RolloutDegraded, "CrashLoopBackOff"),
		promote.OutcomeApplied, id)
	if r := f.qa(t); r.Status != promote.RolloutDegraded || r.Message != "CrashLoopBackOff" || r.Revision != "r2" {
		t.Fatalf("rollout = %+v, want degraded at r2 with the message", r)
	}
	// An older revision cannot take back what a newer one reported.
	wantObservation(t, f.observe(t, "apps/hello/overlays/qa", "r1", promote.RolloutHealthy, ""), promote.OutcomeStale)
	wantObservation(t, f.observe(t, "apps/hello/overlays/qa", "r2", promote.RolloutHealthy, ""), promote.OutcomeApplied, id)
	r := f.qa(t)
	if r.Status != promote.RolloutHealthy || r.Message != "" {
		t.Fatalf("rollout = %+v, want healthy without a message", r)
	}
	var steps []string
	for _, st := range r.Steps {
		steps = append(steps, fmt.Sprintf("%s@%s", st.Status, st.Revision))
	}
	if want := []string{"pending@", "synced@r1", "degraded@r2", "healthy@r2"}; !slices.Equal(steps, want) {
		t.Errorf("steps = %v, want %v", steps, want)
	}
	// Another environment's folder does not cover this one.
	wantObservation(t, f.observe(t, "apps/hello/overlays/qa/branch-y", "r2", promote.RolloutDegraded, "x"), promote.OutcomePending)
	wantObservation(t, f.observe(t, "apps/hello/overlays/production", "r2", promote.RolloutDegraded, "x"), promote.OutcomePending)

	// The overlay moved on (a newer image): this build is not what runs.
	f.revs.commit("r3", []string{"r2"}, "qa/branch-x", "registry.example.com/acme/hello:2")
	wantObservation(t, f.observe(t, "apps/hello/overlays/qa", "r3", promote.RolloutDegraded, "gone"), promote.OutcomePending)
	if got := f.qa(t).Status; got != promote.RolloutHealthy {
		t.Errorf("rollout = %s after an event for an overlay that moved on", got)
	}

	metrics := scrape(t, f.metrics)
	for _, want := range []string{
		`promotebot_rollout_seconds_count{env="qa",result="degraded"} 1`,
		`promotebot_cluster_events_total{outcome="applied",source="flux"} 3`,
		`promotebot_cluster_events_total{outcome="repeat",source="flux"} 1`,
		`promotebot_cluster_events_total{outcome="stale",source="flux"} 1`,
		`promotebot_cluster_events_total{outcome="ignored",source="flux"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(metrics, `promotebot_rollout_seconds_count{env="qa",result="healthy"}`) {
		t.Error("a healthy report after a degraded one was timed again: only the first result is")
	}
}

// scrape returns what /metrics serves for m.
func scrape(t *testing.T, m *promote.Metrics) string {
	t.Helper()
	srv := httptest.NewServer(promote.NewServer(promote.ServerDeps{Metrics: m}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// One Flux Kustomization over a whole QA folder: a health check that fails
// names the objects of one environment, and only that one is degraded; a
// failure that names none (the build of the folder failed) concerns all.
func TestObserveDegradedNarrowsToTheNamedEnvironment(t *testing.T) {
	f := newFeedbackFlow(t, false)
	image := "registry.example.com/acme/hello:2"
	f.revs.commit("c0ffee-y", []string{"c0ffee"}, "qa/branch-y", image)
	y, _, _, err := f.st.Create(context.Background(), promote.Build{Project: "hello", Image: image,
		Kind: promote.KindBranch, Target: "y"}, promote.Job{Kind: promote.JobDeployQA})
	if err != nil {
		t.Fatal(err)
	}
	drain(t, f.s)
	f.revs.commit("r1", []string{"c0ffee-y"}, "", "")
	msg := "health check failed after 30s: timeout waiting for: [Deployment/hello-branch-y/hello status: 'InProgress']"
	wantObservation(t, f.observe(t, "apps/hello/overlays/qa", "r1", promote.RolloutDegraded, msg), promote.OutcomeApplied, y.ID)
	if got := f.qa(t).Status; got != promote.RolloutPending {
		t.Errorf("the environment the message does not name is %s", got)
	}
	wantObservation(t, f.observe(t, "apps/hello/overlays/qa", "r1", promote.RolloutDegraded, "kustomize build failed"),
		promote.OutcomeApplied, f.build.ID)
	if got := get(t, f.st, y.ID).Rollout.QA; got.Message != msg {
		t.Errorf("a later failure naming nobody replaced the named one: %+v", got)
	}
}

func TestObserveOutOfOrderReports(t *testing.T) {
	f := newFeedbackFlow(t, false)
	f.revs.commit("r1", []string{"c0ffee"}, "", "")
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	ev := promote.ClusterEvent{Source: "argocd", Path: "apps/hello/overlays/qa/branch-x", Revision: "r1",
		Status: promote.RolloutHealthy, At: at}
	if obs, err := f.s.Observe(context.Background(), ev); err != nil || obs.Outcome != promote.OutcomeApplied {
		t.Fatalf("healthy: %+v %v", obs, err)
	}
	// A degraded report from before the healthy one, delivered late (or
	// replayed), changes nothing.
	ev.Status, ev.Message, ev.At = promote.RolloutDegraded, "Progressing", at.Add(-time.Minute)
	if obs, err := f.s.Observe(context.Background(), ev); err != nil || obs.Outcome != promote.OutcomeStale {
		t.Fatalf("late degraded: %+v %v", obs, err)
	}
	ev.At = at.Add(time.Minute)
	if obs, err := f.s.Observe(context.Background(), ev); err != nil || obs.Outcome != promote.OutcomeApplied {
		t.Fatalf("degraded after: %+v %v", obs, err)
	}
}

func TestObserveProduction(t *testing.T) {
	f := newFeedbackFlow(t, false)
	if _, err := f.act(promote.ActionApprove, "UQA1"); err != nil {
		t.Fatal(err)
	}
	drain(t, f.s)
	if _, err := f.act(promote.ActionDeploy, "UOWN1"); err != nil {
		t.Fatal(err)
	}
	drain(t, f.s)
	b := get(t, f.st, f.build.ID)
	if b.State != promote.StatePromoted || b.Rollout.Production == nil || b.Rollout.Production.Status != promote.RolloutPending {
		t.Fatalf("after the promotion: %s, rollout %+v", b.State, b.Rollout.Production)
	}
	f.revs.commit(b.ProductionCommit, []string{"c0ffee"}, "production", b.Image)
	f.revs.commit("p1", []string{b.ProductionCommit}, "", "")
	wantObservation(t, f.observe(t, "apps/hello/overlays/production", "p1", promote.RolloutDegraded, "ImagePullBackOff"),
		promote.OutcomeApplied, b.ID)
	b = get(t, f.st, f.build.ID)
	if r := b.Rollout.Production; r.Status != promote.RolloutDegraded || r.Message != "ImagePullBackOff" {
		t.Errorf("production rollout = %+v", r)
	}
	if b.Rollout.QA.Status != promote.RolloutPending {
		t.Errorf("a production event changed the QA record: %+v", b.Rollout.QA)
	}
}

func TestWaitForHealthyAndTimeout(t *testing.T) {
	asked := func(f *feedbackFlow) []string {
		posts, _ := f.slack.recorded()
		var out []string
		for _, p := range posts {
			if !strings.HasPrefix(p, string(promote.MessageChannel)) {
				out = append(out, p)
			}
		}
		return out
	}
	t.Run("healthy", func(t *testing.T) {
		f := newFeedbackFlow(t, true)
		if got := asked(f); len(got) != 0 {
			t.Fatalf("QA and owners were asked before the environment was healthy: %v", got)
		}
		f.revs.commit("r1", []string{"c0ffee"}, "", "")
		f.observe(t, "apps/hello/overlays/qa", "r1", promote.RolloutSynced, "")
		if got := asked(f); len(got) != 0 {
			t.Fatalf("asked once synced, before healthy: %v", got)
		}
		f.observe(t, "apps/hello/overlays/qa", "r1", promote.RolloutHealthy, "")
		if got := asked(f); len(got) == 0 {
			t.Fatal("nobody was asked once the environment was healthy")
		}
	})
	t.Run("timeout", func(t *testing.T) {
		f := newFeedbackFlow(t, true)
		f.clock.Add(9 * time.Minute)
		drain(t, f.s)
		if got := asked(f); len(got) != 0 || f.qa(t).TimedOut {
			t.Fatalf("before the timeout: asked %v, rollout %+v", got, f.qa(t))
		}
		f.clock.Add(2 * time.Minute)
		drain(t, f.s)
		if !f.qa(t).TimedOut {
			t.Fatal("the rollout did not time out")
		}
		if got := asked(f); len(got) == 0 {
			t.Fatal("QA were not asked anyway after the timeout")
		}
	})
	t.Run("healthy in time", func(t *testing.T) {
		f := newFeedbackFlow(t, false)
		f.revs.commit("r1", []string{"c0ffee"}, "", "")
		f.observe(t, "apps/hello", "r1", promote.RolloutHealthy, "")
		f.clock.Add(11 * time.Minute)
		drain(t, f.s)
		if f.qa(t).TimedOut {
			t.Error("a healthy rollout was marked timed out")
		}
	})
}

func TestObserveWithoutRevisions(t *testing.T) {
	s, _, _ := newService(t, &fakeRepo{})
	_, err := s.Observe(context.Background(), promote.ClusterEvent{Source: "flux", Path: "apps/hello",
		Revision: "r1", Status: promote.RolloutHealthy})
	if err == nil || errors.Is(err, promote.ErrUnknownRevision) {
		t.Errorf("Observe without a config repository: %v", err)
	}
}

func TestAwaitingRollout(t *testing.T) {
	f := newFeedbackFlow(t, false)
	awaiting := func() bool {
		t.Helper()
		ok, err := f.s.AwaitingRollout(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !awaiting() {
		t.Fatal("a pending QA rollout is not awaited")
	}
	f.revs.commit("r1", []string{"c0ffee"}, "", "")
	f.observe(t, "apps/hello", "r1", promote.RolloutHealthy, "")
	if awaiting() {
		t.Fatal("a healthy rollout is still awaited")
	}
	f.observe(t, "apps/hello", "r1", promote.RolloutDegraded, "OOMKilled")
	if !awaiting() {
		t.Fatal("a degraded rollout is not awaited (it may become healthy)")
	}
	f.clock.Add(25 * time.Hour)
	if awaiting() {
		t.Error("a rollout of yesterday is still awaited")
	}
}
