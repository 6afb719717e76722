package localslack

import (
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/promotebot/promotebot/slackui/fakeslack"
)

//go:embed page.js
var pageJS []byte

// Page serves the local workspace's web page:
//
//	GET  /            everyone: the people, the channel, read-only
//	GET  /?as=U…      that person's direct messages and the channel
//	GET  /state?as=U… the same as JSON, polled by the page every second
//	POST /click       a button click, sent to the bot as block_actions
//	POST /submit      a modal's submit, sent to the bot as view_submission
//	POST /close       a modal's cancel
func (s *Slack) Page() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.servePage)
	mux.HandleFunc("GET /state", s.serveState)
	mux.HandleFunc("GET /page.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		if _, err := w.Write(pageJS); err != nil {
			return
		}
	})
	mux.HandleFunc("POST /click", s.serveClick)
	mux.HandleFunc("POST /submit", s.serveSubmit)
	mux.HandleFunc("POST /close", s.serveClose)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A site that points its own name at this address (DNS rebinding)
		// must not be able to read the page and click; people use an address.
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host // no port: 80
		}
		if host != "localhost" && net.ParseIP(strings.Trim(host, "[]")) == nil {
			http.Error(w, "open the page by its IP address or localhost", http.StatusMisdirectedRequest)
			return
		}
		// What the bot posts is untrusted: even if some of it escaped the
		// escaping, no script but page.js may run.
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; connect-src 'self'; "+
			"style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		mux.ServeHTTP(w, r)
	})
}

// snapshot is what the page shows one viewer, taken under the lock.
type snapshot struct {
	Viewer   Person
	People   []Person
	Channels []Channel
	Feed     template.HTML
	Modal    template.HTML
	ModalKey string
	Version  int
}

func (s *Slack) snapshot(as string) snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := snapshot{Viewer: s.people[as], People: s.sortedPeople(), Channels: slices.Clone(s.opts.Channels),
		Version: s.version}
	viewer := snap.Viewer.ID
	r := s.renderer()
	if viewer != "" {
		r.b.WriteString(`<section><h2>Direct messages with promotebot</h2>`)
		s.conversation(r, fakeslack.DMID(viewer), viewer)
		r.b.WriteString(`</section>`)
	}
	for _, c := range s.opts.Channels {
		r.b.WriteString(`<section><h2>#` + esc(c.Name) + `</h2>`)
		s.conversation(r, c.ID, viewer)
		r.b.WriteString(`</section>`)
	}
	// The renderer escapes every text it writes; the tags are its own.
	snap.Feed = template.HTML(r.b.String())
	if v := s.openView(viewer); v != nil {
		snap.Modal = template.HTML(s.modal(v))
		snap.ModalKey = v.ID + "#" + strconv.Itoa(v.Rev)
	}
	return snap
}

func (s *Slack) renderer() *renderer {
	return &renderer{now: s.opts.Now(), name: func(kind, id string) string {
		if kind == "user" {
			if p, ok := s.people[id]; ok {
				return p.Name
			}
		} else if c, ok := s.channels[id]; ok {
			return c.Name
		}
		return id
	}}
}

// modalView is what the page reads of a view.
type modalView struct {
	Type            string          `json:"type"`
	Title           *textObj        `json:"title"`
	Submit          *textObj        `json:"submit"`
	Close           *textObj        `json:"close"`
	Blocks          json.RawMessage `json:"blocks"`
	CallbackID      string          `json:"callback_id"`
	PrivateMetadata string          `json:"private_metadata"`
}

func (s *Slack) openView(user string) *view {
	for _, v := range slices.Backward(s.views) {
		if v.User == user && user != "" {
			return v
		}
	}
	return nil
}

// modal writes an open view as a form that submits it.
func (s *Slack) modal(v *view) string {
	var mv modalView
	if err := json.Unmarshal(v.Raw, &mv); err != nil {
		return ""
	}
	r := s.renderer()
	r.b.WriteString(`<div class="modal"><form method="post" action="/submit">`)
	for _, kv := range [][2]string{{"csrf", s.csrf}, {"as", v.User}, {"view", v.ID}} {
		r.b.WriteString(`<input type="hidden" name="` + kv[0] + `" value="` + esc(kv[1]) + `">`)
	}
	r.b.WriteString(`<h3>` + esc(unentity(textOf(mv.Title, "Dialog"))) + `</h3>`)
	for _, b := range decodeBlocks(mv.Blocks) {
		if b.Type == "input" {
			r.input(b, v.Errors)
		} else {
			r.blocks([]block{b}, nil)
		}
	}
	r.b.WriteString(`<div class="modal-actions"><button type="submit" class="btn" formaction="/close" formnovalidate ` +
		`data-action="view_close">` + esc(unentity(textOf(mv.Close, "Cancel"))) + `</button> ` +
		`<button type="submit" class="btn primary" data-action="view_submit">` +
		esc(unentity(textOf(mv.Submit, "Submit"))) + `</button></div></form></div>`)
	return r.b.String()
}

