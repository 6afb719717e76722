package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/slackui/slacktest"
)

// TestAttacksOnSlackReplayAndOrigin: genuinely signed Slack requests that
// would be obeyed if taken at face value, against a real server restarted
// on its data. The build's promotion failed after its owner clicked
// Deploy; the click's request was captured. Neither it nor anything from
// another workspace, enterprise or app may deploy the build again, and
// nothing else may change: no commit, no Slack message beyond the one
// ephemeral refusal when one is expected.
func TestAttacksOnSlackReplayAndOrigin(t *testing.T) {
	skipIfShort(t, "a real server restarted on its data, half a dozen replayed and foreign requests each watched for 250 ms")
	fake := slacktest.NewServer(t, slackToken)
	fake.AddChannel("C0HELLO")
	for _, id := range []string{"UQA1", "UOWN1"} {
		fake.AddUser(slacktest.User{ID: id, Name: strings.ToLower(id[1:])})
	}
	remote := gittest.NewRemote(t, filepath.Join("..", "..", "testdata", "configrepo"))
	config := helloConfig(t, remote, "slack:\n  apiURL: "+fake.URL+"\n")
	env := map[string]string{"PROMOTEBOT_SLACK_BOT_TOKEN": slackToken, "PROMOTEBOT_SLACK_SIGNING_SECRET": slackSigning}
	base, _, stop := serveStoppable(t, config, env)

	code, accepted := postBuild(t, base, `{"project":"hello","image":"registry.example.com/acme/hello:6.6.6","type":"branch","target":"feature/replay"}`)
	if code != http.StatusAccepted {
		t.Fatalf("POST: %d %v", code, accepted)
	}
	id := accepted["id"].(string)
	waitState(t, base, id, "qa-ready")
	click(t, base, "UQA1", "qa_approve", id, "DOWN1")
	waitState(t, base, id, "approved")

	// The owner's Deploy click, captured on its way; and a second one the
	// attacker kept from reaching the bot at all. The push to production
	// is refused, so the promotion fails.
	signedAt := time.Now()
	deploy := originClick(t, "UOWN1", "prod_deploy", id, signedAt, nil)
	held := originClick(t, "UOWN1", "prod_deploy", id, signedAt.Add(time.Millisecond), nil)
	gittest.RejectPushes(t, remote, "production is frozen")
	if code, _ := atkSlack(t, base+"/slack/interactions", deploy, deploy, slackSigning, signedAt); code != http.StatusOK {
		t.Fatalf("the owner's click: %d", code)
	}
	waitState(t, base, id, "promote-failed")
	if err := os.Remove(filepath.Join(remote, "hooks", "pre-receive")); err != nil {
		t.Fatal(err)
	}
	stop()
	base, logs, _ := serveStoppable(t, config, env)
	waitState(t, base, id, "promote-failed")
	quietSlack(t, fake)

	foreign := func(edit func(map[string]any)) func(t *testing.T) (int, string) {
		return func(t *testing.T) (int, string) {
			now := time.Now()
			body := originClick(t, "UOWN1", "prod_deploy", id, now, edit)
			return atkSlack(t, base+"/slack/interactions", body, body, slackSigning, now)
		}
	}
	attacks := []struct {
		name string
		send func(t *testing.T) (int, string)
		want int
		body string // in the answer, when set
		eph  string // in the one ephemeral answer to UOWN1, when set
	}{
		{name: "replay of the captured Deploy click after a restart", want: http.StatusOK,
			send: func(t *testing.T) (int, string) {
				return atkSlack(t, base+"/slack/interactions", deploy, deploy, slackSigning, signedAt)
			}},
		{name: "a Deploy click made before the promotion failed, held back until now", want: http.StatusOK,
			eph: "This build changed since you clicked",
			send: func(t *testing.T) (int, string) {
				return atkSlack(t, base+"/slack/interactions", held, held, slackSigning, signedAt)
			}},
		{name: "a click from another workspace", want: http.StatusOK,
			send: foreign(func(p map[string]any) { p["team"] = map[string]string{"id": "T0OTHER", "domain": "other"} })},
		{name: "a click from another app", want: http.StatusOK,
			send: foreign(func(p map[string]any) { p["api_app_id"] = "A0OTHER" })},
		{name: "a click from an enterprise", want: http.StatusOK,
			send: foreign(func(p map[string]any) { p["enterprise"] = map[string]string{"id": "E0OTHER", "name": "Other"} })},
		{name: "/promote from another workspace", want: http.StatusOK, body: "does not serve this workspace",
			send: func(t *testing.T) (int, string) {
				body := "command=%2Fpromote&text=status+hello&user_id=UOWN1&channel_id=C0HELLO&team_id=T0OTHER&api_app_id=" + slacktest.AppID
				return atkSlack(t, base+"/slack/commands", body, body, slackSigning, time.Now())
			}},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			head := gittest.Head(t, remote, "main")
			writes := slackWriteCount(fake)
			code, answer := a.send(t)
			if code != a.want || !strings.Contains(answer, a.body) {
				t.Fatalf("answer %d %s, want %d with %q", code, answer, a.want, a.body)
			}
			if a.eph != "" {
				writes++
				waitFor(t, "the refusal", func() bool { return slackWriteCount(fake) >= writes })
				eph := fake.Calls("chat.postEphemeral")
				if got := eph[len(eph)-1].Params; !strings.Contains(got["text"], a.eph) || got["user"] != "UOWN1" {
					t.Errorf("ephemeral to %s: %q, want to UOWN1: %q", got["user"], got["text"], a.eph)
				}
			}
			time.Sleep(250 * time.Millisecond) // room for an effect that should not come
			if b := getBuild(t, base, id); b["state"] != "promote-failed" {
				t.Errorf("the build is %v, want promote-failed", b["state"])
			}
			if h := gittest.Head(t, remote, "main"); h != head {
				t.Errorf("main moved to %s", h)
			}
			if n := slackWriteCount(fake); n != writes {
				t.Errorf("%d Slack writes, want %d", n, writes)
			}
		})
	}

	out := logs.String()
	for _, want := range []string{"slack click already handled", "slack request from elsewhere refused", "T0OTHER", "A0OTHER", "E0OTHER"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log does not say %q", want)
		}
	}
	for _, secret := range []string{slackSigning, slackToken, webhookSecret} {
		if strings.Contains(out, secret) {
			t.Errorf("the log shows a secret %q", secret)
		}
	}

	// Controls: the owner's new click is obeyed.
	t.Run("controls", func(t *testing.T) {
		click(t, base, "UOWN1", "prod_deploy", id, "DOWN1")
		waitState(t, base, id, "promoted")
	})
}

