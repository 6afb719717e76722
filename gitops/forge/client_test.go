package forge_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/promotebot/promotebot/gitops/forge"
	"github.com/promotebot/promotebot/gitops/forge/githubtest"
	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/promote"
)

const clToken = "ghp-client-test"

// clSetup serves a bare config repo through the GitHub fake, with a branch
// promotebot/hello/B1 one commit ahead of main.
func clSetup(t *testing.T) (*forge.Client, *githubtest.Server, string) {
	t.Helper()
	bare := gittest.NewRemote(t, "../../testdata/configrepo")
	work := gittest.Clone(t, bare)
	if _, err := gittest.RunGit(work, "checkout", "-q", "-b", "promotebot/hello/B1"); err != nil {
		t.Fatal(err)
	}
	gittest.CommitFiles(t, work, map[string]string{"apps/hello/overlays/production/note.txt": "x\n"}, "Promote")
	if _, err := gittest.RunGit(work, "push", "-q", "origin", "promotebot/hello/B1"); err != nil {
		t.Fatal(err)
	}
	fake := githubtest.NewServer(t, bare, "acme", "deploy-config", clToken)
	c, err := forge.New(forge.Options{Repository: "acme/deploy-config", APIURL: fake.URL, MergeMethod: "squash", Token: clToken})
	if err != nil {
		t.Fatal(err)
	}
	return c, fake, bare
}

func TestClientOpensOncePerBranch(t *testing.T) {
	c, fake, bare := clSetup(t)
	ctx := context.Background()
	req := promote.PRRequest{Head: "promotebot/hello/B1", Base: "main", Title: "Promote hello", Body: "body"}
	pr, err := c.OpenPR(ctx, req)
	if err != nil || pr.Number != 1 || !pr.Open || pr.HeadSHA != gittest.Head(t, bare, "promotebot/hello/B1") {
		t.Fatalf("OpenPR = %+v, %v", pr, err)
	}
	again, err := c.OpenPR(ctx, req)
	if err != nil || again.Number != 1 || len(fake.PRs()) != 1 {
		t.Fatalf("second OpenPR = %+v, %v; %d PRs", again, err, len(fake.PRs()))
	}
	sha, err := c.Merge(ctx, 1, "0000000000000000000000000000000000000000", "t", "m")
	if !errors.Is(err, promote.ErrHeadMoved) || sha != "" {
		t.Fatalf("merge at a stale head: %v", err)
	}
	sha, err = c.Merge(ctx, 1, pr.HeadSHA, "Promote hello (#1)", "Promoted-by: olga <slack:UOWN1>\n")
	if err != nil || sha != gittest.Head(t, bare, "main") {
		t.Fatalf("merge = %s, %v", sha, err)
	}
	if log := gittest.Log(t, bare, "main"); log[0].Subject != "Promote hello (#1)" || len(log[0].TrailerValues("Promoted-by")) != 1 {
		t.Fatalf("squash commit %+v", log[0])
	}
	merged, err := c.OpenPR(ctx, req)
	if err != nil || !merged.Merged || merged.MergeSHA != sha {
		t.Fatalf("OpenPR after the merge = %+v, %v; want the merged one", merged, err)
	}
	if err := c.Close(ctx, 0, "promotebot/hello/B1"); err != nil {
		t.Fatalf("delete merged branch: %v", err)
	}
	if err := c.Close(ctx, 0, "promotebot/hello/B1"); err != nil {
		t.Fatalf("delete it again: %v", err)
	}
}

func TestClientErrors(t *testing.T) {
	c, fake, _ := clSetup(t)
	ctx := context.Background()
	req := promote.PRRequest{Head: "promotebot/hello/B1", Base: "main", Title: "t"}

	fake.Fail(githubtest.RouteListPulls, githubtest.Failure{Status: http.StatusBadGateway})
	if _, err := c.OpenPR(ctx, req); err == nil || promote.IsPermanent(err) {
		t.Fatalf("502: %v, want a transient error", err)
	}
	fake.Fail(githubtest.RouteListPulls, githubtest.Failure{SecondaryRateLimit: true, RetryAfter: 0})
	_, err := c.OpenPR(ctx, req)
	var ra *promote.RetryAfterError
	if !errors.As(err, &ra) || ra.After < time.Second {
		t.Fatalf("secondary rate limit: %v, want RetryAfterError", err)
	}
	// The primary rate limit (X-RateLimit-Remaining: 0): wait until the
	// reset GitHub announces. A new client each time: go-github remembers a
	// rate limit and refuses to call until its reset.
	c, err = forge.New(forge.Options{Repository: "acme/deploy-config", APIURL: fake.URL, Token: clToken})
	if err != nil {
		t.Fatal(err)
	}
	fake.Fail(githubtest.RouteListPulls, githubtest.Failure{RateLimit: true, RetryAfter: 120})
	_, err = c.OpenPR(ctx, req)
	if !errors.As(err, &ra) || ra.After < 100*time.Second || ra.After > 121*time.Second {
		t.Fatalf("primary rate limit: %v, want RetryAfterError until the reset (about 120 s)", err)
	}
	c, err = forge.New(forge.Options{Repository: "acme/deploy-config", APIURL: fake.URL, Token: clToken})
	if err != nil {
		t.Fatal(err)
	}
	pr, err := c.OpenPR(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	fake.Fail(githubtest.RouteMergePull, githubtest.Failure{Status: http.StatusMethodNotAllowed, Message: "Required status check \"ci\" is expected."})
	if _, err := c.Merge(ctx, pr.Number, pr.HeadSHA, "t", "m"); !errors.Is(err, promote.ErrNotMergeable) || !strings.Contains(err.Error(), "ci") {
		t.Fatalf("405: %v, want ErrNotMergeable saying why", err)
	}
	bad, err := forge.New(forge.Options{Repository: "acme/deploy-config", APIURL: fake.URL, Token: "ghp-expired"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.PR(ctx, pr.Number); !promote.IsPermanent(err) || strings.Contains(err.Error(), "ghp-expired") {
		t.Fatalf("401: %v, want a permanent error without the token", err)
	}
	if err := c.Close(ctx, pr.Number, "promotebot/hello/B1"); err != nil {
		t.Fatal(err)
	}
	if got, err := c.PR(ctx, pr.Number); err != nil || got.Open || got.Merged {
		t.Fatalf("after Close: %+v, %v", got, err)
	}
	for _, o := range []forge.Options{{Repository: "acme", APIURL: fake.URL}, {Repository: "acme/x", APIURL: "http://x/api"}} {
		if _, err := forge.New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}
