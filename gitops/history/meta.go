package history

import (
	"strconv"
	"strings"
	"time"

	"github.com/promotebot/promotebot/gitops/trailer"
)

// trailerFacts is what promotebot's trailers say about a commit.
type trailerFacts struct {
	trailers                           bool // any Promotebot-* trailer
	project, env, image, build, source string
	author                             string
	builtAt, receivedAt                *time.Time
	rollbackOf, reason                 string
	teardown                           string
	approvals                          []ApprovedBy
	promotedBy                         SlackUser
	required                           int // -1: no Promotebot-Required-Approvals
	malformed                          []string
}

// readMeta reads promotebot's trailers. Keys compare case-insensitively, as
// git's do. A trailer that does not parse, or a second one of a kind that
// may appear once, is listed in malformed and counts for nothing.
func readMeta(trailers []trailer.Trailer) trailerFacts {
	m := trailerFacts{required: -1}
	seen := map[string]bool{}
	once := func(t trailer.Trailer, field *string) bool {
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
		case lower(trailer.Project):
			once(t, &m.project)
		case lower(trailer.Environment):
			once(t, &m.env)
		case lower(trailer.Image):
			once(t, &m.image)
		case lower(trailer.Build):
			once(t, &m.build)
		case lower(trailer.Source):
			once(t, &m.source)
		case lower(trailer.Author):
			once(t, &m.author)
		case lower(trailer.BuiltAt):
			m.builtAt = m.stamp(t, once)
		case lower(trailer.ReceivedAt):
			m.receivedAt = m.stamp(t, once)
		case lower(trailer.RollbackOf):
			once(t, &m.rollbackOf)
		case lower(trailer.Reason):
			once(t, &m.reason)
		case lower(trailer.Teardown):
			once(t, &m.teardown)
		case lower(trailer.ApprovedBy):
			name, id, at, ok := trailer.ParseApproval(t.Value)
			if !ok {
				m.malformed = append(m.malformed, t.Key+": "+t.Value)
				continue
			}
			m.approvals = append(m.approvals, ApprovedBy{Name: name, SlackID: id, At: at})
		case lower(trailer.RequiredApprovals):
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
		case lower(trailer.PromotedBy):
			name, id, ok := trailer.ParsePerson(t.Value)
			if !ok {
				m.malformed = append(m.malformed, t.Key+": "+t.Value)
				continue
			}
			var raw string
			if once(t, &raw) {
				m.promotedBy = SlackUser{Name: name, SlackID: id}
			}
		}
		if strings.HasPrefix(key, "promotebot-") {
			m.trailers = true
		}
	}
	switch {
	case !m.trailers, m.env == trailer.Production, strings.HasPrefix(m.env, "qa/"):
	case m.env == "":
		m.malformed = append(m.malformed, "no Promotebot-Environment")
	default:
		m.malformed = append(m.malformed, "Promotebot-Environment: "+m.env+" (neither production nor qa/<env>)")
	}
	return m
}

// stamp reads a trailer's RFC 3339 time, in UTC; nil when it is repeated
// or does not parse (then it is malformed).
func (m *trailerFacts) stamp(t trailer.Trailer, once func(trailer.Trailer, *string) bool) *time.Time {
	var raw string
	if !once(t, &raw) {
		return nil
	}
	at, err := time.Parse(time.RFC3339, strings.TrimSpace(raw))
	if err != nil {
		m.malformed = append(m.malformed, t.Key+": "+t.Value)
		return nil
	}
	at = at.UTC()
	return &at
}

// rollback tells whether the trailers are a production rollback's.
func (m trailerFacts) rollback() bool { return m.rollbackOf != "" && m.env == trailer.Production }

// fill copies the trailers' facts into c.
func (m trailerFacts) fill(c *Change) {
	c.Trailers, c.BotMade = true, m.build != "" || m.rollbackOf != "" || m.teardown != ""
	c.Project, c.Environment, c.Image, c.Build, c.Source = m.project, m.env, m.image, m.build, m.source
	c.RollbackOf, c.Reason, c.Teardown = m.rollbackOf, m.reason, m.teardown
	c.Approvals, c.PromotedBy, c.Malformed = m.approvals, m.promotedBy, m.malformed
	c.RequiredApprovals, c.BuildAuthor = m.required, m.author
	c.BuiltAt, c.ReceivedAt = m.builtAt, m.receivedAt
}

// lower is a trailer key as readMeta compares it: git's keys are
// case-insensitive.
func lower(key string) string { return strings.ToLower(key) }
