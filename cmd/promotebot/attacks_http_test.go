package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// requestAttacks are the attacks on the request layer (issue 13, items 2
// and 7): nothing of an unauthenticated request is read beyond what
// refusing it needs, unverified bodies are read a few at a time, and the
// webhook secret is no permanent read token. Rows that must not read the
// body send it with "Expect: 100-continue", so a byte read by the server
// is a byte the client sent: each fails if the client sent any.
func requestAttacks(hookBody func(*attackBot) string) []attack {
	const mib = 1 << 20
	fresh := func() string { return strconv.FormatInt(time.Now().Unix(), 10) }
	sixAgo := func() string { return strconv.FormatInt(time.Now().Add(-6*time.Minute).Unix(), 10) }
	return []attack{
		// Item 2: refused on the headers, with the body never sent.
		{name: "unread/github 5 MiB unsigned", want: 401, send: atkUnread("/github/webhook", 5*mib,
			map[string]string{"X-GitHub-Event": "check_suite"})},
		{name: "unread/github Content-Length over 5 MiB", want: 413, send: atkUnread("/github/webhook", 5*mib+1,
			map[string]string{"X-Hub-Signature-256": "sha256=" + strings.Repeat("0", 64)})},
		{name: "unread/slack interaction unsigned", want: 401, send: atkUnread("/slack/interactions", mib, nil)},
		{name: "unread/slack command with a stale timestamp", want: 401, send: func(t *testing.T, b *attackBot) (int, string) {
			return atkUnread("/slack/commands", 1<<10, map[string]string{"X-Slack-Request-Timestamp": sixAgo(),
				"X-Slack-Signature": "v0=" + strings.Repeat("0", 64)})(t, b)
		}},
		{name: "unread/slack Content-Length over 1 MiB", want: 413, send: func(t *testing.T, b *attackBot) (int, string) {
			return atkUnread("/slack/interactions", mib+1, map[string]string{"X-Slack-Request-Timestamp": fresh(),
				"X-Slack-Signature": "v0=" + strings.Repeat("0", 64)})(t, b)
		}},
		{name: "unread/ci unsigned", want: 401, send: atkUnread("/v1/builds", 60<<10, nil)},
		{name: "unread/ci Content-Length over 64 KiB", want: 413, send: atkUnread("/v1/builds", 65<<10,
			map[string]string{"X-Promotebot-Signature-256": "sha256=" + strings.Repeat("0", 64)})},
		{name: "unread/ci signature 6 minutes old", want: 401, send: func(t *testing.T, b *attackBot) (int, string) {
			return atkUnread("/v1/builds", 60<<10, map[string]string{"X-Promotebot-Timestamp": sixAgo(),
				"X-Promotebot-Signature-256": "sha256=" + strings.Repeat("0", 64)})(t, b)
		}},
		{name: "busy/a 9th unverified body while 8 are read", want: 503, body: "retry", send: atkBusy},

		// Item 7: the webhook secret as a read token, and SHA-1 deliveries.
		{name: "read/GET with the HMAC of the empty body", want: 401, send: func(t *testing.T, b *attackBot) (int, string) {
			return atkSend(t, http.MethodGet, b.base+"/v1/builds/"+b.ids["w1"], "",
				map[string]string{"X-Promotebot-Signature-256": "sha256=" + atkHMAC(webhookSecret, "")})
		}},
		{name: "read/GET with a timestamped signature 6 minutes old", want: 401, send: func(t *testing.T, b *attackBot) (int, string) {
			stamp := sixAgo()
			return atkSend(t, http.MethodGet, b.base+"/v1/builds/"+b.ids["w1"], "", map[string]string{
				"X-Promotebot-Timestamp": stamp, "X-Promotebot-Signature-256": "sha256=" + atkHMAC(webhookSecret, stamp+".")})
		}},
		{name: "read/GET with a fresh timestamped signature (control)", want: 200, body: `"state":"qa-ready"`,
			send: func(t *testing.T, b *attackBot) (int, string) {
				stamp := fresh()
				return atkSend(t, http.MethodGet, b.base+"/v1/builds/"+b.ids["w1"], "", map[string]string{
					"X-Promotebot-Timestamp": stamp, "X-Promotebot-Signature-256": "sha256=" + atkHMAC(webhookSecret, stamp+".")})
			}},
		{name: "ci/POST signed 6 minutes ago", want: 401, send: func(t *testing.T, b *attackBot) (int, string) {
			body := `{"project":"hello","image":"registry.example.com/acme/hello:9.9.9","type":"branch","target":"attack/one"}`
			stamp := sixAgo()
			return atkCI(body, map[string]string{"X-Promotebot-Timestamp": stamp,
				"X-Promotebot-Signature-256": "sha256=" + atkHMAC(webhookSecret, stamp+"."+body)})(t, b)
		}},
		{name: "github/genuine SHA-1 signature only", want: 401, send: func(t *testing.T, b *attackBot) (int, string) {
			mac := hmac.New(sha1.New, []byte(githubWebhookSecret))
			mac.Write([]byte(hookBody(b)))
			return atkSend(t, http.MethodPost, b.base+"/github/webhook", hookBody(b), map[string]string{
				"Content-Type": "application/json", "X-GitHub-Event": "check_suite",
				"X-Hub-Signature": "sha1=" + hex.EncodeToString(mac.Sum(nil))})
		}},
	}
}

