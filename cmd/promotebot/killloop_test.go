package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/slackui/slacktest"
)

// plan is what happens to build i of a run: the end state it must reach.
func plan(i int) string {
	return []string{"qa-ready", "rejected", "approved", "promoted", "closed"}[i%5]
}

// drive takes build i from CI to its planned end state through whichever
// server runs, and returns its id.
func (c *client) drive(ctx context.Context, i int) (string, error) {
	body := fmt.Sprintf(`{"project":"hello","image":"registry.example.com/acme/hello:3.0.%d","type":"branch","target":"kill-%d"}`, i, i)
	id, err := c.postBuild(ctx, body)
	if err != nil {
		return "", err
	}
	if _, err := c.waitState(ctx, id, "qa-ready"); err != nil {
		return id, err
	}
	// Each step is one person's click; it is sent again only when no server
	// answered it (a 200 means it was recorded).
	step := func(do func() error, want ...string) error {
		if err := do(); err != nil {
			return err
		}
		_, err := c.waitState(ctx, id, want...)
		return err
	}
	switch plan(i) {
	case "rejected":
		return id, step(func() error { return c.reject(ctx, "UQA1", id) }, "rejected")
	case "approved", "promoted", "closed":
		if err := step(func() error { return c.click(ctx, "UQA1", "qa_approve", id) }, "approved"); err != nil {
			return id, err
		}
	}
	switch plan(i) {
	case "promoted":
		return id, step(func() error { return c.click(ctx, "UOWN1", "prod_deploy", id) }, "promoting", "promoted")
	case "closed":
		return id, step(func() error { return c.click(ctx, "UOWN1", "build_close", id) }, "closed")
	}
	return id, nil
}

