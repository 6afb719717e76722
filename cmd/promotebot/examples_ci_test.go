package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/promotebot/promotebot/gitops/gittest"
)

// The CI snippets name the webhook and sign their calls, and their shell
// is valid.
func TestExamplesCIScriptsParse(t *testing.T) {
	for _, file := range []string{"ci/github-actions.yml", "ci/gitlab-ci.yml", "ci/post-build.sh"} {
		text := string(noErr(os.ReadFile(filepath.Join(examplesDir, file))))
		for _, want := range []string{"X-Promotebot-Signature-256", "/v1/builds", "openssl dgst -sha256 -hmac"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s does not mention %s", file, want)
			}
		}
	}
	gh, _ := githubStep(t)
	gl, _ := gitlabJob(t)
	for _, c := range []struct{ shell, file, script string }{
		{"bash", "post-build.sh", string(noErr(os.ReadFile(filepath.Join(examplesDir, "ci", "post-build.sh"))))},
		{"bash", "github-actions.yml", gh},
		{"sh", "gitlab-ci.yml", gl},
	} {
		script := filepath.Join(t.TempDir(), "script")
		if err := os.WriteFile(script, []byte(c.script), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(c.shell, "-n", script).CombinedOutput(); err != nil {
			t.Errorf("%s -n %s: %v\n%s", c.shell, c.file, err, out)
		}
	}
}

// githubStep returns the script of the workflow's promotebot step and its
// environment, ${{ }} expressions left as they are.
func githubStep(t *testing.T) (script string, env map[string]string) {
	t.Helper()
	var wf struct {
		Env  map[string]string
		Jobs map[string]struct {
			Steps []struct {
				ID  string
				Env map[string]string
				Run string
			}
		}
	}
	if err := yaml.Unmarshal(noErr(os.ReadFile(filepath.Join(examplesDir, "ci", "github-actions.yml"))), &wf); err != nil {
		t.Fatal(err)
	}
	for _, s := range wf.Jobs["build"].Steps {
		if s.ID == "promotebot" {
			env = map[string]string{}
			for k, v := range wf.Env {
				env["env."+k] = v
			}
			for k, v := range s.Env {
				env[k] = v
			}
			return s.Run, env
		}
	}
	t.Fatal("github-actions.yml: no step with id promotebot in job build")
	return "", nil
}

// gitlabJob returns the script of the promotebot job and its variables.
func gitlabJob(t *testing.T) (script string, vars map[string]string) {
	t.Helper()
	var ci struct {
		Variables  map[string]string
		Promotebot struct {
			Variables map[string]string
			Script    []string
		}
	}
	if err := yaml.Unmarshal(noErr(os.ReadFile(filepath.Join(examplesDir, "ci", "gitlab-ci.yml"))), &ci); err != nil {
		t.Fatal(err)
	}
	if len(ci.Promotebot.Script) == 0 {
		t.Fatal("gitlab-ci.yml: no promotebot job")
	}
	vars = map[string]string{}
	for k, v := range ci.Variables {
		vars[k] = v
	}
	for k, v := range ci.Promotebot.Variables {
		vars[k] = v
	}
	return strings.Join(ci.Promotebot.Script, "\n"), vars
}

var ghExpression = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)

// expandGitHub replaces the ${{ }} expressions of s with their values.
func expandGitHub(t *testing.T, s string, values map[string]string) string {
	t.Helper()
	return ghExpression.ReplaceAllStringFunc(s, func(e string) string {
		v, ok := values[ghExpression.FindStringSubmatch(e)[1]]
		if !ok {
			t.Fatalf("github-actions.yml: the test does not know %s", e)
		}
		return v
	})
}

// runScript runs a script with only the given environment (and PATH).
func runScript(t *testing.T, shell []string, script string, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	for _, tool := range []string{shell[0], "curl", "jq", "openssl", "awk"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the CI examples need %s, which is not installed", tool)
		}
	}
	file := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(file, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(shell[0], slices.Concat(shell[1:], []string{file}, args)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TMPDIR=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// answerID reads the build id from what a CI snippet printed.
func answerID(t *testing.T, stdout string) string {
	t.Helper()
	var a struct{ ID, State string }
	body := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(stdout), "promotebot:"))
	if err := json.Unmarshal([]byte(body), &a); err != nil || a.ID == "" {
		t.Fatalf("not promotebot's answer: %q (%v)", stdout, err)
	}
	return a.ID
}

