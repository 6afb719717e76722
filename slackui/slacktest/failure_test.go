package slacktest_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/promotebot/promotebot/slackui/slacktest"
)

func TestMessageErrors(t *testing.T) {
	s := newServer(t)
	api := newClient(s)
	_, parent, err := api.PostMessage("C1", slack.MsgOptionText("parent", false))
	if err != nil {
		t.Fatal(err)
	}
	tooMany := make([]slack.Block, 51)
	for i := range tooMany {
		tooMany[i] = slack.NewDividerBlock()
	}
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"post to unknown channel", func() error {
			_, _, err := api.PostMessage("C9", slack.MsgOptionText("hi", false))
			return err
		}, "channel_not_found"},
		{"post without channel", func() error {
			_, _, err := api.PostMessage("", slack.MsgOptionText("hi", false))
			return err
		}, "channel_not_found"},
		{"post without text", func() error {
			_, _, err := api.PostMessage("C1")
			return err
		}, "no_text"},
		{"post with empty blocks only", func() error {
			_, _, err := api.PostMessage("C1", slack.MsgOptionBlocks())
			return err
		}, "no_text"},
		{"post with 51 blocks", func() error {
			_, _, err := api.PostMessage("C1", slack.MsgOptionBlocks(tooMany...))
			return err
		}, "invalid_blocks"},
		{"reply to unknown thread", func() error {
			_, _, err := api.PostMessage("C1", slack.MsgOptionText("hi", false), slack.MsgOptionTS("1700000000.999900"))
			return err
		}, "thread_not_found"},
		{"reply to a thread of another channel", func() error {
			_, _, err := api.PostMessage("C2", slack.MsgOptionText("hi", false), slack.MsgOptionTS(parent))
			return err
		}, "thread_not_found"},
		{"update unknown message", func() error {
			_, _, _, err := api.UpdateMessage("C1", "1700000000.999900", slack.MsgOptionText("x", false))
			return err
		}, "message_not_found"},
		{"update in another channel", func() error {
			_, _, _, err := api.UpdateMessage("C2", parent, slack.MsgOptionText("x", false))
			return err
		}, "message_not_found"},
		{"update in unknown channel", func() error {
			_, _, _, err := api.UpdateMessage("C9", parent, slack.MsgOptionText("x", false))
			return err
		}, "channel_not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantSlackError(t, tt.call(), tt.want)
		})
	}
	if n := len(s.Messages("")); n != 1 {
		t.Errorf("%d messages recorded, want only the parent", n)
	}
	calls := s.Calls("chat.postMessage", "chat.update")
	if len(calls) != len(tests)+1 {
		t.Fatalf("%d calls recorded, want %d", len(calls), len(tests)+1)
	}
	for i, c := range calls[1:] {
		if c.OK || c.Status != http.StatusOK || c.Error != tests[i].want {
			t.Errorf("call %d = %+v, want error %q", i, c, tests[i].want)
		}
	}
	if m := message(t, s, "C1", parent); m.Text != "parent" || m.Updated != 0 {
		t.Errorf("parent changed: %+v", m)
	}
}

func TestRateLimited(t *testing.T) {
	s := newServer(t)
	api := newClient(s)
	s.Fail("chat.postMessage", slacktest.Failure{Status: http.StatusTooManyRequests, RetryAfter: 7})
	s.Fail("chat.postMessage", slacktest.Failure{Status: http.StatusTooManyRequests, RetryAfter: 1})
	_, _, err := api.PostMessage("C1", slack.MsgOptionText("hi", false))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 7*time.Second {
		t.Fatalf("first post: %v (%T), want *slack.RateLimitedError after 7s", err, err)
	}
	_, _, err = api.PostMessage("C1", slack.MsgOptionText("hi", false))
	if !errors.As(err, &rl) || rl.RetryAfter != time.Second {
		t.Fatalf("second post: %v, want a rate limit of 1s", err)
	}
	if _, _, err := api.PostMessage("C1", slack.MsgOptionText("hi", false)); err != nil {
		t.Fatalf("third post: %v", err)
	}
	// Failures are per method.
	if _, err := api.AuthTest(); err != nil {
		t.Fatal(err)
	}
	calls := s.Calls("chat.postMessage")
	if len(calls) != 3 || calls[0].Status != 429 || calls[0].OK || calls[0].Error != "ratelimited" || calls[2].Status != 200 {
		t.Errorf("calls = %+v", calls)
	}
	if n := len(s.Messages("C1")); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
}

