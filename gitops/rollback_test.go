package gitops_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/promotebot/promotebot/gitops"
	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/clone/clonetest"
	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/gitops/trailer"
	"github.com/promotebot/promotebot/promote"
)

const helloProduction = "apps/hello/overlays/production/kustomization.yaml"

var olga = promote.Person{ID: "UOWN1", Name: "Olga"}

// helloBuild is a build of hello with image tag version.
func helloBuild(id, version string) promote.Build {
	return promote.Build{ID: id, Project: "hello", Image: "registry.example.com/acme/hello:" + version, Kind: promote.KindTag,
		Target: "v" + version, CreatedAt: time.Now()}
}

// promoteAll promotes builds to production straight on the config branch.
func promoteAll(t *testing.T, c *gitops.ConfigRepo, builds ...promote.Build) {
	t.Helper()
	for _, b := range builds {
		if _, err := c.Promote(context.Background(), helloConfig, b, nil, olga); err != nil {
			t.Fatalf("Promote %s: %v", b.ID, err)
		}
	}
}

// message is a commit's whole message, as git has it.
func message(t *testing.T, repo, commit string) string {
	t.Helper()
	return gittest.Git(t, repo, "log", "-1", "--format=%B", commit)
}

// pinned tells whether the production overlay at main gives version.
func pinned(t *testing.T, bare, version string) bool {
	t.Helper()
	kust, _ := gittest.ReadFile(t, bare, "main", helloProduction)
	return strings.Contains(kust, `newTag: "`+version+`"`) || strings.Contains(kust, "newTag: "+version+"\n")
}

// TestRollback: over smart HTTP, a rollback restores the image with exactly
// its trailers, once however often it is asked; autoRollback's names the
// bot; one whose build production no longer runs, or to a foreign image,
// commits nothing.
func TestRollback(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	srv := gittest.NewServer(t, filepath.Dir(bare), "u", "p")
	c := gitops.NewConfigRepo(clonetest.Open(t, srv.RepoURL(bare), func(o *clone.Options) {
		o.Auth = clone.Auth{Username: "u", Password: "p"}
	}))
	ctx := context.Background()
	b1, b2, b3 := helloBuild("b1", "1.4.0"), helloBuild("b2", "1.5.0"), helloBuild("b3", "1.6.0")
	promoteAll(t, c, b1, b2)

	r := promote.RollbackChange{Of: b2, Image: b1.Image, By: olga, Reason: "5xx\nafter the deploy", At: time.Now()}
	commit, err := c.Rollback(ctx, helloConfig, r)
	if err != nil || commit != gittest.Head(t, bare, "main") {
		t.Fatalf("Rollback = %s, %v; main at %s", commit, err, gittest.Head(t, bare, "main"))
	}
	msg := message(t, bare, commit)
	want := []trailer.Trailer{
		{Key: "Promotebot-Rollback-Of", Value: "b2"},
		{Key: "Promotebot-Project", Value: "hello"},
		{Key: "Promotebot-Environment", Value: "production"},
		{Key: "Promotebot-Image", Value: "registry.example.com/acme/hello:1.4.0"},
		{Key: "Promoted-by", Value: "Olga <slack:UOWN1>"},
		{Key: "Promotebot-Reason", Value: "5xx after the deploy"},
	}
	if got := trailer.Parse(msg); !reflect.DeepEqual(got, want) || !strings.HasPrefix(msg, "Roll back hello to 1.4.0\n") {
		t.Fatalf("message\n%s\ntrailers %q\nwant %q", msg, got, want)
	}
	if !pinned(t, bare, "1.4.0") {
		t.Fatal("production does not run 1.4.0 after the rollback")
	}

	// Asked again (a retry after a crash): the same commit, none added.
	commits := len(gittest.Log(t, bare, "main"))
	if again, err := c.Rollback(ctx, helloConfig, r); err != nil || again != commit {
		t.Fatalf("again = %s, %v; want %s", again, err, commit)
	}
	if n := len(gittest.Log(t, bare, "main")); n != commits {
		t.Fatalf("%d commits after asking again, want %d", n, commits)
	}

	// autoRollback: the bot by name, no reason given.
	promoteAll(t, c, b3)
	auto := promote.RollbackChange{Of: b3, Image: b2.Image, By: promote.Person{Name: "promotebot"}, At: time.Now()}
	if commit, err = c.Rollback(ctx, helloConfig, auto); err != nil {
		t.Fatal(err)
	}
	want = []trailer.Trailer{
		{Key: "Promotebot-Rollback-Of", Value: "b3"},
		{Key: "Promotebot-Project", Value: "hello"},
		{Key: "Promotebot-Environment", Value: "production"},
		{Key: "Promotebot-Image", Value: "registry.example.com/acme/hello:1.5.0"},
		{Key: "Promoted-by", Value: "promotebot"},
	}
	if got := trailer.Parse(message(t, bare, commit)); !reflect.DeepEqual(got, want) {
		t.Fatalf("autoRollback's trailers %q, want %q", got, want)
	}

	// Production moved on by hand meanwhile: nothing is committed.
	b4 := helloBuild("b4", "1.7.0")
	promoteAll(t, c, b4)
	work := gittest.Clone(t, bare)
	kust, _ := gittest.ReadFile(t, bare, "main", helloProduction)
	gittest.CommitFiles(t, work, map[string]string{helloProduction: strings.Replace(kust, `"1.7.0"`, `"1.8.0"`, 1)}, "Hotfix 1.8.0")
	gittest.Push(t, work)
	head := gittest.Head(t, bare, "main")
	moved := promote.RollbackChange{Of: b4, Image: b3.Image, By: olga, At: time.Now()}
	_, err = c.Rollback(ctx, helloConfig, moved)
	if !errors.Is(err, promote.ErrProductionMoved) || !strings.Contains(err.Error(), "registry.example.com/acme/hello:1.8.0") {
		t.Fatalf("moved: %v, want ErrProductionMoved naming 1.8.0", err)
	}
	if gittest.Head(t, bare, "main") != head {
		t.Fatal("a rollback of a build production no longer runs committed")
	}

	// Only the project's image repository.
	foreign := promote.RollbackChange{Of: b4, Image: "registry.example.com/other/hello:1.4.0", By: olga, At: time.Now()}
	if _, err := c.Rollback(ctx, helloConfig, foreign); !errors.Is(err, promote.ErrInvalid) {
		t.Fatalf("foreign image: %v, want ErrInvalid", err)
	}
	if gittest.Head(t, bare, "main") != head {
		t.Fatal("a rollback to a foreign image committed")
	}
}

