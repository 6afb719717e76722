package slackui

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/promotebot/promotebot/promote"
)

// testTTL is hello's projects[].qaTTL in these tests.
const testTTL = 72 * time.Hour

// testEnv is the QA environment of testView's build: created with it,
// last active at t0+2h, alive.
func testEnv(b promote.Build) *promote.Environment {
	return &promote.Environment{Project: b.Project, Kind: b.Kind, Target: b.Target,
		Name: b.Environment, URL: b.URL, BuildID: b.ID, Image: b.Image,
		CreatedAt: b.CreatedAt, ActiveAt: t0.Add(2 * time.Hour)}
}

// envView is testView(s) with its QA environment, changed by f, and
// hello's TTL.
func envView(s promote.State, f func(*promote.Environment)) promote.BuildView {
	v := testView(s)
	v.Env, v.TTL = testEnv(v.Build), testTTL
	if f != nil {
		f(v.Env)
	}
	return v
}

// tornDown tears an environment down for reason, at t0+5h.
func tornDown(reason string) func(*promote.Environment) {
	return func(e *promote.Environment) {
		e.Teardown, e.TornDownAt = reason, t0.Add(5*time.Hour)
	}
}

// warned marks an environment warned of its expiry an hour after its last
// activity.
func warned(e *promote.Environment) {
	e.WarnedAt = e.ActiveAt.Add(time.Hour)
}

// closedByTeardownView is testView's build closed by the teardown of its
// environment for reason, as the domain leaves it.
func closedByTeardownView(reason string) promote.BuildView {
	v := envView(promote.StateClosed, tornDown(reason))
	v.Build.ClosedBy = ""
	v.Build.Error = "QA environment torn down: " + reason
	v.Build.UpdatedAt = t0.Add(5 * time.Hour)
	return v
}

// envVariants are v with its QA environment (v's own, else testEnv's)
// alive (warned of its expiry, or kept since), and torn down (the build,
// when closed, closed by the teardown).
func envVariants(v promote.BuildView) map[string]promote.BuildView {
	base := testEnv(v.Build)
	if v.Env != nil {
		base = v.Env
	}
	variant := func(f func(*promote.BuildView)) promote.BuildView {
		w := v
		e := *base
		w.Env, w.TTL = &e, testTTL
		f(&w)
		return w
	}
	reason := base.Teardown
	if reason == "" {
		reason = "branch-deleted"
	}
	return map[string]promote.BuildView{
		"env-warned": variant(func(w *promote.BuildView) { w.Env.Teardown = ""; warned(w.Env) }),
		"env-kept": variant(func(w *promote.BuildView) {
			w.Env.Teardown, w.Env.WarnedAt = "", time.Time{}
		}),
		"env-torn": variant(func(w *promote.BuildView) {
			tornDown(reason)(w.Env)
			if w.Build.State == promote.StateClosed {
				w.Build.ClosedBy, w.Build.Error = "", "QA environment torn down: "+reason
			}
		}),
	}
}