func TestInjectedFailures(t *testing.T) {
	s := newServer(t)
	api := newClient(s)
	tests := []struct {
		name    string
		failure slacktest.Failure
		check   func(error) bool
	}{
		{"500", slacktest.Failure{Status: 500}, func(err error) bool {
			var sc slack.StatusCodeError
			return errors.As(err, &sc) && sc.Code == 500
		}},
		{"503", slacktest.Failure{Status: 503}, func(err error) bool {
			var sc slack.StatusCodeError
			return errors.As(err, &sc) && sc.Code == 503
		}},
		{"ok false", slacktest.Failure{Error: "channel_not_found"}, func(err error) bool {
			var se slack.SlackErrorResponse
			return errors.As(err, &se) && se.Err == "channel_not_found"
		}},
		{"429 with a code", slacktest.Failure{Status: 429, Error: "ratelimited", RetryAfter: 0}, func(err error) bool {
			var rl *slack.RateLimitedError
			return errors.As(err, &rl) && rl.RetryAfter == 0
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.Fail("chat.update", tt.failure)
			_, _, _, err := api.UpdateMessage("C1", "1700000000.000100", slack.MsgOptionText("x", false))
			if !tt.check(err) {
				t.Errorf("error = %v (%T)", err, err)
			}
		})
	}
	// The queue is empty again: the next update gets the real answer.
	_, _, _, err := api.UpdateMessage("C1", "1700000000.000100", slack.MsgOptionText("x", false))
	wantSlackError(t, err, "message_not_found")
	statuses := []int{}
	for _, c := range s.Calls("chat.update") {
		statuses = append(statuses, c.Status)
	}
	if fmt.Sprint(statuses) != "[500 503 200 429 200]" {
		t.Errorf("statuses = %v", statuses)
	}
}

func TestDelay(t *testing.T) {
	s := newServer(t)
	impatient := slack.New(token, slack.OptionAPIURL(s.URL), slack.OptionHTTPClient(&http.Client{Timeout: 100 * time.Millisecond}))
	s.Fail("chat.postMessage", slacktest.Failure{Delay: time.Minute})
	start := time.Now()
	_, _, err := impatient.PostMessage("C1", slack.MsgOptionText("hi", false))
	if err == nil || !strings.Contains(err.Error(), "Timeout") {
		t.Errorf("error = %v, want a client timeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("timed-out call took %s", d)
	}
	// The server handles the call all the same, as Slack may.
	deadline := time.Now().Add(5 * time.Second)
	for len(s.Calls()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if calls := s.Calls(); len(calls) != 1 || !calls[0].OK || len(s.Messages("C1")) != 1 {
		t.Errorf("after the timeout: calls %+v, messages %+v", calls, s.Messages("C1"))
	}
	// A delay alone answers normally afterwards.
	s.Fail("chat.postMessage", slacktest.Failure{Delay: 50 * time.Millisecond})
	api := slack.New(token, slack.OptionAPIURL(s.URL))
	start = time.Now()
	if _, _, err := api.PostMessage("C1", slack.MsgOptionText("hi", false)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("delayed call took %s", d)
	}
}

func TestConcurrentPostsGetUniqueTimestamps(t *testing.T) {
	s := newServer(t)
	api := newClient(s)
	const n = 50
	var wg sync.WaitGroup
	tss := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, tss[i], errs[i] = api.PostMessage("C1", slack.MsgOptionText(fmt.Sprint(i), false))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, ts := range tss {
		if seen[ts] {
			t.Errorf("ts %s given twice", ts)
		}
		seen[ts] = true
	}
	msgs := s.Messages("C1")
	if len(msgs) != n {
		t.Fatalf("%d messages, want %d", len(msgs), n)
	}
	for i := 1; i < n; i++ {
		if msgs[i].TS <= msgs[i-1].TS {
			t.Errorf("ts not increasing: %s then %s", msgs[i-1].TS, msgs[i].TS)
		}
	}
	if len(s.Calls()) != n {
		t.Errorf("%d calls recorded", len(s.Calls()))
	}
}

func TestDelayEndsWithTheTest(t *testing.T) {
	start := time.Now()
	errc := make(chan error, 1)
	t.Run("slow", func(t *testing.T) {
		s := newServer(t)
		s.Fail("auth.test", slacktest.Failure{Delay: time.Minute})
		api := newClient(s)
		go func() {
			_, err := api.AuthTest()
			errc <- err
		}()
		time.Sleep(100 * time.Millisecond) // let the request reach the server
	})
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("closing the server waited %s for the delayed call", d)
	}
	if err := <-errc; err != nil {
		t.Errorf("delayed call: %v", err)
	}
}
