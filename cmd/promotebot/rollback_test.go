package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/slackui/slacktest"
)

// promoteThroughSlack takes a build from CI to production through signed
// Slack clicks: QA UQA1 approves, owner UOWN1 deploys.
func promoteThroughSlack(t *testing.T, base string, fake *slacktest.Server, image string) string {
	t.Helper()
	code, accepted := postBuild(t, base, `{"project":"hello","image":"`+image+`","type":"branch","target":"feature/pay"}`)
	if code != http.StatusAccepted {
		t.Fatalf("POST %s: %d %v", image, code, accepted)
	}
	id := accepted["id"].(string)
	waitState(t, base, id, "qa-ready")
	click(t, base, "UQA1", "qa_approve", id, "DQA1")
	waitState(t, base, id, "approved")
	click(t, base, "UOWN1", "prod_deploy", id, "DOWN1")
	waitState(t, base, id, "promoted")
	return id
}

// slashCommand runs /promote text as user and returns Slack's answer.
func slashCommand(t *testing.T, base, user, text string) map[string]any {
	t.Helper()
	body := "command=%2Fpromote&text=" + url.QueryEscape(text) + "&user_id=" + user + "&channel_id=C0HELLO" + slashFrom
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(slackSigning))
	fmt.Fprintf(mac, "v0:%s:%s", ts, body)
	req, err := http.NewRequest(http.MethodPost, base+"/slack/commands", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	code, out := do(t, req)
	if code != http.StatusOK || out["response_type"] != "ephemeral" {
		t.Fatalf("/promote %s: %d %v", text, code, out)
	}
	return out
}

// submitRollback submits the Roll back dialog as Slack delivers it.
func submitRollback(t *testing.T, base string, view json.RawMessage, user, reason string) int {
	t.Helper()
	var v struct {
		CallbackID      string `json:"callback_id"`
		PrivateMetadata string `json:"private_metadata"`
	}
	if err := json.Unmarshal(view, &v); err != nil {
		t.Fatal(err)
	}
	payload := fromSlack(map[string]any{
		"type": "view_submission",
		"user": map[string]string{"id": user},
		"view": map[string]any{"id": "V0ROLLBACK", "hash": "1", "callback_id": v.CallbackID, "private_metadata": v.PrivateMetadata,
			"state": map[string]any{"values": map[string]any{"reason": map[string]any{"reason": map[string]any{
				"type": "plain_text_input", "value": reason}}}}},
	})
	raw, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	return slackPost(t, base+"/slack/interactions", "payload="+url.QueryEscape(string(raw)), slackSigning)
}

// TestServeRollback: an owner rolls production back from Slack; the config
// repository gets one commit that restores the earlier image with who and
// why in its trailers, the channel hears it, and the restored build is what
// /promote status shows in production.
func TestServeRollback(t *testing.T) {
	skipIfShort(t, "a live server with a config remote and Slack")
	base, remote, fake := slackServe(t)
	first := promoteThroughSlack(t, base, fake, "registry.example.com/acme/hello:3.1.0")
	second := promoteThroughSlack(t, base, fake, "registry.example.com/acme/hello:3.2.0")
	before := gittest.Head(t, remote, "main")

	// /promote rollback lists what production ran before, from git.
	out := slashCommand(t, base, "UOWN1", "rollback hello")
	blocks, err := json.Marshal(out["blocks"])
	if err != nil || !strings.Contains(string(blocks), `"prod_rollback_to"`) || !strings.Contains(string(blocks), "hello:3.1.0") {
		t.Fatalf("/promote rollback answered %v", out)
	}

	// A stranger's click opens nothing; the owner's opens the dialog that
	// names the image it restores.
	click(t, base, "UEVE", "prod_rollback", second, "DEVE")
	click(t, base, "UOWN1", "prod_rollback", first, "DOWN1")
	waitFor(t, "the two refusals", func() bool { return len(fake.Calls("chat.postEphemeral")) >= 2 })
	if len(fake.Views()) != 0 {
		t.Fatalf("a dialog was opened for a refused rollback: %s", fake.Views())
	}
	click(t, base, "UOWN1", "prod_rollback", second, "DOWN1")
	waitFor(t, "the Roll back dialog", func() bool { return len(fake.Views()) == 1 })
	view := fake.Views()[0]
	if !strings.Contains(string(view), "registry.example.com/acme/hello:3.1.0") {
		t.Fatalf("the dialog does not name the image it restores: %s", view)
	}
	if code := submitRollback(t, base, view, "UOWN1", "checkout <!channel> broken\nsince 3.2.0"); code != http.StatusOK {
		t.Fatalf("submit: %d", code)
	}
	b := waitState(t, base, second, "rolled-back")
	rb, _ := b["rollback"].(map[string]any)
	if rb["image"] != "registry.example.com/acme/hello:3.1.0" || rb["reason"] != "checkout <!channel> broken since 3.2.0" {
		t.Fatalf("rollback record: %v", rb)
	}

	// One commit on top, restoring the image, with its trailers.
	log := gittest.Log(t, remote, "main")
	if log[1].Hash != before || rb["commit"] != log[0].Hash {
		t.Fatalf("the rollback is not the one commit on top of %s: %v / %v", before, log[0].Hash, rb["commit"])
	}
	kust, _ := gittest.ReadFile(t, remote, "main", "apps/hello/overlays/production/kustomization.yaml")
	if !strings.Contains(kust, "3.1.0") || strings.Contains(kust, "3.2.0") {
		t.Fatalf("production overlay after the rollback:\n%s", kust)
	}
	c := log[0]
	for key, want := range map[string]string{
		"Promotebot-Rollback-Of": second,
		"Promotebot-Image":       "registry.example.com/acme/hello:3.1.0",
		"Promoted-by":            "olga <slack:UOWN1>",
		"Promotebot-Reason":      "checkout <!channel> broken since 3.2.0",
		"Promotebot-Environment": "production",
	} {
		if got := c.TrailerValues(key); len(got) != 1 || got[0] != want {
			t.Errorf("trailer %s = %q, want %q", key, got, want)
		}
	}
	if got := c.TrailerValues("Approved-by"); len(got) != 0 {
		t.Errorf("a rollback claims approvals: %q", got)
	}

	// The channel hears it, escaped; the restored build is production.
	waitFor(t, "the channel to hear of the rollback", func() bool {
		for _, m := range fake.Messages("C0HELLO") {
			if strings.Contains(m.Text, "rolled back") {
				return strings.Contains(m.Text, "<@UOWN1>") && !strings.Contains(m.Text, "<!channel>")
			}
		}
		return false
	})
	if got := getBuild(t, base, first)["state"]; got != "promoted" {
		t.Errorf("the restored build is %v", got)
	}
	// Rolling back the rolled-back build again is refused.
	click(t, base, "UOWN1", "prod_rollback", second, "DOWN1")
	waitFor(t, "the refusal", func() bool { return len(fake.Calls("chat.postEphemeral")) >= 3 })
	if len(fake.Views()) != 1 || gittest.Head(t, remote, "main") != log[0].Hash {
		t.Error("a second rollback of the same build did something")
	}
}
