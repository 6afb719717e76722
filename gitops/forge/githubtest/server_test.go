package githubtest_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/promotebot/promotebot/gitops/forge/githubtest"
	"github.com/promotebot/promotebot/gitops/gittest"
)

const (
	owner = "acme"
	repo  = "deploy-config"
	token = "ghp_secret"
)

// fixture is a fake over a bare repository seeded with one file on main.
type fixture struct {
	bare string
	s    *githubtest.Server
	c    *github.Client
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	seed := t.TempDir()
	if err := os.WriteFile(filepath.Join(seed, "app.yaml"), []byte("tag: 1.0.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bare := gittest.NewRemote(t, seed)
	s := githubtest.NewServer(t, bare, owner, repo, token)
	return fixture{bare: bare, s: s, c: newClient(t, s, token)}
}

// newClient is a go-github client of the fake, set up as go-github's tests do.
func newClient(t *testing.T, s *githubtest.Server, tok string) *github.Client {
	t.Helper()
	c := github.NewClient(nil).WithAuthToken(tok)
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	c.BaseURL = u
	return c
}

// pushBranch commits files on a new branch off main and pushes it.
func (f fixture) pushBranch(t *testing.T, branch string, files map[string]string, msg string) string {
	t.Helper()
	work := gittest.Clone(t, f.bare)
	gittest.Git(t, work, "checkout", "-q", "-b", branch)
	sha := gittest.CommitFiles(t, work, files, msg)
	gittest.Git(t, work, "push", "-q", "origin", "HEAD:refs/heads/"+branch)
	return sha
}

// open pushes a branch changing app.yaml and opens a pull request for it.
func (f fixture) open(t *testing.T, branch, content string) *github.PullRequest {
	t.Helper()
	return f.openFile(t, branch, "app.yaml", content)
}

// openFile pushes a branch changing file and opens a pull request for it.
func (f fixture) openFile(t *testing.T, branch, file, content string) *github.PullRequest {
	t.Helper()
	f.pushBranch(t, branch, map[string]string{file: content}, "Bump on "+branch)
	pr, _, err := f.c.PullRequests.Create(context.Background(), owner, repo, &github.NewPullRequest{
		Title: github.String("Promote " + branch), Head: github.String(branch),
		Base: github.String("main"), Body: github.String("body of " + branch),
	})
	if err != nil {
		t.Fatal(err)
	}
	return pr
}

// status is the HTTP status of a go-github error, or 0.
func status(err error) int {
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode
	}
	return 0
}

func TestCreateAndList(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	headSHA := f.pushBranch(t, "promote/hello", map[string]string{"app.yaml": "tag: 1.1.0\n"}, "Bump")

	pr, resp, err := f.c.PullRequests.Create(ctx, owner, repo, &github.NewPullRequest{
		Title: github.String("Promote hello"), Head: github.String("promote/hello"), Base: github.String("main"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusCreated || pr.GetNumber() != 1 || pr.GetState() != "open" ||
		pr.GetHTMLURL() != "https://github.example.com/acme/deploy-config/pull/1" ||
		pr.GetHead().GetSHA() != headSHA || pr.GetHead().GetRef() != "promote/hello" ||
		pr.GetBase().GetSHA() != gittest.Head(t, f.bare, "main") || pr.GetMergeableState() != "unknown" {
		t.Errorf("created %d: %+v", resp.StatusCode, pr)
	}

	_, _, err = f.c.PullRequests.Create(ctx, owner, repo, &github.NewPullRequest{
		Title: github.String("Again"), Head: github.String("acme:promote/hello"), Base: github.String("main"),
	})
	if status(err) != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("duplicate: %v", err)
	}
	for _, head := range []string{"nope", "other:promote/hello"} {
		_, _, err = f.c.PullRequests.Create(ctx, owner, repo, &github.NewPullRequest{
			Title: github.String("X"), Head: github.String(head), Base: github.String("main"),
		})
		if status(err) != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), "head") {
			t.Errorf("head %s: %v", head, err)
		}
	}
	f.pushBranch(t, "empty", map[string]string{"app.yaml": "tag: 1.0.0\n", "other": "x"}, "x")
	gittest.Git(t, f.bare, "update-ref", "refs/heads/empty", "main")
	_, _, err = f.c.PullRequests.Create(ctx, owner, repo, &github.NewPullRequest{
		Title: github.String("X"), Head: github.String("empty"), Base: github.String("main"),
	})
	if status(err) != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), "No commits") {
		t.Errorf("no commits: %v", err)
	}

	for _, tc := range []struct {
		opts github.PullRequestListOptions
		want int
	}{
		{github.PullRequestListOptions{Head: "acme:promote/hello"}, 1},
		{github.PullRequestListOptions{Head: "acme:promote/hello", State: "all"}, 1},
		{github.PullRequestListOptions{Head: "acme:promote/hello", State: "closed"}, 0},
		{github.PullRequestListOptions{Head: "acme:other"}, 0},
		{github.PullRequestListOptions{Head: "other:promote/hello"}, 0},
		{github.PullRequestListOptions{Base: "main"}, 1},
	} {
		prs, _, err := f.c.PullRequests.List(ctx, owner, repo, &tc.opts)
		if err != nil || len(prs) != tc.want {
			t.Errorf("list %+v: %d pull requests, %v; want %d", tc.opts, len(prs), err, tc.want)
		}
		if len(prs) == 1 && (prs[0].GetNumber() != 1 || prs[0].GetHead().GetSHA() != headSHA) {
			t.Errorf("list %+v: %+v", tc.opts, prs[0])
		}
	}

	got, _, err := f.c.PullRequests.Get(ctx, owner, repo, 1)
	if err != nil || !got.GetMergeable() || got.GetMergeableState() != "clean" || got.GetMerged() {
		t.Errorf("get: %+v, %v", got, err)
	}
	if _, _, err := f.c.PullRequests.Get(ctx, owner, repo, 7); status(err) != http.StatusNotFound {
		t.Errorf("get #7: %v", err)
	}
	if _, _, err := f.c.PullRequests.Get(ctx, owner, "other", 1); status(err) != http.StatusNotFound {
		t.Errorf("other repo: %v", err)
	}
}

