package feedback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/promotebot/promotebot/promote"
)

const (
	// defaultPollInterval is argocd.pollInterval's default.
	defaultPollInterval = 30 * time.Second
	// maxPollBackoff is the longest wait after failures.
	maxPollBackoff = 5 * time.Minute
	// listTimeout bounds one listing of the Applications.
	listTimeout = time.Minute
	// maxListBody bounds the listing: a few thousand Applications with
	// their resources.
	maxListBody = 256 << 20
	// maxAPIError bounds what of an error answer is quoted in a log.
	maxAPIError = 300
)

// Poller asks Argo CD's REST API for its Applications while a rollout is
// pending, for setups whose Argo CD cannot send notifications to the bot.
// Each Application is read as the notifications are (ArgoCD), as the
// trigger its state would fire, and handed to the domain with source
// "argocd-api"; the domain tells repeats apart.
type Poller struct {
	// APIURL is argocd.apiURL, Argo CD's server URL
	// ("https://argocd.example.com"); the poller asks
	// GET <APIURL>/api/v1/applications.
	APIURL string
	// Token is PROMOTEBOT_ARGOCD_TOKEN, an Argo CD API token (an account
	// with the apiKey capability and applications, get). It is sent as
	// Authorization: Bearer and never logged.
	Token string
	// Observer is the domain (promote.Service).
	Observer promote.Observer
	// Pending tells whether any rollout waits for the cluster; the API is
	// asked only then. Nil means always.
	Pending func(ctx context.Context) (bool, error)
	// Interval is argocd.pollInterval (default 30s). Failures double the
	// wait, up to 5 minutes.
	Interval time.Duration
	// RepoURL, when set, is the config repository (gitops.repo):
	// Applications of another repository are skipped.
	RepoURL string
	// Client makes the requests; nil means a client with a one-minute
	// timeout.
	Client *http.Client
	// Logger receives a record per round that did something or failed;
	// nil discards them.
	Logger *slog.Logger

	// after is time.After; tests replace it.
	after func(time.Duration) <-chan time.Time
}

// Run polls at once, then every Interval (or, after failures, a backoff)
// until ctx is done, when it returns nil. It returns an error at once
// when the poller cannot work (no API URL, token or observer).
func (p *Poller) Run(ctx context.Context) error {
	if p.APIURL == "" || p.Token == "" || p.Observer == nil {
		return errors.New("argocd poller: argocd.apiURL, PROMOTEBOT_ARGOCD_TOKEN and an observer are required")
	}
	log := p.logger()
	after := p.after
	if after == nil {
		after = time.After
	}
	interval := p.Interval
	if interval <= 0 {
		interval = defaultPollInterval
	}
	failures := 0
	for {
		if err := p.Poll(ctx); err != nil && ctx.Err() == nil {
			failures++
			log.Warn("argocd poll failed", "err", redactCredentials(err.Error()),
				"failures", failures, "retryIn", backoff(interval, failures))
		} else {
			failures = 0
		}
		select {
		case <-ctx.Done():
			return nil
		case <-after(backoff(interval, failures)):
		}
	}
}

// backoff is the wait after failures failed rounds in a row: interval,
// then doubling, up to maxPollBackoff.
func backoff(interval time.Duration, failures int) time.Duration {
	wait := interval
	for range failures {
		wait *= 2
		if wait >= maxPollBackoff {
			return max(maxPollBackoff, interval)
		}
	}
	return wait
}

// Poll is one round: when something is pending, list the Applications and
// observe each. An Application the domain could not take does not stop
// the others; the errors are returned together.
func (p *Poller) Poll(ctx context.Context) error {
	if p.Pending != nil {
		pending, err := p.Pending(ctx)
		if err != nil {
			return fmt.Errorf("pending rollouts: %w", err)
		}
		if !pending {
			return nil
		}
	}
	apps, err := p.list(ctx)
	if err != nil {
		return err
	}
	log := p.logger()
	var errs []error
	for _, app := range apps {
		if err := ctx.Err(); err != nil {
			return err
		}
		a, err := app.state()
		if err != nil {
			log.Info("argocd application skipped", "app", app.Metadata.Namespace+"/"+app.Metadata.Name, "reason", err.Error())
			continue
		}
		if p.RepoURL != "" && !sameRepo(a.RepoURL, p.RepoURL) {
			continue
		}
		// No time stands in for Argo CD's: the poll's would make every
		// round look like a newer report.
		ev, ignored := a.event("argocd-api", "", time.Time{})
		if ignored != "" {
			log.Debug("argocd application ignored", "reason", ignored)
			continue
		}
		obs, err := p.observe(ctx, ev)
		if err != nil {
			errs = append(errs, fmt.Errorf("observe %s: %w", ev.Object, err))
			continue
		}
		if obs.Outcome == promote.OutcomeApplied {
			log.Info("cluster event", "source", ev.Source, "object", ev.Object, "path", ev.Path,
				"revision", ev.Revision, "status", ev.Status, "outcome", obs.Outcome, "builds", obs.Builds)
		}
	}
	return errors.Join(errs...)
}

