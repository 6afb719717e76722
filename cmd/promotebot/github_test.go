package main

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/promotebot/promotebot/gitops/forge/githubtest"
	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/slackui/slacktest"
)

const (
	githubToken         = "ghp-test-token"
	githubWebhookSecret = "test-github-webhook-secret"
)

// prServe runs serve in pull-request mode: the config remote is a bare
// repository that a GitHub fake serves too, and Slack is a fake.
func prServe(t *testing.T) (base, remote string, gh *githubtest.Server, fake *slacktest.Server) {
	t.Helper()
	fake = slacktest.NewServer(t, slackToken)
	fake.AddChannel("C0HELLO")
	fake.AddUser(slacktest.User{ID: "UQA1", Name: "ada", Email: "ada@example.com"})
	fake.AddUser(slacktest.User{ID: "UOWN1", Name: "olga", Email: "olga@example.com"})
	remote = gittest.NewRemote(t, filepath.Join("..", "..", "testdata", "configrepo"))
	gh = githubtest.NewServer(t, remote, "acme", "deploy-config", githubToken)
	config := helloConfig(t, remote, "slack:\n  apiURL: "+fake.URL+"\ngithub:\n  repository: acme/deploy-config\n  apiURL: "+gh.URL+"\n")
	base, _ = serveConfig(t, config, map[string]string{
		"PROMOTEBOT_SLACK_BOT_TOKEN":       slackToken,
		"PROMOTEBOT_SLACK_SIGNING_SECRET":  slackSigning,
		"PROMOTEBOT_GITHUB_TOKEN":          githubToken,
		"PROMOTEBOT_GITHUB_WEBHOOK_SECRET": githubWebhookSecret,
	})
	return base, remote, gh, fake
}

// toDeploy posts a build, approves it and clicks Deploy; it returns the id.
func toDeploy(t *testing.T, base string, fake *slacktest.Server, image string) string {
	t.Helper()
	_, accepted := postBuild(t, base, `{"project":"hello","image":"`+image+`","type":"branch","target":"feature/pr"}`)
	id := accepted["id"].(string)
	waitState(t, base, id, "qa-ready")
	waitFor(t, "the DMs", func() bool { return len(fake.Messages("DQA1")) > 0 && len(fake.Messages("DOWN1")) > 0 })
	click(t, base, "UQA1", "qa_approve", id, "DQA1")
	waitState(t, base, id, "approved")
	click(t, base, "UOWN1", "prod_deploy", id, "DOWN1")
	return id
}

// githubEvent sends a signed webhook delivery as GitHub does.
func githubEvent(t *testing.T, base, event, body, secret string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/github/webhook", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode
}

