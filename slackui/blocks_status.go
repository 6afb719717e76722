package slackui

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/promotebot/promotebot/promote"
)

// maxHeaderText is the longest text a header block takes.
const maxHeaderText = 150

// RejectModal is the dialog a QA member's Reject button opens: an optional
// reason, up to 500 characters. Its private metadata is the build id; the
// submission carries the reason under RejectReasonBlockID and
// RejectReasonActionID.
func RejectModal(buildID string, v promote.BuildView) slack.ModalViewRequest {
	b := v.Build
	input := slack.NewPlainTextInputBlockElement(
		pt("What is wrong? The owners will see this.", maxHeaderText), RejectReasonActionID).
		WithMultiline(true).
		WithMaxLength(maxReason)
	reason := slack.NewInputBlock(RejectReasonBlockID, pt("Reason", maxFieldText), nil, input).WithOptional(true)
	about := "Rejecting " + code(b.Image) + " from " + targetRef(b)
	if b.Environment != "" {
		about += " on " + code(b.Environment)
	}
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      RejectCallbackID,
		PrivateMetadata: buildID,
		Title:           pt("Reject build", maxModalTitle),
		Submit:          pt("Reject", maxModalTitle),
		Close:           pt("Cancel", maxModalTitle),
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewContextBlock("", md(about, maxFieldText)),
			reason,
		}},
	}
}

// StatusMessage answers `/promote status <project>`: what is in production,
// what is on each QA environment, and what is waiting for approvals.
func StatusMessage(s promote.StatusView) Message {
	name := projectName(promote.BuildView{Project: s.Project})
	if name == "" {
		name = "Unknown project"
	}
	var d draft
	d.add(slack.NewHeaderBlock(pt(escapeClip(oneLine(name), maxHeaderText), maxHeaderText)))

	feedback, timeout := s.Feedback, s.RolloutTimeout
	prod, prodPlain := "*Production*: nothing promoted yet", "nothing promoted yet"
	if p := s.Production; p != nil {
		prod = ":rocket: *Production*: " + code(p.Image) + statusSince(promotedAt(*p)) + " by " + mention(p.PromotedBy)
		if pr := prRef(p.PullRequest); pr != "" {
			prod += " · " + pr
		}
		prod += " · " + rolloutWord(p.Rollout.Production, feedback, timeout)
		prodPlain = "production " + plain(p.Image, maxInline)
	}
	d.section(prod)

	var envs, pending []string
	for _, v := range s.QA {
		envs = append(envs, statusEnvLine(v, feedback, timeout))
		if v.Build.State == promote.StateQAReady {
			pending = append(pending, fmt.Sprintf("%s on %s: %d of %d approvals",
				code(v.Build.Image), envRef(v.Build), v.Approved(), required(v, s)))
		}
	}
	if len(envs) == 0 {
		d.section("*QA environments*: none")
	} else {
		d.section(bulletList("*QA environments*", envs))
	}
	if len(pending) > 0 {
		d.section(bulletList("*Waiting for approvals*", pending))
	}
	d.text = plain(name, maxInline) + ": " + prodPlain + "; " + countEnvs(len(s.QA))
	return d.message()
}

// statusEnvLine is one QA environment: its name, image, state, since when,
// its rollout in a word and a link.
func statusEnvLine(v promote.BuildView, feedback bool, timeout time.Duration) string {
	b := v.Build
	line := envRef(b) + ": " + code(b.Image) + ", " + escapeClip(string(b.State), maxInline) + statusSince(b.UpdatedAt)
	if showsQARollout(b) {
		line += " · " + rolloutWord(b.Rollout.QA, feedback, timeout)
	}
	if webURL(b.URL) {
		line += " · " + link(b.URL, "open")
	}
	return line
}

// statusSince is " since <date>", or "" for the zero time.
func statusSince(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return " since " + when(t)
}

// required is the approvals a build needs, from its own project when the
// view carries it.
func required(v promote.BuildView, s promote.StatusView) int {
	if v.Project.ID != "" {
		return v.Project.RequiredApprovals
	}
	return s.Project.RequiredApprovals
}

// countEnvs is "no QA environments", "1 QA environment", "n QA environments".
func countEnvs(n int) string {
	switch n {
	case 0:
		return "no QA environments"
	case 1:
		return "1 QA environment"
	}
	return fmt.Sprintf("%d QA environments", n)
}

// bulletList is a title and one bullet per line, as many as fit a section;
// the rest are counted.
func bulletList(title string, lines []string) string {
	var b strings.Builder
	b.WriteString(title)
	const room = maxSectionText - 40 // for the "and n more" line
	for i, l := range lines {
		if utf8.RuneCountInString(b.String())+utf8.RuneCountInString(l)+3 > room {
			fmt.Fprintf(&b, "\n…and %d more", len(lines)-i)
			break
		}
		b.WriteString("\n• ")
		b.WriteString(l)
	}
	return b.String()
}
