package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/Masterminds/sprig/v3"
	eventv1 "github.com/fluxcd/pkg/apis/event/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/slackui/slacktest"
)

const eventsSecret = "test-events-secret"

// fluxEvent is an event as Flux's kustomize-controller sends it about the
// Kustomization that reconciles path, at revision of the config branch.
func fluxEvent(path, revision, severity, reason, message string) eventv1.Event {
	return eventv1.Event{
		InvolvedObject: corev1.ObjectReference{Kind: "Kustomization", Namespace: "flux-system",
			Name: "hello-qa", APIVersion: "kustomize.toolkit.fluxcd.io/v1"},
		Severity:  severity,
		Timestamp: metav1.Now(),
		Message:   message,
		Reason:    reason,
		Metadata: map[string]string{
			"revision":                     "main@sha1:" + revision,
			"event.toolkit.fluxcd.io/path": path,
		},
		ReportingController: "kustomize-controller",
		ReportingInstance:   "kustomize-controller-7f5b9c8d4-abcde",
	}
}

// postFlux posts ev as notification-controller's generic-hmac provider
// does: the JSON body, signed with HMAC-SHA256 of the secret.
func postFlux(t *testing.T, base string, ev eventv1.Event, secret string) (int, map[string]any) {
	t.Helper()
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, base+"/v1/events/flux", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	return do(t, req)
}