// envGoldenCases are the golden messages of QA environments.
func envGoldenCases() map[string]any {
	render := func(role promote.MessageRole, recipient string, v promote.BuildView) any {
		return messageJSON(Render(post(role, recipient, v)))
	}
	rollback := rollbackView(promote.StatePromoted, nil)
	rollback.Env, rollback.TTL = testEnv(rollback.Build), testTTL
	return map[string]any{
		"owner-qa-ready-env": render(promote.MessageOwner, "UOWN1", envView(promote.StateQAReady, nil)),
		"owner-rejected-env": render(promote.MessageOwner, "UOWN1", envView(promote.StateRejected, nil)),
		"owner-promoted-env": render(promote.MessageOwner, "UOWN1", rollback),
		"expiry-warning":     render(promote.MessageExpiry, "UQA1", envView(promote.StateQAReady, warned)),
		"expiry-kept": render(promote.MessageExpiry, "UOWN1", envView(promote.StateQAReady, func(e *promote.Environment) {
			warned(e)
			e.ActiveAt = e.WarnedAt.Add(30 * time.Minute)
		})),
		"expiry-torn-down": render(promote.MessageExpiry, "UQA1", envView(promote.StateClosed, func(e *promote.Environment) {
			warned(e)
			tornDown("expired")(e)
		})),
		"envs":                    messageJSON(EnvironmentsMessage(testEnvs(), envsNow)),
		"envs-no-ttl":             messageJSON(EnvironmentsMessage(with3(testEnvs(), func(v *promote.EnvironmentsView) { v.TTL = 0 }), envsNow)),
		"envs-none":               messageJSON(EnvironmentsMessage(promote.EnvironmentsView{Project: testProject(), TTL: testTTL}, envsNow)),
		"channel-closed-teardown": render(promote.MessageChannel, "", closedByTeardownView("branch-deleted")),
		"owner-closed-teardown": render(promote.MessageOwner, "UOWN1",
			closedByTeardownView("by Grace Hopper <slack:UOWN1>")),
		"qa-closed-teardown": render(promote.MessageQA, "UQA1", closedByTeardownView("expired")),
	}
}

func TestClosedByTeardown(t *testing.T) {
	const closedByOwner = "closed by <@UOWN1>"
	tests := []struct {
		name string
		view promote.BuildView
		want string // in the first section of every role's message
	}{
		{"branch deleted", closedByTeardownView("branch-deleted"),
			"Closed: QA environment torn down (branch-deleted)"},
		{"by an owner", closedByTeardownView("by Grace Hopper <slack:UOWN1>"),
			"Closed: QA environment torn down (by <@UOWN1>)"},
		{"by someone who is not a user id", closedByTeardownView("by Grace <slack:<!channel>>"),
			"Closed: QA environment torn down (by Grace &lt;slack:&lt;!channel&gt;&gt;)"},
		{"hostile reason", closedByTeardownView(hostile),
			"Closed: QA environment torn down (&lt;!channel&gt; *x* &lt;https://evil|click&gt; &amp; &lt;@U0ADMIN&gt;)"},
		{"no environment in the view", with(closedByTeardownView("expired"), func(v *promote.BuildView) {
			v.Env = nil
		}), "Closed: QA environment torn down: expired"},
		{"environment back since", with(closedByTeardownView("tag-deleted"), func(v *promote.BuildView) {
			v.Env.Teardown = ""
			v.Build.Error = "QA environment torn down: <tag-deleted>"
		}), "Closed: QA environment torn down: &lt;tag-deleted&gt;"},
		{"no reason anywhere", with(closedByTeardownView("expired"), func(v *promote.BuildView) {
			v.Env, v.Build.Error = nil, ""
		}), "Closed: QA environment torn down"},
	}
	for _, tt := range tests {
		for _, role := range []promote.MessageRole{promote.MessageChannel, promote.MessageOwner, promote.MessageQA} {
			t.Run(tt.name+"/"+string(role), func(t *testing.T) {
				m := Render(post(role, "UQA1", tt.view))
				out := string(encode(t, decode(t, m.Blocks)))
				if !strings.Contains(out, tt.want) || !strings.Contains(m.Text, tt.want) {
					t.Errorf("message does not say %q:\n%s\n%s", tt.want, m.Text, out)
				}
				if strings.Contains(strings.ToLower(out+m.Text), "closed by") {
					t.Errorf("message names someone who closed it:\n%s", out)
				}
				if hasActions(t, m) || len(buttons(t, m)) > 0 {
					t.Errorf("has buttons:\n%s", out)
				}
				assertInert(t, tt.name, messageJSON(m))
			})
		}
	}
	// An owner's close reads as it did.
	for _, role := range []promote.MessageRole{promote.MessageChannel, promote.MessageOwner, promote.MessageQA} {
		m := Render(post(role, "UQA1", envView(promote.StateClosed, nil)))
		if !strings.Contains(m.Text, closedByOwner) || strings.Contains(m.Text, "torn down") {
			t.Errorf("%s: an owner's close says %q", role, m.Text)
		}
	}
}