func textOf(t *textObj, fallback string) string {
	if t == nil || t.Text == "" {
		return fallback
	}
	return t.Text
}

func (s *Slack) servePage(w http.ResponseWriter, r *http.Request) {
	snap := s.snapshot(r.URL.Query().Get("as"))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTmpl.Execute(w, snap); err != nil {
		s.opts.Logger.Warn("localslack: write page", "err", err)
	}
}

func (s *Slack) serveState(w http.ResponseWriter, r *http.Request) {
	snap := s.snapshot(r.URL.Query().Get("as"))
	writeJSON(w, http.StatusOK, map[string]any{"version": snap.Version, "feed": string(snap.Feed),
		"modal": string(snap.Modal), "modalKey": snap.ModalKey})
}

// readForm parses a page form and checks that the page made it: another
// site cannot read the page's token, so it cannot click for anyone.
func (s *Slack) readForm(w http.ResponseWriter, r *http.Request) (person Person, ok bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "malformed form", http.StatusBadRequest)
		return Person{}, false
	}
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(s.csrf)) != 1 {
		http.Error(w, "this form did not come from the page; reload it", http.StatusForbidden)
		return Person{}, false
	}
	s.mu.Lock()
	p, known := s.people[r.PostForm.Get("as")]
	s.mu.Unlock()
	if !known {
		http.Error(w, "no such person", http.StatusBadRequest)
		return Person{}, false
	}
	return p, true
}

// back answers a form: the page again (or, for fetch, JSON).
func back(w http.ResponseWriter, r *http.Request, as string) {
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
		return
	}
	http.Redirect(w, r, "/?as="+url.QueryEscape(as), http.StatusSeeOther)
}

func (s *Slack) serveClick(w http.ResponseWriter, r *http.Request) {
	p, ok := s.readForm(w, r)
	if !ok {
		return
	}
	payload, problem := s.clickPayload(p, r.PostForm)
	if problem != "" {
		s.notify(p.ID, r.PostForm.Get("channel"), problem)
	} else if _, err := s.deliver(r.Context(), payload); err != nil {
		s.notify(p.ID, r.PostForm.Get("channel"), err.Error())
	}
	back(w, r, p.ID)
}

func (s *Slack) serveSubmit(w http.ResponseWriter, r *http.Request) {
	p, ok := s.readForm(w, r)
	if !ok {
		return
	}
	id := r.PostForm.Get("view")
	payload, problem := s.submitPayload(p, id, r.PostForm)
	if problem != "" {
		s.notify(p.ID, s.viewChannel(id), problem)
		back(w, r, p.ID)
		return
	}
	answer, err := s.deliver(r.Context(), payload)
	if err != nil {
		s.notify(p.ID, s.viewChannel(id), err.Error())
		back(w, r, p.ID)
		return
	}
	var resp struct {
		Action string            `json:"response_action"`
		Errors map[string]string `json:"errors"`
	}
	if len(answer) > 0 && json.Unmarshal(answer, &resp) == nil && resp.Action == "errors" && len(resp.Errors) > 0 {
		s.setViewErrors(id, resp.Errors)
	} else {
		s.closeView(p.ID, id)
	}
	back(w, r, p.ID)
}

func (s *Slack) serveClose(w http.ResponseWriter, r *http.Request) {
	p, ok := s.readForm(w, r)
	if !ok {
		return
	}
	s.closeView(p.ID, r.PostForm.Get("view"))
	back(w, r, p.ID)
}

func (s *Slack) setViewErrors(id string, errs map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.views {
		if v.ID == id {
			v.Errors = errs
			v.Rev++
			s.version++
		}
	}
}

// viewChannel is the conversation whose click opened the view id, or "".
func (s *Slack) viewChannel(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.views {
		if v.ID == id {
			return v.Channel
		}
	}
	return ""
}

