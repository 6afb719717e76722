package localslack

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// clock writes a message's time as Slack shows it beside the author: the
// time of day in the reader's zone, the whole date on hover.
func (r *renderer) clock(t time.Time) {
	if t.IsZero() {
		return
	}
	t = t.In(r.now.Location())
	r.b.WriteString(` <time class="at" datetime="` + t.Format(time.RFC3339) + `" title="` +
		esc(longDate(t)+" at "+t.Format("3:04:05 PM")) + `">` + t.Format("3:04 PM") + `</time>`)
}

// tsTime is the time a message timestamp ("1700000000.000100") stands for.
func tsTime(ts string) time.Time {
	sec, frac, _ := strings.Cut(ts, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}
	}
	us, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		us = 0
	}
	return time.Unix(s, us*1000)
}

var dateToken = regexp.MustCompile(`\{[a-z_]+\}`)

// date is what Slack shows for <!date^unix^format|fallback> (body is the
// part before "|"): format's tokens filled in with the time in the reader's
// zone, as https://api.slack.com/reference/surfaces/formatting#date-formatting
// lists them for an English-speaking reader; the fallback when a token or
// the time cannot be read.
func (r *renderer) date(body, fallback string) string {
	parts := strings.SplitN(body, "^", 4) // "!date", the time, the format, a link
	if len(parts) < 3 {
		return fallback
	}
	sec, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return fallback
	}
	t := time.Unix(sec, 0).In(r.now.Location())
	ok := true
	out := dateToken.ReplaceAllStringFunc(parts[2], func(tok string) string {
		s, known := r.dateToken(tok[1:len(tok)-1], t)
		ok = ok && known
		return s
	})
	if !ok {
		return fallback
	}
	return out
}

func (r *renderer) dateToken(tok string, t time.Time) (string, bool) {
	pretty, isPretty := strings.CutSuffix(tok, "_pretty")
	if isPretty {
		if day := r.relativeDay(t); day != "" {
			return day, true
		}
		tok = pretty
	}
	switch tok {
	case "date_num":
		return t.Format("2006-01-02"), true
	case "date":
		return t.Format("January ") + ordinal(t.Day()) + t.Format(", 2006"), true
	case "date_short":
		return t.Format("Jan 2, 2006"), true
	case "date_long":
		return longDate(t), true
	case "time":
		return t.Format("3:04 PM"), true
	case "time_secs":
		return t.Format("3:04:05 PM"), true
	}
	return "", false
}

// relativeDay is "today", "yesterday" or "tomorrow" for t, else "".
func (r *renderer) relativeDay(t time.Time) string {
	now := r.now.In(t.Location())
	day := func(t time.Time) time.Time { return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location()) }
	switch day(t).Sub(day(now)).Round(24*time.Hour) / (24 * time.Hour) {
	case 0:
		return "today"
	case -1:
		return "yesterday"
	case 1:
		return "tomorrow"
	}
	return ""
}

func longDate(t time.Time) string {
	return t.Format("Monday, January ") + ordinal(t.Day()) + t.Format(", 2006")
}

// ordinal is 1st, 2nd, 3rd, 4th, … 11th, 12th, 13th, … 21st.
func ordinal(n int) string {
	suffix := "th"
	switch {
	case n%100 >= 11 && n%100 <= 13:
	case n%10 == 1:
		suffix = "st"
	case n%10 == 2:
		suffix = "nd"
	case n%10 == 3:
		suffix = "rd"
	}
	return strconv.Itoa(n) + suffix
}
