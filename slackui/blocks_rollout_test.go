package slackui

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/promotebot/promotebot/promote"
)

const (
	testRevision = "abcdef0123456789abcdef0123456789abcdef01"
	testFailure  = "Deployment hello: progress deadline exceeded"
	testTimeout  = 10 * time.Minute
)

// rolloutSince is when the test rollouts began, apart from UpdatedAt.
var rolloutSince = t0.Add(80 * time.Minute)

// rolloutStatuses are the statuses a record can have; "" is no record yet.
var rolloutStatuses = []promote.RolloutStatus{"", promote.RolloutPending, promote.RolloutSynced,
	promote.RolloutHealthy, promote.RolloutDegraded}

// testRollout is a record of status st; nil for "".
func testRollout(st promote.RolloutStatus, timedOut bool) *promote.Rollout {
	if st == "" {
		return nil
	}
	r := &promote.Rollout{Status: st, Revision: testRevision, At: t0.Add(2 * time.Hour), Since: rolloutSince,
		TimedOut: timedOut}
	if st == promote.RolloutDegraded {
		r.Message = testFailure
	}
	return r
}

// rolloutView is testView(s) with cluster feedback on or off and the
// environment's record.
func rolloutView(s promote.State, env promote.RolloutEnv, feedback bool, r *promote.Rollout) promote.BuildView {
	v := testView(s)
	v.Feedback, v.RolloutTimeout = feedback, testTimeout
	if env == promote.RolloutProduction {
		v.Build.Rollout.Production = r
	} else {
		v.Build.Rollout.QA = r
	}
	return v
}

// rolloutCase is one row of the tables: a record's status (none for ""),
// whether feedback is configured, whether the timeout passed.
type rolloutCase struct {
	status   promote.RolloutStatus
	feedback bool
	timedOut bool
}

func (c rolloutCase) String() string {
	st := string(c.status)
	if st == "" {
		st = "none"
	}
	return st + map[bool]string{true: "/feedback", false: "/no-feedback"}[c.feedback] +
		map[bool]string{true: "/timed-out", false: ""}[c.timedOut]
}

// rolloutCases is every status × feedback × timed out (a missing record
// cannot time out).
func rolloutCases() []rolloutCase {
	var cs []rolloutCase
	for _, st := range rolloutStatuses {
		for _, feedback := range []bool{false, true} {
			for _, timedOut := range []bool{false, true} {
				if st == "" && timedOut {
					continue
				}
				cs = append(cs, rolloutCase{st, feedback, timedOut})
			}
		}
	}
	return cs
}

