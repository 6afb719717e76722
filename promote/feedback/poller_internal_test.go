package feedback

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promotebot/promotebot/promote"
)

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		failures int
		want     time.Duration
	}{
		{30 * time.Second, 0, 30 * time.Second},
		{30 * time.Second, 1, time.Minute},
		{30 * time.Second, 2, 2 * time.Minute},
		{30 * time.Second, 3, 4 * time.Minute},
		{30 * time.Second, 4, 5 * time.Minute},
		{30 * time.Second, 60, 5 * time.Minute},
		{10 * time.Minute, 0, 10 * time.Minute},
		{10 * time.Minute, 3, 10 * time.Minute},
	} {
		if got := backoff(tc.interval, tc.failures); got != tc.want {
			t.Errorf("backoff(%v, %d) = %v, want %v", tc.interval, tc.failures, got, tc.want)
		}
	}
}

type countingObserver struct{ n atomic.Int32 }

func (o *countingObserver) Observe(context.Context, promote.ClusterEvent) (promote.Observation, error) {
	o.n.Add(1)
	return promote.Observation{Outcome: promote.OutcomeRepeat}, nil
}

// Run polls at once, waits Interval, doubles the wait after each failure
// and goes back to Interval after a success; what it logs of a failure
// holds no token.
func TestRunBacksOff(t *testing.T) {
	const token = "argocd-api-token-5c4b3a"
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if calls.Add(1) <= 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			if _, err := w.Write([]byte(`{"error":"the server is currently unable to handle the request","code":14,"message":"the server is currently unable to handle the request"}`)); err != nil {
				t.Error(err)
			}
			return
		}
		if _, err := w.Write([]byte(`{"metadata":{},"items":[]}`)); err != nil {
			t.Error(err)
		}
	}))
	defer srv.Close()

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var waits []time.Duration
	var logs bytes.Buffer
	p := &Poller{
		APIURL: srv.URL, Token: token, Observer: &countingObserver{}, Interval: 30 * time.Second,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		after: func(d time.Duration) <-chan time.Time {
			waits = append(waits, d)
			if len(waits) == 5 {
				cancel()
				return nil // never: Run returns on ctx
			}
			c := make(chan time.Time, 1)
			c <- time.Now()
			return c
		},
	}
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 30 * time.Second, 30 * time.Second}
	if !slices.Equal(waits, want) {
		t.Errorf("waits %v, want %v", waits, want)
	}
	if calls.Load() != 5 {
		t.Errorf("%d calls", calls.Load())
	}
	if strings.Contains(logs.String(), token) || !strings.Contains(logs.String(), "503 Service Unavailable") {
		t.Errorf("logs:\n%s", logs.String())
	}
}
