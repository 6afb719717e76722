// Package slacktest is a stateful, recording fake of Slack's Web API for
// tests: an httptest server that answers the methods promotebot uses the way
// https://api.slack.com/methods documents them, keeps the messages, DMs and
// views they create, records every call, and fails on request.
//
// Point slack-go at it with slack.OptionAPIURL(s.URL). Only the token given to
// NewServer is accepted: in the Authorization header ("Bearer xoxb-…"), or,
// for form-encoded requests, in the token field as slack-go sends it. JSON
// bodies must carry the header, as on Slack.
//
// Channels exist once declared with AddChannel; a DM channel D<rest> exists
// for user U<rest> once conversations.open was called for the user or a
// message was posted to the user's ID. Message timestamps are fixed and
// increasing: "1700000000.000100", "1700000000.000200", …, shared by all
// channels. The methods it shares with the quickstart's local Slack
// (slackui/localslack) are answered by their common core, slackui/fakeslack.
package slacktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promotebot/promotebot/slackui/fakeslack"
)

// Identity of the bot the server answers as (auth.test, message authors).
const (
	// BotUserID is the user ID of the bot, the author of posted messages.
	BotUserID = "UBOT"
	// BotID is the bot ID of the bot.
	BotID = "BBOT"
	// TeamID is the ID of the fake workspace.
	TeamID = "T0SLACKTEST"
	// TeamName is the name of the fake workspace.
	TeamName = "slacktest"
	// AppID is the ID of the bot's app (bots.info), which Slack's requests
	// to the bot name as api_app_id.
	AppID = "ASLACKTEST"
)

// identity is who the server answers as.
var identity = fakeslack.Identity{BotUserID: BotUserID, BotID: BotID, TeamID: TeamID, TeamName: TeamName,
	AppID: AppID, URL: "https://" + TeamName + ".slack.com/", Fake: "slacktest"}

// User is a member of the fake workspace, known to users.info,
// conversations.open, chat.postEphemeral and DMs.
type User = fakeslack.User

// Call is one recorded request to the server.
type Call struct {
	// Method is the Web API method, e.g. "chat.postMessage".
	Method string
	// Params holds the form fields (the token field left out), or the
	// top-level fields of a JSON body, strings as their value and other values
	// (objects, arrays, numbers) as their raw JSON.
	Params map[string]string
	// At is when the request arrived.
	At time.Time
	// Status is the HTTP status answered.
	Status int
	// OK is the "ok" field answered (false for non-200 answers).
	OK bool
	// Error is the "error" code answered, or the injected Failure's Error.
	Error string
}

// Message is the current state of a message posted through the server.
type Message = fakeslack.Message

// Failure is an answer injected with Fail in place of a method's normal one.
type Failure struct {
	// Status is the HTTP status; 0 means 200. 429 answers
	// {"ok":false,"error":"ratelimited"} with a Retry-After header; other
	// non-200 statuses answer a short text body, as Slack's 5xx do.
	Status int
	// Error is the "error" code of a 200 (or 429) answer, e.g.
	// "channel_not_found". A Failure with neither Status nor Error only delays.
	Error string
	// RetryAfter is the Retry-After header, in seconds, of a 429 answer.
	RetryAfter int
	// Delay is how long to wait before answering, to simulate a slow Slack.
	// The wait ends early when the client gives up or the test ends, and the
	// call is then handled all the same: as on Slack, a call the client timed
	// out on may still have taken effect.
	Delay time.Duration
}

// Server is a running fake Slack Web API. Its methods are safe for
// concurrent use.
type Server struct {
	// URL is the API root to give slack.OptionAPIURL, ending in "/", e.g.
	// "http://127.0.0.1:1234/api/".
	URL string

	tb      testing.TB
	token   string
	srv     *httptest.Server
	closing chan struct{} // closed when the test ends

	mu       sync.Mutex
	ws       *fakeslack.Workspace
	calls    []Call
	failures map[string][]Failure
	views    []json.RawMessage
}

// NewServer starts a fake Slack that accepts only token and closes it when
// the test ends.
func NewServer(tb testing.TB, token string) *Server {
	tb.Helper()
	s := &Server{
		tb:       tb,
		token:    token,
		ws:       fakeslack.New(identity, nil),
		failures: map[string][]Failure{},
		closing:  make(chan struct{}),
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	tb.Cleanup(func() {
		close(s.closing) // ends injected delays, which Close would wait for
		s.srv.Close()
	})
	s.URL = s.srv.URL + "/api/"
	return s
}

// AddUser adds or replaces a member of the workspace.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ws.AddUser(u)
}

// AddGroup adds or replaces the user group id (S…) with its members, for
// usergroups.users.list.
func (s *Server) AddGroup(id string, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ws.AddGroup(id, members)
}

