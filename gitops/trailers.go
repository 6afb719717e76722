package gitops

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ParseTrailers returns the trailers of a commit message: its last
// paragraph, when that is not the subject's and every line of it is a
// "Key: value" trailer or the indented continuation of one; otherwise none.
// Keys are letters, digits and "-"; values are trimmed, and continuations
// joined with one space, as git does.
func ParseTrailers(msg string) []Trailer {
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
		if !ok || !isTrailerKey(key) {
			return nil
		}
		out = append(out, Trailer{Key: key, Value: strings.TrimSpace(value)})
	}
	return out
}

func isTrailerKey(k string) bool {
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

// trailerFacts is what promotebot's trailers say about a commit.
type trailerFacts struct {
	trailers                           bool // any Promotebot-* trailer
	project, env, image, build, source string
	author                             string
	approvals                          []Approval
	promotedBy                         SlackUser
	required                           int // -1: no Promotebot-Required-Approvals
	malformed                          []string
}

var (
	approvedBy = regexp.MustCompile(`^(?:([^<>]*?) )?<slack:([A-Z0-9]+)> ([^ <>]+)$`)
	promotedBy = regexp.MustCompile(`^(?:([^<>]*?) )?<slack:([A-Z0-9]+)>$`)
)

// readMeta reads promotebot's trailers. Keys compare case-insensitively, as
// git's do. A trailer that does not parse, or a second one of a kind that
// may appear once, is listed in malformed and counts for nothing.
func readMeta(trailers []Trailer) trailerFacts {
	m := trailerFacts{required: -1}
	seen := map[string]bool{}
	once := func(t Trailer, field *string) bool {
		key := strings.ToLower(t.Key)
		if seen[key] {
			m.malformed = append(m.malformed, t.Key+": "+t.Value+" (repeated)")
			return false
		}
		seen[key] = true
		*field = t.Value
		return true
	}
	for _, t := range trailers {
		key := strings.ToLower(t.Key)
		switch key {
		case "promotebot-project":
			once(t, &m.project)
		case "promotebot-environment":
			once(t, &m.env)
		case "promotebot-image":
			once(t, &m.image)
		case "promotebot-build":
			once(t, &m.build)
		case "promotebot-source":
			once(t, &m.source)
		case "promotebot-author":
			once(t, &m.author)
		case "approved-by":
			sm := approvedBy.FindStringSubmatch(t.Value)
			var at time.Time
			var err error
			if sm != nil {
				at, err = time.Parse(time.RFC3339, sm[3])
			}
			if sm == nil || err != nil {
				m.malformed = append(m.malformed, t.Key+": "+t.Value)
				continue
			}
			m.approvals = append(m.approvals, Approval{Name: sm[1], SlackID: sm[2], At: at.UTC()})
		case "promotebot-required-approvals":
			var raw string
			if !once(t, &raw) {
				continue
			}
			n, err := strconv.Atoi(strings.TrimSpace(raw))
			if err != nil || n < 0 {
				m.malformed = append(m.malformed, t.Key+": "+t.Value)
				continue
			}
			m.required = n
		case "promoted-by":
			sm := promotedBy.FindStringSubmatch(t.Value)
			if sm == nil {
				m.malformed = append(m.malformed, t.Key+": "+t.Value)
				continue
			}
			var raw string
			if once(t, &raw) {
				m.promotedBy = SlackUser{Name: sm[1], SlackID: sm[2]}
			}
		}
		if strings.HasPrefix(key, "promotebot-") {
			m.trailers = true
		}
	}
	switch {
	case !m.trailers, m.env == EnvProduction, strings.HasPrefix(m.env, "qa/"):
	case m.env == "":
		m.malformed = append(m.malformed, "no Promotebot-Environment")
	default:
		m.malformed = append(m.malformed, "Promotebot-Environment: "+m.env+" (neither production nor qa/<env>)")
	}
	return m
}

// fill copies the trailers' facts into c.
func (m trailerFacts) fill(c *Change) {
	c.Trailers, c.BotMade = true, m.build != ""
	c.Project, c.Environment, c.Image, c.Build, c.Source = m.project, m.env, m.image, m.build, m.source
	c.Approvals, c.PromotedBy, c.Malformed = m.approvals, m.promotedBy, m.malformed
	c.RequiredApprovals, c.BuildAuthor = m.required, m.author
}
