package githubtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"

	"github.com/promotebot/promotebot/gitops/forge/githubtest"
	"github.com/promotebot/promotebot/gitops/gittest"
)

// post sends body to path as the token's owner and returns the status and
// GitHub's message.
func post(t *testing.T, s *githubtest.Server, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var msg struct {
		Message string `json:"message"`
		Errors  []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&msg); err != nil {
		t.Fatal(err)
	}
	for _, e := range msg.Errors {
		msg.Message += " " + e.Message
	}
	return resp.StatusCode, msg.Message
}

func TestDeployments(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	seed := t.TempDir()
	if err := os.WriteFile(filepath.Join(seed, "go.mod"), []byte("module hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := gittest.NewRemote(t, seed)
	work := gittest.Clone(t, src)
	sha := gittest.CommitFiles(t, work, map[string]string{"main.go": "package main\n"}, "First")
	gittest.Git(t, work, "push", "-q", "origin", "HEAD:refs/heads/feature/x")
	f.s.AddRepository("acme", "hello", src)

	d, resp, err := f.c.Repositories.CreateDeployment(ctx, "acme", "hello", &github.DeploymentRequest{
		Ref: github.String("feature/x"), Environment: github.String("qa/branch-feature-x"),
		TransientEnvironment: github.Bool(true), AutoMerge: github.Bool(false), RequiredContexts: &[]string{},
		Payload: map[string]string{"build": "B1"}, Description: github.String("hello:1"),
	})
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %v", err)
	}
	if d.GetID() != 1 || d.GetSHA() != sha || d.GetRef() != "feature/x" || d.GetTask() != "deploy" ||
		d.GetEnvironment() != "qa/branch-feature-x" || d.GetDescription() != "hello:1" || string(d.Payload) != `{"build":"B1"}` ||
		d.GetURL() != f.s.URL+"repos/acme/hello/deployments/1" || d.GetStatusesURL() != d.GetURL()+"/statuses" ||
		d.GetRepositoryURL() != f.s.URL+"repos/acme/hello" || d.GetCreator().GetLogin() != githubtest.BotLogin {
		t.Errorf("deployment %+v", d)
	}
	st, _, err := f.c.Repositories.CreateDeploymentStatus(ctx, "acme", "hello", 1, &github.DeploymentStatusRequest{
		State: github.String("in_progress"), EnvironmentURL: github.String("https://x.example.com"),
		LogURL: github.String("https://ci.example.com/1"), AutoInactive: github.Bool(false),
	})
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if st.GetID() != 1 || st.GetState() != "in_progress" || st.GetEnvironmentURL() != "https://x.example.com" ||
		st.GetLogURL() != "https://ci.example.com/1" || st.GetTargetURL() != "https://ci.example.com/1" ||
		st.GetEnvironment() != "qa/branch-feature-x" || st.GetDeploymentURL() != d.GetURL() {
		t.Errorf("status %+v", st)
	}
	// Defaults: production, and production_environment with it.
	prod, _, err := f.c.Repositories.CreateDeployment(ctx, "acme", "hello", &github.DeploymentRequest{Ref: github.String(sha)})
	if err != nil || prod.GetEnvironment() != "production" || string(prod.Payload) != "{}" {
		t.Fatalf("production: %+v, %v", prod, err)
	}
	ds := f.s.Deployments("acme/hello")
	if len(ds) != 2 || !ds[0].Transient || ds[0].Production || *ds[0].AutoMerge || ds[0].RequiredContexts == nil ||
		!ds[1].Production || ds[1].AutoMerge != nil || ds[1].RequiredContexts != nil ||
		len(ds[0].Statuses) != 1 || *ds[0].Statuses[0].AutoInactive {
		t.Errorf("held: %+v", ds)
	}

	list, _, err := f.c.Repositories.ListDeployments(ctx, "acme", "hello", &github.DeploymentsListOptions{SHA: sha})
	if err != nil || len(list) != 2 || list[0].GetID() != 2 { // newest first
		t.Errorf("list by sha: %d, %v", len(list), err)
	}
	list, _, err = f.c.Repositories.ListDeployments(ctx, "acme", "hello", &github.DeploymentsListOptions{
		Ref: "feature/x", Environment: "qa/branch-feature-x"})
	if err != nil || len(list) != 1 || list[0].GetID() != 1 {
		t.Errorf("list by ref and environment: %d, %v", len(list), err)
	}
	if list, _, _ := f.c.Repositories.ListDeployments(ctx, owner, repo, nil); len(list) != 0 {
		t.Errorf("the config repository has %d deployments", len(list))
	}

	for _, tc := range []struct {
		path, body string
		status     int
		message    string
	}{
		{"repos/acme/hello/deployments", `{"environment":"production"}`, 422, `"ref" wasn't supplied`},
		{"repos/acme/hello/deployments", `{"ref":"nope"}`, 422, "No ref found for: nope"},
		{"repos/acme/hello/deployments", `{"ref":"0123456789012345678901234567890123456789"}`, 422, "No ref found"},
		{"repos/acme/hello/deployments", `{"ref":"main",`, 400, "Problems parsing JSON"},
		{"repos/acme/hello/deployments", `{"ref":"feature/x","description":"` + strings.Repeat("é", 141) + `"}`, 422, "too long"},
		{"repos/acme/other/deployments", `{"ref":"main"}`, 404, "Not Found"},
		{"repos/acme/hello/deployments/1/statuses", `{"environment_url":"https://x"}`, 422, `"state" wasn't supplied`},
		{"repos/acme/hello/deployments/1/statuses", `{"state":"done"}`, 422, `"done" is not a member`},
		{"repos/acme/hello/deployments/9/statuses", `{"state":"success"}`, 404, "Not Found"},
		{"repos/acme/deploy-config/deployments/1/statuses", `{"state":"success"}`, 404, "Not Found"},
	} {
		if status, msg := post(t, f.s, tc.path, tc.body); status != tc.status || !strings.Contains(msg, tc.message) {
			t.Errorf("POST %s %s: %d %q, want %d %q", tc.path, tc.body, status, msg, tc.status, tc.message)
		}
	}
	if n := len(f.s.Deployments("acme/hello")); n != 2 {
		t.Errorf("%d deployments after refusals, want 2", n)
	}
}

// TestDeploymentsAutoInactive: a success with auto_inactive (GitHub's
// default) makes the earlier successful deployments to its environment
// inactive, unless they are transient or production ones.
func TestDeploymentsAutoInactive(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	create := func(env string, transient bool) int64 {
		t.Helper()
		d, _, err := f.c.Repositories.CreateDeployment(ctx, owner, repo, &github.DeploymentRequest{
			Ref: github.String("main"), Environment: github.String(env), TransientEnvironment: github.Bool(transient)})
		if err != nil {
			t.Fatal(err)
		}
		return d.GetID()
	}
	succeed := func(id int64, autoInactive *bool) {
		t.Helper()
		if _, _, err := f.c.Repositories.CreateDeploymentStatus(ctx, owner, repo, id, &github.DeploymentStatusRequest{
			State: github.String("success"), AutoInactive: autoInactive}); err != nil {
			t.Fatal(err)
		}
	}
	staging1, preview, prod := create("staging", false), create("preview", true), create("production", false)
	for _, id := range []int64{staging1, preview, prod} {
		succeed(id, nil)
	}
	staging2, preview2, prod2 := create("staging", false), create("preview", true), create("production", false)
	succeed(staging2, github.Bool(false))
	succeed(preview2, nil)
	succeed(prod2, nil)
	states := func() string {
		var b bytes.Buffer
		for _, d := range f.s.Deployments(owner + "/" + repo) {
			b.WriteString(d.Environment + ":")
			for _, st := range d.Statuses {
				b.WriteString(" " + st.State)
			}
			b.WriteString("; ")
		}
		return b.String()
	}
	want := "staging: success; preview: success; production: success; staging: success; preview: success; production: success; "
	if got := states(); got != want {
		t.Errorf("without auto_inactive:\n%s\nwant\n%s", got, want)
	}
	succeed(staging2, nil)
	want = "staging: success inactive; preview: success; production: success; staging: success success; preview: success; production: success; "
	if got := states(); got != want {
		t.Errorf("with auto_inactive:\n%s\nwant\n%s", got, want)
	}
}
