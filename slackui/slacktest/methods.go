package slacktest

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Slack's limits that the fake enforces.
const (
	maxMessageBlocks = 50  // blocks in one message
	maxViewBlocks    = 100 // blocks in one modal
)

// handlers are the Web API methods the server implements. They run with
// s.mu held, after authentication, with the request's parameters.
var handlers = map[string]func(*Server, map[string]string) answer{
	"auth.test":             (*Server).authTest,
	"chat.postMessage":      (*Server).postMessage,
	"chat.update":           (*Server).update,
	"chat.postEphemeral":    (*Server).postEphemeral,
	"conversations.open":    (*Server).conversationsOpen,
	"views.open":            (*Server).viewsOpen,
	"users.info":            (*Server).usersInfo,
	"usergroups.users.list": (*Server).usergroupUsers,
}

func (s *Server) authTest(map[string]string) answer {
	return okAnswer(map[string]any{
		"url":     "https://" + TeamName + ".slack.com/",
		"team":    TeamName,
		"user":    "promotebot",
		"team_id": TeamID,
		"user_id": BotUserID,
		"bot_id":  BotID,
	})
}

// postMessage implements chat.postMessage. A user ID as the channel posts
// into the DM with that user, opening it.
func (s *Server) postMessage(p map[string]string) answer {
	ch, dmUser, code := s.resolveChannel(p["channel"])
	if code != "" {
		return errAnswer(code)
	}
	m := &Message{Channel: ch, User: BotUserID}
	if code := s.setContent(m, p, true); code != "" {
		return errAnswer(code)
	}
	if code := s.setThread(m, p["thread_ts"]); code != "" {
		return errAnswer(code)
	}
	if dmUser != "" {
		s.dms[ch] = dmUser
	}
	s.store(m)
	return okAnswer(map[string]any{"channel": ch, "ts": m.TS, "message": messageJSON(m)})
}

// update implements chat.update. Fields left out keep their value; blocks
// set to [] removes them.
func (s *Server) update(p map[string]string) answer {
	ch := p["channel"]
	if !s.channelExists(ch) {
		return errAnswer("channel_not_found")
	}
	// Ephemeral messages can only be replaced through a response_url.
	m, ok := s.byKey[msgKey(ch, p["ts"])]
	if !ok || m.Ephemeral {
		return errAnswer("message_not_found")
	}
	next := *m
	if code := s.setContent(&next, p, false); code != "" {
		return errAnswer(code)
	}
	next.Updated++
	*m = next
	return okAnswer(map[string]any{"channel": ch, "ts": m.TS, "text": m.Text, "message": messageJSON(m)})
}

// postEphemeral implements chat.postEphemeral: a message in channel that
// only user sees.
func (s *Server) postEphemeral(p map[string]string) answer {
	ch := p["channel"]
	if !s.channelExists(ch) {
		return errAnswer("channel_not_found")
	}
	user := p["user"]
	if _, known := s.users[user]; !known {
		return errAnswer("user_not_in_channel")
	}
	if dmUser, isDM := s.dms[ch]; isDM && dmUser != user {
		return errAnswer("user_not_in_channel")
	}
	m := &Message{Channel: ch, User: user, Ephemeral: true}
	if code := s.setContent(m, p, true); code != "" {
		return errAnswer(code)
	}
	if code := s.setThread(m, p["thread_ts"]); code != "" {
		return errAnswer(code)
	}
	s.store(m)
	return okAnswer(map[string]any{"message_ts": m.TS})
}

// conversationsOpen implements conversations.open for one user (users) or an
// open DM (channel). Multi-person DMs are not modelled.
func (s *Server) conversationsOpen(p map[string]string) answer {
	var user string
	switch {
	case p["users"] != "":
		users := strings.Split(p["users"], ",")
		if len(users) > 1 {
			return errAnswer("slacktest_mpim_not_supported")
		}
		user = strings.TrimSpace(users[0])
		if _, known := s.users[user]; !known {
			return errAnswer("user_not_found")
		}
	case p["channel"] != "":
		u, isDM := s.dms[p["channel"]]
		if !isDM {
			return errAnswer("channel_not_found")
		}
		user = u
	default:
		return errAnswer("users_list_not_supplied")
	}
	id := dmID(user)
	_, open := s.dms[id]
	s.dms[id] = user
	channel := map[string]any{"id": id}
	if p["return_im"] == "true" || p["return_im"] == "1" {
		channel["is_im"] = true
		channel["user"] = user
		channel["is_open"] = true
	}
	return okAnswer(map[string]any{"channel": channel, "no_op": open, "already_open": open})
}

