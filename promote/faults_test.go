package promote_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/promotebot/promotebot/promote"
)

// slackService is newService with Slack fakes, its clock set to start.
func slackService(t *testing.T, repo *fakeRepo, start time.Time) (*promote.Service, promote.Store, *clock, *fakeNotifier) {
	t.Helper()
	s, st, _ := newService(t, repo)
	c := &clock{now: start}
	slack := &fakeNotifier{}
	s.Now, s.Notifier, s.Directory, s.MaxAttempts = c.Now, slack, newDirectory(), 10
	return s, st, c, slack
}

// acceptAt stores a build whose QA deploy is due at at.
func acceptAt(t *testing.T, st promote.Store, at time.Time) promote.Build {
	t.Helper()
	b, _, _, err := st.Create(context.Background(), promote.Build{Project: "hello", Image: "registry.example.com/acme/hello:1",
		Kind: promote.KindBranch, Target: "x"}, promote.Job{Kind: promote.JobDeployQA, RunAt: at})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pending(t *testing.T, st promote.Store) int {
	t.Helper()
	n, err := st.Pending(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// wantRetrying checks the build says it is being retried, and why.
func wantRetrying(t *testing.T, b promote.Build, cause string) {
	t.Helper()
	if b.State != promote.StateDeploying && b.State != promote.StatePromoting ||
		!strings.HasPrefix(b.Error, "retrying: ") || !strings.Contains(b.Error, cause) ||
		!strings.Contains(b.Error, "(next attempt at ") {
		t.Fatalf("while retrying: state %s, error %q", b.State, b.Error)
	}
}

// TestFaultRetryShownThenCleared: a QA deploy that fails twice (git down)
// says so on the build, with the reason, each time a Slack update follows;
// the success clears it.
func TestFaultRetryShownThenCleared(t *testing.T) {
	down := errors.New("push: 503 Service Unavailable")
	repo := &fakeRepo{fail: []error{down, down}}
	s, st, c, slack := slackService(t, repo, time.Now().UTC().Add(time.Minute))
	b := acceptAt(t, st, time.Time{})

	var notes []string
	for range 2 {
		runOnce(t, s) // the deploy fails
		got := get(t, st, b.ID)
		wantRetrying(t, got, down.Error())
		notes = append(notes, got.Error)
		if n := pending(t, st); n != 2 {
			t.Fatalf("%d jobs pending, want the retry and one notification", n)
		}
		runOnce(t, s) // the notification
		if runOnce(t, s) {
			t.Fatal("the retry ran before its backoff")
		}
		c.Add(10 * time.Minute)
	}
	if notes[0] == notes[1] {
		t.Fatalf("the second note %q does not give the next attempt", notes[1])
	}
	runOnce(t, s) // the deploy succeeds
	if got := get(t, st, b.ID); got.State != promote.StateQAReady || got.Error != "" {
		t.Fatalf("after the success: state %s, error %q", got.State, got.Error)
	}
	drain(t, s)
	posts, edits := slack.recorded()
	if len(posts) != 6 || posts[0] != "channel  deploying" {
		t.Fatalf("posts %q, want the channel's (while deploying) and the five DMs", posts)
	}
	// One update per change: the second note, then qa-ready.
	if len(edits) != 2 || !strings.HasSuffix(edits[0], " deploying") || !strings.HasSuffix(edits[1], " qa-ready") {
		t.Fatalf("channel updates %q", edits)
	}
	if repo.calls() != 3 {
		t.Fatalf("%d deploys, want 3", repo.calls())
	}
}

// TestFaultRetryNotificationsCoalesce: while a notification waits to run,
// the changes that follow (a second retry note, the success) queue no other:
// Slack hears once, of where the build is by then.
func TestFaultRetryNotificationsCoalesce(t *testing.T) {
	down := errors.New("push: connection refused")
	repo := &fakeRepo{fail: []error{down, down}}
	// The worker's clock is behind the store's: the notifications the
	// store stamps "now" wait while the retries (on the worker's clock) run.
	start := time.Now().UTC().Add(-time.Hour)
	s, st, c, slack := slackService(t, repo, start)
	b := acceptAt(t, st, start)

	var first string
	for i := range 2 {
		runOnce(t, s)
		got := get(t, st, b.ID)
		wantRetrying(t, got, down.Error())
		if i == 0 {
			first = got.Error
		} else if got.Error == first {
			t.Fatalf("the second note is the first: %q", got.Error)
		}
		if n := pending(t, st); n != 2 {
			t.Fatalf("after failure %d: %d jobs pending, want the retry and one notification", i+1, n)
		}
		c.Add(5 * time.Second) // past the backoff, which is at most 2 s
	}
	runOnce(t, s)
	if got := get(t, st, b.ID); got.State != promote.StateQAReady || got.Error != "" {
		t.Fatalf("after the success: state %s, error %q", got.State, got.Error)
	}
	if n := pending(t, st); n != 1 {
		t.Fatalf("%d jobs pending, want the one notification", n)
	}
	c.Add(2 * time.Hour)
	drain(t, s)
	posts, edits := slack.recorded()
	if len(posts) != 6 || posts[0] != "channel  qa-ready" || len(edits) != 0 {
		t.Fatalf("posts %q, edits %q: want one of each message, once on QA", posts, edits)
	}
}

// TestFaultSameRetryNoteWrittenOnce: a retry that would say exactly what the
// build says already (same reason, same next attempt) writes nothing and
// queues no notification.
func TestFaultSameRetryNoteWrittenOnce(t *testing.T) {
	// A rate limit already over: the next attempt is due at once, on a
	// clock that does not move.
	limited := &promote.RetryAfterError{After: 0, Err: errors.New("slow down")}
	repo := &fakeRepo{fail: []error{limited, limited}}
	s, st, _, _ := slackService(t, repo, time.Now().UTC().Add(time.Minute))
	b := acceptAt(t, st, time.Time{})
	runOnce(t, s) // the deploy fails
	noted := get(t, st, b.ID)
	wantRetrying(t, noted, "slow down")
	runOnce(t, s) // the notification
	runOnce(t, s) // the deploy fails the same way
	again := get(t, st, b.ID)
	if again.Error != noted.Error || !again.UpdatedAt.Equal(noted.UpdatedAt) {
		t.Fatalf("the same note was written again: %q at %s, was %q at %s", again.Error, again.UpdatedAt, noted.Error, noted.UpdatedAt)
	}
	if n := pending(t, st); n != 1 {
		t.Fatalf("%d jobs pending, want only the retry", n)
	}
	drain(t, s)
	if got := get(t, st, b.ID); got.State != promote.StateQAReady || got.Error != "" {
		t.Fatalf("after the success: state %s, error %q", got.State, got.Error)
	}
}

// TestFaultPromotionRetryShownThenCleared: a merge that fails (GitHub 502)
// says on the build it is retried; the merge that lands clears it.
func TestFaultPromotionRetryShownThenCleared(t *testing.T) {
	forge := newForge()
	forge.mergeErrs = []error{errors.New("github merge pull request: 502 Bad Gateway")}
	f := prFlow(t, forge)
	drain(t, f.s)
	wantRetrying(t, get(t, f.st, f.build.ID), "502 Bad Gateway")
	f.clock.Add(10 * time.Minute)
	drain(t, f.s)
	if b := get(t, f.st, f.build.ID); b.State != promote.StatePromoted || b.Error != "" || forge.merges != 1 {
		t.Fatalf("after the merge: state %s, error %q, %d merges", b.State, b.Error, forge.merges)
	}
}

// TestFaultRetryNoteLeavesOtherStatesAlone: a QA deploy retried after its
// build was superseded leaves the superseded build's error empty.
func TestFaultRetryNoteLeavesOtherStatesAlone(t *testing.T) {
	repo := &fakeRepo{started: make(chan struct{}, 1), release: make(chan struct{})}
	s, st, _, _ := slackService(t, repo, time.Now().UTC().Add(time.Minute))
	old := acceptAt(t, st, time.Time{})
	done := make(chan error, 1)
	go func() {
		_, err := s.RunOnce(context.Background())
		done <- err
	}()
	<-repo.started
	// A newer image for the same target while the deploy is under way.
	if _, _, _, err := st.Create(context.Background(), promote.Build{Project: "hello", Image: "registry.example.com/acme/hello:2",
		Kind: promote.KindBranch, Target: "x"}); err != nil {
		t.Fatal(err)
	}
	repo.mu.Lock()
	repo.fail = []error{errors.New("push: connection reset")}
	repo.mu.Unlock()
	close(repo.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := get(t, st, old.ID); got.State != promote.StateSuperseded || got.Error != "" {
		t.Fatalf("superseded build: state %s, error %q", got.State, got.Error)
	}
}
