package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promotebot/promotebot/gitops/gittest"
)

const webhookSecret = "test-webhook-secret"

// startServe runs `promotebot serve` on a free port against a fresh config
// remote and returns the server's base URL and the remote.
func startServe(t *testing.T) (base, remote string) {
	t.Helper()
	remote = gittest.NewRemote(t, filepath.Join("..", "..", "testdata", "configrepo"))
	base, _ = serveRepo(t, remote, nil)
	return base, remote
}

// helloConfig writes a config for the hello project on repo, with the data
// dir in a fresh temporary directory.
func helloConfig(t *testing.T, repo, extra string) string {
	t.Helper()
	config := filepath.Join(t.TempDir(), "config.yaml")
	yaml := `listen: 127.0.0.1:0
dataDir: ` + filepath.Join(t.TempDir(), "data") + `
gitops:
  repo: ` + repo + `
projects:
- id: hello
  url: https://hello.example.com
  channel: C0HELLO
  qa: [UQA1]
  owners: [UOWN1]
  image: registry.example.com/acme/hello
  path: apps/hello
`
	if !strings.Contains(extra, "maxQAEnvironments") {
		// Most tests deploy more targets than the default cap allows.
		yaml += "  maxQAEnvironments: 0\n"
	}
	yaml += extra
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return config
}

// serveRepo runs `promotebot serve` (through run, in this process) for the
// hello project on repo, with the webhook secret and env set, and returns
// its base URL and what it logged so far.
func serveRepo(t *testing.T, repo string, env map[string]string) (string, *lockedLog) {
	t.Helper()
	return serveConfig(t, helloConfig(t, repo, ""), env)
}

func serveConfig(t *testing.T, config string, env map[string]string) (string, *lockedLog) {
	t.Helper()
	base, logs, _ := serveStoppable(t, config, env)
	return base, logs
}

// serveStoppable is serveConfig that also returns a stop function, which
// shuts the server down gracefully and waits for it (safe to call twice).
func serveStoppable(t *testing.T, config string, env map[string]string) (string, *lockedLog, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	vars := map[string]string{"PROMOTEBOT_WEBHOOK_SECRET": webhookSecret}
	maps.Copy(vars, env)
	logs := &lockedLog{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"promotebot", "serve", "--config", config}, func(k string) string { return vars[k] }, w, logs)
		w.Close()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("serve did not start: %v (%v)", err, <-done)
	}
	go io.Copy(io.Discard, out) //nolint:errcheck // drain the rest
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Error("serve did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return "http://" + strings.TrimSpace(strings.TrimPrefix(line, "promotebot listening on ")), logs, stop
}

