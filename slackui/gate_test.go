package slackui

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingBody is a body of n bytes that counts what was read of it.
type countingBody struct {
	r    io.Reader
	read atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// TestRefusedBeforeReading: a request to either handler, and to the
// server's Gate, whose Slack headers are missing, malformed or stale, or
// whose Content-Length is over the limit, is refused with its body unread.
func TestRefusedBeforeReading(t *testing.T) {
	body := []byte("payload=%7B%7D")
	tests := []struct {
		name   string
		header http.Header
		length int64
		secret string
		want   int
	}{
		{"no signature", http.Header{}, int64(len(body)), testSecret, 401},
		{"timestamp only", http.Header{"X-Slack-Request-Timestamp": {"1"}}, int64(len(body)), testSecret, 401},
		{"6 minutes old", sign(testSecret, time.Now().Add(-6*time.Minute), body), int64(len(body)), testSecret, 401},
		{"6 minutes ahead", sign(testSecret, time.Now().Add(6*time.Minute), body), int64(len(body)), testSecret, 401},
		{"timestamp not a number", signStamp(testSecret, "now", body), int64(len(body)), testSecret, 401},
		{"no secret configured", sign(testSecret, time.Now(), body), int64(len(body)), "", 401},
		{"Content-Length over 1 MiB", sign(testSecret, time.Now(), body), maxSlackBody + 1, testSecret, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &Handlers{SigningSecret: tt.secret, Actor: &fakeActor{}, Slack: &fakeResponder{}}
			for name, handler := range map[string]http.Handler{"interactions": h.Interactions(), "commands": h.Commands()} {
				b := &countingBody{r: bytes.NewReader(body)}
				r := httptest.NewRequest(http.MethodPost, "/slack/"+name, b)
				r.Header, r.ContentLength = tt.header.Clone(), tt.length
				w := httptest.NewRecorder()
				handler.ServeHTTP(w, r)
				if w.Code != tt.want || b.read.Load() != 0 {
					t.Errorf("%s: %d after reading %d bytes, want %d with nothing read", name, w.Code, b.read.Load(), tt.want)
				}
			}
			if tt.want == 401 {
				if _, err := Gate(tt.secret).Headers(tt.header); err == nil {
					t.Error("Gate.Headers accepts them")
				}
			}
		})
	}
}

// TestGate: the server's Gate takes Slack's limit, passes genuine headers
// without calling them proof, and verifies the body as Verify does.
func TestGate(t *testing.T) {
	body := []byte("payload=%7B%7D")
	g := Gate(testSecret)
	if g.MaxBody != maxSlackBody {
		t.Errorf("MaxBody %d, want %d", g.MaxBody, maxSlackBody)
	}
	h := sign(testSecret, time.Now(), body)
	if proven, err := g.Headers(h); err != nil || proven {
		t.Errorf("genuine headers: %v, %v; want false (the body is still to verify), nil", proven, err)
	}
	if err := g.Verify(h, body); err != nil {
		t.Errorf("genuine body: %v", err)
	}
	if err := g.Verify(h, []byte(strings.Replace(string(body), "7B", "7C", 1))); err == nil {
		t.Error("tampered body verified")
	}
}