// AddChannel declares the channel id (C…), which every user is a member of.
func (s *Server) AddChannel(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ws.AddChannel(id)
}

// Fail queues f as the answer to the next call of method. Failures queued
// for one method are used in the order they were queued.
func (s *Server) Fail(method string, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[method] = append(s.failures[method], f)
}

// Calls returns the recorded calls in the order they were answered, only
// those of methods when any are given.
func (s *Server) Calls(methods ...string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if len(methods) > 0 && !slices.Contains(methods, c.Method) {
			continue
		}
		c.Params = maps.Clone(c.Params)
		out = append(out, c)
	}
	return out
}

// Messages returns the current state of the messages posted in channel (all
// channels when channel is ""), in post order, ephemeral ones included.
// Messages posted to a user ID are in the user's DM channel, D<rest>.
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.ws.Messages() {
		if channel == "" || m.Channel == channel {
			out = append(out, copyMessage(m))
		}
	}
	return out
}

// Message returns the current state of the message ts in channel.
func (s *Server) Message(channel, ts string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.ws.Message(channel, ts)
	if !ok {
		return Message{}, false
	}
	return copyMessage(m), true
}

// Views returns the views opened with views.open, each as the view JSON the
// client sent, in order.
func (s *Server) Views() []json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]json.RawMessage, 0, len(s.views))
	for _, v := range s.views {
		out = append(out, bytes.Clone(v))
	}
	return out
}

// answer is what a method handler decided: an HTTP status and a JSON body,
// or a text body when text is set.
type answer struct {
	status int
	body   map[string]any
	text   string
	header map[string]string
}

func errAnswer(code string) answer {
	return answer{status: http.StatusOK, body: fakeslack.Err(code)}
}

// serveHTTP decodes a request, answers it (injected failure, authentication,
// then the method) and records the call.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	method, found := strings.CutPrefix(r.URL.Path, "/api/")
	if !found || method == "" || strings.Contains(method, "/") {
		http.NotFound(w, r)
		return
	}
	call := Call{Method: method, At: time.Now()}
	params, jsonBody, code := fakeslack.ReadParams(r)
	call.Params = params
	var a answer
	if code != "" {
		a = errAnswer(code)
	} else {
		a = s.answer(r, method, params, jsonBody)
	}
	call.Status = a.status
	call.OK = a.status == http.StatusOK && a.body["ok"] == true
	if e, ok := a.body["error"].(string); ok {
		call.Error = e
	}
	// Record before answering, so that a client that has its answer finds its call.
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.mu.Unlock()
	s.write(w, a)
}

func (s *Server) answer(r *http.Request, method string, params map[string]string, jsonBody bool) answer {
	f, failing := s.popFailure(method)
	if failing && f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
		case <-s.closing:
			t.Stop()
		}
	}
	if failing && (f.Status != 0 && f.Status != http.StatusOK || f.Error != "") {
		return failureAnswer(f)
	}
	if method != "views.open" && !fakeslack.Implements(method) {
		return errAnswer("unknown_method")
	}
	if code := fakeslack.Authenticate(r, jsonBody, s.token); code != "" {
		return errAnswer(code)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if method == "views.open" {
		return s.viewsOpen(params)
	}
	return answer{status: http.StatusOK, body: s.ws.Answer(method, params)}
}

func (s *Server) popFailure(method string) (Failure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.failures[method]
	if len(q) == 0 {
		return Failure{}, false
	}
	s.failures[method] = q[1:]
	return q[0], true
}

func failureAnswer(f Failure) answer {
	switch {
	case f.Status == http.StatusTooManyRequests:
		code := f.Error
		if code == "" {
			code = "ratelimited"
		}
		a := errAnswer(code)
		a.status = f.Status
		a.header = map[string]string{"Retry-After": fmt.Sprint(f.RetryAfter)}
		return a
	case f.Status != 0 && f.Status != http.StatusOK:
		text := fmt.Sprintf("%d %s", f.Status, http.StatusText(f.Status))
		return answer{status: f.Status, text: text, body: map[string]any{"ok": false, "error": f.Error}}
	default:
		return errAnswer(f.Error)
	}
}

// write sends a, the one place that writes answers.
func (s *Server) write(w http.ResponseWriter, a answer) {
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	var b []byte
	if a.text != "" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		b = []byte(a.text + "\n")
	} else {
		var err error
		if b, err = json.Marshal(a.body); err != nil {
			s.tb.Errorf("slacktest: encode answer: %v", err)
			http.Error(w, "encode answer", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
	}
	w.WriteHeader(a.status)
	if _, err := w.Write(b); err != nil {
		s.tb.Logf("slacktest: write answer: %v", err)
	}
}

func copyMessage(m *Message) Message {
	c := *m
	c.Blocks = bytes.Clone(m.Blocks)
	return c
}
