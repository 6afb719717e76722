package gitops_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/promotebot/promotebot/gitops"
	"github.com/promotebot/promotebot/gitops/clone/clonetest"
	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/promote"
)

const seed = "../testdata/configrepo"

var helloConfig = promote.Project{ID: "hello", URL: "https://hello.example.com", Image: "registry.example.com/acme/hello", Path: "apps/hello"}

func TestConfigRepoCheck(t *testing.T) {
	c := gitops.NewConfigRepo(nil) // Check never touches git
	env, url, err := c.Check(helloConfig, promote.KindBranch, "feature/Login", "registry.example.com/acme/hello:1.4.0")
	if err != nil || env != "qa/branch-feature-login" || url != "https://feature-login.branch.hello.example.com" {
		t.Fatalf("Check = %q %q %v", env, url, err)
	}
	for _, tc := range []struct{ target, image string }{
		{"../../etc", "registry.example.com/acme/hello:1"},
		{"x\ny", "registry.example.com/acme/hello:1"},
		{"x", "evil.example.com/acme/hello:1"},
		{"x", "registry.example.com/acme/hello"},
		{"\ufeffmain", "registry.example.com/acme/hello:1"}, // reads "main"
		{"m\u0430in", "registry.example.com/acme/hello:1"},  // a Cyrillic а
	} {
		if _, _, err := c.Check(helloConfig, promote.KindBranch, tc.target, tc.image); !errors.Is(err, promote.ErrInvalid) {
			t.Errorf("Check(%q, %q) = %v, want ErrInvalid", tc.target, tc.image, err)
		}
	}
}

func TestConfigRepoDeployQAIsIdempotent(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	c := gitops.NewConfigRepo(clonetest.Open(t, bare))
	b := promote.Build{ID: "01JB", Project: "hello", Image: "registry.example.com/acme/hello:1.4.0", Kind: promote.KindBranch,
		Target: "feature/login", Commit: "0123abc", BuildURL: "https://ci.example.com/7",
		Author: "Ada Lovelace\n<ada@example.com>"} // a line break cannot forge a trailer
	first, err := c.DeployQA(context.Background(), helloConfig, b)
	if err != nil || first.Commit == "" || first.Environment != "qa/branch-feature-login" {
		t.Fatalf("DeployQA = %+v, %v", first, err)
	}
	log := gittest.Log(t, bare, "main")
	if v := log[0].TrailerValues("Promotebot-Source"); len(v) != 1 || v[0] != "branch feature/login @ 0123abc https://ci.example.com/7" {
		t.Fatalf("source trailer %v", v)
	}
	if v := log[0].TrailerValues("Promotebot-Author"); len(v) != 1 || v[0] != "Ada Lovelace <ada@example.com>" {
		t.Fatalf("author trailer %v", v)
	}
	// A retry after a crash finds the overlay in place: no second commit, same commit reported.
	again, err := c.DeployQA(context.Background(), helloConfig, b)
	if err != nil || again != first || len(gittest.Log(t, bare, "main")) != len(log) {
		t.Fatalf("retry = %+v, %v; want %+v and no new commit", again, err, first)
	}

	// A base that does not render is a permanent failure, not the client's
	// mistake.
	work := gittest.Clone(t, bare)
	gittest.CommitFiles(t, work, map[string]string{"apps/hello/base/kustomization.yaml": "resources:\n- gone.yaml\n"}, "Break")
	gittest.Push(t, work)
	b.ID, b.Image = "01JC", "registry.example.com/acme/hello:1.5.0"
	if _, err := c.DeployQA(context.Background(), helloConfig, b); !promote.IsPermanent(err) || errors.Is(err, promote.ErrInvalid) {
		t.Fatalf("render failure: %v, want a permanent error that is not ErrInvalid", err)
	}
}