// observe hands ev to the domain within observeTimeout; unlike an event
// endpoint's, the poller's work stops with the server.
func (p *Poller) observe(ctx context.Context, ev promote.ClusterEvent) (promote.Observation, error) {
	ctx, cancel := context.WithTimeout(ctx, observeTimeout)
	defer cancel()
	return p.Observer.Observe(ctx, ev)
}

// list asks Argo CD for every Application the token may see.
func (p *Poller) list(ctx context.Context) ([]apiApplication, error) {
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	url := strings.TrimSuffix(p.APIURL, "/") + "/api/v1/applications"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("argocd api: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+p.Token)
	req.Header.Set("Accept", "application/json")
	client := p.Client
	if client == nil {
		client = &http.Client{Timeout: listTimeout}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("argocd api: %w", err)
	}
	items, err := decodeList(resp)
	if err := errors.Join(err, resp.Body.Close()); err != nil {
		return nil, fmt.Errorf("argocd api: GET /api/v1/applications: %w", err)
	}
	return items, nil
}

// decodeList reads Argo CD's ApplicationList, or its error.
func decodeList(resp *http.Response) ([]apiApplication, error) {
	body := io.LimitReader(resp.Body, maxListBody)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Status, apiError(body))
	}
	var list struct {
		Items []apiApplication `json:"items"`
	}
	if err := json.NewDecoder(body).Decode(&list); err != nil {
		return nil, fmt.Errorf("decode the list: %w", err)
	}
	return list.Items, nil
}

// apiError quotes Argo CD's error answer ({"error", "code", "message"}),
// or the beginning of whatever else it sent.
func apiError(body io.Reader) string {
	data, err := io.ReadAll(io.LimitReader(body, 64<<10))
	if err != nil {
		return "(unreadable answer)"
	}
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(data, &e) == nil && e.Message != "" {
		data = []byte(e.Message)
	}
	s := strings.TrimSpace(string(data))
	if len(s) > maxAPIError {
		s = s[:maxAPIError] + "…"
	}
	return s
}

func (p *Poller) logger() *slog.Logger {
	if p.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Logger.With("component", "argocd-poller")
}

// apiApplication is the part of an Application (argoproj.io/v1alpha1), as
// Argo CD's API lists them, that the bot reads.
type apiApplication struct {
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Spec struct {
		Source *struct {
			RepoURL string `json:"repoURL"`
			Path    string `json:"path"`
		} `json:"source"`
	} `json:"spec"`
	Status struct {
		Sync struct {
			Status   string `json:"status"`
			Revision string `json:"revision"`
		} `json:"sync"`
		Health struct {
			Status             string `json:"status"`
			Message            string `json:"message"`
			LastTransitionTime string `json:"lastTransitionTime"`
		} `json:"health"`
		OperationState *struct {
			Phase      string `json:"phase"`
			Message    string `json:"message"`
			FinishedAt string `json:"finishedAt"`
			SyncResult *struct {
				Revision string `json:"revision"`
			} `json:"syncResult"`
		} `json:"operationState"`
		Resources []struct {
			Kind   string `json:"kind"`
			Name   string `json:"name"`
			Health *struct {
				Status  string `json:"status"`
				Message string `json:"message"`
			} `json:"health"`
		} `json:"resources"`
	} `json:"status"`
}

// state reads the Application as the notification templates do.
func (app apiApplication) state() (appState, error) {
	st := app.Status
	a := appState{
		Name: app.Metadata.Name, Namespace: app.Metadata.Namespace,
		Revision: st.Sync.Revision, Sync: st.Sync.Status,
		Health: st.Health.Status, HealthMessage: st.Health.Message,
	}
	if src := app.Spec.Source; src != nil {
		a.RepoURL, a.Path = src.RepoURL, src.Path
	}
	var err error
	if a.HealthSince, err = parseStamp("status.health.lastTransitionTime", st.Health.LastTransitionTime); err != nil {
		return a, err
	}
	if op := st.OperationState; op != nil {
		a.Phase, a.OperationMessage = op.Phase, op.Message
		if op.SyncResult != nil {
			a.OperationRevision = op.SyncResult.Revision
		}
		if a.FinishedAt, err = parseStamp("status.operationState.finishedAt", op.FinishedAt); err != nil {
			return a, err
		}
	}
	for _, r := range st.Resources {
		if r.Health != nil && r.Health.Status == healthDegraded {
			a.Degraded = append(a.Degraded, fmt.Sprintf("%s/%s: %s", r.Kind, r.Name, r.Health.Message))
		}
	}
	return a, nil
}
