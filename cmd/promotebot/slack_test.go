package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/slackui/slacktest"
)

const (
	slackToken   = "xoxb-test-token"
	slackSigning = "test-signing-secret"
)

// slackServe runs serve for the hello project with Slack pointed at a
// recording fake: QA is UQA1, owners UOWN1.
func slackServe(t *testing.T) (base, remote string, fake *slacktest.Server) {
	t.Helper()
	fake = slacktest.NewServer(t, slackToken)
	fake.AddChannel("C0HELLO")
	for _, u := range []slacktest.User{
		{ID: "UQA1", Name: "ada", RealName: "Ada Lovelace", Email: "ada@example.com"},
		{ID: "UOWN1", Name: "olga", RealName: "Olga Owner", Email: "olga@example.com"},
		{ID: "UEVE", Name: "eve", RealName: "Eve", Email: "eve@example.com"},
	} {
		fake.AddUser(u)
	}
	remote = gittest.NewRemote(t, filepath.Join("..", "..", "testdata", "configrepo"))
	config := helloConfig(t, remote, "slack:\n  apiURL: "+fake.URL+"\n")
	base, _ = serveConfig(t, config, map[string]string{
		"PROMOTEBOT_SLACK_BOT_TOKEN":      slackToken,
		"PROMOTEBOT_SLACK_SIGNING_SECRET": slackSigning,
	})
	return base, remote, fake
}

// fromSlack adds to an interaction payload where Slack says it comes from:
// the recording fake's workspace and the bot's app.
func fromSlack(payload map[string]any) map[string]any {
	payload["team"] = map[string]string{"id": slacktest.TeamID, "domain": slacktest.TeamName}
	payload["enterprise"] = nil
	payload["api_app_id"] = slacktest.AppID
	return payload
}

// slashFrom is what Slack adds to a slash command's form about where it
// comes from.
const slashFrom = "&team_id=" + slacktest.TeamID + "&api_app_id=" + slacktest.AppID

// actionTS is t as Slack writes an action_ts: seconds and microseconds.
func actionTS(t time.Time) string {
	return fmt.Sprintf("%d.%06d", t.Unix(), t.Nanosecond()/1000)
}

// click sends a signed block_actions payload, as Slack does for a button.
func click(t *testing.T, base, user, action, buildID, channel string) int {
	t.Helper()
	now := time.Now()
	payload := fromSlack(map[string]any{
		"type":       "block_actions",
		"user":       map[string]string{"id": user, "name": "someone"},
		"trigger_id": "trigger-" + strconv.FormatInt(now.UnixNano(), 10),
		"channel":    map[string]string{"id": channel},
		"actions": []map[string]string{{"action_id": action, "block_id": "b", "value": buildID, "type": "button",
			"action_ts": actionTS(now)}},
	})
	raw, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	return slackPost(t, base+"/slack/interactions", "payload="+url.QueryEscape(string(raw)), slackSigning)
}

func slackPost(t *testing.T, u, body, secret string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:%s", ts, body)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode
}

// posts lists the messages posted (not ephemeral) as "channel thread-parent?".
func posts(fake *slacktest.Server) []string {
	var out []string
	for _, c := range fake.Calls("chat.postMessage") {
		if !c.OK {
			continue
		}
		entry := c.Params["channel"]
		if c.Params["thread_ts"] != "" {
			entry += " (reply)"
		}
		out = append(out, entry)
	}
	return out
}

// waitFor polls cond for up to 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// dmWith returns the DM message of user (posted to D<user without U>).
func dmWith(t *testing.T, fake *slacktest.Server, user string) slacktest.Message {
	t.Helper()
	ms := fake.Messages("D" + strings.TrimPrefix(user, "U"))
	for _, m := range ms {
		if !m.Ephemeral && m.ThreadTS == "" {
			return m
		}
	}
	t.Fatalf("no DM to %s", user)
	return slacktest.Message{}
}

