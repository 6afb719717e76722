// Package localslack is a small in-process stand-in for Slack, for trying
// promotebot on one machine without a workspace: the Web API methods the bot
// calls (answered as Slack answers them, with the shapes slackui/slacktest
// documents), and a web page on which each person of the local workspace
// reads their direct messages and the channel and clicks the buttons. A
// click is sent to the bot's interaction URL as Slack sends it: a
// block_actions (or view_submission) payload signed with the app's signing
// secret, so the bot's real verification path is exercised.
package localslack

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Identity of the bot and the workspace the Web API answers as.
const (
	// BotUserID is the bot's user id, the author of every message.
	BotUserID = "ULOCALBOT"
	// TeamID is the local workspace's id.
	TeamID = "TLOCAL"
	// AppID is the local app's id, sent in interaction payloads.
	AppID = "ALOCAL"
)

// maxBody bounds what is read of a Web API request or a page form.
const maxBody = 1 << 20

// triggerTTL is how long a trigger id from a click can open a view (Slack
// allows 3 s; a local machine under a debugger deserves more).
const triggerTTL = 30 * time.Second

// Person is a member of the local workspace.
type Person struct {
	ID    string // U…
	Name  string // display name, in users.info and the bot's commit trailers
	Label string // how the page lists them, such as "Quinn (QA)"
	Email string
}

// Channel is a public channel every person is in.
type Channel struct {
	ID   string // C…
	Name string // without "#"
}

// Options configures a Slack.
type Options struct {
	// Token is the bot token the Web API accepts.
	Token string
	// SigningSecret signs what the page sends to the bot.
	SigningSecret string
	People        []Person
	Channels      []Channel
	// Logger hears what the page tells people, such as a click the bot
	// refused (default: discard).
	Logger *slog.Logger
	// Client sends interactions to the bot (default: a 10 s timeout).
	Client *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Slack is the local workspace: its Web API (API) and its page (Page). Safe
// for concurrent use.
type Slack struct {
	opts Options
	csrf string

	mu          sync.Mutex
	people      map[string]Person
	channels    map[string]Channel
	dms         map[string]string // DM channel id → user id
	messages    []*message        // in post order
	byKey       map[string]*message
	views       []*view
	triggers    map[string]trigger
	notices     map[string][]string // user id → what the page tells them
	interaction string
	seq         int
	epoch       int64
	version     int // bumped by every change the page shows
}

type message struct {
	Channel, TS, ThreadTS, Text string
	Blocks                      json.RawMessage
	User                        string // for an ephemeral message, who sees it
	Ephemeral                   bool
	Updated                     int
}

type trigger struct {
	user, channel string
	at            time.Time
	used          bool
}

// view is a modal opened with views.open, shown to the person whose click
// gave the trigger.
type view struct {
	ID, User, Channel string
	Raw               json.RawMessage
	Errors            map[string]string // block id → error, from a refused submission
	Rev               int
}

// New makes a local workspace with the people and channels of o.
func New(o Options) *Slack {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Slack{opts: o, csrf: rand.Text(), people: map[string]Person{}, channels: map[string]Channel{},
		dms: map[string]string{}, byKey: map[string]*message{}, triggers: map[string]trigger{},
		notices: map[string][]string{}, epoch: o.Now().Unix()}
	for _, p := range o.People {
		s.people[p.ID] = p
	}
	for _, c := range o.Channels {
		s.channels[c.ID] = c
	}
	return s
}

// SetInteractionURL sets where clicks go: the bot's /slack/interactions.
func (s *Slack) SetInteractionURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.interaction = u
}

// API serves the Web API at /api/<method>.
func (s *Slack) API() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method, ok := strings.CutPrefix(r.URL.Path, "/api/")
		h, known := apiMethods[method]
		if !ok || !known {
			writeJSON(w, http.StatusOK, errAnswer("unknown_method"))
			return
		}
		p, jsonBody, code := readParams(r)
		if code == "" {
			code = s.authenticate(r, p, jsonBody)
		}
		if code != "" {
			writeJSON(w, http.StatusOK, errAnswer(code))
			return
		}
		s.mu.Lock()
		a := h(s, p)
		if a["ok"] == true {
			s.version++
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, a)
	})
}

var apiMethods = map[string]func(*Slack, map[string]string) map[string]any{
	"auth.test":             (*Slack).authTest,
	"chat.postMessage":      (*Slack).postMessage,
	"chat.update":           (*Slack).update,
	"chat.postEphemeral":    (*Slack).postEphemeral,
	"conversations.open":    (*Slack).conversationsOpen,
	"users.info":            (*Slack).usersInfo,
	"usergroups.users.list": (*Slack).usergroupUsers,
	"views.open":            (*Slack).viewsOpen,
}

