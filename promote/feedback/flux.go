package feedback

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/promotebot/promotebot/promote"
)

// FluxSignatureHeader carries notification-controller's signature of a
// generic-hmac delivery: "sha256=" and the hex HMAC-SHA256 of the raw
// body, keyed with the token of the Provider's Secret.
const FluxSignatureHeader = "X-Signature"

// The metadata keys an event of a Kustomization carries (Flux RFC-0008):
// notification-controller strips the API group of the keys from the
// object's annotations (event.toolkit.fluxcd.io/…) and from the controller
// (kustomize.toolkit.fluxcd.io/…), older versions kept them.
var (
	fluxPathKeys     = []string{"path", "event.toolkit.fluxcd.io/path"}
	fluxRevisionKeys = []string{"revision", "kustomize.toolkit.fluxcd.io/revision"}
)

// The reasons of a Kustomization's info events that the bot records.
const (
	// fluxSucceeded: the Kustomization is Ready. With spec.wait (or
	// healthChecks) that means its objects passed their health checks;
	// without, only that they were applied.
	fluxSucceeded = "ReconciliationSucceeded"
	// fluxProgressing: objects were applied (the change set), or health
	// checks passed, within a reconciliation still going on.
	fluxProgressing = "Progressing"
)

// Flux serves POST /v1/events/flux: the events of Flux's
// notification-controller, sent by a Provider of type generic-hmac
// (examples/flux/notifications.yaml).
//
// Only Kustomizations count. Their events are read as:
//
//	severity error                      degraded, with the event's message
//	info, ReconciliationSucceeded       healthy
//	info, Progressing                   synced
//	any other                           ignored
//
// "Healthy" means the health checks passed only when the Kustomization
// sets spec.wait: true (or spec.healthChecks); without, it means applied.
// The config-repository path is the metadata key "path", which comes from
// the Kustomization's annotation event.toolkit.fluxcd.io/path; an event
// without it is ignored (200), as is one whose revision is not a git
// commit.
type Flux struct {
	// Secret is PROMOTEBOT_EVENTS_SECRET, the token of the Provider's
	// Secret; empty refuses every event.
	Secret string
	// Observer is the domain (promote.Service).
	Observer promote.Observer
	// Logger receives a record per event; nil discards them.
	Logger *slog.Logger
	// Metrics counts the events refused or ignored before the domain saw
	// them (the domain counts the rest); nil counts nothing.
	Metrics *promote.Metrics
}

// Gate is what the server asks of a delivery before its body is read
// (promote.Gate): at most 1 MiB, and an X-Signature that is well formed,
// then checked over the raw body.
func (f *Flux) Gate() promote.Gate { return f.receiver().gate() }

// ServeHTTP implements http.Handler.
func (f *Flux) ServeHTTP(w http.ResponseWriter, r *http.Request) { f.receiver().serve(w, r) }

func (f *Flux) receiver() receiver {
	log := f.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return receiver{
		source:   "flux",
		headers:  f.checkHeaders,
		verify:   f.verify,
		decode:   decodeFlux,
		observer: f.Observer,
		metrics:  f.Metrics,
		log:      log,
	}
}

// checkHeaders refuses, without the body, a delivery whose signature could
// not be valid.
func (f *Flux) checkHeaders(h http.Header) error {
	if f.Secret == "" {
		return errNoSecret
	}
	_, err := fluxSignature(h)
	return err
}

// verify compares, in constant time, the signature with the HMAC of body.
func (f *Flux) verify(h http.Header, body []byte) error {
	if f.Secret == "" {
		return errNoSecret
	}
	got, err := fluxSignature(h)
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, []byte(f.Secret))
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return errors.New("bad signature: X-Signature is not the HMAC-SHA256 of the body with the events secret")
	}
	return nil
}

// fluxSignature reads the MAC of X-Signature: sha256=<64 hex digits>.
func fluxSignature(h http.Header) ([]byte, error) {
	hexMAC, ok := strings.CutPrefix(h.Get(FluxSignatureHeader), "sha256=")
	if !ok || len(hexMAC) != 2*sha256.Size {
		return nil, errors.New("send " + FluxSignatureHeader + ": sha256=<hex HMAC-SHA256 of the body> (a Flux Provider of type generic-hmac)")
	}
	mac, err := hex.DecodeString(hexMAC)
	if err != nil {
		return nil, errors.New(FluxSignatureHeader + " is not hexadecimal")
	}
	return mac, nil
}

// fluxEvent is the part of notification-controller's event
// (github.com/fluxcd/pkg/apis/event/v1beta1.Event) that the bot reads.
type fluxEvent struct {
	InvolvedObject struct {
		Kind      string `json:"kind"`
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"involvedObject"`
	Severity  string            `json:"severity"`
	Timestamp time.Time         `json:"timestamp"`
	Message   string            `json:"message"`
	Reason    string            `json:"reason"`
	Metadata  map[string]string `json:"metadata"`
}

// decodeFlux turns a verified body into a ClusterEvent.
func decodeFlux(body []byte, _ time.Time) (promote.ClusterEvent, string, error) {
	var e fluxEvent
	if err := json.Unmarshal(body, &e); err != nil {
		return promote.ClusterEvent{}, "", fmt.Errorf("not a Flux event: %w", err)
	}
	if e.InvolvedObject.Kind == "" || e.Severity == "" {
		return promote.ClusterEvent{}, "", errors.New("not a Flux event: involvedObject.kind and severity are required")
	}
	ev, ignored := e.clusterEvent()
	return ev, ignored, nil
}

// clusterEvent reads the event, or says why it is ignored.
func (e fluxEvent) clusterEvent() (promote.ClusterEvent, string) {
	obj := e.InvolvedObject
	object := obj.Namespace + "/" + obj.Name
	if obj.Kind != "Kustomization" {
		return promote.ClusterEvent{}, fmt.Sprintf("%s %s: only Kustomizations are followed", obj.Kind, object)
	}
	var status promote.RolloutStatus
	switch {
	case e.Severity == "error":
		status = promote.RolloutDegraded
	case e.Severity == "info" && e.Reason == fluxSucceeded:
		status = promote.RolloutHealthy
	case e.Severity == "info" && e.Reason == fluxProgressing:
		status = promote.RolloutSynced
	default:
		return promote.ClusterEvent{}, fmt.Sprintf("Kustomization %s: a %s event with reason %q says nothing of a rollout", object, e.Severity, e.Reason)
	}
	path := e.meta(fluxPathKeys)
	if path == "" {
		return promote.ClusterEvent{}, fmt.Sprintf("Kustomization %s: no path in the event's metadata; annotate it with event.toolkit.fluxcd.io/path: <its spec.path>", object)
	}
	revision := e.meta(fluxRevisionKeys)
	commit, ok := commitOf(revision)
	if !ok {
		return promote.ClusterEvent{}, fmt.Sprintf("Kustomization %s: revision %q is not a git commit", object, revision)
	}
	ev := promote.ClusterEvent{
		Source: "flux", Object: object, Path: path, Revision: commit, Status: status, At: e.Timestamp,
	}
	if status == promote.RolloutDegraded {
		ev.Message = clip(e.Message)
	}
	return ev, ""
}

// meta returns the value of the first of keys the metadata has.
func (e fluxEvent) meta(keys []string) string {
	for _, k := range keys {
		if v := e.Metadata[k]; v != "" {
			return v
		}
	}
	return ""
}
