package feedback

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/promotebot/promotebot/promote"
)

// ArgoCD serves POST /v1/events/argocd: the webhook service "promotebot"
// of Argo CD Notifications, with the header Authorization: Bearer <events
// secret> and a body rendered from the templates of
// examples/argocd/notifications.yaml:
//
//	{"trigger": "sync-succeeded" | "sync-failed" | "health-degraded" | "deployed",
//	 "app", "namespace", "repoURL", "path",
//	 "revision", "operationRevision", "sync", "health", "healthMessage",
//	 "healthSince", "degraded": ["<kind>/<name>: <message>", …],
//	 "phase", "operationMessage", "finishedAt", "at"}
//
// The trigger says which part of the Application's state to read:
//
//	sync-failed      degraded, the operation's message
//	health-degraded  degraded, the health's message (or the resources')
//	sync-succeeded   healthy when the health is Healthy and not older than
//	                 the sync, else synced
//	deployed         healthy
//
// Only spec.source is read: a multi-source Application (spec.sources) is
// ignored (200), as is a revision that is not a git commit.
type ArgoCD struct {
	// Secret is PROMOTEBOT_EVENTS_SECRET, the promotebot-events-secret key
	// of argocd-notifications-secret; empty refuses every call.
	Secret string
	// Observer is the domain (promote.Service).
	Observer promote.Observer
	// RepoURL, when set, is the config repository (gitops.repo):
	// Applications of another repository are ignored.
	RepoURL string
	// Logger receives a record per event; nil discards them.
	Logger *slog.Logger
	// Metrics counts the events refused or ignored before the domain saw
	// them (the domain counts the rest); nil counts nothing.
	Metrics *promote.Metrics
}

// Gate is what the server asks of a call before its body is read
// (promote.Gate): at most 1 MiB, and the bearer token, which alone proves
// the call.
func (a *ArgoCD) Gate() promote.Gate { return a.receiver().gate() }

// ServeHTTP implements http.Handler.
func (a *ArgoCD) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.receiver().serve(w, r) }

func (a *ArgoCD) receiver() receiver {
	log := a.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return receiver{
		source:       "argocd",
		headers:      a.checkToken,
		headersProve: true,
		verify:       func(h http.Header, _ []byte) error { return a.checkToken(h) },
		decode:       a.decode,
		observer:     a.Observer,
		metrics:      a.Metrics,
		log:          log,
	}
}

// checkToken compares the bearer token with the events secret in constant
// time.
func (a *ArgoCD) checkToken(h http.Header) error {
	if a.Secret == "" {
		return errNoSecret
	}
	scheme, token, ok := strings.Cut(h.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return errors.New("send Authorization: Bearer <events secret> (the promotebot webhook service of argocd-notifications-cm)")
	}
	if !equalSecret(token, a.Secret) {
		return errors.New("wrong bearer token")
	}
	return nil
}

// argoBody is the body the templates of examples/argocd/notifications.yaml
// render.
type argoBody struct {
	Trigger           string   `json:"trigger"`
	App               string   `json:"app"`
	Namespace         string   `json:"namespace"`
	RepoURL           string   `json:"repoURL"`
	Path              string   `json:"path"`
	Revision          string   `json:"revision"`
	OperationRevision string   `json:"operationRevision"`
	Sync              string   `json:"sync"`
	Health            string   `json:"health"`
	HealthMessage     string   `json:"healthMessage"`
	HealthSince       string   `json:"healthSince"`
	Degraded          []string `json:"degraded"`
	Phase             string   `json:"phase"`
	OperationMessage  string   `json:"operationMessage"`
	FinishedAt        string   `json:"finishedAt"`
	At                string   `json:"at"`
}

// decode turns a verified body into a ClusterEvent; received stands for
// the notification's time when the body has none.
func (a *ArgoCD) decode(body []byte, received time.Time) (promote.ClusterEvent, string, error) {
	var b argoBody
	if err := json.Unmarshal(body, &b); err != nil {
		return promote.ClusterEvent{}, "", fmt.Errorf("not a promotebot notification: %w", err)
	}
	if b.Trigger == "" || b.App == "" {
		return promote.ClusterEvent{}, "", errors.New("not a promotebot notification: trigger and app are required (templates of examples/argocd/notifications.yaml)")
	}
	app, at, err := b.state()
	if err != nil {
		return promote.ClusterEvent{}, "", fmt.Errorf("not a promotebot notification: %w", err)
	}
	if a.RepoURL != "" && !sameRepo(app.RepoURL, a.RepoURL) {
		return promote.ClusterEvent{}, fmt.Sprintf("Application %s/%s: repository %s is not the config repository", app.Namespace, app.Name, app.RepoURL), nil
	}
	if at.IsZero() {
		at = received
	}
	ev, ignored := app.event("argocd", b.Trigger, at)
	return ev, ignored, nil
}

// state reads the body as an Application's state, and the time it was
// sent.
func (b argoBody) state() (appState, time.Time, error) {
	a := appState{
		Name: b.App, Namespace: b.Namespace, RepoURL: b.RepoURL, Path: b.Path,
		Revision: b.Revision, OperationRevision: b.OperationRevision, Sync: b.Sync,
		Health: b.Health, HealthMessage: b.HealthMessage, Degraded: b.Degraded,
		Phase: b.Phase, OperationMessage: b.OperationMessage,
	}
	var err error
	if a.HealthSince, err = parseStamp("healthSince", b.HealthSince); err != nil {
		return a, time.Time{}, err
	}
	if a.FinishedAt, err = parseStamp("finishedAt", b.FinishedAt); err != nil {
		return a, time.Time{}, err
	}
	at, err := parseStamp("at", b.At)
	return a, at, err
}
