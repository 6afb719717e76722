package feedback_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/promotebot/promotebot/promote"
	"github.com/promotebot/promotebot/promote/feedback"
)

const argoToken = "argocd-api-token-9f8e7d"

// fakeArgoCD serves GET /api/v1/applications as Argo CD's API server
// does: testdata/argocd/applications.json for the right token, its
// gRPC-gateway error otherwise.
func fakeArgoCD(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	list, err := os.ReadFile(filepath.Join(testdataArgoCD, "applications.json"))
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodGet || r.URL.Path != "/api/v1/applications" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+argoToken {
			w.WriteHeader(http.StatusUnauthorized)
			if _, err := w.Write([]byte(`{"error":"invalid session: token signature is invalid","code":16,"message":"invalid session: token signature is invalid"}`)); err != nil {
				t.Error(err)
			}
			return
		}
		if _, err := w.Write(list); err != nil {
			t.Error(err)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func pending(v bool) func(context.Context) (bool, error) {
	return func(context.Context) (bool, error) { return v, nil }
}

// The Applications the API lists give the events their notifications
// would: the same mapping reads both.
func TestPollerObservesApplications(t *testing.T) {
	srv, calls := fakeArgoCD(t)
	qaHealthy, _, qaDegraded, prodFailed := argoEvents(t)
	want := []promote.ClusterEvent{
		withSource(qaHealthy, "argocd-api"), withSource(qaDegraded, "argocd-api"), withSource(prodFailed, "argocd-api"),
	}
	for _, repo := range []string{"https://github.com/acme/deploy-config.git", ""} {
		rec := &recorder{}
		p := &feedback.Poller{APIURL: srv.URL + "/", Token: argoToken, Observer: rec, Pending: pending(true), RepoURL: repo}
		if err := p.Poll(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := rec.seen(); !reflect.DeepEqual(got, want) {
			t.Errorf("RepoURL %q: observed\n%+v\nwant\n%+v", repo, got, want)
		}
	}
	if calls.Load() != 2 {
		t.Errorf("%d calls to the API", calls.Load())
	}
}

func TestPollerAsksOnlyWhilePending(t *testing.T) {
	srv, calls := fakeArgoCD(t)
	rec := &recorder{}
	p := &feedback.Poller{APIURL: srv.URL, Token: argoToken, Observer: rec, Pending: pending(false)}
	if err := p.Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	p.Pending = func(context.Context) (bool, error) { return false, errors.New("store: database is locked") }
	if err := p.Poll(t.Context()); err == nil || !strings.Contains(err.Error(), "database is locked") {
		t.Errorf("Poll: %v", err)
	}
	if calls.Load() != 0 || len(rec.seen()) != 0 {
		t.Errorf("%d calls, observed %v", calls.Load(), rec.seen())
	}
}

func TestPollerAPIRefuses(t *testing.T) {
	srv, _ := fakeArgoCD(t)
	var logs bytes.Buffer
	rec := &recorder{}
	p := &feedback.Poller{
		APIURL: srv.URL, Token: "expired-token-1234", Observer: rec, Pending: pending(true),
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	err := p.Poll(t.Context())
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "token signature is invalid") {
		t.Errorf("Poll: %v", err)
	}
	if strings.Contains(err.Error(), "expired-token-1234") || strings.Contains(logs.String(), "expired-token-1234") {
		t.Errorf("the token shows: %v\n%s", err, logs.String())
	}
	if len(rec.seen()) != 0 {
		t.Errorf("observed %v", rec.seen())
	}

	p.APIURL, p.Token = srv.URL+"/argocd", argoToken // not Argo CD's API
	if err := p.Poll(t.Context()); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("Poll of a wrong URL: %v", err)
	}
}

// One Application the domain could not take does not keep the others
// from being observed.
func TestPollerObserverFails(t *testing.T) {
	srv, _ := fakeArgoCD(t)
	rec := &recorder{err: errors.New("store: connection refused"), failFor: "argocd/shop-api-tag-v4-13-0-rc-1"}
	p := &feedback.Poller{APIURL: srv.URL, Token: argoToken, Observer: rec}
	err := p.Poll(t.Context())
	if err == nil || !strings.Contains(err.Error(), "observe argocd/shop-api-tag-v4-13-0-rc-1: store: connection refused") {
		t.Errorf("Poll: %v", err)
	}
	if got := rec.seen(); len(got) != 3 {
		t.Errorf("observed %v", got)
	}
}

func TestPollerRunNeedsItsSettings(t *testing.T) {
	for _, p := range []*feedback.Poller{
		{Token: argoToken, Observer: &recorder{}},
		{APIURL: "https://argocd.example.com", Observer: &recorder{}},
		{APIURL: "https://argocd.example.com", Token: argoToken},
	} {
		if err := p.Run(t.Context()); err == nil {
			t.Errorf("Run of %+v: no error", p)
		}
	}
}
