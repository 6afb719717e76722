package slackui

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/promotebot/promotebot/promote"
	pstore "github.com/promotebot/promotebot/promote/store"
)

// TestClickActsOnceAcrossRestarts: the record of handled clicks is the
// store's, so that a captured click sent again to a restarted bot, or to
// another replica, does nothing and tells nobody.
func TestClickActsOnceAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	body := form(clickJSON(click{actionID: "prod_deploy", value: "BUILD1"}))
	signed := sign(testSecret, time.Now(), body)
	for i, want := range []int{1, 0, 0} {
		st, err := pstore.Open(context.Background(), "", dir) // a new process on the same data
		if err != nil {
			t.Fatal(err)
		}
		a, r := &fakeActor{}, &fakeResponder{}
		h := newHandlers(a, r)
		h.Clicks = st
		w := serve(context.Background(), h.Interactions(), signed, body)
		h.Wait()
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		if w.Code != http.StatusOK || w.Body.Len() != 0 {
			t.Errorf("delivery %d: answer %d %q, want an empty 200", i+1, w.Code, w.Body.String())
		}
		if n := len(a.snapshot().Acts); n != want {
			t.Errorf("delivery %d: Act called %d times, want %d", i+1, n, want)
		}
		if eph, _ := r.snapshot(); len(eph) != 0 {
			t.Errorf("delivery %d: told %v", i+1, eph)
		}
	}
}

// TestClickTime: the action carries when Slack says the person clicked;
// a click whose time cannot be read does nothing.
func TestClickTime(t *testing.T) {
	tests := []struct {
		actionTS string
		want     time.Time // zero: no action
	}{
		{"1700000000.000100", time.Unix(1700000000, 100000)},
		{"1700000000.5", time.Unix(1700000000, 500000000)},
		{"1548426417.840180", time.Unix(1548426417, 840180000)},
		{"1700000000", time.Time{}},
		{"1700000000.", time.Time{}},
		{".000100", time.Time{}},
		{"-1.000100", time.Time{}},
		{"1700000000.0001x0", time.Time{}},
		{"1700000000123456789", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.actionTS, func(t *testing.T) {
			a, r := &fakeActor{}, &fakeResponder{}
			h := newHandlers(a, r)
			serveSigned(h.Interactions(), form(clickJSON(click{actionID: "qa_approve", value: "BUILD1", actionTS: tt.actionTS})))
			h.Wait()
			acts := a.snapshot().Acts
			switch {
			case tt.want.IsZero() && len(acts) != 0:
				t.Errorf("acted %+v on a click without a readable time", acts)
			case !tt.want.IsZero() && (len(acts) != 1 || !acts[0].At.Equal(tt.want)):
				t.Errorf("acted %+v, want one action at %v", acts, tt.want)
			}
		})
	}
}

