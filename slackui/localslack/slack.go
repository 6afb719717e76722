// Package localslack is a small in-process stand-in for Slack, for trying
// promotebot on one machine without a workspace: the Web API methods the bot
// calls (answered as Slack answers them, with the shapes slackui/slacktest
// documents), and a web page on which each person of the local workspace
// reads their direct messages and the channel and clicks the buttons. The
// Web API methods it shares with slackui/slacktest are answered by their
// common core, slackui/fakeslack. A click is sent to the bot's interaction URL as Slack sends it: a
// block_actions (or view_submission) payload signed with the app's signing
// secret, so the bot's real verification path is exercised.
package localslack

import (
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/promotebot/promotebot/slackui/fakeslack"
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

// identity is who the Web API answers as.
var identity = fakeslack.Identity{BotUserID: BotUserID, BotID: "BLOCAL", TeamID: TeamID, TeamName: "local",
	AppID: AppID, URL: "http://localhost/", Fake: "localslack"}

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
	ws          *fakeslack.Workspace
	people      map[string]Person
	channels    map[string]Channel
	views       []*view
	triggers    map[string]trigger
	notices     []notice // what the page told people, oldest first
	interaction string
	seq         int
	version     int // bumped by every change the page shows
}

// notice is something the page tells one person, such as a click the bot
// refused: like Slack's own ephemeral messages, it takes its place in a
// conversation's timeline, after the messages posted before it.
type notice struct {
	user, channel string
	after         int // how many messages the workspace held when it was told
	at            time.Time
	text          string
}

// maxNotices is how many notices the page keeps for one person.
const maxNotices = 20

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
	s := &Slack{opts: o, csrf: rand.Text(), ws: fakeslack.New(identity, o.Now), people: map[string]Person{},
		channels: map[string]Channel{}, triggers: map[string]trigger{}}
	for _, p := range o.People {
		s.people[p.ID] = p
		s.ws.AddUser(fakeslack.User{ID: p.ID, Name: strings.ToLower(p.Name), DisplayName: p.Name,
			RealName: p.Label, Email: p.Email})
	}
	for _, c := range o.Channels {
		s.channels[c.ID] = c
		s.ws.AddChannel(c.ID)
	}
	return s
}

// SetInteractionURL sets where clicks go: the bot's /slack/interactions.
func (s *Slack) SetInteractionURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.interaction = u
}

// API serves the Web API at /api/<method>: the methods of fakeslack, and
// views.open for the triggers of the page's clicks.
func (s *Slack) API() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method, ok := strings.CutPrefix(r.URL.Path, "/api/")
		if !ok || method != "views.open" && !fakeslack.Implements(method) {
			writeJSON(w, http.StatusOK, fakeslack.Err("unknown_method"))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		p, jsonBody, code := fakeslack.ReadParams(r)
		if code == "" {
			code = fakeslack.Authenticate(r, jsonBody, s.opts.Token)
		}
		if code != "" {
			writeJSON(w, http.StatusOK, fakeslack.Err(code))
			return
		}
		s.mu.Lock()
		var a map[string]any
		if method == "views.open" {
			a = s.viewsOpen(p)
		} else {
			a = s.ws.Answer(method, p)
		}
		if a["ok"] == true {
			s.version++
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, a)
	})
}

// viewsOpen implements views.open for a trigger id from a click on the page:
// the modal is shown to the person who clicked.
func (s *Slack) viewsOpen(p map[string]string) map[string]any {
	t, ok := s.triggers[p["trigger_id"]]
	switch {
	case !ok:
		return fakeslack.Err("invalid_trigger_id")
	case t.used:
		return fakeslack.Err("exchanged_trigger_id")
	case s.opts.Now().Sub(t.at) > triggerTTL:
		return fakeslack.Err("expired_trigger_id")
	}
	out, code := s.ws.OpenView(p["view"])
	if code != "" {
		return fakeslack.Err(code)
	}
	t.used = true
	s.triggers[p["trigger_id"]] = t
	id, _ := out["id"].(string)
	s.views = append(s.views, &view{ID: id, User: t.user, Channel: t.channel, Raw: json.RawMessage(p["view"])})
	return fakeslack.OK(map[string]any{"view": out})
}

// canSee reports whether user sees the conversation ch.
func (s *Slack) canSee(user, ch string) bool {
	if _, ok := s.channels[ch]; ok {
		_, known := s.people[user]
		return known
	}
	dmUser, isDM := s.ws.DMUser(ch)
	return isDM && dmUser == user && user != ""
}

// sortedPeople lists the people in the order they were given.
func (s *Slack) sortedPeople() []Person {
	return slices.Clone(s.opts.People)
}

// notify tells user text in the conversation ch, or in their DM with the
// bot when they do not see ch; it keeps the newest maxNotices of each person.
func (s *Slack) notify(user, ch, text string) {
	s.opts.Logger.Info("localslack: told a person", "user", user, "channel", ch, "text", text)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.canSee(user, ch) {
		ch = fakeslack.DMID(user)
	}
	s.notices = append(s.notices, notice{user: user, channel: ch, after: len(s.ws.Messages()),
		at: s.opts.Now(), text: text})
	mine := 0
	for i := len(s.notices) - 1; i >= 0; i-- {
		if s.notices[i].user != user {
			continue
		}
		if mine++; mine > maxNotices {
			s.notices = slices.Delete(s.notices, i, i+1)
		}
	}
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

// drain reads the rest of a body so the connection can be reused.
func drain(r io.Reader) {
	if _, err := io.Copy(io.Discard, io.LimitReader(r, maxBody)); err != nil {
		return
	}
}
