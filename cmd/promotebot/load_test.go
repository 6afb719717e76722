package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promotebot/promotebot/gitops/gittest"
)

// loadRepo is the sample config repo with n copies of the hello app,
// app-000 … app-<n-1>, and a config with one project for each.
func loadRepo(t *testing.T, n int, extra string) (remote, config string) {
	t.Helper()
	src := filepath.Join("..", "..", "testdata", "configrepo")
	dir := filepath.Join(t.TempDir(), "seed")
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	hello := filepath.Join(src, "apps", "hello")
	var projects strings.Builder
	for i := range n {
		app := fmt.Sprintf("app-%03d", i)
		err := filepath.WalkDir(hello, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(hello, path)
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			out := filepath.Join(dir, "apps", app, rel)
			if err := os.MkdirAll(filepath.Dir(out), 0o750); err != nil {
				return err
			}
			return os.WriteFile(out, []byte(strings.ReplaceAll(string(b), "hello", app)), 0o640)
		})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&projects, `- id: %[1]s
  url: https://%[1]s.example.com
  channel: C0LOAD
  qa: [UQA1]
  owners: [UOWN1]
  image: registry.example.com/acme/%[1]s
  path: apps/%[1]s
`, app)
	}
	remote = gittest.NewRemote(t, dir)
	config = filepath.Join(t.TempDir(), "config.yaml")
	yaml := "listen: 127.0.0.1:0\ndataDir: " + filepath.Join(t.TempDir(), "data") + "\ngitops:\n  repo: " + remote +
		"\n" + extra + "projects:\n" + projects.String()
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return remote, config
}

// percentiles formats p50, p90, p99 and the maximum of ds.
func percentiles(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(p float64) time.Duration {
		return s[int(math.Ceil(p*float64(len(s))))-1].Round(100 * time.Microsecond)
	}
	return fmt.Sprintf("p50 %v, p90 %v, p99 %v, max %v", at(0.50), at(0.90), at(0.99), s[len(s)-1].Round(100*time.Microsecond))
}

