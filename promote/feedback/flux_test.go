package feedback_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	eventv1 "github.com/fluxcd/pkg/apis/event/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/promotebot/promotebot/promote"
	"github.com/promotebot/promotebot/promote/feedback"
)

const (
	fluxSecret = "s3cr3t-events-token"
	fluxPath   = "/v1/events/flux"
	commitA    = "3c1f0e2a9b7d64e58f10a2b3c4d5e6f708192a3b"
)

var fluxTime = time.Date(2026, 8, 7, 10, 2, 31, 0, time.UTC)

// kustomizationEvent is an event of the Kustomization shop-web-production
// as notification-controller forwards it: the object annotated with
// event.toolkit.fluxcd.io/path, the metadata keys stripped of their API
// group (RFC-0008).
func kustomizationEvent(severity, reason, message string) eventv1.Event {
	return eventv1.Event{
		InvolvedObject: corev1.ObjectReference{
			Kind:            "Kustomization",
			Namespace:       "flux-system",
			Name:            "shop-web-production",
			UID:             "6f0d9a4e-2b1c-4e8f-a7d3-5c9b8e1f2a30",
			APIVersion:      "kustomize.toolkit.fluxcd.io/v1",
			ResourceVersion: "48211990",
		},
		Severity:  severity,
		Timestamp: metav1.NewTime(fluxTime),
		Message:   message,
		Reason:    reason,
		Metadata: map[string]string{
			"revision": "main@sha1:" + commitA,
			"path":     "./apps/shop-web/overlays/production",
		},
		ReportingController: "kustomize-controller",
		ReportingInstance:   "kustomize-controller-6bc5d5b4f9-8lq2x",
	}
}

// signed is the body notification-controller's generic-hmac provider
// posts for e, and its X-Signature: it marshals the event, and signs those
// exact bytes with the Secret's token.
func signed(t *testing.T, e eventv1.Event, secret string) ([]byte, map[string]string) {
	t.Helper()
	body, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return body, map[string]string{
		"Content-Type":    "application/json",
		"gotk-component":  e.ReportingController,
		"X-Signature":     "sha256=" + hmacHex(secret, body),
		"User-Agent":      "Go-http-client/1.1",
		"Accept-Encoding": "gzip",
	}
}

func hmacHex(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

func withMeta(e eventv1.Event, kv ...string) eventv1.Event {
	e.Metadata = map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		e.Metadata[kv[i]] = kv[i+1]
	}
	return e
}

