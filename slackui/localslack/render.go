package localslack

import (
	"encoding/json"
	"html"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Block Kit, as much of it as promotebot sends, decoded leniently: a field
// of an unexpected shape is left out rather than failing the message.
type textObj struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type confirmObj struct {
	Title   *textObj `json:"title"`
	Text    *textObj `json:"text"`
	Confirm *textObj `json:"confirm"`
	Deny    *textObj `json:"deny"`
}

type element struct {
	Type        string          `json:"type"`
	Text        json.RawMessage `json:"text"` // a text object for a button, a string for a context element
	ActionID    string          `json:"action_id"`
	Value       string          `json:"value"`
	URL         string          `json:"url"`
	Style       string          `json:"style"`
	Confirm     *confirmObj     `json:"confirm"`
	AltText     string          `json:"alt_text"`
	Placeholder *textObj        `json:"placeholder"`
	Multiline   bool            `json:"multiline"`
	MaxLength   int             `json:"max_length"`
}

type block struct {
	Type      string    `json:"type"`
	BlockID   string    `json:"block_id"`
	Text      *textObj  `json:"text"`
	Fields    []textObj `json:"fields"`
	Accessory *element  `json:"accessory"`
	Elements  []element `json:"elements"`
	Element   *element  `json:"element"`
	Label     *textObj  `json:"label"`
	Optional  bool      `json:"optional"`
}

// buttonText is a button's label.
func (e element) buttonText() string {
	var t textObj
	if json.Unmarshal(e.Text, &t) == nil {
		return t.Text
	}
	return ""
}

// asText is a context element that is a text object.
func (e element) asText() (textObj, bool) {
	var s string
	if e.Type != "mrkdwn" && e.Type != "plain_text" || json.Unmarshal(e.Text, &s) != nil {
		return textObj{}, false
	}
	return textObj{Type: e.Type, Text: s}, true
}

// decodeBlocks reads a blocks array one block at a time, so that one odd
// block does not hide the others.
func decodeBlocks(raw json.RawMessage) []block {
	var items []json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &items) != nil {
		return nil
	}
	out := make([]block, 0, len(items))
	for _, it := range items {
		var b block
		if json.Unmarshal(it, &b) != nil {
			b = block{Type: "?"}
		}
		out = append(out, b)
	}
	return out
}

// form is what a button needs to post a click: who views, where the message is.
type form struct {
	CSRF, As, Channel, TS string
}

// renderer turns Block Kit into HTML. Every piece of text it writes goes
// through esc; tags and attribute names are its own.
type renderer struct {
	name func(kind, id string) string // display names of mentions
	now  time.Time                    // for "today", and the reader's time zone
	b    strings.Builder
}

func esc(s string) string { return html.EscapeString(s) }

// unentity decodes the three entities Slack's text uses.
func unentity(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
}

// blocks writes a message's blocks; f is nil where buttons cannot be clicked.
func (r *renderer) blocks(bs []block, f *form) {
	for _, b := range bs {
		switch b.Type {
		case "section":
			r.b.WriteString(`<div class="section">`)
			if b.Text != nil {
				r.b.WriteString(`<div class="text">`)
				r.text(*b.Text)
				r.b.WriteString(`</div>`)
			}
			if len(b.Fields) > 0 {
				r.b.WriteString(`<div class="fields">`)
				for _, t := range b.Fields {
					r.b.WriteString(`<div>`)
					r.text(t)
					r.b.WriteString(`</div>`)
				}
				r.b.WriteString(`</div>`)
			}
			if b.Accessory != nil && b.Accessory.Type == "button" {
				r.b.WriteString(`<div class="accessory">`)
				r.button(*b.Accessory, f)
				r.b.WriteString(`</div>`)
			}
			r.b.WriteString(`</div>`)
		case "context":
			r.b.WriteString(`<div class="context">`)
			for _, e := range b.Elements {
				if t, ok := e.asText(); ok {
					r.b.WriteString(`<span>`)
					r.text(t)
					r.b.WriteString(`</span>`)
				}
			}
			r.b.WriteString(`</div>`)
		case "actions":
			r.b.WriteString(`<div class="actions">`)
			for _, e := range b.Elements {
				if e.Type == "button" {
					r.button(e, f)
				}
			}
			r.b.WriteString(`</div>`)
		case "header":
			r.b.WriteString(`<h4>`)
			if b.Text != nil {
				r.b.WriteString(esc(unentity(b.Text.Text)))
			}
			r.b.WriteString(`</h4>`)
		case "divider":
			r.b.WriteString(`<hr>`)
		case "input":
			r.input(b, nil)
		default:
			r.b.WriteString(`<div class="context">[` + esc(b.Type) + ` block]</div>`)
		}
	}
}