// TestPullRequestPromotion: Deploy opens one pull request; GitHub first
// refuses the merge (a required check), which the owner is told; a webhook
// says the check passed; a moved head (409) makes the bot rebuild the
// branch; the merge lands on main with the trailers in its message.
func TestPullRequestPromotion(t *testing.T) {
	base, remote, gh, fake := prServe(t)
	gh.Fail(githubtest.RouteMergePull, githubtest.Failure{Status: 405, Message: `Required status check "ci" is expected.`})
	id := toDeploy(t, base, fake, "registry.example.com/acme/hello:5.0.0")

	waitFor(t, "the wait to be recorded", func() bool {
		b := getBuild(t, base, id)
		return b["state"] == "promoting" && strings.Contains(b["error"].(string), `Required status check "ci"`)
	})
	prs := gh.PRs()
	if len(prs) != 1 || prs[0].Head != "promotebot/hello/"+id || prs[0].Base != "main" || !strings.Contains(prs[0].Body, "ada") ||
		!strings.Contains(prs[0].Body, "+        image: registry.example.com/acme/hello:5.0.0") {
		t.Fatalf("pull requests: %+v", prs)
	}
	if b := getBuild(t, base, id); !strings.HasSuffix(b["pullRequest"].(string), "/pull/1") {
		t.Fatalf("build's pull request: %v", b["pullRequest"])
	}
	// The check passes; GitHub says so; the next merge meets a moved head.
	gh.Fail(githubtest.RouteMergePull, githubtest.Failure{Status: 409, Message: "Head branch was modified. Review and try the merge again."})
	if code := githubEvent(t, base, "check_suite", `{"action":"completed","check_suite":{"head_branch":"promotebot/hello/`+id+`","conclusion":"success"}}`, "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("forged webhook: %d, want 401", code)
	}
	if code := githubEvent(t, base, "check_suite", `{"action":"completed","check_suite":{"head_branch":"promotebot/hello/`+id+`","conclusion":"success"}}`, githubWebhookSecret); code != http.StatusOK {
		t.Fatalf("webhook: %d", code)
	}
	b := waitState(t, base, id, "promoted")
	merges := 0
	for _, c := range gh.Calls() {
		if c.Method == http.MethodPut && strings.HasSuffix(c.Path, "/merge") {
			merges++
		}
	}
	if merges != 3 {
		t.Fatalf("%d merge calls, want 3: refused, head moved, merged", merges)
	}
	prs = gh.PRs()
	if len(prs) != 1 || !prs[0].Merged || prs[0].MergeSHA != b["productionCommit"] {
		t.Fatalf("after the merge: %+v, build %v", prs, b)
	}
	if gittest.Head(t, remote, "main") != prs[0].MergeSHA {
		t.Fatalf("main is at %s, want the merge %s", gittest.Head(t, remote, "main"), prs[0].MergeSHA)
	}
	kust, _ := gittest.ReadFile(t, remote, "main", "apps/hello/overlays/production/kustomization.yaml")
	if !strings.Contains(kust, "5.0.0") {
		t.Fatalf("production overlay:\n%s", kust)
	}
	merge := gittest.Log(t, remote, "main")[0]
	if v := merge.TrailerValues("Promoted-by"); len(v) != 1 || v[0] != "olga <slack:UOWN1>" {
		t.Fatalf("merge commit trailers: %+v", merge.Trailers)
	}
	if v := merge.TrailerValues("Approved-by"); len(v) != 1 || !strings.HasPrefix(v[0], "ada <slack:UQA1> ") {
		t.Fatalf("merge commit Approved-by: %v", v)
	}
	waitFor(t, "the production announcement", func() bool {
		for _, m := range fake.Messages("C0HELLO") {
			if strings.Contains(m.Text, "production") && strings.Contains(m.Text, "olga") || strings.Contains(m.Text, "UOWN1") {
				return true
			}
		}
		return false
	})
}

// TestPullRequestAcrossARestart: the bot stops while its pull request waits
// for a check; the next start merges that pull request, and opens no other.
func TestPullRequestAcrossARestart(t *testing.T) {
	fake := slacktest.NewServer(t, slackToken)
	fake.AddChannel("C0HELLO")
	fake.AddUser(slacktest.User{ID: "UQA1", Name: "ada"})
	fake.AddUser(slacktest.User{ID: "UOWN1", Name: "olga"})
	remote := gittest.NewRemote(t, filepath.Join("..", "..", "testdata", "configrepo"))
	gh := githubtest.NewServer(t, remote, "acme", "deploy-config", githubToken)
	config := helloConfig(t, remote, "slack:\n  apiURL: "+fake.URL+"\ngithub:\n  repository: acme/deploy-config\n  apiURL: "+gh.URL+"\n")
	env := map[string]string{"PROMOTEBOT_SLACK_BOT_TOKEN": slackToken, "PROMOTEBOT_SLACK_SIGNING_SECRET": slackSigning,
		"PROMOTEBOT_GITHUB_TOKEN": githubToken, "PROMOTEBOT_GITHUB_WEBHOOK_SECRET": githubWebhookSecret}
	base, _, stop := serveStoppable(t, config, env)
	gh.Fail(githubtest.RouteMergePull, githubtest.Failure{Status: 405, Message: "Waiting for status to be reported"})
	id := toDeploy(t, base, fake, "registry.example.com/acme/hello:7.0.0")
	waitFor(t, "the pull request to wait", func() bool {
		return strings.Contains(getBuild(t, base, id)["error"].(string), "Waiting for status")
	})
	stop()

	base, _, _ = serveStoppable(t, config, env)
	githubEvent(t, base, "status", `{"state":"success","branches":[{"name":"promotebot/hello/`+id+`"}]}`, githubWebhookSecret)
	b := waitState(t, base, id, "promoted")
	if prs := gh.PRs(); len(prs) != 1 || !prs[0].Merged || prs[0].MergeSHA != b["productionCommit"] {
		t.Fatalf("pull requests %+v, build %v", prs, b)
	}
}