// buttonIDs are the action ids of m's buttons, in order.
func buttonIDs(t *testing.T, m Message) []string {
	var ids []string
	for _, b := range buttons(t, m) {
		ids = append(ids, b["action_id"].(string))
	}
	return ids
}

// TestTeardownButtonWhereItBelongs: Tear down is in the owners' DM of a
// build whose QA environment lives and was committed to, unless the build
// was superseded or closed by a teardown, and nowhere else; the message's
// other buttons stay as they are.
func TestTeardownButtonWhereItBelongs(t *testing.T) {
	envs := map[string]func(promote.BuildView) promote.BuildView{
		"no environment": func(v promote.BuildView) promote.BuildView { return v },
		"live": func(v promote.BuildView) promote.BuildView {
			v.Env, v.TTL = testEnv(v.Build), testTTL
			return v
		},
		"live, kept": func(v promote.BuildView) promote.BuildView {
			v.Env, v.TTL = testEnv(v.Build), testTTL
			v.Env.WarnedAt = v.Env.ActiveAt.Add(-time.Hour)
			return v
		},
		"live, not committed": func(v promote.BuildView) promote.BuildView {
			v.Env, v.TTL = testEnv(v.Build), testTTL
			v.Build.QACommit = ""
			return v
		},
		"torn down": func(v promote.BuildView) promote.BuildView {
			v.Env, v.TTL = testEnv(v.Build), testTTL
			tornDown("expired")(v.Env)
			return v
		},
		"back after closing the build": func(v promote.BuildView) promote.BuildView {
			v.Env, v.TTL = testEnv(v.Build), testTTL
			if v.Build.State == promote.StateClosed {
				v.Build.ClosedBy, v.Build.Error = "", "QA environment torn down: expired"
			}
			return v
		},
	}
	roles := []promote.MessageRole{promote.MessageChannel, promote.MessageOwner, promote.MessageQA,
		promote.MessageProduction, promote.MessageRollback, promote.MessageExpiry}
	for _, s := range append(promote.States, promote.StateRolledBack) {
		for name, env := range envs {
			for _, role := range roles {
				t.Run(string(s)+"/"+name+"/"+string(role), func(t *testing.T) {
					base := rollbackView(s, nil)
					v := env(base)
					b := v.Build
					want := role == promote.MessageOwner && v.Env != nil && v.Env.Live() && b.QACommit != "" &&
						s != promote.StateSuperseded && !(s == promote.StateClosed && b.ClosedBy == "")
					got := buttonIDs(t, Render(post(role, "UOWN1", v)))
					if has := slices.Contains(got, ActionQATeardown); has != want {
						t.Fatalf("Tear down button: %v, want %v (buttons %v)", has, want, got)
					}
					if role != promote.MessageOwner || v.Env == nil || b.ClosedBy != base.Build.ClosedBy {
						return
					}
					v.Env = nil
					others := buttonIDs(t, Render(post(role, "UOWN1", v)))
					if want {
						others = append(others, ActionQATeardown)
					}
					if !slices.Equal(got, others) {
						t.Errorf("buttons %v, want %v", got, others)
					}
				})
			}
		}
	}
}