// TestRollbackBranch: the rollback goes to a branch of its own, built on
// main's tip, and main is left alone; once production runs the image, the
// branch gets nothing.
func TestRollbackBranch(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	c := gitops.NewConfigRepo(clonetest.Open(t, bare))
	ctx := context.Background()
	b1, b2 := helloBuild("b1", "1.4.0"), helloBuild("b2", "1.5.0")
	promoteAll(t, c, b1, b2)
	main := gittest.Head(t, bare, "main")
	r := promote.RollbackChange{Of: b2, Image: b1.Image, By: olga, Reason: "slow", At: time.Now()}
	const branch = "promotebot/hello/rollback-b2"
	pc, err := c.RollbackBranch(ctx, helloConfig, r, branch)
	if err != nil {
		t.Fatal(err)
	}
	if gittest.Head(t, bare, "main") != main || pc.Unchanged || pc.SHA != gittest.Head(t, bare, branch) {
		t.Fatalf("RollbackBranch = %+v; main %s (was %s), branch %s", pc, gittest.Head(t, bare, "main"), main,
			gittest.Head(t, bare, branch))
	}
	if parents := gittest.Log(t, bare, branch)[0].Parents; len(parents) != 1 || parents[0] != main {
		t.Fatalf("branch commit's parents %v, want main's tip %s", parents, main)
	}
	if pc.Subject != "Roll back hello to 1.4.0" || !strings.Contains(pc.Trailers, "Promotebot-Rollback-Of: b2\n") ||
		!strings.Contains(pc.Trailers, "Promotebot-Reason: slow\n") || strings.Contains(pc.Trailers, "Promotebot-Build") ||
		!strings.Contains(pc.Diff, "registry.example.com/acme/hello:1.4.0") {
		t.Fatalf("PromotionCommit %+v", pc)
	}
	if kust, _ := gittest.ReadFile(t, bare, branch, helloProduction); !strings.Contains(kust, `"1.4.0"`) {
		t.Fatalf("branch's production overlay:\n%s", kust)
	}

	// Rolled back straight on main meanwhile: the branch needs no commit.
	if _, err := c.Rollback(ctx, helloConfig, r); err != nil {
		t.Fatal(err)
	}
	pc, err = c.RollbackBranch(ctx, helloConfig, r, branch)
	if err != nil || !pc.Unchanged || pc.SHA != gittest.Head(t, bare, "main") {
		t.Fatalf("after the rollback landed: %+v, %v", pc, err)
	}
}

