package gitops_test

import (
	"context"
	"errors"
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

// deployQA deploys a build of hello's target to QA and returns its
// environment as the bot's store keeps it.
func deployQA(t *testing.T, c *gitops.ConfigRepo, p promote.Project, id string, kind promote.Kind, target string) promote.Environment {
	t.Helper()
	b := promote.Build{ID: id, Project: p.ID, Image: p.Image + ":1.4.0", Kind: kind, Target: target}
	d, err := c.DeployQA(context.Background(), p, b)
	if err != nil {
		t.Fatalf("DeployQA %s: %v", id, err)
	}
	return promote.Environment{Project: p.ID, Kind: kind, Target: target, Name: d.Environment, URL: d.URL, BuildID: id, Image: b.Image}
}

// subtree is the object id of a folder at main ("" when there is none).
func subtree(t *testing.T, bare, dir string) string {
	t.Helper()
	id, err := gittest.RunGit(bare, "rev-parse", "--verify", "-q", "main:"+dir)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(id)
}

// TestTearDownQA: over smart HTTP, a teardown removes exactly the
// environment's folder in one commit with its three trailers; production
// and the other environment stay as they were; asked again it returns that
// commit and adds none; an environment whose folder is gone commits
// nothing.
func TestTearDownQA(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	srv := gittest.NewServer(t, filepath.Dir(bare), "u", "p")
	c := gitops.NewConfigRepo(clonetest.Open(t, srv.RepoURL(bare), func(o *clone.Options) {
		o.Auth = clone.Auth{Username: "u", Password: "p"}
	}))
	ctx := context.Background()
	promoteAll(t, c, helloBuild("b0", "1.3.1"))
	login := deployQA(t, c, helloConfig, "b1", promote.KindBranch, "feature/login")
	other := deployQA(t, c, helloConfig, "b2", promote.KindTag, "v1.5.0-rc.1")
	production, otherDir := subtree(t, bare, "apps/hello/overlays/production"), subtree(t, bare, "apps/hello/overlays/qa/tag-v1-5-0-rc-1")
	base := subtree(t, bare, "apps/hello/base")
	if login.Name != "qa/branch-feature-login" || production == "" || otherDir == "" {
		t.Fatalf("environments %s and %s; production %q", login.Name, other.Name, production)
	}

	asked := time.Now()
	commit, err := c.TearDownQA(ctx, helloConfig, login, "by Olga <slack:UOWN1>", asked)
	if err != nil || commit == "" || commit != gittest.Head(t, bare, "main") {
		t.Fatalf("TearDownQA = %q, %v; main at %s", commit, err, gittest.Head(t, bare, "main"))
	}
	msg := message(t, bare, commit)
	want := []trailer.Trailer{
		{Key: "Promotebot-Project", Value: "hello"},
		{Key: "Promotebot-Environment", Value: "qa/branch-feature-login"},
		{Key: "Promotebot-Teardown", Value: "by Olga <slack:UOWN1>"},
	}
	if got := trailer.Parse(msg); !reflect.DeepEqual(got, want) || !strings.HasPrefix(msg, "Tear down qa/branch-feature-login of hello\n\n") {
		t.Fatalf("message\n%s\ntrailers %q\nwant %q", msg, got, want)
	}
	dir := "apps/hello/overlays/qa/branch-feature-login/"
	wantFiles := []string{dir + "kustomization.yaml", dir + "mapping.yaml", dir + "namespace.yaml"}
	if got := gittest.ChangedFiles(t, bare, commit); !reflect.DeepEqual(got, wantFiles) {
		t.Fatalf("the teardown changed %q, want %q", got, wantFiles)
	}
	if subtree(t, bare, dir) != "" {
		t.Fatal("the folder is still there")
	}
	if subtree(t, bare, "apps/hello/overlays/production") != production || subtree(t, bare, "apps/hello/base") != base ||
		subtree(t, bare, "apps/hello/overlays/qa/tag-v1-5-0-rc-1") != otherDir {
		t.Fatal("production, the base or the other environment changed")
	}

	// Asked again (a retry after a crash, the same since): that commit.
	commits := len(gittest.Log(t, bare, "main"))
	if again, err := c.TearDownQA(ctx, helloConfig, login, "by  Olga\n<slack:UOWN1>", asked); err != nil || again != commit {
		t.Fatalf("again = %q, %v; want %s", again, err, commit)
	}
	// A folder that is not there: no change.
	never := promote.Environment{Project: "hello", Kind: promote.KindBranch, Target: "never", Name: "qa/branch-never", BuildID: "b9"}
	if got, err := c.TearDownQA(ctx, helloConfig, never, "expired", time.Now()); err != nil || got != "" {
		t.Fatalf("a folder that is not there: %q, %v; want \"\", nil", got, err)
	}
	if n := len(gittest.Log(t, bare, "main")); n != commits {
		t.Fatalf("%d commits, want %d: a teardown was committed twice, or one of nothing", n, commits)
	}
}

// TestTearDownQARefuses: a folder another target owns, one a person wrote
// (no annotations) and one marked for another kind are promote.ErrNotOurs;
// production, a path and an empty name are invalid; nothing is committed.
func TestTearDownQARefuses(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	c := gitops.NewConfigRepo(clonetest.Open(t, bare))
	ctx := context.Background()
	login := deployQA(t, c, helloConfig, "b1", promote.KindBranch, "feature/login")
	work := gittest.Clone(t, bare)
	gittest.CommitFiles(t, work, map[string]string{
		"apps/hello/overlays/qa/branch-mine/kustomization.yaml": "resources:\n- ../../../base\nnamespace: hello-mine\n",
		"apps/hello/overlays/qa/branch-mine/notes.txt":          "a person's environment\n",
	}, "An environment of my own")
	gittest.Push(t, work)
	head := gittest.Head(t, bare, "main")

	for _, e := range []promote.Environment{
		{Project: "hello", Kind: promote.KindBranch, Target: "Feature/Login", Name: login.Name}, // shares the plain name
		{Project: "hello", Kind: promote.KindTag, Target: "feature/login", Name: login.Name},
		{Project: "hello", Kind: promote.KindBranch, Target: "mine", Name: "qa/branch-mine"},
	} {
		_, err := c.TearDownQA(ctx, helloConfig, e, "branch-deleted", time.Now())
		if !errors.Is(err, promote.ErrNotOurs) || !promote.IsPermanent(err) {
			t.Errorf("%s %q in %s: %v, want ErrNotOurs", e.Kind, e.Target, e.Name, err)
		}
	}
	for _, name := range []string{"production", "qa/../production", "qa/", "", "qa/branch-feature-login/..", "qa/a/b"} {
		e := login
		e.Name = name
		if _, err := c.TearDownQA(ctx, helloConfig, e, "expired", time.Now()); !errors.Is(err, promote.ErrInvalid) {
			t.Errorf("%q: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := c.TearDownQA(ctx, helloConfig, login, " ", time.Now()); !errors.Is(err, promote.ErrInvalid) {
		t.Errorf("no reason: %v, want ErrInvalid", err)
	}
	elsewhere := login
	elsewhere.Project = "world"
	if _, err := c.TearDownQA(ctx, helloConfig, elsewhere, "expired", time.Now()); !errors.Is(err, promote.ErrInvalid) {
		t.Errorf("another project's environment: %v, want ErrInvalid", err)
	}
	if got := gittest.Head(t, bare, "main"); got != head {
		t.Fatalf("main moved to %s; a refused teardown committed", got)
	}
	if subtree(t, bare, "apps/hello/overlays/qa/branch-feature-login") == "" || subtree(t, bare, "apps/hello/overlays/qa/branch-mine") == "" {
		t.Fatal("a refused teardown removed a folder")
	}
}

// TestTearDownQAAgainAfterANewBuild: an environment torn down and brought
// back by a new build keeps its new folder when the first teardown is
// asked again (its retry finds its own commit), and is torn down again by
// a second teardown with the same reason minutes later (not taken for the
// first).
func TestTearDownQAAgainAfterANewBuild(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	c := gitops.NewConfigRepo(clonetest.Open(t, bare))
	ctx := context.Background()
	first := deployQA(t, c, helloConfig, "b1", promote.KindBranch, "feature/login")
	firstAsked := time.Now()
	firstCommit, err := c.TearDownQA(ctx, helloConfig, first, "branch-deleted", firstAsked)
	if err != nil || firstCommit == "" {
		t.Fatalf("first teardown: %q, %v", firstCommit, err)
	}
	second := deployQA(t, c, helloConfig, "b2", promote.KindBranch, "feature/login")
	if second.Name != first.Name {
		t.Fatalf("the environment came back as %s, not %s", second.Name, first.Name)
	}
	// The first teardown asked again (a retry after a crash) finds its
	// own commit past the new deploy, and leaves the new folder alone.
	if again, err := c.TearDownQA(ctx, helloConfig, first, "branch-deleted", firstAsked); err != nil || again != firstCommit {
		t.Fatalf("the first teardown again: %q, %v; want %s", again, err, firstCommit)
	}
	if subtree(t, bare, "apps/hello/overlays/qa/branch-feature-login") == "" {
		t.Fatal("a retry of the first teardown removed the environment of the new build")
	}
	secondCommit, err := c.TearDownQA(ctx, helloConfig, second, "branch-deleted", time.Now())
	if err != nil || secondCommit == "" || secondCommit == firstCommit || secondCommit != gittest.Head(t, bare, "main") {
		t.Fatalf("second teardown: %q, %v; first %s, main at %s", secondCommit, err, firstCommit, gittest.Head(t, bare, "main"))
	}
	if subtree(t, bare, "apps/hello/overlays/qa/branch-feature-login") != "" {
		t.Fatal("the environment's folder is still there after its second teardown")
	}
}

// TestTearDownQATwoProjects: one branch deletion tears down the
// environment of one name in two projects: each gets its commit.
func TestTearDownQATwoProjects(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	files, err := gittest.AppFiles("world")
	if err != nil {
		t.Fatal(err)
	}
	work := gittest.Clone(t, bare)
	gittest.CommitFiles(t, work, files, "Add world")
	gittest.Push(t, work)
	world := promote.Project{ID: "world", URL: "https://world.example.com", Image: "registry.example.com/acme/world", Path: "apps/world"}
	c := gitops.NewConfigRepo(clonetest.Open(t, bare))
	ctx := context.Background()
	envs := []promote.Environment{
		deployQA(t, c, helloConfig, "b1", promote.KindBranch, "feature/login"),
		deployQA(t, c, world, "b2", promote.KindBranch, "feature/login"),
	}
	asked := time.Now()
	var commits []string
	for i, p := range []promote.Project{helloConfig, world} {
		commit, err := c.TearDownQA(ctx, p, envs[i], "branch-deleted", asked)
		if err != nil || commit == "" {
			t.Fatalf("%s: %q, %v", p.ID, commit, err)
		}
		commits = append(commits, commit)
	}
	if commits[0] == commits[1] {
		t.Fatalf("world's teardown was taken for hello's (%s)", commits[0])
	}
	for _, dir := range []string{"apps/hello/overlays/qa/branch-feature-login", "apps/world/overlays/qa/branch-feature-login"} {
		if subtree(t, bare, dir) != "" {
			t.Errorf("%s is still there", dir)
		}
	}
}

// TestTearDownQALeavesANewerBuild: a newer build of the target deployed
// after the teardown was asked (the environment came back): its folder
// pins another image and is left alone.
func TestTearDownQALeavesANewerBuild(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	c := gitops.NewConfigRepo(clonetest.Open(t, bare))
	ctx := context.Background()
	old := deployQA(t, c, helloConfig, "b1", promote.KindBranch, "feature/login")
	newer := promote.Build{ID: "b2", Project: "hello", Image: helloConfig.Image + ":1.5.0", Kind: promote.KindBranch,
		Target: "feature/login"}
	if _, err := c.DeployQA(ctx, helloConfig, newer); err != nil {
		t.Fatal(err)
	}
	head := gittest.Head(t, bare, "main")
	got, err := c.TearDownQA(ctx, helloConfig, old, "branch-deleted", time.Now())
	if err != nil || got != "" || gittest.Head(t, bare, "main") != head {
		t.Fatalf("a teardown asked for the older build: %q, %v; main moved: %v", got, err, gittest.Head(t, bare, "main") != head)
	}
	if subtree(t, bare, "apps/hello/overlays/qa/branch-feature-login") == "" {
		t.Fatal("the newer build's folder was removed")
	}
}
