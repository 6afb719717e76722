package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/promotebot/promotebot/gitops"
	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/gitops/history"
	"github.com/promotebot/promotebot/promote"
)

// doraWindow are the bounds the DORA tests give: two calendar weeks, from
// Monday 2026-03-02 to Sunday 2026-03-15.
var doraWindow = []string{"--since", "2026-03-02", "--until", "2026-03-15"}

// doraFixture is a config repository of two projects whose history the
// real bot code wrote at fixed times, with a person's edit and a pull
// request merged on GitHub by git itself. commits names its commits.
type doraFixture struct {
	bare    string
	commits map[string]string
}

// fixedClock is the bot's clock: the time set last.
type fixedClock struct {
	mu sync.Mutex
	at time.Time
}

func (c *fixedClock) set(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = at
}

func (c *fixedClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at
}

// march is a time of March 2026 in UTC: march(4, 11, 30) is the 4th at 11:30.
func march(day, hour, minute int) time.Time {
	return time.Date(2026, 3, day, hour, minute, 0, 0, time.UTC)
}

// gitAt runs git in dir as gittest does, with author and committer dates at.
func gitAt(t *testing.T, dir string, at time.Time, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	stamp := at.Format(time.RFC3339)
	cmd.Env = append(gittest.Env(), "GIT_AUTHOR_DATE="+stamp, "GIT_COMMITTER_DATE="+stamp)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newDORAFixture writes, on examples/config-repo (shop-web and shop-api),
// this history; lead times start at Built-At, else Received-At:
//
//	web-1  shop-web  promoted 03-02 10:00, built 08:00                      lead 2h
//	api-1  shop-api  promoted 03-03 12:00, no Built-At, received 09:00      lead 3h
//	web-2  shop-web  promoted through PR #12: branch commit 03-04 09:30,
//	                 merged on GitHub 03-04 11:00, built 08:00              lead 3h
//	rb-web-2         rollback of web-2 03-04 11:30: failed, restored in 30m
//	hotfix           a person scales shop-web 03-05 10:00, no trailers
//	api-2  shop-api  promoted 03-09 10:00, neither time (older history)     left out
//	web-3  shop-web  promoted 03-10 09:00, built 07:00                      lead 2h
//	api-3  shop-api  promoted 03-11 12:00, built 08:00, approved by its
//	                 promoter                                               lead 4h
//	rb-api-3         autoRollback of api-3 03-12 12:00: restored in 24h
//	rb-web-3         rollback of web-3 03-16 09:00, after the window:
//	                 web-3 failed, restored in 6 days
func newDORAFixture(t *testing.T) *doraFixture {
	t.Helper()
	f := &doraFixture{bare: gittest.NewRemote(t, filepath.Join("..", "..", "examples", "config-repo")), commits: map[string]string{}}
	clock := &fixedClock{}
	repo, err := clone.Open(context.Background(), clone.Options{
		URL: f.bare, Dir: filepath.Join(t.TempDir(), "clone"),
		Author: clone.Signature{Name: "promotebot", Email: "promotebot@example.com"},
		Now:    clock.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	cr := gitops.NewConfigRepo(repo)
	ctx := context.Background()
	web := promote.Project{ID: "shop-web", URL: "https://shop.example.com", Image: "registry.example.com/acme/shop-web",
		Path: "apps/shop-web", RequiredApprovals: 1}
	api := promote.Project{ID: "shop-api", URL: "https://api.shop.example.com", Image: "registry.example.com/acme/shop-api",
		Path: "apps/shop-api", RequiredApprovals: 1}
	olga := promote.Person{ID: "UOWN1", Name: "Olga"}
	approval := func(at time.Time) []promote.Approval {
		return []promote.Approval{{User: "UQA1", Name: "Ada", Verdict: promote.Approve, At: at}}
	}
	build := func(p promote.Project, id, tag string, builtAt, receivedAt time.Time) promote.Build {
		return promote.Build{ID: id, Project: p.ID, Image: p.Image + ":" + tag, Kind: promote.KindTag, Target: "v" + tag,
			Commit: "0123abc", BuildURL: "https://ci.example.com/" + id, BuiltAt: builtAt, CreatedAt: receivedAt}
	}
	// qa deploys b to QA at its Received-At (or 03-09 09:00 for api-2).
	qa := func(p promote.Project, b promote.Build, at time.Time) {
		clock.set(at)
		if _, err := cr.DeployQA(ctx, p, b); err != nil {
			t.Fatal(err)
		}
	}
	promoteAt := func(name string, p promote.Project, b promote.Build, at time.Time, approvals []promote.Approval) {
		clock.set(at)
		c, err := cr.Promote(ctx, p, b, approvals, olga)
		if err != nil {
			t.Fatal(err)
		}
		f.commits[name] = c
	}
	rollbackAt := func(name string, p promote.Project, of promote.Build, image string, by promote.Person, at time.Time) {
		clock.set(at)
		c, err := cr.Rollback(ctx, p, promote.RollbackChange{Of: of, Image: image, By: by, Reason: "5xx after the deploy",
			At: at.Add(-time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		f.commits[name] = c
	}

	web1 := build(web, "web-1", "2.4.0", march(2, 8, 0), march(2, 8, 5))
	qa(web, web1, march(2, 8, 10))
	promoteAt("web-1", web, web1, march(2, 10, 0), approval(march(2, 9, 0)))
	api1 := build(api, "api-1", "4.13.0", time.Time{}, march(3, 9, 0))
	qa(api, api1, march(3, 9, 5))
	promoteAt("api-1", api, api1, march(3, 12, 0), approval(march(3, 11, 0)))

	// web-2 goes through a pull request, merged on GitHub with its
	// default message: the trailers are on the branch only.
	web2 := build(web, "web-2", "2.5.0", march(4, 8, 0), march(4, 8, 2))
	qa(web, web2, march(4, 8, 5))
	clock.set(march(4, 9, 30))
	branch := "promotebot/shop-web/web-2"
	if _, err := cr.PromoteBranch(ctx, web, web2, approval(march(4, 9, 0)), olga, branch); err != nil {
		t.Fatal(err)
	}
	work := gittest.Clone(t, f.bare)
	gittest.Git(t, work, "fetch", "-q", "origin", branch)
	gitAt(t, work, march(4, 11, 0), "merge", "-q", "--no-ff", "-m", "Merge pull request #12 from acme/"+branch+
		"\n\nMerges https://github.com/acme/deploy-config/pull/12.", "FETCH_HEAD")
	gittest.Push(t, work)
	f.commits["web-2"] = gittest.Head(t, f.bare, "main")
	rollbackAt("rb-web-2", web, web2, web1.Image, olga, march(4, 11, 30))

	// A person scales shop-web by hand.
	gittest.Git(t, work, "pull", "-q", "--ff-only")
	kust, _ := gittest.ReadFile(t, f.bare, "main", "apps/shop-web/overlays/production/kustomization.yaml")
	if err := os.WriteFile(filepath.Join(work, "apps/shop-web/overlays/production/kustomization.yaml"),
		[]byte(strings.Replace(kust, "count: 3", "count: 4", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	gitAt(t, work, march(5, 10, 0), "commit", "-q", "-am", "Scale shop-web up for the sale")
	gittest.Push(t, work)
	f.commits["hotfix"] = gittest.Head(t, f.bare, "main")

	api2 := build(api, "api-2", "4.14.0", time.Time{}, time.Time{})
	qa(api, api2, march(9, 9, 0))
	promoteAt("api-2", api, api2, march(9, 10, 0), approval(march(9, 9, 30)))
	web3 := build(web, "web-3", "2.6.0", march(10, 7, 0), march(10, 7, 20))
	qa(web, web3, march(10, 7, 30))
	promoteAt("web-3", web, web3, march(10, 9, 0), approval(march(10, 8, 0)))
	api3 := build(api, "api-3", "4.15.0", march(11, 8, 0), march(11, 8, 10))
	qa(api, api3, march(11, 8, 20))
	promoteAt("api-3", api, api3, march(11, 12, 0), []promote.Approval{{User: "UOWN1", Name: "Olga", Verdict: promote.Approve,
		At: march(11, 11, 0)}})
	rollbackAt("rb-api-3", api, api3, api2.Image, promote.Person{Name: "promotebot"}, march(12, 12, 0))
	rollbackAt("rb-web-3", web, web3, web1.Image, olga, march(16, 9, 0))
	return f
}

// TestAuditDORA: the DORA figures of a real history, per project and
// overall, as json and as a table, with the numbers worked out by hand
// (newDORAFixture): a rollback, a promotion merged through a pull request
// (timed by its merge), builds without Built-At, one with neither time,
// a person's edit, and a rollback after the window.
func TestAuditDORA(t *testing.T) {
	f := newDORAFixture(t)
	stdout, _, err := runWith(t, nil, append([]string{"audit", "--repo", f.bare, "--dora", "--format", "json"}, doraWindow...)...)
	if err != nil {
		t.Fatal(err)
	}
	var r history.DORAReport
	if err := json.Unmarshal([]byte(stdout), &r); err != nil || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("one json object per line: %v\n%s", err, stdout)
	}
	if got := r.Since.Format(time.RFC3339) + " " + r.Until.Format(time.RFC3339Nano); got != "2026-03-02T00:00:00Z 2026-03-15T23:59:59.999999999Z" ||
		r.Weeks != 2 {
		t.Fatalf("window %s, %d weeks", got, r.Weeks)
	}
	type figures struct {
		project                                 string
		deploys, promotions, rollbacks          int
		perWeek                                 float64
		weekly                                  string
		leads, fromBuilt, fromReceived, leftOut int
		median, p90                             string
		failed                                  int
		rate                                    string
		restores                                int
		restore                                 string
		withoutTrailers                         int
	}
	got := func(f history.DORAFigures) figures {
		var weekly []string
		for _, w := range f.Weekly {
			weekly = append(weekly, w.Week.Format("01-02")+":"+fmt.Sprint(w.Deploys))
		}
		return figures{f.Project, f.Deploys, f.Promotions, f.Rollbacks, f.DeploysPerWeek, strings.Join(weekly, " "),
			f.LeadTime.Count, f.LeadTime.FromBuilt, f.LeadTime.FromReceived, f.LeadTime.LeftOut,
			optional(f.LeadTime.MedianSeconds), optional(f.LeadTime.P90Seconds), f.ChangeFailureRate.Failed,
			optional(f.ChangeFailureRate.Rate), f.TimeToRestore.Count, optional(f.TimeToRestore.MedianSeconds),
			f.NotCounted.WithoutTrailers}
	}
	want := []figures{
		{"", 8, 6, 2, 4, "03-02:4 03-09:4", 5, 4, 1, 1, "10800", "14400", 3, "0.5", 3, "86400", 1},
		{"shop-api", 4, 3, 1, 2, "03-02:1 03-09:3", 2, 1, 1, 1, "12600", "14400", 1, "0.3333333333333333", 1, "86400", 0},
		{"shop-web", 4, 3, 1, 2, "03-02:3 03-09:1", 3, 3, 0, 0, "7200", "10800", 2, "0.6666666666666666", 2, "260100", 1},
	}
	all := append([]history.DORAFigures{r.Overall}, r.Projects...)
	if len(all) != len(want) {
		t.Fatalf("%d projects, want 2:\n%s", len(r.Projects), stdout)
	}
	for i := range want {
		if g := got(all[i]); g != want[i] {
			t.Errorf("figures of %q\n got %+v\nwant %+v", want[i].project, g, want[i])
		}
	}
	// The deploys the figures rest on: the pull request's by its merge.
	var deploys []string
	for _, d := range r.Deploys {
		deploys = append(deploys, fmt.Sprintf("%s %s %s %s lead=%s from=%s restored=%s", d.Time.Format("01-02 15:04"), d.Project,
			d.Kind, d.Build, optional(d.LeadTimeSeconds), d.StartFrom, optional(d.TimeToRestoreSeconds)))
	}
	wantDeploys := []string{
		"03-12 12:00 shop-api rollback api-3 lead=null from= restored=null",
		"03-11 12:00 shop-api promotion api-3 lead=14400 from=built restored=86400",
		"03-10 09:00 shop-web promotion web-3 lead=7200 from=built restored=518400",
		"03-09 10:00 shop-api promotion api-2 lead=null from= restored=null",
		"03-04 11:30 shop-web rollback web-2 lead=null from= restored=null",
		"03-04 11:00 shop-web promotion web-2 lead=10800 from=built restored=1800",
		"03-03 12:00 shop-api promotion api-1 lead=10800 from=received restored=null",
		"03-02 10:00 shop-web promotion web-1 lead=7200 from=built restored=null",
	}
	if strings.Join(deploys, "\n") != strings.Join(wantDeploys, "\n") {
		t.Errorf("deploys\n%s\nwant\n%s", strings.Join(deploys, "\n"), strings.Join(wantDeploys, "\n"))
	}
	if d := r.Deploys[2]; d.Commit != f.commits["web-3"] || d.RolledBackBy != f.commits["rb-web-3"] || d.RestoredBy != f.commits["rb-web-3"] {
		t.Errorf("web-3: %+v, want rolled back and restored by %s", d, f.commits["rb-web-3"])
	}
	if d := r.Deploys[5]; d.Commit != f.commits["web-2"] || d.PR != "https://github.com/acme/deploy-config/pull/12" {
		t.Errorf("web-2: %+v, want the merge %s of PR 12", d, f.commits["web-2"])
	}

	stdout, _, err = runWith(t, nil, append([]string{"audit", "--repo", f.bare, "--dora"}, doraWindow...)...)
	if err != nil {
		t.Fatal(err)
	}
	wantTable := `DORA figures from 2026-03-02 00:00 to 2026-03-15 23:59 UTC: 2 calendar weeks (Monday to Sunday, UTC)

all projects
  deployment frequency    4 a week               8 deploys: 6 promotions, 2 rollbacks
  lead time for changes   median 3h, p90 4h      5 promotions (4 from Built-At, 1 from Received-At); 1 left out: no Built-At or Received-At, or after the deploy
  change failure rate     50%                    3 of 6 promotions rolled back
  time to restore         median 24h             3 failed promotions
  not counted                                    1 production change without the bot's trailers, 0 with trailers but not a deploy

shop-api
  deployment frequency    2 a week               4 deploys: 3 promotions, 1 rollback
  lead time for changes   median 3h30m, p90 4h   2 promotions (1 from Built-At, 1 from Received-At); 1 left out: no Built-At or Received-At, or after the deploy
  change failure rate     33.3%                  1 of 3 promotions rolled back
  time to restore         median 24h             1 failed promotion

shop-web
  deployment frequency    2 a week               4 deploys: 3 promotions, 1 rollback
  lead time for changes   median 2h, p90 3h      3 promotions (3 from Built-At, 0 from Received-At)
  change failure rate     66.7%                  2 of 3 promotions rolled back
  time to restore         median 3d              2 failed promotions
  not counted                                    1 production change without the bot's trailers, 0 with trailers but not a deploy
`
	if stdout != wantTable {
		t.Errorf("table\n%s\nwant\n%s", stdout, wantTable)
	}

	// One project: its figures alone, which are all there are.
	stdout, _, err = runWith(t, nil, append([]string{"audit", "--repo", f.bare, "--dora", "--project", "shop-api"}, doraWindow...)...)
	wantProject := "\nshop-api\n  deployment frequency    2 a week               4 deploys: 3 promotions, 1 rollback\n"
	if err != nil || !strings.Contains(stdout, wantProject) || strings.Contains(stdout, "all projects") || strings.Contains(stdout, "shop-web") {
		t.Errorf("--project shop-api: %v\n%s", err, stdout)
	}
}

func TestAuditDORAUsageErrors(t *testing.T) {
	f := newAuditFixture(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--check"}, "--dora takes no --check"},
		{[]string{"--env", "production"}, "--dora takes no --env"},
		{[]string{"--wide"}, "--dora takes no --wide"},
		{[]string{"--format", "csv"}, `--dora --format "csv": want table or json`},
		{[]string{"--format", "html"}, `--dora --format "html": want table or json (--format html has the figures too)`},
	} {
		_, _, err := runWith(t, nil, append([]string{"audit", "--repo", f.bare, "--dora"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || exitCode(err) != 2 {
			t.Errorf("%v: err %v (exit %d), want %q and exit 2", tc.args, err, exitCode(err), tc.want)
		}
	}
	// A window without deploys: zeros, and no figure where there is
	// nothing to measure.
	stdout, _, err := runWith(t, nil, "audit", "--repo", f.bare, "--dora", "--since", "2030-01-01", "--until", "2030-01-01")
	want := `DORA figures from 2030-01-01 00:00 to 2030-01-01 23:59 UTC: 1 calendar week (Monday to Sunday, UTC)

all projects
  deployment frequency    0 a week   0 deploys: 0 promotions, 0 rollbacks
  lead time for changes   -          0 promotions
  change failure rate     -          0 of 0 promotions rolled back
  time to restore         -          0 failed promotions
`
	if err != nil || stdout != want {
		t.Errorf("err %v\n%s\nwant\n%s", err, stdout, want)
	}
	// A history without any deploy, and no window: said so.
	bare := gittest.NewRemote(t, filepath.Join("..", "..", "testdata", "configrepo"))
	stdout, _, err = runWith(t, nil, "audit", "--repo", bare, "--dora")
	if err != nil || stdout != "DORA figures: no deploys to measure\n" {
		t.Errorf("err %v\n%q", err, stdout)
	}
}

// optional formats an optional figure: "null" for none.
func optional(f *float64) string {
	if f == nil {
		return "null"
	}
	return fmt.Sprint(*f)
}
