package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promotebot/promotebot/gitops/forge/githubtest"
	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/slackui/slacktest"
)

// The fault tests: whatever fails underneath (git, Slack, GitHub), a build
// the webhook accepted is never lost, and each effect (a QA commit, a Slack
// message, a pull request) happens once.

const gitPassword = "git-test-password"

// faultServe runs serve for the hello project with Slack on a fake; the
// config remote is served over smart HTTP (git, whose requests the test
// may intercept) or, when git is nil, read as a local path.
type faultServe struct {
	base, remote string
	git          *gittest.Server
	slack        *slacktest.Server
	logs         *lockedLog
}

func startFaultServe(t *testing.T, overHTTP bool) faultServe {
	t.Helper()
	f := faultServe{slack: slacktest.NewServer(t, slackToken)}
	f.slack.AddChannel("C0HELLO")
	f.slack.AddUser(slacktest.User{ID: "UQA1", Name: "ada"})
	f.slack.AddUser(slacktest.User{ID: "UOWN1", Name: "olga"})
	f.remote = gittest.NewRemote(t, filepath.Join("..", "..", "testdata", "configrepo"))
	repo := f.remote
	env := map[string]string{"PROMOTEBOT_SLACK_BOT_TOKEN": slackToken, "PROMOTEBOT_SLACK_SIGNING_SECRET": slackSigning}
	if overHTTP {
		f.git = gittest.NewServer(t, filepath.Dir(f.remote), "bot", gitPassword)
		repo = f.git.RepoURL(f.remote)
		env["PROMOTEBOT_GIT_USERNAME"], env["PROMOTEBOT_GIT_PASSWORD"] = "bot", gitPassword
	}
	f.base, f.logs = serveConfig(t, helloConfig(t, repo, "slack:\n  apiURL: "+f.slack.URL+"\n"), env)
	waitFor(t, "the config repo to be cloned", func() bool {
		code, _ := get(t, f.base+"/readyz")
		return code == http.StatusOK
	})
	return f
}

// post reports build n of the hello project (its own image and branch) and
// returns its id.
func (f faultServe) post(t *testing.T, n int) string {
	t.Helper()
	code, out := postBuild(t, f.base, fmt.Sprintf(`{"project":"hello","image":"%s","type":"branch","target":"feature/f%d"}`, faultImage(n), n))
	if code != http.StatusAccepted {
		t.Fatalf("POST build %d: %d %v", n, code, out)
	}
	return out["id"].(string)
}

func faultImage(n int) string { return fmt.Sprintf("registry.example.com/acme/hello:9.%d.0", n) }

// buildCommits counts the commits on the remote's main that carry build
// id's Promotebot-Build trailer.
func buildCommits(t *testing.T, remote, id string) int {
	t.Helper()
	n := 0
	for _, c := range gittest.Log(t, remote, "main") {
		for _, v := range c.TrailerValues("Promotebot-Build") {
			if v == id {
				n++
			}
		}
	}
	return n
}

// channelPosts returns the channel's messages about image (top level, not
// ephemeral).
func channelPosts(fake *slacktest.Server, image string) []slacktest.Message {
	var out []slacktest.Message
	for _, m := range fake.Messages("C0HELLO") {
		if !m.Ephemeral && m.ThreadTS == "" && strings.Contains(m.Text, image) {
			out = append(out, m)
		}
	}
	return out
}

// topLevel counts a DM channel's messages that are neither ephemeral nor
// thread replies.
func topLevel(fake *slacktest.Server, channel string) int {
	n := 0
	for _, m := range fake.Messages(channel) {
		if !m.Ephemeral && m.ThreadTS == "" {
			n++
		}
	}
	return n
}

// waitWithin is waitFor with a deadline of d.
func waitWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
	}
}

