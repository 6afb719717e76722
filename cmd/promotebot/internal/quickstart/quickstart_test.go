package quickstart

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

func TestOverlayImage(t *testing.T) {
	for _, tc := range []struct{ name, yaml, image, tag string }{
		{"the app's entry", "images:\n  - name: registry.example.com/acme/other\n    newTag: \"9\"\n" +
			"  - name: registry.example.com/acme/hello # ours\n    newTag: \"1.3.0\"\n", "registry.example.com/acme/hello", "1.3.0"},
		{"newName wins", "images:\n- name: hello\n  newName: registry.example.com/acme/hello\n  newTag: v2.0.0\n",
			"registry.example.com/acme/hello", "v2.0.0"},
		{"else the first", "images:\n- name: nginx\n  newTag: \"1.27\"\n- name: redis\n", "nginx", "1.27"},
		{"no images", "resources:\n- ../../base\n", "", ""},
		{"not YAML", "images: [", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			image, tag := OverlayImage(tc.yaml, "hello")
			if image != tc.image || tag != tc.tag {
				t.Errorf("OverlayImage = %q, %q; want %q, %q", image, tag, tc.image, tc.tag)
			}
		})
	}
}

func TestNextTag(t *testing.T) {
	for _, tc := range []struct {
		tag  string
		tags []string
		want string
	}{
		{"1.3.0", nil, "1.4.0"},
		{"v1.3.0", nil, "v1.4.0"},
		{"4.12.0", []string{"4.12.0", "4.13.0-rc.1"}, "4.13.0"},
		{"4.12.0", []string{"4.13.0", "4.14.0", "4.16.0"}, "4.15.0"}, // an earlier quickstart's QA builds
		{"latest", nil, "quickstart"},
		{"latest", []string{"quickstart", "quickstart-2"}, "quickstart-3"},
		{"1.x.0", nil, "quickstart"},
	} {
		if got := (Project{Tag: tc.tag, Tags: tc.tags}).NextTag(); got != tc.want {
			t.Errorf("NextTag of %s with %v = %q, want %q", tc.tag, tc.tags, got, tc.want)
		}
	}
}

// writeFiles writes files (path → content; a path ending in * is
// executable) below dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		mode := os.FileMode(0o644)
		if n, ok := strings.CutSuffix(name, "*"); ok {
			name, mode = n, 0o755
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
}

