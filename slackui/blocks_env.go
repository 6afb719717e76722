package slackui

import (
	"fmt"
	"strings"
	"time"

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

// expiryMessage is the warning, in an owner's or a QA member's DM, that
// the build's QA environment has been idle and will be torn down, with
// Keep. Once the environment was active since the warning (kept), or was
// torn down, the same message says so, without the button. A view without
// an environment shows the build's facts.
func expiryMessage(v promote.BuildView) Message {
	e := v.Env
	if e == nil {
		return factsMessage(v)
	}
	about, aboutPlain := envAbout(v)
	expires := e.Expires(v.TTL)
	var d draft
	switch {
	case !e.Live():
		reason := teardownReason(e.Teardown)
		d.text = aboutPlain + ": torn down (" + reason + ")"
		d.section(about + "\n:wastebasket: Torn down: " + reason + spaceWhen(e.TornDownAt))
	case e.ActiveAt.After(e.WarnedAt):
		d.text = aboutPlain + ": kept by activity"
		d.section(about + "\n:white_check_mark: Kept by activity — " + expiresWhen(expires))
	case expires.IsZero():
		d.text = aboutPlain + ": no longer expires"
		d.section(about + "\n:white_check_mark: No longer expires: projects[].qaTTL is off")
	default:
		d.text = aboutPlain + " has been idle and will be torn down unless someone keeps it"
		d.section(":hourglass: " + about + " has been idle" + statusSince(e.ActiveAt) +
			" and will be torn down " + when(expires) + " unless someone keeps it.")
		d.actions(slack.NewButtonBlockElement(ActionQAKeep, v.Build.ID, pt("Keep", maxButtonText)).
			WithStyle(slack.StylePrimary))
		d.context("*Keep* counts as activity: its " + span(v.TTL) + " idle clock (projects[].qaTTL) starts again.")
	}
	return d.message()
}

// envAbout is "`qa/<env>` of <project> (<url>, `<image>`)" for the build's
// QA environment, and "qa/<env> of <project>" for the fallback text.
func envAbout(v promote.BuildView) (about, text string) {
	image := v.Build.Image
	if v.Env != nil && v.Env.Image != "" {
		image = v.Env.Image
	}
	name, project := envName(v), projectName(v)
	about = code(name) + " of " + escapeClip(oneLine(project), maxInline) +
		" (" + joinNonEmpty(", ", urlRef(envURL(v)), code(image)) + ")"
	return about, plain(name, maxInline) + " of " + plain(project, maxInline)
}

// urlRef links a web URL by its host and path; anything else is shown as
// code, and nothing as "".
func urlRef(u string) string {
	switch {
	case u == "":
		return ""
	case webURL(u):
		return link(u, escapeClip(urlLabel(u), maxInline))
	}
	return code(u)
}

// expiresWhen is "expires <date>", or "it no longer expires" for the zero
// time.
func expiresWhen(t time.Time) string {
	if t.IsZero() {
		return "it no longer expires"
	}
	return "expires " + when(t)
}

// span is a duration for people, in its largest unit, rounded down: "45
// min", "5 h", "3 d"; "under a minute" below one.
func span(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "under a minute"
	case d < time.Hour:
		return fmt.Sprintf("%d min", int64(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int64(d/time.Hour))
	}
	return fmt.Sprintf("%d d", int64(d/(24*time.Hour)))
}