// TestFaultGitServerDown: the git server answers 503 while five builds
// arrive. Each is accepted, says it is being retried (and its Slack message
// is brought up to date), and once the server is back each reaches QA with
// exactly one commit.
func TestFaultGitServerDown(t *testing.T) {
	skipIfShort(t, "the git server is down while builds wait out their retries, about 12 s")
	f := startFaultServe(t, true)
	head := gittest.Head(t, f.remote, "main")
	var down atomic.Bool
	down.Store(true)
	f.git.Intercept(func(w http.ResponseWriter, _ *http.Request) bool {
		if down.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	ids := make([]string, 5)
	for n := range ids {
		ids[n] = f.post(t, n)
	}
	// The writer's own retries (about 5 s a batch; the first build's batch,
	// then the other four's) run out, and the job queue's begin.
	waitWithin(t, 45*time.Second, "every build to say it is retried", func() bool {
		for _, id := range ids {
			b := getBuild(t, f.base, id)
			if b["state"] != "deploying" || !strings.HasPrefix(b["error"].(string), "retrying: ") {
				return false
			}
		}
		return true
	})
	for _, id := range ids {
		e := getBuild(t, f.base, id)["error"].(string)
		if !strings.Contains(e, "503") || !strings.Contains(e, "next attempt at") || strings.Contains(e, gitPassword) {
			t.Fatalf("build %s while git is down: error %q", id, e)
		}
	}
	// The retry note reaches Slack: each channel message says it is retrying.
	waitFor(t, "the channel messages to say retrying", func() bool {
		for n := range ids {
			ms := channelPosts(f.slack, faultImage(n))
			if len(ms) != 1 || ms[0].Updated == 0 || !strings.Contains(ms[0].Text+string(ms[0].Blocks), "retrying") {
				return false
			}
		}
		return true
	})
	if gittest.Head(t, f.remote, "main") != head {
		t.Fatal("main moved while the git server was down")
	}

	down.Store(false)
	for n, id := range ids {
		b := waitState(t, f.base, id, "qa-ready")
		if b["error"] != "" {
			t.Errorf("build %d on QA still says %q", n, b["error"])
		}
		if c := buildCommits(t, f.remote, id); c != 1 {
			t.Errorf("build %d has %d QA commits, want 1", n, c)
		}
	}
	for n := range ids {
		waitFor(t, "the channel to show the build on QA", func() bool {
			ms := channelPosts(f.slack, faultImage(n))
			return len(ms) == 1 && strings.HasPrefix(ms[0].Text, "Deployed ")
		})
	}
	if strings.Contains(f.logs.String(), gitPassword) {
		t.Error("the git password is in the logs")
	}
}

// TestFaultGitServerSlow: every request to the git server takes 300 ms;
// builds still reach QA, one commit each, and no job fails for it.
func TestFaultGitServerSlow(t *testing.T) {
	skipIfShort(t, "every git request takes 300 ms, about 3 s")
	f := startFaultServe(t, true)
	var slowed atomic.Int64
	f.git.Intercept(func(_ http.ResponseWriter, r *http.Request) bool {
		slowed.Add(1)
		select {
		case <-time.After(300 * time.Millisecond):
		case <-r.Context().Done():
		}
		return false
	})
	ids := make([]string, 3)
	for n := range ids {
		ids[n] = f.post(t, n)
	}
	for n, id := range ids {
		waitState(t, f.base, id, "qa-ready")
		if c := buildCommits(t, f.remote, id); c != 1 {
			t.Errorf("build %d has %d QA commits, want 1", n, c)
		}
	}
	if slowed.Load() < 4 { // a fetch and a push, two requests each
		t.Fatalf("only %d requests were slowed", slowed.Load())
	}
	if strings.Contains(f.logs.String(), "job will be retried") {
		t.Errorf("a slow git server made jobs fail:\n%s", f.logs)
	}
}

// TestFaultPushRejectedByHook: a pre-receive hook refuses the push. The
// build fails at once with git's reason and nothing lands; once the hook is
// gone, a new build for the same branch reaches QA.
func TestFaultPushRejectedByHook(t *testing.T) {
	f := startFaultServe(t, false)
	head := gittest.Head(t, f.remote, "main")
	gittest.RejectPushes(t, f.remote, "main is protected: open a pull request")
	id := f.post(t, 1)
	b := waitState(t, f.base, id, "qa-failed")
	// git reports the refusal as "pre-receive hook declined"; the hook's own
	// words ("main is protected…") come on the side band.
	const said = "hook declined (remote: main is protected: open a pull request)"
	if e := b["error"].(string); !strings.Contains(e, said) {
		t.Fatalf("error %q, want the hook's refusal with its words", e)
	}
	if gittest.Head(t, f.remote, "main") != head || buildCommits(t, f.remote, id) != 0 {
		t.Fatal("something was pushed past the hook")
	}
	waitFor(t, "the channel to say the deploy failed", func() bool {
		ms := channelPosts(f.slack, faultImage(1))
		return len(ms) == 1 && strings.Contains(ms[0].Text, "failed") && strings.Contains(ms[0].Text, said)
	})

	if err := os.Remove(filepath.Join(f.remote, "hooks", "pre-receive")); err != nil {
		t.Fatal(err)
	}
	code, out := postBuild(t, f.base, `{"project":"hello","image":"registry.example.com/acme/hello:9.1.1","type":"branch","target":"feature/f1"}`)
	if code != http.StatusAccepted {
		t.Fatalf("POST after the hook was removed: %d %v", code, out)
	}
	next := out["id"].(string)
	waitState(t, f.base, next, "qa-ready")
	if buildCommits(t, f.remote, next) != 1 || buildCommits(t, f.remote, id) != 0 {
		t.Fatalf("QA commits: new build %d, refused build %d; want 1 and 0",
			buildCommits(t, f.remote, next), buildCommits(t, f.remote, id))
	}
}

// TestFaultSlackFlaky: Slack answers 429 (Retry-After: 1), then 500, then
// ok:false internal_error. The build reaches QA before Slack accepts
// anything; the messages catch up, each posted once.
func TestFaultSlackFlaky(t *testing.T) {
	skipIfShort(t, "Slack fails three ways and the messages wait out their retries, about 4 s")
	f := startFaultServe(t, false)
	for _, fail := range []slacktest.Failure{{Status: http.StatusTooManyRequests, RetryAfter: 1},
		{Status: http.StatusInternalServerError}, {Error: "internal_error"}} {
		f.slack.Fail("chat.postMessage", fail)
	}
	id := f.post(t, 1)
	waitState(t, f.base, id, "qa-ready")
	onQA := time.Now()
	waitFor(t, "the channel message and the DMs", func() bool {
		return len(channelPosts(f.slack, faultImage(1))) == 1 && topLevel(f.slack, "DOWN1") == 1 && topLevel(f.slack, "DQA1") == 1
	})
	calls := f.slack.Calls("chat.postMessage")
	var failed, posted int
	for _, c := range calls {
		if !c.OK {
			failed++
			continue
		}
		posted++
		if c.At.Before(onQA) {
			t.Errorf("Slack accepted a message at %s, before the build was on QA (%s): git waited for Slack?", c.At, onQA)
		}
	}
	if failed != 3 || posted != 3 {
		t.Fatalf("chat.postMessage: %d failed, %d accepted; want 3 and 3 (the channel and two DMs, once each)", failed, posted)
	}
	// Later updates change the messages in place, never post them again.
	time.Sleep(500 * time.Millisecond)
	if n := len(channelPosts(f.slack, faultImage(1))); n != 1 || topLevel(f.slack, "DOWN1") != 1 || topLevel(f.slack, "DQA1") != 1 {
		t.Fatalf("%d channel messages, %d and %d DMs; want one of each", n, topLevel(f.slack, "DOWN1"), topLevel(f.slack, "DQA1"))
	}
}

// TestFaultSlackRefusesEverything: every chat.postMessage is refused for
// good (channel_not_found); git does not wait for Slack: each build reaches
// QA with one commit, and no job is left behind.
func TestFaultSlackRefusesEverything(t *testing.T) {
	f := startFaultServe(t, false)
	for range 500 {
		f.slack.Fail("chat.postMessage", slacktest.Failure{Error: "channel_not_found"})
	}
	ids := make([]string, 3)
	for n := range ids {
		ids[n] = f.post(t, n)
	}
	for n, id := range ids {
		waitState(t, f.base, id, "qa-ready")
		if c := buildCommits(t, f.remote, id); c != 1 {
			t.Errorf("build %d has %d QA commits, want 1", n, c)
		}
	}
	waitFor(t, "the notifications to give up", func() bool {
		_, metrics := get(t, f.base+"/metrics")
		return strings.Contains(metrics, "promotebot_queue_depth 0")
	})
	for _, c := range f.slack.Calls("chat.postMessage") {
		if c.OK {
			t.Fatalf("a message was posted: %+v", c)
		}
	}
}

// TestFaultGitHubMergeRetried: the merge meets a 502, then a secondary rate
// limit (Retry-After: 1). The build says it is retried; the promotion lands
// through its one pull request.
func TestFaultGitHubMergeRetried(t *testing.T) {
	skipIfShort(t, "the merge waits out a 502 and a rate limit, about 3 s")
	base, remote, gh, fake := prServe(t)
	gh.Fail(githubtest.RouteMergePull, githubtest.Failure{Status: http.StatusBadGateway})
	gh.Fail(githubtest.RouteMergePull, githubtest.Failure{SecondaryRateLimit: true, RetryAfter: 1})
	id := toDeploy(t, base, fake, "registry.example.com/acme/hello:9.9.0")
	waitFor(t, "the retry to show", func() bool {
		b := getBuild(t, base, id)
		if b["state"] == "promoted" {
			t.Fatal("promoted before the retry was seen")
		}
		return b["state"] == "promoting" && strings.HasPrefix(b["error"].(string), "retrying: ")
	})
	b := waitState(t, base, id, "promoted")
	if b["error"] != "" {
		t.Errorf("promoted build still says %q", b["error"])
	}
	merges := 0
	for _, c := range gh.Calls() {
		if c.Method == http.MethodPut && strings.HasSuffix(c.Path, "/merge") {
			merges++
		}
	}
	prs := gh.PRs()
	if merges != 3 || len(prs) != 1 || !prs[0].Merged || prs[0].MergeSHA != b["productionCommit"] {
		t.Fatalf("%d merge calls (want 502, rate limit, merged), pull requests %+v, build %v", merges, prs, b)
	}
	if gittest.Head(t, remote, "main") != prs[0].MergeSHA {
		t.Fatalf("main is at %s, want the merge %s", gittest.Head(t, remote, "main"), prs[0].MergeSHA)
	}
}

// TestFaultGitHubBadCredentials: GitHub stops taking the bot's token (it
// was rotated). The promotion fails at once, saying the credentials are
// bad, without the token; once the token is valid again, Deploy works.
func TestFaultGitHubBadCredentials(t *testing.T) {
	base, _, gh, fake := prServe(t)
	gh.SetToken("ghp-rotated-token")
	id := toDeploy(t, base, fake, "registry.example.com/acme/hello:9.8.0")
	b := waitState(t, base, id, "promote-failed")
	e := b["error"].(string)
	if !strings.Contains(strings.ToLower(e), "credentials") || strings.Contains(e, githubToken) || strings.Contains(e, "ghp-rotated-token") {
		t.Fatalf("error %q: want it to say the credentials are bad, without a token", e)
	}
	if prs := gh.PRs(); len(prs) != 0 {
		t.Fatalf("pull requests %+v, want none", prs)
	}

	gh.SetToken(githubToken)
	click(t, base, "UOWN1", "prod_deploy", id, "DOWN1")
	b = waitState(t, base, id, "promoted")
	if prs := gh.PRs(); len(prs) != 1 || prs[0].MergeSHA != b["productionCommit"] {
		t.Fatalf("pull requests %+v, build %v", prs, b)
	}
}
