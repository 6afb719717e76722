package slacktest_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/promotebot/promotebot/slackui/slacktest"
)

const token = "xoxb-test-token"

// newServer starts a server with channels C1 and C2, users U1 and U2, and
// group S1.
func newServer(t *testing.T) *slacktest.Server {
	t.Helper()
	s := slacktest.NewServer(t, token)
	s.AddChannel("C1")
	s.AddChannel("C2")
	s.AddUser(slacktest.User{ID: "U1", Name: "ada", RealName: "Ada Lovelace", Email: "ada@example.com"})
	s.AddUser(slacktest.User{ID: "U2", Name: "bob", RealName: "Bob Builder", Email: "bob@example.com"})
	s.AddGroup("S1", "U1", "U2")
	return s
}

// newClient returns a slack-go client of s with the right token.
func newClient(s *slacktest.Server) *slack.Client {
	return slack.New(token, slack.OptionAPIURL(s.URL))
}

// message returns the message ts of channel, failing the test when there is
// none.
func message(t *testing.T, s *slacktest.Server, channel, ts string) slacktest.Message {
	t.Helper()
	m, ok := s.Message(channel, ts)
	if !ok {
		t.Fatalf("no message %s in %s", ts, channel)
	}
	return m
}

func section(text string) slack.Block {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)
}

// wantSlackError fails unless err is Slack's ok:false answer with code.
func wantSlackError(t *testing.T, err error, code string) {
	t.Helper()
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) || se.Err != code {
		t.Fatalf("error = %v (%T), want slack error %q", err, err, code)
	}
}

// rawCall posts body to method with contentType and auth (an Authorization
// header when not empty) and returns the decoded answer.
func rawCall(t *testing.T, s *slacktest.Server, method, contentType, body, auth string) map[string]any {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL+method, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("answer %q: %v", b, err)
	}
	return out
}

func TestAuthTest(t *testing.T) {
	api := newClient(newServer(t))
	resp, err := api.AuthTest()
	if err != nil {
		t.Fatal(err)
	}
	if resp.UserID != "UBOT" || resp.BotID != "BBOT" || resp.TeamID == "" || resp.URL == "" {
		t.Errorf("auth.test = %+v", resp)
	}
}

func TestAuthentication(t *testing.T) {
	s := newServer(t)
	wrong := slack.New("xoxb-wrong", slack.OptionAPIURL(s.URL))
	_, err := wrong.AuthTest()
	wantSlackError(t, err, "invalid_auth")
	_, _, err = wrong.PostMessage("C1", slack.MsgOptionText("hi", false))
	wantSlackError(t, err, "invalid_auth")

	tests := []struct {
		name, contentType, body, auth, want string
	}{
		{"form without token", "application/x-www-form-urlencoded", "channel=C1&text=hi", "", "not_authed"},
		{"form token field", "application/x-www-form-urlencoded", "token=" + token + "&channel=C1&text=hi", "", ""},
		{"form bearer header", "application/x-www-form-urlencoded", "channel=C1&text=hi", "Bearer " + token, ""},
		{"json bearer header", "application/json", `{"channel":"C1","text":"hi"}`, "Bearer " + token, ""},
		{"json token in body", "application/json", `{"token":"` + token + `","channel":"C1","text":"hi"}`, "", "not_authed"},
		{"json wrong header", "application/json", `{"channel":"C1","text":"hi"}`, "Bearer xoxb-wrong", "invalid_auth"},
		{"malformed json", "application/json", `{"channel":`, "Bearer " + token, "invalid_json"},
		{"json array", "application/json", `["C1"]`, "Bearer " + token, "json_not_object"},
		{"text body", "text/plain", "hi", "Bearer " + token, "invalid_post_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rawCall(t, s, "chat.postMessage", tt.contentType, tt.body, tt.auth)
			if tt.want == "" && got["ok"] != true || tt.want != "" && got["error"] != tt.want {
				t.Errorf("answer = %v, want error %q", got, tt.want)
			}
		})
	}
	if n := len(s.Messages("C1")); n != 3 {
		t.Errorf("%d messages recorded, want 3 (the authenticated posts only)", n)
	}
}