// TestPullRequestAsGitHubApp: with github.appID the bot buys installation
// tokens with its private key instead of using PROMOTEBOT_GITHUB_TOKEN.
func TestPullRequestAsGitHubApp(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "app.pem")
	priv := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(keyFile, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	fake := slacktest.NewServer(t, slackToken)
	fake.AddChannel("C0HELLO")
	fake.AddUser(slacktest.User{ID: "UQA1", Name: "ada"})
	fake.AddUser(slacktest.User{ID: "UOWN1", Name: "olga"})
	remote := gittest.NewRemote(t, filepath.Join("..", "..", "testdata", "configrepo"))
	gh := githubtest.NewServer(t, remote, "acme", "deploy-config", "unused-static-token")
	gh.EnableApp(4242, 77, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	config := helloConfig(t, remote, "slack:\n  apiURL: "+fake.URL+"\ngithub:\n  repository: acme/deploy-config\n  apiURL: "+gh.URL+
		"\n  appID: 4242\n  installationID: 77\n  privateKeyFile: "+keyFile+"\n")
	base, _ := serveConfig(t, config, map[string]string{"PROMOTEBOT_SLACK_BOT_TOKEN": slackToken,
		"PROMOTEBOT_SLACK_SIGNING_SECRET": slackSigning})
	id := toDeploy(t, base, fake, "registry.example.com/acme/hello:8.0.0")
	waitState(t, base, id, "promoted")
	if n := gh.InstallationTokens(); n != 1 {
		t.Fatalf("%d installation tokens bought, want 1 (cached)", n)
	}
}

// TestPullRequestMergedByAPerson: GitHub will not let the bot merge, a
// person merges on GitHub; the build is promoted with that merge.
func TestPullRequestMergedByAPerson(t *testing.T) {
	base, _, gh, fake := prServe(t)
	gh.Fail(githubtest.RouteMergePull, githubtest.Failure{Status: 405, Message: "Review required"})
	id := toDeploy(t, base, fake, "registry.example.com/acme/hello:6.0.0")
	waitFor(t, "the pull request", func() bool {
		b := getBuild(t, base, id)
		return strings.Contains(b["error"].(string), "Review required")
	})
	if err := gh.MergeByHand(1, "octocat"); err != nil {
		t.Fatal(err)
	}
	githubEvent(t, base, "pull_request", `{"action":"closed","number":1,"pull_request":{"number":1,"merged":true,"head":{"ref":"promotebot/hello/`+id+`"}}}`, githubWebhookSecret)
	b := waitState(t, base, id, "promoted")
	if prs := gh.PRs(); len(prs) != 1 || prs[0].MergeSHA != b["productionCommit"] || prs[0].MergedBy != "octocat" {
		t.Fatalf("pull requests %+v, build %v", prs, b)
	}
	waitFor(t, "the channel to name who merged", func() bool {
		for _, m := range fake.Messages("C0HELLO") {
			if strings.Contains(string(m.Blocks), "merged on GitHub by") && strings.Contains(string(m.Blocks), "octocat") {
				return true
			}
		}
		return false
	})
}