// lockedLog collects what the server logs.
type lockedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func postBuild(t *testing.T, base string, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("POST", base+"/v1/builds", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, []byte(webhookSecret))
	mac.Write([]byte(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Promotebot-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("status %d, body not JSON: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, out
}

func getBuild(t *testing.T, base, id string) map[string]any {
	t.Helper()
	req, err := http.NewRequest("GET", base+"/v1/builds/"+id, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+webhookSecret)
	code, out := do(t, req)
	if code != http.StatusOK {
		t.Fatalf("GET build: %d %v", code, out)
	}
	return out
}

func waitState(t *testing.T, base, id, want string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b := getBuild(t, base, id)
		if b["state"] == want {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("build %s is %v, want %s: %v", id, b["state"], want, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestServeDeploysABuildToQA(t *testing.T) {
	base, remote := startServe(t)
	body := `{"project":"hello","image":"registry.example.com/acme/hello:1.4.0","type":"branch","target":"feature/login","commit":"0123abc","buildURL":"https://ci.example.com/1"}`
	code, accepted := postBuild(t, base, body)
	if code != http.StatusAccepted || accepted["id"] == "" || accepted["environment"] != "qa/branch-feature-login" {
		t.Fatalf("POST: %d %v", code, accepted)
	}
	id := accepted["id"].(string)
	b := waitState(t, base, id, "qa-ready")
	head := gittest.Head(t, remote, "main")
	if b["qaCommit"] != head || b["url"] != "https://feature-login.branch.hello.example.com" {
		t.Fatalf("build %v, remote at %s", b, head)
	}
	kust, ok := gittest.ReadFile(t, remote, "main", "apps/hello/overlays/qa/branch-feature-login/kustomization.yaml")
	if !ok || !strings.Contains(kust, "newTag: 1.4.0") {
		t.Fatalf("overlay:\n%s", kust)
	}
	c := gittest.Log(t, remote, "main")[0]
	if v := c.TrailerValues("Promotebot-Build"); len(v) != 1 || v[0] != id {
		t.Fatalf("commit trailers %v", c.Trailers)
	}

	// The same build again: 200, same id, nothing written.
	code, again := postBuild(t, base, body)
	if code != http.StatusOK || again["id"] != id {
		t.Fatalf("repeat: %d %v", code, again)
	}
	// A bad signature changes nothing.
	req, err := http.NewRequest("POST", base+"/v1/builds", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Promotebot-Signature-256", "sha256=00")
	if code, _ := do(t, req); code != http.StatusUnauthorized {
		t.Fatalf("bad signature: %d", code)
	}
	time.Sleep(300 * time.Millisecond)
	if gittest.Head(t, remote, "main") != head {
		t.Fatal("the remote changed after a repeat and a forged request")
	}
}

// TestServeWaitsForTheConfigRepo starts serve while the git server answers
// 503: CI is still served, /readyz says why it is not ready, and the build
// is deployed once the git server is back. The git password never shows in
// the logs or the answers.
func TestServeWaitsForTheConfigRepo(t *testing.T) {
	const password = "s3cret-git-pw"
	remote := gittest.NewRemote(t, filepath.Join("..", "..", "testdata", "configrepo"))
	srv := gittest.NewServer(t, filepath.Dir(remote), "bot", password)
	var down atomic.Bool
	down.Store(true)
	srv.Intercept(func(w http.ResponseWriter, _ *http.Request) bool {
		if down.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	base, logs := serveRepo(t, srv.RepoURL(remote),
		map[string]string{"PROMOTEBOT_GIT_USERNAME": "bot", "PROMOTEBOT_GIT_PASSWORD": password})

	code, out := get(t, base+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(out, "config repo not cloned yet") {
		t.Fatalf("readyz while the git server is down: %d %s", code, out)
	}
	code, accepted := postBuild(t, base, `{"project":"hello","image":"registry.example.com/acme/hello:2.0.0","type":"tag","target":"v2.0.0"}`)
	if code != http.StatusAccepted {
		t.Fatalf("POST while the git server is down: %d %v", code, accepted)
	}
	id := accepted["id"].(string)
	time.Sleep(500 * time.Millisecond)
	if b := getBuild(t, base, id); b["state"] != "received" {
		t.Fatalf("build while the git server is down: %v", b)
	}

	down.Store(false)
	b := waitState(t, base, id, "qa-ready")
	if b["qaCommit"] != gittest.Head(t, remote, "main") {
		t.Fatalf("build %v, remote at %s", b, gittest.Head(t, remote, "main"))
	}
	if code, out := get(t, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("readyz after the clone: %d %s", code, out)
	}
	wants := []string{"promotebot_push_seconds_count 1", `promotebot_builds{state="qa-ready"} 1`,
		"promotebot_queue_depth 0", `promotebot_webhook_requests_total{outcome="accepted"} 1`}
	var metrics string
	waitFor(t, "the metrics", func() bool { // the notification job may still be queued
		_, metrics = get(t, base+"/metrics")
		for _, want := range wants {
			if !strings.Contains(metrics, want) {
				return false
			}
		}
		return true
	})
	if !strings.Contains(logs.String(), "config repo unreachable") {
		t.Errorf("the logs do not say the config repo was unreachable:\n%s", logs)
	}
	if strings.Contains(logs.String(), password) {
		t.Errorf("the git password is in the logs:\n%s", logs)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// TestServeAnnouncesTheEnvironmentItDeploys: two targets that share a plain
// environment name, reported at once; each 202 names the environment the
// build then is deployed to, whichever deploys first.
func TestServeAnnouncesTheEnvironmentItDeploys(t *testing.T) {
	base, remote := startServe(t)
	build := func(target string) string {
		return `{"project":"hello","image":"registry.example.com/acme/hello:1.4.0","type":"branch","target":"` + target + `"}`
	}
	announced := map[string]string{}
	for _, target := range []string{"feature/login", "Feature/Login", "feature-login"} {
		code, a := postBuild(t, base, build(target))
		if code != http.StatusAccepted {
			t.Fatalf("POST %s: %d %v", target, code, a)
		}
		announced[a["id"].(string)] = a["environment"].(string)
	}
	seen := map[string]bool{}
	for id, env := range announced {
		b := waitState(t, base, id, "qa-ready")
		if b["environment"] != env || seen[env] {
			t.Fatalf("build %s announced %s, deployed to %v (seen %v)", id, env, b["environment"], seen)
		}
		seen[env] = true
		dir := "apps/hello/overlays/" + env + "/kustomization.yaml"
		if _, ok := gittest.ReadFile(t, remote, "main", dir); !ok {
			t.Fatalf("no %s on the remote", dir)
		}
	}
}