// TestProductionHistory: promotions, a rollback and a pull request merged
// by GitHub are listed newest first with their build ids and the image each
// pinned; a QA deployment and a person's edit of the production overlay
// that leaves the image alone are not; limit is honoured.
func TestProductionHistory(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	c := gitops.NewConfigRepo(clonetest.Open(t, bare))
	ctx := context.Background()
	b1, b2, b3 := helloBuild("b1", "1.4.0"), helloBuild("b2", "1.5.0"), helloBuild("b3", "1.6.0")
	promoteAll(t, c, b1)
	qa := b2
	qa.Kind, qa.Target = promote.KindBranch, "feature/login"
	if _, err := c.DeployQA(ctx, helloConfig, qa); err != nil {
		t.Fatal(err)
	}
	promoteAll(t, c, b2)
	work := gittest.Clone(t, bare)
	kust, _ := gittest.ReadFile(t, bare, "main", helloProduction)
	gittest.CommitFiles(t, work, map[string]string{helloProduction: strings.Replace(kust, "# production namespace", "# prod", 1)},
		"Reword a comment")
	gittest.Push(t, work)
	rolledBack, err := c.Rollback(ctx, helloConfig, promote.RollbackChange{Of: b2, Image: b1.Image, By: olga, At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	branch := "promotebot/hello/b3"
	if _, err := c.PromoteBranch(ctx, helloConfig, b3, nil, olga, branch); err != nil {
		t.Fatal(err)
	}
	gittest.Git(t, work, "pull", "-q", "--ff-only", "origin", "main")
	gittest.Git(t, work, "fetch", "-q", "origin", branch)
	gittest.Git(t, work, "merge", "-q", "--no-ff", "-m", "Merge pull request #7 from acme/"+branch, "FETCH_HEAD")
	gittest.Push(t, work)
	merge := gittest.Head(t, bare, "main")
	// The clone learns of the merge with its next change.
	qa.ID, qa.Target = "q2", "feature/other"
	if _, err := c.DeployQA(ctx, helloConfig, qa); err != nil {
		t.Fatal(err)
	}

	log := gittest.Log(t, bare, "main")
	byMessage := func(subject string) string {
		for _, c := range log {
			if strings.HasPrefix(c.Subject, subject) {
				return c.Hash
			}
		}
		t.Fatalf("no commit %q", subject)
		return ""
	}
	want := []promote.ProductionChange{
		{Image: b3.Image, Commit: merge, Build: "b3"},
		{Image: b1.Image, Commit: rolledBack, RollbackOf: "b2"},
		{Image: b2.Image, Commit: byMessage("Promote hello 1.5.0"), Build: "b2"},
		{Image: b1.Image, Commit: byMessage("Promote hello 1.4.0"), Build: "b1"},
		{Image: "registry.example.com/acme/hello:1.3.0", Commit: log[len(log)-1].Hash}, // the root
	}
	got, err := c.ProductionHistory(ctx, helloConfig, 10)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i].At.IsZero() || i > 0 && got[i].At.After(got[i-1].At) {
			t.Errorf("change %d at %v, after the one before it", i, got[i].At)
		}
	}
	for i := range got {
		got[i].At = time.Time{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ProductionHistory\n%+v\nwant\n%+v", got, want)
	}
	if got, err := c.ProductionHistory(ctx, helloConfig, 2); err != nil || len(got) != 2 || got[1].Commit != rolledBack {
		t.Fatalf("limit 2: %+v, %v", got, err)
	}
	other := helloConfig
	other.ID, other.Path = "other", "apps/none"
	if got, err := c.ProductionHistory(ctx, other, 10); err != nil || len(got) != 0 {
		t.Fatalf("a project without a production overlay: %+v, %v", got, err)
	}
	other.Image = "Not An Image"
	if _, err := c.ProductionHistory(ctx, other, 10); !errors.Is(err, promote.ErrInvalid) {
		t.Fatalf("a project without an image repository: %v", err)
	}
}

// TestProductionHistoryLongWalk: the walk goes on across Reads (500 commits
// each) and still finds every change, newest first.
func TestProductionHistoryLongWalk(t *testing.T) {
	const apps, commits = 10, 1201
	bare := gittest.MakeConfigRepoTB(t, apps, commits)
	c := gitops.NewConfigRepo(clonetest.Open(t, bare))
	p := promote.Project{ID: "app-003", Path: "apps/app-003", Image: "registry.example.com/acme/app-003", URL: "https://app-003.example.com"}
	got, err := c.ProductionHistory(context.Background(), p, 1000)
	if err != nil {
		t.Fatal(err)
	}
	// Commit n sets app (n-1) mod 10 to 1.0.<n>: app-003 at n = 4, 14, …, 1194,
	// and the first commit pins 1.3.0.
	if len(got) != 121 || got[0].Image != p.Image+":1.0.1194" || got[119].Image != p.Image+":1.0.4" ||
		got[120].Image != p.Image+":1.3.0" {
		t.Fatalf("%d changes, first %+v, last %+v", len(got), got[0], got[len(got)-1])
	}
	for i, ch := range got[:120] {
		if want := fmt.Sprintf("%s:1.0.%d", p.Image, 1194-10*i); ch.Image != want {
			t.Fatalf("change %d is %s, want %s", i, ch.Image, want)
		}
	}
}

// BenchmarkProductionHistory walks the whole history of 20,000 commits of
// 500 apps (PROMOTEBOT_BENCH_REMOTE, or a fresh one): the most the walk
// reads.
func BenchmarkProductionHistory(b *testing.B) {
	remote := os.Getenv("PROMOTEBOT_BENCH_REMOTE")
	if remote == "" {
		remote = gittest.MakeConfigRepoTB(b, 500, 20_000)
	}
	c := gitops.NewConfigRepo(clonetest.Open(b, remote))
	p := promote.Project{ID: "app-007", Path: "apps/app-007", Image: "registry.example.com/acme/app-007", URL: "https://app-007.example.com"}
	b.ResetTimer()
	for range b.N {
		got, err := c.ProductionHistory(context.Background(), p, 1000)
		if err != nil || len(got) < 40 {
			b.Fatalf("%d changes, %v", len(got), err)
		}
	}
}