// argoBody renders the body of one of the shipped Argo CD templates as Argo
// CD's notifications controller does: text/template with sprig's functions
// over the Application as .app.
func argoBody(t *testing.T, name string, app map[string]any) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "examples", "argocd", "notifications.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(raw), "\n---\n")
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal([]byte(docs[0]), &cm); err != nil {
		t.Fatal(err)
	}
	var tmpl struct {
		Webhook map[string]struct {
			Body string `json:"body"`
		} `json:"webhook"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data["template."+name]), &tmpl); err != nil {
		t.Fatal(err)
	}
	tt, err := template.New(name).Funcs(sprig.TxtFuncMap()).Parse(tmpl.Webhook["promotebot"].Body)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := tt.Execute(&out, map[string]any{"app": app}); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// qaApplication is the recorded healthy QA Application, made to reconcile
// path at revision, its sync and health assessed now.
func qaApplication(t *testing.T, path, revision string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "argocd", "app-qa-healthy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var app map[string]any
	if err := yaml.Unmarshal(raw, &app); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	spec := app["spec"].(map[string]any)
	spec["source"].(map[string]any)["path"] = path
	status := app["status"].(map[string]any)
	status["sync"].(map[string]any)["revision"] = revision
	op := status["operationState"].(map[string]any)
	op["finishedAt"] = now.Add(-time.Second).Format(time.RFC3339)
	op["syncResult"].(map[string]any)["revision"] = revision
	status["health"].(map[string]any)["lastTransitionTime"] = now.Format(time.RFC3339)
	return app
}

func postArgo(t *testing.T, base, body, token string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/v1/events/argocd", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	return do(t, req)
}

func revParse(t *testing.T, remote, rev string) string {
	t.Helper()
	out, err := exec.Command("git", "-C", remote, "rev-parse", rev).Output()
	if err != nil {
		t.Fatalf("git rev-parse %s: %v", rev, err)
	}
	return strings.TrimSpace(string(out))
}

// channelText is the text of the build's channel announcement as it reads now.
func channelText(t *testing.T, fake *slacktest.Server) string {
	t.Helper()
	for _, m := range fake.Messages("C0HELLO") {
		if m.ThreadTS == "" && !m.Ephemeral {
			return m.Text + "\n" + string(m.Blocks)
		}
	}
	t.Fatal("no announcement in the channel")
	return ""
}

// TestServeClusterFeedback: a QA deploy that Flux reports synced, then
// degraded, and Argo CD healthy, through a live server; QA are asked only
// once it is healthy (rollout.waitForHealthy). Forged, unknown-path, stale
// and repeated events change nothing.
func TestServeClusterFeedback(t *testing.T) {
	skipIfShort(t, "a live server with a config remote and Slack")
	fake := slacktest.NewServer(t, slackToken)
	fake.AddChannel("C0HELLO")
	fake.AddUser(slacktest.User{ID: "UQA1", Name: "ada", RealName: "Ada Lovelace", Email: "ada@example.com"})
	fake.AddUser(slacktest.User{ID: "UOWN1", Name: "olga", RealName: "Olga Owner", Email: "olga@example.com"})
	remote := gittest.NewRemote(t, filepath.Join("..", "..", "testdata", "configrepo"))
	seed := revParse(t, remote, "main")
	config := helloConfig(t, remote, "slack:\n  apiURL: "+fake.URL+"\nrollout:\n  waitForHealthy: true\n")
	base, _ := serveConfig(t, config, map[string]string{
		"PROMOTEBOT_SLACK_BOT_TOKEN":      slackToken,
		"PROMOTEBOT_SLACK_SIGNING_SECRET": slackSigning,
		"PROMOTEBOT_EVENTS_SECRET":        eventsSecret,
	})

	code, accepted := postBuild(t, base, `{"project":"hello","image":"registry.example.com/acme/hello:3.1.0","type":"branch","target":"feature/pay"}`)
	if code != http.StatusAccepted {
		t.Fatalf("POST build: %d %v", code, accepted)
	}
	id := accepted["id"].(string)
	b := waitState(t, base, id, "qa-ready")
	qaCommit := b["qaCommit"].(string)
	if got := rolloutOf(b, "qa")["status"]; got != "pending" {
		t.Fatalf("rollout.qa after the commit = %v, want pending", got)
	}
	waitFor(t, "the announcement to say it waits", func() bool {
		return strings.Contains(channelText(t, fake), "waiting for Argo CD/Flux")
	})
	if ms := fake.Messages("DQA1"); len(ms) != 0 {
		t.Fatalf("QA was asked before the environment was healthy: %+v", ms)
	}
	const qaPath = "./apps/hello/overlays/qa"
	updates := func() int { return len(fake.Calls("chat.update")) }

	// Forged and unknown events change nothing.
	if code, _ := postFlux(t, base, fluxEvent(qaPath, qaCommit, "info", "Progressing", "applied"), "wrong"); code != http.StatusUnauthorized {
		t.Errorf("a forged Flux event answered %d, want 401", code)
	}
	if code, _ := postArgo(t, base, argoBody(t, "promotebot-deployed", qaApplication(t, "apps/hello/overlays/qa/branch-feature-pay", qaCommit)), "wrong"); code != http.StatusUnauthorized {
		t.Errorf("an Argo CD call with the wrong token answered %d, want 401", code)
	}
	if code, out := postFlux(t, base, fluxEvent("./apps/other", qaCommit, "info", "ReconciliationSucceeded", "ok"), eventsSecret); code != http.StatusOK || out["outcome"] != "ignored" {
		t.Errorf("an unknown path: %d %v, want 200 ignored", code, out)
	}
	// The revision before the bot's commit does not hold the build.
	if code, out := postFlux(t, base, fluxEvent(qaPath, seed, "info", "ReconciliationSucceeded", "ok"), eventsSecret); code != http.StatusOK || out["outcome"] != "pending" {
		t.Errorf("an older revision: %d %v, want 200 pending", code, out)
	}
	if got := rolloutOf(getBuild(t, base, id), "qa")["status"]; got != "pending" {
		t.Fatalf("rollout.qa after events that do not count = %v", got)
	}

	// Synced, then the same event again (Flux re-sends on every reconcile).
	if code, out := postFlux(t, base, fluxEvent(qaPath, qaCommit, "info", "Progressing", "Deployment/hello-branch-feature-pay/hello configured"), eventsSecret); code != http.StatusOK || out["outcome"] != "applied" {
		t.Fatalf("synced: %d %v", code, out)
	}
	waitFor(t, "the announcement to say it is synced", func() bool {
		return strings.Contains(channelText(t, fake), "synced `"+qaCommit[:7]+"`")
	})
	time.Sleep(300 * time.Millisecond) // the update of the messages ends
	before := updates()
	if code, out := postFlux(t, base, fluxEvent(qaPath, qaCommit, "info", "Progressing", "again"), eventsSecret); code != http.StatusOK || out["outcome"] != "repeat" {
		t.Errorf("a repeat: %d %v, want 200 repeat", code, out)
	}
	time.Sleep(500 * time.Millisecond) // what a notification would take
	if n := updates(); n != before {
		t.Errorf("a repeated event updated Slack messages %d times", n-before)
	}

	// Degraded, with Flux's message.
	msg := "Deployment/hello-branch-feature-pay/hello status: 'Failed' ImagePullBackOff"
	if code, out := postFlux(t, base, fluxEvent(qaPath, qaCommit, "error", "HealthCheckFailed", msg), eventsSecret); code != http.StatusOK || out["outcome"] != "applied" {
		t.Fatalf("degraded: %d %v", code, out)
	}
	waitFor(t, "the announcement to say the rollout fails", func() bool {
		return strings.Contains(channelText(t, fake), "QA rollout failing")
	})
	if r := rolloutOf(getBuild(t, base, id), "qa"); r["status"] != "degraded" || r["message"] != msg || r["revision"] != qaCommit {
		t.Fatalf("rollout.qa = %v, want degraded at %s with Flux's message", r, qaCommit)
	}
	if ms := fake.Messages("DQA1"); len(ms) != 0 {
		t.Fatal("QA was asked while the environment was degraded")
	}

	// Argo CD's "deployed" template, rendered from the shipped ConfigMap.
	body := argoBody(t, "promotebot-deployed", qaApplication(t, "apps/hello/overlays/qa/branch-feature-pay", qaCommit))
	if code, out := postArgo(t, base, body, eventsSecret); code != http.StatusOK || out["outcome"] != "applied" {
		t.Fatalf("healthy from Argo CD: %d %v\n%s", code, out, body)
	}
	b = getBuild(t, base, id)
	if r := rolloutOf(b, "qa"); r["status"] != "healthy" || r["message"] != "" {
		t.Fatalf("rollout.qa = %v, want healthy", r)
	}
	waitFor(t, "QA to be asked once healthy", func() bool { return len(fake.Messages("DQA1")) > 0 })
	waitFor(t, "the announcement to say it is live", func() bool {
		return strings.Contains(channelText(t, fake), "Live in QA")
	})
	var steps []string
	for _, h := range b["history"].([]any) {
		step := h.(map[string]any)
		if step["event"] == "rollout" {
			steps = append(steps, step["status"].(string))
		}
	}
	if want := "pending synced degraded healthy"; strings.Join(steps, " ") != want {
		t.Errorf("rollout steps in the history = %v, want %s", steps, want)
	}
}

func rolloutOf(b map[string]any, env string) map[string]any {
	r, _ := b["rollout"].(map[string]any)
	e, _ := r[env].(map[string]any)
	return e
}

// TestServePollsArgoCD: without webhooks, the bot asks Argo CD's API (with
// its token) while a rollout is pending, and records what the Application
// says.
func TestServePollsArgoCD(t *testing.T) {
	skipIfShort(t, "a live server with a config remote and an Argo CD API")
	remote := gittest.NewRemote(t, filepath.Join("..", "..", "testdata", "configrepo"))
	var (
		mu    sync.Mutex
		apps  []map[string]any
		calls int
		auth  []string
	)
	argo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		auth = append(auth, r.Header.Get("Authorization"))
		if r.URL.Path != "/api/v1/applications" || r.Header.Get("Authorization") != "Bearer argocd-token" {
			http.Error(w, `{"error":"no","code":16}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(map[string]any{"metadata": map[string]any{"resourceVersion": "1"}, "items": apps}); err != nil {
			t.Error(err)
		}
	}))
	defer argo.Close()
	config := helloConfig(t, remote, "argocd:\n  apiURL: "+argo.URL+"\n  pollInterval: 1s\n")
	base, _ := serveConfig(t, config, map[string]string{"PROMOTEBOT_ARGOCD_TOKEN": "argocd-token"})

	code, accepted := postBuild(t, base, `{"project":"hello","image":"registry.example.com/acme/hello:3.2.0","type":"branch","target":"feature/pay"}`)
	if code != http.StatusAccepted {
		t.Fatalf("POST build: %d %v", code, accepted)
	}
	id := accepted["id"].(string)
	qaCommit := waitState(t, base, id, "qa-ready")["qaCommit"].(string)
	mu.Lock()
	apps = []map[string]any{qaApplication(t, "apps/hello/overlays/qa/branch-feature-pay", qaCommit)}
	mu.Unlock()
	waitFor(t, "the polled Application to make the rollout healthy", func() bool {
		return rolloutOf(getBuild(t, base, id), "qa")["status"] == "healthy"
	})
	// Healthy, nothing else pending: the bot stops asking.
	time.Sleep(1500 * time.Millisecond)
	mu.Lock()
	n := calls
	mu.Unlock()
	time.Sleep(2500 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if calls != n {
		t.Errorf("the bot asked Argo CD %d more times with nothing pending", calls-n)
	}
	for _, a := range auth {
		if a != "Bearer argocd-token" {
			t.Errorf("a call to Argo CD carried %q", a)
		}
	}
}
