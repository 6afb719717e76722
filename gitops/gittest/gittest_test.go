package gittest

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// seedDir writes files (slash paths) into a new temporary directory.
func seedDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestTemplateMatchesTestdata(t *testing.T) {
	t.Parallel()
	want := os.DirFS(filepath.Join("..", "..", "testdata", "configrepo", "apps", TemplateApp))
	got, err := fs.Sub(template, "template")
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]bool{}
	for _, fsys := range []fs.FS{want, got} {
		err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				paths[p] = true
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for p := range paths {
		w, werr := fs.ReadFile(want, p)
		g, gerr := fs.ReadFile(got, p)
		if werr != nil || gerr != nil || string(w) != string(g) {
			t.Errorf("template/%s differs from testdata (copy testdata/configrepo/apps/hello into gitops/gittest/template): %v, %v", p, werr, gerr)
		}
	}
}

// TestEnvIgnoresMachineConfig runs git with hostile user configuration and a
// leaked GIT_DIR, as a git hook running the tests would have.
func TestEnvIgnoresMachineConfig(t *testing.T) {
	home := seedDir(t, map[string]string{
		".gitconfig":             "[user]\n\tname = Wrong\n[init]\n\tdefaultBranch = trunk\n",
		".config/git/ignore":     "*.yaml\n",
		".config/git/config":     "[core]\n\texcludesFile = " + "/nonexistent\n",
		".config/git/attributes": "* -text\n",
	})
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("GIT_CONFIG_GLOBAL", filepath.Join(home, ".gitconfig"))
	t.Setenv("GIT_DIR", filepath.Join(home, "nonexistent.git"))
	t.Setenv("GIT_AUTHOR_NAME", "Leaked")

	bare := NewRemote(t, seedDir(t, map[string]string{"a/b.yaml": "x: 1\n"}))
	if got := Git(t, bare, "symbolic-ref", "HEAD"); got != "refs/heads/main" {
		t.Errorf("HEAD = %s, want refs/heads/main", got)
	}
	if got, ok := ReadFile(t, bare, "main", "a/b.yaml"); !ok || got != "x: 1\n" {
		t.Errorf("a/b.yaml = %q, %v; want it committed despite the global ignore file", got, ok)
	}
	log := Log(t, bare, "main")
	if len(log) != 1 {
		t.Fatalf("log has %d commits, want 1", len(log))
	}
	c := log[0]
	if c.AuthorName != AuthorName || c.AuthorEmail != AuthorEmail ||
		c.CommitterName != CommitterName || c.CommitterEmail != CommitterEmail {
		t.Errorf("identity = %s <%s> / %s <%s>, want the fixed one",
			c.AuthorName, c.AuthorEmail, c.CommitterName, c.CommitterEmail)
	}
	if c.Subject != InitialCommitMessage || len(c.Parents) != 0 {
		t.Errorf("initial commit = %q with parents %v", c.Subject, c.Parents)
	}
}

func TestCommitPushRead(t *testing.T) {
	t.Parallel()
	bare := NewRemote(t, seedDir(t, map[string]string{
		"keep.txt":      "keep\n",
		"dir/drop.txt":  "drop\n",
		"dir/edit.yaml": "v: 1\n",
	}))
	seed := Head(t, bare, "main")
	work := Clone(t, bare)
	hash := CommitFiles(t, work, map[string]string{
		"dir/drop.txt":     "",
		"dir/edit.yaml":    "v: 2\n",
		"new/deep/add.txt": "added\n",
	}, "Change three files")
	if got := Head(t, bare, "main"); got != seed {
		t.Fatalf("remote moved before Push: %s", got)
	}
	Push(t, work)
	if got := Head(t, bare, "main"); got != hash {
		t.Fatalf("remote main = %s, want %s", got, hash)
	}

	for _, tc := range []struct {
		rev, path, want string
		ok              bool
	}{
		{"main", "dir/edit.yaml", "v: 2\n", true},
		{seed, "dir/edit.yaml", "v: 1\n", true},
		{"main", "dir/drop.txt", "", false},
		{"main", "new/deep/add.txt", "added\n", true},
		{"main", "keep.txt", "keep\n", true},
	} {
		got, ok := ReadFile(t, bare, tc.rev, tc.path)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ReadFile(%s:%s) = %q, %v; want %q, %v", tc.rev, tc.path, got, ok, tc.want, tc.ok)
		}
	}
	wantChanged := []string{"dir/drop.txt", "dir/edit.yaml", "new/deep/add.txt"}
	if got := ChangedFiles(t, bare, hash); !reflect.DeepEqual(got, wantChanged) {
		t.Errorf("ChangedFiles = %v, want %v", got, wantChanged)
	}
	if got := ChangedFiles(t, bare, seed); len(got) != 3 {
		t.Errorf("ChangedFiles(root) = %v, want the 3 seeded files", got)
	}
	log := Log(t, bare, "main")
	if len(log) != 2 || log[0].Hash != hash || !reflect.DeepEqual(log[0].Parents, []string{seed}) {
		t.Errorf("log = %+v, want [%s (parent %s), %s]", log, hash, seed, seed)
	}
	if _, err := CommitChanges(work, map[string]string{"keep.txt": "keep\n"}, "No-op"); err == nil {
		t.Error("a commit that changes nothing succeeded")
	}
}

