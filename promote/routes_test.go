package promote

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func serve(h http.Handler, method, path string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, path, nil))
	return w
}

func TestHealthz(t *testing.T) {
	f := newFixture(t, testSecret, fakeRepo{})
	w := serve(f.srv, http.MethodGet, "/healthz")
	if w.Code != http.StatusOK || w.Body.String() != "ok\n" {
		t.Errorf("GET /healthz = %d %q, want 200 \"ok\\n\"", w.Code, w.Body)
	}
	if w := serve(f.srv, http.MethodHead, "/healthz"); w.Code != http.StatusOK {
		t.Errorf("HEAD /healthz = %d", w.Code)
	}
	w = serve(f.srv, http.MethodPost, "/healthz")
	checkAnswer(t, w, http.StatusMethodNotAllowed, "not allowed")
	if got := w.Header().Get("Allow"); got != "GET, HEAD" {
		t.Errorf("Allow = %q", got)
	}
}

func TestReadyz(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ping     error
		ready    func(context.Context) error
		want     int
		wantBody string
		hidden   string
	}{
		{name: "ready", want: 200, wantBody: "ok"},
		{name: "ready func content", ready: func(context.Context) error { return nil }, want: 200, wantBody: "ok"},
		{
			name: "store down", want: 503, wantBody: "store: dial postgres://redacted@db:5432/bot: connection refused", hidden: "hunter2",
			ping: errors.New("dial postgres://bot:hunter2@db:5432/bot: connection refused"),
		},
		{
			name: "dsn password", want: 503, wantBody: "password=redacted", hidden: "hunter2",
			ping: errors.New("connect host=db user=bot password=hunter2: refused"),
		},
		{
			name: "not ready", want: 503, wantBody: "not ready: config repository not cloned yet",
			ready: func(context.Context) error { return errors.New("config repository not cloned yet") },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newFakeStore()
			st.pingErr = tc.ping
			logs := &syncBuffer{}
			srv := NewServer(ServerDeps{
				Config: testConfig(), Store: st, Repo: fakeRepo{}, Ready: tc.ready,
				Logger: slog.New(slog.NewTextHandler(logs, nil)),
			})
			w := serve(srv, http.MethodGet, "/readyz")
			if w.Code != tc.want || !strings.Contains(w.Body.String(), tc.wantBody) {
				t.Errorf("GET /readyz = %d %s, want %d with %q", w.Code, w.Body, tc.want, tc.wantBody)
			}
			if tc.want != 200 {
				checkAnswer(t, w, tc.want, "")
			}
			if tc.hidden != "" && (strings.Contains(w.Body.String(), tc.hidden) || strings.Contains(logs.String(), tc.hidden)) {
				t.Errorf("answer or log shows %q: %s\n%s", tc.hidden, w.Body, logs)
			}
		})
	}
}

func TestReadyzTimesOut(t *testing.T) {
	srv := NewServer(ServerDeps{
		Config: testConfig(), Store: newFakeStore(), Repo: fakeRepo{},
		Ready: func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		},
	})
	start := time.Now()
	w := serve(srv, http.MethodGet, "/readyz")
	if w.Code != http.StatusServiceUnavailable || time.Since(start) > readyTimeout+2*time.Second {
		t.Errorf("hung readiness check: %d after %s", w.Code, time.Since(start))
	}
}

func TestUnknownRoute(t *testing.T) {
	f := newFixture(t, testSecret, fakeRepo{})
	for _, path := range []string{"/", "/v2/builds", "/slack/interactions", "/slack/commands", "/v1/builds/x/y"} {
		checkAnswer(t, serve(f.srv, http.MethodPost, path), http.StatusNotFound, "no such route")
	}
}

