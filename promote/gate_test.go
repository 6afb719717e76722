package promote

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// readCounter is a body of n bytes that counts what was read of it.
type readCounter struct {
	r    io.Reader
	read atomic.Int64
}

func newReadCounter(n int) *readCounter {
	return &readCounter{r: bytes.NewReader(bytes.Repeat([]byte("x"), n))}
}

func (c *readCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// stampedSign is the timestamped signature: HMAC-SHA256 of
// "<timestamp>.<body>".
func stampedSign(secret string, at time.Time, body []byte) (stamp, sig string) {
	stamp = strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(stamp + "."))
	mac.Write(body)
	return stamp, "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// testGate stands in for Slack's and GitHub's gates: a header X-Test-Sig
// must be present, and its value is the body.
func testGate(maxBody int64) Gate {
	return Gate{
		MaxBody: maxBody,
		Headers: func(h http.Header) (bool, error) {
			if h.Get("X-Test-Sig") == "" {
				return false, errors.New("no X-Test-Sig")
			}
			return false, nil
		},
		Verify: func(h http.Header, body []byte) error {
			if h.Get("X-Test-Sig") != string(body) {
				return errors.New("bad X-Test-Sig")
			}
			return nil
		},
	}
}

// gatedServer serves the CI routes with testSecret, and /slack/* and
// /github/webhook behind testGate; every handler answers 200 once called.
func gatedServer(reads ReadLimits) (http.Handler, *atomic.Int32) {
	var called atomic.Int32
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		called.Add(1)
		w.WriteHeader(http.StatusOK)
	})
	return NewServer(ServerDeps{
		Config: testConfig(), Secrets: Secrets{WebhookSecret: testSecret}, Store: newFakeStore(), Repo: fakeRepo{},
		Logger:            slog.New(slog.DiscardHandler),
		SlackInteractions: ok, SlackCommands: ok, SlackGate: testGate(1 << 20),
		GitHubWebhook: ok, GitHubGate: testGate(5 << 20),
		Reads: reads,
	}), &called
}

// TestRefusedBeforeReading: a request refused for its size or its headers
// is answered without a byte of its body read.
func TestRefusedBeforeReading(t *testing.T) {
	now := time.Now()
	stale, staleSig := stampedSign(testSecret, now.Add(-6*time.Minute), []byte("{}"))
	ahead, aheadSig := stampedSign(testSecret, now.Add(6*time.Minute), []byte("{}"))
	fresh, freshSig := stampedSign(testSecret, now, nil)
	tests := []struct {
		name, method, path string
		size               int
		header             map[string]string
		want               int
	}{
		{"CI: Content-Length over 64 KiB, signed", "POST", "/v1/builds", 65 << 10,
			map[string]string{SignatureHeader: sign(testSecret, []byte("{}"))}, 413},
		{"CI: Content-Length over 64 KiB, bearer", "POST", "/v1/builds", 65 << 10,
			map[string]string{"Authorization": "Bearer " + testSecret}, 413},
		{"CI: no credentials", "POST", "/v1/builds", 1 << 10, nil, 401},
		{"CI form: no credentials", "POST", "/build-complete", 1 << 10, nil, 401},
		{"CI: wrong bearer", "POST", "/v1/builds", 1 << 10, map[string]string{"Authorization": "Bearer nope"}, 401},
		{"CI: malformed signature", "POST", "/v1/builds", 1 << 10, map[string]string{SignatureHeader: "sha256=zz"}, 401},
		{"CI: signature 6 minutes old", "POST", "/v1/builds", 1 << 10,
			map[string]string{SignatureHeader: staleSig, TimestampHeader: stale}, 401},
		{"CI: signature 6 minutes ahead", "POST", "/v1/builds", 1 << 10,
			map[string]string{SignatureHeader: aheadSig, TimestampHeader: ahead}, 401},
		{"CI: timestamp not a number", "POST", "/v1/builds", 1 << 10,
			map[string]string{SignatureHeader: freshSig, TimestampHeader: "yesterday"}, 401},
		{"GET: with a body", "GET", "/v1/builds/B0001", 1 << 10,
			map[string]string{SignatureHeader: freshSig, TimestampHeader: fresh}, 413},
		{"GET: untimestamped signature", "GET", "/v1/builds/B0001", 0,
			map[string]string{SignatureHeader: sign(testSecret, nil)}, 401},
		{"Slack: over its limit", "POST", "/slack/interactions", 1<<20 + 1, map[string]string{"X-Test-Sig": "x"}, 413},
		{"Slack: no signature", "POST", "/slack/interactions", 1 << 10, nil, 401},
		{"Slack command: no signature", "POST", "/slack/commands", 1 << 10, nil, 401},
		{"GitHub: over its limit", "POST", "/github/webhook", 5<<20 + 1, map[string]string{"X-Test-Sig": "x"}, 413},
		{"GitHub: no signature", "POST", "/github/webhook", 5 << 20, nil, 401},
	}
	srv, called := gatedServer(ReadLimits{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := newReadCounter(tt.size)
			r := httptest.NewRequest(tt.method, tt.path, body)
			r.ContentLength = int64(tt.size)
			r.Header.Set("Content-Type", ctJSON)
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Errorf("status %d %s, want %d", w.Code, w.Body, tt.want)
			}
			if n := body.read.Load(); n != 0 {
				t.Errorf("%d bytes of the body were read", n)
			}
		})
	}
	if n := called.Load(); n != 0 {
		t.Errorf("handlers were called %d times", n)
	}
}