func TestLogParsesTrailers(t *testing.T) {
	t.Parallel()
	work := Clone(t, NewRemote(t, ""))
	msg := "Deploy hello 1.4.0 to qa/branch-feature-login\n\n" +
		"Why: a body paragraph.\n\n" +
		"Promotebot-Build: b-42\n" +
		"Promotebot-Source: branch feature/login @ abc123\n" +
		"  https://ci.example.com/run/7\n" +
		"Approved-by: Ann <slack:U1> 2024-05-01T10:00:00Z\n" +
		"Approved-by: Bob <slack:U2> 2024-05-01T11:00:00Z\n"
	hash := CommitFiles(t, work, map[string]string{"f.txt": "1\n"}, msg)
	log := Log(t, work, "HEAD")
	if len(log) != 1 || log[0].Hash != hash {
		t.Fatalf("log = %+v", log)
	}
	c := log[0]
	if c.Subject != "Deploy hello 1.4.0 to qa/branch-feature-login" {
		t.Errorf("Subject = %q", c.Subject)
	}
	if !strings.HasPrefix(c.Body, "Why: a body paragraph.\n\nPromotebot-Build: b-42\n") ||
		!strings.HasSuffix(c.Body, "2024-05-01T11:00:00Z") {
		t.Errorf("Body = %q", c.Body)
	}
	want := []Trailer{
		{"Promotebot-Build", "b-42"},
		{"Promotebot-Source", "branch feature/login @ abc123 https://ci.example.com/run/7"},
		{"Approved-by", "Ann <slack:U1> 2024-05-01T10:00:00Z"},
		{"Approved-by", "Bob <slack:U2> 2024-05-01T11:00:00Z"},
	}
	if !reflect.DeepEqual(c.Trailers, want) {
		t.Errorf("Trailers = %q, want %q", c.Trailers, want)
	}
	if got := c.TrailerValues("approved-BY"); len(got) != 2 || got[1] != want[3].Value {
		t.Errorf("TrailerValues(approved-BY) = %q", got)
	}
}

// httpRemote serves a seeded remote over HTTP.
func httpRemote(t *testing.T) (bare string, srv *Server) {
	t.Helper()
	bare = NewRemote(t, seedDir(t, map[string]string{"a.txt": "a\n"}))
	return bare, NewServer(t, filepath.Dir(bare), "bot", "s3cret")
}

func TestHTTPCloneAndPush(t *testing.T) {
	t.Parallel()
	bare, srv := httpRemote(t)
	if !strings.HasPrefix(srv.AuthURL(bare), "http://bot:s3cret@127.0.0.1:") {
		t.Errorf("AuthURL = %s", srv.AuthURL(bare))
	}
	work := Clone(t, srv.AuthURL(bare))
	hash := CommitFiles(t, work, map[string]string{"b.txt": "b\n"}, "Add b")
	Push(t, work)
	if got := Head(t, bare, "main"); got != hash {
		t.Errorf("remote main = %s, want %s", got, hash)
	}
	if got := srv.Pushes(); got != 1 {
		t.Errorf("Pushes = %d, want 1; requests %+v", got, srv.Requests())
	}
	Git(t, work, "fetch", "-q", "origin")
	if got := Git(t, work, "rev-parse", "origin/main"); got != hash {
		t.Errorf("fetched origin/main = %s, want %s", got, hash)
	}
	if ServeHTTP(t, filepath.Dir(bare), "u", "p") == srv.URL {
		t.Error("two servers share a URL")
	}
}