func gitOut(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// seeded makes a bare repo seeded from a folder with the app hello (in
// production at 1.3.0, on QA at 1.4.0) and what must be left out.
func seeded(t *testing.T) string {
	t.Helper()
	seed := t.TempDir()
	writeFiles(t, seed, map[string]string{
		"apps/hello/overlays/production/kustomization.yaml":     "images:\n- name: registry.example.com/acme/hello\n  newTag: \"1.3.0\"\n",
		"apps/hello/overlays/qa/branch-x/kustomization.yaml":    "images:\n- name: registry.example.com/acme/hello\n  newTag: \"1.4.0\"\n",
		"apps/hello/base/deployment.yaml":                       "kind: Deployment\n",
		"apps/Not_An_ID/overlays/production/kustomization.yaml": "images:\n- name: x\n  newTag: \"1.0.0\"\n",
		"apps/noimage/overlays/production/kustomization.yaml":   "resources: []\n",
		"hack/check.sh*": "#!/bin/sh\n",
		".git/HEAD":      "ref: refs/heads/main\n",
	})
	if err := os.MkdirAll(filepath.Join(seed, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	remote := filepath.Join(t.TempDir(), "config.git")
	got, err := EnsureRemote(remote, "", []string{filepath.Join(seed, "missing"), seed})
	if err != nil || !strings.HasPrefix(got, "new, seeded from ") {
		t.Fatalf("EnsureRemote: %q, %v", got, err)
	}
	return remote
}

// TestSeedAndProjects: the seed's files land in one commit on main as git
// would store them; the projects are the apps with a production image, with
// the tags their overlays hold; a second call reuses the repository.
func TestSeedAndProjects(t *testing.T) {
	remote := seeded(t)
	tree := gitOut(t, "--git-dir", remote, "ls-tree", "-r", "--format=%(objectmode) %(path)", "main")
	want := "100644 apps/Not_An_ID/overlays/production/kustomization.yaml\n" +
		"100644 apps/hello/base/deployment.yaml\n" +
		"100644 apps/hello/overlays/production/kustomization.yaml\n" +
		"100644 apps/hello/overlays/qa/branch-x/kustomization.yaml\n" +
		"100644 apps/noimage/overlays/production/kustomization.yaml\n" +
		"100755 hack/check.sh\n"
	if tree != want {
		t.Errorf("main's tree:\n%s\nwant:\n%s", tree, want)
	}
	gitOut(t, "--git-dir", remote, "fsck", "--strict")
	if got, err := EnsureRemote(remote, "/nonexistent", nil); err != nil || got != "reused" {
		t.Errorf("second EnsureRemote: %q, %v", got, err)
	}
	projects, head, err := Projects(remote)
	if err != nil {
		t.Fatal(err)
	}
	if len(projects) != 1 || projects[0].ID != "hello" || projects[0].Image != "registry.example.com/acme/hello" ||
		projects[0].Tag != "1.3.0" || !slices.Equal(slices.Sorted(slices.Values(projects[0].Tags)), []string{"1.3.0", "1.4.0"}) {
		t.Errorf("projects: %+v", projects)
	}
	if got := projects[0].NextTag(); got != "1.5.0" {
		t.Errorf("NextTag = %q, want 1.5.0 (1.4.0 is on QA)", got)
	}
	if line := CommitLine(head); !strings.HasPrefix(line, "commit "+head.Hash.String()[:12]+" Seed the config repository from ") {
		t.Errorf("CommitLine = %q", line)
	}
	if _, err := EnsureRemote(filepath.Join(t.TempDir(), "x.git"), "", []string{"/nonexistent"}); err == nil ||
		!strings.Contains(err.Error(), "--seed") {
		t.Errorf("no seed: %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for the watcher and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestWatchCommits: commits pushed to main after the one watched from are
// printed oldest first, each once.
func TestWatchCommits(t *testing.T) {
	remote := seeded(t)
	repo, err := git.PlainOpen(remote)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := repo.Reference(plumbing.Main, true)
	if err != nil {
		t.Fatal(err)
	}
	start := ref.Hash()
	commit := func(parent plumbing.Hash, msg string) plumbing.Hash {
		t.Helper()
		c, err := repo.CommitObject(parent)
		if err != nil {
			t.Fatal(err)
		}
		sig := object.Signature{Name: "bot", Email: "bot@localhost", When: time.Now()}
		h, err := storeObject(repo.Storer, &object.Commit{Author: sig, Committer: sig, TreeHash: c.TreeHash,
			ParentHashes: []plumbing.Hash{parent}, Message: msg})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	var out syncBuffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		WatchCommits(ctx, remote, start, &out, nil)
	}()
	first := commit(start, "Deploy hello 1.4.0 to QA\n\nBuild: b-1\n")
	second := commit(first, "Promote hello 1.4.0 to production\n")
	if err := repo.Storer.SetReference(plumbing.NewHashReference(plumbing.Main, second)); err != nil {
		t.Fatal(err)
	}
	want := "commit " + first.String()[:12] + " Deploy hello 1.4.0 to QA\n" +
		"commit " + second.String()[:12] + " Promote hello 1.4.0 to production\n"
	for deadline := time.Now().Add(10 * time.Second); out.String() != want && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(1100 * time.Millisecond) // one more look: nothing printed twice
	cancel()
	<-done
	if got := out.String(); got != want {
		t.Errorf("printed:\n%s\nwant:\n%s", got, want)
	}
}