// TestGateReadsWhatItVerifies: a body over the limit without a length is
// cut at the limit; a verified body reaches the handler whole.
func TestGateReadsWhatItVerifies(t *testing.T) {
	srv, called := gatedServer(ReadLimits{})
	body := newReadCounter(2 << 20)
	r := httptest.NewRequest(http.MethodPost, "/slack/interactions", body)
	r.ContentLength = -1
	r.Header.Set("X-Test-Sig", "x")
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge || body.read.Load() > 1<<20+1 {
		t.Errorf("chunked 2 MiB: %d after reading %d bytes, want 413 after at most 1 MiB + 1", w.Code, body.read.Load())
	}
	r = httptest.NewRequest(http.MethodPost, "/slack/interactions", bytes.NewReader([]byte("payload")))
	r.Header.Set("X-Test-Sig", "payload")
	w = httptest.NewRecorder()
	srv.ServeHTTP(w, r)
	if w.Code != http.StatusOK || called.Load() != 1 {
		t.Errorf("verified request: %d, handler called %d times", w.Code, called.Load())
	}
}

// blockingBody is a body whose first Read signals started and then waits
// for release.
type blockingBody struct {
	started chan struct{}
	release chan struct{}
	once    atomic.Bool
}

func (b *blockingBody) Read(p []byte) (int, error) {
	if b.once.CompareAndSwap(false, true) {
		close(b.started)
		<-b.release
	}
	return 0, io.EOF
}