func TestUnknownMethod(t *testing.T) {
	s := newServer(t)
	got := rawCall(t, s, "chat.scheduleMessage", "application/x-www-form-urlencoded", "token="+token, "")
	if got["ok"] != false || got["error"] != "unknown_method" {
		t.Errorf("answer = %v", got)
	}
	calls := s.Calls("chat.scheduleMessage")
	if len(calls) != 1 || calls[0].Status != http.StatusOK || calls[0].OK || calls[0].Error != "unknown_method" {
		t.Errorf("calls = %+v", calls)
	}
}

func TestPostMessage(t *testing.T) {
	s := newServer(t)
	api := newClient(s)
	blocks := []slack.Block{section("*build 42* is ready")}
	ch, ts, err := api.PostMessage("C1", slack.MsgOptionText("build 42 is ready", false), slack.MsgOptionBlocks(blocks...))
	if err != nil {
		t.Fatal(err)
	}
	if ch != "C1" || ts != "1700000000.000100" {
		t.Errorf("PostMessage = %q, %q", ch, ts)
	}
	_, ts2, err := api.PostMessage("C2", slack.MsgOptionText("second", false))
	if err != nil {
		t.Fatal(err)
	}
	if ts2 != "1700000000.000200" {
		t.Errorf("second ts = %q", ts2)
	}

	wantBlocks, err := json.Marshal(blocks)
	if err != nil {
		t.Fatal(err)
	}
	want := slacktest.Message{Channel: "C1", TS: ts, Text: "build 42 is ready", User: "UBOT", Blocks: wantBlocks}
	if got := s.Messages("C1"); len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("Messages(C1) = %+v, want [%+v]", got, want)
	}
	if got, ok := s.Message("C1", ts); !ok || !reflect.DeepEqual(got, want) {
		t.Errorf("Message(C1, %s) = %+v, %v", ts, got, ok)
	}
	if _, ok := s.Message("C2", ts); ok {
		t.Error("Message found in the wrong channel")
	}
	if all := s.Messages(""); len(all) != 2 || all[1].Channel != "C2" {
		t.Errorf("Messages(\"\") = %+v", all)
	}

	calls := s.Calls("chat.postMessage")
	if len(calls) != 2 {
		t.Fatalf("calls = %+v", calls)
	}
	c := calls[0]
	if !c.OK || c.Status != 200 || c.At.IsZero() || c.Params["channel"] != "C1" || c.Params["blocks"] != string(wantBlocks) {
		t.Errorf("call = %+v", c)
	}
	if _, ok := c.Params["token"]; ok {
		t.Error("token recorded in Params")
	}
}

func TestPostMessageAnswer(t *testing.T) {
	s := newServer(t)
	got := rawCall(t, s, "chat.postMessage", "application/json",
		`{"channel":"C1","text":"hi","blocks":[{"type":"divider"}],"unfurl_links":false}`, "Bearer "+token)
	msg, isObject := got["message"].(map[string]any)
	if !isObject || got["channel"] != "C1" || got["ts"] != "1700000000.000100" || msg["user"] != "UBOT" || msg["text"] != "hi" || msg["ts"] != got["ts"] {
		t.Errorf("answer = %v", got)
	}
	c := s.Calls()[0]
	if c.Params["blocks"] != `[{"type":"divider"}]` || c.Params["unfurl_links"] != "false" || c.Params["text"] != "hi" {
		t.Errorf("JSON params = %q", c.Params)
	}
}

func TestPostToUserOpensDM(t *testing.T) {
	s := newServer(t)
	api := newClient(s)
	ch, ts, err := api.PostMessage("U1", slack.MsgOptionText("your build", false))
	if err != nil {
		t.Fatal(err)
	}
	if ch != "D1" {
		t.Errorf("channel = %q, want the DM D1", ch)
	}
	if m, ok := s.Message("D1", ts); !ok || m.Text != "your build" {
		t.Errorf("Message(D1) = %+v, %v", m, ok)
	}
	// The DM is open now: it can be posted to by ID, and opening it is a no-op.
	if _, _, err := api.PostMessage("D1", slack.MsgOptionText("again", false)); err != nil {
		t.Fatal(err)
	}
	c, noOp, already, err := api.OpenConversation(&slack.OpenConversationParameters{Users: []string{"U1"}})
	if err != nil || c.ID != "D1" || !noOp || !already {
		t.Errorf("OpenConversation = %+v, %v, %v, %v", c, noOp, already, err)
	}
	// A DM that nobody opened does not exist.
	_, _, err = api.PostMessage("D2", slack.MsgOptionText("hi", false))
	wantSlackError(t, err, "channel_not_found")
	_, _, err = api.PostMessage("U9", slack.MsgOptionText("hi", false))
	wantSlackError(t, err, "channel_not_found")
}

