package localslack

import (
	"github.com/promotebot/promotebot/slackui/fakeslack"
)

// conversation writes the conversation ch as viewer sees it, as Slack
// shows it: oldest first, the newest at the bottom, each message with its
// thread replies, and what the page told viewer in its place in time.
func (s *Slack) conversation(r *renderer, ch, viewer string) {
	var f *form
	if viewer != "" && s.canSee(viewer, ch) {
		f = &form{CSRF: s.csrf, As: viewer, Channel: ch}
	}
	var told []notice
	for _, n := range s.notices {
		if n.user == viewer && n.channel == ch {
			told = append(told, n)
		}
	}
	shown := false
	r.b.WriteString(`<div class="conv">`)
	for i, m := range s.ws.Messages() {
		for len(told) > 0 && told[0].after <= i {
			s.writeNotice(r, told[0])
			told, shown = told[1:], true
		}
		if m.Channel != ch || m.ThreadTS != "" || m.Ephemeral && m.User != viewer {
			continue
		}
		shown = true
		s.writeMessage(r, m, f)
	}
	for _, n := range told {
		shown = true
		s.writeNotice(r, n)
	}
	if !shown {
		r.b.WriteString(`<p class="empty">No messages yet.</p>`)
	}
	r.b.WriteString(`</div>`)
}

func (s *Slack) writeMessage(r *renderer, m *fakeslack.Message, f *form) {
	class := "msg"
	if m.Ephemeral {
		class += " eph"
	}
	r.b.WriteString(`<article class="` + class + `" data-ts="` + esc(m.TS) + `"><div class="meta"><b>promotebot</b> <span class="app">APP</span>`)
	r.clock(tsTime(m.TS))
	if m.Updated > 0 {
		r.b.WriteString(` <span class="edited">(edited)</span>`)
	}
	if m.Ephemeral {
		r.b.WriteString(` <span class="edited">Only visible to you</span>`)
	}
	r.b.WriteString(`</div><div class="body">`)
	var mf *form
	if f != nil {
		c := *f
		c.TS = m.TS
		mf = &c
	}
	if bs := decodeBlocks(m.Blocks); len(bs) > 0 {
		r.blocks(bs, mf)
	} else {
		r.mrkdwn(m.Text)
	}
	r.b.WriteString(`</div>`)
	var replies []*fakeslack.Message
	for _, c := range s.ws.Messages() {
		if c.Channel == m.Channel && c.ThreadTS == m.TS && (!c.Ephemeral || f != nil && c.User == f.As) {
			replies = append(replies, c)
		}
	}
	if len(replies) > 0 {
		r.b.WriteString(`<div class="replies">`)
		for _, c := range replies {
			s.writeMessage(r, c, f)
		}
		r.b.WriteString(`</div>`)
	}
	r.b.WriteString(`</article>`)
}

// writeNotice writes what the page told a person, as Slack writes its own
// ephemeral messages.
func (s *Slack) writeNotice(r *renderer, n notice) {
	r.b.WriteString(`<article class="msg eph notice"><div class="meta"><b>local Slack</b>`)
	r.clock(n.at)
	r.b.WriteString(` <span class="edited">Only visible to you</span></div><div class="body">` +
		esc(n.text) + `</div></article>`)
}
