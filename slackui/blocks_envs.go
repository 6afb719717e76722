package slackui

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/promotebot/promotebot/promote"
)

// maxEnvLines is how many environments /promote envs lists; the rest are
// counted.
const maxEnvLines = promote.ListedEnvironments

// EnvironmentsMessage answers `/promote envs <project>`: each live QA
// environment, idle longest first, with its target, image, age, last
// activity, URL and expiry, as of now.
func EnvironmentsMessage(v promote.EnvironmentsView, now time.Time) Message {
	name := projectName(promote.BuildView{Project: v.Project})
	if name == "" {
		name = "Unknown project"
	}
	var d draft
	d.add(slack.NewHeaderBlock(pt(escapeClip(oneLine(name), maxHeaderText), maxHeaderText)))
	if len(v.Environments) == 0 {
		d.section("No QA environments of " + escapeClip(oneLine(name), maxInline) + ".")
		d.text = "No QA environments of " + plain(name, maxInline) + "."
		return d.message()
	}
	shown := v.Environments[:min(len(v.Environments), maxEnvLines)]
	lines := make([]string, 0, len(shown))
	for _, e := range shown {
		lines = append(lines, envLine(e, v.TTL, now))
	}
	d.bullets("*QA environments*, idle longest first", lines)
	total := max(v.Total, len(v.Environments)) // Total counts those not listed
	var more string
	if n := total - len(shown); n > 0 {
		more = fmt.Sprintf("…and %d more", n)
	}
	ttl := "No projects[].qaTTL: an environment stays until its branch or tag is deleted or an owner tears it down."
	if v.TTL > 0 {
		ttl = "An environment idle for " + span(v.TTL) + " is torn down (projects[].qaTTL), unless someone keeps it."
	}
	d.context(more, ttl)
	d.text = plain(name, maxInline) + ": " + countEnvs(total)
	return d.message()
}

// envLine is one environment of /promote envs: "`qa/<env>` (branch
// `<target>`) · `<image>` · age 3 d · last activity 5 h ago · <url> ·
// expires in 2 d".
func envLine(e promote.Environment, ttl time.Duration, now time.Time) string {
	parts := []string{code(e.Name) + " (" + kindTarget(e.Kind, e.Target) + ")", code(e.Image)}
	if !e.CreatedAt.IsZero() {
		parts = append(parts, "age "+span(now.Sub(e.CreatedAt)))
	}
	if !e.ActiveAt.IsZero() {
		parts = append(parts, "last activity "+span(now.Sub(e.ActiveAt))+" ago")
	}
	if u := urlRef(e.URL); u != "" {
		parts = append(parts, u)
	}
	switch exp := e.Expires(ttl); {
	case exp.IsZero():
		parts = append(parts, "never expires")
	case exp.After(now):
		parts = append(parts, "expires in "+span(exp.Sub(now)))
	default:
		parts = append(parts, "expired, teardown due")
	}
	return strings.Join(parts, " · ")
}

// bullets adds a title and one bullet per line in sections, as many lines
// to a section as fit Slack's limit on its text.
func (d *draft) bullets(title string, lines []string) {
	text := title
	for _, l := range lines {
		l = "• " + clip(l, maxSectionText-2)
		if utf8.RuneCountInString(text)+1+utf8.RuneCountInString(l) > maxSectionText {
			d.section(text)
			text = l
			continue
		}
		text += "\n" + l
	}
	d.section(text)
}
