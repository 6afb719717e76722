package slackui

import (
	"strings"

	"github.com/slack-go/slack"

	"github.com/promotebot/promotebot/promote"
)

// closedByTeardown reports whether the build was closed by the teardown of
// its QA environment rather than by an owner: closed, by no one.
func closedByTeardown(b promote.Build) bool {
	return b.State == promote.StateClosed && b.ClosedBy == ""
}

// teardownClosed is "Closed: QA environment torn down (<reason>)", mrkdwn
// also fit for the fallback text: the reason the environment keeps while
// it is torn down, else what the domain wrote in the build's error.
func teardownClosed(v promote.BuildView) string {
	if e := v.Env; e != nil && !e.Live() {
		return "Closed: QA environment torn down (" + teardownReason(e.Teardown) + ")"
	}
	if msg := strings.TrimSpace(v.Build.Error); msg != "" {
		return "Closed: " + prose(msg, maxShortReason)
	}
	return "Closed: QA environment torn down"
}

// teardownReason shows why an environment was torn down ("branch-deleted",
// "tag-deleted", "expired", or "by <name> <slack:U…>"), escaped; the
// person of "by …" is mentioned when their id is a Slack user's.
func teardownReason(r string) string {
	r = strings.TrimSpace(oneLine(r))
	if rest, ok := strings.CutPrefix(r, "by "); ok && strings.HasSuffix(rest, ">") {
		if i := strings.LastIndex(rest, "<slack:"); i >= 0 {
			if id := rest[i+len("<slack:") : len(rest)-1]; slackUser(id) {
				return "by " + mention(id)
			}
		}
	}
	if r == "" {
		return "no reason given"
	}
	return escapeClip(r, maxShortReason)
}

// slackUser reports whether id is a Slack user's id (U… or W…).
func slackUser(id string) bool {
	if len(id) < 2 || (id[0] != 'U' && id[0] != 'W') {
		return false
	}
	for _, r := range id {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}

// teardownButton is the owners' Tear down button of a build whose QA
// environment lives and was committed to, or nil; it asks to confirm,
// naming the environment and its URL. A superseded build has none (the
// newer one's message has it), nor has one the teardown closed.
func teardownButton(v promote.BuildView) *slack.ButtonBlockElement {
	b, e := v.Build, v.Env
	if e == nil || !e.Live() || b.QACommit == "" || b.State == promote.StateSuperseded || closedByTeardown(b) {
		return nil
	}
	what := plain(envName(v), 100)
	if u := envURL(v); u != "" {
		what += " (" + plain(u, 150) + ")"
	}
	return slack.NewButtonBlockElement(ActionQATeardown, b.ID, pt("Tear down QA environment", maxButtonText)).
		WithStyle(slack.StyleDanger).
		WithConfirm(slack.NewConfirmationBlockObject(
			pt("Tear down the QA environment?", maxConfirmTitle),
			pt("Remove "+what+" and close its builds?", maxConfirmText),
			pt("Tear down", maxConfirmButton),
			pt("Cancel", maxConfirmButton)).WithStyle(slack.StyleDanger))
}

// envName is the name of the build's QA environment ("qa/<env>"): the
// environment's, else the build's.
func envName(v promote.BuildView) string {
	if v.Env != nil && v.Env.Name != "" {
		return v.Env.Name
	}
	return v.Build.Environment
}

// envURL is the URL of the build's QA environment: the environment's,
// else the build's.
func envURL(v promote.BuildView) string {
	if v.Env != nil && v.Env.URL != "" {
		return v.Env.URL
	}
	return v.Build.URL
}
