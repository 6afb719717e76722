package fakeslack

import (
	"reflect"
	"testing"
	"time"
)

// TestTimestamps: without a clock the timestamps are the fixed sequence the
// tests rely on; with one they are the time of posting, and still
// increasing when the clock stands still or goes back.
func TestTimestamps(t *testing.T) {
	at := time.Date(2025, 3, 4, 15, 4, 5, 123456000, time.UTC)
	clock := at
	for _, tc := range []struct {
		name string
		now  func() time.Time
		step func() // moves the clock between posts
		want []string
	}{
		{"fixed", nil, func() {}, []string{"1700000000.000100", "1700000000.000200", "1700000000.000300"}},
		{"clock", func() time.Time { return clock }, func() { clock = clock.Add(-time.Second) },
			[]string{"1741100645.123456", "1741100645.123457", "1741100645.123458"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := New(Identity{BotUserID: "UBOT"}, tc.now)
			w.AddChannel("C1")
			for i, want := range tc.want {
				a := w.Answer("chat.postMessage", map[string]string{"channel": "C1", "text": "hi"})
				if a["ok"] != true || a["ts"] != want {
					t.Errorf("post %d: %v, want ts %s", i, a, want)
				}
				tc.step()
			}
			if got := len(w.Messages()); got != len(tc.want) {
				t.Errorf("%d messages kept, want %d", got, len(tc.want))
			}
		})
	}
}

// TestAnswerUnknownMethod: a method the core does not implement is
// answered as Slack answers one, and Implements says so beforehand.
func TestAnswerUnknownMethod(t *testing.T) {
	w := New(Identity{}, nil)
	for method, want := range map[string]bool{"chat.postMessage": true, "views.open": false, "chat.delete": false} {
		if got := Implements(method); got != want {
			t.Errorf("Implements(%q) = %v, want %v", method, got, want)
		}
	}
	if a := w.Answer("chat.delete", nil); a["ok"] != false || a["error"] != "unknown_method" {
		t.Errorf("chat.delete: %v", a)
	}
}

// TestAuthTestAndBotsInfo: auth.test and bots.info answer with the fields
// Slack documents, enterprise_id only inside Enterprise Grid, so that a bot
// learns its workspace, enterprise and app from them.
func TestAuthTestAndBotsInfo(t *testing.T) {
	id := Identity{BotUserID: "UBOT", BotID: "BBOT", TeamID: "T1", TeamName: "Acme", AppID: "A1", URL: "https://acme.slack.com/"}
	grid := id
	grid.EnterpriseID = "E1"
	for _, tc := range []struct {
		name string
		id   Identity
		want map[string]any
	}{
		{"workspace", id, map[string]any{"ok": true, "url": "https://acme.slack.com/", "team": "Acme", "user": "promotebot",
			"team_id": "T1", "user_id": "UBOT", "bot_id": "BBOT", "is_enterprise_install": false}},
		{"enterprise grid", grid, map[string]any{"ok": true, "url": "https://acme.slack.com/", "team": "Acme", "user": "promotebot",
			"team_id": "T1", "user_id": "UBOT", "bot_id": "BBOT", "is_enterprise_install": false, "enterprise_id": "E1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := New(tc.id, nil)
			if got := w.Answer("auth.test", nil); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("auth.test = %v, want %v", got, tc.want)
			}
			bot, _ := w.Answer("bots.info", map[string]string{"bot": "BBOT"})["bot"].(map[string]any)
			if bot["id"] != "BBOT" || bot["app_id"] != "A1" || bot["user_id"] != "UBOT" || bot["deleted"] != false {
				t.Errorf("bots.info = %v", bot)
			}
			if a := w.Answer("bots.info", map[string]string{"bot": "BOTHER"}); a["ok"] != false || a["error"] != "bot_not_found" {
				t.Errorf("bots.info of another bot = %v", a)
			}
		})
	}
}