func TestSlackRoutes(t *testing.T) {
	called := map[string]int{}
	handler := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			called[name]++
			w.WriteHeader(http.StatusOK)
		})
	}
	// A route without a gate that can verify refuses every request.
	ungated := NewServer(ServerDeps{
		Config: testConfig(), Store: newFakeStore(), Repo: fakeRepo{},
		SlackInteractions: handler("interactions"), SlackCommands: handler("commands"),
	})
	for _, path := range []string{"/slack/interactions", "/slack/commands"} {
		checkAnswer(t, serve(ungated, http.MethodPost, path), http.StatusUnauthorized, "cannot verify")
	}
	open := Gate{MaxBody: 1 << 10, Headers: func(http.Header) (bool, error) { return true, nil },
		Verify: func(http.Header, []byte) error { return nil }}
	srv := NewServer(ServerDeps{
		Config: testConfig(), Store: newFakeStore(), Repo: fakeRepo{},
		SlackInteractions: handler("interactions"), SlackCommands: handler("commands"), SlackGate: open,
	})
	for _, path := range []string{"/slack/interactions", "/slack/commands"} {
		if w := serve(srv, http.MethodPost, path); w.Code != http.StatusOK {
			t.Errorf("POST %s = %d", path, w.Code)
		}
		w := serve(srv, http.MethodGet, path)
		checkAnswer(t, w, http.StatusMethodNotAllowed, "")
		if w.Header().Get("Allow") != "POST" {
			t.Errorf("GET %s: Allow = %q", path, w.Header().Get("Allow"))
		}
	}
	if called["interactions"] != 1 || called["commands"] != 1 {
		t.Errorf("handlers called %v, want each once", called)
	}
}

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	w := serve(h, http.MethodGet, "/metrics")
	if w.Code != http.StatusOK {
		t.Fatalf("GET /metrics = %d: %s", w.Code, w.Body)
	}
	body, err := io.ReadAll(w.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

func TestMetrics(t *testing.T) {
	st := newFakeStore()
	m := NewMetrics(WithQueueDepth(st.Pending), WithBuildsByState(func(context.Context) (map[State]int, error) {
		return map[State]int{StateReceived: 2, StatePromoted: 1}, nil
	}))
	srv := NewServer(ServerDeps{
		Config: testConfig(), Secrets: Secrets{WebhookSecret: testSecret}, Store: st, Repo: fakeRepo{}, Metrics: m,
	})
	f := &fixture{srv: srv, store: st, metrics: m}
	f.do(t, http.MethodPost, "/v1/builds", ctJSON, jsonBuild(nil), bearer(testSecret))
	f.do(t, http.MethodPost, "/v1/builds", ctJSON, jsonBuild(nil), hmacAuth(testSecret))
	f.do(t, http.MethodPost, "/v1/builds", ctJSON, jsonBuild(nil), bearer("wrong"))
	f.do(t, http.MethodPost, "/v1/builds", ctJSON, paddedJSON(maxBodyBytes+1), bearer(testSecret))
	f.do(t, http.MethodPost, "/v1/builds", "text/plain", nil, bearer(testSecret))
	f.do(t, http.MethodPost, "/v1/builds", ctJSON, jsonBuild(map[string]any{"type": "x"}), bearer(testSecret))
	f.do(t, http.MethodPost, "/v1/builds", ctJSON, jsonBuild(map[string]any{"project": "x"}), bearer(testSecret))
	m.ObservePush(1500 * time.Millisecond)

	text := scrape(t, srv)
	for _, want := range []string{
		`promotebot_webhook_requests_total{outcome="accepted"} 1`,
		`promotebot_webhook_requests_total{outcome="duplicate"} 1`,
		`promotebot_webhook_requests_total{outcome="unauthorized"} 1`,
		`promotebot_webhook_requests_total{outcome="too_large"} 1`,
		`promotebot_webhook_requests_total{outcome="unsupported_media"} 1`,
		`promotebot_webhook_requests_total{outcome="invalid"} 1`,
		`promotebot_webhook_requests_total{outcome="unknown_project"} 1`,
		`promotebot_webhook_requests_total{outcome="error"} 0`,
		`promotebot_queue_depth 2`, // the build's deploy and notify jobs
		`promotebot_builds{state="received"} 2`,
		`promotebot_builds{state="promoted"} 1`,
		`promotebot_builds{state="closed"} 0`,
		`promotebot_push_seconds_count 1`,
		`promotebot_push_seconds_sum 1.5`,
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestMetricsSourceFails(t *testing.T) {
	m := NewMetrics(WithQueueDepth(func(context.Context) (int, error) { return 0, errors.New("database is locked") }))
	srv := NewServer(ServerDeps{Config: testConfig(), Store: newFakeStore(), Repo: fakeRepo{}, Metrics: m})
	text := scrape(t, srv)
	if strings.Contains(text, "promotebot_queue_depth ") {
		t.Errorf("a failed source still has a value:\n%s", text)
	}
	if !strings.Contains(text, `promotebot_webhook_requests_total{outcome="accepted"} 0`) {
		t.Errorf("the other metrics are gone with the failed source")
	}
}

func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.ObservePush(time.Second)
	m.webhookRequest(outcomeAccepted)
	srv := NewServer(ServerDeps{Config: testConfig(), Store: newFakeStore(), Repo: fakeRepo{}})
	if text := scrape(t, srv); !strings.Contains(text, "promotebot_webhook_requests_total") {
		t.Errorf("default metrics lack the webhook counter")
	}
}