func (s *Slack) closeView(user, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.views = slices.DeleteFunc(s.views, func(v *view) bool { return v.ID == id && v.User == user })
	s.version++
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{if .Viewer.ID}}{{.Viewer.Label}} · {{end}}local Slack · promotebot</title>
<noscript><meta http-equiv="refresh" content="2"></noscript>
<script src="/page.js" defer></script>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:0;background:#f8f8f8;color:#1d1c1d}
header{background:#3f0e40;color:#fff;padding:.6em 1em;display:flex;gap:1.5em;align-items:center;flex-wrap:wrap}
header a{color:#e8d5e9;text-decoration:none;padding:.2em .6em;border-radius:4px}
header a.me{background:#1164a3;color:#fff}
.logo{font-weight:700}
main{max-width:60em;margin:0 auto;padding:1em}
section{background:#fff;border:1px solid #ddd;border-radius:8px;margin:1em 0;padding:.5em 1em}
h2{font-size:1.05em;margin:.4em 0 .6em}
.msg{border-top:1px solid #eee;padding:.6em 0}
.msg.eph{background:#f4f9ff;padding:.6em}
.meta{font-size:.9em;color:#616061}.app{font-size:.7em;background:#eee;padding:0 .3em;border-radius:3px}
.edited{font-size:.85em;color:#888}
.section{display:flex;flex-wrap:wrap;gap:.4em 1em;margin:.3em 0}.section .text{flex:1 1 60%}
.fields{display:grid;grid-template-columns:1fr 1fr;gap:.3em 1em;flex-basis:100%}
.context{font-size:.85em;color:#616061;margin:.3em 0;display:flex;gap:1em;flex-wrap:wrap}
.actions{margin:.5em 0;display:flex;gap:.5em;flex-wrap:wrap}
form.act{display:inline}
.btn{font:inherit;font-weight:600;border:1px solid #bbb;background:#fff;border-radius:4px;padding:.25em .9em;cursor:pointer;color:#1d1c1d;text-decoration:none;display:inline-block}
.btn.primary{background:#007a5a;border-color:#007a5a;color:#fff}.btn.danger{background:#e01e5a;border-color:#e01e5a;color:#fff}
.btn[disabled]{opacity:.5;cursor:not-allowed}
.replies{margin-left:1.5em;border-left:3px solid #ddd;padding-left:.8em}
code{background:#f3f3f3;border:1px solid #e5e5e5;border-radius:3px;padding:0 .2em;font-size:.9em;color:#c01343}
pre{background:#f6f6f6;border:1px solid #e5e5e5;padding:.5em;white-space:pre-wrap}
.mention{background:#e8f5fa;color:#1264a3;border-radius:3px;padding:0 .15em}
.conv{max-height:70vh;overflow-y:auto}
.msg.notice{background:#fff4d6;padding:.6em}
time.at{font-size:.85em;color:#616061;margin-left:.3em}
.modal{position:fixed;inset:0;background:rgba(0,0,0,.45);display:flex;align-items:center;justify-content:center}
.modal form{background:#fff;border-radius:8px;padding:1em 1.4em;min-width:22em;max-width:34em}
.input{display:block;margin:.8em 0}.input textarea,.input input{display:block;width:100%;box-sizing:border-box;margin-top:.3em;font:inherit}
.error{color:#e01e5a;display:block}.modal-actions{text-align:right}
.empty{color:#888}
</style></head><body>
<header><span class="logo">local Slack</span>
{{range .People}}<a href="/?as={{.ID}}"{{if eq .ID $.Viewer.ID}} class="me"{{end}}>{{.Label}}</a>{{end}}
<a href="/"{{if not .Viewer.ID}} class="me"{{end}}>everyone</a></header>
<main id="main" data-as="{{.Viewer.ID}}" data-version="{{.Version}}" data-modal="{{.ModalKey}}">
{{if not .Viewer.ID}}<section><h2>People of this local workspace</h2><ul>
{{range .People}}<li><a href="/?as={{.ID}}">{{.Label}}</a> <code>{{.ID}}</code>: their direct messages from promotebot, and the channel</li>
{{end}}{{range .Channels}}<li>#{{.Name}} <code>{{.ID}}</code>: the project channel, which everyone is in (below, read-only)</li>
{{end}}</ul><p>Open the page as a person to click their buttons. It refreshes by itself.</p></section>{{end}}
<div id="modal">{{.Modal}}</div>
<div id="feed">{{.Feed}}</div>
</main></body></html>
`))
