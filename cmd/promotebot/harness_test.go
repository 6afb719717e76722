// The harness of the crash, replica and load tests: server processes
// that are killed and restarted, and a client that keeps talking to
// whichever one runs, as CI and Slack do.

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/slackui/slacktest"
)

// skipIfShort skips a long test under go test -short, the fast tier for
// iterating; the full suite (go test -race ./..., as CI runs it) runs it.
// what says what makes it long.
func skipIfShort(t *testing.T, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("long test (%s): the full suite runs it, go test -short skips it", what)
	}
}

// envInt reads a test knob: the long runs of hack/ and bench/ set them.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a number", name, v)
	}
	return n
}

// fleet is a server process that a test kills with SIGKILL and restarts
// on the same config and data while clients keep talking to it.
type fleet struct {
	config string
	env    []string
	// lease is the --job-lease of the servers (1s when empty): how soon
	// a killed server's jobs run again elsewhere.
	lease string

	mu    sync.Mutex
	cmd   *exec.Cmd
	base  string
	kills []time.Time // when each SIGKILL was sent
}

// start runs a new server process; the old one must be dead.
func (f *fleet) start() error {
	lease := f.lease
	if lease == "" {
		lease = "1s"
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "PROMOTEBOT_TEST_CHILD=serve --config "+f.config+" --job-lease "+lease,
		"PROMOTEBOT_WEBHOOK_SECRET="+webhookSecret)
	cmd.Env = append(cmd.Env, f.env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr lockedLog
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	r := bufio.NewReader(out)
	line, err := r.ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		werr := cmd.Wait()
		return fmt.Errorf("the server did not start: %w (%v): %s", err, werr, strings.TrimSpace(stderr.String()))
	}
	go func() { _, _ = io.Copy(io.Discard, r) }()
	f.mu.Lock()
	f.cmd, f.base = cmd, "http://"+strings.TrimSpace(strings.TrimPrefix(line, "promotebot listening on "))
	f.mu.Unlock()
	return nil
}

// kill sends SIGKILL and reaps the process.
func (f *fleet) kill() error {
	f.mu.Lock()
	cmd := f.cmd
	f.kills = append(f.kills, time.Now())
	f.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	var exit *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &exit) {
		return fmt.Errorf("server after SIGKILL: %v", err)
	}
	return nil
}

func (f *fleet) url() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.base
}

func (f *fleet) killTimes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.kills...)
}

// stop kills the last process, if it still runs.
func (f *fleet) stop() {
	f.mu.Lock()
	cmd := f.cmd
	f.mu.Unlock()
	if cmd != nil && cmd.ProcessState == nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

// client talks to whichever server process runs now, as CI and Slack do:
// a request that finds no server, or one killed half-way, is sent again.
type client struct {
	base func() string // where the next request goes
	http *http.Client
	// patience is how long a build may take to reach a state (a minute
	// when zero): longer while a server is being killed again and again.
	patience time.Duration
}

func (c *client) wait() time.Duration {
	if c.patience == 0 {
		return time.Minute
	}
	return c.patience
}

var errGaveUp = errors.New("no answer")

// send sends a request built by mk until a server answers with a status
// accept takes, for up to a minute; it returns the status and body.
func (c *client) send(ctx context.Context, mk func(base string) (*http.Request, error), accept func(int) bool) (int, []byte, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		req, err := mk(c.base())
		if err != nil {
			return 0, nil, err
		}
		resp, err := c.http.Do(req.WithContext(ctx))
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && accept(resp.StatusCode) {
				return resp.StatusCode, body, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, nil, fmt.Errorf("%w: %v", errGaveUp, err)
		}
		time.Sleep(time.Duration(10+rand.IntN(20)) * time.Millisecond)
	}
}