func TestOpenConversation(t *testing.T) {
	s := newServer(t)
	api := newClient(s)
	c, noOp, already, err := api.OpenConversation(&slack.OpenConversationParameters{Users: []string{"U2"}, ReturnIM: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != "D2" || !c.IsIM || c.User != "U2" || noOp || already {
		t.Errorf("OpenConversation = %+v, %v, %v", c, noOp, already)
	}
	if _, _, err := api.PostMessage(c.ID, slack.MsgOptionText("hi", false)); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Messages("D2")); n != 1 {
		t.Errorf("%d messages in D2", n)
	}
	_, _, _, err = api.OpenConversation(&slack.OpenConversationParameters{Users: []string{"U9"}})
	wantSlackError(t, err, "user_not_found")
	_, _, _, err = api.OpenConversation(&slack.OpenConversationParameters{})
	wantSlackError(t, err, "users_list_not_supplied")
}

func TestUpdateMessage(t *testing.T) {
	s := newServer(t)
	api := newClient(s)
	_, ts, err := api.PostMessage("C1", slack.MsgOptionText("pending", false), slack.MsgOptionBlocks(section("pending")))
	if err != nil {
		t.Fatal(err)
	}
	ch, uts, text, err := api.UpdateMessage("C1", ts, slack.MsgOptionText("approved", false), slack.MsgOptionBlocks(section("approved")))
	if err != nil || ch != "C1" || uts != ts || text != "approved" {
		t.Fatalf("UpdateMessage = %q, %q, %q, %v", ch, uts, text, err)
	}
	m := message(t, s, "C1", ts)
	if m.Text != "approved" || m.Updated != 1 || !strings.Contains(string(m.Blocks), "approved") {
		t.Errorf("after update: %+v", m)
	}
	// Fields left out are kept; an empty block list removes the blocks.
	if _, _, _, err := api.UpdateMessage("C1", ts, slack.MsgOptionBlocks()); err != nil {
		t.Fatal(err)
	}
	m = message(t, s, "C1", ts)
	if m.Text != "approved" || m.Blocks != nil || m.Updated != 2 {
		t.Errorf("after clearing blocks: %+v", m)
	}
	if n := len(s.Messages("C1")); n != 1 {
		t.Errorf("update added messages: %d", n)
	}
	_, _, _, err = api.UpdateMessage("C1", ts)
	wantSlackError(t, err, "no_text")
	if m = message(t, s, "C1", ts); m.Updated != 2 {
		t.Errorf("failed update applied: %+v", m)
	}
}

func TestThreadReply(t *testing.T) {
	s := newServer(t)
	api := newClient(s)
	_, parent, err := api.PostMessage("C1", slack.MsgOptionText("build 42", false))
	if err != nil {
		t.Fatal(err)
	}
	_, reply, err := api.PostMessage("C1", slack.MsgOptionText("promoted to qa", false), slack.MsgOptionTS(parent))
	if err != nil {
		t.Fatal(err)
	}
	if m := message(t, s, "C1", reply); m.ThreadTS != parent {
		t.Errorf("reply = %+v, want thread_ts %s", m, parent)
	}
	if m := message(t, s, "C1", parent); m.ThreadTS != "" {
		t.Errorf("parent = %+v", m)
	}
}

func TestPostEphemeral(t *testing.T) {
	s := newServer(t)
	api := newClient(s)
	ts, err := api.PostEphemeral("C1", "U1", slack.MsgOptionText("only you can approve", false))
	if err != nil {
		t.Fatal(err)
	}
	want := slacktest.Message{Channel: "C1", TS: ts, Text: "only you can approve", User: "U1", Ephemeral: true}
	if got, ok := s.Message("C1", ts); !ok || !reflect.DeepEqual(got, want) {
		t.Errorf("Message = %+v, want %+v", got, want)
	}
	_, err = api.PostEphemeral("C1", "U9", slack.MsgOptionText("hi", false))
	wantSlackError(t, err, "user_not_in_channel")
	_, err = api.PostEphemeral("C9", "U1", slack.MsgOptionText("hi", false))
	wantSlackError(t, err, "channel_not_found")
	// Ephemeral messages cannot be updated nor replied to.
	_, _, _, err = api.UpdateMessage("C1", ts, slack.MsgOptionText("x", false))
	wantSlackError(t, err, "message_not_found")
	_, _, err = api.PostMessage("C1", slack.MsgOptionText("x", false), slack.MsgOptionTS(ts))
	wantSlackError(t, err, "thread_not_found")
	// In a DM, only its user is a member.
	if _, _, err := api.PostMessage("U1", slack.MsgOptionText("dm", false)); err != nil {
		t.Fatal(err)
	}
	_, err = api.PostEphemeral("D1", "U2", slack.MsgOptionText("hi", false))
	wantSlackError(t, err, "user_not_in_channel")
	if n := len(s.Messages("")); n != 2 {
		t.Errorf("%d messages, want 2", n)
	}
}

func TestOpenView(t *testing.T) {
	s := newServer(t)
	api := newClient(s)
	view := slack.ModalViewRequest{
		Type:            slack.VTModal,
		Title:           slack.NewTextBlockObject(slack.PlainTextType, "Reject build 42", false, false),
		Submit:          slack.NewTextBlockObject(slack.PlainTextType, "Reject", false, false),
		Blocks:          slack.Blocks{BlockSet: []slack.Block{section("Why?")}},
		CallbackID:      "reject",
		PrivateMetadata: "build=42",
	}
	resp, err := api.OpenView("trigger-1", view)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ID == "" || resp.CallbackID != "reject" || resp.PrivateMetadata != "build=42" ||
		resp.Title.Text != "Reject build 42" || len(resp.Blocks.BlockSet) != 1 || resp.State == nil {
		t.Errorf("view = %+v", resp.View)
	}
	want, err := json.Marshal(view)
	if err != nil {
		t.Fatal(err)
	}
	views := s.Views()
	if len(views) != 1 || string(views[0]) != string(want) {
		t.Errorf("Views() = %s, want [%s]", views, want)
	}
	if p := s.Calls("views.open")[0].Params; p["trigger_id"] != "trigger-1" || p["view"] != string(want) {
		t.Errorf("params = %q", p)
	}

	got := rawCall(t, s, "views.open", "application/json", `{"view":`+string(want)+`}`, "Bearer "+token)
	if got["error"] != "invalid_trigger_id" {
		t.Errorf("without trigger_id: %v", got)
	}
	got = rawCall(t, s, "views.open", "application/x-www-form-urlencoded",
		url.Values{"token": {token}, "trigger_id": {"t"}, "view": {`{"type":"home","blocks":[]}`}}.Encode(), "")
	if got["error"] != "invalid_arguments" {
		t.Errorf("home view: %v", got)
	}
	if n := len(s.Views()); n != 1 {
		t.Errorf("%d views stored, want 1", n)
	}
}

func TestUsersInfo(t *testing.T) {
	s := newServer(t)
	api := newClient(s)
	s.AddUser(slacktest.User{ID: "U3", Name: "ci", RealName: "CI", IsBot: true})
	u, err := api.GetUserInfo("U1")
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != "U1" || u.Name != "ada" || u.RealName != "Ada Lovelace" || u.IsBot ||
		u.Profile.Email != "ada@example.com" || u.Profile.RealName != "Ada Lovelace" || u.Profile.DisplayName != "ada" {
		t.Errorf("user = %+v", u)
	}
	if u, err := api.GetUserInfo("U3"); err != nil || !u.IsBot {
		t.Errorf("bot user = %+v, %v", u, err)
	}
	_, err = api.GetUserInfo("U9")
	wantSlackError(t, err, "user_not_found")
}

func TestUserGroupMembers(t *testing.T) {
	s := newServer(t)
	api := newClient(s)
	s.AddGroup("S2")
	members, err := api.GetUserGroupMembers("S1")
	if err != nil || !reflect.DeepEqual(members, []string{"U1", "U2"}) {
		t.Errorf("S1 = %v, %v", members, err)
	}
	if members, err := api.GetUserGroupMembers("S2"); err != nil || len(members) != 0 {
		t.Errorf("S2 = %v, %v", members, err)
	}
	_, err = api.GetUserGroupMembers("S9")
	wantSlackError(t, err, "no_such_subteam")
}