func TestMergeMethods(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	methods := []string{"merge", "squash", "rebase"}
	// All three are open before the first merge: each later merge finds the
	// base branch moved.
	prs := map[string]*github.PullRequest{}
	for _, method := range methods {
		prs[method] = f.openFile(t, "promote/"+method, method+".yaml", "tag: "+method+"\n")
	}
	for _, method := range methods {
		branch, pr := "promote/"+method, prs[method]
		before := gittest.Head(t, f.bare, "main")
		res, _, err := f.c.PullRequests.Merge(ctx, owner, repo, pr.GetNumber(), "Promoted-by: Ann",
			&github.PullRequestOptions{CommitTitle: "Deploy " + method, SHA: pr.GetHead().GetSHA(), MergeMethod: method})
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		after := gittest.Head(t, f.bare, "main")
		if !res.GetMerged() || res.GetSHA() != after || res.GetMessage() != "Pull Request successfully merged" {
			t.Errorf("%s: %+v, main at %s", method, res, after)
		}
		if got, _ := gittest.ReadFile(t, f.bare, "main", method+".yaml"); got != "tag: "+method+"\n" {
			t.Errorf("%s: main has %q", method, got)
		}
		head := gittest.Log(t, f.bare, "main")[0]
		switch method {
		case "merge":
			if len(head.Parents) != 2 || head.Parents[0] != before || head.Parents[1] != pr.GetHead().GetSHA() ||
				head.Subject != "Deploy merge" || head.Body != "Promoted-by: Ann" ||
				head.AuthorName != githubtest.BotLogin || head.CommitterName != "GitHub" {
				t.Errorf("merge commit: %+v", head)
			}
		case "squash":
			if len(head.Parents) != 1 || head.Parents[0] != before ||
				head.Subject != "Deploy squash" || head.Body != "Promoted-by: Ann" {
				t.Errorf("squash commit: %+v", head)
			}
		case "rebase":
			if len(head.Parents) != 1 || head.Parents[0] != before || head.Hash == pr.GetHead().GetSHA() ||
				head.Subject != "Bump on "+branch || head.AuthorName != gittest.AuthorName || head.CommitterName != "GitHub" {
				t.Errorf("rebased commit: %+v", head)
			}
		}
		got, _, err := f.c.PullRequests.Get(ctx, owner, repo, pr.GetNumber())
		if err != nil || !got.GetMerged() || got.GetState() != "closed" || got.GetMergeCommitSHA() != after ||
			got.GetMergedBy().GetLogin() != githubtest.BotLogin || got.MergedAt == nil || got.Mergeable != nil {
			t.Errorf("%s: after merge %+v, %v", method, got, err)
		}
		if _, _, err := f.c.PullRequests.Merge(ctx, owner, repo, pr.GetNumber(), "", nil); status(err) != http.StatusMethodNotAllowed {
			t.Errorf("%s: merge again: %v", method, err)
		}
	}
	for _, file := range []string{"app.yaml", "merge.yaml", "squash.yaml"} {
		if _, ok := gittest.ReadFile(t, f.bare, "main", file); !ok {
			t.Errorf("main lost %s", file)
		}
	}
	if wt := gittest.Git(t, f.bare, "worktree", "list", "--porcelain"); strings.Count(wt, "worktree ") != 1 {
		t.Errorf("work trees left behind: %s", wt)
	}
	got := f.s.PRs()
	if len(got) != 3 || got[1].MergeMethod != "squash" || got[1].CommitTitle != "Deploy squash" ||
		got[1].CommitMessage != "Promoted-by: Ann" || got[2].MergedBy != githubtest.BotLogin || !got[2].Merged {
		t.Errorf("PRs: %+v", got)
	}
}