func TestHTTPRejectsWrongCredentials(t *testing.T) {
	t.Parallel()
	bare, srv := httpRemote(t)
	for name, remote := range map[string]string{
		"no credentials": srv.RepoURL(bare),
		"wrong password": strings.Replace(srv.AuthURL(bare), ":s3cret@", ":wrong@", 1),
		"wrong user":     strings.Replace(srv.AuthURL(bare), "bot:", "bob:", 1),
	} {
		_, err := RunGit("", "ls-remote", remote)
		var gerr *GitError
		if !errors.As(err, &gerr) || !strings.Contains(gerr.Stderr, "Authentication failed") &&
			!strings.Contains(gerr.Stderr, "could not read Username") {
			t.Errorf("%s: ls-remote error = %v, want an authentication failure", name, err)
		}
	}

	req, err := http.NewRequest(http.MethodGet, srv.RepoURL(bare)+"/info/refs?service=git-upload-pack", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		password string
		status   int
	}{{"wrong", http.StatusUnauthorized}, {"s3cret", http.StatusOK}} {
		req.SetBasicAuth("bot", tc.password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if err := resp.Body.Close(); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != tc.status {
			t.Errorf("password %q: status %d, want %d", tc.password, resp.StatusCode, tc.status)
		}
		if tc.status == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") != `Basic realm="git"` {
			t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
		}
	}
	if got := srv.Pushes(); got != 0 {
		t.Errorf("Pushes = %d, want 0", got)
	}
}

func TestHTTPFailPushes(t *testing.T) {
	t.Parallel()
	bare, srv := httpRemote(t)
	before := Head(t, bare, "main")
	work := Clone(t, srv.AuthURL(bare))
	hash := CommitFiles(t, work, map[string]string{"b.txt": "b\n"}, "Add b")
	srv.FailPushes(1, 0)
	_, err := RunGit(work, "push", "-q", "origin", "HEAD")
	var gerr *GitError
	if !errors.As(err, &gerr) || !strings.Contains(gerr.Stderr, "500") {
		t.Fatalf("push error = %v, want an HTTP 500", err)
	}
	if got := Head(t, bare, "main"); got != before {
		t.Errorf("failed push moved main to %s", got)
	}
	Push(t, work)
	if got := Head(t, bare, "main"); got != hash {
		t.Errorf("main = %s after the retry, want %s", got, hash)
	}
	var failed, ok int
	for _, r := range srv.Requests() {
		switch {
		case r.IsPush() && r.Status == http.StatusInternalServerError:
			failed++
		case r.IsPush() && r.Status == http.StatusOK:
			ok++
		}
	}
	if failed != 1 || ok != 1 || srv.Pushes() != 1 {
		t.Errorf("pushes failed %d, ok %d, Pushes %d; want 1, 1, 1", failed, ok, srv.Pushes())
	}
}

func TestHTTPHookRejectsPush(t *testing.T) {
	t.Parallel()
	bare, srv := httpRemote(t)
	before := Head(t, bare, "main")
	RejectPushes(t, bare, "main is protected; open a pull request")
	work := Clone(t, srv.AuthURL(bare))
	CommitFiles(t, work, map[string]string{"b.txt": "b\n"}, "Add b")
	_, err := RunGit(work, "push", "origin", "HEAD")
	var gerr *GitError
	if !errors.As(err, &gerr) ||
		!strings.Contains(gerr.Stderr, "remote: main is protected; open a pull request") ||
		!strings.Contains(gerr.Stderr, "pre-receive hook declined") {
		t.Fatalf("push error = %v, want the hook's refusal", err)
	}
	if got := Head(t, bare, "main"); got != before {
		t.Errorf("refused push moved main to %s", got)
	}
	if got := srv.Pushes(); got != 1 {
		t.Errorf("Pushes = %d, want 1 (the refusal travels in a 200 answer)", got)
	}
}

// TestHTTPLargePush sends a pack over http.postBuffer, which git sends with
// chunked encoding that net/http/cgi refuses by itself.
func TestHTTPLargePush(t *testing.T) {
	t.Parallel()
	bare, srv := httpRemote(t)
	work := Clone(t, srv.AuthURL(bare))
	noise := make([]byte, 3<<20)
	if _, err := rand.Read(noise); err != nil {
		t.Fatal(err)
	}
	content := base64.StdEncoding.EncodeToString(noise)
	hash := CommitFiles(t, work, map[string]string{"big.txt": content}, "Add a big file")
	Push(t, work)
	if got := Head(t, bare, "main"); got != hash {
		t.Errorf("main = %s, want %s", got, hash)
	}
	if got, _ := ReadFile(t, bare, "main", "big.txt"); got != content {
		t.Errorf("big.txt differs (%d bytes, want %d)", len(got), len(content))
	}
}

