package promote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// readyTimeout bounds the checks behind /readyz, so that a hung store fails
// the probe instead of holding it.
const readyTimeout = 3 * time.Second

// ServerDeps is what NewServer needs. Config, Store and Repo are required;
// the rest have defaults.
type ServerDeps struct {
	// Config holds the projects the webhook accepts builds for.
	Config *Config
	// Secrets.WebhookSecret authenticates CI; when it is empty the webhook
	// refuses every call.
	Secrets Secrets
	// Store records builds and their jobs.
	Store Store
	// Repo checks a build's image and target before it is recorded.
	Repo BuildChecker
	// Logger receives one record per webhook call; nil discards them.
	Logger *slog.Logger
	// Metrics are served at /metrics; nil makes a set of their own, without
	// the store gauges.
	Metrics *Metrics
	// Ready, when set, must return nil for /readyz to answer 200 (the
	// config repository is cloned, the workers run, …).
	Ready func(ctx context.Context) error
	// Wake, when set, is signalled (without blocking) after each new build,
	// so that an idle Service (its Wake) starts the deploy at once.
	Wake chan<- struct{}

	// SlackInteractions and SlackCommands serve POST /slack/interactions and
	// POST /slack/commands (issue 4, package slackui; each verifies Slack's
	// signature on the raw body itself). Nil leaves the route unregistered,
	// so Slack is answered 404 rather than a pretended success.
	SlackInteractions http.Handler
	SlackCommands     http.Handler
	// GitHubWebhook serves POST /github/webhook (package gitops/forge; it
	// verifies X-Hub-Signature-256 itself). Nil leaves it unregistered.
	GitHubWebhook http.Handler
	// FluxEvents and ArgoCDEvents serve POST /v1/events/flux and POST
	// /v1/events/argocd (package promote/feedback) behind FluxGate and
	// ArgoCDGate. Nil leaves the route unregistered (404).
	FluxEvents, ArgoCDEvents http.Handler
	FluxGate, ArgoCDGate     Gate
	// SlackGate and GitHubGate are what those routes ask of a request
	// before its body is read (slackui.Gate, forge.Webhook.Gate). A route
	// whose gate cannot verify refuses every request.
	SlackGate, GitHubGate Gate
	// Reads bounds the reading of unverified bodies, server-wide.
	Reads ReadLimits
	// TearDowns serves DELETE /v1/environments/{project}/{kind}/{target}
	// (usually the Service); nil leaves it unregistered.
	TearDowns TearDowns
}

// TearDowns removes QA environments (*Service).
type TearDowns interface {
	TearDown(ctx context.Context, project string, kind Kind, target, reason string) (Environment, error)
}

// NewServer returns promotebot's HTTP handler. Every route is listed here.
// A wrong method is answered 405 with Allow, an unknown path 404, both in
// JSON like every other error.
func NewServer(d ServerDeps) http.Handler {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Metrics == nil {
		d.Metrics = NewMetrics()
	}
	if d.Config == nil {
		d.Config = &Config{}
	}
	wh := &webhook{
		cfg: d.Config, secret: d.Secrets.WebhookSecret, store: d.Store, repo: d.Repo,
		log: d.Logger.With("component", "webhook"), metrics: d.Metrics, wake: d.Wake, tearDowns: d.TearDowns,
	}
	mux := http.NewServeMux()
	// Every route that takes a body or a credential is registered through
	// gated, behind a Gate: nothing unauthenticated is read beyond what
	// refusing it needs.
	g := newGuard(d.Reads, d.Logger)
	gated := func(method, path string, gate Gate, h http.HandlerFunc) {
		handle(mux, method, path, g.wrap(gate, h))
	}

	// CI (docs/contracts.md, HTTP).
	post := wh.gate(false)
	post.count = d.Metrics.webhookRequest
	gated(http.MethodPost, "/v1/builds", post, wh.create)
	gated(http.MethodPost, "/build-complete", post, wh.create)
	gated(http.MethodGet, "/v1/builds/{id}", wh.gate(true), wh.get)
	if d.TearDowns != nil {
		gated(http.MethodDelete, "/v1/environments/{project}/{kind}/{target}", wh.gate(true), wh.deleteEnvironment)
	}

	// Slack (issue 4): registered only once slackui provides the handlers.
	if d.SlackInteractions != nil {
		gated(http.MethodPost, "/slack/interactions", d.SlackGate, d.SlackInteractions.ServeHTTP)
	}
	if d.SlackCommands != nil {
		gated(http.MethodPost, "/slack/commands", d.SlackGate, d.SlackCommands.ServeHTTP)
	}

	// GitHub (pull-request promotion).
	if d.GitHubWebhook != nil {
		gated(http.MethodPost, "/github/webhook", d.GitHubGate, d.GitHubWebhook.ServeHTTP)
	}

	// Argo CD and Flux (cluster feedback).
	if d.FluxEvents != nil {
		gated(http.MethodPost, "/v1/events/flux", countEvents(d.FluxGate, "flux", d.Metrics), d.FluxEvents.ServeHTTP)
	}
	if d.ArgoCDEvents != nil {
		gated(http.MethodPost, "/v1/events/argocd", countEvents(d.ArgoCDGate, "argocd", d.Metrics), d.ArgoCDEvents.ServeHTTP)
	}

	// Operations.
	handle(mux, http.MethodGet, "/healthz", healthz)
	handle(mux, http.MethodGet, "/readyz", readyz(d.Store, d.Ready, d.Logger))
	handle(mux, http.MethodGet, "/metrics", d.Metrics.handler(d.Logger).ServeHTTP)

	mux.HandleFunc("/", notFound)
	return mux
}

// countEvents makes gate count its refusals as cluster events of source.
func countEvents(gate Gate, source string, m *Metrics) Gate {
	gate.count = func(outcome string) {
		switch outcome {
		case outcomeUnauthorized:
			m.ClusterEvent(source, EventUnauthorized)
		case outcomeBusy:
			m.ClusterEvent(source, EventError)
		default:
			m.ClusterEvent(source, EventInvalid)
		}
	}
	return gate
}

// handle registers h for method on path, and a 405 for any other method on
// the same path. GET also serves HEAD, as http.ServeMux does. A path takes
// one method.
func handle(mux *http.ServeMux, method, path string, h http.HandlerFunc) {
	mux.HandleFunc(method+" "+path, h)
	allow := []string{method}
	if method == http.MethodGet {
		allow = append(allow, http.MethodHead)
	}
	mux.HandleFunc(path, methodNotAllowed(allow...))
}

// healthz tells that the process serves HTTP; nothing else.
func healthz(w http.ResponseWriter, _ *http.Request) {
	writeText(w, http.StatusOK, "ok\n")
}

// readyz answers 200 when the store answers and ready (if set) is content,
// else 503 with the reason.
func readyz(store Store, ready func(context.Context) error, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := checkReady(ctx, store, ready); err != nil {
			reason := redactCredentials(err.Error())
			log.Warn("not ready", "reason", reason)
			writeError(w, http.StatusServiceUnavailable, reason)
			return
		}
		writeText(w, http.StatusOK, "ok\n")
	}
}

func checkReady(ctx context.Context, store Store, ready func(context.Context) error) error {
	if store == nil {
		return errors.New("no store")
	}
	if err := store.Ping(ctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if ready != nil {
		if err := ready(ctx); err != nil {
			return fmt.Errorf("not ready: %w", err)
		}
	}
	return nil
}