// TestUnverifiedReadsAreBounded: with one turn, a second unverified body
// waits for it, then is answered 503 with Retry-After, unread; a request
// the headers authenticate (a bearer token) does not wait.
func TestUnverifiedReadsAreBounded(t *testing.T) {
	srv, _ := gatedServer(ReadLimits{Concurrent: 1, Wait: 50 * time.Millisecond})
	slow := &blockingBody{started: make(chan struct{}), release: make(chan struct{})}
	first := httptest.NewRequest(http.MethodPost, "/github/webhook", slow)
	first.Header.Set("X-Test-Sig", "x")
	done := make(chan int)
	go func() {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, first)
		done <- w.Code
	}()
	<-slow.started

	for _, path := range []string{"/github/webhook", "/slack/interactions"} {
		body := newReadCounter(100)
		r := httptest.NewRequest(http.MethodPost, path, body)
		r.Header.Set("X-Test-Sig", "x")
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || body.read.Load() != 0 {
			t.Errorf("%s while the turn is taken: %d, Retry-After %q, %d bytes read; want 503, Retry-After, none read",
				path, w.Code, w.Header().Get("Retry-After"), body.read.Load())
		}
	}
	r := httptest.NewRequest(http.MethodPost, "/v1/builds", bytes.NewReader(jsonBuild(nil)))
	r.Header.Set("Content-Type", ctJSON)
	r.Header.Set("Authorization", "Bearer "+testSecret)
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, r)
	if w.Code != http.StatusAccepted {
		t.Errorf("bearer-authenticated build while the turn is taken: %d %s, want 202", w.Code, w.Body)
	}

	close(slow.release)
	if code := <-done; code != http.StatusUnauthorized {
		t.Errorf("the slow request: %d, want 401 (its body is not its signature)", code)
	}
	r = httptest.NewRequest(http.MethodPost, "/github/webhook", bytes.NewReader([]byte("y")))
	r.Header.Set("X-Test-Sig", "y")
	w = httptest.NewRecorder()
	srv.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Errorf("after the turn was given back: %d, want 200", w.Code)
	}
}

// TestTimestampedSignatures: a signature may carry X-Promotebot-Timestamp
// (HMAC of "<timestamp>.<body>"), and is then refused outside 5 minutes; a
// GET needs the bearer token or a timestamped signature.
func TestTimestampedSignatures(t *testing.T) {
	now := time.Now()
	stamped := func(at time.Time) auth {
		return func(r *http.Request, body []byte) {
			stamp, sig := stampedSign(testSecret, at, body)
			r.Header.Set(TimestampHeader, stamp)
			r.Header.Set(SignatureHeader, sig)
		}
	}
	untimestampedWithStamp := func(r *http.Request, body []byte) {
		r.Header.Set(TimestampHeader, strconv.FormatInt(now.Unix(), 10))
		r.Header.Set(SignatureHeader, sign(testSecret, body))
	}
	tests := []struct {
		name   string
		method string
		a      auth
		want   int
	}{
		{"POST untimestamped (the weaker form)", http.MethodPost, hmacAuth(testSecret), 202},
		{"POST timestamped now", http.MethodPost, stamped(now), 202},
		{"POST timestamped 4 minutes ago", http.MethodPost, stamped(now.Add(-4 * time.Minute)), 202},
		{"POST timestamped 6 minutes ago", http.MethodPost, stamped(now.Add(-6 * time.Minute)), 401},
		{"POST timestamped 6 minutes ahead", http.MethodPost, stamped(now.Add(6 * time.Minute)), 401},
		{"POST timestamp sent, body signed without it", http.MethodPost, untimestampedWithStamp, 401},
		{"GET bearer", http.MethodGet, bearer(testSecret), 200},
		{"GET timestamped now", http.MethodGet, stamped(now), 200},
		{"GET timestamped 6 minutes ago", http.MethodGet, stamped(now.Add(-6 * time.Minute)), 401},
		{"GET HMAC of the empty body, untimestamped", http.MethodGet, hmacAuth(testSecret), 401},
		{"GET timestamp sent, signed without it", http.MethodGet, untimestampedWithStamp, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, testSecret, fakeRepo{})
			id := decodeAnswer(t, f.do(t, http.MethodPost, "/v1/builds", ctJSON,
				jsonBuild(map[string]any{"target": "seed"}), bearer(testSecret))).ID
			var w *httptest.ResponseRecorder
			if tt.method == http.MethodGet {
				w = f.do(t, http.MethodGet, "/v1/builds/"+id, "", nil, tt.a)
			} else {
				w = f.do(t, http.MethodPost, "/v1/builds", ctJSON, jsonBuild(nil), tt.a)
			}
			if w.Code != tt.want {
				t.Errorf("status %d %s, want %d", w.Code, w.Body, tt.want)
			}
		})
	}
}