// TestRequestsFromElsewhereRefused: a click, a dialog or a command that
// names another workspace, enterprise or app than the bot's own does
// nothing, is logged, and a command is told it is not served here.
func TestRequestsFromElsewhereRefused(t *testing.T) {
	grid := Installation{TeamID: "T0PROMOTE", EnterpriseID: "E0ACME", AppID: "A0PROMOTE"}
	tests := []struct {
		name      string
		installed Installed
		click     click
		served    bool
	}{
		{"own workspace", fixedInstallation{in: testInstallation}, click{}, true},
		{"another workspace", fixedInstallation{in: testInstallation}, click{team: "TOTHER"}, false},
		{"another app", fixedInstallation{in: testInstallation}, click{app: "AOTHER"}, false},
		{"an enterprise, the bot in none", fixedInstallation{in: testInstallation}, click{enterprise: "E0ACME"}, false},
		{"own enterprise", fixedInstallation{in: grid}, click{enterprise: "E0ACME"}, true},
		{"another enterprise", fixedInstallation{in: grid}, click{enterprise: "EOTHER"}, false},
		{"no enterprise, the bot in one", fixedInstallation{in: grid}, click{}, false},
		{"the installation unknown", fixedInstallation{err: errors.New("slack auth.test: connection refused")}, click{}, false},
		{"no installation configured", nil, click{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			newH := func() (*Handlers, *fakeActor, *fakeResponder) {
				a, r := &fakeActor{}, &fakeResponder{}
				h := newHandlers(a, r)
				h.Installed, h.Logger = tt.installed, slog.New(slog.NewTextHandler(&logs, nil))
				return h, a, r
			}
			c := tt.click
			c.actionID, c.value = "prod_deploy", "BUILD1"
			h, a, r := newH()
			w := serveSigned(h.Interactions(), form(clickJSON(c)))
			h.Wait()
			if w.Code != http.StatusOK || w.Body.Len() != 0 {
				t.Errorf("click: answer %d %q, want an empty 200", w.Code, w.Body.String())
			}
			if n := len(a.snapshot().Acts); n != map[bool]int{true: 1, false: 0}[tt.served] {
				t.Errorf("click: Act called %d times, served %v", n, tt.served)
			}
			if eph, opened := r.snapshot(); len(eph)+len(opened) != 0 {
				t.Errorf("click: told %v %v", eph, opened)
			}

			h, a, _ = newH()
			cmd := commandForm("status hello")
			cmd = bytes.Replace(cmd, []byte("team_id=T0PROMOTE"), []byte("team_id="+c.teamOr("T0PROMOTE")), 1)
			cmd = bytes.Replace(cmd, []byte("api_app_id=A0PROMOTE"), []byte("api_app_id="+c.appOr("A0PROMOTE")), 1)
			if c.enterprise != "" {
				cmd = append(cmd, "&enterprise_id="+c.enterprise...)
			}
			w = serveSigned(h.Commands(), cmd)
			statuses := a.snapshot().Statuses
			switch {
			case tt.served && !slices.Equal(statuses, []string{"hello"}):
				t.Errorf("command: Status called %v, want hello", statuses)
			case !tt.served && (len(statuses) != 0 || !strings.Contains(w.Body.String(), "does not serve this workspace")):
				t.Errorf("command: Status called %v, answer %s; want none and a refusal", statuses, w.Body)
			}

			out := logs.String()
			if !tt.served && (!strings.Contains(out, "slack request from elsewhere refused") || !strings.Contains(out, "user=UQA1")) {
				t.Errorf("refusal not logged:\n%s", out)
			}
			if tt.served && strings.Contains(out, "from elsewhere") {
				t.Errorf("own request logged as refused:\n%s", out)
			}
			if strings.Contains(out, testSecret) || strings.Contains(out, "legacy-verification-token") {
				t.Errorf("log shows a secret:\n%s", out)
			}
		})
	}
}

func (c click) teamOr(def string) string {
	if c.team != "" {
		return c.team
	}
	return def
}

func (c click) appOr(def string) string {
	if c.app != "" {
		return c.app
	}
	return def
}

// TestClickRecordFailureTellsTheClicker: when the store cannot record a
// click, nothing is done and the person is asked to try again.
func TestClickRecordFailureTellsTheClicker(t *testing.T) {
	a, r := &fakeActor{}, &fakeResponder{}
	h := newHandlers(a, r)
	h.Clicks = failingClicks{}
	serveSigned(h.Interactions(), form(clickJSON(click{actionID: "prod_deploy", value: "BUILD1"})))
	h.Wait()
	if n := len(a.snapshot().Acts); n != 0 {
		t.Errorf("Act called %d times though the click was not recorded", n)
	}
	if eph, _ := r.snapshot(); len(eph) != 1 || !strings.Contains(eph[0].Text, "try again") || strings.Contains(eph[0].Text, "locked") {
		t.Errorf("told %v, want one generic try-again", eph)
	}
}

type failingClicks struct{}

func (failingClicks) FirstClick(context.Context, string, time.Time) (bool, error) {
	return false, errors.New("record click: database is locked")
}

var _ promote.Clicks = failingClicks{}