func (c *client) postBuild(ctx context.Context, body string) (string, error) {
	_, out, err := c.send(ctx, func(base string) (*http.Request, error) {
		req, err := http.NewRequest(http.MethodPost, base+"/v1/builds", strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		mac := hmac.New(sha256.New, []byte(webhookSecret))
		mac.Write([]byte(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Promotebot-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		return req, nil
	}, func(code int) bool { return code == http.StatusAccepted || code == http.StatusOK })
	if err != nil {
		return "", err
	}
	var b struct{ ID string }
	if err := json.Unmarshal(out, &b); err != nil || b.ID == "" {
		return "", fmt.Errorf("POST /v1/builds answered %q", out)
	}
	return b.ID, nil
}

// built is a build's view as GET /v1/builds/{id} answers it, with its
// history of states.
type built struct {
	State     string
	CreatedAt time.Time
	History   []struct {
		To string
		At time.Time
	}
}

// reached is when the build entered state; zero if it never did.
func (b built) reached(state string) time.Time {
	for _, h := range b.History {
		if h.To == state {
			return h.At
		}
	}
	return time.Time{}
}

func (c *client) build(ctx context.Context, id string) (built, error) {
	_, out, err := c.send(ctx, func(base string) (*http.Request, error) {
		req, err := http.NewRequest(http.MethodGet, base+"/v1/builds/"+id, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+webhookSecret)
		return req, nil
	}, func(code int) bool { return code == http.StatusOK })
	var b built
	if err == nil {
		err = json.Unmarshal(out, &b)
	}
	return b, err
}

func (c *client) state(ctx context.Context, id string) (string, error) {
	b, err := c.build(ctx, id)
	return b.State, err
}

// waitState polls build id until it is in one of want, for up to
// c.patience.
func (c *client) waitState(ctx context.Context, id string, want ...string) (string, error) {
	deadline := time.Now().Add(c.wait())
	for {
		s, err := c.state(ctx, id)
		if err != nil {
			return "", err
		}
		for _, w := range want {
			if s == w {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			return s, fmt.Errorf("build %s is %s, want %v", id, s, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// slackForm sends a signed Slack interaction payload, made by payload for
// each attempt, until it is answered 200; the body of the answer is
// returned (empty when all went well).
func (c *client) slackForm(ctx context.Context, payload func() map[string]any) ([]byte, error) {
	_, out, err := c.send(ctx, func(base string) (*http.Request, error) {
		raw, err := json.Marshal(fromSlack(payload()))
		if err != nil {
			return nil, err
		}
		body := "payload=" + url.QueryEscape(string(raw))
		req, err := http.NewRequest(http.MethodPost, base+"/slack/interactions", strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		mac := hmac.New(sha256.New, []byte(slackSigning))
		fmt.Fprintf(mac, "v0:%s:%s", ts, body)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Slack-Request-Timestamp", ts)
		req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
		return req, nil
	}, func(code int) bool { return code == http.StatusOK })
	return out, err
}

// click presses a button as user, as Slack delivers it. A click no server
// answered is made again, as a person would: a new click, with its own
// time and trigger.
func (c *client) click(ctx context.Context, user, action, buildID string) error {
	_, err := c.slackForm(ctx, func() map[string]any {
		now := time.Now()
		return map[string]any{
			"type": "block_actions", "trigger_id": "trigger-" + strconv.FormatInt(now.UnixNano(), 10),
			"user":    map[string]string{"id": user},
			"channel": map[string]string{"id": "C0HELLO"},
			"actions": []map[string]string{{"action_id": action, "block_id": "b", "value": buildID, "type": "button",
				"action_ts": actionTS(now)}},
		}
	})
	return err
}

// reject submits the Reject dialog as user.
func (c *client) reject(ctx context.Context, user, buildID string) error {
	for {
		out, err := c.rejectOnce(ctx, user, buildID)
		// The dialog says so when the bot could not finish in Slack's 3 s;
		// a person presses Submit again.
		if err != nil || !bytes.Contains(out, []byte("try again")) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *client) rejectOnce(ctx context.Context, user, buildID string) ([]byte, error) {
	out, err := c.slackForm(ctx, func() map[string]any {
		return map[string]any{
			"type": "view_submission",
			"user": map[string]string{"id": user},
			"view": map[string]any{"callback_id": "qa_reject_reason", "private_metadata": buildID,
				"state": map[string]any{"values": map[string]any{"reason": map[string]any{"reason": map[string]any{
					"type": "plain_text_input", "value": "the logo is upside down"}}}}},
		}
	})
	if err == nil && len(bytes.TrimSpace(out)) > 0 && !bytes.Contains(out, []byte("already")) && !bytes.Contains(out, []byte("try again")) {
		err = fmt.Errorf("reject %s answered %s", buildID, out)
	}
	return out, err
}

// loopSlack is the recording Slack of the crash and load tests: one
// channel, QA UQA1 and owner UOWN1.
func loopSlack(t *testing.T, channel string) *slacktest.Server {
	t.Helper()
	fake := slacktest.NewServer(t, slackToken)
	fake.AddChannel(channel)
	fake.AddUser(slacktest.User{ID: "UQA1", Name: "ada", RealName: "Ada Lovelace", Email: "ada@example.com"})
	fake.AddUser(slacktest.User{ID: "UOWN1", Name: "olga", RealName: "Olga Owner", Email: "olga@example.com"})
	return fake
}

// commitsPerBuild counts, on main after seed, the QA and production
// commits of each build, and the commits in all; a commit without one
// build and one environment in its trailers is an error. last is the image
// of the newest production commit.
func commitsPerBuild(t *testing.T, remote, seed string) (qa, prod map[string]int, commits int, last string) {
	t.Helper()
	qa, prod = map[string]int{}, map[string]int{}
	log := gittest.Log(t, remote, "main")
	for _, c := range log {
		if c.Hash == seed {
			break
		}
		env, build := c.TrailerValues("Promotebot-Environment"), c.TrailerValues("Promotebot-Build")
		switch {
		case len(env) != 1 || len(build) != 1:
			t.Errorf("commit %s has trailers %v %v", c.Hash, env, build)
		case env[0] == "production":
			prod[build[0]]++
			if last == "" {
				last = c.TrailerValues("Promotebot-Image")[0]
			}
		default:
			qa[build[0]]++
		}
	}
	return qa, prod, len(log), last
}
