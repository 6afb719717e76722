package main

import (
	"context"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/promote/store/pgtest"
)

// stallPushes makes srv hold every push (receive-pack POST) until release
// is closed, and signals stalled (once) when the first push arrives: the
// server pushing it is then mid-promotion.
func stallPushes(srv *gittest.Server) (stalled <-chan struct{}, release func()) {
	st, rel := make(chan struct{}), make(chan struct{})
	var once, relOnce sync.Once
	srv.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/git-receive-pack") {
			return false
		}
		once.Do(func() { close(st) })
		select {
		case <-rel:
			return false
		case <-r.Context().Done():
			http.Error(w, "gone", http.StatusServiceUnavailable)
			return true
		}
	})
	return st, func() { relOnce.Do(func() { close(rel) }) }
}

// promotionConfig is the hello project (no QA approval needed) on an
// https config remote served by srv, in direct mode, with Slack at slack.
func promotionConfig(t *testing.T, srv *gittest.Server, remote, slack, extra string) string {
	t.Helper()
	return helloConfig(t, srv.RepoURL(remote), "  requiredApprovals: 0\n"+extra+"slack:\n  apiURL: "+slack+"\n")
}

// deployClicked gets a build to approved and clicks Deploy as the owner,
// with srv holding pushes from then on (stallPushes).
func deployClicked(t *testing.T, ctx context.Context, c *client, srv *gittest.Server, image string) (string, <-chan struct{}, func()) {
	t.Helper()
	id, err := c.postBuild(ctx, `{"project":"hello","image":"registry.example.com/acme/hello:`+image+`","type":"branch","target":"feature/pay"}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.waitState(ctx, id, "approved"); err != nil {
		t.Fatal(err)
	}
	stalled, release := stallPushes(srv)
	t.Cleanup(release)
	if err := c.click(ctx, "UOWN1", "prod_deploy", id); err != nil {
		t.Fatal(err)
	}
	return id, stalled, release
}

// TestEmbeddedStoreResumesAtOnce: kill -9 while the promotion an owner asked
// for is being pushed; the restarted process (same data directory) pushes it
// within seconds, not when the dead one's 2-minute job lease runs out.
func TestEmbeddedStoreResumesAtOnce(t *testing.T) {
	skipIfShort(t, "a server process killed mid-promotion and restarted")
	fake := loopSlack(t, "C0HELLO")
	remote := gittest.NewRemote(t, filepath.Join("..", "..", "testdata", "configrepo"))
	srv := gittest.NewServer(t, filepath.Dir(remote), "bot", "git-pass")
	f := &fleet{lease: "2m", config: promotionConfig(t, srv, remote, fake.URL, ""), env: []string{
		"PROMOTEBOT_SLACK_BOT_TOKEN=" + slackToken, "PROMOTEBOT_SLACK_SIGNING_SECRET=" + slackSigning,
		"PROMOTEBOT_GIT_USERNAME=bot", "PROMOTEBOT_GIT_PASSWORD=git-pass"}}
	if err := f.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.stop)
	ctx := context.Background()
	c := &client{http: &http.Client{Timeout: 10 * time.Second}, base: f.url}
	id, stalled, release := deployClicked(t, ctx, c, srv, "5.0.0")
	select {
	case <-stalled:
	case <-time.After(30 * time.Second):
		t.Fatal("the promotion was never pushed")
	}
	if err := f.kill(); err != nil {
		t.Fatal(err)
	}
	release()
	restarted := time.Now()
	if err := f.start(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.waitState(ctx, id, "promoted"); err != nil {
		t.Fatal(err)
	}
	took := time.Since(restarted)
	t.Logf("promotion pushed %s after the restart (2-minute job lease)", took.Round(time.Millisecond))
	// The bound is generous (a loaded CI machine); what it tells apart is
	// "resumed at once" from "resumed when the lease ran out".
	if took > 30*time.Second {
		t.Errorf("the promotion resumed %s after the restart; the dead process's job should be taken up at once", took)
	}
	checkOnePromotion(t, remote, id)
}

// TestReplicaKilledMidPromotionIsTakenOver: two replicas on PostgreSQL;
// the one pushing a promotion is killed; the other takes the job up once
// the dead one's heartbeat has been silent for the grace (3 s here), long
// before the 2-minute job lease would end. A replica that is merely slow
// keeps its jobs: the promotion is pushed once.
func TestReplicaKilledMidPromotionIsTakenOver(t *testing.T) {
	skipIfShort(t, "two server replicas on PostgreSQL, one killed mid-promotion")
	dsn := pgtest.Fresh(t)
	fake := loopSlack(t, "C0HELLO")
	remote := gittest.NewRemote(t, filepath.Join("..", "..", "testdata", "configrepo"))
	srv := gittest.NewServer(t, filepath.Dir(remote), "bot", "git-pass")
	config := promotionConfig(t, srv, remote, fake.URL, "database: "+dsn+"\n")
	env := []string{"PROMOTEBOT_SLACK_BOT_TOKEN=" + slackToken, "PROMOTEBOT_SLACK_SIGNING_SECRET=" + slackSigning,
		"PROMOTEBOT_GIT_USERNAME=bot", "PROMOTEBOT_GIT_PASSWORD=git-pass", "PROMOTEBOT_REPLICA_GRACE=3s"}
	first := &fleet{lease: "2m", config: config, env: slices.Clip(env)}
	if err := first.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(first.stop)
	ctx := context.Background()
	c := &client{http: &http.Client{Timeout: 10 * time.Second}, base: first.url}
	id, stalled, release := deployClicked(t, ctx, c, srv, "6.0.0")
	select {
	case <-stalled:
	case <-time.After(30 * time.Second):
		t.Fatal("the promotion was never pushed")
	}
	// The second replica starts while the first is stuck in its push: for
	// longer than the grace, the first keeps its job (its heartbeat goes on).
	second := &fleet{lease: "2m", config: config, env: slices.Clip(env)}
	if err := second.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(second.stop)
	c.base = second.url
	time.Sleep(5 * time.Second)
	if s, err := c.state(ctx, id); err != nil || s != "promoting" {
		t.Fatalf("while the first replica is slow: %s %v", s, err)
	}
	if err := first.kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	release()
	if _, err := c.waitState(ctx, id, "promoted"); err != nil {
		t.Fatal(err)
	}
	took := time.Since(killed)
	t.Logf("promotion taken over and pushed %s after the kill (grace 3s, job lease 2m)", took.Round(time.Millisecond))
	if took > 60*time.Second {
		t.Errorf("taken over %s after the kill; the grace is 3 s and should decide, not the 2-minute lease", took)
	}
	checkOnePromotion(t, remote, id)
}

// checkOnePromotion asserts that production changed once for build id.
func checkOnePromotion(t *testing.T, remote, id string) {
	t.Helper()
	n := 0
	for _, c := range gittest.Log(t, remote, "main") {
		env, build := c.TrailerValues("Promotebot-Environment"), c.TrailerValues("Promotebot-Build")
		if len(env) == 1 && env[0] == "production" && len(build) == 1 && build[0] == id {
			n++
		}
	}
	if n != 1 {
		t.Errorf("build %s changed production %d times, want once", id, n)
	}
}
