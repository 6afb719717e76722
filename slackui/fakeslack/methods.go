package fakeslack

import (
	"encoding/json"
	"strings"
)

// methods are the Web API methods both fakes implement, answered as
// https://api.slack.com/methods documents them.
var methods = map[string]func(*Workspace, map[string]string) map[string]any{
	"auth.test":             (*Workspace).authTest,
	"bots.info":             (*Workspace).botsInfo,
	"chat.postMessage":      (*Workspace).postMessage,
	"chat.update":           (*Workspace).update,
	"chat.postEphemeral":    (*Workspace).postEphemeral,
	"conversations.open":    (*Workspace).conversationsOpen,
	"users.info":            (*Workspace).usersInfo,
	"usergroups.users.list": (*Workspace).usergroupUsers,
}

// authTest answers as for a bot token; enterprise_id is there only inside
// Enterprise Grid, as on Slack.
func (w *Workspace) authTest(map[string]string) map[string]any {
	a := map[string]any{
		"url":                   w.id.URL,
		"team":                  w.id.TeamName,
		"user":                  "promotebot",
		"team_id":               w.id.TeamID,
		"user_id":               w.id.BotUserID,
		"bot_id":                w.id.BotID,
		"is_enterprise_install": false,
	}
	if w.id.EnterpriseID != "" {
		a["enterprise_id"] = w.id.EnterpriseID
	}
	return OK(a)
}

// botsInfo implements bots.info for the workspace's own bot, which is how
// a bot learns its app's id.
func (w *Workspace) botsInfo(p map[string]string) map[string]any {
	if p["bot"] != w.id.BotID {
		return Err("bot_not_found")
	}
	return OK(map[string]any{"bot": map[string]any{
		"id": w.id.BotID, "deleted": false, "name": "promotebot", "updated": fixedEpoch,
		"app_id": w.id.AppID, "user_id": w.id.BotUserID,
		"icons": map[string]any{"image_36": "https://a.slack-edge.com/80588/img/plugins/app/bot_36.png"},
	}})
}

// postMessage implements chat.postMessage. A user ID as the channel posts
// into the DM with that user, opening it.
func (w *Workspace) postMessage(p map[string]string) map[string]any {
	ch, dmUser, code := w.resolveChannel(p["channel"])
	if code != "" {
		return Err(code)
	}
	m := &Message{Channel: ch, User: w.id.BotUserID}
	if code := setContent(m, p, true); code != "" {
		return Err(code)
	}
	if code := w.setThread(m, p["thread_ts"]); code != "" {
		return Err(code)
	}
	if dmUser != "" {
		w.dms[ch] = dmUser
	}
	w.store(m)
	return OK(map[string]any{"channel": ch, "ts": m.TS, "message": w.MessageJSON(m)})
}

// update implements chat.update. Fields left out keep their value; blocks
// set to [] removes them.
func (w *Workspace) update(p map[string]string) map[string]any {
	ch := p["channel"]
	if !w.channelExists(ch) {
		return Err("channel_not_found")
	}
	// Ephemeral messages can only be replaced through a response_url.
	m, ok := w.byKey[msgKey(ch, p["ts"])]
	if !ok || m.Ephemeral {
		return Err("message_not_found")
	}
	next := *m
	if code := setContent(&next, p, false); code != "" {
		return Err(code)
	}
	next.Updated++
	*m = next
	return OK(map[string]any{"channel": ch, "ts": m.TS, "text": m.Text, "message": w.MessageJSON(m)})
}

// postEphemeral implements chat.postEphemeral: a message in channel that
// only user sees.
func (w *Workspace) postEphemeral(p map[string]string) map[string]any {
	ch := p["channel"]
	if !w.channelExists(ch) {
		return Err("channel_not_found")
	}
	user := p["user"]
	if _, known := w.users[user]; !known {
		return Err("user_not_in_channel")
	}
	if dmUser, isDM := w.dms[ch]; isDM && dmUser != user {
		return Err("user_not_in_channel")
	}
	m := &Message{Channel: ch, User: user, Ephemeral: true}
	if code := setContent(m, p, true); code != "" {
		return Err(code)
	}
	if code := w.setThread(m, p["thread_ts"]); code != "" {
		return Err(code)
	}
	w.store(m)
	return OK(map[string]any{"message_ts": m.TS})
}

// conversationsOpen implements conversations.open for one user (users) or an
// open DM (channel). Multi-person DMs are not modelled.
func (w *Workspace) conversationsOpen(p map[string]string) map[string]any {
	var user string
	switch {
	case p["users"] != "":
		users := strings.Split(p["users"], ",")
		if len(users) > 1 {
			return Err(w.id.Fake + "_mpim_not_supported")
		}
		user = strings.TrimSpace(users[0])
		if _, known := w.users[user]; !known {
			return Err("user_not_found")
		}
	case p["channel"] != "":
		u, isDM := w.dms[p["channel"]]
		if !isDM {
			return Err("channel_not_found")
		}
		user = u
	default:
		return Err("users_list_not_supplied")
	}
	id := DMID(user)
	_, open := w.dms[id]
	w.dms[id] = user
	channel := map[string]any{"id": id}
	if p["return_im"] == "true" || p["return_im"] == "1" {
		channel["is_im"] = true
		channel["user"] = user
		channel["is_open"] = true
	}
	return OK(map[string]any{"channel": channel, "no_op": open, "already_open": open})
}

func (w *Workspace) usersInfo(p map[string]string) map[string]any {
	u, ok := w.users[p["user"]]
	if !ok {
		return Err("user_not_found")
	}
	display := u.DisplayName
	if display == "" {
		display = u.Name
	}
	return OK(map[string]any{"user": map[string]any{
		"id":        u.ID,
		"team_id":   w.id.TeamID,
		"name":      u.Name,
		"real_name": u.RealName,
		"deleted":   false,
		"is_bot":    u.IsBot,
		"profile": map[string]any{
			"email":                   u.Email,
			"display_name":            display,
			"display_name_normalized": display,
			"real_name":               u.RealName,
			"real_name_normalized":    u.RealName,
		},
	}})
}

func (w *Workspace) usergroupUsers(p map[string]string) map[string]any {
	members, ok := w.groups[p["usergroup"]]
	if !ok {
		return Err("no_such_subteam")
	}
	return OK(map[string]any{"users": append([]string{}, members...)})
}

// setContent applies the text and blocks of p to m. A new message needs
// text, blocks or attachments; an update needs one of them too, and keeps
// what it leaves out.
func setContent(m *Message, p map[string]string, create bool) string {
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
func (w *Workspace) setThread(m *Message, threadTS string) string {
	if threadTS == "" {
		return ""
	}
	parent, ok := w.byKey[msgKey(m.Channel, threadTS)]
	if !ok || parent.Ephemeral {
		return "thread_not_found"
	}
	m.ThreadTS = threadTS
	return ""
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
