package fakeslack

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Slack's limits that the fakes enforce.
const (
	maxMessageBlocks = 50  // blocks in one message
	maxViewBlocks    = 100 // blocks in one modal
)

// fixedEpoch is the second of the first message timestamp of a workspace
// without a clock; each message adds fixedStep microseconds.
const (
	fixedEpoch = 1700000000
	fixedStep  = 100
)

// Identity is who a fake workspace answers as.
type Identity struct {
	BotUserID string // the bot's user ID, the author of posted messages
	BotID     string
	TeamID    string
	TeamName  string
	// EnterpriseID is the Enterprise Grid organization of the workspace;
	// empty for a workspace outside one.
	EnterpriseID string
	AppID        string
	// URL is the workspace's address, answered by auth.test.
	URL string
	// Fake names the fake in the error codes of what it does not model,
	// such as "slacktest_mpim_not_supported".
	Fake string
}

// User is a member of the workspace, known to users.info,
// conversations.open, chat.postEphemeral and DMs.
type User struct {
	ID   string // U…
	Name string // handle, also answered as the profile's display_name
	// DisplayName is the profile's display_name when it is not Name.
	DisplayName string
	RealName    string
	Email       string
	IsBot       bool
}

// Message is the current state of a message posted to the workspace.
type Message struct {
	Channel  string // C… or D…
	TS       string
	ThreadTS string // parent's ts for a thread reply, else ""
	Text     string
	// User is the author (the bot), or for an ephemeral message the user
	// it was shown to.
	User string
	// Blocks is the blocks JSON array as sent, nil when there are none.
	Blocks json.RawMessage
	// Updated counts the chat.update calls applied to the message.
	Updated int
	// Ephemeral reports a message posted with chat.postEphemeral.
	Ephemeral bool
}

// Workspace is the state behind the Web API methods: users, groups,
// channels, DMs and messages. It is not safe for concurrent use.
type Workspace struct {
	id  Identity
	now func() time.Time

	users    map[string]User
	groups   map[string][]string
	channels map[string]bool
	dms      map[string]string // DM channel ID → user ID
	messages []*Message        // in post order
	byKey    map[string]*Message
	lastTS   int64 // microseconds
	nextView int
}

// New makes an empty workspace that answers as id. With a clock, message
// timestamps are the time of posting (each later than the one before);
// without one (nil) they are fixed and increasing: "1700000000.000100",
// "1700000000.000200", …, shared by all channels.
func New(id Identity, now func() time.Time) *Workspace {
	return &Workspace{id: id, now: now, users: map[string]User{}, groups: map[string][]string{},
		channels: map[string]bool{}, dms: map[string]string{}, byKey: map[string]*Message{},
		lastTS: fixedEpoch * 1_000_000}
}

// AddUser adds or replaces a member of the workspace.
func (w *Workspace) AddUser(u User) { w.users[u.ID] = u }

// AddGroup adds or replaces the user group id (S…) with its members, for
// usergroups.users.list.
func (w *Workspace) AddGroup(id string, members []string) {
	w.groups[id] = append([]string{}, members...)
}

// AddChannel declares the channel id (C…), which every user is a member of.
func (w *Workspace) AddChannel(id string) { w.channels[id] = true }

// Messages are the workspace's messages in post order, ephemeral ones
// included: the workspace's own, for the caller to read, not to keep.
func (w *Workspace) Messages() []*Message { return w.messages }

// Message is the message ts of channel.
func (w *Workspace) Message(channel, ts string) (*Message, bool) {
	m, ok := w.byKey[msgKey(channel, ts)]
	return m, ok
}

// DMUser is the user whose DM channel is ch, if ch is an open DM.
func (w *Workspace) DMUser(ch string) (string, bool) {
	u, ok := w.dms[ch]
	return u, ok
}

// Implements reports whether Answer implements method. views.open is the
// fakes' own, for each checks its triggers in its own way: see OpenView.
func Implements(method string) bool {
	_, ok := methods[method]
	return ok
}

// Answer answers a call of method, one that Implements, with the request's
// parameters.
func (w *Workspace) Answer(method string, p map[string]string) map[string]any {
	h, known := methods[method]
	if !known {
		return Err("unknown_method")
	}
	return h(w, p)
}

// MessageJSON is m as Slack answers a message object.
func (w *Workspace) MessageJSON(m *Message) map[string]any {
	out := map[string]any{
		"type":   "message",
		"user":   w.id.BotUserID,
		"bot_id": w.id.BotID,
		"team":   w.id.TeamID,
		"text":   m.Text,
		"ts":     m.TS,
		"app_id": w.id.AppID,
	}
	if m.ThreadTS != "" {
		out["thread_ts"] = m.ThreadTS
	}
	if m.Blocks != nil {
		out["blocks"] = m.Blocks
	}
	return out
}

// OpenView checks the view a views.open call gives (a modal, its blocks
// within Slack's limits) and returns the view as Slack answers it, with a
// new ID and the fields Slack adds, or Slack's error code. The trigger is
// the caller's to check.
func (w *Workspace) OpenView(raw string) (view map[string]any, code string) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &fields); err != nil || fields == nil {
		return nil, "invalid_arguments"
	}
	var typ string
	if err := json.Unmarshal(fields["type"], &typ); err != nil || typ != "modal" {
		return nil, "invalid_arguments"
	}
	if b, ok := fields["blocks"]; ok {
		if _, code := parseBlocks(string(b), maxViewBlocks); code != "" {
			return nil, "invalid_arguments"
		}
	}
	w.nextView++
	id := fmt.Sprintf("V%08d", w.nextView)
	view = map[string]any{}
	for k, v := range fields {
		view[k] = v
	}
	view["id"] = id
	view["team_id"] = w.id.TeamID
	view["app_id"] = w.id.AppID
	view["bot_id"] = w.id.BotID
	view["app_installed_team_id"] = w.id.TeamID
	view["hash"] = fmt.Sprintf("%d.%s", fixedEpoch, id)
	view["root_view_id"] = id
	view["previous_view_id"] = nil
	view["state"] = map[string]any{"values": map[string]any{}}
	return view, ""
}

// store gives m the next timestamp and keeps it.
func (w *Workspace) store(m *Message) {
	next := w.lastTS + fixedStep
	if w.now != nil {
		next = max(w.now().UnixMicro(), w.lastTS+1)
	}
	w.lastTS = next
	m.TS = fmt.Sprintf("%d.%06d", next/1_000_000, next%1_000_000)
	w.messages = append(w.messages, m)
	w.byKey[msgKey(m.Channel, m.TS)] = m
}

// resolveChannel returns the conversation a message for id goes to: a
// declared channel, an open DM, or the DM with user id, which dmUser then
// names and which the caller opens when the post succeeds.
func (w *Workspace) resolveChannel(id string) (channel, dmUser, code string) {
	if w.channelExists(id) {
		return id, "", ""
	}
	if _, known := w.users[id]; known && strings.HasPrefix(id, "U") {
		return DMID(id), id, ""
	}
	return "", "", "channel_not_found"
}

func (w *Workspace) channelExists(id string) bool {
	_, isDM := w.dms[id]
	return w.channels[id] || isDM
}

// DMID is the ID of the DM channel with user U<rest>: D<rest>.
func DMID(user string) string { return "D" + strings.TrimPrefix(user, "U") }

func msgKey(channel, ts string) string { return channel + "/" + ts }
