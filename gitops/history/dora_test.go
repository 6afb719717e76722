package history_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/gitops/history"
)

// doraAt is a time in January 2026 (the 5th is a Monday), "05 10:00".
func doraAt(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse("2006-01-02 15:04", "2026-01-"+s)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// doraHistory is a history as Read returns it, newest first, written
// oldest first: commit "cN" for the N-th line.
type doraHistory struct {
	t       *testing.T
	changes []history.Change
}

func (h *doraHistory) add(c history.Change, at string) *history.Change {
	c.Commit, c.Time = fmt.Sprintf("c%d", len(h.changes)+1), doraAt(h.t, at)
	if c.Environment == "" {
		c.Environment = "production"
	}
	h.changes = append([]history.Change{c}, h.changes...)
	return &h.changes[0]
}

func (h *doraHistory) promote(project, build, at, builtAt, receivedAt string) {
	c := history.Change{Project: project, Build: build, Image: "registry.example.com/" + project + ":" + build,
		Trailers: true, BotMade: true}
	if builtAt != "" {
		b := doraAt(h.t, builtAt)
		c.BuiltAt = &b
	}
	if receivedAt != "" {
		r := doraAt(h.t, receivedAt)
		c.ReceivedAt = &r
	}
	h.add(c, at)
}

func (h *doraHistory) rollback(project, of, at string, pinned bool) {
	h.add(history.Change{Project: project, RollbackOf: of, Image: "registry.example.com/" + project + ":old",
		Trailers: true, BotMade: true, RollbackPinned: pinned}, at)
}

// TestDORA: the four figures, per project and overall, on a history with
// every case the definitions name; the numbers are worked out by hand.
func TestDORA(t *testing.T) {
	h := &doraHistory{t: t}
	h.add(history.Change{Project: "hello", Root: true}, "01 09:00")                                             // c1: where history starts
	qa := h.add(history.Change{Project: "hello", Environment: "qa/x", Build: "b1", Trailers: true}, "05 08:15") // c2
	builtB1 := doraAt(t, "05 08:00")
	qa.BuiltAt = &builtB1
	h.promote("hello", "b1", "05 10:00", "", "")                 // c3: lead 2h from its QA commit's Built-At
	h.promote("hello", "b2", "06 09:00", "06 08:00", "06 08:30") // c4: 1h from Built-At, rolled back
	h.rollback("hello", "b2", "06 09:30", true)                  // c5: restores b2 after 30m
	h.promote("shop", "s1", "07 12:00", "", "07 11:00")          // c6: 1h from Received-At
	h.add(history.Change{Project: "hello"}, "08 09:00")          // c7: a person's edit
	h.promote("hello", "b3", "12 10:00", "", "")                 // c8: no start: left out
	h.promote("shop", "s2", "13 10:00", "13 06:00", "")          // c9: 4h
	h.promote("shop", "s3", "14 10:00", "14 09:00", "")          // c10: 1h, rolled back after the window
	h.promote("hello", "b4", "15 10:00", "15 09:30", "")         // c11: 30m, replaced by b5 before its rollback
	h.promote("hello", "b5", "15 11:00", "15 10:00", "")         // c12: 1h, restores b4 after 1h
	h.rollback("hello", "b4", "15 12:00", true)                  // c13
	h.rollback("shop", "s3", "16 10:00", false)                  // c14: changed more: not a deploy
	h.promote("hello", "b6", "17 10:00", "17 11:00", "")         // c15: built after its deploy: left out
	h.rollback("shop", "s3", "20 10:00", true)                   // c16: after the window; restores s3 after 6 days

	r := history.DORA(h.changes, history.Window{Since: doraAt(t, "05 00:00"), Until: doraAt(t, "18 23:59")})
	got, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		project                             string
		deploys, promotions, rollbacks      int
		perWeek                             float64
		weekly                              string
		leads, fromBuilt, fromReceived, out int
		median, p90                         string
		failed                              int
		rate                                string
		restores                            int
		restore                             string
		withoutTrailers, other              int
	}
	for i, w := range []want{
		{"", 11, 9, 2, 5.5, "4 7", 7, 6, 1, 2, "3600", "14400", 3, "0.3333333333333333", 3, "3600", 1, 1},
		{"hello", 8, 6, 2, 4, "3 5", 4, 4, 0, 2, "3600", "7200", 2, "0.3333333333333333", 2, "2700", 1, 0},
		{"shop", 3, 3, 0, 1.5, "1 2", 3, 2, 1, 0, "3600", "14400", 1, "0.3333333333333333", 1, "518400", 0, 1},
	} {
		f := r.Overall
		if i > 0 {
			f = r.Projects[i-1]
		}
		var weekly []string
		for _, wc := range f.Weekly {
			weekly = append(weekly, fmt.Sprint(wc.Deploys))
		}
		g := want{f.Project, f.Deploys, f.Promotions, f.Rollbacks, f.DeploysPerWeek, strings.Join(weekly, " "),
			f.LeadTime.Count, f.LeadTime.FromBuilt, f.LeadTime.FromReceived, f.LeadTime.LeftOut,
			num(f.LeadTime.MedianSeconds), num(f.LeadTime.P90Seconds), f.ChangeFailureRate.Failed, num(f.ChangeFailureRate.Rate),
			f.TimeToRestore.Count, num(f.TimeToRestore.MedianSeconds), f.NotCounted.WithoutTrailers, f.NotCounted.Other}
		if g != w {
			t.Errorf("figures %q:\n got %+v\nwant %+v\n%s", w.project, g, w, got)
		}
	}
	if len(r.Projects) != 2 || r.Weeks != 2 || !r.Overall.Weekly[1].Week.Equal(doraAt(t, "12 00:00")) {
		t.Fatalf("projects, weeks:\n%s", got)
	}
	var lines []string
	for _, d := range r.Deploys {
		line := fmt.Sprintf("%s %s %s %s lead=%s from=%s", d.Commit, d.Project, d.Kind, d.Build, num(d.LeadTimeSeconds), d.StartFrom)
		if d.RolledBackBy != "" {
			line += fmt.Sprintf(" rolledBackBy=%s restoredBy=%s after=%s", d.RolledBackBy, d.RestoredBy, num(d.TimeToRestoreSeconds))
		}
		lines = append(lines, line)
	}
	wantDeploys := []string{
		"c15 hello promotion b6 lead=null from=",
		"c13 hello rollback b4 lead=null from=",
		"c12 hello promotion b5 lead=3600 from=built",
		"c11 hello promotion b4 lead=1800 from=built rolledBackBy=c13 restoredBy=c12 after=3600",
		"c10 shop promotion s3 lead=3600 from=built rolledBackBy=c16 restoredBy=c16 after=518400",
		"c9 shop promotion s2 lead=14400 from=built",
		"c8 hello promotion b3 lead=null from=",
		"c6 shop promotion s1 lead=3600 from=received",
		"c5 hello rollback b2 lead=null from=",
		"c4 hello promotion b2 lead=3600 from=built rolledBackBy=c5 restoredBy=c5 after=1800",
		"c3 hello promotion b1 lead=7200 from=built",
	}
	if strings.Join(lines, "\n") != strings.Join(wantDeploys, "\n") {
		t.Errorf("deploys\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(wantDeploys, "\n"))
	}
	if s := r.Deploys[len(r.Deploys)-1].Start; s == nil || !s.Equal(builtB1) {
		t.Errorf("b1 starts at %v, want its QA commit's Built-At %v", s, builtB1)
	}
}

// TestDORAWindow: without bounds the window runs from the first deploy to
// the last; with none, the figures say so with nulls rather than zeros.
func TestDORAWindow(t *testing.T) {
	h := &doraHistory{t: t}
	h.promote("hello", "b1", "06 10:00", "06 09:00", "")
	h.promote("hello", "b2", "14 10:00", "14 07:00", "")
	r := history.DORA(h.changes, history.Window{})
	if !r.Since.Equal(doraAt(t, "06 10:00")) || !r.Until.Equal(doraAt(t, "14 10:00")) || r.Weeks != 2 ||
		r.Overall.DeploysPerWeek != 1 || num(r.Overall.LeadTime.MedianSeconds) != "7200" || num(r.Overall.LeadTime.P90Seconds) != "10800" ||
		num(r.Overall.ChangeFailureRate.Rate) != "0" || num(r.Overall.TimeToRestore.MedianSeconds) != "null" {
		t.Errorf("%+v", r)
	}

	// A window with no deploy in it.
	r = history.DORA(h.changes, history.Window{Since: doraAt(t, "20 00:00"), Until: doraAt(t, "20 23:59")})
	got, err := json.Marshal(r.Overall)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"project":"","deploys":0,"promotions":0,"rollbacks":0,"deploysPerWeek":0,` +
		`"weekly":[{"week":"2026-01-19T00:00:00Z","deploys":0}],` +
		`"leadTime":{"count":0,"fromBuilt":0,"fromReceived":0,"leftOut":0,"medianSeconds":null,"p90Seconds":null},` +
		`"changeFailureRate":{"failed":0,"promotions":0,"rate":null},"timeToRestore":{"count":0,"leftOut":0,"medianSeconds":null},` +
		`"notCounted":{"withoutTrailers":0,"other":0}}`
	if string(got) != want || r.Weeks != 1 || len(r.Projects) != 0 || r.Deploys == nil {
		t.Errorf("empty window:\n%s\nwant\n%s\n%+v", got, want, r)
	}

	// No deploy at all, no bounds.
	r = history.DORA(nil, history.Window{})
	if r.Weeks != 0 || len(r.Overall.Weekly) != 0 || r.Overall.DeploysPerWeek != 0 {
		t.Errorf("no deploys: %+v", r)
	}
}

// num formats an optional figure for comparison: "null" for none.
func num(f *float64) string {
	if f == nil {
		return "null"
	}
	return fmt.Sprint(*f)
}

// TestReadBuildTimes: Read takes a commit's Promotebot-Built-At and
// -Received-At in UTC; one that is not RFC 3339 is malformed and counts
// for nothing.
func TestReadBuildTimes(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	work := gittest.Clone(t, bare)
	commit := gittest.CommitFiles(t, work, map[string]string{"apps/hello/notes.txt": "x\n"},
		"Deploy\n\nPromotebot-Build: b1\nPromotebot-Project: hello\nPromotebot-Environment: qa/x\n"+
			"Promotebot-Built-At: 2026-01-05T09:00:00+01:00\nPromotebot-Received-At: yesterday\n")
	gittest.Push(t, work)
	changes, err := history.Read(context.Background(), bare, history.Options{Env: "qa"})
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0].Commit != commit {
		t.Fatalf("changes %+v", changes)
	}
	c := changes[0]
	if c.BuiltAt == nil || c.BuiltAt.String() != "2026-01-05 08:00:00 +0000 UTC" || c.ReceivedAt != nil ||
		strings.Join(c.Malformed, "|") != "Promotebot-Received-At: yesterday" {
		t.Errorf("builtAt %v, receivedAt %v, malformed %q", c.BuiltAt, c.ReceivedAt, c.Malformed)
	}
}