// sentCounter is a body of n bytes that counts what the client sent of it.
type sentCounter struct {
	r    io.Reader
	sent atomic.Int64
}

func (c *sentCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.sent.Add(int64(n))
	return n, err
}

// expectClient sends a body only once the server asks for it (100
// Continue), which Go's server does when the handler first reads it.
var expectClient = &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}

// atkUnread posts size bytes to path with headers and "Expect:
// 100-continue", and fails the test if the server asked for the body.
func atkUnread(path string, size int, headers map[string]string) func(*testing.T, *attackBot) (int, string) {
	return func(t *testing.T, b *attackBot) (int, string) {
		t.Helper()
		body := &sentCounter{r: bytes.NewReader(make([]byte, size))}
		req, err := http.NewRequest(http.MethodPost, b.base+path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = int64(size)
		req.Header.Set("Expect", "100-continue")
		req.Header.Set("Content-Type", "application/json")
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := expectClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		answer, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if n := body.sent.Load(); n != 0 {
			t.Errorf("the server read the body: %d bytes were sent", n)
		}
		return resp.StatusCode, string(answer)
	}
}

// atkBusy holds every turn to read an unverified body (the server's 8) with
// deliveries that send one byte and stall, then sends a ninth: it must be
// answered 503 with Retry-After once its short wait is over.
func atkBusy(t *testing.T, b *attackBot) (int, string) {
	t.Helper()
	const turns = 8
	var wg sync.WaitGroup
	var stalls []*io.PipeWriter
	defer func() {
		for _, w := range stalls {
			w.CloseWithError(errors.New("attack over"))
		}
		wg.Wait()
	}()
	for i := range turns {
		r, w := io.Pipe()
		stalls = append(stalls, w)
		req, err := http.NewRequest(http.MethodPost, b.base+"/github/webhook", r)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = 1 << 20
		req.Header.Set("Expect", "100-continue")
		req.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("0", 64))
		wg.Go(func() {
			resp, err := expectClient.Do(req)
			if err == nil {
				resp.Body.Close()
			}
		})
		// The client reads the pipe only after the server's 100 Continue,
		// that is once the server has given this delivery a turn.
		if _, err := fmt.Fprint(w, "{"); err != nil {
			t.Fatalf("stalling delivery %d: %v", i, err)
		}
	}
	req, err := http.NewRequest(http.MethodPost, b.base+"/github/webhook", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("0", 64))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After: %s", answer)
	}
	return resp.StatusCode, string(answer)
}