// peakRSS reads a process's peak resident set size (VmHWM) in MiB.
func peakRSS(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// waitAll polls the builds (a few at a time, as a dashboard would) until
// each is in state, and returns their views.
func (c *client) waitAll(ctx context.Context, ids []string, state string, timeout time.Duration) ([]built, error) {
	out := make([]built, len(ids))
	deadline := time.Now().Add(timeout)
	for i := 0; i < len(ids); {
		b, err := c.build(ctx, ids[i])
		if err != nil {
			return nil, err
		}
		if b.State == state {
			out[i] = b
			i++
			continue
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("build %s is %s after %v, want %s", ids[i], b.State, timeout, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return out, nil
}

// TestLoad posts builds across many projects as fast as CI could, then
// sends QA's approvals as one burst of concurrent Slack clicks and the
// owners' deploys as another, against a real server process, and reports
// throughput, latency percentiles and the server's peak RSS. Git must hold
// exactly one QA commit per build and one production commit per deploy.
//
// PROMOTEBOT_LOAD_BUILDS, _PROJECTS and _CLICKS size it (CI runs the
// small defaults; bench/load.sh runs 500 builds, 100 projects and 300
// clicks); PROMOTEBOT_LOAD_REPORT names a file for the figures.
func TestLoad(t *testing.T) {
	skipIfShort(t, "a load run of a hundred builds over twenty projects, about 6 s")
	builds := envInt(t, "PROMOTEBOT_LOAD_BUILDS", 100)
	projects := envInt(t, "PROMOTEBOT_LOAD_PROJECTS", 20)
	clicks := min(envInt(t, "PROMOTEBOT_LOAD_CLICKS", 60), builds)
	deploys := clicks / 3
	fake := loopSlack(t, "C0LOAD")
	remote, config := loadRepo(t, projects, "slack:\n  apiURL: "+fake.URL+"\n")
	seed := gittest.Head(t, remote, "main")
	f := &fleet{config: config, env: []string{
		"PROMOTEBOT_SLACK_BOT_TOKEN=" + slackToken, "PROMOTEBOT_SLACK_SIGNING_SECRET=" + slackSigning,
	}}
	if err := f.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.stop)
	ctx := context.Background()
	c := &client{base: f.url, http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 400}}}
	var report strings.Builder
	say := func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		t.Log(line)
		report.WriteString(line + "\n")
	}
	say("load: %d builds across %d projects, %d concurrent approval clicks, then %d concurrent deploy clicks", builds, projects, clicks, deploys)

	// CI: every build posted as fast as 32 clients can.
	ids := make([]string, builds)
	posted := make([]time.Duration, builds)
	errs := make([]error, builds)
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range 32 {
		wg.Go(func() {
			for i := range next {
				app := fmt.Sprintf("app-%03d", i%projects)
				body := fmt.Sprintf(`{"project":"%s","image":"registry.example.com/acme/%s:4.0.%d","type":"branch","target":"load-%d"}`, app, app, i, i)
				t0 := time.Now()
				ids[i], errs[i] = c.postBuild(ctx, body)
				posted[i] = time.Since(t0)
			}
		})
	}
	for i := range builds {
		next <- i
	}
	close(next)
	wg.Wait()
	ingest := time.Since(start)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("build %d: %v", i, err)
		}
	}
	say("ingest: %d builds in %v, %.0f builds/s; POST latency %s", builds, ingest.Round(time.Millisecond),
		float64(builds)/ingest.Seconds(), percentiles(posted))

	ready, err := c.waitAll(ctx, ids, "qa-ready", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var toQA []time.Duration
	last := time.Time{}
	for _, b := range ready {
		at := b.reached("qa-ready")
		toQA = append(toQA, at.Sub(b.CreatedAt))
		if at.After(last) {
			last = at
		}
	}
	say("QA deploys: all %d pushed %v after the first POST, %.0f builds/s; accepted → qa-ready %s", builds,
		last.Sub(start).Round(time.Millisecond), float64(builds)/last.Sub(start).Seconds(), percentiles(toQA))

	// Slack: the approvals as one burst, then the deploys as another.
	burst := func(kind, user, action, want string, targets []string) {
		t.Helper()
		answered := make([]time.Duration, len(targets))
		sent := make([]time.Time, len(targets))
		cerrs := make([]error, len(targets))
		gate := make(chan struct{})
		var wg sync.WaitGroup
		for i, id := range targets {
			wg.Go(func() {
				<-gate
				sent[i] = time.Now()
				cerrs[i] = c.click(ctx, user, action, id)
				answered[i] = time.Since(sent[i])
			})
		}
		close(gate)
		wg.Wait()
		for i, err := range cerrs {
			if err != nil {
				t.Fatalf("%s click %d: %v", kind, i, err)
			}
		}
		done, err := c.waitAll(ctx, targets, want, 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		var effect []time.Duration
		for i, b := range done {
			effect = append(effect, b.reached(want).Sub(sent[i]))
		}
		say("%s: %d concurrent clicks; answered %s; click → %s %s", kind, len(targets), percentiles(answered), want, percentiles(effect))
	}
	burst("approvals", "UQA1", "qa_approve", "approved", ids[:clicks])
	burst("deploys", "UOWN1", "prod_deploy", "promoted", ids[:deploys])

	rss, err := peakRSS(f.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	say("server peak RSS: %.0f MiB", rss)

	// Git holds exactly what was asked: one QA commit per build, one
	// production commit per deploy, nothing else.
	qa, prod, commits, _ := commitsPerBuild(t, remote, seed)
	for i, id := range ids {
		want := 0
		if i < deploys {
			want = 1
		}
		if qa[id] != 1 || prod[id] != want {
			t.Errorf("build %d (%s): %d QA and %d production commits, want 1 and %d", i, id, qa[id], prod[id], want)
		}
	}
	if want := 1 + builds + deploys; commits != want {
		t.Errorf("main has %d commits, want %d (the seed, %d QA, %d production)", commits, want, builds, deploys)
	}
	say("git: %d QA and %d production commits, one for each build and each deploy", len(qa), len(prod))
	if name := os.Getenv("PROMOTEBOT_LOAD_REPORT"); name != "" {
		if err := os.WriteFile(name, []byte(report.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