func TestMakeConfigRepo(t *testing.T) {
	t.Parallel()
	bare := MakeConfigRepoTB(t, 5, 20)
	if got := Git(t, bare, "rev-list", "--count", "main"); got != "20" {
		t.Errorf("commits = %s, want 20", got)
	}
	files := strings.Split(Git(t, bare, "ls-tree", "-r", "--name-only", "main"), "\n")
	if len(files) != 25 {
		t.Errorf("files = %d, want 25: %v", len(files), files)
	}
	// Commit n changes app (n-1) mod 5: app-003 last at n = 19, the head.
	prod, ok := ReadFile(t, bare, "main", "apps/app-003/"+ProductionOverlay)
	if !ok || !strings.Contains(prod, "  - name: registry.example.com/acme/app-003  # promoted by promotebot\n"+
		"    newTag: \"1.0.19\"\n") || strings.Contains(prod, "hello") {
		t.Errorf("app-003 production overlay:\n%s", prod)
	}
	base, _ := ReadFile(t, bare, "main", "apps/app-001/base/deployment.yaml")
	if !strings.Contains(base, "image: registry.example.com/acme/app-001:0.0.0\n") {
		t.Errorf("app-001 deployment:\n%s", base)
	}
	log := Log(t, bare, "main")
	if got := ChangedFiles(t, bare, log[0].Hash); !reflect.DeepEqual(got, []string{"apps/app-003/" + ProductionOverlay}) {
		t.Errorf("head changed %v", got)
	}
	if got := log[0].TrailerValues("Promotebot-Image"); !reflect.DeepEqual(got, []string{"registry.example.com/acme/app-003:1.0.19"}) {
		t.Errorf("head Promotebot-Image = %q", got)
	}
	if root := log[len(log)-1]; root.Subject != InitialCommitMessage || len(ChangedFiles(t, bare, root.Hash)) != 25 {
		t.Errorf("root commit %q changed %d files", root.Subject, len(ChangedFiles(t, bare, root.Hash)))
	}
	if again := MakeConfigRepoTB(t, 5, 20); Head(t, again, "main") != log[0].Hash {
		t.Error("the same arguments gave a different history")
	}
	if _, err := MakeConfigRepo(filepath.Dir(bare), 5, 20); err == nil {
		t.Error("MakeConfigRepo overwrote an existing config.git")
	}
}

func TestMakeConfigRepoPeople(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bare, err := MakeConfigRepoWith(dir, ConfigRepoOptions{Apps: 5, Commits: 20, People: true})
	if err != nil {
		t.Fatal(err)
	}
	log := Log(t, bare, "main")
	if len(log) != 20 {
		t.Fatalf("commits = %d, want 20", len(log))
	}
	// Commit n (n ≥ 1) is log[19-n]: a person's edit of app (n-1) mod 5.
	for i, c := range log[:19] {
		n := 19 - i
		app, tag := AppName((n-1)%5), fmt.Sprintf("1.0.%d", n)
		if c.AuthorName != PersonName || c.AuthorEmail != PersonEmail ||
			c.CommitterName != PersonName || c.CommitterEmail != PersonEmail {
			t.Errorf("commit %d by %s <%s>, committed by %s <%s>", n, c.AuthorName, c.AuthorEmail, c.CommitterName, c.CommitterEmail)
		}
		if want := "Bump " + app + " to " + tag; c.Subject != want || len(c.Trailers) != 0 {
			t.Errorf("commit %d: subject %q, trailers %v; want %q and none", n, c.Subject, c.Trailers, want)
		}
		if got := ChangedFiles(t, bare, c.Hash); !reflect.DeepEqual(got, []string{"apps/" + app + "/" + ProductionOverlay}) {
			t.Errorf("commit %d changed %v", n, got)
		}
	}
	prod, _ := ReadFile(t, bare, "main", "apps/app-003/"+ProductionOverlay)
	if !strings.Contains(prod, "    newTag: \"1.0.19\"\n") {
		t.Errorf("app-003 production overlay:\n%s", prod)
	}
	if root := log[19]; root.Subject != InitialCommitMessage || root.AuthorName != AuthorName || len(ChangedFiles(t, bare, root.Hash)) != 25 {
		t.Errorf("root commit %q by %s changed %d files", root.Subject, root.AuthorName, len(ChangedFiles(t, bare, root.Hash)))
	}
	// Deterministic, and a different history from the bot's.
	again, err := MakeConfigRepoWith(t.TempDir(), ConfigRepoOptions{Apps: 5, Commits: 20, People: true})
	if err != nil {
		t.Fatal(err)
	}
	if Head(t, again, "main") != log[0].Hash {
		t.Error("the same options gave a different history")
	}
	if Head(t, MakeConfigRepoTB(t, 5, 20), "main") == log[0].Hash {
		t.Error("the people variant is the bot's history")
	}
	if root := Log(t, MakeConfigRepoTB(t, 5, 20), "main"); root[19].Hash != log[19].Hash {
		t.Error("the initial commit differs between the variants")
	}
}
