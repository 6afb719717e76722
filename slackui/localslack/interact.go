package localslack

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// clickPayload builds Slack's block_actions payload for a click by p on a
// button of a message p sees, or says why there is nothing to send.
func (s *Slack) clickPayload(p Person, f url.Values) (map[string]any, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ts := f.Get("channel"), f.Get("ts")
	m, ok := s.ws.Message(ch, ts)
	if !ok || !s.canSee(p.ID, ch) || m.Ephemeral && m.User != p.ID {
		return nil, "That message is gone."
	}
	blockID, btn, found := findButton(m.Blocks, f.Get("action_id"), f.Get("value"))
	if !found {
		return nil, "That button is no longer on the message: it changed meanwhile."
	}
	now := s.opts.Now()
	trig := s.newTrigger(p.ID, ch)
	msg := s.ws.MessageJSON(m)
	return map[string]any{
		"type":       "block_actions",
		"team":       map[string]string{"id": TeamID, "domain": "local"},
		"user":       map[string]string{"id": p.ID, "username": strings.ToLower(p.Name), "name": strings.ToLower(p.Name), "team_id": TeamID},
		"api_app_id": AppID,
		"container": map[string]any{"type": "message", "message_ts": m.TS, "channel_id": ch,
			"is_ephemeral": m.Ephemeral},
		"trigger_id": trig,
		"channel":    map[string]string{"id": ch, "name": s.channelName(ch)},
		"message":    msg,
		"actions": []map[string]any{{
			"action_id": btn.ActionID, "block_id": blockID, "value": btn.Value, "type": "button",
			"text":      map[string]any{"type": "plain_text", "text": btn.buttonText(), "emoji": true},
			"style":     btn.Style,
			"action_ts": fmt.Sprintf("%d.%06d", now.Unix(), now.Nanosecond()/1000),
		}},
	}, ""
}

// submitPayload builds Slack's view_submission payload for p's open view
// id, with the inputs' values from f.
func (s *Slack) submitPayload(p Person, id string, f url.Values) (map[string]any, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var v *view
	for _, c := range s.views {
		if c.ID == id && c.User == p.ID {
			v = c
		}
	}
	if v == nil {
		return nil, "That dialog is closed."
	}
	var out map[string]any
	var mv modalView
	if json.Unmarshal(v.Raw, &out) != nil || json.Unmarshal(v.Raw, &mv) != nil {
		return nil, "That dialog cannot be read."
	}
	values := map[string]any{}
	for _, b := range decodeBlocks(mv.Blocks) {
		if b.Type == "input" && b.Element != nil {
			values[b.BlockID] = map[string]any{b.Element.ActionID: map[string]any{
				"type": b.Element.Type, "value": f.Get("v." + b.BlockID + "." + b.Element.ActionID)}}
		}
	}
	out["id"], out["team_id"], out["app_id"], out["root_view_id"] = v.ID, TeamID, AppID, v.ID
	out["hash"] = strconv.Itoa(v.Rev) + "." + v.ID
	out["state"] = map[string]any{"values": values}
	return map[string]any{
		"type":          "view_submission",
		"team":          map[string]string{"id": TeamID, "domain": "local"},
		"user":          map[string]string{"id": p.ID, "username": strings.ToLower(p.Name), "name": strings.ToLower(p.Name), "team_id": TeamID},
		"api_app_id":    AppID,
		"trigger_id":    s.newTrigger(p.ID, v.Channel),
		"view":          out,
		"response_urls": []any{},
	}, ""
}

// findButton finds the button with actionID and value in a message's blocks,
// and the id of its block (Slack makes one up when the sender gave none).
func findButton(raw json.RawMessage, actionID, value string) (string, element, bool) {
	for i, b := range decodeBlocks(raw) {
		id := b.BlockID
		if id == "" {
			id = "b" + strconv.Itoa(i)
		}
		els := b.Elements
		if b.Accessory != nil {
			els = append(els, *b.Accessory)
		}
		for _, e := range els {
			if e.Type == "button" && e.URL == "" && e.ActionID == actionID && e.Value == value {
				return id, e, true
			}
		}
	}
	return "", element{}, false
}

func (s *Slack) newTrigger(user, channel string) string {
	s.seq++
	id := strconv.Itoa(s.seq) + "." + rand.Text()
	s.triggers[id] = trigger{user: user, channel: channel, at: s.opts.Now()}
	for k, t := range s.triggers {
		if s.opts.Now().Sub(t.at) > 2*triggerTTL {
			delete(s.triggers, k)
		}
	}
	return id
}

func (s *Slack) channelName(id string) string {
	if c, ok := s.channels[id]; ok {
		return c.Name
	}
	return "directmessage"
}

// deliver sends an interaction payload to the bot as Slack does: a form
// with the JSON in "payload", signed with the signing secret. It returns
// the bot's answer when the bot took it (200).
func (s *Slack) deliver(ctx context.Context, payload map[string]any) ([]byte, error) {
	s.mu.Lock()
	target := s.interaction
	s.mu.Unlock()
	if target == "" {
		return nil, fmt.Errorf("the bot is not listening yet; try again in a moment")
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode payload: %w", err)
	}
	body := "payload=" + url.QueryEscape(string(raw))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("interaction request: %w", err)
	}
	ts := strconv.FormatInt(s.opts.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", Signature(s.opts.SigningSecret, ts, []byte(body)))
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the bot did not answer: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	drain(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read the bot's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the bot answered %d: %s", resp.StatusCode, bytes.TrimSpace(answer))
	}
	return answer, nil
}

// Signature is Slack's X-Slack-Signature of a request: "v0=" and the hex
// HMAC-SHA256 of "v0:<timestamp>:<body>" with the signing secret.
func Signature(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + timestamp + ":"))
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}
