// Package trailer owns promotebot's commit metadata: the trailer keys, the
// one way a commit message with trailers is written (Format) and read
// (Parse), and the form a person takes in a trailer value.
package trailer

import (
	"regexp"
	"strings"
	"time"
)

// The trailer keys promotebot writes; the config repository's history is
// read by them, so they are a contract with auditors and their tools.
const (
	// Build names the build a commit belongs to.
	Build = "Promotebot-Build"
	// Project is the project id.
	Project = "Promotebot-Project"
	// Environment is "production" or "qa/<env>".
	Environment = "Promotebot-Environment"
	// Image is the image reference the commit pins.
	Image = "Promotebot-Image"
	// Source is "<kind> <target> @ <commit> <CI URL>".
	Source = "Promotebot-Source"
	// Author is who wrote the build, as CI reported it.
	Author = "Promotebot-Author"
	// BuiltAt is when CI built the image (RFC 3339), when it said.
	BuiltAt = "Promotebot-Built-At"
	// ReceivedAt is when the bot received the build from CI (RFC 3339):
	// with BuiltAt, where the lead time of a change starts.
	ReceivedAt = "Promotebot-Received-At"
	// RequiredApprovals is the project's approval policy when production changed.
	RequiredApprovals = "Promotebot-Required-Approvals"
	// ApprovedBy is one QA approval: "<name> <slack:U…> <RFC 3339 time>".
	ApprovedBy = "Approved-by"
	// PromotedBy is the owner who deployed: "<name> <slack:U…>", or a
	// name alone for the bot's own decisions (autoRollback: "promotebot").
	PromotedBy = "Promoted-by"
	// RollbackOf is the build production ran that a rollback replaced: a
	// commit carrying it puts an earlier production image back.
	RollbackOf = "Promotebot-Rollback-Of"
	// Reason is the owner's reason for a rollback, when one was given.
	Reason = "Promotebot-Reason"
	// Teardown marks the removal of a QA environment's overlay and says
	// why: "branch-deleted", "tag-deleted", "expired", or
	// "by <name> <slack:U…>" (a person's teardown, formatted by Person).
	Teardown = "Promotebot-Teardown"
)

// Production is the production environment's name in the Environment trailer.
const Production = "production"

// Trailer is one git trailer line of a commit message, such as
// "Promotebot-Build: 01J…".
type Trailer struct {
	Key, Value string
}

// Format renders a commit message: the subject, an optional body, and the
// trailers in order. Values are kept on one line whatever a caller passed
// in, so a value can never forge a trailer of its own.
func Format(subject, body string, trailers []Trailer) string {
	var b strings.Builder
	b.WriteString(strings.TrimSpace(subject))
	b.WriteString("\n")
	if body = strings.TrimSpace(body); body != "" {
		b.WriteString("\n")
		b.WriteString(body)
		b.WriteString("\n")
	}
	if len(trailers) > 0 {
		b.WriteString("\n")
		for _, t := range trailers {
			b.WriteString(t.Key)
			b.WriteString(": ")
			b.WriteString(strings.Join(strings.Fields(t.Value), " "))
			b.WriteString("\n")
		}
	}
	return b.String()
}

// Parse returns the trailers of a commit message: its last paragraph, when
// that is not the subject's and every line of it is a "Key: value" trailer
// or the indented continuation of one; otherwise none. Keys are letters,
// digits and "-"; values are trimmed, and continuations joined with one
// space, as git does.
func Parse(msg string) []Trailer {
	lines := strings.Split(strings.Trim(msg, " \t\r\n"), "\n")
	last := -1
	for i, l := range lines {
		if strings.TrimSpace(l) == "" {
			last = i
		}
	}
	if last < 0 {
		return nil // the subject alone
	}
	var out []Trailer
	for _, l := range lines[last+1:] {
		l = strings.TrimRight(l, " \t\r")
		if l[0] == ' ' || l[0] == '\t' {
			if len(out) == 0 {
				return nil
			}
			// Trimmed again: a continuation of an empty value is the value.
			tr := &out[len(out)-1]
			tr.Value = strings.TrimSpace(tr.Value + " " + strings.TrimSpace(l))
			continue
		}
		key, value, ok := strings.Cut(l, ":")
		if !ok || !isKey(key) {
			return nil
		}
		out = append(out, Trailer{Key: key, Value: strings.TrimSpace(value)})
	}
	return out
}

func isKey(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// Person formats a person for the Approved-by and Promoted-by trailers:
// "<Slack name> <slack:U…>", the name left out when unknown, the Slack part
// when there is no id (the bot itself: "promotebot"). Line breaks and angle
// brackets in a name are dropped, so a name cannot forge a trailer.
func Person(name, id string) string {
	name = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '<' || r == '>' {
			return -1
		}
		return r
	}, strings.TrimSpace(name))
	if id == "" {
		return name
	}
	if name == "" {
		return "<slack:" + id + ">"
	}
	return name + " <slack:" + id + ">"
}

// Approval formats an Approved-by value: the person and the time, in UTC.
func Approval(name, id string, at time.Time) string {
	return Person(name, id) + " " + at.UTC().Format(time.RFC3339)
}

var (
	approvedBy = regexp.MustCompile(`^(?:([^<>]*?) )?<slack:([A-Z0-9]+)> ([^ <>]+)$`)
	promotedBy = regexp.MustCompile(`^(?:([^<>]*?) )?<slack:([A-Z0-9]+)>$`)
	nameOnly   = regexp.MustCompile(`^[^<>]+$`)
)

// ParsePerson reads a value written by Person: a name without a Slack id
// has id "".
func ParsePerson(v string) (name, id string, ok bool) {
	sm := promotedBy.FindStringSubmatch(v)
	if sm == nil {
		if nameOnly.MatchString(v) {
			return v, "", true
		}
		return "", "", false
	}
	return sm[1], sm[2], true
}

// ParseApproval reads a value written by Approval.
func ParseApproval(v string) (name, id string, at time.Time, ok bool) {
	sm := approvedBy.FindStringSubmatch(v)
	if sm == nil {
		return "", "", time.Time{}, false
	}
	at, err := time.Parse(time.RFC3339, sm[3])
	if err != nil {
		return "", "", time.Time{}, false
	}
	return sm[1], sm[2], at.UTC(), true
}