// viewsOpen implements views.open: it stores the view and answers it with
// the fields Slack adds.
func (s *Server) viewsOpen(p map[string]string) answer {
	if p["trigger_id"] == "" {
		return errAnswer("invalid_trigger_id")
	}
	raw := p["view"]
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &fields); err != nil || fields == nil {
		return errAnswer("invalid_arguments")
	}
	var typ string
	if err := json.Unmarshal(fields["type"], &typ); err != nil || typ != "modal" {
		return errAnswer("invalid_arguments")
	}
	if b, ok := fields["blocks"]; ok {
		if _, code := parseBlocks(string(b), maxViewBlocks); code != "" {
			return errAnswer("invalid_arguments")
		}
	}
	s.nextView++
	id := fmt.Sprintf("V%08d", s.nextView)
	view := map[string]any{}
	for k, v := range fields {
		view[k] = v
	}
	view["id"] = id
	view["team_id"] = TeamID
	view["app_id"] = "ASLACKTEST"
	view["bot_id"] = BotID
	view["app_installed_team_id"] = TeamID
	view["hash"] = fmt.Sprintf("%d.%s", tsEpoch, id)
	view["root_view_id"] = id
	view["previous_view_id"] = nil
	view["state"] = map[string]any{"values": map[string]any{}}
	s.views = append(s.views, json.RawMessage(raw))
	return okAnswer(map[string]any{"view": view})
}

func (s *Server) usersInfo(p map[string]string) answer {
	u, ok := s.users[p["user"]]
	if !ok {
		return errAnswer("user_not_found")
	}
	return okAnswer(map[string]any{"user": map[string]any{
		"id":        u.ID,
		"team_id":   TeamID,
		"name":      u.Name,
		"real_name": u.RealName,
		"deleted":   false,
		"is_bot":    u.IsBot,
		"profile": map[string]any{
			"email":                   u.Email,
			"display_name":            u.Name,
			"display_name_normalized": u.Name,
			"real_name":               u.RealName,
			"real_name_normalized":    u.RealName,
		},
	}})
}

func (s *Server) usergroupUsers(p map[string]string) answer {
	members, ok := s.groups[p["usergroup"]]
	if !ok {
		return errAnswer("no_such_subteam")
	}
	return okAnswer(map[string]any{"users": append([]string{}, members...)})
}

// resolveChannel returns the conversation a message for id goes to: a
// declared channel, an open DM, or the DM with user id, which dmUser then
// names and which the caller opens when the post succeeds.
func (s *Server) resolveChannel(id string) (channel, dmUser, code string) {
	if s.channelExists(id) {
		return id, "", ""
	}
	if _, known := s.users[id]; known && strings.HasPrefix(id, "U") {
		return dmID(id), id, ""
	}
	return "", "", "channel_not_found"
}

func (s *Server) channelExists(id string) bool {
	_, isDM := s.dms[id]
	return s.channels[id] || isDM
}

// setContent applies the text and blocks of p to m. A new message needs
// text, blocks or attachments; an update needs one of them too, and keeps
// what it leaves out.
func (s *Server) setContent(m *Message, p map[string]string, create bool) string {
	text, hasText := p["text"]
	rawBlocks, hasBlocks := p["blocks"]
	var blocks json.RawMessage
	if hasBlocks {
		var code string
		if blocks, code = parseBlocks(rawBlocks, maxMessageBlocks); code != "" {
			return code
		}
	}
	attachments := p["attachments"]
	hasAttachments := attachments != "" && attachments != "[]"
	if create && text == "" && blocks == nil && !hasAttachments ||
		!create && !hasText && !hasBlocks && !hasAttachments {
		return "no_text"
	}
	if hasText {
		m.Text = text
	}
	if hasBlocks {
		m.Blocks = blocks
	}
	return ""
}

// setThread makes m a reply to the message threadTS of its channel, when
// threadTS is set.
func (s *Server) setThread(m *Message, threadTS string) string {
	if threadTS == "" {
		return ""
	}
	parent, ok := s.byKey[msgKey(m.Channel, threadTS)]
	if !ok || parent.Ephemeral {
		return "thread_not_found"
	}
	m.ThreadTS = threadTS
	return ""
}

// store gives m the next timestamp and keeps it.
func (s *Server) store(m *Message) {
	s.nextTS++
	micros := int64(tsEpoch)*1_000_000 + int64(s.nextTS)*tsStep
	m.TS = fmt.Sprintf("%d.%06d", micros/1_000_000, micros%1_000_000)
	s.messages = append(s.messages, m)
	s.byKey[msgKey(m.Channel, m.TS)] = m
}

// parseBlocks checks a blocks JSON array: every block an object with a
// type, at most limit of them. It returns nil for an empty array.
func parseBlocks(raw string, limit int) (json.RawMessage, string) {
	var blocks []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &blocks); err != nil {
		return nil, "invalid_blocks_format"
	}
	if len(blocks) > limit {
		return nil, "invalid_blocks"
	}
	for _, b := range blocks {
		var typ string
		if err := json.Unmarshal(b["type"], &typ); err != nil || typ == "" {
			return nil, "invalid_blocks"
		}
	}
	if len(blocks) == 0 {
		return nil, ""
	}
	return json.RawMessage(raw), ""
}

// messageJSON is m as Slack answers a message object.
func messageJSON(m *Message) map[string]any {
	out := map[string]any{
		"type":   "message",
		"user":   BotUserID,
		"bot_id": BotID,
		"team":   TeamID,
		"text":   m.Text,
		"ts":     m.TS,
		"app_id": "ASLACKTEST",
	}
	if m.ThreadTS != "" {
		out["thread_ts"] = m.ThreadTS
	}
	if m.Blocks != nil {
		out["blocks"] = m.Blocks
	}
	return out
}

// dmID is the ID of the DM channel with user U<rest>: D<rest>.
func dmID(user string) string { return "D" + strings.TrimPrefix(user, "U") }