// TestKillLoop is the crash promise under a real flow: a run of builds
// with approvals, rejections, deploys and closes, driven over HTTP and
// signed Slack interactions, while the server is killed with SIGKILL at
// random moments and restarted on the same data. After the last restart
// every build is in its planned end state, with one QA commit each, one
// production commit per deploy, and no Slack message posted twice unless a
// kill came between the two posts (the first one's answer was lost).
//
// PROMOTEBOT_KILL_BUILDS and PROMOTEBOT_KILLS size it; CI runs the
// defaults, hack/killloop.sh a longer run.
func TestKillLoop(t *testing.T) {
	skipIfShort(t, "a hundred builds through the whole flow under fifty SIGKILLs, about 20 s")
	builds := envInt(t, "PROMOTEBOT_KILL_BUILDS", 100)
	kills := envInt(t, "PROMOTEBOT_KILLS", 50)
	fake := loopSlack(t, "C0HELLO")
	remote := gittest.NewRemote(t, filepath.Join("..", "..", "testdata", "configrepo"))
	seed := gittest.Head(t, remote, "main")
	logFile := filepath.Join(t.TempDir(), "server.log")
	if d := os.Getenv("PROMOTEBOT_TEST_LOG_DIR"); d != "" {
		logFile = filepath.Join(d, "killloop-server.log")
	}
	f := &fleet{config: helloConfig(t, remote, "slack:\n  apiURL: "+fake.URL+"\n"), env: []string{
		"PROMOTEBOT_SLACK_BOT_TOKEN=" + slackToken, "PROMOTEBOT_SLACK_SIGNING_SECRET=" + slackSigning,
		"PROMOTEBOT_TEST_CHILD_LOG=" + logFile,
	}}
	if err := f.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.stop)
	defer func() {
		if t.Failed() {
			tail, _ := os.ReadFile(logFile)
			if len(tail) > 8000 {
				tail = tail[len(tail)-8000:]
			}
			t.Logf("the servers' last log lines:\n%s", tail)
		}
	}()

	// The builds start over the time the kills take (half of them 40-240 ms
	// after a restart, half just after a push, each followed by a
	// restart), so that kills land in every phase of the flow.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	window := time.Duration(kills) * 250 * time.Millisecond
	// While kills come faster than a job can finish, nothing finishes: a
	// build may wait for as long as the killing lasts (about twice window).
	c := &client{base: f.url, http: &http.Client{Timeout: 10 * time.Second}, patience: 2*window + time.Minute}
	ids := make([]string, builds)
	errs := make([]error, builds)
	var wg sync.WaitGroup
	for i := range builds {
		wg.Go(func() {
			time.Sleep(time.Duration(rand.Int64N(int64(window) + 1)))
			ids[i], errs[i] = c.drive(ctx, i)
		})
	}
	killed := make(chan error, 1)
	go func() {
		for k := range kills {
			if k%2 == 0 {
				time.Sleep(time.Duration(40+rand.IntN(200)) * time.Millisecond)
			} else {
				// Just after a push, when its result is likely not yet
				// recorded: the narrowest window there is.
				afterPush(remote, 500*time.Millisecond)
				time.Sleep(time.Duration(rand.IntN(5)) * time.Millisecond)
			}
			if err := f.kill(); err != nil {
				killed <- err
				return
			}
			if err := f.start(); err != nil {
				killed <- err
				return
			}
		}
		killed <- nil
	}()
	if err := <-killed; err != nil {
		cancel()
		wg.Wait()
		t.Fatal(err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("build %d (%s, planned %s): %v", i, ids[i], plan(i), err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d builds driven through %d kills", builds, len(f.killTimes()))

	// After the last restart: every build ends where it was planned.
	for i, id := range ids {
		if _, err := c.waitState(ctx, id, plan(i)); err != nil {
			t.Errorf("build %d: %v", i, err)
		}
	}
	checkKillLoopGit(t, remote, seed, ids)
	checkKillLoopSlack(t, fake, f.killTimes(), ids)
}

// afterPush returns once the bare remote's main branch moves, or after
// at most wait.
func afterPush(remote string, wait time.Duration) {
	ref := filepath.Join(remote, "refs", "heads", "main")
	start, _ := os.ReadFile(ref)
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if now, _ := os.ReadFile(ref); !bytes.Equal(now, start) {
			return
		}
	}
}

// checkKillLoopGit: one QA commit per build, one production commit per
// deploy, nothing else, and production runs the last deployed image.
func checkKillLoopGit(t *testing.T, remote, seed string, ids []string) {
	t.Helper()
	qa, prod, commits, lastProd := commitsPerBuild(t, remote, seed)
	deploys := 0
	for i, id := range ids {
		want := 0
		if plan(i) == "promoted" {
			want = 1
			deploys++
		}
		if qa[id] != 1 || prod[id] != want {
			t.Errorf("build %d (%s, %s): %d QA and %d production commits, want 1 and %d", i, id, plan(i), qa[id], prod[id], want)
		}
	}
	if want := 1 + len(ids) + deploys; commits != want {
		t.Errorf("main has %d commits, want the seed, %d QA and %d production commits", commits, len(ids), deploys)
	}
	kust, _ := gittest.ReadFile(t, remote, "main", "apps/hello/overlays/production/kustomization.yaml")
	if _, tag, _ := strings.Cut(lastProd, ":"); lastProd == "" || !strings.Contains(kust, tag+`"`) {
		t.Errorf("production overlay does not run the last deployed image %s:\n%s", lastProd, kust)
	}
}

// checkKillLoopSlack: every message a build should have was posted, and
// a message posted more than once was posted again only after a kill
// (the process died before it could record the first post).
func checkKillLoopSlack(t *testing.T, fake *slacktest.Server, kills []time.Time, ids []string) {
	t.Helper()
	const inFlight = 250 * time.Millisecond
	want := map[string]bool{}
	for i, id := range ids {
		for _, k := range []string{"channel/", "owner/UOWN1", "qa/UQA1"} {
			want[id+"/"+k] = true
		}
		switch plan(i) {
		case "rejected", "approved", "closed":
			want[id+"/verdict-reply/UOWN1/UQA1"] = true
		case "promoted":
			want[id+"/verdict-reply/UOWN1/UQA1"] = true
			want[id+"/production/"] = true
		}
	}
	posted := map[string][]time.Time{}
	waitFor(t, "every Slack message", func() bool {
		posted = map[string][]time.Time{}
		for _, call := range fake.Calls("chat.postMessage") {
			var m struct {
				Payload struct {
					BuildID   string `json:"build_id"`
					Role      string `json:"role"`
					Recipient string `json:"recipient"`
				} `json:"event_payload"`
			}
			if !call.OK || json.Unmarshal([]byte(call.Params["metadata"]), &m) != nil {
				continue
			}
			p := m.Payload
			key := p.BuildID + "/" + p.Role + "/" + p.Recipient
			posted[key] = append(posted[key], call.At)
		}
		for k := range want {
			if len(posted[k]) == 0 {
				return false
			}
		}
		return true
	})
	// Each repeat must have a kill of its own between it and the copy
	// before: one unacknowledged call, retried once. (Two kills can each
	// fall between Slack's answer and the record of the same message.) The
	// fake stamps a post when it handles it: a post the killed process sent
	// just before it died can be handled a moment after the kill was
	// stamped, and the restarted process, which takes the job up at once,
	// posts again soon after; a kill up to inFlight before the first post
	// counts as between.
	repeats, thrice := 0, 0
	for key, at := range posted {
		if !want[key] {
			t.Errorf("unexpected message %s", key)
		}
		if len(at) > 2 {
			thrice++
		}
		for j := 1; j < len(at); j++ {
			repeats++
			between := false
			for _, k := range kills {
				between = between || (k.After(at[j-1].Add(-inFlight)) && k.Before(at[j]))
			}
			if !between {
				t.Errorf("message %s posted again at %s without a kill since %s", key,
					at[j].Format("15:04:05.000"), at[j-1].Format("15:04:05.000"))
			}
		}
	}
	t.Logf("%d messages, %d posted again after a kill lost the answer (%d of them a third time, after a second kill)", len(posted), repeats, thrice)
}
