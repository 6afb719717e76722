package slackui

import (
	"context"
	"testing"

	"github.com/promotebot/promotebot/promote"
	"github.com/promotebot/promotebot/slackui/slacktest"
)

// TestInstallation: the bot learns its workspace from auth.test and its app
// from bots.info, once; a failure is asked again, a token that is not
// accepted is a permanent error.
func TestInstallation(t *testing.T) {
	c, fake := newTestClient(t)
	ctx := context.Background()
	fake.Fail("auth.test", slacktest.Failure{Status: 503})
	if _, err := c.Installation(ctx); err == nil || promote.IsPermanent(err) {
		t.Fatalf("Slack down: %v, want a transient error", err)
	}
	want := Installation{TeamID: slacktest.TeamID, AppID: slacktest.AppID}
	for range 3 {
		got, err := c.Installation(ctx)
		if err != nil || got != want {
			t.Fatalf("Installation = %+v, %v; want %+v", got, err, want)
		}
	}
	if a, b := len(fake.Calls("auth.test")), len(fake.Calls("bots.info")); a != 2 || b != 1 {
		t.Errorf("auth.test called %d times, bots.info %d; want 2 (one failed) and 1", a, b)
	}

	bad := NewClient("xoxb-wrong", fake.URL, nil)
	if _, err := bad.Installation(ctx); !promote.IsPermanent(err) {
		t.Errorf("refused token: %v, want a permanent error", err)
	}
}

func TestInstallationAdmit(t *testing.T) {
	in := Installation{TeamID: "T1", EnterpriseID: "E1", AppID: "A1"}
	tests := []struct {
		team, enterprise, app string
		ok                    bool
	}{
		{"T1", "E1", "A1", true},
		{"T2", "E1", "A1", false},
		{"T1", "E2", "A1", false},
		{"T1", "", "A1", false},
		{"T1", "E1", "A2", false},
		{"T1", "E1", "", false},
		{"", "E1", "A1", false},
	}
	for _, tt := range tests {
		if err := in.Admit(tt.team, tt.enterprise, tt.app); (err == nil) != tt.ok {
			t.Errorf("Admit(%q, %q, %q) = %v, want ok %v", tt.team, tt.enterprise, tt.app, err, tt.ok)
		}
	}
}