func TestConfigRepoPromote(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	c := gitops.NewConfigRepo(clonetest.Open(t, bare))
	b := promote.Build{ID: "01JP", Project: "hello", Image: "registry.example.com/acme/hello:2.0.0", Kind: promote.KindTag,
		Target: "v2.0.0", Commit: "0123abc"}
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	approvals := []promote.Approval{{BuildID: b.ID, User: "UQA1", Name: "Ada\nPromoted-by: Eve <x>", Verdict: promote.Approve, At: at}}
	commit, err := c.Promote(context.Background(), helloConfig, b, approvals, promote.Person{ID: "UOWN1", Name: "Olga"})
	if err != nil || commit != gittest.Head(t, bare, "main") {
		t.Fatalf("Promote = %s, %v; remote at %s", commit, err, gittest.Head(t, bare, "main"))
	}
	c0 := gittest.Log(t, bare, "main")[0]
	if v := c0.TrailerValues("Approved-by"); len(v) != 1 || v[0] != "AdaPromoted-by: Eve x <slack:UQA1> 2026-11-23T10:00:00Z" {
		t.Errorf("Approved-by = %q", v)
	}
	if v := c0.TrailerValues("Promoted-by"); len(v) != 1 || v[0] != "Olga <slack:UOWN1>" {
		t.Errorf("Promoted-by = %q", v)
	}
	if v := c0.TrailerValues("Promotebot-Environment"); len(v) != 1 || v[0] != "production" {
		t.Errorf("Promotebot-Environment = %q", v)
	}
	kust, _ := gittest.ReadFile(t, bare, "main", "apps/hello/overlays/production/kustomization.yaml")
	if !strings.Contains(kust, "2.0.0") {
		t.Errorf("production overlay:\n%s", kust)
	}
	again, err := c.Promote(context.Background(), helloConfig, b, approvals, promote.Person{ID: "UOWN1"})
	if err != nil || again != commit {
		t.Fatalf("retry = %s, %v; want %s and no new commit", again, err, commit)
	}
	b.Image = "registry.example.com/other/hello:2.0.0"
	if _, err := c.Promote(context.Background(), helloConfig, b, nil, promote.Person{ID: "UOWN1"}); !errors.Is(err, promote.ErrInvalid) {
		t.Fatalf("foreign image: %v, want ErrInvalid", err)
	}
}

// TestDeployQATakesTheAnnouncedEnvironment: two targets that share a plain
// name each get the environment announced when they were accepted, in
// whichever order they deploy.
func TestDeployQATakesTheAnnouncedEnvironment(t *testing.T) {
	bare := gittest.NewRemote(t, seed)
	c := gitops.NewConfigRepo(clonetest.Open(t, bare))
	plain, plainURL, err := c.Check(helloConfig, promote.KindBranch, "feature/login", "registry.example.com/acme/hello:1")
	if err != nil {
		t.Fatal(err)
	}
	hashed, hashedURL, err := c.Fallback(helloConfig, promote.KindBranch, "Feature/Login")
	if err != nil || hashed == plain || !strings.HasPrefix(hashed, plain+"-") {
		t.Fatalf("Fallback = %q, %v; plain %q", hashed, err, plain)
	}
	first := promote.Build{ID: "01JA", Project: "hello", Image: "registry.example.com/acme/hello:1", Kind: promote.KindBranch,
		Target: "feature/login", Environment: plain, URL: plainURL}
	second := promote.Build{ID: "01JB", Project: "hello", Image: "registry.example.com/acme/hello:1", Kind: promote.KindBranch,
		Target: "Feature/Login", Environment: hashed, URL: hashedURL}
	// The second one accepted deploys first: the plain name is free, but it
	// was announced the hashed one.
	for _, b := range []promote.Build{second, first} {
		d, err := c.DeployQA(context.Background(), helloConfig, b)
		if err != nil || d.Environment != b.Environment || d.URL != b.URL {
			t.Fatalf("DeployQA(%s) = %+v, %v; announced %s %s", b.Target, d, err, b.Environment, b.URL)
		}
	}
	// A target announced a name another target owns by now (outside the
	// bot's record) takes its own hashed name instead.
	third := first
	third.ID, third.Target, third.Environment = "01JC", "FEATURE/login", plain
	own, _, err := c.Fallback(helloConfig, promote.KindBranch, third.Target)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := c.DeployQA(context.Background(), helloConfig, third); err != nil || d.Environment != own {
		t.Fatalf("a third target whose announced name is taken: %+v, %v; want %s", d, err, own)
	}
}