func okAnswer(fields map[string]any) map[string]any {
	a := map[string]any{"ok": true}
	maps.Copy(a, fields)
	return a
}

func errAnswer(code string) map[string]any { return map[string]any{"ok": false, "error": code} }

func (s *Slack) authenticate(r *http.Request, p map[string]string, jsonBody bool) string {
	token := ""
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, t, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "invalid_auth"
		}
		token = strings.TrimSpace(t)
	} else if !jsonBody {
		token = p["token"]
	}
	switch {
	case token == "":
		return "not_authed"
	case token != s.opts.Token:
		return "invalid_auth"
	}
	return ""
}

// readParams reads the query and a form or JSON body; JSON values that are
// not strings are kept as their raw JSON.
func readParams(r *http.Request) (map[string]string, bool, string) {
	p := map[string]string{}
	r.Body = http.MaxBytesReader(nil, r.Body, maxBody)
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil && r.Header.Get("Content-Type") != "" {
		return p, false, "invalid_post_type"
	}
	if mt == "application/json" {
		for k, v := range r.URL.Query() {
			p[k] = v[0]
		}
		var fields map[string]json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&fields); err != nil || fields == nil {
			return p, true, "invalid_json"
		}
		for k, raw := range fields {
			var str string
			if json.Unmarshal(raw, &str) == nil {
				p[k] = str
			} else {
				p[k] = string(raw)
			}
		}
		return p, true, ""
	}
	if err := r.ParseForm(); err != nil {
		return p, false, "invalid_form_data"
	}
	for k, v := range r.Form {
		p[k] = v[0]
	}
	return p, false, ""
}

func (s *Slack) authTest(map[string]string) map[string]any {
	return okAnswer(map[string]any{"url": "http://localhost/", "team": "local", "user": "promotebot",
		"team_id": TeamID, "user_id": BotUserID, "bot_id": "BLOCAL"})
}

// postMessage implements chat.postMessage; a user id as the channel posts
// into the DM with that user.
func (s *Slack) postMessage(p map[string]string) map[string]any {
	ch := s.resolve(p["channel"])
	if ch == "" {
		return errAnswer("channel_not_found")
	}
	m := &message{Channel: ch}
	if code := setContent(m, p, true); code != "" {
		return errAnswer(code)
	}
	if ts := p["thread_ts"]; ts != "" {
		if parent, ok := s.byKey[ch+"/"+ts]; !ok || parent.Ephemeral {
			return errAnswer("thread_not_found")
		}
		m.ThreadTS = ts
	}
	s.store(m)
	return okAnswer(map[string]any{"channel": ch, "ts": m.TS, "message": messageJSON(m)})
}

func (s *Slack) update(p map[string]string) map[string]any {
	m, ok := s.byKey[p["channel"]+"/"+p["ts"]]
	if !ok || m.Ephemeral {
		return errAnswer("message_not_found")
	}
	next := *m
	if code := setContent(&next, p, false); code != "" {
		return errAnswer(code)
	}
	next.Updated++
	*m = next
	return okAnswer(map[string]any{"channel": m.Channel, "ts": m.TS, "text": m.Text, "message": messageJSON(m)})
}

func (s *Slack) postEphemeral(p map[string]string) map[string]any {
	ch := s.resolve(p["channel"])
	if ch == "" {
		return errAnswer("channel_not_found")
	}
	user := p["user"]
	if _, known := s.people[user]; !known {
		return errAnswer("user_not_in_channel")
	}
	if dmUser, isDM := s.dms[ch]; isDM && dmUser != user {
		return errAnswer("user_not_in_channel")
	}
	m := &message{Channel: ch, User: user, Ephemeral: true}
	if code := setContent(m, p, true); code != "" {
		return errAnswer(code)
	}
	s.store(m)
	return okAnswer(map[string]any{"message_ts": m.TS})
}

func (s *Slack) conversationsOpen(p map[string]string) map[string]any {
	user := strings.TrimSpace(p["users"])
	if user == "" {
		return errAnswer("users_list_not_supplied")
	}
	if strings.Contains(user, ",") {
		return errAnswer("localslack_mpim_not_supported")
	}
	if _, known := s.people[user]; !known {
		return errAnswer("user_not_found")
	}
	id := dmID(user)
	_, open := s.dms[id]
	s.dms[id] = user
	return okAnswer(map[string]any{"channel": map[string]any{"id": id}, "no_op": open, "already_open": open})
}

func (s *Slack) usersInfo(p map[string]string) map[string]any {
	u, ok := s.people[p["user"]]
	if !ok {
		return errAnswer("user_not_found")
	}
	return okAnswer(map[string]any{"user": map[string]any{
		"id": u.ID, "team_id": TeamID, "name": strings.ToLower(u.Name), "real_name": u.Label,
		"profile": map[string]any{"email": u.Email, "display_name": u.Name, "display_name_normalized": u.Name,
			"real_name": u.Label, "real_name_normalized": u.Label},
	}})
}

