package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/promote/store/pgtest"
)

// TestTwoReplicasOnePostgres runs two servers on one PostgreSQL database and
// one config remote, posts 100 builds to them at random (and a third of them
// again, to the other replica), and checks that every build is deployed with
// exactly one QA commit.
func TestTwoReplicasOnePostgres(t *testing.T) {
	skipIfShort(t, "two server replicas on PostgreSQL taking a hundred builds")
	dsn := pgtest.Fresh(t)
	remote := gittest.NewRemote(t, filepath.Join("..", "..", "testdata", "configrepo"))
	start := gittest.Head(t, remote, "main")
	var bases [2]string
	for i := range bases {
		bases[i], _ = serveConfig(t, helloConfig(t, remote, "database: "+dsn+"\n"), nil)
	}

	const n = 100
	ids := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			body := fmt.Sprintf(`{"project":"hello","image":"registry.example.com/acme/hello:1.0.%d","type":"branch","target":"replica-%d"}`, i, i)
			first := rand.IntN(2)
			code, out := postBuild(t, bases[first], body)
			if code != http.StatusAccepted {
				t.Errorf("POST %d: %d %v", i, code, out)
				return
			}
			ids[i] = out["id"].(string)
			if i%3 == 0 { // the same build again, to the other replica
				if code, again := postBuild(t, bases[1-first], body); code != http.StatusOK || again["id"] != ids[i] {
					t.Errorf("repeat %d: %d %v, want 200 with id %s", i, code, again, ids[i])
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for i, id := range ids {
		waitState(t, bases[i%2], id, "qa-ready")
	}

	commits := map[string]int{}
	log := gittest.Log(t, remote, "main")
	for _, c := range log {
		if c.Hash == start {
			break
		}
		for _, v := range c.TrailerValues("Promotebot-Build") {
			commits[v]++
		}
	}
	if len(log) != n+1 {
		t.Errorf("the remote has %d commits, want the seed and %d QA commits", len(log), n)
	}
	for _, id := range ids {
		if commits[id] != 1 {
			t.Errorf("build %s has %d QA commits, want 1", id, commits[id])
		}
	}
}

// TestReplicaKilledMidRun runs two server processes on one PostgreSQL and
// one config remote, drives builds with approvals, rejections, deploys and
// closes through both (a client fails over, as behind a load balancer),
// and kills one replica with SIGKILL for good once the run is under way.
// The other finishes everything: the jobs the dead one had claimed come
// back when their leases end.
func TestReplicaKilledMidRun(t *testing.T) {
	skipIfShort(t, "two server replicas on PostgreSQL, one killed mid-run, waiting for its leases to end")
	dsn := pgtest.Fresh(t)
	fake := loopSlack(t, "C0HELLO")
	remote := gittest.NewRemote(t, filepath.Join("..", "..", "testdata", "configrepo"))
	seed := gittest.Head(t, remote, "main")
	env := []string{"PROMOTEBOT_SLACK_BOT_TOKEN=" + slackToken, "PROMOTEBOT_SLACK_SIGNING_SECRET=" + slackSigning}
	logDir := t.TempDir()
	if d := os.Getenv("PROMOTEBOT_TEST_LOG_DIR"); d != "" {
		logDir = d
	}
	var replicas [2]*fleet
	for i := range replicas {
		// Leases of 4 s: short, so that the dead replica's jobs come back
		// soon, but not so short that a live replica's heartbeat, starved
		// of CPU by three processes under the race detector on two cores,
		// misses one (another replica would then run the job too).
		replicas[i] = &fleet{lease: "4s", config: helloConfig(t, remote, "database: "+dsn+"\nslack:\n  apiURL: "+fake.URL+"\n"),
			env: append(slices.Clip(env), fmt.Sprintf("PROMOTEBOT_TEST_CHILD_LOG=%s/replica-%d.log", logDir, i))}
		if err := replicas[i].start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(replicas[i].stop)
	}
	var dead atomic.Bool
	c := &client{http: &http.Client{Timeout: 10 * time.Second}, base: func() string {
		if dead.Load() {
			return replicas[1].url()
		}
		return replicas[rand.IntN(2)].url()
	}}

	const builds = 60
	ids := make([]string, builds)
	errs := make([]error, builds)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range builds {
		wg.Go(func() {
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Millisecond)
			ids[i], errs[i] = c.drive(ctx, i)
		})
	}
	// Once the run is under way (a few pushes in), replica 0 dies for good.
	for n := 0; n < 3; n++ {
		afterPush(remote, 5*time.Second)
	}
	if err := replicas[0].kill(); err != nil {
		t.Fatal(err)
	}
	dead.Store(true)
	t.Logf("replica 0 killed with %d commits pushed", len(gittest.Log(t, remote, "main"))-1)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("build %d (%s, planned %s): %v", i, ids[i], plan(i), err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	for i, id := range ids {
		if _, err := c.waitState(ctx, id, plan(i)); err != nil {
			t.Errorf("build %d: %v", i, err)
		}
	}
	checkKillLoopGit(t, remote, seed, ids)
	checkKillLoopSlack(t, fake, replicas[0].killTimes(), ids)
}