// text writes a text object.
func (r *renderer) text(t textObj) {
	if t.Type == "mrkdwn" {
		r.mrkdwn(t.Text)
		return
	}
	r.b.WriteString(strings.ReplaceAll(esc(unentity(t.Text)), "\n", "<br>"))
}

// button writes a link button, or a form whose submit posts the click.
func (r *renderer) button(e element, f *form) {
	label := esc(unentity(e.buttonText()))
	class := "btn"
	if e.Style == "primary" || e.Style == "danger" {
		class += " " + e.Style
	}
	if e.URL != "" {
		if webURL(e.URL) {
			r.b.WriteString(`<a class="` + class + `" href="` + esc(e.URL) + `" target="_blank" rel="noopener noreferrer">` +
				label + ` ↗</a>`)
		} else {
			r.b.WriteString(`<span class="` + class + `">` + label + `</span>`)
		}
		return
	}
	confirm := ""
	if c := e.Confirm; c != nil {
		parts := []string{}
		for _, t := range []*textObj{c.Title, c.Text} {
			if t != nil && t.Text != "" {
				parts = append(parts, unentity(t.Text))
			}
		}
		confirm = ` data-confirm="` + esc(strings.Join(parts, "\n\n")) + `"`
	}
	data := ` data-action="` + esc(e.ActionID) + `" data-value="` + esc(e.Value) + `"`
	if f == nil {
		r.b.WriteString(`<button type="button" class="` + class + `" disabled title="open the page as a person to click"` +
			data + `>` + label + `</button>`)
		return
	}
	r.b.WriteString(`<form class="act" method="post" action="/click">`)
	for _, kv := range [][2]string{{"csrf", f.CSRF}, {"as", f.As}, {"channel", f.Channel}, {"ts", f.TS},
		{"action_id", e.ActionID}, {"value", e.Value}} {
		r.b.WriteString(`<input type="hidden" name="` + kv[0] + `" value="` + esc(kv[1]) + `">`)
	}
	r.b.WriteString(`<button type="submit" class="` + class + `"` + data + confirm + `>` + label + `</button></form>`)
}

// input writes a modal's plain-text input as a textarea or a text field,
// with the error a refused submission gave it.
func (r *renderer) input(b block, errs map[string]string) {
	r.b.WriteString(`<label class="input">`)
	if b.Label != nil {
		r.b.WriteString(`<b>` + esc(unentity(b.Label.Text)) + `</b>`)
	}
	if b.Optional {
		r.b.WriteString(` <small>(optional)</small>`)
	}
	if e := b.Element; e != nil && e.Type == "plain_text_input" {
		name := esc("v." + b.BlockID + "." + e.ActionID)
		attrs := ` name="` + name + `"`
		if e.Placeholder != nil {
			attrs += ` placeholder="` + esc(unentity(e.Placeholder.Text)) + `"`
		}
		if e.MaxLength > 0 {
			attrs += ` maxlength="` + strconv.Itoa(e.MaxLength) + `"`
		}
		if !b.Optional {
			attrs += ` required`
		}
		if e.Multiline {
			r.b.WriteString(`<textarea rows="3"` + attrs + `></textarea>`)
		} else {
			r.b.WriteString(`<input type="text"` + attrs + `>`)
		}
	} else {
		r.b.WriteString(` <small>[unsupported input]</small>`)
	}
	if msg := errs[b.BlockID]; msg != "" {
		r.b.WriteString(`<span class="error">`)
		r.mrkdwn(msg)
		r.b.WriteString(`</span>`)
	}
	r.b.WriteString(`</label>`)
}

// mrkdwn writes Slack's mrkdwn: code blocks, then inline formatting.
func (r *renderer) mrkdwn(s string) {
	for {
		i := strings.Index(s, "```")
		if i < 0 {
			break
		}
		j := strings.Index(s[i+3:], "```")
		if j < 0 {
			break
		}
		r.inline(s[:i], true)
		r.b.WriteString(`<pre>` + esc(unentity(s[i+3:i+3+j])) + `</pre>`)
		s = s[i+3+j+3:]
	}
	r.inline(s, true)
}

