package promote_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/promotebot/promotebot/promote"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestPRBodyGolden(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	b := promote.Build{ID: "01M8BUILD", Project: "hello", Image: "registry.example.com/acme/hello:1.4.0@sha256:" + strings.Repeat("ab", 32),
		Kind: promote.KindBranch, Target: "feature/login", Commit: "0123456789abcdef", BuildURL: "https://ci.example.com/builds/42",
		Environment: "qa/branch-feature-login", URL: "https://feature-login.branch.hello.example.com", QACommit: "c0ffee00"}
	p := promote.Project{ID: "hello", Name: "Hello *Service*", RequiredApprovals: 2}
	approved := []promote.Approval{
		{User: "UQA1", Name: "Ada", Verdict: promote.Approve, At: at},
		{User: "UQA2", Name: "@bob_", Verdict: promote.Approve, At: at.Add(time.Hour)},
	}
	for name, body := range map[string]string{
		"prbody": promote.PRBody(b, p, approved, promote.Person{ID: "UOWN1", Name: "Olga"},
			"…\n     spec:\n       containers:\n-      - image: registry.example.com/acme/hello:1.3.0\n+      - image: registry.example.com/acme/hello:1.4.0\n"),
		"prbody-bare":   promote.PRBody(promote.Build{ID: "01M8B2", Image: "registry.example.com/acme/hello:2", Kind: promote.KindTag, Target: "v2"}, promote.Project{ID: "hello"}, nil, promote.Person{ID: "UOWN1"}, ""),
		"prbody-tricky": promote.PRBody(promote.Build{ID: "01M8B3", Image: "x", Kind: promote.KindBranch, Target: "fix/`rm -rf`|<b>"}, p, nil, promote.Person{ID: "UOWN1", Name: "<script>"}, "```\n"),
	} {
		path := filepath.Join("testdata", name+".golden.md")
		if *update {
			if err := os.MkdirAll("testdata", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if body != string(want) {
			t.Errorf("%s differs from %s:\n%s", name, path, body)
		}
	}
}