func TestTeardownConfirms(t *testing.T) {
	tests := []struct {
		name string
		view promote.BuildView
		want string
	}{
		{"with its URL", envView(promote.StateQAReady, nil),
			"Remove qa/branch-feature-login (https://feature-login.branch.hello.example.com) and close its builds?"},
		{"the environment's name and URL", envView(promote.StateApproved, func(e *promote.Environment) {
			e.Name, e.URL = "qa/branch-feature-login-2", "https://login-2.example.com"
		}), "Remove qa/branch-feature-login-2 (https://login-2.example.com) and close its builds?"},
		{"no URL", with(envView(promote.StatePromoted, func(e *promote.Environment) { e.URL = "" }),
			func(v *promote.BuildView) { v.Build.URL = "" }), "Remove qa/branch-feature-login and close its builds?"},
		{"hostile", envView(promote.StateRejected, func(e *promote.Environment) { e.Name, e.URL = hostile, hostile }),
			"Remove " + escape(hostile) + " (" + escape(hostile) + ") and close its builds?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var btn map[string]any
			for _, b := range buttons(t, Render(post(promote.MessageOwner, "UOWN1", tt.view))) {
				if b["action_id"] == ActionQATeardown {
					btn = b
				}
			}
			if btn == nil {
				t.Fatal("no Tear down button")
			}
			if btn["value"] != buildID || btn["style"] != "danger" {
				t.Errorf("button value %v style %v, want %s danger", btn["value"], btn["style"], buildID)
			}
			c, ok := btn["confirm"].(map[string]any)
			if !ok {
				t.Fatalf("no confirmation dialog: %v", btn)
			}
			text := func(k string) any { return c[k].(map[string]any)["text"] }
			if text("text") != tt.want || text("title") != "Tear down the QA environment?" ||
				text("confirm") != "Tear down" || text("deny") != "Cancel" || c["style"] != "danger" {
				t.Errorf("confirmation %v, want text %q", c, tt.want)
			}
		})
	}
}

