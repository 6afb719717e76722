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
	"net/http"
	"os"
	"path/filepath"
	"strings"
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
	config := filepath.Join(t.TempDir(), "config.yaml")
	yaml := `listen: 127.0.0.1:0
dataDir: ` + filepath.Join(t.TempDir(), "data") + `
gitops:
  repo: ` + remote + `
projects:
- id: hello
  url: https://hello.example.com
  channel: C0HELLO
  qa: [UQA1]
  owners: [UOWN1]
  image: registry.example.com/acme/hello
  path: apps/hello
`
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	env := map[string]string{"PROMOTEBOT_WEBHOOK_SECRET": webhookSecret}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"promotebot", "serve", "--config", config}, func(k string) string { return env[k] }, w, io.Discard)
		w.Close()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("serve did not start: %v (%v)", err, <-done)
	}
	go io.Copy(io.Discard, out) //nolint:errcheck // drain the rest
	t.Cleanup(func() {
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
	return "http://" + strings.TrimSpace(strings.TrimPrefix(line, "promotebot listening on ")), remote
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
