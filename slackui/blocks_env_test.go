package slackui

import (
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

// closedByTeardownView is testView's build closed by the teardown of its
// environment for reason, as the domain leaves it.
func closedByTeardownView(reason string) promote.BuildView {
	v := envView(promote.StateClosed, tornDown(reason))
	v.Build.ClosedBy = ""
	v.Build.Error = "QA environment torn down: " + reason
	v.Build.UpdatedAt = t0.Add(5 * time.Hour)
	return v
}

// envGoldenCases are the golden messages of QA environments.
func envGoldenCases() map[string]any {
	render := func(role promote.MessageRole, recipient string, v promote.BuildView) any {
		return messageJSON(Render(post(role, recipient, v)))
	}
	return map[string]any{
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
