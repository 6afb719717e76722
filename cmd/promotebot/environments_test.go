package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/promotebot/promotebot/gitops/gittest"
)

func deleteEnv(t *testing.T, base, path, token string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, base+"/v1/environments/"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return do(t, req)
}

// TestServeEnvironmentLifeCycle: the cap refuses a new target (409, nothing
// committed) and lets builds of existing environments through; DELETE tears
// an environment down in one commit and closes its builds; a repeat is
// harmless; the freed place takes a new target.
func TestServeEnvironmentLifeCycle(t *testing.T) {
	skipIfShort(t, "a live server with a config remote")
	remote := gittest.NewRemote(t, filepath.Join("..", "..", "testdata", "configrepo"))
	config := helloConfig(t, remote, "  maxQAEnvironments: 2\n")
	base, _ := serveConfig(t, config, nil)
	post := func(image, target string) (int, map[string]any) {
		t.Helper()
		return postBuild(t, base, `{"project":"hello","image":"registry.example.com/acme/hello:`+image+`","type":"branch","target":"`+target+`"}`)
	}
	ids := map[string]string{}
	for _, target := range []string{"feature/login", "feature/pay"} {
		code, out := post("1.0.0-"+strings.ReplaceAll(target, "/", "-"), target)
		if code != http.StatusAccepted {
			t.Fatalf("POST %s: %d %v", target, code, out)
		}
		ids[target] = out["id"].(string)
		waitState(t, base, ids[target], "qa-ready")
	}
	head := gittest.Head(t, remote, "main")

	code, out := post("1.0.0-third", "feature/third")
	idle, _ := out["idle"].([]any)
	if code != http.StatusConflict || out["limit"] != float64(2) || len(idle) != 2 ||
		idle[0].(map[string]any)["target"] != "feature/login" || !strings.Contains(out["error"].(string), "maxQAEnvironments") {
		t.Fatalf("a third environment past the limit: %d %v", code, out)
	}
	if _, metrics := get(t, base+"/metrics"); !strings.Contains(metrics, `promotebot_qa_environments{project="hello"} 2`) ||
		!strings.Contains(metrics, `promotebot_webhook_requests_total{outcome="environment_limit"} 1`) {
		t.Errorf("/metrics lacks the environments or the refusal:\n%s", metrics)
	}
	// A new build of an existing environment still passes.
	if code, out := post("1.0.1-login", "feature/login"); code != http.StatusAccepted {
		t.Fatalf("a new build of an existing environment: %d %v", code, out)
	} else {
		ids["feature/login"] = out["id"].(string)
	}
	waitState(t, base, ids["feature/login"], "qa-ready")
	if gittest.Head(t, remote, "main") == head {
		t.Fatal("the new build of an existing environment was not deployed")
	}
	// The refused one committed nothing: only the login build's commit is new.
	log := gittest.Log(t, remote, "main")
	if log[1].Hash != head {
		t.Fatalf("more than one commit since the refusal: %v", log[:3])
	}

	if code, _ := deleteEnv(t, base, "hello/branch/feature%2Fpay", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("DELETE with a wrong token: %d", code)
	}
	if code, out := deleteEnv(t, base, "hello/branch/feature%2Fnope", webhookSecret); code != http.StatusNotFound {
		t.Errorf("DELETE of an unknown environment: %d %v", code, out)
	}
	if code, out := deleteEnv(t, base, "hello/branch/feature%2Fpay", webhookSecret); code != http.StatusAccepted ||
		out["environment"] != "qa/branch-feature-pay" || out["state"] != "tearing-down" {
		t.Fatalf("DELETE: %d %v", code, out)
	}
	b := waitState(t, base, ids["feature/pay"], "closed")
	if !strings.Contains(b["error"].(string), "QA environment torn down") {
		t.Errorf("the closed build says %q", b["error"])
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, ok := gittest.ReadFile(t, remote, "main", "apps/hello/overlays/qa/branch-feature-pay/kustomization.yaml"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the environment's folder is still there")
		}
		time.Sleep(50 * time.Millisecond)
	}
	c := gittest.Log(t, remote, "main")[0]
	if env := c.TrailerValues("Promotebot-Environment"); len(env) != 1 || env[0] != "qa/branch-feature-pay" {
		t.Errorf("teardown commit's environment: %q", env)
	}
	if why := c.TrailerValues("Promotebot-Teardown"); len(why) != 1 || why[0] != "by ci" {
		t.Errorf("teardown commit's reason: %q", why)
	}
	if _, ok := gittest.ReadFile(t, remote, "main", "apps/hello/overlays/qa/branch-feature-login/kustomization.yaml"); !ok {
		t.Error("the other environment went too")
	}
	// A repeat is harmless; the freed place takes a new target.
	if code, out := deleteEnv(t, base, "hello/branch/feature%2Fpay", webhookSecret); code != http.StatusAccepted || out["state"] != "torn-down" {
		t.Errorf("DELETE again: %d %v", code, out)
	}
	if code, out := post("1.0.0-third", "feature/third"); code != http.StatusAccepted {
		t.Errorf("a new target once a place is free: %d %v", code, out)
	}
}

// TestServeTearsDownDeletedBranches: GitHub's delete event of the project's
// source repository tears the branch's QA environment down.
func TestServeTearsDownDeletedBranches(t *testing.T) {
	skipIfShort(t, "a live server with a config remote")
	remote := gittest.NewRemote(t, filepath.Join("..", "..", "testdata", "configrepo"))
	config := helloConfig(t, remote, "  sourceRepository: acme/shop\n")
	base, _ := serveConfig(t, config, map[string]string{"PROMOTEBOT_GITHUB_WEBHOOK_SECRET": "gh-secret"})
	code, out := postBuild(t, base, `{"project":"hello","image":"registry.example.com/acme/hello:2.0.0","type":"branch","target":"feature/login"}`)
	if code != http.StatusAccepted {
		t.Fatalf("POST: %d %v", code, out)
	}
	id := out["id"].(string)
	waitState(t, base, id, "qa-ready")
	body, err := os.ReadFile(filepath.Join("..", "..", "testdata", "github", "delete-branch.json"))
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, base+"/github/webhook", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, []byte("gh-secret"))
	mac.Write(body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "delete")
	req.Header.Set("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("delete event: %d", resp.StatusCode)
	}
	waitState(t, base, id, "closed")
	waitFor(t, "the folder to go", func() bool {
		_, ok := gittest.ReadFile(t, remote, "main", "apps/hello/overlays/qa/branch-feature-login/kustomization.yaml")
		return !ok
	})
	if why := gittest.Log(t, remote, "main")[0].TrailerValues("Promotebot-Teardown"); len(why) != 1 || why[0] != "branch-deleted" {
		t.Errorf("teardown reason: %q", why)
	}
}