// exampleServer runs the real server on a remote seeded with the example
// config repo, configured with the example projects (direct mode).
func exampleServer(t *testing.T) (base, remote string) {
	t.Helper()
	remote = gittest.NewRemote(t, exampleRepo)
	var cfg map[string]any
	if err := yaml.Unmarshal(noErr(os.ReadFile(examplePromotebot)), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["listen"] = "127.0.0.1:0"
	cfg["dataDir"] = filepath.Join(t.TempDir(), "data")
	cfg["gitops"].(map[string]any)["repo"] = remote
	delete(cfg, "github") // no GitHub to talk to
	config := filepath.Join(t.TempDir(), "promotebot.yaml")
	if err := os.WriteFile(config, noErr(yaml.Marshal(cfg)), 0o600); err != nil {
		t.Fatal(err)
	}
	base, _ = serveConfig(t, config, nil)
	return base, remote
}

// ciBuild is a build a CI snippet reported and where it must land.
type ciBuild struct {
	id, project, env, image string
}

// checkLanded waits for the build's QA deploy and reads the pushed overlay.
func checkLanded(t *testing.T, base, remote string, b ciBuild) {
	t.Helper()
	got := waitState(t, base, b.id, "qa-ready")
	if got["environment"] != "qa/"+b.env {
		t.Errorf("build %s deployed to %v, want qa/%s", b.id, got["environment"], b.env)
	}
	kust, ok := gittest.ReadFile(t, remote, "main", fmt.Sprintf("apps/%s/overlays/qa/%s/kustomization.yaml", b.project, b.env))
	_, version, _ := strings.Cut(b.image, ":")
	tag, digest, _ := strings.Cut(version, "@")
	if !ok || !strings.Contains(kust, tag) || !strings.Contains(kust, digest) {
		t.Errorf("qa/%s: the pushed overlay does not run %s:\n%s", b.env, b.image, kust)
	}
}

const exampleDigest = "sha256:abababababababababababababababababababababababababababababababab"

// post-build.sh, signed and with a bearer token, against the real server
// serving the example config repo: the builds land in their QA
// environments, a repeat is harmless, and refusals fail the script.
func TestExamplesCIPostBuildSh(t *testing.T) {
	base, remote := exampleServer(t)
	script := string(noErr(os.ReadFile(filepath.Join(examplesDir, "ci", "post-build.sh"))))
	post := func(auth, secret string, args ...string) (string, string, error) {
		env := map[string]string{"PROMOTEBOT_URL": base + "/", "PROMOTEBOT_WEBHOOK_SECRET": secret, "PROMOTEBOT_AUTH": auth,
			"PROMOTEBOT_COMMIT": "abc123", "PROMOTEBOT_BUILD_URL": "https://ci.example.com/1"}
		return runScript(t, []string{"bash"}, script, env, args...)
	}

	web := ciBuild{project: "shop-web", env: "branch-feature-checkout", image: "registry.example.com/acme/shop-web:2.5.0"}
	out, stderr, err := post("hmac", webhookSecret, "shop-web", web.image, "branch", "feature/checkout")
	if err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	web.id = answerID(t, out)
	again, stderr, err := post("hmac", webhookSecret, "shop-web", web.image, "branch", "feature/checkout")
	if err != nil || answerID(t, again) != web.id {
		t.Errorf("a repeat answered %q %s %v, want build %s", again, stderr, err, web.id)
	}
	api := ciBuild{project: "shop-api", env: "tag-v4-13-0", image: "registry.example.com/acme/shop-api:v4.13.0@" + exampleDigest}
	out, stderr, err = post("bearer", webhookSecret, "shop-api", api.image, "tag", "v4.13.0")
	if err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	api.id = answerID(t, out)

	for _, c := range []struct {
		name, auth, secret, image, want string
	}{
		{"wrong secret, hmac", "hmac", "wrong", "registry.example.com/acme/shop-web:2.6.0", "answered 401"},
		{"wrong secret, bearer", "bearer", "wrong", "registry.example.com/acme/shop-web:2.6.0", "answered 401"},
		{"foreign image", "hmac", webhookSecret, "registry.example.com/acme/shop-api:2.6.0", "answered 400"},
	} {
		out, stderr, err := post(c.auth, c.secret, "shop-web", c.image, "branch", "main")
		if err == nil || !strings.Contains(stderr, c.want) || out != "" {
			t.Errorf("%s: %q %q %v, want a failure saying %q", c.name, out, stderr, err, c.want)
		}
	}
	checkLanded(t, base, remote, web)
	checkLanded(t, base, remote, api)
}

// The GitHub Actions step, its ${{ }} expressions filled in as GitHub
// would, run with GitHub's bash options against the real server; the branch
// name holds quotes that the JSON body must escape.
func TestExamplesCIGitHubActions(t *testing.T) {
	base, remote := exampleServer(t)
	script, env := githubStep(t)
	values := map[string]string{
		"env.IMAGE":                         env["env.IMAGE"],
		"vars.PROMOTEBOT_URL":               base,
		"secrets.PROMOTEBOT_WEBHOOK_SECRET": webhookSecret,
		"steps.tag.outputs.tag":             "sha-0123456789ab",
		"steps.build.outputs.digest":        exampleDigest,
		"github.ref_type":                   "branch",
		"github.ref_name":                   `feature/it's-"quoted"`,
		"github.sha":                        "0123456789abcdef0123456789abcdef01234567",
		"github.event.head_commit.author.email || github.actor": "dev@example.com",
		"github.server_url": "https://github.com",
		"github.repository": "acme/shop-web",
		"github.run_id":     "42",
	}
	stepEnv := map[string]string{"PROJECT": env["env.PROJECT"]}
	for k, v := range env {
		if !strings.HasPrefix(k, "env.") {
			stepEnv[k] = expandGitHub(t, v, values)
		}
	}
	bash := []string{"bash", "--noprofile", "--norc", "-eo", "pipefail"}
	out, stderr, err := runScript(t, bash, script, stepEnv)
	if err != nil {
		t.Fatalf("%v: %s%s", err, out, stderr)
	}
	checkLanded(t, base, remote, ciBuild{id: answerID(t, out), project: env["env.PROJECT"], env: "branch-feature-it-s-quoted",
		image: env["env.IMAGE"] + ":sha-0123456789ab@" + exampleDigest})

	stepEnv["PROMOTEBOT_WEBHOOK_SECRET"] = "wrong"
	if out, _, err := runScript(t, bash, script, stepEnv); err == nil || !strings.Contains(out, "answered 401") {
		t.Errorf("a wrong secret: %q %v, want the step to fail with 401", out, err)
	}
}

// The GitLab job's script, run with POSIX sh and GitLab's variables for a
// tag pipeline, against the real server.
func TestExamplesCIGitLab(t *testing.T) {
	base, remote := exampleServer(t)
	script, vars := gitlabJob(t)
	vars["IMAGE_REF"] = vars["IMAGE"] + ":v2.5.0@" + exampleDigest // the build job's dotenv
	for k, v := range map[string]string{
		"PROMOTEBOT_URL": base, "PROMOTEBOT_WEBHOOK_SECRET": webhookSecret,
		"CI_COMMIT_TAG": "v2.5.0", "CI_COMMIT_REF_NAME": "v2.5.0", "CI_COMMIT_SHA": "0123456789abcdef0123456789abcdef01234567",
		"CI_PIPELINE_URL": "https://gitlab.example.com/acme/shop-web/-/pipelines/7", "GITLAB_USER_EMAIL": "dev@example.com",
	} {
		vars[k] = v
	}
	out, stderr, err := runScript(t, []string{"sh"}, script, vars)
	if err != nil {
		t.Fatalf("%v: %s%s", err, out, stderr)
	}
	checkLanded(t, base, remote, ciBuild{id: answerID(t, out), project: vars["PROJECT"], env: "tag-v2-5-0", image: vars["IMAGE_REF"]})

	vars["PROMOTEBOT_WEBHOOK_SECRET"] = "wrong"
	if out, _, err := runScript(t, []string{"sh"}, script, vars); err == nil || !strings.Contains(out, "answered 401") {
		t.Errorf("a wrong secret: %q %v, want the job to fail with 401", out, err)
	}
}

// noErr returns v, or stops the test binary on an error that only a broken