// tellsQARollout reports whether s speaks of a QA rollout.
func tellsQARollout(s string) bool {
	for _, p := range []string{"QA rollout", "in QA", "QA: committed", "QA: synced", "QA: no healthy"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// blockTexts is each block's text as Slack receives it: a section's text
// or its fields, a context's elements, "actions" for buttons.
func blockTexts(t *testing.T, m Message) []string {
	t.Helper()
	var out []string
	for _, raw := range decode(t, m.Blocks).([]any) {
		b := raw.(map[string]any)
		var parts []string
		if txt, ok := b["text"].(map[string]any); ok {
			parts = append(parts, txt["text"].(string))
		}
		for _, key := range []string{"fields", "elements"} {
			els, _ := b[key].([]any)
			for _, e := range els {
				if txt, ok := e.(map[string]any)["text"].(string); ok && b["type"] != "actions" {
					parts = append(parts, txt)
				}
			}
		}
		if b["type"] == "actions" {
			parts = append(parts, "actions")
		}
		out = append(out, strings.Join(parts, " | "))
	}
	return out
}

func TestQARolloutInChannelAndOwnerDM(t *testing.T) {
	lines := map[promote.RolloutStatus]string{
		"":                     ":hourglass_flowing_sand: QA: committed, waiting for Argo CD/Flux",
		promote.RolloutPending: ":hourglass_flowing_sand: QA: committed, waiting for Argo CD/Flux",
		promote.RolloutSynced:  ":hourglass_flowing_sand: QA: synced `abcdef0`, waiting for it to be healthy",
		promote.RolloutHealthy: ":large_green_circle: Live in QA (synced `abcdef0`, healthy)",
	}
	heads := map[promote.MessageRole]string{
		promote.MessageChannel: "Deployed `registry.example.com/acme/hello:1.4.0` to `qa/branch-feature-login`",
		promote.MessageOwner: "New build of Hello Service ready for QA: `registry.example.com/acme/hello:1.4.0` " +
			"on `qa/branch-feature-login`",
	}
	for _, c := range rolloutCases() {
		for role, head := range heads {
			t.Run(string(role)+"/"+c.String(), func(t *testing.T) {
				v := rolloutView(promote.StateQAReady, promote.RolloutQA, c.feedback, testRollout(c.status, c.timedOut))
				m := Render(post(role, "UOWN1", v))
				blocks := blockTexts(t, m)
				var line string
				var alerts, plains []string
				switch {
				case !c.feedback:
					line = "QA: committed; no cluster feedback configured"
				case c.status == promote.RolloutDegraded:
					alerts = append(alerts, ":warning: *QA rollout failing:* `"+testFailure+"`")
					plains = append(plains, "QA rollout failing: "+testFailure)
				default:
					line = lines[c.status]
				}
				if c.feedback && c.timedOut && c.status != promote.RolloutHealthy {
					alerts = append(alerts, ":warning: QA: no healthy signal from Argo CD/Flux after 10m")
					plains = append(plains, "QA: no healthy signal from Argo CD/Flux after 10m")
				}
				if want := head + lineAfter(line); blocks[0] != want {
					t.Errorf("headline\n got %q\nwant %q", blocks[0], want)
				}
				if len(alerts) > 0 {
					if want := strings.Join(alerts, "\n"); blocks[1] != want {
						t.Errorf("second block\n got %q\nwant %q", blocks[1], want)
					}
				} else if all := strings.Join(blocks, "\n"); strings.Contains(all, ":warning:") {
					t.Errorf("a warning without cause:\n%s", all)
				}
				for _, p := range plains {
					if !strings.Contains(m.Text, p) {
						t.Errorf("fallback text %q lacks %q", m.Text, p)
					}
				}
				if !c.feedback && strings.Contains(m.Text+strings.Join(blocks, "\n"), "Argo CD/Flux") {
					t.Errorf("without feedback, the message speaks of Argo CD/Flux: %q", blocks)
				}
			})
		}
	}
}

// The QA part is there from the QA commit until the build is in
// production (or was), closed or superseded.
func TestQARolloutStates(t *testing.T) {
	r := testRollout(promote.RolloutDegraded, true)
	for _, s := range promote.States {
		v := rolloutView(s, promote.RolloutQA, true, r)
		want := v.Build.QACommit != "" && s != promote.StatePromoted && s != promote.StateRolledBack &&
			s != promote.StateClosed && s != promote.StateSuperseded
		for _, role := range []promote.MessageRole{promote.MessageChannel, promote.MessageOwner, promote.MessageQA} {
			m := Render(post(role, "UQA3", v))
			got := strings.Contains(strings.Join(blockTexts(t, m), "\n"), "QA rollout failing:")
			if got != want {
				t.Errorf("%s/%s: shows the QA rollout: %v, want %v", role, s, got, want)
			}
		}
	}
	// A QA commit made while the build is still deploying counts.
	v := rolloutView(promote.StateDeploying, promote.RolloutQA, true, testRollout(promote.RolloutSynced, false))
	v.Build.QACommit = testRevision
	if got := blockTexts(t, Render(post(promote.MessageChannel, "", v)))[0]; !strings.HasSuffix(got,
		"\n:hourglass_flowing_sand: QA: synced `abcdef0`, waiting for it to be healthy") {
		t.Errorf("deploying with a QA commit: %q", got)
	}
}

func TestQARolloutInQADM(t *testing.T) {
	const head = "Ready for QA: `registry.example.com/acme/hello:1.4.0` on `qa/branch-feature-login`\n" +
		"Please test it, then approve or reject it."
	for _, c := range rolloutCases() {
		t.Run(c.String(), func(t *testing.T) {
			v := rolloutView(promote.StateQAReady, promote.RolloutQA, c.feedback, testRollout(c.status, c.timedOut))
			m := Render(post(promote.MessageQA, "UQA3", v))
			blocks := blockTexts(t, m)
			var alerts, plains []string
			if c.feedback && c.status == promote.RolloutDegraded {
				alerts = append(alerts, ":warning: *QA rollout failing:* `"+testFailure+"`")
				plains = append(plains, "QA rollout failing: "+testFailure)
			}
			if c.feedback && c.timedOut && c.status != promote.RolloutHealthy {
				s := "The QA environment was not reported healthy after 10m: it may still serve the previous version"
				alerts = append(alerts, ":warning: "+s)
				plains = append(plains, s)
			}
			if blocks[0] != head {
				t.Errorf("headline\n got %q\nwant %q", blocks[0], head)
			}
			if len(alerts) > 0 {
				if want := strings.Join(alerts, "\n"); blocks[1] != want {
					t.Errorf("second block\n got %q\nwant %q", blocks[1], want)
				}
			} else if all := strings.Join(blocks, "\n"); strings.Contains(all, ":warning:") || tellsQARollout(all) {
				t.Errorf("the QA DM tells more than warnings:\n%s", all)
			}
			for _, p := range plains {
				if !strings.Contains(m.Text, p) {
					t.Errorf("fallback text %q lacks %q", m.Text, p)
				}
			}
			// The bot asks QA anyway.
			if !hasActions(t, m) {
				t.Errorf("no Approve and Reject")
			}
		})
	}
}

func TestProductionRollout(t *testing.T) {
	lines := map[promote.RolloutStatus]string{
		"":                     ":hourglass_flowing_sand: Production: rolling out (committed, waiting for Argo CD/Flux)",
		promote.RolloutPending: ":hourglass_flowing_sand: Production: rolling out (committed, waiting for Argo CD/Flux)",
		promote.RolloutSynced: ":hourglass_flowing_sand: Production: rolling out (synced `abcdef0`, " +
			"waiting for it to be healthy)",
		promote.RolloutHealthy: ":large_green_circle: Live in production (synced `abcdef0`, healthy)",
	}
	heads := map[promote.MessageRole]func(since string) string{
		promote.MessageChannel: func(since string) string {
			return "Deployed `registry.example.com/acme/hello:1.4.0` to `qa/branch-feature-login`\n" +
				":rocket: Promoted to production " + since + " by <@UOWN1>"
		},
		promote.MessageOwner: func(since string) string {
			return ":rocket: <@UOWN1> deployed `registry.example.com/acme/hello:1.4.0` to production " + since
		},
		promote.MessageProduction: func(string) string {
			return ":rocket: New production deployment of Hello Service by <@UOWN1>\n" +
				"`registry.example.com/acme/hello:1.4.0` from branch `feature/login`"
		},
	}
	for _, c := range rolloutCases() {
		for role, head := range heads {
			t.Run(string(role)+"/"+c.String(), func(t *testing.T) {
				r := testRollout(c.status, c.timedOut)
				v := rolloutView(promote.StatePromoted, promote.RolloutProduction, c.feedback, r)
				// The QA rollout is history once the build is in production.
				v.Build.Rollout.QA = testRollout(promote.RolloutDegraded, true)
				m := Render(post(role, "UOWN1", v))
				blocks := blockTexts(t, m)
				var line string
				var alerts, plains []string
				switch {
				case !c.feedback:
					line = "Production: committed; no cluster feedback configured"
				case c.status == promote.RolloutDegraded:
					alerts = append(alerts, ":rotating_light: *Production degraded:* `"+testFailure+"`")
					plains = append(plains, "Production degraded: "+testFailure)
				default:
					line = lines[c.status]
				}
				if c.feedback && c.timedOut && c.status != promote.RolloutHealthy {
					alerts = append(alerts, ":warning: No healthy signal from production after 10m")
					plains = append(plains, "No healthy signal from production after 10m")
				}
				since := when(v.Build.UpdatedAt)
				if r != nil {
					since = when(rolloutSince)
				}
				first := 0
				if len(alerts) > 0 {
					if want := strings.Join(alerts, "\n"); blocks[0] != want {
						t.Errorf("first block\n got %q\nwant %q", blocks[0], want)
					}
					first = 1
				}
				if want := head(since) + lineAfter(line); blocks[first] != want {
					t.Errorf("headline\n got %q\nwant %q", blocks[first], want)
				}
				all := m.Text + strings.Join(blocks, "\n")
				if len(alerts) == 0 && strings.Contains(all, ":warning:") {
					t.Errorf("a warning without cause:\n%s", all)
				}
				if tellsQARollout(all) {
					t.Errorf("a promoted build's message tells of its QA rollout:\n%s", all)
				}
				for _, p := range plains {
					if !strings.Contains(m.Text, p) {
						t.Errorf("fallback text %q lacks %q", m.Text, p)
					}
				}
			})
		}
	}
}

// Before the promotion is committed, messages say nothing of production.
func TestNoProductionRolloutBeforePromoted(t *testing.T) {
	for _, s := range promote.States {
		if s == promote.StatePromoted {
			continue
		}
		v := rolloutView(s, promote.RolloutProduction, true, testRollout(promote.RolloutDegraded, true))
		for _, role := range []promote.MessageRole{promote.MessageChannel, promote.MessageOwner,
			promote.MessageProduction, promote.MessageQA} {
			m := Render(post(role, "UQA3", v))
			if all := m.Text + strings.Join(blockTexts(t, m), "\n"); strings.Contains(all, "roduction degraded") ||
				strings.Contains(all, "from production") {
				t.Errorf("%s/%s tells of a production rollout:\n%s", role, s, all)
			}
		}
	}
}

func TestStatusRolloutWords(t *testing.T) {
	word := func(c rolloutCase) string {
		switch {
		case !c.feedback:
			return "no feedback"
		case c.status == promote.RolloutHealthy:
			return ":large_green_circle: live"
		case c.status == promote.RolloutDegraded:
			return ":warning: failing: `" + testFailure + "`"
		case c.timedOut:
			return ":warning: no healthy signal after 10m"
		}
		return ":hourglass_flowing_sand: rolling out"
	}
	for _, c := range rolloutCases() {
		t.Run(c.String(), func(t *testing.T) {
			qa := rolloutView(promote.StateQAReady, promote.RolloutQA, c.feedback, testRollout(c.status, c.timedOut))
			prod := rolloutView(promote.StatePromoted, promote.RolloutProduction, c.feedback,
				testRollout(c.status, c.timedOut)).Build
			blocks := blockTexts(t, StatusMessage(promote.StatusView{Project: testProject(), Production: &prod,
				QA: []promote.BuildView{qa}, Feedback: c.feedback, RolloutTimeout: testTimeout}))
			since := when(prod.UpdatedAt)
			if c.status != "" {
				since = when(rolloutSince)
			}
			wantProd := ":rocket: *Production*: `registry.example.com/acme/hello:1.4.0` since " + since +
				" by <@UOWN1> · <https://github.com/acme/deploy-config/pull/42|#42> · " + word(c)
			if blocks[1] != wantProd {
				t.Errorf("production\n got %q\nwant %q", blocks[1], wantProd)
			}
			wantQA := "*QA environments*\n• `qa/branch-feature-login`: `registry.example.com/acme/hello:1.4.0`, " +
				"qa-ready since " + when(qa.Build.UpdatedAt) + " · " + word(c) +
				" · <https://feature-login.branch.hello.example.com|open>"
			if blocks[2] != wantQA {
				t.Errorf("QA environments\n got %q\nwant %q", blocks[2], wantQA)
			}
		})
	}
}

func TestRolloutMessageIsEscapedAndCut(t *testing.T) {
	msg := hostile + "\n\n  " + strings.Repeat("x", 10000)
	const shown = "`&lt;!channel&gt; *x* &lt;https://evil|click&gt; &amp; &lt;@U0ADMIN&gt; xxx"
	for _, env := range []promote.RolloutEnv{promote.RolloutQA, promote.RolloutProduction} {
		s := promote.StateQAReady
		if env == promote.RolloutProduction {
			s = promote.StatePromoted
		}
		r := testRollout(promote.RolloutDegraded, true)
		r.Message, r.Revision = msg, hostile
		v := rolloutView(s, env, true, r)
		ms := map[string]Message{
			"status": StatusMessage(promote.StatusView{Project: v.Project, Production: &v.Build,
				QA: []promote.BuildView{v}, Feedback: true, RolloutTimeout: testTimeout}),
		}
		for _, role := range []promote.MessageRole{promote.MessageChannel, promote.MessageOwner,
			promote.MessageQA, promote.MessageProduction} {
			ms[string(role)] = Render(post(role, "UQA3", v))
		}
		for role, m := range ms {
			name := string(env) + "/" + role
			if role == string(promote.MessageQA) && env == promote.RolloutProduction ||
				role == string(promote.MessageProduction) && env == promote.RolloutQA {
				continue // these show no rollout of that environment
			}
			assertInert(t, name, messageJSON(m))
			all := strings.Join(blockTexts(t, m), "\n")
			i := strings.Index(all, shown)
			if i < 0 {
				t.Errorf("%s: the message is not shown escaped, as code:\n%s", name, all)
				continue
			}
			span := all[i+1:]
			span = span[:strings.IndexByte(span, '`')]
			limit := maxRolloutMessage
			if role == "status" {
				limit = maxStatusRolloutMessage
			}
			if n := utf8.RuneCountInString(span); n > limit || !strings.HasSuffix(span, "…") {
				t.Errorf("%s: the message is %d characters, ending %q; want at most %d, cut with …",
					name, n, span[max(0, len(span)-10):], limit)
			}
			if role != "status" && !strings.Contains(m.Text, "&lt;!channel&gt; *x* &lt;https://evil|click&gt;") {
				t.Errorf("%s: fallback text %q", name, m.Text)
			}
		}
	}
	// A synced rollout shows its revision; a hostile one is as inert.
	for _, env := range []promote.RolloutEnv{promote.RolloutQA, promote.RolloutProduction} {
		r := testRollout(promote.RolloutSynced, false)
		r.Revision = hostile
		s := map[promote.RolloutEnv]promote.State{promote.RolloutQA: promote.StateQAReady,
			promote.RolloutProduction: promote.StatePromoted}[env]
		m := Render(post(promote.MessageChannel, "", rolloutView(s, env, true, r)))
		assertInert(t, string(env)+"/revision", messageJSON(m))
	}
	// A degraded rollout without a message says so.
	r := testRollout(promote.RolloutDegraded, false)
	r.Message = " \n "
	m := Render(post(promote.MessageChannel, "", rolloutView(promote.StateQAReady, promote.RolloutQA, true, r)))
	if got := blockTexts(t, m)[1]; got != ":warning: *QA rollout failing:* _no reason given_" {
		t.Errorf("no message: %q", got)
	}
}

func TestAfter(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "in time", 10 * time.Minute: "after 10m", time.Hour: "after 1h", 90 * time.Minute: "after 1h30m",
		45 * time.Second: "after 45s", 90 * time.Second: "after 1m30s", 1500 * time.Millisecond: "after 2s",
		-time.Second: "in time",
	} {
		if got := after(d); got != want {
			t.Errorf("after(%v) = %q, want %q", d, got, want)
		}
	}
}