func TestFluxEvents(t *testing.T) {
	production := promote.ClusterEvent{
		Source: "flux", Object: "flux-system/shop-web-production",
		Path: "./apps/shop-web/overlays/production", Revision: commitA, At: fluxTime,
	}
	healthy, synced, degraded := production, production, production
	healthy.Status, synced.Status, degraded.Status = promote.RolloutHealthy, promote.RolloutSynced, promote.RolloutDegraded
	failedHealth := "health check failed after 5m0.012s: timeout waiting for: [Deployment/shop-web/shop-web status: 'InProgress']"
	degraded.Message = failedHealth
	rejected := degraded
	rejected.Message = "Deployment/shop-web/shop-web dry-run failed (Forbidden): admission webhook \"validate.kyverno.svc-fail\" denied the request:\n\npolicy Deployment/shop-web/shop-web for resource violation:\n\nrequire-image-digest:\n  check-digest: 'validation error: images must be pinned by digest'"

	succeeded := kustomizationEvent("info", "ReconciliationSucceeded", "Reconciliation finished in 34.2s, next run in 10m0s")
	succeeded.Metadata["commit_status"] = "update"

	for _, tc := range []struct {
		name  string
		event eventv1.Event
		want  *promote.ClusterEvent // nil: ignored
	}{
		{"reconciliation succeeded is healthy", succeeded, &healthy},
		{"an applied change set is synced", kustomizationEvent("info", "Progressing", "Deployment/shop-web/shop-web configured"), &synced},
		{"health checks passed within a reconciliation is synced", kustomizationEvent("info", "Progressing", "Health check passed in 31.8s"), &synced},
		{"a failed health check is degraded", kustomizationEvent("error", "HealthCheckFailed", failedHealth), &degraded},
		{"a refused apply is degraded, quotes and newlines kept", kustomizationEvent("error", "ReconciliationFailed", rejected.Message), &rejected},

		{"keys with their API group (older notification-controller)",
			withMeta(succeeded, "kustomize.toolkit.fluxcd.io/revision", "main@sha1:"+commitA,
				"event.toolkit.fluxcd.io/path", "./apps/shop-web/overlays/production"), &healthy},
		{"path with its group, revision without",
			withMeta(succeeded, "revision", "main@sha1:"+commitA, "event.toolkit.fluxcd.io/path", "./apps/shop-web/overlays/production"), &healthy},

		{"revision of a tag", withMeta(succeeded, "revision", "refs/tags/v1.2.0@sha1:"+commitA, "path", "./apps/shop-web/overlays/production"), &healthy},
		{"revision without ref", withMeta(succeeded, "revision", "sha1:"+commitA, "path", "./apps/shop-web/overlays/production"), &healthy},
		{"bare revision, upper case", withMeta(succeeded, "revision", strings.ToUpper(commitA), "path", "./apps/shop-web/overlays/production"), &healthy},
		{"revision before RFC-0005", withMeta(succeeded, "revision", "main/"+commitA, "path", "./apps/shop-web/overlays/production"), &healthy},
		{"an OCI digest is no commit", withMeta(succeeded, "revision", "latest@sha256:"+strings.Repeat("ab", 32), "path", "./apps/shop-web/overlays/production"), nil},
		{"a short sha is no commit", withMeta(succeeded, "revision", "main@sha1:"+commitA[:12], "path", "./apps/shop-web/overlays/production"), nil},
		{"no revision", withMeta(succeeded, "path", "./apps/shop-web/overlays/production"), nil},

		{"no path: the Kustomization lacks the annotation", withMeta(succeeded, "revision", "main@sha1:"+commitA), nil},
		{"a GitRepository is not followed", func() eventv1.Event {
			e := succeeded
			e.InvolvedObject.Kind, e.InvolvedObject.APIVersion = "GitRepository", "source.toolkit.fluxcd.io/v1"
			e.Message, e.Reason = "stored artifact for commit 'promotebot: deploy shop-web'", "NewArtifact"
			return e
		}(), nil},
		{"a HelmRelease is not followed", func() eventv1.Event {
			e := kustomizationEvent("error", "InstallFailed", "Helm install failed")
			e.InvolvedObject.Kind = "HelmRelease"
			return e
		}(), nil},
		{"other info reasons say nothing", kustomizationEvent("info", "DependencyNotReady", "Dependencies do not meet ready condition, retrying in 30s"), nil},
		{"trace events say nothing", kustomizationEvent("trace", "Progressing", "Reconciliation in progress"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			h := &feedback.Flux{Secret: fluxSecret, Observer: rec}
			body, headers := signed(t, tc.event, fluxSecret)
			// Behind its gate, as the server serves it, and alone.
			for _, handler := range []http.Handler{h, gated(h.Gate(), h)} {
				r := post(t, handler, fluxPath, body, headers)
				if r.status != http.StatusOK {
					t.Fatalf("status %d: %s", r.status, r.body)
				}
				var got struct {
					Outcome string   `json:"outcome"`
					Builds  []string `json:"builds"`
					Reason  string   `json:"reason"`
				}
				if err := json.Unmarshal([]byte(r.body), &got); err != nil {
					t.Fatalf("answer %q: %v", r.body, err)
				}
				if tc.want == nil {
					if got.Outcome != promote.OutcomeIgnored || got.Reason == "" || got.Builds == nil {
						t.Errorf("answer %s, want ignored with a reason", r.body)
					}
				} else if got.Outcome != promote.OutcomeApplied || !reflect.DeepEqual(got.Builds, []string{"b-1"}) {
					t.Errorf("answer %s, want the observation", r.body)
				}
			}
			var want []promote.ClusterEvent
			if tc.want != nil {
				want = []promote.ClusterEvent{*tc.want, *tc.want}
			}
			if got := rec.seen(); !reflect.DeepEqual(got, want) {
				t.Errorf("observed\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

// A message of Flux's largest (39,000 characters) is kept to its first
// 4,000 bytes, cut on a character.
func TestFluxLongMessage(t *testing.T) {
	rec := &recorder{}
	h := &feedback.Flux{Secret: fluxSecret, Observer: rec}
	msg := strings.Repeat("é", 19500)
	body, headers := signed(t, kustomizationEvent("error", "HealthCheckFailed", msg), fluxSecret)
	if r := post(t, h, fluxPath, body, headers); r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	got := rec.seen()
	if len(got) != 1 || got[0].Message != strings.Repeat("é", 2000)+"…" {
		t.Errorf("message of %d bytes kept as %d", len(msg), len(got[0].Message))
	}
}

func TestFluxRefusesWhatIsNotSigned(t *testing.T) {
	event := kustomizationEvent("info", "ReconciliationSucceeded", "Reconciliation finished in 34.2s, next run in 10m0s")
	body, good := signed(t, event, fluxSecret)
	_, other := signed(t, event, "another-secret")
	tampered := []byte(strings.Replace(string(body), "shop-web-production", "shop-api-production", 1))
	with := func(sig string) map[string]string { return map[string]string{"X-Signature": sig} }

	for _, tc := range []struct {
		name    string
		secret  string
		body    []byte
		headers map[string]string
		unread  bool // refused on the headers alone
	}{
		{"no signature", fluxSecret, body, map[string]string{"Content-Type": "application/json"}, true},
		{"signed with another secret", fluxSecret, body, other, false},
		{"body changed after signing", fluxSecret, tampered, good, false},
		{"the handler's secret is not the sender's", "not-the-token", body, good, false},
		{"no secret configured", "", body, good, true},
		{"no secret configured, body signed with the empty key", "", body, with("sha256=" + hmacHex("", body)), true},
		{"sha1 signature", fluxSecret, body, with("sha1=" + strings.Repeat("0", 40)), true},
		{"not hexadecimal", fluxSecret, body, with("sha256=" + strings.Repeat("zz", 32)), true},
		{"truncated", fluxSecret, body, with(good["X-Signature"][:40]), true},
		{"upper-case prefix", fluxSecret, body, with(strings.Replace(good["X-Signature"], "sha256", "SHA256", 1)), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			h := &feedback.Flux{Secret: tc.secret, Observer: rec}
			checkJSONError(t, post(t, h, fluxPath, tc.body, tc.headers), http.StatusUnauthorized, fluxSecret)
			if r := post(t, gated(h.Gate(), h), fluxPath, tc.body, tc.headers); r.status != http.StatusUnauthorized {
				t.Errorf("behind its gate: status %d", r.status)
			}
			if tc.unread {
				checkJSONError(t, postUnread(t, h, fluxPath, tc.headers), http.StatusUnauthorized)
				if _, err := h.Gate().Headers(http.Header{"X-Signature": {tc.headers["X-Signature"]}}); err == nil {
					t.Error("the gate lets the headers through")
				}
			}
			if got := rec.seen(); len(got) != 0 {
				t.Errorf("observed %v", got)
			}
		})
	}
}

func TestFluxRefusesWhatIsNotAnEvent(t *testing.T) {
	notifications := kustomizationEvent("info", "ReconciliationSucceeded", "done")
	notifications.InvolvedObject.Kind = ""
	noKind, _ := json.Marshal(notifications)
	for _, tc := range []struct {
		name   string
		body   []byte
		status int
	}{
		{"not JSON", []byte("event=ReconciliationSucceeded"), http.StatusBadRequest},
		{"JSON, not an object", []byte(`["flux"]`), http.StatusBadRequest},
		{"an object without involvedObject.kind", noKind, http.StatusBadRequest},
		{"an object without severity", []byte(`{"involvedObject":{"kind":"Kustomization","name":"a"},"reason":"Progressing"}`), http.StatusBadRequest},
		{"a Slack message", []byte(`{"text":"deployed"}`), http.StatusBadRequest},
		{"over the limit", []byte(`{"message":"` + strings.Repeat("x", 1<<20) + `"}`), http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			h := &feedback.Flux{Secret: fluxSecret, Observer: rec}
			headers := map[string]string{"X-Signature": "sha256=" + hmacHex(fluxSecret, tc.body)}
			checkJSONError(t, post(t, h, fluxPath, tc.body, headers), tc.status)
			if got := rec.seen(); len(got) != 0 {
				t.Errorf("observed %v", got)
			}
		})
	}
	if max := (&feedback.Flux{}).Gate().MaxBody; max != 1<<20 {
		t.Errorf("gate's MaxBody %d", max)
	}
}

func TestFluxObserverFails(t *testing.T) {
	rec := &recorder{err: fmt.Errorf("record rollout: %w", errors.New("dial tcp: connect https://bot:hunter2@git.example.com/x.git"))}
	h := &feedback.Flux{Secret: fluxSecret, Observer: rec}
	body, headers := signed(t, kustomizationEvent("info", "ReconciliationSucceeded", "done"), fluxSecret)
	r := post(t, h, fluxPath, body, headers)
	checkJSONError(t, r, http.StatusInternalServerError, "hunter2", "dial tcp", fluxSecret)
	if len(rec.seen()) != 1 {
		t.Errorf("observed %v", rec.seen())
	}
}

// A handler wired without the domain answers 500, not a panic.
func TestFluxWithoutObserver(t *testing.T) {
	h := &feedback.Flux{Secret: fluxSecret}
	body, headers := signed(t, kustomizationEvent("info", "ReconciliationSucceeded", "done"), fluxSecret)
	checkJSONError(t, post(t, h, fluxPath, body, headers), http.StatusInternalServerError)
}