// inline writes text with *bold*, _italic_, ~strike~, `code`, <links>,
// mentions, emoji and line breaks; links only where links may be.
func (r *renderer) inline(s string, links bool) {
	plain := 0 // start of the text not yet written
	flush := func(end int) {
		r.b.WriteString(esc(unentity(s[plain:end])))
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\n':
			flush(i)
			r.b.WriteString("<br>")
			i++
			plain = i
			continue
		case c == '<':
			if end := strings.IndexByte(s[i:], '>'); end > 0 {
				flush(i)
				r.control(s[i+1:i+end], links)
				i += end + 1
				plain = i
				continue
			}
		case c == '`':
			if end := closing(s, i, '`'); end > 0 {
				flush(i)
				r.b.WriteString(`<code>` + esc(unentity(s[i+1:end])) + `</code>`)
				i = end + 1
				plain = i
				continue
			}
		case c == '*' || c == '_' || c == '~':
			if end := closing(s, i, c); end > i+1 && wordStart(s, i) && wordEnd(s, end) &&
				s[i+1] != ' ' && s[end-1] != ' ' {
				flush(i)
				tag := map[byte]string{'*': "b", '_': "i", '~': "s"}[c]
				r.b.WriteString("<" + tag + ">")
				r.inline(s[i+1:end], links)
				r.b.WriteString("</" + tag + ">")
				i = end + 1
				plain = i
				continue
			}
		case c == ':':
			if end := closing(s, i, ':'); end > i+1 {
				if e, ok := emoji[s[i+1:end]]; ok {
					flush(i)
					r.b.WriteString(e)
					i = end + 1
					plain = i
					continue
				}
			}
		}
		i++
	}
	flush(len(s))
}

// control writes what Slack writes for <…>: a mention, a date, a link.
func (r *renderer) control(c string, links bool) {
	body, label, hasLabel := strings.Cut(c, "|")
	switch {
	case strings.HasPrefix(body, "@"):
		r.b.WriteString(`<span class="mention">@` + esc(r.name("user", body[1:])) + `</span>`)
	case strings.HasPrefix(body, "#"):
		r.b.WriteString(`<span class="mention">#` + esc(r.name("channel", body[1:])) + `</span>`)
	case strings.HasPrefix(body, "!subteam^"):
		r.b.WriteString(`<span class="mention">@` + esc(strings.TrimPrefix(body, "!subteam^")) + `</span>`)
	case strings.HasPrefix(body, "!date^"):
		r.b.WriteString(`<time>` + esc(r.date(body, unentity(label))) + `</time>`)
	case strings.HasPrefix(body, "!"):
		r.b.WriteString(`<span class="mention">@` + esc(unentity(strings.TrimPrefix(body, "!"))) + `</span>`)
	default:
		u := unentity(body)
		if !hasLabel {
			label = body
		}
		if !links || !webURL(u) {
			r.inline(label, false)
			return
		}
		r.b.WriteString(`<a href="` + esc(u) + `" target="_blank" rel="noopener noreferrer">`)
		r.inline(label, false)
		r.b.WriteString(`</a>`)
	}
}

// closing is the index of the next c after s[i] on the same line, or -1.
func closing(s string, i int, c byte) int {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case c:
			return j
		case '\n':
			return -1
		}
	}
	return -1
}

// wordStart: a marker at i opens formatting only at the start of a word.
func wordStart(s string, i int) bool {
	if i == 0 {
		return true
	}
	r, _ := utf8.DecodeLastRuneInString(s[:i])
	return !unicode.IsLetter(r) && !unicode.IsDigit(r)
}

// wordEnd: a marker at i closes formatting only at the end of a word.
func wordEnd(s string, i int) bool {
	if i+1 >= len(s) {
		return true
	}
	r, _ := utf8.DecodeRuneInString(s[i+1:])
	return !unicode.IsLetter(r) && !unicode.IsDigit(r)
}

// webURL reports whether u is an absolute http(s) URL, the only links the
// page makes.
func webURL(u string) bool {
	if strings.ContainsAny(u, " \t\r\n<>\"'") {
		return false
	}
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != ""
}

// emoji are the shortcodes promotebot uses, and a few more.
var emoji = map[string]string{
	"white_check_mark": "✅", "x": "❌", "rocket": "🚀", "hourglass_flowing_sand": "⏳",
	"warning": "⚠️", "tada": "🎉", "no_entry": "⛔", "lock": "🔒", "eyes": "👀",
}