// usergroupUsers implements usergroups.users.list: the local workspace has
// no user groups.
func (s *Slack) usergroupUsers(map[string]string) map[string]any {
	return errAnswer("no_such_subteam")
}

// viewsOpen implements views.open for a trigger id from a click on the page:
// the modal is shown to the person who clicked.
func (s *Slack) viewsOpen(p map[string]string) map[string]any {
	t, ok := s.triggers[p["trigger_id"]]
	switch {
	case !ok:
		return errAnswer("invalid_trigger_id")
	case t.used:
		return errAnswer("exchanged_trigger_id")
	case s.opts.Now().Sub(t.at) > triggerTTL:
		return errAnswer("expired_trigger_id")
	}
	var v struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal([]byte(p["view"]), &v); err != nil || v.Type != "modal" {
		return errAnswer("invalid_arguments")
	}
	t.used = true
	s.triggers[p["trigger_id"]] = t
	s.seq++
	id := fmt.Sprintf("V%08d", s.seq)
	s.views = append(s.views, &view{ID: id, User: t.user, Channel: t.channel, Raw: json.RawMessage(p["view"])})
	var out map[string]any
	if err := json.Unmarshal([]byte(p["view"]), &out); err != nil {
		return errAnswer("invalid_arguments")
	}
	out["id"], out["team_id"], out["app_id"] = id, TeamID, AppID
	out["state"] = map[string]any{"values": map[string]any{}}
	return okAnswer(map[string]any{"view": out})
}

// resolve is the conversation a message for id goes to, or "".
func (s *Slack) resolve(id string) string {
	if _, ok := s.channels[id]; ok {
		return id
	}
	if _, ok := s.dms[id]; ok {
		return id
	}
	if _, ok := s.people[id]; ok {
		s.dms[dmID(id)] = id
		return dmID(id)
	}
	return ""
}

func setContent(m *message, p map[string]string, create bool) string {
	text, hasText := p["text"]
	raw, hasBlocks := p["blocks"]
	var blocks []json.RawMessage
	if hasBlocks {
		if err := json.Unmarshal([]byte(raw), &blocks); err != nil {
			return "invalid_blocks_format"
		}
		if len(blocks) > 50 {
			return "invalid_blocks"
		}
	}
	if create && text == "" && len(blocks) == 0 || !create && !hasText && !hasBlocks {
		return "no_text"
	}
	if hasText {
		m.Text = text
	}
	if hasBlocks {
		m.Blocks = json.RawMessage(raw)
		if len(blocks) == 0 {
			m.Blocks = nil
		}
	}
	return ""
}

// store gives m the next timestamp and keeps it.
func (s *Slack) store(m *message) {
	s.seq++
	m.TS = fmt.Sprintf("%d.%06d", s.epoch+int64(s.seq/1_000_000), s.seq%1_000_000)
	s.messages = append(s.messages, m)
	s.byKey[m.Channel+"/"+m.TS] = m
}

func messageJSON(m *message) map[string]any {
	out := map[string]any{"type": "message", "user": BotUserID, "bot_id": "BLOCAL", "team": TeamID,
		"text": m.Text, "ts": m.TS}
	if m.ThreadTS != "" {
		out["thread_ts"] = m.ThreadTS
	}
	if m.Blocks != nil {
		out["blocks"] = m.Blocks
	}
	return out
}

// canSee reports whether user sees the conversation ch.
func (s *Slack) canSee(user, ch string) bool {
	if _, ok := s.channels[ch]; ok {
		_, known := s.people[user]
		return known
	}
	return s.dms[ch] == user && user != ""
}

// sortedPeople lists the people in the order they were given.
func (s *Slack) sortedPeople() []Person {
	return slices.Clone(s.opts.People)
}

// notify keeps something the page tells user (newest last, at most 5).
func (s *Slack) notify(user, text string) {
	s.opts.Logger.Info("localslack: told a person", "user", user, "text", text)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := append(s.notices[user], s.opts.Now().Format("15:04:05")+" "+text)
	if len(n) > 5 {
		n = n[len(n)-5:]
	}
	s.notices[user] = n
	s.version++
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"ok":false,"error":"encode"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	if _, err := w.Write(b); err != nil {
		return // the client went away
	}
}

// dmID is the DM channel with user U<rest>: D<rest>.
func dmID(user string) string { return "D" + strings.TrimPrefix(user, "U") }

// drain reads the rest of a body so the connection can be reused.
func drain(r io.Reader) {
	if _, err := io.Copy(io.Discard, io.LimitReader(r, maxBody)); err != nil {
		return
	}
}
