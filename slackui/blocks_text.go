package slackui

import (
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/slack-go/slack"
)

// Slack rejects a message whose parts are longer than these, so every text is
// cut to fit before it is sent.
const (
	maxSectionText   = 3000 // a section's text, and the message's fallback text
	maxFieldText     = 2000 // a section field, a context element
	maxButtonText    = 75
	maxConfirmTitle  = 100
	maxConfirmText   = 300
	maxConfirmButton = 30
	maxModalTitle    = 24
	maxURL           = 3000
	maxInline        = 250  // an image, a target, an environment name
	maxReason        = 500  // a QA member's reason; the modal allows as much
	maxShortReason   = 200  // a reason quoted in a context line
	maxErrorText     = 1500 // a failure, in a code block
	maxPlainError    = 300  // a failure in the fallback text
)

// escape makes untrusted text inert in Slack mrkdwn: & < and > are the only
// characters Slack decodes, and without < nothing can mention, link or ping.
func escape(s string) string {
	if !strings.ContainsAny(s, "&<>") {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		b.WriteString(escapeRune(r))
	}
	return b.String()
}

func escapeRune(r rune) string {
	switch r {
	case '&':
		return "&amp;"
	case '<':
		return "&lt;"
	case '>':
		return "&gt;"
	}
	return string(r)
}

// escapeClip escapes s and cuts it so that the escaped text has at most n
// characters, never inside an entity; a cut text ends with "…".
func escapeClip(s string, n int) string {
	e := escape(s)
	if utf8.RuneCountInString(e) <= n {
		return e
	}
	var b strings.Builder
	count := 0
	for _, r := range s {
		piece := escapeRune(r)
		w := utf8.RuneCountInString(piece)
		if count+w > n-1 {
			break
		}
		b.WriteString(piece)
		count += w
	}
	return b.String() + "…"
}

// clip is the last guard on composed mrkdwn: it cuts s to n characters
// without leaving half a link, mention, entity or code block.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	cut := string([]rune(s)[:n-4])
	if i := strings.LastIndexByte(cut, '<'); i > strings.LastIndexByte(cut, '>') {
		cut = cut[:i]
	}
	if i := strings.LastIndexByte(cut, '&'); i > strings.LastIndexByte(cut, ';') {
		cut = cut[:i]
	}
	if strings.Count(cut, "```")%2 == 1 {
		return cut + "…```"
	}
	return cut + "…"
}

// oneLine turns control characters (newlines, tabs) into spaces, for text
// that must stay on its line: a code span, a context line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// code shows an identifier (image, target, environment) as inline code, so
// that "*bold*" or "_x_" in a branch name is shown as typed.
func code(s string) string {
	if s == "" {
		return "_unknown_"
	}
	return codeSpan(s, maxInline)
}

// codeSpan is s as inline code, escaped, on one line and cut to n
// characters.
func codeSpan(s string, n int) string {
	s = strings.ReplaceAll(oneLine(s), "`", "ˋ")
	return "`" + escapeClip(s, n) + "`"
}

// codeBlock shows a failure verbatim, in a preformatted block.
func codeBlock(s string) string {
	s = strings.TrimSpace(strings.ReplaceAll(s, "```", "ˋˋˋ"))
	if s == "" {
		s = "no reason given"
	}
	return "```" + escapeClip(s, maxErrorText) + "```"
}

// plain is untrusted text for the fallback Text: escaped, cut, on one line.
func plain(s string, n int) string {
	return escapeClip(oneLine(s), n)
}

// prose is untrusted free text (a reason) inside mrkdwn: escaped, cut, on
// one line.
func prose(s string, n int) string {
	return escapeClip(strings.TrimSpace(oneLine(s)), n)
}

// mention refers to a Slack user (U…, W…) or user group (S…). An id that is
// not one is shown as escaped text rather than trusted.
func mention(id string) string {
	if id == "" {
		return "someone"
	}
	for _, r := range id {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return escapeClip(oneLine(id), maxInline)
		}
	}
	if strings.HasPrefix(id, "S") {
		return "<!subteam^" + id + ">"
	}
	return "<@" + id + ">"
}

// mentions joins mentions of ids with commas.
func mentions(ids []string) string {
	ms := make([]string, 0, len(ids))
	for _, id := range ids {
		ms = append(ms, mention(id))
	}
	return strings.Join(ms, ", ")
}

// webURL reports whether u is an absolute http or https URL Slack can link.
func webURL(u string) bool {
	if len(u) > maxURL || strings.ContainsAny(u, " \t\r\n<>") {
		return false
	}
	p, err := url.Parse(u)
	if err != nil {
		return false
	}
	return (p.Scheme == "http" || p.Scheme == "https") && p.Host != ""
}

// link is label (already mrkdwn-safe) linked to u, or label alone when u is
// not a web URL.
func link(u, label string) string {
	if !webURL(u) {
		return label
	}
	return "<" + escape(strings.ReplaceAll(u, "|", "%7C")) + "|" + label + ">"
}

// when formats t in each reader's own time zone, with RFC 3339 as the
// fallback; "" for the zero time.
func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return "<!date^" + strconv.FormatInt(t.Unix(), 10) + "^{date_short_pretty} {time}|" +
		t.UTC().Format(time.RFC3339) + ">"
}

// spaceWhen is when(t) after a space, or "".
func spaceWhen(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return " " + when(t)
}

// shortSHA abbreviates a commit id to 7 characters, as git does.
func shortSHA(sha string) string {
	if len(sha) <= 7 {
		return sha
	}
	for _, r := range sha {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return sha
		}
	}
	return sha[:7]
}

// commitRef links a commit by its short id, or shows the id as code.
func commitRef(u, sha string) string {
	if sha == "" && webURL(u) {
		return link(u, "commit")
	}
	if sha == "" {
		return ""
	}
	if webURL(u) {
		return link(u, escapeClip(oneLine(shortSHA(sha)), maxInline))
	}
	return code(shortSHA(sha))
}

// prRef links a pull request as "#n" when its URL ends with /pull/n.
func prRef(pr string) string {
	if pr == "" {
		return ""
	}
	if !webURL(pr) {
		return code(pr)
	}
	label := "pull request"
	parts := strings.Split(strings.TrimRight(pr, "/"), "/")
	if n := len(parts); n >= 2 && parts[n-2] == "pull" {
		if _, err := strconv.Atoi(parts[n-1]); err == nil {
			label = "#" + parts[n-1]
		}
	}
	return link(pr, label)
}

// md is a mrkdwn text object. Verbatim, so that Slack does not turn bare
// names or URLs in untrusted text into mentions or links; the links and
// mentions this package writes are explicit.
func md(s string, n int) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, clip(s, n), false, true)
}

// pt is a plain-text object, cut to n characters.
func pt(s string, n int) *slack.TextBlockObject {
	if utf8.RuneCountInString(s) > n {
		s = string([]rune(s)[:n-1]) + "…"
	}
	return slack.NewTextBlockObject(slack.PlainTextType, s, true, false)
}