// originClick is the form body Slack sends for user's click on action for
// build at at, from the fake workspace and the bot's app unless edit
// changes where it says it comes from.
func originClick(t *testing.T, user, action, build string, at time.Time, edit func(map[string]any)) string {
	t.Helper()
	p := fromSlack(map[string]any{
		"type": "block_actions", "user": map[string]string{"id": user},
		"trigger_id": "trigger-" + strconv.FormatInt(at.UnixNano(), 10), "channel": map[string]string{"id": "D" + user[1:]},
		"actions": []map[string]string{{"action_id": action, "block_id": "b", "value": build, "type": "button",
			"action_ts": actionTS(at)}},
	})
	if edit != nil {
		edit(p)
	}
	raw, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return "payload=" + url.QueryEscape(string(raw))
}

// quietSlack waits until Slack has not been called for 400 ms: the jobs
// a restart found queued have run.
func quietSlack(t *testing.T, fake *slacktest.Server) {
	t.Helper()
	last, since := -1, time.Now()
	waitFor(t, "Slack to be quiet", func() bool {
		if n := len(fake.Calls()); n != last {
			last, since = n, time.Now()
		}
		return time.Since(since) > 400*time.Millisecond
	})
}

// slackWriteCount counts the Slack calls that show something to someone.
func slackWriteCount(fake *slacktest.Server) int {
	n := 0
	for _, c := range fake.Calls() {
		if slackWrites[c.Method] {
			n++
		}
	}
	return n
}