func TestMergeDefaultMessage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pr := f.open(t, "feature", "tag: 3.0.0\n")
	if _, _, err := f.c.PullRequests.Merge(context.Background(), owner, repo, 1, "", nil); err != nil {
		t.Fatal(err)
	}
	head := gittest.Log(t, f.bare, "main")[0]
	if head.Subject != "Merge pull request #1 from acme/feature" || head.Body != pr.GetTitle() {
		t.Errorf("default message: %q / %q", head.Subject, head.Body)
	}
}

func TestMergeRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	pr := f.open(t, "stale", "tag: 4.0.0\n")

	// A push to the head branch after the caller read the pull request.
	work := gittest.Clone(t, f.bare)
	gittest.Git(t, work, "checkout", "-q", "stale")
	moved := gittest.CommitFiles(t, work, map[string]string{"more": "x\n"}, "More")
	gittest.Push(t, work)
	_, _, err := f.c.PullRequests.Merge(ctx, owner, repo, 1, "", &github.PullRequestOptions{SHA: pr.GetHead().GetSHA()})
	if status(err) != http.StatusConflict || !strings.Contains(err.Error(), "Head branch was modified") {
		t.Errorf("stale sha: %v", err)
	}
	if got, _, err := f.c.PullRequests.Get(ctx, owner, repo, 1); err != nil || got.GetHead().GetSHA() != moved {
		t.Errorf("head after push: %s, %v; want %s", got.GetHead().GetSHA(), err, moved)
	}

	f.s.SetMergeable(1, "blocked")
	if got, _, err := f.c.PullRequests.Get(ctx, owner, repo, 1); err != nil || got.GetMergeableState() != "blocked" {
		t.Errorf("blocked: %+v, %v", got, err)
	}
	_, _, err = f.c.PullRequests.Merge(ctx, owner, repo, 1, "", &github.PullRequestOptions{SHA: moved})
	if status(err) != http.StatusMethodNotAllowed || !strings.Contains(err.Error(), `Required status check "ci"`) {
		t.Errorf("blocked: %v", err)
	}
	f.s.SetMergeable(1, "clean")

	// main moves so that the change conflicts.
	main := gittest.Clone(t, f.bare)
	gittest.CommitFiles(t, main, map[string]string{"app.yaml": "tag: 9.9.9\n"}, "Hotfix")
	gittest.Push(t, main)
	got, _, err := f.c.PullRequests.Get(ctx, owner, repo, 1)
	if err != nil || got.GetMergeable() || got.Mergeable == nil || got.GetMergeableState() != "dirty" {
		t.Errorf("conflict: %+v, %v", got, err)
	}
	for _, method := range []string{"merge", "squash", "rebase"} {
		_, _, err = f.c.PullRequests.Merge(ctx, owner, repo, 1, "", &github.PullRequestOptions{MergeMethod: method})
		if status(err) != http.StatusMethodNotAllowed {
			t.Errorf("%s with conflict: %v", method, err)
		}
	}
	if c, _ := gittest.ReadFile(t, f.bare, "main", "app.yaml"); c != "tag: 9.9.9\n" {
		t.Errorf("main changed by a refused merge: %q", c)
	}

	if _, _, err := f.c.PullRequests.Edit(ctx, owner, repo, 1, &github.PullRequest{State: github.String("closed")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.c.PullRequests.Merge(ctx, owner, repo, 1, "", nil); status(err) != http.StatusMethodNotAllowed {
		t.Errorf("closed: %v", err)
	}
}

func TestByHand(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	f.open(t, "a", "tag: 5.0.0\n")
	f.open(t, "b", "other: 1\n")
	f.s.SetMergeable(1, "blocked")
	if err := f.s.MergeByHand(1, "octocat"); err != nil {
		t.Fatal(err)
	}
	got, _, err := f.c.PullRequests.Get(ctx, owner, repo, 1)
	if err != nil || !got.GetMerged() || got.GetMergedBy().GetLogin() != "octocat" ||
		got.GetMergeCommitSHA() != gittest.Head(t, f.bare, "main") {
		t.Errorf("merged by hand: %+v, %v", got, err)
	}
	if c, _ := gittest.ReadFile(t, f.bare, "main", "app.yaml"); c != "tag: 5.0.0\n" {
		t.Errorf("main: %q", c)
	}
	if err := f.s.MergeByHand(1, "octocat"); err == nil {
		t.Error("merged twice")
	}
	if err := f.s.CloseByHand(2); err != nil {
		t.Fatal(err)
	}
	got, _, err = f.c.PullRequests.Get(ctx, owner, repo, 2)
	if err != nil || got.GetState() != "closed" || got.GetMerged() || got.ClosedAt == nil {
		t.Errorf("closed by hand: %+v, %v", got, err)
	}
	open, _, err := f.c.PullRequests.List(ctx, owner, repo, nil)
	if err != nil || len(open) != 0 {
		t.Errorf("open: %d, %v", len(open), err)
	}
}

func TestCloseAndDeleteRef(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	pr := f.open(t, "promote/x", "tag: 6.0.0\n")
	edited, _, err := f.c.PullRequests.Edit(ctx, owner, repo, 1, &github.PullRequest{State: github.String("closed")})
	if err != nil || edited.GetState() != "closed" {
		t.Fatalf("close: %+v, %v", edited, err)
	}
	ref, _, err := f.c.Git.GetRef(ctx, owner, repo, "heads/promote/x")
	if err != nil || ref.GetRef() != "refs/heads/promote/x" || ref.GetObject().GetSHA() != pr.GetHead().GetSHA() {
		t.Errorf("get ref: %+v, %v", ref, err)
	}
	resp, err := f.c.Git.DeleteRef(ctx, owner, repo, "heads/promote/x")
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %v", err)
	}
	if _, err := gittest.RunGit(f.bare, "rev-parse", "--verify", "-q", "refs/heads/promote/x"); err == nil {
		t.Error("branch still in the bare repository")
	}
	if _, _, err := f.c.Git.GetRef(ctx, owner, repo, "heads/promote/x"); status(err) != http.StatusNotFound {
		t.Errorf("get deleted: %v", err)
	}
	if _, err := f.c.Git.DeleteRef(ctx, owner, repo, "heads/promote/x"); status(err) != http.StatusUnprocessableEntity ||
		!strings.Contains(err.Error(), "Reference does not exist") {
		t.Errorf("delete again: %v", err)
	}

	// Deleting the head branch of an open pull request closes it.
	f.open(t, "promote/y", "tag: 6.1.0\n")
	if _, err := f.c.Git.DeleteRef(ctx, owner, repo, "heads/promote/y"); err != nil {
		t.Fatal(err)
	}
	if prs := f.s.PRs(); prs[1].State != "closed" || prs[1].Merged {
		t.Errorf("after deleting its head: %+v", prs[1])
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	_, _, err := newClient(t, f.s, "wrong").PullRequests.List(ctx, owner, repo, nil)
	if status(err) != http.StatusUnauthorized || !strings.Contains(err.Error(), "Bad credentials") {
		t.Errorf("wrong token: %v", err)
	}
	for _, header := range []string{"token " + token, "Bearer " + token, "", "Basic " + token} {
		req, err := http.NewRequest(http.MethodGet, f.s.URL+"repos/acme/deploy-config/pulls", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := http.StatusOK
		if !strings.HasSuffix(header, " "+token) || strings.HasPrefix(header, "Basic") {
			want = http.StatusUnauthorized
		}
		if resp.StatusCode != want {
			t.Errorf("%q: %d, want %d", header, resp.StatusCode, want)
		}
	}

	f.s.SetToken("ghp_rotated")
	if _, _, err := f.c.PullRequests.List(ctx, owner, repo, nil); status(err) != http.StatusUnauthorized {
		t.Errorf("old token: %v", err)
	}
	if _, _, err := newClient(t, f.s, "ghp_rotated").PullRequests.List(ctx, owner, repo, nil); err != nil {
		t.Errorf("new token: %v", err)
	}

	_, err = newClient(t, f.s, "ghp_rotated").Do(ctx, mustRequest(t, f.s, "GET", "repos/acme/deploy-config/issues"), nil)
	if status(err) != http.StatusNotFound {
		t.Errorf("unknown route: %v", err)
	}
}

func mustRequest(t *testing.T, s *githubtest.Server, method, path string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestFailures(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	f.open(t, "promote/f", "tag: 7.0.0\n")

	f.s.Fail(githubtest.RouteMergePull, githubtest.Failure{SecondaryRateLimit: true, RetryAfter: 30})
	_, _, err := newClient(t, f.s, token).PullRequests.Merge(ctx, owner, repo, 1, "", nil)
	var abuse *github.AbuseRateLimitError
	if !errors.As(err, &abuse) || abuse.RetryAfter == nil || *abuse.RetryAfter != 30*time.Second ||
		!strings.Contains(abuse.Message, "secondary rate limit") {
		t.Errorf("secondary: %#v", err)
	}

	f.s.Fail(githubtest.RouteGetPull, githubtest.Failure{RateLimit: true, RetryAfter: 60})
	_, _, err = newClient(t, f.s, token).PullRequests.Get(ctx, owner, repo, 1)
	var rate *github.RateLimitError
	if !errors.As(err, &rate) || rate.Rate.Remaining != 0 || time.Until(rate.Rate.Reset.Time) < 50*time.Second {
		t.Errorf("primary: %#v", err)
	}

	f.s.Fail(githubtest.RouteGetPull, githubtest.Failure{Status: http.StatusBadGateway})
	f.s.Fail(githubtest.RouteGetPull, githubtest.Failure{Status: http.StatusServiceUnavailable, Message: "busy", RetryAfter: 2})
	if _, _, err := f.c.PullRequests.Get(ctx, owner, repo, 1); status(err) != http.StatusBadGateway {
		t.Errorf("502: %v", err)
	}
	_, resp, err := f.c.PullRequests.Get(ctx, owner, repo, 1)
	if status(err) != http.StatusServiceUnavailable || !strings.Contains(err.Error(), "busy") ||
		resp.Header.Get("Retry-After") != "2" {
		t.Errorf("503: %v", err)
	}
	if _, _, err := f.c.PullRequests.Get(ctx, owner, repo, 1); err != nil {
		t.Errorf("after the failures: %v", err)
	}
	if prs := f.s.PRs(); prs[0].Merged {
		t.Error("a failed merge merged")
	}

	var statuses []int
	for _, c := range f.s.Calls() {
		if c.Path == "/repos/acme/deploy-config/pulls/1" || c.Path == "/repos/acme/deploy-config/pulls/1/merge" {
			statuses = append(statuses, c.Status)
		}
	}
	if want := []int{403, 403, 502, 503, 200}; !slices.Equal(statuses, want) {
		t.Errorf("calls: %v, want %v", statuses, want)
	}
	calls := f.s.Calls()
	if c := calls[len(calls)-5]; c.Method != http.MethodPut || !strings.Contains(c.Body, "{") {
		t.Errorf("merge call: %+v", c)
	}
}