// TestSlackFlowEndToEnd: a build reported by CI is announced, deployed to
// QA, approved by QA and deployed to production by its owner, all through
// signed Slack payloads, with the production overlay changed in git.
func TestSlackFlowEndToEnd(t *testing.T) {
	base, remote, fake := slackServe(t)
	code, accepted := postBuild(t, base, `{"project":"hello","image":"registry.example.com/acme/hello:3.1.0","type":"branch","target":"feature/pay","author":"someone-else@example.com"}`)
	if code != http.StatusAccepted {
		t.Fatalf("POST: %d %v", code, accepted)
	}
	id := accepted["id"].(string)
	waitState(t, base, id, "qa-ready")
	waitFor(t, "the DMs", func() bool { return len(posts(fake)) == 3 })
	if got := strings.Join(posts(fake), ","); got != "C0HELLO,UOWN1,UQA1" && got != "C0HELLO,DOWN1,DQA1" {
		t.Fatalf("posts after the QA deploy: %s", got)
	}
	owner, qa := dmWith(t, fake, "UOWN1"), dmWith(t, fake, "UQA1")
	if !strings.Contains(string(owner.Blocks), `"prod_deploy"`) || !strings.Contains(string(qa.Blocks), `"qa_approve"`) {
		t.Fatalf("buttons missing:\nowner %s\nqa %s", owner.Blocks, qa.Blocks)
	}

	// Not allowed, too early, or forged: nothing changes.
	if code := click(t, base, "UEVE", "qa_approve", id, "DEVE"); code != http.StatusOK {
		t.Fatalf("click by a stranger: %d", code)
	}
	if code := click(t, base, "UOWN1", "prod_deploy", id, owner.Channel); code != http.StatusOK {
		t.Fatalf("early deploy click: %d", code)
	}
	if code := slackPost(t, base+"/slack/interactions", "payload=%7B%7D", "wrong-secret"); code != http.StatusUnauthorized {
		t.Fatalf("forged payload: %d, want 401", code)
	}
	waitFor(t, "two ephemeral refusals", func() bool { return len(fake.Calls("chat.postEphemeral")) == 2 })
	eph := fake.Calls("chat.postEphemeral")
	if !strings.Contains(eph[0].Params["text"]+eph[1].Params["text"], "needs 1 QA approval") ||
		!strings.Contains(eph[0].Params["text"]+eph[1].Params["text"], "Only QA of hello (<@UQA1>) can approve") {
		t.Fatalf("refusals: %q / %q", eph[0].Params["text"], eph[1].Params["text"])
	}
	if b := getBuild(t, base, id); b["state"] != "qa-ready" {
		t.Fatalf("after refused clicks: %v", b["state"])
	}

	// QA approves (twice: a double click has one effect), the owner deploys.
	click(t, base, "UQA1", "qa_approve", id, qa.Channel)
	click(t, base, "UQA1", "qa_approve", id, qa.Channel)
	waitState(t, base, id, "approved")
	click(t, base, "UOWN1", "prod_deploy", id, owner.Channel)
	b := waitState(t, base, id, "promoted")
	if b["productionCommit"] != gittest.Head(t, remote, "main") {
		t.Fatalf("build %v, remote at %s", b, gittest.Head(t, remote, "main"))
	}
	kust, _ := gittest.ReadFile(t, remote, "main", "apps/hello/overlays/production/kustomization.yaml")
	if !strings.Contains(kust, "3.1.0") {
		t.Fatalf("production overlay:\n%s", kust)
	}
	prod := gittest.Log(t, remote, "main")[0]
	approved, promoted := prod.TrailerValues("Approved-by"), prod.TrailerValues("Promoted-by")
	if len(approved) != 1 || !strings.HasPrefix(approved[0], "ada <slack:UQA1> ") ||
		len(promoted) != 1 || promoted[0] != "olga <slack:UOWN1>" {
		t.Fatalf("trailers: Approved-by %q, Promoted-by %q", approved, promoted)
	}

	// Slack: the verdict told under the owner's DM, production announced,
	// and no live button left.
	waitFor(t, "the production announcement", func() bool { return len(posts(fake)) == 5 })
	want := []string{"C0HELLO", owner.Channel, qa.Channel, owner.Channel + " (reply)", "C0HELLO"}
	got := posts(fake)
	got[1], got[2] = strings.Replace(got[1], "UOWN1", owner.Channel, 1), strings.Replace(got[2], "UQA1", qa.Channel, 1)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("posts: %v, want %v", got, want)
	}
	waitFor(t, "buttons gone", func() bool {
		o, _ := fake.Message(owner.Channel, owner.TS)
		q, _ := fake.Message(qa.Channel, qa.TS)
		return !strings.Contains(string(o.Blocks), `"prod_deploy"`) && !strings.Contains(string(q.Blocks), `"qa_approve"`)
	})
	ch := fake.Messages("C0HELLO")
	if len(ch) != 2 || ch[0].Updated == 0 || !strings.Contains(ch[1].Text, "production") {
		t.Fatalf("channel messages: %+v", ch)
	}
	// The second approval click was answered "already approved", privately.
	if eph := fake.Calls("chat.postEphemeral"); len(eph) != 3 || !strings.Contains(eph[2].Params["text"], "already") {
		t.Fatalf("ephemeral messages: %+v, want the two refusals and the double click's", eph)
	}
	if as := getBuild(t, base, id)["approvals"].([]any); len(as) != 1 {
		t.Fatalf("approvals %v, want one", as)
	}

	// A click on a promoted build is explained, and changes nothing.
	click(t, base, "UOWN1", "build_close", id, owner.Channel)
	waitFor(t, "the stale-button explanation", func() bool { return len(fake.Calls("chat.postEphemeral")) == 4 })
	if text := fake.Calls("chat.postEphemeral")[3].Params["text"]; !strings.Contains(text, "already in production") {
		t.Fatalf("stale click answer: %q", text)
	}
}

// TestSlackStatusCommand: /promote status lists production and QA.
func TestSlackStatusCommand(t *testing.T) {
	base, _, _ := slackServe(t)
	_, accepted := postBuild(t, base, `{"project":"hello","image":"registry.example.com/acme/hello:4.0.0","type":"tag","target":"v4.0.0"}`)
	waitState(t, base, accepted["id"].(string), "qa-ready")
	out := slashCommand(t, base, "UQA1", "status hello")
	blocks, err := json.Marshal(out["blocks"])
	if err != nil || !strings.Contains(string(blocks), "tag-v4-0-0") || !strings.Contains(string(blocks), "4.0.0") {
		t.Fatalf("status blocks: %s", blocks)
	}
}
