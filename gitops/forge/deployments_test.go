package forge_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/promotebot/promotebot/gitops/forge"
	"github.com/promotebot/promotebot/gitops/forge/githubtest"
	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/promote"
)

// sourceSetup adds a source repository acme/hello with one commit to the
// fake of clSetup and returns that commit.
func sourceSetup(t *testing.T) (*forge.Client, *githubtest.Server, string) {
	t.Helper()
	c, fake, _ := clSetup(t)
	seed := t.TempDir()
	if err := os.WriteFile(filepath.Join(seed, "main.go"), []byte("package main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := gittest.NewRemote(t, seed)
	fake.AddRepository("acme", "hello", src)
	return c, fake, gittest.Head(t, src, "main")
}

// lastBody is the JSON body of the fake's last call, which must be method
// on path.
func lastBody(t *testing.T, fake *githubtest.Server, method, path string) map[string]any {
	t.Helper()
	calls := fake.Calls()
	last := calls[len(calls)-1]
	if last.Method != method || last.Path != path {
		t.Fatalf("last call %s %s, want %s %s", last.Method, last.Path, method, path)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(last.Body), &body); err != nil {
		t.Fatalf("body %q: %v", last.Body, err)
	}
	return body
}

func TestClientDeployments(t *testing.T) {
	c, fake, sha := sourceSetup(t)
	ctx := context.Background()
	req := promote.DeploymentRequest{Ref: sha, Environment: "qa/branch-x", Transient: true,
		Description: "registry.example.com/acme/hello:1", BuildID: "B1"}
	id, err := c.CreateDeployment(ctx, "acme/hello", req)
	if err != nil || id != 1 {
		t.Fatalf("CreateDeployment = %d, %v", id, err)
	}
	if got, want := lastBody(t, fake, http.MethodPost, "/repos/acme/hello/deployments"), map[string]any{
		"ref": sha, "environment": "qa/branch-x", "description": "registry.example.com/acme/hello:1",
		"transient_environment": true, "production_environment": false, "auto_merge": false,
		"required_contexts": []any{}, "payload": map[string]any{"build": "B1"},
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("create body\n\t%v\nwant\n\t%v", got, want)
	}
	err = c.CreateDeploymentStatus(ctx, "acme/hello", id, promote.DeploymentStatus{State: promote.DeploymentSuccess,
		EnvironmentURL: "https://x.branch.hello.example.com", LogURL: "https://github.com/acme/deploy-config/commit/c0ffee",
		Description: "Healthy"})
	if err != nil {
		t.Fatalf("CreateDeploymentStatus: %v", err)
	}
	if got, want := lastBody(t, fake, http.MethodPost, "/repos/acme/hello/deployments/1/statuses"), map[string]any{
		"state": "success", "environment_url": "https://x.branch.hello.example.com",
		"log_url": "https://github.com/acme/deploy-config/commit/c0ffee", "description": "Healthy", "auto_inactive": false,
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("status body\n\t%v\nwant\n\t%v", got, want)
	}
	// An empty URL is left out, not sent empty.
	if err := c.CreateDeploymentStatus(ctx, "acme/hello", id, promote.DeploymentStatus{State: promote.DeploymentInactive}); err != nil {
		t.Fatal(err)
	}
	if got := lastBody(t, fake, http.MethodPost, "/repos/acme/hello/deployments/1/statuses"); !reflect.DeepEqual(got,
		map[string]any{"state": "inactive", "auto_inactive": false}) {
		t.Errorf("inactive body %v", got)
	}
	ds := fake.Deployments("acme/hello")
	if len(ds) != 1 || ds[0].SHA != sha || ds[0].Environment != "qa/branch-x" || !ds[0].Transient || ds[0].Production ||
		len(ds[0].Statuses) != 2 || ds[0].Statuses[0].State != "success" || ds[0].Statuses[1].State != "inactive" {
		t.Fatalf("deployments %+v", ds)
	}

	prod := req
	prod.Environment, prod.Transient, prod.Production = "production", false, true
	if id, err := c.CreateDeployment(ctx, "acme/hello", prod); err != nil || id != 2 {
		t.Fatalf("production CreateDeployment = %d, %v", id, err)
	}
	if body := lastBody(t, fake, http.MethodPost, "/repos/acme/hello/deployments"); body["production_environment"] != true ||
		body["transient_environment"] != false {
		t.Errorf("production body %v", body)
	}
	other := req
	other.BuildID = "B2"
	for _, tc := range []struct {
		req  promote.DeploymentRequest
		want int64
	}{{req, 1}, {prod, 2}, {other, 0}} {
		got, ok, err := c.FindDeployment(ctx, "acme/hello", tc.req)
		if err != nil || got != tc.want || ok != (tc.want != 0) {
			t.Errorf("FindDeployment(%s %s) = %d, %v, %v; want %d", tc.req.Environment, tc.req.BuildID, got, ok, err, tc.want)
		}
	}
}

func TestClientDeploymentErrors(t *testing.T) {
	c, fake, sha := sourceSetup(t)
	ctx := context.Background()
	req := promote.DeploymentRequest{Ref: sha, Environment: "production", Production: true, BuildID: "B1"}
	permanent := func(name string, err error) {
		t.Helper()
		if !promote.IsPermanent(err) {
			t.Errorf("%s: %v, want a permanent failure", name, err)
		}
	}
	unknown := req
	unknown.Ref = "0123456789012345678901234567890123456789"
	_, err := c.CreateDeployment(ctx, "acme/hello", unknown)
	permanent("unknown commit", err)
	_, err = c.CreateDeployment(ctx, "acme/other", req)
	permanent("unknown repository", err)
	_, err = c.CreateDeployment(ctx, "hello", req)
	permanent("no owner", err)
	err = c.CreateDeploymentStatus(ctx, "acme/hello", 99, promote.DeploymentStatus{State: promote.DeploymentSuccess})
	permanent("unknown deployment", err)
	id, err := c.CreateDeployment(ctx, "acme/hello", req)
	if err != nil {
		t.Fatal(err)
	}
	err = c.CreateDeploymentStatus(ctx, "acme/hello", id, promote.DeploymentStatus{State: "done"})
	permanent("unknown state", err)

	fake.Fail(githubtest.RouteListDeployments, githubtest.Failure{Status: http.StatusBadGateway})
	if _, _, err := c.FindDeployment(ctx, "acme/hello", req); err == nil || promote.IsPermanent(err) || errors.As(err, new(*promote.RetryAfterError)) {
		t.Errorf("502: %v, want a transient failure", err)
	}
	// Last: go-github makes no call of this client until the limit ends.
	fake.Fail(githubtest.RouteCreateDeploymentStatus, githubtest.Failure{SecondaryRateLimit: true, RetryAfter: 30})
	err = c.CreateDeploymentStatus(ctx, "acme/hello", id, promote.DeploymentStatus{State: promote.DeploymentSuccess})
	var ra *promote.RetryAfterError
	if !errors.As(err, &ra) || ra.After.Seconds() != 30 {
		t.Errorf("rate limited: %v, want retry after 30s", err)
	}
	if ds := fake.Deployments("acme/hello"); len(ds) != 1 || len(ds[0].Statuses) != 0 {
		t.Errorf("deployments %+v, want the one made, without a status", ds)
	}
}
