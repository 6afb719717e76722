package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/promotebot/promotebot/gitops/forge/githubtest"
	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/slackui/slacktest"
)

// TestGitHubDeployments: with projects[].sourceRepository, each build shows
// on the source repository as deployments: its QA environment (success at
// once, without cluster feedback), made inactive when a newer build of the
// branch supersedes it, then production once promoted.
func TestGitHubDeployments(t *testing.T) {
	fake := slacktest.NewServer(t, slackToken)
	fake.AddChannel("C0HELLO")
	fake.AddUser(slacktest.User{ID: "UQA1", Name: "ada"})
	fake.AddUser(slacktest.User{ID: "UOWN1", Name: "olga"})
	remote := gittest.NewRemote(t, filepath.Join("..", "..", "testdata", "configrepo"))
	gh := githubtest.NewServer(t, remote, "acme", "deploy-config", githubToken)
	seed := t.TempDir()
	if err := os.WriteFile(filepath.Join(seed, "main.go"), []byte("package main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := gittest.NewRemote(t, seed)
	work := gittest.Clone(t, src)
	first := gittest.Head(t, src, "main")
	second := gittest.CommitFiles(t, work, map[string]string{"main.go": "package main // 2\n"}, "Second")
	gittest.Push(t, work)
	gh.AddRepository("acme", "hello", src)
	config := helloConfig(t, remote, "  sourceRepository: acme/hello\nslack:\n  apiURL: "+fake.URL+
		"\ngithub:\n  repository: acme/deploy-config\n  apiURL: "+gh.URL+"\n")
	base, _ := serveConfig(t, config, map[string]string{
		"PROMOTEBOT_SLACK_BOT_TOKEN":      slackToken,
		"PROMOTEBOT_SLACK_SIGNING_SECRET": slackSigning,
		"PROMOTEBOT_GITHUB_TOKEN":         githubToken,
	})

	post := func(image, commit string) map[string]any {
		t.Helper()
		_, accepted := postBuild(t, base, `{"project":"hello","image":"registry.example.com/acme/hello:`+image+
			`","type":"branch","target":"feature/pr","commit":"`+commit+`"}`)
		return waitState(t, base, accepted["id"].(string), "qa-ready")
	}
	// states returns each deployment of acme/hello as "<environment>
	// <ref>: <state> …", in the order they were made.
	states := func() []string {
		var out []string
		for _, d := range gh.Deployments("acme/hello") {
			s := d.Environment + " " + d.Ref + ":"
			for _, st := range d.Statuses {
				s += " " + st.State
			}
			out = append(out, s)
		}
		return out
	}
	wantStates := func(what string, want ...string) {
		t.Helper()
		waitFor(t, what, func() bool { return reflect.DeepEqual(states(), want) })
	}

	b1 := post("1.0.0", first)
	env, qaURL := b1["environment"].(string), b1["url"].(string)
	wantStates("the first build's QA deployment", env+" "+first+": success")
	d := gh.Deployments("acme/hello")[0]
	if !d.Transient || d.Production || d.SHA != first || d.AutoMerge == nil || *d.AutoMerge ||
		d.RequiredContexts == nil || len(d.RequiredContexts) != 0 || d.Description != "registry.example.com/acme/hello:1.0.0" {
		t.Errorf("QA deployment %+v", d)
	}
	var payload struct{ Build string }
	if err := json.Unmarshal([]byte(d.Payload), &payload); err != nil || payload.Build != b1["id"] {
		t.Errorf("payload %s, want build %v", d.Payload, b1["id"])
	}
	if st := d.Statuses[0]; st.EnvironmentURL != qaURL || st.AutoInactive == nil || *st.AutoInactive ||
		!strings.HasSuffix(st.LogURL, "/acme/deploy-config/commit/"+b1["qaCommit"].(string)) {
		t.Errorf("QA status %+v, want %s", st, qaURL)
	}

	b2 := post("2.0.0", second)
	wantStates("the second build superseding the first", env+" "+first+": success inactive", env+" "+second+": success")
	id := b2["id"].(string)
	waitFor(t, "the DMs", func() bool { return len(fake.Messages("DQA1")) > 0 && len(fake.Messages("DOWN1")) > 0 })
	click(t, base, "UQA1", "qa_approve", id, "DQA1")
	waitState(t, base, id, "approved")
	click(t, base, "UOWN1", "prod_deploy", id, "DOWN1")
	waitState(t, base, id, "promoted")
	wantStates("the production deployment",
		env+" "+first+": success inactive", env+" "+second+": success", "production "+second+": success")
	prod := gh.Deployments("acme/hello")[2]
	if !prod.Production || prod.Transient || prod.Statuses[0].EnvironmentURL != "https://hello.example.com" {
		t.Errorf("production deployment %+v", prod)
	}

	var calls []string
	for _, c := range gh.Calls() {
		if strings.HasPrefix(c.Path, "/repos/acme/hello/") {
			calls = append(calls, c.Method+" "+c.Path)
			if c.Status != http.StatusCreated {
				t.Errorf("%s %s answered %d", c.Method, c.Path, c.Status)
			}
		}
	}
	if len(calls) != 7 { // three deployments, four statuses, nothing twice
		t.Errorf("calls on the source repository:\n%s", strings.Join(calls, "\n"))
	}
}
