package forge

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
)

const hookSecret = "gh-hook-secret"

// countingBody counts what was read of a body.
type countingBody struct {
	r    io.Reader
	read atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read.Add(int64(n))
	return n, err
}

func hubSig(h func() hash.Hash, prefix string, body []byte) string {
	mac := hmac.New(h, []byte(hookSecret))
	mac.Write(body)
	return prefix + hex.EncodeToString(mac.Sum(nil))
}

// TestWebhookVerification: only X-Hub-Signature-256 is accepted, and a
// delivery refused for its headers or its declared length is not read.
func TestWebhookVerification(t *testing.T) {
	body := []byte(`{"action":"completed","check_suite":{"head_branch":"promotebot/hello/B1"}}`)
	tests := []struct {
		name      string
		header    map[string]string
		length    int64
		want      int
		wantRead  bool
		wantHurry bool
	}{
		{"SHA-256 signature", map[string]string{"X-Hub-Signature-256": hubSig(sha256.New, "sha256=", body)},
			int64(len(body)), 200, true, true},
		{"SHA-1 signature only", map[string]string{"X-Hub-Signature": hubSig(sha1.New, "sha1=", body)},
			int64(len(body)), 401, false, false},
		{"no signature", nil, int64(len(body)), 401, false, false},
		{"wrong SHA-256 signature", map[string]string{"X-Hub-Signature-256": "sha256=" + hex.EncodeToString(make([]byte, 32))},
			int64(len(body)), 401, true, false},
		{"Content-Length over 5 MiB", map[string]string{"X-Hub-Signature-256": hubSig(sha256.New, "sha256=", body)},
			maxWebhookBody + 1, 413, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hurried []string
			h := &Webhook{Secret: hookSecret, Hurry: func(_ context.Context, id string) error {
				hurried = append(hurried, id)
				return nil
			}}
			b := &countingBody{r: bytes.NewReader(body)}
			r := httptest.NewRequest(http.MethodPost, "/github/webhook", b)
			r.ContentLength = tt.length
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("X-GitHub-Event", "check_suite")
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Errorf("status %d %s, want %d", w.Code, w.Body, tt.want)
			}
			if read := b.read.Load() > 0; read != tt.wantRead {
				t.Errorf("body read: %v, want %v", read, tt.wantRead)
			}
			if (len(hurried) > 0) != tt.wantHurry {
				t.Errorf("hurried %v", hurried)
			}
			_, err := h.Gate().Headers(r.Header)
			if headersPass := err == nil; headersPass != (tt.header["X-Hub-Signature-256"] != "") {
				t.Errorf("Gate().Headers: %v", err)
			}
		})
	}
}

// TestWebhookGate: the server's Gate has GitHub's limit and verifies the
// SHA-256 signature over the raw body; no secret refuses every delivery.
func TestWebhookGate(t *testing.T) {
	body := []byte(`{"zen":"hi"}`)
	h := http.Header{"X-Hub-Signature-256": {hubSig(sha256.New, "sha256=", body)}}
	g := (&Webhook{Secret: hookSecret}).Gate()
	if g.MaxBody != maxWebhookBody {
		t.Errorf("MaxBody %d", g.MaxBody)
	}
	if proven, err := g.Headers(h); proven || err != nil {
		t.Errorf("Headers: %v, %v; want false, nil", proven, err)
	}
	if err := g.Verify(h, body); err != nil {
		t.Errorf("Verify genuine: %v", err)
	}
	if err := g.Verify(h, []byte(`{"zen":"ho"}`)); err == nil {
		t.Error("Verify accepts a changed body")
	}
	if _, err := (&Webhook{}).Gate().Headers(h); err == nil {
		t.Error("no secret: Headers accepts")
	}
}

// TestWebhookDeletions: a delete event (GitHub's documented payload) names
// the repository, the kind of ref and its name; a pull request that closes
// deletes nothing.
func TestWebhookDeletions(t *testing.T) {
	deleted, err := os.ReadFile(filepath.Join("..", "..", "testdata", "github", "delete-branch.json"))
	if err != nil {
		t.Fatal(err)
	}
	closed := []byte(`{"action":"closed","number":7,"pull_request":{"number":7,"state":"closed","merged":false,` +
		`"head":{"ref":"feature/login"}},"repository":{"full_name":"acme/shop"}}`)
	for _, tt := range []struct {
		event string
		body  []byte
		want  []string
	}{
		{"delete", deleted, []string{"acme/shop branch feature/login"}},
		{"pull_request", closed, nil},
	} {
		t.Run(tt.event, func(t *testing.T) {
			var got []string
			h := &Webhook{Secret: hookSecret,
				Hurry: func(context.Context, string) error { return nil },
				Deleted: func(_ context.Context, repo, kind, name string) error {
					got = append(got, repo+" "+kind+" "+name)
					return nil
				}}
			r := httptest.NewRequest(http.MethodPost, "/github/webhook", bytes.NewReader(tt.body))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("X-GitHub-Event", tt.event)
			r.Header.Set("X-Hub-Signature-256", hubSig(sha256.New, "sha256=", tt.body))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK || !slices.Equal(got, tt.want) {
				t.Errorf("%s: %d, deletions %q; want 200, %q", tt.event, w.Code, got, tt.want)
			}
		})
	}
}
