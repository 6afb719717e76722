package feedback_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promotebot/promotebot/promote"
)

// recorder is a promote.Observer that keeps what it was handed and answers
// obs (or err).
type recorder struct {
	mu     sync.Mutex
	events []promote.ClusterEvent
	obs    promote.Observation
	err    error
	// failFor, when set, fails the events of that object only.
	failFor string
}

var _ promote.Observer = (*recorder)(nil)

func (r *recorder) Observe(ctx context.Context, ev promote.ClusterEvent) (promote.Observation, error) {
	if _, ok := ctx.Deadline(); !ok {
		return promote.Observation{}, errors.New("observe called without a deadline")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	if r.err != nil && (r.failFor == "" || r.failFor == ev.Object) {
		return promote.Observation{}, r.err
	}
	if r.obs.Outcome == "" {
		return promote.Observation{Outcome: promote.OutcomeApplied, Builds: []string{"b-1"}}, nil
	}
	return r.obs, nil
}

func (r *recorder) seen() []promote.ClusterEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// reply is an answer of a handler.
type reply struct {
	status int
	body   string
	header http.Header
}

// post sends body to h as the controller would, with headers.
func post(t *testing.T, h http.Handler, path string, body []byte, headers map[string]string) reply {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return reply{rec.Code, rec.Body.String(), rec.Header()}
}

// gated serves h behind gate the way promote's server does (promote.Gate):
// the declared length, the headers, and, unless they prove the request,
// the raw body verified before h runs.
func gated(gate promote.Gate, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > gate.MaxBody {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		proven, err := gate.Headers(r.Header)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if !proven {
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, gate.MaxBody))
			if err != nil {
				http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
				return
			}
			if err := gate.Verify(r.Header, body); err != nil {
				http.Error(w, err.Error(), http.StatusUnauthorized)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		h.ServeHTTP(w, r)
	})
}

// untouchable is a body that fails the test when read: a request refused
// on its headers must not be.
type untouchable struct{ t *testing.T }

func (u untouchable) Read([]byte) (int, error) {
	u.t.Error("the body of a request refused on its headers was read")
	return 0, io.EOF
}

// postUnread sends a request whose body must stay unread.
func postUnread(t *testing.T, h http.Handler, path string, headers map[string]string) reply {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, untouchable{t})
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return reply{rec.Code, rec.Body.String(), rec.Header()}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func checkJSONError(t *testing.T, r reply, status int, secrets ...string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status %d, want %d: %s", r.status, status, r.body)
	}
	if !strings.HasPrefix(r.body, `{"error":"`) || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("answer %q (%s), want a JSON error", r.body, r.header.Get("Content-Type"))
	}
	for _, s := range secrets {
		if strings.Contains(r.body, s) {
			t.Errorf("answer %q shows a secret", r.body)
		}
	}
}