func TestExpiryMessage(t *testing.T) {
	const (
		about = "`qa/branch-feature-login` of Hello Service " +
			"(<https://feature-login.branch.hello.example.com|feature-login.branch.hello.example.com>, " +
			"`registry.example.com/acme/hello:1.4.0`)"
		idleSince = "<!date^1795435200^{date_short_pretty} {time}|2026-11-23T12:00:00Z>" // ActiveAt, t0+2h
		expires   = "<!date^1795694400^{date_short_pretty} {time}|2026-11-26T12:00:00Z>" // ActiveAt+72h
	)
	tests := []struct {
		name     string
		view     promote.BuildView
		want     string // the first section
		wantText string
		keep     bool
	}{
		{"warned", envView(promote.StateQAReady, warned),
			":hourglass: " + about + " has been idle since " + idleSince + " and will be torn down " + expires +
				" unless someone keeps it.",
			"qa/branch-feature-login of Hello Service has been idle and will be torn down unless someone keeps it", true},
		{"warned, on a build since approved", envView(promote.StateApproved, warned),
			":hourglass: " + about + " has been idle since " + idleSince + " and will be torn down " + expires +
				" unless someone keeps it.",
			"qa/branch-feature-login of Hello Service has been idle and will be torn down unless someone keeps it", true},
		{"kept since the warning", envView(promote.StateQAReady, func(e *promote.Environment) {
			e.WarnedAt = e.ActiveAt.Add(-time.Hour)
		}), about + "\n:white_check_mark: Kept by activity — expires " + expires,
			"qa/branch-feature-login of Hello Service: kept by activity", false},
		{"kept, the warning forgotten", envView(promote.StateQAReady, func(e *promote.Environment) {
			e.WarnedAt = time.Time{}
		}), about + "\n:white_check_mark: Kept by activity — expires " + expires,
			"qa/branch-feature-login of Hello Service: kept by activity", false},
		{"kept, TTL turned off", with(envView(promote.StateQAReady, nil), func(v *promote.BuildView) { v.TTL = 0 }),
			about + "\n:white_check_mark: Kept by activity — it no longer expires",
			"qa/branch-feature-login of Hello Service: kept by activity", false},
		{"warned, TTL turned off since", with(envView(promote.StateQAReady, warned), func(v *promote.BuildView) { v.TTL = 0 }),
			about + "\n:white_check_mark: No longer expires: projects[].qaTTL is off",
			"qa/branch-feature-login of Hello Service: no longer expires", false},
		{"torn down for expiry", envView(promote.StateClosed, func(e *promote.Environment) {
			warned(e)
			tornDown("expired")(e)
		}), about + "\n:wastebasket: Torn down: expired <!date^1795446000^{date_short_pretty} {time}|2026-11-23T15:00:00Z>",
			"qa/branch-feature-login of Hello Service: torn down (expired)", false},
		{"torn down by an owner", envView(promote.StateClosed, func(e *promote.Environment) {
			warned(e)
			tornDown("by Grace <slack:UOWN1>")(e)
			e.TornDownAt = time.Time{}
		}), about + "\n:wastebasket: Torn down: by <@UOWN1>",
			"qa/branch-feature-login of Hello Service: torn down (by <@UOWN1>)", false},
		{"the environment's newer image and URL", envView(promote.StateQAReady, func(e *promote.Environment) {
			warned(e)
			e.Image, e.URL = "registry.example.com/acme/hello:1.5.0", "http://login.qa.example.com/app/"
		}), ":hourglass: `qa/branch-feature-login` of Hello Service (<http://login.qa.example.com/app/|login.qa.example.com/app>, " +
			"`registry.example.com/acme/hello:1.5.0`) has been idle since " + idleSince + " and will be torn down " +
			expires + " unless someone keeps it.",
			"qa/branch-feature-login of Hello Service has been idle and will be torn down unless someone keeps it", true},
		{"no URL", with(envView(promote.StateQAReady, func(e *promote.Environment) { warned(e); e.URL = "" }),
			func(v *promote.BuildView) { v.Build.URL = "" }),
			":hourglass: `qa/branch-feature-login` of Hello Service (`registry.example.com/acme/hello:1.4.0`) has been idle since " +
				idleSince + " and will be torn down " + expires + " unless someone keeps it.",
			"qa/branch-feature-login of Hello Service has been idle and will be torn down unless someone keeps it", true},
	}
	for _, tt := range tests {
		for _, recipient := range []string{"UOWN1", "UQA1"} {
			t.Run(tt.name+"/"+recipient, func(t *testing.T) {
				m := Render(post(promote.MessageExpiry, recipient, tt.view))
				texts := blockTexts(t, m)
				if len(texts) == 0 || texts[0] != tt.want {
					t.Errorf("first section\n%q\nwant\n%q", texts, tt.want)
				}
				if m.Text != tt.wantText {
					t.Errorf("text %q, want %q", m.Text, tt.wantText)
				}
				ids := buttonIDs(t, m)
				if !tt.keep {
					if len(ids) > 0 || hasActions(t, m) {
						t.Errorf("buttons %v, want none", ids)
					}
					return
				}
				bs := buttons(t, m)
				if len(bs) != 1 || bs[0]["action_id"] != ActionQAKeep || bs[0]["value"] != buildID ||
					bs[0]["style"] != "primary" || bs[0]["text"].(map[string]any)["text"] != "Keep" ||
					bs[0]["confirm"] != nil {
					t.Errorf("buttons %v, want one primary Keep of %s", bs, buildID)
				}
				if !slices.Contains(texts, "*Keep* counts as activity: its 3 d idle clock (projects[].qaTTL) starts again.") {
					t.Errorf("does not say what Keep does: %q", texts)
				}
			})
		}
	}
	// Without an environment in the view, the build's facts and no button.
	if m := Render(post(promote.MessageExpiry, "UQA1", testView(promote.StateQAReady))); len(buttons(t, m)) > 0 ||
		m.Text != "registry.example.com/acme/hello:1.4.0 (qa-ready)" {
		t.Errorf("expiry without an environment: %q, %d buttons", m.Text, len(buttons(t, m)))
	}
}

func TestSpan(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "under a minute", -time.Hour: "under a minute", 59 * time.Second: "under a minute",
		time.Minute: "1 min", 59*time.Minute + 59*time.Second: "59 min", time.Hour: "1 h",
		47*time.Hour + 59*time.Minute: "47 h", 48 * time.Hour: "2 d", testTTL: "3 d", 30 * 24 * time.Hour: "30 d",
	} {
		if got := span(d); got != want {
			t.Errorf("span(%v) = %q, want %q", d, got, want)
		}
	}
}
