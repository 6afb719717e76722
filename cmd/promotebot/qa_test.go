package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/promotebot/promotebot/gitops/gittest"
	"github.com/promotebot/promotebot/gitops/overlay"
)

// qaConfig writes a configuration whose config repo is a fresh bare remote
// seeded with the sample project, and returns both paths.
func qaConfig(t *testing.T) (config, remote string) {
	t.Helper()
	remote = gittest.NewRemote(t, filepath.Join("..", "..", "testdata", "configrepo"))
	config = filepath.Join(t.TempDir(), "config.yaml")
	yaml := `dataDir: ` + filepath.Join(t.TempDir(), "data") + `
gitops:
  repo: ` + remote + `
  authorEmail: bot@example.com
projects:
- id: hello
  url: https://hello.example.com
  channel: C0HELLO
  qa: [UQA1]
  owners: [UOWN1]
  image: registry.example.com/acme/hello
  path: apps/hello
`
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return config, remote
}

func TestQACommandWritesPushesAndDeletes(t *testing.T) {
	config, remote := qaConfig(t)
	args := []string{"qa", "--project", "hello", "--target", "feature/Login", "--image", "registry.example.com/acme/hello:1.4.0", "--build", "b1"}
	stdout, _, err := runWith(t, map[string]string{"PROMOTEBOT_CONFIG": config}, args...)
	if err != nil {
		t.Fatal(err)
	}
	head := gittest.Head(t, remote, "main")
	if want := "qa/branch-feature-login https://feature-login.branch.hello.example.com commit " + head + "\n"; stdout != want {
		t.Fatalf("stdout %q, want %q", stdout, want)
	}
	kust, ok := gittest.ReadFile(t, remote, "main", "apps/hello/overlays/qa/branch-feature-login/kustomization.yaml")
	if !ok || !strings.Contains(kust, "newTag: 1.4.0") {
		t.Fatalf("overlay not pushed:\n%s", kust)
	}
	c := gittest.Log(t, remote, "main")[0]
	if got := c.TrailerValues("Promotebot-Build"); len(got) != 1 || got[0] != "b1" || c.AuthorEmail != "bot@example.com" {
		t.Fatalf("commit %+v", c)
	}

	// Again: nothing changes.
	stdout, _, err = runWith(t, map[string]string{"PROMOTEBOT_CONFIG": config}, args...)
	if err != nil || !strings.HasSuffix(stdout, " unchanged\n") || gittest.Head(t, remote, "main") != head {
		t.Fatalf("second run: %q %v", stdout, err)
	}

	_, _, err = runWith(t, nil, "qa", "--config", config, "--project", "hello", "--target", "feature/Login", "--delete")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := gittest.ReadFile(t, remote, "main", "apps/hello/overlays/qa/branch-feature-login/kustomization.yaml"); ok {
		t.Fatal("overlay still there after --delete")
	}
}

func TestQACommandRefusesHostileInput(t *testing.T) {
	config, remote := qaConfig(t)
	before := gittest.Head(t, remote, "main")
	cases := []struct {
		args []string
		want error
		msg  string
	}{
		{[]string{"--project", "nope", "--target", "x", "--image", "registry.example.com/acme/hello:1"}, nil, "unknown project"},
		{[]string{"--project", "hello", "--target", "../../etc", "--image", "registry.example.com/acme/hello:1"}, overlay.ErrInvalidTarget, ""},
		{[]string{"--project", "hello", "--target", "x", "--image", "evil.example.com/acme/hello:1"}, overlay.ErrForeignImage, ""},
		{[]string{"--project", "hello", "--target", "x", "--type", "pr", "--image", "registry.example.com/acme/hello:1"}, overlay.ErrInvalidKind, ""},
	}
	for _, tc := range cases {
		_, _, err := runWith(t, nil, append([]string{"qa", "--config", config}, tc.args...)...)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%v: err = %v, want %v %q", tc.args, err, tc.want, tc.msg)
		}
	}
	if gittest.Head(t, remote, "main") != before {
		t.Fatal("refused input changed the config repo")
	}
}
